//! The key directory backend: round trips, refusals and their events.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use common::{Events, field, master, names};
use subtle::ConstantTimeEq;
use vigil_event::Timestamp;
use vigil_keys::{
    AUDIT_HMAC, CHECKPOINT_SIGNING, Error, FINGERPRINT, FileBackend, KeyStore, POISON,
    STANDARD_KEYS,
};

fn store(dir: &Path, seed: u8, events: &Events) -> KeyStore {
    KeyStore::new(
        FileBackend::new(dir),
        master(seed),
        Some(events.emitter.clone()),
    )
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o7777
}

fn same(a: &vigil_keys::Secret, b: &vigil_keys::Secret) -> bool {
    bool::from(a.ct_eq(b))
}

#[test]
fn round_trip_with_modes_layout_and_events() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    let before = Timestamp::now();
    for name in STANDARD_KEYS {
        assert_eq!(keys.generate(name).unwrap(), 1);
    }
    assert_eq!(mode(&dir), 0o700);
    for name in STANDARD_KEYS {
        let path = dir.join(format!("{name}.1.key"));
        assert_eq!(mode(&path), 0o600, "{}", path.display());
        let bytes = fs::read(&path).unwrap();
        assert_eq!(bytes.len(), vigil_keys::ENVELOPE_LEN);
        assert_eq!(&bytes[..4], &vigil_keys::MAGIC);
    }
    // Only the key files: no temporary file is left behind.
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 4);
    let generated = events.take();
    assert_eq!(names(&generated), ["keys.generated"; 4]);
    assert_eq!(field(&generated[0], "key"), AUDIT_HMAC);
    assert_eq!(field(&generated[0], "version"), "1");
    assert_eq!(field(&generated[0], "backend"), "file");

    // A second store over the same directory reads the same keys.
    let again = store(&dir, 1, &events);
    let a = keys.load(AUDIT_HMAC, 1).unwrap();
    let (v, b) = again.load_current(AUDIT_HMAC).unwrap();
    assert_eq!(v, 1);
    assert!(same(&a, &b));
    let c = again.load(CHECKPOINT_SIGNING, 1).unwrap();
    assert!(!same(&a, &c), "two keys got the same bytes");
    let loaded = events.take();
    assert_eq!(names(&loaded), ["keys.loaded"; 3]);
    assert_eq!(field(&loaded[1], "key"), AUDIT_HMAC);
    assert_eq!(field(&loaded[1], "version"), "1");
    assert_eq!(field(&loaded[1], "backend"), "file");
    assert!(field(&loaded[1], "location").ends_with("keys/audit-hmac.1.key"));

    let list = again.list().unwrap();
    let listed: Vec<_> = list
        .iter()
        .map(|k| (k.name.as_str(), k.version, k.backend))
        .collect();
    assert_eq!(
        listed,
        [
            (AUDIT_HMAC, 1, "file"),
            (CHECKPOINT_SIGNING, 1, "file"),
            (FINGERPRINT, 1, "file"),
            (POISON, 1, "file")
        ]
    );
    let after = Timestamp::now();
    assert!(
        list.iter()
            .all(|k| before <= k.created && k.created <= after)
    );
}

#[test]
fn generate_refuses_an_existing_key_and_ensure_keeps_it() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    assert_eq!(keys.ensure(POISON).unwrap(), 1);
    let first = keys.load(POISON, 1).unwrap();
    let e = keys.generate(POISON).unwrap_err();
    assert!(matches!(e, Error::Exists { version: 1, .. }), "{e:?}");
    assert!(
        e.to_string().contains("vigil keys rotate --key poison"),
        "{e}"
    );
    assert_eq!(keys.ensure(POISON).unwrap(), 1);
    assert!(same(&first, &keys.load(POISON, 1).unwrap()));
}

