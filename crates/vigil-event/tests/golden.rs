//! Golden tests: each format's output for fixed events, byte for byte.
//!
//! The expected records live in `tests/golden/<case>.<ext>`, one record and
//! a newline per file. After a deliberate format change, regenerate them with
//! `VIGIL_BLESS=1 cargo test -p vigil-event --test golden` and review the diff.

// A failed unwrap in a test is a test failure with a backtrace; that is enough.
#![allow(clippy::unwrap_used)]

use std::path::PathBuf;
use std::sync::Arc;

use vigil_event::{Event, Format, Outcome, Session, SyslogOptions, Timestamp, catalog};

/// Asserts two records are equal; on failure prints both and marks the
/// first differing byte, like ripgrep's `eqnice!`.
macro_rules! eqnice {
    ($path:expr, $expected:expr, $got:expr) => {{
        let (path, expected, got): (&str, &[u8], &[u8]) = ($path, $expected, $got);
        if expected != got {
            let at = expected.iter().zip(got).take_while(|(a, b)| a == b).count();
            let show = |b: &[u8]| String::from_utf8_lossy(b).escape_debug().to_string();
            panic!(
                "\n{path} differs at byte {at}\n\
                 expected: {}\n\
                 got:      {}\n\
                 common prefix ends ...{}\n\
                 expected then: {}\n\
                 got then:      {}\n\
                 (VIGIL_BLESS=1 rewrites the golden files)\n",
                show(expected),
                show(got),
                show(&expected[at.saturating_sub(40)..at]),
                show(&expected[at..(at + 60).min(expected.len())]),
                show(&got[at..(at + 60).min(got.len())]),
            );
        }
    }};
}

/// 2026-11-26T11:19:00.123456Z
const T0: i64 = 1_795_691_940_123_456;

fn statement() -> Event {
    let session = Session {
        id: 42,
        client: Some("10.0.0.5:51234".parse().unwrap()),
        server: Some("10.0.0.1:5432".parse().unwrap()),
        client_identity: Some("CN=billing-7,O=Shop".into()),
        db_user: Some("app".into()),
        database: Some("shop".into()),
        application: Some("billing".into()),
        tls_version: Some("TLSv1.3".into()),
        tls_cipher: Some("TLS_AES_256_GCM_SHA384".into()),
    };
    let mut ev = Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
        .at(Timestamp::from_micros(T0))
        .session(Arc::new(session))
        .fingerprint(0x9f3c_0a51_77e2_b4d8)
        .field(
            "query",
            "SELECT id, total FROM orders WHERE customer_id = $1 AND status = $2",
        )
        .field("class", "read")
        .field("protocol", "extended")
        .field("command_tag", "SELECT 3")
        .field("rows", 3u64)
        .field("duration_us", 1834u64);
    ev.origin = Arc::from("vigil-eu-1");
    ev.seq = 1042;
    ev
}

fn auth_failed() -> Event {
    let session = Session {
        id: 43,
        client: Some("[2001:db8::5]:40022".parse().unwrap()),
        server: Some("10.0.0.1:5432".parse().unwrap()),
        db_user: Some("app".into()),
        database: Some("shop".into()),
        application: Some("psql".into()),
        ..Session::default()
    };
    let mut ev = Event::new(
        catalog::AUTH_FAILED,
        "password authentication failed for user \"app\"",
    )
    .at(Timestamp::from_micros(T0 + 1_000))
    .session(Arc::new(session))
    .field("sqlstate", "28P01")
    .field("method", "scram-sha-256");
    ev.origin = Arc::from("vigil-eu-1");
    ev.seq = 1043;
    ev
}

