//! Known-answer vectors of the audit log format (seal format 2), computed
//! independently (Python's hmac and hashlib, from the byte layout in
//! docs/audit.md). docs/audit.md publishes the same values for other
//! implementations.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use vigil_seal::{
    CheckpointSigner, LineFormat, Seal, Tree, Verifier, VerifyError, entry_leaf, leaf_hash,
    split_sealed, write_sealed,
};
use zeroize::Zeroizing;

const RECORD_1: &str = r#"{"time":"2026-11-26T00:00:00.000000Z","origin":"db1","seq":1,"code":4000,"name":"audit.chain_started","category":"audit","severity":"notice","outcome":"success","message":"audit chain started"}"#;
const RECORD_2: &str = r#"{"time":"2026-11-26T00:00:01.000000Z","origin":"db1","seq":2,"code":2000,"name":"statement.executed","category":"statement","severity":"info","outcome":"success","message":"statement executed","fields":{"query":"SELECT 1"}}"#;
const LINE_1: &str = r#"{"time":"2026-11-26T00:00:00.000000Z","origin":"db1","seq":1,"code":4000,"name":"audit.chain_started","category":"audit","severity":"notice","outcome":"success","message":"audit chain started","seal":{"seq":1,"v":2,"key":1,"mac":"911fddd1119e262ae4a760639321c034e7c80970c10549a0f4e094a02ec58da7","start":"ZGIx"}}"#;
const LINE_2: &str = r#"{"time":"2026-11-26T00:00:01.000000Z","origin":"db1","seq":2,"code":2000,"name":"statement.executed","category":"statement","severity":"info","outcome":"success","message":"statement executed","fields":{"query":"SELECT 1"},"seal":{"seq":2,"v":2,"key":1,"mac":"1b07b7743eabac86244c7040b510f93f089c9c7bf7a59be80a90bfdb22d252fa"}}"#;
/// The same entries in seal format 1 (the previous vectors), which this
/// version refuses.
const LINE_1_V1: &str = r#"{"time":"2026-11-26T00:00:00.000000Z","origin":"db1","seq":1,"code":4000,"name":"audit.chain_started","category":"audit","severity":"notice","outcome":"success","message":"audit chain started","seal":{"seq":1,"key":1,"mac":"b0664f70491cb74694b6dfaef2a3201d2bf7cbeb0bdad436490df8fbc1edcf6c","start":"ZGIx"}}"#;
const LINE_2_V1: &str = r#"{"time":"2026-11-26T00:00:01.000000Z","origin":"db1","seq":2,"code":2000,"name":"statement.executed","category":"statement","severity":"info","outcome":"success","message":"statement executed","fields":{"query":"SELECT 1"},"seal":{"seq":2,"key":1,"mac":"182d9939354fca2153f364ec95f145b50e5b6841f3328600535556a2d2e9eea4"}}"#;
const LEAF_1: &str = "e1b2500625b21ff72481f23653b828d71d2b85cf69cf5d494128c127bfe3e59e";
const LEAF_2: &str = "f4bfaf4baff3ab28e3b9b8663e6ae23d0600e1282af3394d8fa03c5a3358cedf";
const ROOT_2: &str = "65d6386239edc31e2713f144a0f54adf333f9ff7f2c7e80beb4c495c9293ded7";

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
        mac: unhex("911fddd1119e262ae4a760639321c034e7c80970c10549a0f4e094a02ec58da7"),
        checkpoint: None,
    };
    let mut line = Vec::new();
    write_sealed(LineFormat::Json, RECORD_1.as_bytes(), &seal_1, &mut line);
    assert_eq!(String::from_utf8(line).unwrap(), LINE_1);
    let (record, seal) = split_sealed(LineFormat::Json, LINE_2.as_bytes()).unwrap();
    assert_eq!(&*record, RECORD_2.as_bytes());
    assert_eq!(seal.seq, 2);
    let leaf_1 = entry_leaf(LineFormat::Json, LINE_1.as_bytes()).unwrap();
    let leaf_2 = entry_leaf(LineFormat::Json, LINE_2.as_bytes()).unwrap();
    assert_eq!(hex(&leaf_1), LEAF_1);
    assert_eq!(hex(&leaf_2), LEAF_2);
    // The leaf is the RFC 6962 leaf hash of the line without the MAC's hex
    // digits, followed by the MAC's 32 bytes.
    let at = LINE_2.find("1b07b774").unwrap();
    let mut data = LINE_2.as_bytes()[..at].to_vec();
    data.extend_from_slice(&LINE_2.as_bytes()[at + 64..]);
    data.extend_from_slice(&unhex(&LINE_2[at..at + 64]));
    assert_eq!(leaf_hash(&data), leaf_2);
    let mut tree = Tree::new();
    tree.push(leaf_1);
    tree.push(leaf_2);
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

#[test]
fn a_log_of_seal_format_1_is_refused_with_one_error() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("audit-00000000000000000001.log"),
        format!("{LINE_1_V1}\n{LINE_2_V1}\n"),
    )
    .unwrap();
    let key = |_: u32| Some(Zeroizing::new([0x11u8; 32]));
    let vkey = CheckpointSigner::new("db1", &[1; 32]).unwrap().verifier();
    for v in [Verifier::new().keys(&key), Verifier::new().public_key(vkey)] {
        let err = v.verify(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(
            matches!(err, VerifyError::OldFormat { line: 1, .. }),
            "{err}"
        );
        let msg = err.to_string();
        assert!(
            msg.contains("format 1") && msg.contains("release that wrote it"),
            "{msg}"
        );
    }
}
