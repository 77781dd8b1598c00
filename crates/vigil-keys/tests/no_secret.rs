//! No key, master key or Redis password in any output: every event in every
//! format, every error's `Display` and `Debug`, every `Debug` of the API.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use common::{Events, assert_no_leak, encodings, master, master_b64, render};
use vigil_keys::{
    AUDIT_HMAC, Backend, CHECKPOINT_SIGNING, Error, FileBackend, KeyStore, MasterKey, POISON,
    RedisBackend, STANDARD_KEYS,
};
use vigil_testkit::redis::RedisServer;

const PASSWORD: &str = "pw-5f3a9c1e7b2d4068";

/// Keeps a result's `Debug`, or its error's `Display` and `Debug`.
fn record(outputs: &mut Vec<String>, r: Result<String, Error>) {
    match r {
        Ok(debug) => outputs.push(debug),
        Err(e) => {
            outputs.push(e.to_string());
            outputs.push(format!("{e:?}"));
        }
    }
}

/// Runs every operation and every failure, collecting all output.
#[test]
fn no_secret_in_any_event_error_or_debug_output() {
    let events = Events::new();
    let mut outputs: Vec<String> = Vec::new();
    let mut secrets: Vec<Vec<u8>> = Vec::new();

    // A key directory: everything that works.
    let tmp = vigil_testkit::tempdir();
    let dir = tmp.path().join("keys");
    let keys = KeyStore::new(
        FileBackend::new(&dir),
        master(1),
        Some(events.emitter.clone()),
    );
    for name in STANDARD_KEYS {
        record(&mut outputs, keys.generate(name).map(|v| v.to_string()));
        record(&mut outputs, keys.ensure(name).map(|v| v.to_string()));
    }
    record(&mut outputs, keys.rotate(AUDIT_HMAC).map(|v| v.to_string()));
    for name in STANDARD_KEYS {
        let (version, secret) = keys.load_current(name).unwrap();
        outputs.push(format!("{secret:?}"));
        secrets.push(secret.expose().to_vec());
        for v in 1..version {
            secrets.push(keys.load(name, v).unwrap().expose().to_vec());
        }
    }
    record(&mut outputs, keys.list().map(|l| format!("{l:?}")));
    outputs.push(format!("{keys:?}"));

    // ...and everything that fails.
    record(
        &mut outputs,
        keys.generate(AUDIT_HMAC).map(|v| v.to_string()),
    );
    record(
        &mut outputs,
        keys.load(AUDIT_HMAC, 9).map(|s| format!("{s:?}")),
    );
    record(&mut outputs, keys.load("../x", 1).map(|s| format!("{s:?}")));
    let wrong = KeyStore::new(
        FileBackend::new(&dir),
        master(2),
        Some(events.emitter.clone()),
    );
    record(
        &mut outputs,
        wrong.load(AUDIT_HMAC, 1).map(|s| format!("{s:?}")),
    );
    record(&mut outputs, wrong.rotate(POISON).map(|v| v.to_string()));
    let path = dir.join("poison.1.key");
    let good = fs::read(&path).unwrap();
    let mut bad = good.clone();
    bad[60] ^= 4;
    fs::write(&path, &bad).unwrap();
    record(&mut outputs, keys.load(POISON, 1).map(|s| format!("{s:?}")));
    fs::write(&path, &good).unwrap();
    fs::set_permissions(&path, fs::Permissions::from_mode(0o644)).unwrap();
    record(&mut outputs, keys.load(POISON, 1).map(|s| format!("{s:?}")));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o750)).unwrap();
    record(
        &mut outputs,
        keys.load(CHECKPOINT_SIGNING, 1).map(|s| format!("{s:?}")),
    );
    record(&mut outputs, keys.list().map(|l| format!("{l:?}")));
    fs::set_permissions(&dir, fs::Permissions::from_mode(0o700)).unwrap();

    // A key database with a password.
    let mut redis = RedisServer::start_with_password(PASSWORD);
    let url = redis.url();
    let backend = || {
        RedisBackend::from_url(&url)
            .unwrap()
            .timeout(Duration::from_secs(2), Duration::from_secs(2))
    };
    outputs.push(format!("{:?}", backend()));
    outputs.push(backend().describe());
    let rkeys = KeyStore::new(backend(), master(3), Some(events.emitter.clone()));
    for name in STANDARD_KEYS {
        record(&mut outputs, rkeys.generate(name).map(|v| v.to_string()));
    }
    record(&mut outputs, rkeys.rotate(POISON).map(|v| v.to_string()));
    for name in STANDARD_KEYS {
        let (version, secret) = rkeys.load_current(name).unwrap();
        secrets.push(secret.expose().to_vec());
        for v in 1..version {
            secrets.push(rkeys.load(name, v).unwrap().expose().to_vec());
        }
    }
    record(&mut outputs, rkeys.list().map(|l| format!("{l:?}")));
    outputs.push(format!("{rkeys:?}"));
    let wrong_pw = url.replace(PASSWORD, "not-the-password");
    let refused = KeyStore::new(
        RedisBackend::from_url(&wrong_pw).unwrap(),
        master(3),
        Some(events.emitter.clone()),
    );
    record(
        &mut outputs,
        refused.load(AUDIT_HMAC, 1).map(|s| format!("{s:?}")),
    );
    record(
        &mut outputs,
        RedisBackend::from_url(&url.replace("127.0.0.1:", "127.0.0.1:x")).map(|b| format!("{b:?}")),
    );
    redis.stop();
    record(
        &mut outputs,
        rkeys.load(AUDIT_HMAC, 1).map(|s| format!("{s:?}")),
    );
    record(&mut outputs, rkeys.list().map(|l| format!("{l:?}")));

    // Master keys, good and bad.
    for seed in [1, 2, 3] {
        let b64 = master_b64(seed);
        let key =
            MasterKey::from_var_value("VIGIL_MASTER_KEY", Some(b64.into()), Some(&events.emitter));
        record(&mut outputs, key.map(|k| format!("{k:?}")));
    }
    let short = master_b64(4).chars().take(30).collect::<String>();
    record(
        &mut outputs,
        MasterKey::from_var_value(
            "VIGIL_MASTER_KEY",
            Some(short.clone().into()),
            Some(&events.emitter),
        )
        .map(|k| format!("{k:?}")),
    );

    let evs = events.take();
    assert!(evs.len() >= 30, "only {} events", evs.len());
    for kind in [
        "keys.generated",
        "keys.loaded",
        "keys.rotated",
        "keys.not_found",
        "keys.decrypt_failed",
        "keys.bad_permissions",
        "keys.backend_unavailable",
        "keys.master_loaded",
        "keys.master_invalid",
    ] {
        assert!(evs.iter().any(|e| e.kind.name() == kind), "no {kind} event");
    }
    outputs.extend(render(&evs));

    assert_eq!(secrets.len(), 4 + 1 + 4 + 1);
    let mut needles: Vec<String> = secrets.iter().flat_map(|s| encodings(s)).collect();
    for seed in [1, 2, 3, 4] {
        let b64 = master_b64(seed);
        needles.extend(encodings(&STANDARD.decode(&b64).unwrap()));
        needles.push(b64);
    }
    needles.push(short);
    needles.push(PASSWORD.to_owned());
    needles.push("not-the-password".to_owned());
    assert_no_leak(&outputs, &needles);
}
