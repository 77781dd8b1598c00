//! `vigil audit append|checkpoint` and `vigil verify` through the binary.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use std::path::Path;
use std::process::{Command, Output};

use vigil_keys::{AUDIT_HMAC, CHECKPOINT_SIGNING, FileBackend, KeyStore, MasterKey};

const MASTER: &str = "dmlnaWwtYXVkaXQtY2xpLXRlc3QtbWFzdGVyLWtleSE="; // 32 bytes

fn vigil(args: &[&str], stdin: &[u8]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(args).env("VIGIL_MASTER_KEY", MASTER);
    vigil_testkit::run_with_stdin(&mut cmd, stdin)
}

fn setup(dir: &Path) {
    let store = KeyStore::new(
        FileBackend::new(dir.join("keys")),
        MasterKey::from_base64(MASTER).unwrap(),
        None,
    );
    store.ensure(AUDIT_HMAC).unwrap();
    store.ensure(CHECKPOINT_SIGNING).unwrap();
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

#[test]
fn append_verify_tamper_and_truncate() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let audit = tmp.path().join("audit");
    let keys = tmp.path().join("keys");
    let events = vigil(&["demo", "--format", "json"], b"");
    assert!(events.status.success());
    let mut input = events.stdout.clone();
    input.extend_from_slice(b"{\"code\":2000}\nnot json\n");
    let out = vigil(
        &[
            "audit",
            "append",
            "--dir",
            s(&audit),
            "--key-dir",
            s(&keys),
            "--origin",
            "db1",
        ],
        &input,
    );
    assert_eq!(
        out.status.code(),
        Some(1),
        "malformed lines are rejected with exit 1"
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("stdin:17: missing field `message`"), "{err}");
    assert!(err.contains("stdin:18:"), "{err}");
    assert!(err.contains("sealed 16 events"), "{err}");

    let ok = vigil(&["verify", s(&audit), "--key-dir", s(&keys), "--json"], b"");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["macs_checked"], report["entries"]);

    let vkey = vigil(
        &["keys", "public", "--key-dir", s(&keys), "--name", "db1"],
        b"",
    );
    assert!(vkey.status.success());
    let vkey = String::from_utf8(vkey.stdout).unwrap().trim().to_owned();
    let kept = vigil(&["audit", "checkpoint", "--dir", s(&audit)], b"");
    assert!(kept.status.success());
    let kept_path = tmp.path().join("kept.note");
    std::fs::write(&kept_path, &kept.stdout).unwrap();
    let public = vigil(
        &[
            "verify",
            s(&audit),
            "--public-key",
            &vkey,
            "--checkpoint",
            s(&kept_path),
        ],
        b"",
    );
    assert_eq!(
        public.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&public.stdout)
    );

    // Cut the last two lines (the final checkpoint entry covers the entries
    // before it, not itself): only the kept checkpoint reveals it.
    let seg = audit.join("audit-00000000000000000001.log");
    let text = std::fs::read_to_string(&seg).unwrap();
    let cut: String = text
        .lines()
        .take(text.lines().count() - 2)
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(&seg, cut).unwrap();
    let local = vigil(&["verify", s(&audit), "--public-key", &vkey], b"");
    assert_eq!(
        local.status.code(),
        Some(0),
        "a cut tail alone is not detectable"
    );
    let against = vigil(
        &[
            "verify",
            s(&audit),
            "--public-key",
            &vkey,
            "--checkpoint",
            s(&kept_path),
            "--json",
        ],
        b"",
    );
    assert_eq!(against.status.code(), Some(1));
    let report: serde_json::Value = serde_json::from_slice(&against.stdout).unwrap();
    assert_eq!(report["failure"]["kind"], "truncated_tail");

    // Change one character of an entry.
    std::fs::write(&seg, text.replacen("billing", "billinG", 1)).unwrap();
    let tampered = vigil(&["verify", s(&audit), "--key-dir", s(&keys)], b"");
    assert_eq!(tampered.status.code(), Some(1));
    let out = String::from_utf8_lossy(&tampered.stdout);
    assert!(out.starts_with("TAMPERED: "), "{out}");
    assert!(out.contains("modified"), "{out}");

    // Usage errors: exit 2.
    let none = vigil(&["verify", s(&audit)], b"");
    assert_eq!(none.status.code(), Some(2));
    let missing = vigil(
        &["verify", s(&tmp.path().join("nope")), "--key-dir", s(&keys)],
        b"",
    );
    assert_eq!(missing.status.code(), Some(2));
}

