//! Bad input to the audit log: wrong master key, missing or exposed key
//! files, an unusable audit directory and a full disk. Each gives one clear
//! error line and a catalog event, and loses no sealed entry.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use vigil_keys::{AUDIT_HMAC, CHECKPOINT_SIGNING, FileBackend, KeyStore, MasterKey};
use vigil_seal::Verifier;
use zeroize::Zeroizing;

const MASTER: &str = "dmlnaWwtYmFkLWlucHV0LXRlc3QtbWFzdGVyLWtleSE="; // 32 bytes
const OTHER: &str = "b3RoZXItYmFkLWlucHV0LXRlc3QtbWFzdGVyLWtleSE="; // 32 bytes

fn append(audit: &Path, keys: &Path, master: &str, stdin: &[u8], ack: bool) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.args(["audit", "append", "--dir"])
        .arg(audit)
        .arg("--key-dir")
        .arg(keys)
        .args(["--origin", "db1", "--sync", "always"])
        .env("VIGIL_MASTER_KEY", master);
    if ack {
        cmd.arg("--ack");
    }
    vigil_testkit::run_with_stdin(&mut cmd, stdin)
}

fn store(keys: &Path) -> KeyStore {
    KeyStore::new(
        FileBackend::new(keys),
        MasterKey::from_base64(MASTER).unwrap(),
        None,
    )
}

fn events(n: usize) -> Vec<u8> {
    (0..n)
        .map(|i| format!("{{\"code\":2000,\"message\":\"statement executed\",\"fields\":{{\"i\":{i},\"query\":\"SELECT * FROM accounts WHERE id = $1 AND owner = $2\"}}}}\n"))
        .collect::<String>()
        .into_bytes()
}

fn verified(audit: &Path, keys: &Path) -> vigil_seal::Report {
    let s = store(keys);
    let lookup = |v: u32| {
        s.load(AUDIT_HMAC, v)
            .ok()
            .map(|k| Zeroizing::new(*k.expose()))
    };
    Verifier::new()
        .keys(&lookup)
        .verify(&[audit.to_path_buf()])
        .unwrap()
}

/// Standard error holds events, then exactly one `vigil:` error line, last.
fn one_error_line(out: &Output) -> String {
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("vigil: ")).collect();
    assert_eq!(errors.len(), 1, "one error line expected:\n{err}");
    assert_eq!(
        err.lines().last(),
        Some(errors[0]),
        "the error comes last:\n{err}"
    );
    err
}

fn setup() -> (tempfile::TempDir, std::path::PathBuf, std::path::PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let audit = tmp.path().join("audit");
    let s = store(&keys);
    s.ensure(AUDIT_HMAC).unwrap();
    s.ensure(CHECKPOINT_SIGNING).unwrap();
    let out = append(&audit, &keys, MASTER, &events(20), false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    (tmp, keys, audit)
}

#[test]
fn wrong_master_key() {
    let (_tmp, keys, audit) = setup();
    let before = verified(&audit, &keys);
    let out = append(&audit, &keys, OTHER, &events(5), false);
    assert_eq!(out.status.code(), Some(2));
    let err = one_error_line(&out);
    assert!(err.contains("keys.decrypt_failed"), "{err}");
    assert!(err.contains("audit-hmac.1.key"), "names the file: {err}");
    assert!(
        !err.contains(OTHER) && !err.contains(MASTER),
        "no key in output"
    );
    let after = verified(&audit, &keys);
    assert!(after.verified());
    assert_eq!(
        after.last_seq, before.last_seq,
        "nothing written, nothing lost"
    );
}

#[test]
fn missing_key_file() {
    let (_tmp, keys, audit) = setup();
    std::fs::remove_file(keys.join("audit-hmac.1.key")).unwrap();
    let out = append(&audit, &keys, MASTER, &events(5), false);
    assert_eq!(out.status.code(), Some(2));
    let err = one_error_line(&out);
    assert!(err.contains("keys.not_found"), "{err}");
    assert!(
        err.contains("vigil keys generate"),
        "says what to do: {err}"
    );
}

#[test]
fn key_file_readable_by_others() {
    let (_tmp, keys, audit) = setup();
    let file = keys.join("audit-hmac.1.key");
    std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o644)).unwrap();
    let out = append(&audit, &keys, MASTER, &events(5), false);
    assert_eq!(out.status.code(), Some(2));
    let err = one_error_line(&out);
    assert!(err.contains("keys.bad_permissions"), "{err}");
    assert!(err.contains("chmod 600"), "says what to do: {err}");
}

#[test]
fn audit_directory_is_not_a_directory() {
    let (tmp, keys, _audit) = setup();
    let not_dir = tmp.path().join("plain-file");
    std::fs::write(&not_dir, b"x").unwrap();
    let out = append(&not_dir, &keys, MASTER, &events(5), false);
    assert_eq!(out.status.code(), Some(2));
    let err = one_error_line(&out);
    assert!(err.contains("audit.write_failed"), "{err}");
    assert!(err.contains("plain-file"), "names the path: {err}");
}

#[test]
fn full_disk_loses_no_durable_entry() {
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path().join("keys");
    let s = store(&keys);
    s.ensure(AUDIT_HMAC).unwrap();
    s.ensure(CHECKPOINT_SIGNING).unwrap();
    let small = tmp.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=128k", "tmpfs"])
        .arg(&small)
        .status();
    if !matches!(mounted, Ok(s) if s.success()) {
        // Only unprivileged runs may skip; CI runs as root.
        assert_ne!(uid(), 0, "root must be able to mount a tmpfs");
        eprintln!("skipped: mounting a tmpfs needs root");
        return;
    }
    let audit = small.join("audit");
    let out = append(&audit, &keys, MASTER, &events(5_000), true);
    let copy = tmp.path().join("copy");
    std::fs::create_dir(&copy).unwrap();
    for entry in std::fs::read_dir(&audit).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), copy.join(entry.file_name())).unwrap();
    }
    let _ = Command::new("umount").arg(&small).status();
    assert_eq!(out.status.code(), Some(2), "the disk filled up");
    let err = one_error_line(&out);
    assert!(err.contains("audit.write_failed"), "{err}");
    assert!(err.contains("No space left on device"), "{err}");
    let durable: u64 = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.strip_prefix("durable ")?.parse().ok())
        .max()
        .unwrap_or(0);
    assert!(
        durable > 10,
        "some entries were durable before the disk filled ({durable})"
    );
    // On a disk with room, the writer recovers the copy and it verifies.
    let out = append(&copy, &keys, MASTER, b"", false);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let r = verified(&copy, &keys);
    assert!(r.verified(), "{:?}", r.failure);
    assert!(
        r.last_seq >= durable,
        "entry {durable} was durable; the log ends at {}",
        r.last_seq
    );
}

fn uid() -> u32 {
    use std::os::unix::fs::MetadataExt;
    std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .unwrap_or(1)
}
