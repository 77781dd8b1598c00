//! Helpers shared by the keystore's integration tests.

#![allow(dead_code)] // each test file uses some of the helpers
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

use std::time::Duration;

use base64::Engine as _;
use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use vigil_event::{Emitter, Event, Format, Overflow, Receiver};
use vigil_keys::MasterKey;

/// A fresh emitter and what it received.
pub(crate) struct Events {
    pub(crate) emitter: Emitter,
    rx: Receiver,
}

impl Events {
    pub(crate) fn new() -> Events {
        let (emitter, rx) = Emitter::channel(10_000, Overflow::Drop);
        Events { emitter, rx }
    }

    /// Every event emitted since the last call.
    pub(crate) fn take(&self) -> Vec<Event> {
        let mut out = Vec::new();
        while let Some(ev) = self.rx.recv_timeout(Duration::from_millis(1)) {
            out.push(ev.event);
        }
        assert_eq!(self.rx.take_dropped(), 0, "events were dropped");
        out
    }
}

/// The names of `events`, in order.
pub(crate) fn names(events: &[Event]) -> Vec<&'static str> {
    events.iter().map(|e| e.kind.name()).collect()
}

/// The string value of field `key` of `event`.
pub(crate) fn field(event: &Event, key: &str) -> String {
    event
        .field_value(key)
        .map(|v| v.to_string())
        .unwrap_or_else(|| panic!("no field {key} in {event:?}"))
}

/// 32 bytes derived from `seed`, as a master key's base64.
pub(crate) fn master_b64(seed: u8) -> String {
    let bytes: Vec<u8> = (0..32u8)
        .map(|i| i.wrapping_mul(37).wrapping_add(seed))
        .collect();
    STANDARD.encode(bytes)
}

pub(crate) fn master(seed: u8) -> MasterKey {
    MasterKey::from_base64(&master_b64(seed)).unwrap()
}

/// Every way `events` are written out: each event in every format, and its
/// `Debug` form.
pub(crate) fn render(events: &[Event]) -> Vec<String> {
    let mut out = Vec::new();
    for ev in events {
        for name in Format::NAMES {
            let mut line = Vec::new();
            Format::from_name(name).unwrap().write(ev, &mut line);
            out.push(String::from_utf8_lossy(&line).into_owned());
        }
        out.push(format!("{ev:?}"));
    }
    out
}

/// Every text form of `bytes` a leak could take: hex (both cases) and
/// base64 (standard and URL-safe, with and without padding).
pub(crate) fn encodings(bytes: &[u8]) -> Vec<String> {
    let hex: String = bytes.iter().map(|b| format!("{b:02x}")).collect();
    vec![
        hex.to_uppercase(),
        hex,
        STANDARD.encode(bytes),
        STANDARD_NO_PAD.encode(bytes),
        URL_SAFE.encode(bytes),
        URL_SAFE_NO_PAD.encode(bytes),
        format!("{bytes:?}"),
    ]
}

/// Panics if any of `outputs` contains any of `needles`.
pub(crate) fn assert_no_leak(outputs: &[String], needles: &[String]) {
    assert!(!outputs.is_empty());
    for needle in needles {
        assert!(
            needle.len() >= 16,
            "needle too short to be meaningful: {needle}"
        );
        for out in outputs {
            assert!(
                !out.contains(needle.as_str()),
                "secret {needle} leaked in: {out}"
            );
        }
    }
}