fn poison() -> Event {
    let session = Session {
        id: 44,
        client: Some("[::ffff:192.0.2.77]:61000".parse().unwrap()),
        server: Some("10.0.0.1:5432".parse().unwrap()),
        client_identity: Some("CN=report-runner".into()),
        db_user: Some("reporting".into()),
        database: Some("shop".into()),
        application: Some("metabase".into()),
        tls_version: Some("TLSv1.2".into()),
        tls_cipher: Some("ECDHE-RSA-AES128-GCM-SHA256".into()),
    };
    let mut ev = Event::new(
        catalog::POISON_ACCESSED,
        "poison record returned to the client",
    )
    .at(Timestamp::from_micros(T0 + 2_000))
    .session(Arc::new(session))
    .fingerprint(0x0000_0000_dead_beef)
    .field("action", "alert")
    .field("column", "customers.email")
    .field("rows", 1u64)
    .field("blocked", false);
    ev.origin = Arc::from("vigil-eu-1");
    ev.seq = 1044;
    ev
}

/// Every character a format must escape, in every place a string goes.
fn hostile() -> Event {
    let nasty = "a|b=c\\d]e\"f\ng\rh\ti\u{1b}[31mj\u{7f}k\u{9b}l\u{202e}m é #012";
    let session = Session {
        id: 45,
        client: Some("192.0.2.9:1".parse().unwrap()),
        server: None,
        client_identity: None,
        db_user: Some(nasty.into()),
        database: Some("".into()),
        application: Some("x] y=\"z\"".into()),
        tls_version: None,
        tls_cipher: None,
    };
    let mut ev = Event::new(catalog::PROTOCOL_VIOLATION, nasty)
        .at(Timestamp::from_micros(T0 + 3_000))
        .severity(vigil_event::Severity::Error)
        .outcome(Outcome::Unknown)
        .session(Arc::new(session))
        .field("msg", "spoofed")
        .field("user", "admin")
        .field("Bad Key=1", nasty)
        .field("", -7i64)
        .field("ok_key", true);
    ev.origin = Arc::from("vigil eu|1");
    ev.seq = 1045;
    ev
}

/// A service event: no session, no fields, empty origin.
fn service() -> Event {
    Event::new(catalog::SERVICE_STARTED, "vigil started")
        .at(Timestamp::from_micros(T0 - 60_000_000))
}

fn formats() -> Vec<(&'static str, Format)> {
    let syslog = SyslogOptions {
        facility: 13,
        hostname: "db-proxy-1".to_owned(),
        app_name: "vigil".to_owned(),
        procid: Some(4242),
        escape_control: true,
    };
    vec![
        ("json", Format::Json),
        ("txt", Format::Text),
        ("cef", Format::Cef),
        ("syslog", Format::Syslog(syslog)),
        ("ocsf", Format::Ocsf),
    ]
}

fn check(case: &str, ev: Event) {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/golden");
    let bless = std::env::var_os("VIGIL_BLESS").is_some();
    for (ext, format) in formats() {
        let mut got = Vec::new();
        format.write(&ev, &mut got);
        got.push(b'\n');
        let path = dir.join(format!("{case}.{ext}"));
        if bless {
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(&path, &got).unwrap();
            continue;
        }
        let expected = std::fs::read(&path)
            .unwrap_or_else(|e| panic!("{}: {e} (VIGIL_BLESS=1 creates it)", path.display()));
        eqnice!(&path.display().to_string(), &expected, &got);
    }
}

#[test]
fn statement_executed() {
    check("statement", statement());
}

#[test]
fn auth_failure() {
    check("auth_failed", auth_failed());
}

#[test]
fn poison_accessed() {
    check("poison", poison());
}

#[test]
fn hostile_strings() {
    check("hostile", hostile());
}

#[test]
fn service_started() {
    check("service", service());
}

/// The golden JSON records read back to the events they came from.
#[test]
fn golden_json_reads_back() {
    for ev in [statement(), auth_failed(), poison(), hostile(), service()] {
        let mut line = Vec::new();
        Format::Json.write(&ev, &mut line);
        assert_eq!(Event::from_json(&line).as_ref(), Ok(&ev));
    }
}