#[test]
fn verifies_acra_logs() {
    let fixtures = Path::new(env!("CARGO_MANIFEST_DIR")).join("../vigil-seal/testdata/acra");
    let rot = fixtures.join("rotation/cef");
    let files: Vec<String> = ["log.txt.2", "log.txt.1", "log.txt"]
        .iter()
        .map(|f| rot.join(f).to_str().unwrap().to_owned())
        .collect();
    let key = fixtures.join("key.hex");
    let mut args = vec!["verify", "--acra", "--format", "cef", "--key-file", s(&key)];
    args.extend(files.iter().map(String::as_str));
    let ok = vigil(&args, b"");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("integrity check successful"));
    let other = fixtures.join("other.key.hex");
    let mut args = vec![
        "verify",
        "--acra",
        "--format",
        "cef",
        "--key-file",
        s(&other),
    ];
    args.extend(files.iter().map(String::as_str));
    let bad = vigil(&args, b"");
    assert_eq!(bad.status.code(), Some(1));
    let usage = vigil(&["verify", "--acra", "x"], b"");
    assert_eq!(usage.status.code(), Some(2));
}

#[test]
fn proves_one_entry_without_the_log() {
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let audit = tmp.path().join("audit");
    let keys = tmp.path().join("keys");
    let events = vigil(&["demo", "--format", "json"], b"");
    let out = vigil(
        &[
            "audit",
            "append",
            "--dir",
            s(&audit),
            "--key-dir",
            s(&keys),
            "--origin",
            "db1",
        ],
        &events.stdout,
    );
    assert!(out.status.success());
    let vkey = vigil(
        &["keys", "public", "--key-dir", s(&keys), "--name", "db1"],
        b"",
    );
    let vkey = String::from_utf8(vkey.stdout).unwrap().trim().to_owned();
    let proof = vigil(&["prove", "--dir", s(&audit), "--seq", "7"], b"");
    assert!(
        proof.status.success(),
        "{}",
        String::from_utf8_lossy(&proof.stderr)
    );
    let proof_path = tmp.path().join("proof.json");
    std::fs::write(&proof_path, &proof.stdout).unwrap();
    // The log is not needed: remove it.
    std::fs::remove_dir_all(&audit).unwrap();
    let ok = vigil(
        &["verify-proof", s(&proof_path), "--public-key", &vkey],
        b"",
    );
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    assert!(String::from_utf8_lossy(&ok.stdout).contains("entry 7 is in the audit log of db1"));

    // Any change to the shown entry breaks the proof.
    let mut v: serde_json::Value = serde_json::from_slice(&proof.stdout).unwrap();
    let entry = v["entry"]
        .as_str()
        .unwrap()
        .replacen("success", "failure", 1);
    v["entry"] = entry.into();
    std::fs::write(&proof_path, v.to_string()).unwrap();
    let bad = vigil(
        &["verify-proof", s(&proof_path), "--public-key", &vkey],
        b"",
    );
    assert_eq!(bad.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&bad.stdout).starts_with("NOT PROVEN"));

    let beyond = vigil(
        &["prove", "--dir", s(&tmp.path().join("x")), "--seq", "7"],
        b"",
    );
    assert_eq!(beyond.status.code(), Some(2));
}

