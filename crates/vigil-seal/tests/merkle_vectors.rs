//! The transparency-dev/merkle proof vectors (`testdata/merkle/`) and the
//! RFC 6962 roots of the eight-leaf reference tree.

#![allow(clippy::unwrap_used, clippy::string_slice)] // test helpers outside #[test] fns

use std::fs;
use std::path::{Path, PathBuf};

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as BASE64;
use serde_json::Value;
use vigil_seal::{
    Hash, Tree, consistency_proof, empty_root, inclusion_proof, leaf_hash, verify_consistency,
    verify_inclusion,
};

/// Leaf inputs (hex) of the reference tree of transparency-dev/merkle.
const LEAF_INPUTS: [&str; 8] = [
    "",
    "00",
    "10",
    "2021",
    "3031",
    "40414243",
    "5051525354555657",
    "606162636465666768696a6b6c6d6e6f",
];

/// Roots (hex) of the reference tree for sizes 0..=8.
const ROOTS: [&str; 9] = [
    "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
    "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
    "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
    "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
    "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
    "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
    "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
    "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
    "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
];

/// Number of vector files shipped in each folder.
const INCLUSION_FILES: usize = 98;
const CONSISTENCY_FILES: usize = 98;

/// Happy paths whose "hashes" are placeholders of the wrong length (Go's
/// `[]byte("don't care")`). A `Hash` cannot hold them, so these cases run
/// with each placeholder replaced by a 32-byte stand-in (its leaf hash):
/// their outcome does not depend on the hash values.
const PLACEHOLDER_HAPPY_PATHS: [&str; 1] =
    ["consistency/additional/sizes-are-equal-one-and-proof-is-empty.json"];

fn hex(s: &str) -> Vec<u8> {
    assert!(s.len().is_multiple_of(2), "odd hex {s:?}");
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).unwrap())
        .collect()
}

fn hex_hash(s: &str) -> Hash {
    hex(s).try_into().unwrap()
}

fn reference_leaves() -> Vec<Hash> {
    LEAF_INPUTS.iter().map(|d| leaf_hash(&hex(d))).collect()
}

fn testdata() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/merkle")
}

/// Every `.json` file under `testdata/merkle/<kind>`, as (name relative to
/// `testdata/merkle`, parsed JSON), sorted by name.
fn vectors(kind: &str) -> Vec<(String, Value)> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).unwrap() {
            let path = entry.unwrap().path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "json") {
                out.push(path);
            }
        }
    }
    let root = testdata();
    let mut files = Vec::new();
    walk(&root.join(kind), &mut files);
    files.sort();
    files
        .into_iter()
        .map(|path| {
            let name = path
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let json: Value = serde_json::from_str(&fs::read_to_string(&path).unwrap()).unwrap();
            (name, json)
        })
        .collect()
}

fn bytes(v: &Value) -> Vec<u8> {
    BASE64.decode(v.as_str().unwrap()).unwrap()
}

fn proof_bytes(v: &Value) -> Vec<Vec<u8>> {
    match v {
        Value::Null => Vec::new(),
        Value::Array(items) => items.iter().map(bytes).collect(),
        other => panic!("proof is {other}"),
    }
}

/// How a vector's byte strings become `Hash`es.
#[derive(Clone, Copy, PartialEq)]
enum Decode {
    /// Exactly 32 bytes, as a caller's decoder must insist.
    Strict,
    /// Anything else is replaced by its leaf hash (placeholder happy paths).
    Placeholder,
}

fn to_hash(b: &[u8], decode: Decode) -> Option<Hash> {
    match (Hash::try_from(b), decode) {
        (Ok(h), _) => Some(h),
        (Err(_), Decode::Strict) => None,
        (Err(_), Decode::Placeholder) => Some(leaf_hash(b)),
    }
}

fn to_hashes(items: &[Vec<u8>], decode: Decode) -> Option<Vec<Hash>> {
    items.iter().map(|b| to_hash(b, decode)).collect()
}

/// Runs an inclusion vector: `Err` names the reason it was rejected.
fn run_inclusion(v: &Value, decode: Decode) -> Result<(), String> {
    let index = v["leafIdx"].as_u64().unwrap();
    let size = v["treeSize"].as_u64().unwrap();
    let leaf = to_hash(&bytes(&v["leafHash"]), decode).ok_or("leaf hash is not 32 bytes")?;
    let root = to_hash(&bytes(&v["root"]), decode).ok_or("root is not 32 bytes")?;
    let proof =
        to_hashes(&proof_bytes(&v["proof"]), decode).ok_or("a proof hash is not 32 bytes")?;
    verify_inclusion(&leaf, index, size, &proof, &root).map_err(|e| e.to_string())
}

/// Runs a consistency vector: `Err` names the reason it was rejected.
fn run_consistency(v: &Value, decode: Decode) -> Result<(), String> {
    let size1 = v["size1"].as_u64().unwrap();
    let size2 = v["size2"].as_u64().unwrap();
    let root1 = to_hash(&bytes(&v["root1"]), decode).ok_or("root1 is not 32 bytes")?;
    let root2 = to_hash(&bytes(&v["root2"]), decode).ok_or("root2 is not 32 bytes")?;
    let proof =
        to_hashes(&proof_bytes(&v["proof"]), decode).ok_or("a proof hash is not 32 bytes")?;
    verify_consistency(size1, size2, &proof, &root1, &root2).map_err(|e| e.to_string())
}

