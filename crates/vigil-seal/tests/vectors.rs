//! Known-answer vectors of the audit log format, computed independently
//! (Python's hmac and hashlib, from the byte layout in docs/audit.md).
//! docs/audit.md publishes the same values for other implementations.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use vigil_seal::{
    CheckpointSigner, LineFormat, Seal, Tree, Verifier, leaf_hash, split_sealed, write_sealed,
};
use zeroize::Zeroizing;

const RECORD_1: &str = r#"{"time":"2026-11-26T00:00:00.000000Z","origin":"db1","seq":1,"code":4000,"name":"audit.chain_started","category":"audit","severity":"notice","outcome":"success","message":"audit chain started"}"#;
const RECORD_2: &str = r#"{"time":"2026-11-26T00:00:01.000000Z","origin":"db1","seq":2,"code":2000,"name":"statement.executed","category":"statement","severity":"info","outcome":"success","message":"statement executed","fields":{"query":"SELECT 1"}}"#;
const LINE_1: &str = r#"{"time":"2026-11-26T00:00:00.000000Z","origin":"db1","seq":1,"code":4000,"name":"audit.chain_started","category":"audit","severity":"notice","outcome":"success","message":"audit chain started","seal":{"seq":1,"key":1,"mac":"b0664f70491cb74694b6dfaef2a3201d2bf7cbeb0bdad436490df8fbc1edcf6c","start":"ZGIx"}}"#;
const LINE_2: &str = r#"{"time":"2026-11-26T00:00:01.000000Z","origin":"db1","seq":2,"code":2000,"name":"statement.executed","category":"statement","severity":"info","outcome":"success","message":"statement executed","fields":{"query":"SELECT 1"},"seal":{"seq":2,"key":1,"mac":"182d9939354fca2153f364ec95f145b50e5b6841f3328600535556a2d2e9eea4"}}"#;
const LEAF_1: &str = "e4553d346ae9587cb8565b52e8348befefd1258370e31ade0642e0a7f7df4156";
const LEAF_2: &str = "59fd1c8f8af963dda785021b3287341012f07034d8615c9e714a78fd41a9aea1";
const ROOT_2: &str = "9c37aded0315d01b7399ff00b85ee46ff12458234c5a977f51cd2d7f5e6a6e15";

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

fn unhex(s: &str) -> [u8; 32] {
    let mut out = [0u8; 32];
    for (i, o) in out.iter_mut().enumerate() {
        *o = u8::from_str_radix(&s[2 * i..2 * i + 2], 16).unwrap();
    }
    out
}

#[test]
fn sealed_lines_leaves_and_root_match_the_published_vectors() {
    let seal_1 = Seal {
        seq: 1,
        key_version: 1,
        start: Some("db1".into()),
        mac: unhex("b0664f70491cb74694b6dfaef2a3201d2bf7cbeb0bdad436490df8fbc1edcf6c"),
        checkpoint: None,
    };
    let mut line = Vec::new();
    write_sealed(LineFormat::Json, RECORD_1.as_bytes(), &seal_1, &mut line);
    assert_eq!(String::from_utf8(line).unwrap(), LINE_1);
    let (record, seal) = split_sealed(LineFormat::Json, LINE_2.as_bytes()).unwrap();
    assert_eq!(&*record, RECORD_2.as_bytes());
    assert_eq!(seal.seq, 2);
    assert_eq!(hex(&leaf_hash(LINE_1.as_bytes())), LEAF_1);
    assert_eq!(hex(&leaf_hash(LINE_2.as_bytes())), LEAF_2);
    let mut tree = Tree::new();
    tree.push(leaf_hash(LINE_1.as_bytes()));
    tree.push(leaf_hash(LINE_2.as_bytes()));
    assert_eq!(hex(&tree.root()), ROOT_2);
}

#[test]
fn the_verifier_accepts_the_vectors_with_their_key_and_rejects_another() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("audit-00000000000000000001.log"),
        format!("{LINE_1}\n{LINE_2}\n"),
    )
    .unwrap();
    let right = |_: u32| Some(Zeroizing::new([0x11u8; 32]));
    let r = Verifier::new()
        .keys(&right)
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    assert!(r.verified(), "{:?}", r.failure);
    assert_eq!(r.macs_checked, 2);
    assert_eq!(hex(&r.root), ROOT_2);
    let wrong = |_: u32| Some(Zeroizing::new([0x12u8; 32]));
    let r = Verifier::new()
        .keys(&wrong)
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    let f = r.failure.unwrap();
    assert_eq!((f.seq, f.line), (Some(1), 1));
    // The public-key path has no checkpoint to check here, but rebuilds the same root.
    let vkey = CheckpointSigner::new("db1", &[1; 32]).unwrap().verifier();
    let r = Verifier::new()
        .public_key(vkey)
        .verify(&[dir.path().to_path_buf()])
        .unwrap();
    assert_eq!(hex(&r.root), ROOT_2);
}
