//! `vigil keys`, run as a real binary.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE_NO_PAD};
use vigil_keys::{
    CHECKPOINT_SIGNING, FileBackend, KeyStore, MasterKey, RedisBackend, STANDARD_KEYS,
};
use vigil_seal::{CheckpointSigner, CheckpointVerifier};
use vigil_testkit::redis::RedisServer;

const MASTER: &str = "q83vEjRWeJCrze8SNFZ4kKvN7xI0VniQq83vEjRWeJA=";
const OTHER_MASTER: &str = "AAECAwQFBgcICQoLDA0ODxAREhMUFRYXGBkaGxwdHh8=";

fn vigil(master: Option<&str>, args: &[&str]) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_vigil"));
    cmd.arg("keys").args(args);
    match master {
        Some(m) => cmd.env("VIGIL_MASTER_KEY", m),
        None => cmd.env_remove("VIGIL_MASTER_KEY"),
    };
    cmd.output().expect("run vigil")
}

fn stdout(out: &Output) -> String {
    String::from_utf8(out.stdout.clone()).unwrap()
}

fn stderr(out: &Output) -> String {
    String::from_utf8(out.stderr.clone()).unwrap()
}

/// Runs `vigil keys ARGS`, expects success, returns standard output.
fn ok(master: &str, args: &[&str], transcript: &mut Vec<String>) -> String {
    let out = vigil(Some(master), args);
    transcript.push(stdout(&out));
    transcript.push(stderr(&out));
    assert!(
        out.status.success(),
        "vigil keys {args:?}: {}",
        stderr(&out)
    );
    stdout(&out)
}

/// Runs `vigil keys ARGS`, expects exit status 2 with exactly one error line
/// (the others on standard error are events); returns that line.
fn fails(master: Option<&str>, args: &[&str], transcript: &mut Vec<String>) -> String {
    let out = vigil(master, args);
    transcript.push(stdout(&out));
    transcript.push(stderr(&out));
    assert_eq!(
        out.status.code(),
        Some(2),
        "vigil keys {args:?}: {}",
        stderr(&out)
    );
    assert_eq!(stdout(&out), "");
    let err = stderr(&out);
    let errors: Vec<&str> = err.lines().filter(|l| l.starts_with("vigil: ")).collect();
    assert_eq!(errors.len(), 1, "{err}");
    assert_eq!(
        err.lines().last(),
        Some(errors[0]),
        "the error is the last line: {err}"
    );
    for line in err.lines().filter(|l| !l.starts_with("vigil: ")) {
        assert!(line.contains(" keys."), "not an event line: {line}");
    }
    errors[0].to_owned()
}

/// Every text form of the keys in `store` and of the master keys.
fn secrets(store: &KeyStore) -> Vec<String> {
    let mut bytes: Vec<Vec<u8>> = Vec::new();
    for info in store.list().unwrap() {
        bytes.push(
            store
                .load(&info.name, info.version)
                .unwrap()
                .expose()
                .to_vec(),
        );
    }
    assert!(bytes.len() >= 4);
    let mut needles = vec![MASTER.to_owned(), OTHER_MASTER.to_owned()];
    bytes.push(STANDARD.decode(MASTER).unwrap());
    for b in bytes {
        let hex: String = b.iter().map(|x| format!("{x:02x}")).collect();
        needles.extend([
            hex.to_uppercase(),
            hex,
            STANDARD.encode(&b),
            STANDARD_NO_PAD.encode(&b),
            URL_SAFE_NO_PAD.encode(&b),
        ]);
    }
    needles
}

fn assert_no_secret(transcript: &[String], needles: &[String]) {
    for text in transcript {
        for needle in needles {
            assert!(
                !text.contains(needle.as_str()),
                "secret {needle} in output:\n{text}"
            );
        }
    }
}

fn file_store(dir: &Path) -> KeyStore {
    KeyStore::new(
        FileBackend::new(dir),
        MasterKey::from_base64(MASTER).unwrap(),
        None,
    )
}