#[test]
fn sigusr1_rotates_the_audit_key_of_a_running_writer() {
    use std::io::{BufRead, BufReader, Write};
    use std::process::Stdio;
    let tmp = tempfile::tempdir().unwrap();
    setup(tmp.path());
    let audit = tmp.path().join("audit");
    let keys = tmp.path().join("keys");
    let mut child = Command::new(env!("CARGO_BIN_EXE_vigil"))
        .args([
            "audit",
            "append",
            "--dir",
            s(&audit),
            "--key-dir",
            s(&keys),
            "--origin",
            "db1",
            "--ack",
        ])
        .env("VIGIL_MASTER_KEY", MASTER)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let mut acks = BufReader::new(child.stdout.take().unwrap()).lines();
    let line = b"{\"code\":2000,\"message\":\"statement executed\"}\n";
    stdin.write_all(line).unwrap();
    // The first acknowledgement shows the handler is installed.
    assert!(acks.next().unwrap().unwrap().starts_with("durable "));
    let killed = Command::new("kill")
        .args(["-USR1", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(killed.success());
    std::thread::sleep(std::time::Duration::from_millis(100));
    for _ in 0..5 {
        stdin.write_all(line).unwrap();
    }
    drop(stdin);
    let out = child.wait_with_output().unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("audit.key_rotated"), "{err}");
    let log: String = std::fs::read_dir(&audit)
        .unwrap()
        .filter_map(|e| {
            let p = e.unwrap().path();
            p.extension()
                .is_some_and(|x| x == "log")
                .then(|| std::fs::read_to_string(p).unwrap())
        })
        .collect();
    assert!(log.contains("signal.sigusr1_received"));
    assert!(log.contains("keys.loaded"), "key loads are sealed");
    assert!(log.contains("keys.rotated"), "the key rotation is sealed");
    assert!(
        log.contains("\"key\":2"),
        "entries after the rotation use key version 2"
    );
    let ok = vigil(&["verify", s(&audit), "--key-dir", s(&keys), "--json"], b"");
    assert_eq!(
        ok.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let report: serde_json::Value = serde_json::from_slice(&ok.stdout).unwrap();
    assert_eq!(report["chains"], 2, "verification spans the rotation");
}

#[test]
fn verify_reports_a_log_trimmed_by_retention() {
    use vigil_event::{Event, catalog};
    use vigil_seal::{CheckpointSigner, SealConfig, SealKeys, Sealer, SyncPolicy, list_segments};
    let tmp = tempfile::tempdir().unwrap();
    let audit = tmp.path().join("audit");
    let signer = || CheckpointSigner::new("db1", &[5; 32]).unwrap();
    let mut cfg = SealConfig::new(&audit, "db1");
    cfg.sync = SyncPolicy::Never;
    cfg.segment_max_bytes = 8 * 1024;
    let keys = SealKeys {
        version: 1,
        audit_key: zeroize::Zeroizing::new([4; 32]),
        signer: signer(),
    };
    let (mut sealer, _) = Sealer::open(cfg, keys).unwrap();
    for i in 0..200u64 {
        sealer
            .append(
                &mut Event::new(catalog::STATEMENT_EXECUTED, "statement executed").field("i", i),
            )
            .unwrap();
    }
    sealer.flush().unwrap();
    let segs = list_segments(&audit).unwrap();
    let first_kept = segs[3].0;
    sealer
        .append(
            &mut Event::new(catalog::AUDIT_SEGMENTS_REMOVED, "removing audit entries")
                .field("first_seq", 1u64)
                .field("last_seq", first_kept - 1),
        )
        .unwrap();
    sealer.close().unwrap();
    for (_, p) in &segs[..3] {
        std::fs::remove_file(p).unwrap();
    }
    let vkey = signer().verifier_key();
    let out = vigil(&["verify", s(&audit), "--public-key", &vkey], b"");
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains(&format!(
            "entries 1..{} were removed by retention",
            first_kept - 1
        )),
        "{text}"
    );
    let out = vigil(&["verify", s(&audit), "--public-key", &vkey, "--json"], b"");
    let report: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(report["verified"], true);
    assert_eq!(report["trimmed"]["first_seq"], first_kept);

    // An entry left still has its inclusion proof; a removed one has none.
    for seq in [first_kept, first_kept + 1, first_kept + 40] {
        let proof = vigil(
            &["prove", "--dir", s(&audit), "--seq", &seq.to_string()],
            b"",
        );
        assert!(
            proof.status.success(),
            "{}",
            String::from_utf8_lossy(&proof.stderr)
        );
        let path = tmp.path().join("proof.json");
        std::fs::write(&path, &proof.stdout).unwrap();
        let ok = vigil(&["verify-proof", s(&path), "--public-key", &vkey], b"");
        assert_eq!(
            ok.status.code(),
            Some(0),
            "seq {seq}: {}",
            String::from_utf8_lossy(&ok.stdout)
        );
    }
    let removed = vigil(&["prove", "--dir", s(&audit), "--seq", "5"], b"");
    assert_eq!(removed.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&removed.stderr).contains("removed by retention"));
    // Without the removal entry's segment, the missing head is tampering.
    let last = list_segments(&audit).unwrap().last().unwrap().1.clone();
    std::fs::remove_file(last).unwrap();
    let out = vigil(&["verify", s(&audit), "--public-key", &vkey], b"");
    assert_eq!(out.status.code(), Some(1));
}