#[test]
fn concurrent_generates_create_one_key() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let results: Vec<_> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..8)
            .map(|_| {
                let dir = dir.clone();
                s.spawn(move || {
                    KeyStore::new(FileBackend::new(dir), master(1), None).generate(AUDIT_HMAC)
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let ok = results.iter().filter(|r| r.is_ok()).count();
    assert_eq!(ok, 1, "{results:?}");
    assert!(
        results
            .iter()
            .all(|r| matches!(r, Ok(1) | Err(Error::Exists { version: 1, .. })))
    );
    assert_eq!(fs::read_dir(&dir).unwrap().count(), 1);
}

#[test]
fn wrong_master_key_is_decrypt_failed_naming_the_file() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    store(&dir, 1, &events).generate(AUDIT_HMAC).unwrap();
    events.take();
    let e = store(&dir, 2, &events).load(AUDIT_HMAC, 1).unwrap_err();
    let path = dir.join("audit-hmac.1.key");
    assert!(
        matches!(e, Error::DecryptFailed { version: 1, .. }),
        "{e:?}"
    );
    let msg = e.to_string();
    assert!(msg.contains(&path.display().to_string()), "{msg}");
    assert!(msg.contains("master key"), "{msg}");
    assert!(!msg.contains('\n'));
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.decrypt_failed"]);
    assert_eq!(field(&evs[0], "key"), AUDIT_HMAC);
    assert_eq!(field(&evs[0], "location"), path.display().to_string());
    assert_eq!(evs[0].severity, vigil_event::Severity::Critical);
}

#[test]
fn a_flipped_byte_anywhere_is_decrypt_failed() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    keys.generate(FINGERPRINT).unwrap();
    let path = dir.join("fingerprint.1.key");
    let good = fs::read(&path).unwrap();
    // Magic, creation time, nonce, ciphertext, tag.
    for i in [0, 5, 20, 40, 83] {
        let mut bad = good.clone();
        bad[i] ^= 0x80;
        fs::write(&path, &bad).unwrap();
        let e = keys.load(FINGERPRINT, 1).unwrap_err();
        assert!(matches!(e, Error::DecryptFailed { .. }), "byte {i}: {e:?}");
    }
    // Truncated and extended.
    for bad in [&good[..80], &[&good[..], b"\n"].concat()[..]] {
        fs::write(&path, bad).unwrap();
        assert!(matches!(
            keys.load(FINGERPRINT, 1),
            Err(Error::DecryptFailed { .. })
        ));
    }
    events.take();
    fs::write(&path, &good).unwrap();
    keys.load(FINGERPRINT, 1).unwrap();
    assert_eq!(names(&events.take()), ["keys.loaded"]);
}

#[test]
fn a_file_renamed_to_another_name_or_version_fails_to_decrypt() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    let src = dir.join("audit-hmac.1.key");
    // Another name of the same length, another name, another version.
    for (name, version) in [("other-hmac", 1), (POISON, 1), (AUDIT_HMAC, 2)] {
        let dst = dir.join(format!("{name}.{version}.key"));
        fs::copy(&src, &dst).unwrap();
        let e = keys.load(name, version).unwrap_err();
        assert!(
            matches!(e, Error::DecryptFailed { .. }),
            "{name} v{version}: {e:?}"
        );
        assert!(e.to_string().contains(&dst.display().to_string()), "{e}");
        fs::remove_file(&dst).unwrap();
    }
    events.take();
}

#[test]
fn missing_keys_are_not_found() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&tmp.path().join("never-created"), 1, &events);
    let e = keys.load_current(AUDIT_HMAC).unwrap_err();
    assert!(matches!(e, Error::NotFound { version: None, .. }), "{e:?}");
    assert!(e.to_string().contains("vigil keys generate"), "{e}");
    assert!(keys.list().unwrap().is_empty());

    let keys = store(&dir, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    events.take();
    let e = keys.load(AUDIT_HMAC, 7).unwrap_err();
    assert!(
        matches!(
            e,
            Error::NotFound {
                version: Some(7),
                ..
            }
        ),
        "{e:?}"
    );
    assert!(e.to_string().contains("audit-hmac.7.key"), "{e}");
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.not_found"]);
    assert_eq!(field(&evs[0], "version"), "7");
    let e = keys.rotate(POISON).unwrap_err();
    assert!(matches!(e, Error::NotFound { .. }), "{e:?}");
}