#[test]
fn generate_list_rotate_public_with_a_key_directory() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let d = dir.to_str().unwrap();
    let mut transcript = Vec::new();

    let out = ok(MASTER, &["generate", "--key-dir", d], &mut transcript);
    let expected: String = STANDARD_KEYS
        .iter()
        .map(|k| format!("generated {k} v1\n"))
        .collect();
    assert_eq!(out, expected);
    assert_eq!(
        transcript[1].matches(" keys.generated ").count(),
        4,
        "{}",
        transcript[1]
    );
    assert!(
        transcript[1].contains("keys.master_loaded"),
        "{}",
        transcript[1]
    );
    assert_eq!(
        fs::metadata(&dir).unwrap().permissions().mode() & 0o777,
        0o700
    );

    let out = ok(MASTER, &["generate", "--key-dir", d], &mut transcript);
    let expected: String = STANDARD_KEYS
        .iter()
        .map(|k| format!("exists {k} v1\n"))
        .collect();
    assert_eq!(out, expected);

    let out = ok(MASTER, &["rotate", "--key-dir", d], &mut transcript);
    assert_eq!(out, "rotated audit-hmac v1 \u{2192} v2\n");
    assert!(transcript.last().unwrap().contains("keys.rotated"));
    let out = ok(
        MASTER,
        &["rotate", "--key", "poison", "--key-dir", d],
        &mut transcript,
    );
    assert_eq!(out, "rotated poison v1 \u{2192} v2\n");

    let out = ok(MASTER, &["list", "--key-dir", d], &mut transcript);
    let rows: Vec<Vec<&str>> = out
        .lines()
        .map(|l| l.split_whitespace().collect())
        .collect();
    assert_eq!(rows[0], ["NAME", "VERSION", "CREATED", "BACKEND"]);
    let keys: Vec<(&str, &str, &str)> = rows[1..].iter().map(|r| (r[0], r[1], r[3])).collect();
    assert_eq!(
        keys,
        [
            ("audit-hmac", "1", "file"),
            ("audit-hmac", "2", "file"),
            ("checkpoint-signing", "1", "file"),
            ("fingerprint", "1", "file"),
            ("poison", "1", "file"),
            ("poison", "2", "file"),
        ]
    );
    assert!(
        rows[1..]
            .iter()
            .all(|r| r[2].ends_with('Z') && r[2].len() == 27),
        "{out}"
    );

    let out = ok(MASTER, &["list", "--json", "--key-dir", d], &mut transcript);
    let json: serde_json::Value = serde_json::from_str(&out).unwrap();
    let list = json.as_array().unwrap();
    assert_eq!(list.len(), 6);
    assert_eq!(list[1]["name"], "audit-hmac");
    assert_eq!(list[1]["version"], 2);
    assert_eq!(list[1]["backend"], "file");
    assert!(list[1]["created"].as_str().unwrap().ends_with('Z'));

    let out = ok(
        MASTER,
        &["public", "--name", "db1.example/vigil", "--key-dir", d],
        &mut transcript,
    );
    let vkey = out.strip_suffix('\n').unwrap();
    assert!(vkey.starts_with("db1.example/vigil+"), "{vkey}");
    CheckpointVerifier::parse(vkey).unwrap();
    // The same key the seed derives.
    let store = file_store(&dir);
    let (_, seed) = store.load_current(CHECKPOINT_SIGNING).unwrap();
    let signer = CheckpointSigner::new("db1.example/vigil", seed.expose()).unwrap();
    assert_eq!(vkey, signer.verifier_key());
    // Without --name, the key is named after the host.
    let out = ok(MASTER, &["public", "--key-dir", d], &mut transcript);
    assert!(CheckpointVerifier::parse(out.trim_end()).is_ok(), "{out}");

    assert_no_secret(&transcript, &secrets(&store));
}

#[test]
fn a_missing_or_bad_master_key_is_one_line_and_exit_2() {
    let tmp = vigil_testkit::tempdir();
    let d = tmp.path().join("keys");
    let d = d.to_str().unwrap();
    let mut transcript = Vec::new();

    let line = fails(None, &["generate", "--key-dir", d], &mut transcript);
    assert!(line.contains("VIGIL_MASTER_KEY") && line.contains("head -c 32 /dev/urandom | base64"));
    assert!(
        transcript[1].contains("keys.master_missing"),
        "{}",
        transcript[1]
    );
    assert!(
        !tmp.path().join("keys").exists(),
        "nothing may be written without a master key"
    );

    let line = fails(
        Some("c2l4dGVlbiBieXRlIGtleQ=="),
        &["list", "--key-dir", d],
        &mut transcript,
    );
    assert!(
        line.contains("decodes to 16 bytes, but 32 bytes are needed"),
        "{line}"
    );
    assert!(transcript.last().unwrap().contains("keys.master_invalid"));
    assert!(!line.contains("c2l4dGVlbiBieXRlIGtleQ"));

    // Keys made under one master key, read with another.
    ok(MASTER, &["generate", "--key-dir", d], &mut transcript);
    let line = fails(
        Some(OTHER_MASTER),
        &["public", "--key-dir", d],
        &mut transcript,
    );
    assert!(
        line.contains("cannot decrypt key checkpoint-signing v1"),
        "{line}"
    );
    assert!(
        line.contains(&format!("{d}/checkpoint-signing.1.key")),
        "{line}"
    );
    assert!(transcript.last().unwrap().contains("keys.decrypt_failed"));
    let line = fails(
        Some(OTHER_MASTER),
        &["generate", "--key-dir", d],
        &mut transcript,
    );
    assert!(line.contains("cannot decrypt key audit-hmac v1"), "{line}");
    let line = fails(
        Some(OTHER_MASTER),
        &["rotate", "--key-dir", d],
        &mut transcript,
    );
    assert!(line.contains("cannot decrypt"), "{line}");

    assert_no_secret(&transcript, &secrets(&file_store(Path::new(d))));
}

