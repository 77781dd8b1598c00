//! The Redis key database backend against a real `redis-server`.

#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod common;

use std::time::Duration;

use common::{Events, field, master, names};
use subtle::ConstantTimeEq;
use vigil_keys::{AUDIT_HMAC, Backend, Error, KeyStore, POISON, RedisBackend, STANDARD_KEYS};
use vigil_testkit::redis::RedisServer;

fn backend(url: &str) -> RedisBackend {
    RedisBackend::from_url(url)
        .unwrap()
        .timeout(Duration::from_secs(2), Duration::from_secs(2))
}

fn store(url: &str, seed: u8, events: &Events) -> KeyStore {
    KeyStore::new(backend(url), master(seed), Some(events.emitter.clone()))
}

#[test]
fn round_trip_list_and_rotate() {
    let redis = RedisServer::start();
    let events = Events::new();
    let keys = store(&redis.url(), 1, &events);
    for name in STANDARD_KEYS {
        assert_eq!(keys.generate(name).unwrap(), 1);
    }
    assert!(matches!(
        keys.generate(AUDIT_HMAC),
        Err(Error::Exists { .. })
    ));
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.generated"; 4]);
    assert_eq!(field(&evs[0], "backend"), "redis");
    assert_eq!(
        field(&evs[0], "location"),
        format!(
            "redis://127.0.0.1:{}/0 key vigil:key:audit-hmac:1",
            redis.port()
        )
    );

    let v1 = keys.load(AUDIT_HMAC, 1).unwrap();
    assert_eq!(keys.rotate(AUDIT_HMAC).unwrap(), 2);
    let (current, v2) = keys.load_current(AUDIT_HMAC).unwrap();
    assert_eq!(current, 2);
    assert!(!bool::from(v1.ct_eq(&v2)));
    // Another store over the same database reads the same keys, old ones too.
    let again = store(&redis.url(), 1, &events);
    assert!(bool::from(again.load(AUDIT_HMAC, 1).unwrap().ct_eq(&v1)));
    assert!(bool::from(again.load(AUDIT_HMAC, 2).unwrap().ct_eq(&v2)));
    let evs = events.take();
    assert_eq!(
        names(&evs),
        [
            "keys.loaded",
            "keys.rotated",
            "keys.loaded",
            "keys.loaded",
            "keys.loaded"
        ]
    );
    assert_eq!(field(&evs[1], "old_version"), "1");
    assert_eq!(field(&evs[1], "new_version"), "2");

    let list = again.list().unwrap();
    let listed: Vec<_> = list
        .iter()
        .map(|k| (k.name.as_str(), k.version, k.backend))
        .collect();
    assert_eq!(
        listed,
        [
            ("audit-hmac", 1, "redis"),
            ("audit-hmac", 2, "redis"),
            ("checkpoint-signing", 1, "redis"),
            ("fingerprint", 1, "redis"),
            ("poison", 1, "redis"),
        ]
    );
}

#[test]
fn databases_and_prefixes_keep_keys_apart() {
    let redis = RedisServer::start();
    let url3 = format!("redis://127.0.0.1:{}/3", redis.port());
    let in_db3 = KeyStore::new(backend(&url3), master(1), None);
    in_db3.generate(POISON).unwrap();
    let in_db0 = KeyStore::new(backend(&redis.url()), master(1), None);
    assert!(in_db0.list().unwrap().is_empty());
    let other = backend(&url3).prefix("other:").unwrap();
    assert!(other.list().unwrap().is_empty());
    assert_eq!(in_db3.list().unwrap().len(), 1);
}