/// Checks that exactly the happy paths verify; returns (accepted, rejected).
fn check_all(
    kind: &str,
    want_files: usize,
    run: fn(&Value, Decode) -> Result<(), String>,
) -> (usize, usize) {
    let vectors = vectors(kind);
    assert_eq!(vectors.len(), want_files, "{kind} vector files");
    let (mut accepted, mut rejected) = (0, 0);
    let mut failures = Vec::new();
    for (name, v) in &vectors {
        let want_err = v["wantErr"].as_bool().unwrap();
        let decode = if PLACEHOLDER_HAPPY_PATHS.contains(&name.as_str()) {
            assert!(!want_err, "{name} is listed as a happy path");
            Decode::Placeholder
        } else {
            Decode::Strict
        };
        match (run(v, decode), want_err) {
            (Ok(()), false) => accepted += 1,
            (Err(_), true) => rejected += 1,
            (Ok(()), true) => failures.push(format!("{name}: accepted a corrupted case")),
            (Err(e), false) => failures.push(format!("{name}: rejected a happy path: {e}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    (accepted, rejected)
}

#[test]
fn inclusion_vectors_accept_exactly_the_happy_paths() {
    let (accepted, rejected) = check_all("inclusion", INCLUSION_FILES, run_inclusion);
    assert_eq!((accepted, rejected), (6, 92));
}

#[test]
fn consistency_vectors_accept_exactly_the_happy_paths() {
    let (accepted, rejected) = check_all("consistency", CONSISTENCY_FILES, run_consistency);
    assert_eq!((accepted, rejected), (6, 92));
}

/// Most corrupted cases must be caught by the verifier itself, not merely by
/// the 32-byte decoding; list the ones that only decoding catches.
#[test]
fn corrupted_vectors_rejected_by_decoding_only() {
    let mut by_decoding_only = Vec::new();
    for (kind, run) in [
        (
            "inclusion",
            run_inclusion as fn(&Value, Decode) -> Result<(), String>,
        ),
        ("consistency", run_consistency),
    ] {
        for (name, v) in vectors(kind) {
            if v["wantErr"].as_bool().unwrap()
                && run(&v, Decode::Strict).is_err()
                && run(&v, Decode::Placeholder).is_ok()
            {
                by_decoding_only.push(name);
            }
        }
    }
    // Root and leaf are the same empty string in a one-leaf tree: any 32-byte
    // stand-in turns it into a valid one-leaf tree, so only the length check
    // (which `Hash` enforces by type) can reject it.
    assert_eq!(
        by_decoding_only,
        ["inclusion/single-entry/empty-root-and-leaf.json"]
    );
}

/// The happy paths' proofs are exactly the ones this crate generates from
/// the reference leaves.
#[test]
fn happy_path_proofs_match_generated_proofs() {
    let leaves = reference_leaves();
    let mut checked = 0;
    for (name, v) in vectors("inclusion") {
        if v["wantErr"].as_bool().unwrap() || !name.ends_with("happy-path.json") {
            continue;
        }
        let index = v["leafIdx"].as_u64().unwrap();
        let size = v["treeSize"].as_u64().unwrap() as usize;
        assert_eq!(bytes(&v["leafHash"]), leaves[index as usize], "{name}");
        assert_eq!(bytes(&v["root"]), hex(ROOTS[size]), "{name}");
        let want = to_hashes(&proof_bytes(&v["proof"]), Decode::Strict).unwrap();
        assert_eq!(
            inclusion_proof(&leaves[..size], index).unwrap(),
            want,
            "{name}"
        );
        checked += 1;
    }
    for (name, v) in vectors("consistency") {
        if v["wantErr"].as_bool().unwrap() || !name.ends_with("happy-path.json") {
            continue;
        }
        let size1 = v["size1"].as_u64().unwrap();
        let size2 = v["size2"].as_u64().unwrap() as usize;
        assert_eq!(bytes(&v["root1"]), hex(ROOTS[size1 as usize]), "{name}");
        assert_eq!(bytes(&v["root2"]), hex(ROOTS[size2]), "{name}");
        let want = to_hashes(&proof_bytes(&v["proof"]), Decode::Strict).unwrap();
        assert_eq!(
            consistency_proof(&leaves[..size2], size1).unwrap(),
            want,
            "{name}"
        );
        checked += 1;
    }
    assert_eq!(checked, 10);
}

#[test]
fn reference_tree_roots_for_sizes_0_to_8() {
    let leaves = reference_leaves();
    assert_eq!(empty_root(), hex_hash(ROOTS[0]));
    let mut tree = Tree::new();
    assert_eq!(tree.root(), hex_hash(ROOTS[0]));
    for (size, leaf) in leaves.iter().enumerate() {
        tree.push(*leaf);
        assert_eq!(tree.root(), hex_hash(ROOTS[size + 1]), "size {}", size + 1);
    }
}

/// The examples of transparency-dev/merkle's `proof/verify_test.go`, checked
/// with generated proofs against the reference roots.
#[test]
fn reference_tree_proofs_verify_against_reference_roots() {
    let leaves = reference_leaves();
    for size in 1..=8usize {
        let root = hex_hash(ROOTS[size]);
        for index in 0..size as u64 {
            let proof = inclusion_proof(&leaves[..size], index).unwrap();
            verify_inclusion(&leaves[index as usize], index, size as u64, &proof, &root).unwrap();
        }
        for size1 in 1..=size as u64 {
            let proof = consistency_proof(&leaves[..size], size1).unwrap();
            let root1 = hex_hash(ROOTS[size1 as usize]);
            verify_consistency(size1, size as u64, &proof, &root1, &root).unwrap();
        }
    }
}