#[test]
fn store_errors_are_one_line_with_the_fix() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let d = dir.to_str().unwrap();
    let mut transcript = Vec::new();
    ok(MASTER, &["generate", "--key-dir", d], &mut transcript);

    let key = dir.join("checkpoint-signing.1.key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).unwrap();
    let line = fails(Some(MASTER), &["public", "--key-dir", d], &mut transcript);
    assert!(
        line.contains(&format!("chmod 600 {}", key.display())),
        "{line}"
    );
    assert!(transcript.last().unwrap().contains("keys.bad_permissions"));
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();

    let line = fails(
        Some(MASTER),
        &["rotate", "--key", "nope", "--key-dir", d],
        &mut transcript,
    );
    assert!(
        line.contains("key nope not found") && line.contains("vigil keys generate"),
        "{line}"
    );
    assert!(transcript.last().unwrap().contains("keys.not_found"));
    let line = fails(
        Some(MASTER),
        &["rotate", "--key", "../x", "--key-dir", d],
        &mut transcript,
    );
    assert!(line.contains("invalid key name"), "{line}");

    // Usage errors are clap's, also exit 2.
    let out = vigil(Some(MASTER), &["list"]);
    assert_eq!(out.status.code(), Some(2));
    let out = vigil(
        Some(MASTER),
        &["list", "--key-dir", d, "--redis", "redis://h"],
    );
    assert_eq!(out.status.code(), Some(2));

    assert_no_secret(&transcript, &secrets(&file_store(&dir)));
}

#[test]
fn generate_list_rotate_public_with_redis() {
    let mut redis = RedisServer::start_with_password("pw-cli-7d41a2");
    let url = redis.url();
    let mut transcript = Vec::new();

    let out = ok(MASTER, &["generate", "--redis", &url], &mut transcript);
    assert_eq!(out.lines().count(), 4);
    assert!(
        out.lines()
            .all(|l| l.starts_with("generated ") && l.ends_with(" v1")),
        "{out}"
    );
    let out = ok(MASTER, &["rotate", "--redis", &url], &mut transcript);
    assert_eq!(out, "rotated audit-hmac v1 \u{2192} v2\n");
    let out = ok(MASTER, &["list", "--redis", &url], &mut transcript);
    assert_eq!(out.lines().count(), 1 + 5);
    assert!(out.lines().skip(1).all(|l| l.ends_with("  redis")), "{out}");
    let out = ok(
        MASTER,
        &["public", "--name", "db2", "--redis", &url],
        &mut transcript,
    );
    assert!(
        CheckpointVerifier::parse(out.trim_end()).unwrap() == {
            let store = KeyStore::new(
                RedisBackend::from_url(&url).unwrap(),
                MasterKey::from_base64(MASTER).unwrap(),
                None,
            );
            let (_, seed) = store.load_current(CHECKPOINT_SIGNING).unwrap();
            CheckpointSigner::new("db2", seed.expose())
                .unwrap()
                .verifier()
        }
    );

    let store = KeyStore::new(
        RedisBackend::from_url(&url).unwrap(),
        MasterKey::from_base64(MASTER).unwrap(),
        None,
    );
    let mut needles = secrets(&store);
    redis.stop();
    let line = fails(Some(MASTER), &["list", "--redis", &url], &mut transcript);
    assert!(
        line.contains(&format!(
            "key database redis://127.0.0.1:{}/0 is unavailable",
            redis.port()
        )),
        "{line}"
    );
    assert!(
        transcript
            .last()
            .unwrap()
            .contains("keys.backend_unavailable")
    );

    needles.push("pw-cli-7d41a2".into());
    assert_no_secret(&transcript, &needles);
}
