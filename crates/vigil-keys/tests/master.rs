//! The master key: from the environment, its refusals and their events.

#![allow(clippy::unwrap_used, clippy::string_slice)] // tests may panic

mod common;

use common::{Events, field, master_b64, names};
use vigil_event::Severity;
use vigil_keys::{Error, MasterKey};

const VAR: &str = "VIGIL_TEST_MASTER_KEY";

#[test]
fn a_missing_variable_is_master_missing() {
    let events = Events::new();
    // Assumed unset: no one sets a variable by this name.
    let e =
        MasterKey::from_var("VIGIL_TEST_NO_SUCH_VARIABLE_8c1f", Some(&events.emitter)).unwrap_err();
    assert!(matches!(e, Error::MasterMissing { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("VIGIL_TEST_NO_SUCH_VARIABLE_8c1f"), "{msg}");
    assert!(msg.contains("head -c 32 /dev/urandom | base64"), "{msg}");
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.master_missing"]);
    assert_eq!(
        field(&evs[0], "variable"),
        "VIGIL_TEST_NO_SUCH_VARIABLE_8c1f"
    );
    assert_eq!(evs[0].severity, Severity::Critical);

    for blank in ["", " \n\t"] {
        let e = MasterKey::from_var_value(VAR, Some(blank.into()), Some(&events.emitter));
        assert!(
            matches!(e, Err(Error::MasterMissing { .. })),
            "{blank:?}: {e:?}"
        );
    }
    assert_eq!(names(&events.take()), ["keys.master_missing"; 2]);
}

#[test]
fn a_short_key_says_its_length_and_how_to_make_one() {
    let events = Events::new();
    let short = "c2l4dGVlbiBieXRlIGtleQ=="; // 16 bytes
    let e = MasterKey::from_var_value(VAR, Some(short.into()), Some(&events.emitter)).unwrap_err();
    assert!(matches!(e, Error::MasterInvalid { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(
        msg.contains("decodes to 16 bytes") && msg.contains("32 bytes are needed"),
        "{msg}"
    );
    assert!(msg.contains("head -c 32 /dev/urandom | base64"), "{msg}");
    assert!(msg.contains(VAR), "{msg}");
    assert!(!msg.contains(short), "{msg}");
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.master_invalid"]);
    assert_eq!(
        field(&evs[0], "reason"),
        "decodes to 16 bytes, but 32 bytes are needed"
    );
    assert_eq!(field(&evs[0], "variable"), VAR);
    assert!(common::render(&evs).iter().all(|out| !out.contains(short)));

    use base64::Engine as _;
    let long = base64::engine::general_purpose::STANDARD.encode([7u8; 35]);
    let e = MasterKey::from_var_value(VAR, Some(long.into()), None).unwrap_err();
    assert!(e.to_string().contains("decodes to 35 bytes"), "{e}");
}

#[test]
fn non_base64_is_master_invalid_without_repeating_it() {
    let events = Events::new();
    let value = "this is not base64 at all, is it?";
    let e = MasterKey::from_var_value(VAR, Some(value.into()), Some(&events.emitter)).unwrap_err();
    assert!(matches!(e, Error::MasterInvalid { .. }), "{e:?}");
    let msg = e.to_string();
    assert!(msg.contains("not standard base64"), "{msg}");
    assert!(!msg.contains("base64 at all"), "{msg}");
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.master_invalid"]);
    assert!(common::render(&evs).iter().all(|out| !out.contains(value)));

    // URL-safe base64 is not the standard alphabet.
    let url_safe = master_b64(0xfb).replace('+', "-").replace('/', "_");
    assert_ne!(url_safe, master_b64(0xfb));
    assert!(MasterKey::from_base64(&url_safe).is_err());
}

#[test]
fn a_good_key_is_loaded_and_reported_without_its_value() {
    let events = Events::new();
    let b64 = master_b64(7);
    let key = MasterKey::from_var_value(
        VAR,
        Some(format!("  {b64}\n").into()),
        Some(&events.emitter),
    )
    .unwrap();
    assert_eq!(format!("{key:?}"), "MasterKey(<redacted>)");
    let evs = events.take();
    assert_eq!(names(&evs), ["keys.master_loaded"]);
    assert_eq!(field(&evs[0], "source"), "env");
    assert_eq!(field(&evs[0], "variable"), VAR);
    common::assert_no_leak(&common::render(&evs), &[b64]);
}