#[test]
fn a_key_file_open_to_others_is_refused_with_the_fix() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    events.take();
    let path = dir.join("audit-hmac.1.key");
    for bad in [0o644, 0o640, 0o604, 0o620] {
        fs::set_permissions(&path, fs::Permissions::from_mode(bad)).unwrap();
        let e = keys.load(AUDIT_HMAC, 1).unwrap_err();
        assert!(
            matches!(
                e,
                Error::BadPermissions {
                    directory: false,
                    ..
                }
            ),
            "{bad:o}: {e:?}"
        );
        let msg = e.to_string();
        assert!(
            msg.contains(&format!("chmod 600 {}", path.display())),
            "{msg}"
        );
        assert!(msg.contains(&format!("{bad:04o}")), "{msg}");
    }
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.bad_permissions"; 4]);
    assert_eq!(field(&evs[0], "location"), path.display().to_string());
    // Listing reads the same files and refuses them too.
    assert!(matches!(keys.list(), Err(Error::BadPermissions { .. })));
    fs::set_permissions(&path, fs::Permissions::from_mode(0o400)).unwrap();
    keys.load(AUDIT_HMAC, 1).unwrap();
}

#[test]
fn a_key_directory_open_to_others_is_refused_with_the_fix() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    events.take();
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o755)).unwrap();
    let e = keys.load(AUDIT_HMAC, 1).unwrap_err();
    assert!(
        matches!(
            e,
            Error::BadPermissions {
                directory: true,
                mode: 0o755,
                ..
            }
        ),
        "{e:?}"
    );
    assert!(
        e.to_string()
            .contains(&format!("chmod 700 {}", dir.display())),
        "{e}"
    );
    assert_eq!(names(&events.take()), ["keys.bad_permissions"]);
    // Nothing is written into it either.
    assert!(matches!(
        keys.generate(POISON),
        Err(Error::BadPermissions { .. })
    ));
    assert!(!dir.join("poison.1.key").exists());
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();
    keys.load(AUDIT_HMAC, 1).unwrap();
}

#[test]
fn an_unreadable_key_path_is_load_failed() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    events.take();
    let path = dir.join("poison.1.key");
    fs::create_dir(&path).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o700)).unwrap();
    let e = keys.load(POISON, 1).unwrap_err();
    assert!(matches!(e, Error::LoadFailed { .. }), "{e:?}");
    assert!(e.to_string().contains(&path.display().to_string()), "{e}");
    assert_eq!(names(&events.take()), ["keys.load_failed"]);
}

#[test]
fn rotation_adds_versions_and_keeps_the_old_ones() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    let keys = store(&dir, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    let v1 = keys.load(AUDIT_HMAC, 1).unwrap();
    events.take();
    assert_eq!(keys.rotate(AUDIT_HMAC).unwrap(), 2);
    assert_eq!(keys.rotate(AUDIT_HMAC).unwrap(), 3);
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.rotated"; 2]);
    assert_eq!(field(&evs[1], "old_version"), "2");
    assert_eq!(field(&evs[1], "new_version"), "3");
    assert_eq!(field(&evs[1], "key"), AUDIT_HMAC);

    let (current, v3) = keys.load_current(AUDIT_HMAC).unwrap();
    assert_eq!(current, 3);
    let v2 = keys.load(AUDIT_HMAC, 2).unwrap();
    assert!(same(&v1, &keys.load(AUDIT_HMAC, 1).unwrap()));
    assert!(!same(&v1, &v2) && !same(&v2, &v3) && !same(&v1, &v3));
    let versions: Vec<u32> = keys.list().unwrap().iter().map(|k| k.version).collect();
    assert_eq!(versions, [1, 2, 3]);
}

#[test]
fn rotation_under_a_wrong_master_key_writes_nothing() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let events = Events::new();
    store(&dir, 1, &events).generate(AUDIT_HMAC).unwrap();
    events.take();
    let e = store(&dir, 9, &events).rotate(AUDIT_HMAC).unwrap_err();
    assert!(matches!(e, Error::DecryptFailed { .. }), "{e:?}");
    assert_eq!(names(&events.take()), ["keys.decrypt_failed"]);
    assert!(!dir.join("audit-hmac.2.key").exists());
}

#[test]
fn invalid_names_touch_nothing() {
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let keys = store(&dir, 1, &Events::new());
    for bad in ["../etc/passwd", "a.b", "Audit", ""] {
        assert!(
            matches!(keys.generate(bad), Err(Error::InvalidName { .. })),
            "{bad}"
        );
        assert!(
            matches!(keys.load(bad, 1), Err(Error::InvalidName { .. })),
            "{bad}"
        );
    }
    assert!(!dir.exists());
}