#[test]
fn swapped_tampered_and_missing_values_are_refused() {
    let redis = RedisServer::start();
    let events = Events::new();
    let keys = store(&redis.url(), 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    events.take();
    let raw = backend(&redis.url());
    let envelope = raw.read(AUDIT_HMAC, 1).unwrap().unwrap();
    assert_eq!(envelope.len(), vigil_keys::ENVELOPE_LEN);

    // The audit key's value stored as another key: decrypts under neither name.
    raw.create(POISON, 1, &envelope).unwrap();
    let e = keys.load(POISON, 1).unwrap_err();
    assert!(matches!(e, Error::DecryptFailed { .. }), "{e:?}");
    assert!(e.to_string().contains("vigil:key:poison:1"), "{e}");
    // One flipped bit.
    let mut bad = envelope.clone();
    bad[50] ^= 1;
    raw.create(AUDIT_HMAC, 5, &bad).unwrap();
    assert!(matches!(
        keys.load(AUDIT_HMAC, 5),
        Err(Error::DecryptFailed { .. })
    ));
    // Versions are never overwritten.
    assert!(matches!(
        raw.create(AUDIT_HMAC, 1, &bad),
        Err(Error::Exists { .. })
    ));
    keys.load(AUDIT_HMAC, 1).unwrap();
    // Missing.
    assert!(matches!(
        keys.load(AUDIT_HMAC, 9),
        Err(Error::NotFound {
            version: Some(9),
            ..
        })
    ));
    assert_eq!(
        names(&events.take()),
        [
            "keys.decrypt_failed",
            "keys.decrypt_failed",
            "keys.loaded",
            "keys.not_found"
        ]
    );
    // Wrong master key.
    let e = store(&redis.url(), 2, &events)
        .load(AUDIT_HMAC, 1)
        .unwrap_err();
    assert!(matches!(e, Error::DecryptFailed { .. }), "{e:?}");
}

#[test]
fn passwords_are_sent_and_refusals_are_backend_unavailable() {
    let redis = RedisServer::start_with_password("correct horse");
    let url = format!("redis://:correct%20horse@127.0.0.1:{}/0", redis.port());
    let events = Events::new();
    store(&url, 1, &events).generate(AUDIT_HMAC).unwrap();
    store(&url, 1, &events).load(AUDIT_HMAC, 1).unwrap();
    events.take();

    let wrong = format!("redis://:battery@127.0.0.1:{}/0", redis.port());
    let none = format!("redis://127.0.0.1:{}/0", redis.port());
    for url in [wrong, none] {
        let e = store(&url, 1, &events).load(AUDIT_HMAC, 1).unwrap_err();
        assert!(matches!(e, Error::BackendUnavailable { .. }), "{e:?}");
        let msg = e.to_string();
        assert!(!msg.contains("battery") && !msg.contains("horse"), "{msg}");
        assert!(
            msg.contains(&format!("redis://127.0.0.1:{}/0", redis.port())),
            "{msg}"
        );
    }
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.backend_unavailable"; 2]);
    assert!(
        common::render(&evs)
            .iter()
            .all(|o| !o.contains("battery") && !o.contains("horse"))
    );
}

#[test]
fn a_stopped_server_is_backend_unavailable() {
    let mut redis = RedisServer::start();
    let url = redis.url();
    let events = Events::new();
    let keys = store(&url, 1, &events);
    keys.generate(AUDIT_HMAC).unwrap();
    events.take();
    redis.stop();

    let e = keys.load(AUDIT_HMAC, 1).unwrap_err();
    assert!(matches!(e, Error::BackendUnavailable { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains(&format!("redis://127.0.0.1:{}/0", redis.port())),
        "{msg}"
    );
    assert!(msg.contains("check that Redis is running"), "{msg}");
    assert!(matches!(
        keys.load_current(AUDIT_HMAC),
        Err(Error::BackendUnavailable { .. })
    ));
    assert!(matches!(keys.list(), Err(Error::BackendUnavailable { .. })));
    assert!(matches!(
        keys.generate(POISON),
        Err(Error::BackendUnavailable { .. })
    ));
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.backend_unavailable"; 4]);
    assert_eq!(field(&evs[0], "backend"), "redis");
    assert_eq!(field(&evs[0], "key"), AUDIT_HMAC);
}

#[test]
fn a_server_that_never_answers_times_out() {
    // Accepts connections but never replies.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!(
        "redis://127.0.0.1:{}/0",
        listener.local_addr().unwrap().port()
    );
    let backend = RedisBackend::from_url(&url)
        .unwrap()
        .timeout(Duration::from_secs(1), Duration::from_millis(200));
    let keys = KeyStore::new(backend, master(1), None);
    let started = std::time::Instant::now();
    let e = keys.load(AUDIT_HMAC, 1).unwrap_err();
    assert!(matches!(e, Error::BackendUnavailable { .. }), "{e:?}");
    assert!(
        e.to_string().contains("no answer within the timeout"),
        "{e}"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    drop(listener);
}
