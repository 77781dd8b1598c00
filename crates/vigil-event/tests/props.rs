//! Property tests: every format, for arbitrary events, reads back to the
//! event's values through a parser that does not share code with the writer.
//!
//! - json: `Event::from_json` gives the event back, and serde_json accepts it;
//! - cef: a CEF parser written here, from the specification;
//! - syslog: the strict `syslog_rfc5424` crate;
//! - text: a `key=value` parser written here;
//! - ocsf: serde_json, checked attribute by attribute.
//!
//! Strings mix every character a format escapes (`|`, `=`, `\`, `]`, `"`,
//! CR, LF, NUL, ESC, DEL, C1 and bidi controls), non-ASCII text, arbitrary
//! Unicode, and now and then values over 64 KiB.

// The parsers below panic on anything malformed, on purpose: a panic is a
// failed test with a backtrace. So unwrap and string slicing are fine here.
#![allow(clippy::unwrap_used, clippy::string_slice)]

use std::borrow::Cow;
use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, SocketAddrV4, SocketAddrV6};
use std::sync::Arc;

use proptest::prelude::*;
use proptest::sample::select;
use serde_json::Value as J;
use vigil_event::{
    Event, Field, Format, Outcome, Session, Severity, SyslogOptions, Timestamp, Value, catalog,
};

// ---------------------------------------------------------------------------
// Strategies

const SPECIAL: &str = r#"[|=\\\]\["\r\n\t\x00\x1b\x7f #%'a-zA-Z0-9_.éß€😀\u{85}\u{9b}\u{202e}\u{2028}\u{feff}:,{}$-]"#;

fn text() -> impl Strategy<Value = String> {
    let short = prop_oneof![
        5 => proptest::string::string_regex(&format!("{SPECIAL}{{0,24}}")).unwrap(),
        2 => proptest::string::string_regex("(?s).{0,16}").unwrap(),
        1 => "[a-z]{1,8}",
    ];
    // About one string in 40 is blown up past 64 KiB.
    (short, 0..40u8).prop_map(|(s, roll)| {
        if roll == 0 && !s.is_empty() {
            s.repeat(65_536 / s.len() + 1)
        } else {
            s
        }
    })
}

fn key() -> impl Strategy<Value = String> {
    prop_oneof![
        3 => "[a-z_][a-z0-9_]{0,10}",
        1 => select(vec!["msg", "user", "code", "action", "seq", "f", "query", "sqlstate", "reason", "key"])
            .prop_map(str::to_owned),
        2 => text(),
    ]
}

fn value() -> impl Strategy<Value = Value> {
    prop_oneof![
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::Int),
        text().prop_map(|s| Value::Str(Cow::Owned(s))),
    ]
}

fn addr() -> impl Strategy<Value = SocketAddr> {
    prop_oneof![
        (any::<[u8; 4]>(), any::<u16>())
            .prop_map(|(ip, port)| SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::from(ip), port))),
        (
            any::<[u16; 8]>(),
            any::<u16>(),
            prop_oneof![Just(0u32), any::<u32>()]
        )
            .prop_map(|(ip, port, scope)| {
                SocketAddr::V6(SocketAddrV6::new(Ipv6Addr::from(ip), port, 0, scope))
            }),
        (any::<[u8; 4]>(), any::<u16>()).prop_map(|(ip, port)| {
            SocketAddr::V6(SocketAddrV6::new(
                Ipv4Addr::from(ip).to_ipv6_mapped(),
                port,
                0,
                0,
            ))
        }),
    ]
}

fn opt_text() -> impl Strategy<Value = Option<Box<str>>> {
    proptest::option::of(text().prop_map(String::into_boxed_str))
}

fn session() -> impl Strategy<Value = Session> {
    (
        any::<u64>(),
        proptest::option::of(addr()),
        proptest::option::of(addr()),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
        opt_text(),
    )
        .prop_map(|(id, client, server, ci, u, d, a, tv, tc)| Session {
            id,
            client,
            server,
            client_identity: ci,
            db_user: u,
            database: d,
            application: a,
            tls_version: tv,
            tls_cipher: tc,
        })
}

fn event() -> impl Strategy<Value = Event> {
    (
        select(catalog::ALL),
        -62_167_219_200_000_000i64..253_402_300_799_999_999,
        text(),
        any::<u64>(),
        select(Severity::ALL.to_vec()),
        select(vec![Outcome::Success, Outcome::Failure, Outcome::Unknown]),
        text(),
        proptest::option::of(session()),
        proptest::option::of(any::<u64>()),
        proptest::collection::vec((key(), value()), 0..6),
    )
        .prop_map(
            |(kind, t, origin, seq, sev, out, msg, session, fp, fields)| {
                let mut ev = Event::new(kind, msg)
                    .at(Timestamp::from_micros(t))
                    .severity(sev)
                    .outcome(out);
                ev.origin = Arc::from(origin);
                ev.seq = seq;
                ev.session = session.map(Arc::new);
                ev.fingerprint = fp;
                ev.fields = fields
                    .into_iter()
                    .map(|(k, v)| Field {
                        key: Cow::Owned(k),
                        value: v,
                    })
                    .collect();
                ev
            },
        )
}

fn render(format: &Format, ev: &Event) -> Vec<u8> {
    let mut out = b"previous record".to_vec();
    format.write(ev, &mut out);
    // `write` appends and leaves what was there alone.
    assert!(out.starts_with(b"previous record"));
    out.split_off("previous record".len())
}

fn value_text(v: &Value) -> String {
    match v {
        Value::Bool(b) => b.to_string(),
        Value::Int(i) => i.to_string(),
        Value::Str(s) => s.to_string(),
    }
}

fn value_json(v: &Value) -> J {
    match v {
        Value::Bool(b) => J::Bool(*b),
        Value::Int(i) => J::from(*i),
        Value::Str(s) => J::String(s.to_string()),
    }
}

fn has_line_break(b: &[u8]) -> bool {
    b.iter().any(|&c| c == b'\n' || c == b'\r')
}

/// True when the JSON text holds no raw control character (C0, DEL, C1).
fn no_raw_controls(b: &[u8]) -> bool {
    !String::from_utf8_lossy(b).chars().any(char::is_control)
}

fn unmapped_ip(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The json/syslog address form: the IP, with `%scope` when scoped.
fn addr_text(a: SocketAddr) -> String {
    match a {
        SocketAddr::V6(v6) if v6.scope_id() != 0 => format!("{}%{}", v6.ip(), v6.scope_id()),
        a => a.ip().to_string(),
    }
}

/// 256 cases, or `PROPTEST_CASES`.
fn config() -> ProptestConfig {
    ProptestConfig::default()
}

// ---------------------------------------------------------------------------
// json

proptest! {
    #![proptest_config(config())]

    #[test]
    fn json_round_trips(ev in event()) {
        let line = render(&Format::Json, &ev);
        prop_assert!(!has_line_break(&line));
        prop_assert!(no_raw_controls(&line));
        let parsed: J = serde_json::from_slice(&line).expect("serde_json rejects the record");
        prop_assert!(parsed.is_object());
        prop_assert_eq!(parsed["message"].as_str(), Some(&*ev.message));
        let back = Event::from_json(&line);
        prop_assert_eq!(back.as_ref(), Ok(&ev));
    }

    /// `read_json` into one reused event gives what `from_json` gives, for
    /// vigil's records, for the same objects written by another JSON writer
    /// (keys sorted, other escapes), and for records with a byte changed.
    #[test]
    fn read_json_into_a_reused_event_is_from_json(
        evs in proptest::collection::vec(event(), 1..6),
        flip in any::<(usize, u8)>(),
    ) {
        let mut reused = Event::new(catalog::ALL[0], "");
        for ev in &evs {
            let line = render(&Format::Json, ev);
            prop_assert_eq!(reused.read_json(&line), Ok(()));
            prop_assert_eq!(&reused, ev);

            let sorted = serde_json::to_vec(&serde_json::from_slice::<J>(&line).unwrap()).unwrap();
            let want = Event::from_json(&sorted);
            prop_assert_eq!(reused.read_json(&sorted).map(|()| reused.clone()), want);

            let mut changed = line.clone();
            let at = flip.0 % changed.len();
            changed[at] ^= flip.1.max(1);
            let want = Event::from_json(&changed);
            let got = reused.read_json(&changed);
            match want {
                Ok(want) => {
                    prop_assert_eq!(got, Ok(()));
                    if !changed.windows(7).any(|w| w == b"\"time\":") {
                        // Without a time both take "now", a moment apart.
                        reused.time = want.time;
                    }
                    prop_assert_eq!(&reused, &want);
                }
                Err(e) => prop_assert_eq!(got, Err(e)),
            }
        }
    }
}

// ---------------------------------------------------------------------------
// cef

/// Splits a CEF line into its seven header fields and its extension pairs,
/// unescaping both, as the CEF specification describes. Panics on anything
/// the specification does not allow.
fn parse_cef(line: &str) -> (Vec<String>, Vec<(String, String)>) {
    let mut header = Vec::new();
    let mut cur = String::new();
    let mut chars = line.char_indices();
    let mut ext_start = line.len();
    while let Some((i, c)) = chars.next() {
        match c {
            '\\' => match chars.next() {
                Some((_, e @ ('\\' | '|'))) => cur.push(e),
                other => panic!("bad header escape {other:?} in {line:?}"),
            },
            '|' => {
                header.push(std::mem::take(&mut cur));
                if header.len() == 7 {
                    ext_start = i + 1;
                    break;
                }
            }
            '\r' | '\n' => panic!("line break in the header"),
            c => cur.push(c),
        }
    }
    assert_eq!(header.len(), 7, "header of {line:?}");
    let ext = &line[ext_start..];
    assert!(
        !ext.ends_with(' ') && !ext.starts_with(' '),
        "stray space in {ext:?}"
    );

    // Every unescaped '=' ends a key; the key runs back to the last space.
    let mut eqs = Vec::new();
    let mut escaped = false;
    for (i, c) in ext.char_indices() {
        if escaped {
            escaped = false;
        } else if c == '\\' {
            escaped = true;
        } else if c == '=' {
            eqs.push(i);
        }
    }
    let keys: Vec<(usize, usize)> = eqs
        .iter()
        .map(|&e| {
            let ks = ext[..e].rfind(' ').map_or(0, |p| p + 1);
            let k = &ext[ks..e];
            assert!(
                !k.is_empty() && k.bytes().all(|b| b.is_ascii_alphanumeric()),
                "key {k:?}"
            );
            (ks, e)
        })
        .collect();
    let mut pairs = Vec::new();
    for (n, &(ks, e)) in keys.iter().enumerate() {
        let end = match keys.get(n + 1) {
            Some(&(next, _)) => next - 1,
            None => ext.len(),
        };
        let mut v = String::new();
        let mut it = ext[e + 1..end].chars();
        while let Some(c) = it.next() {
            if c == '\\' {
                v.push(match it.next() {
                    Some('\\') => '\\',
                    Some('=') => '=',
                    Some('n') => '\n',
                    Some('r') => '\r',
                    other => panic!("bad extension escape {other:?}"),
                });
            } else {
                v.push(c);
            }
        }
        pairs.push((ext[ks..e].to_owned(), v));
    }
    (header, pairs)
}

fn expected_cef(ev: &Event) -> (BTreeMap<String, String>, Option<J>) {
    let mut m = BTreeMap::new();
    let mut put = |k: &str, v: String| {
        m.insert(k.to_owned(), v);
    };
    put("rt", ev.time.as_millis().to_string());
    put("outcome", ev.outcome.as_str().to_owned());
    put("cat", ev.kind.category().as_str().to_owned());
    if let Some(s) = &ev.session {
        for (a, v4, v6, label, port, lv) in [
            (
                s.client,
                "src",
                "c6a2",
                "c6a2Label",
                "spt",
                "Source IPv6 Address",
            ),
            (
                s.server,
                "dst",
                "c6a3",
                "c6a3Label",
                "dpt",
                "Destination IPv6 Address",
            ),
        ] {
            if let Some(a) = a {
                match unmapped_ip(a.ip()) {
                    ip @ IpAddr::V4(_) => put(v4, ip.to_string()),
                    ip => {
                        put(v6, ip.to_string());
                        put(label, lv.to_owned());
                    }
                }
                put(port, a.port().to_string());
            }
        }
        for (k, v) in [
            ("suser", &s.client_identity),
            ("duser", &s.db_user),
            ("cs1", &s.database),
            ("cs2", &s.application),
            ("cs3", &s.tls_version),
            ("cs4", &s.tls_cipher),
        ] {
            if let Some(v) = v.as_deref().filter(|v| !v.is_empty()) {
                put(k, v.to_owned());
            }
        }
        for (k, l, v) in [
            ("cs1", "cs1Label", "database"),
            ("cs2", "cs2Label", "application"),
            ("cs3", "cs3Label", "tlsVersion"),
            ("cs4", "cs4Label", "tlsCipher"),
        ] {
            if m_has(&ev.session, k) {
                put(l, v.to_owned());
            }
        }
        put("cn1", s.id.to_string());
        put("cn1Label", "sessionId".to_owned());
    }
    let action = ev.fields.iter().position(|f| f.key == "action");
    if let Some(i) = action {
        let v = value_text(&ev.fields[i].value);
        if !v.is_empty() {
            put("act", v);
        }
    }
    if !ev.message.is_empty() {
        put("msg", ev.message.to_string());
    }
    if let Some(fp) = ev.fingerprint {
        put("cs5", format!("{fp:016x}"));
        put("cs5Label", "fingerprint".to_owned());
    }
    let rest: Vec<&Field> = ev
        .fields
        .iter()
        .enumerate()
        .filter(|(i, _)| Some(*i) != action)
        .map(|(_, f)| f)
        .collect();
    let cs6 = if rest.is_empty() {
        None
    } else {
        put("cs6Label", "fields".to_owned());
        let mut obj = serde_json::Map::new();
        for f in rest {
            obj.insert(f.key.to_string(), value_json(&f.value));
        }
        Some(J::Object(obj))
    };
    if !ev.origin.is_empty() {
        put("deviceExternalId", ev.origin.to_string());
    }
    put("externalId", ev.seq.to_string());
    (m, cs6)
}

/// True when the session has a non-empty value for CEF key `k`.
fn m_has(s: &Option<Arc<Session>>, k: &str) -> bool {
    let Some(s) = s else { return false };
    let v = match k {
        "cs1" => &s.database,
        "cs2" => &s.application,
        "cs3" => &s.tls_version,
        _ => &s.tls_cipher,
    };
    v.as_deref().is_some_and(|v| !v.is_empty())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn cef_reads_back(ev in event()) {
        let line = render(&Format::Cef, &ev);
        prop_assert!(!has_line_break(&line));
        let line = String::from_utf8(line).expect("CEF line is UTF-8");
        let (header, pairs) = parse_cef(&line);
        let expected_header = [
            "CEF:0".to_owned(),
            "vigil".to_owned(),
            "vigil".to_owned(),
            env!("CARGO_PKG_VERSION").to_owned(),
            ev.kind.code().to_string(),
            ev.kind.name().to_owned(),
            ev.severity.cef().to_string(),
        ];
        prop_assert_eq!(&header[..], &expected_header[..]);
        prop_assert_eq!(pairs.last().map(|p| p.0.as_str()), Some("externalId"));
        let mut got: BTreeMap<String, String> = BTreeMap::new();
        for (k, v) in pairs {
            prop_assert!(got.insert(k.clone(), v).is_none(), "key {} twice", k);
        }
        let cs6 = got.remove("cs6").map(|s| serde_json::from_str::<J>(&s).expect("cs6 is JSON"));
        let (want, want_cs6) = expected_cef(&ev);
        prop_assert_eq!(got, want);
        prop_assert_eq!(cs6, want_cs6);
    }
}

// ---------------------------------------------------------------------------
// syslog

/// The documented PARAM-NAME rule: bytes 33–126 except `=` `]` `"` kept,
/// others `_`, at most 32 bytes, empty is `_`.
fn param_name(k: &str) -> String {
    if k.is_empty() {
        return "_".to_owned();
    }
    k.bytes()
        .take(32)
        .map(|b| {
            if (33..=126).contains(&b) && !b"=]\"".contains(&b) {
                char::from(b)
            } else {
                '_'
            }
        })
        .collect()
}

/// rsyslog's control-character escaping, `#` and three octal digits.
fn octal_escaped(s: &str) -> String {
    let mut o = String::new();
    for c in s.chars() {
        if (c as u32) < 0x20 || c == '\u{7f}' {
            o.push_str(&format!("#{:03o}", c as u32));
        } else {
            o.push(c);
        }
    }
    o
}

/// Checks RFC 5424's PARAM-VALUE rule that `syslog_rfc5424` does not: inside
/// a value, `"`, `\\` and `]` appear only escaped, and a backslash escapes
/// only those three.
fn strict_sd_escapes(line: &str) {
    let sd = &line[line.find(" [").expect("structured data") + 1..];
    let b = sd.as_bytes();
    let mut i = 0;
    let mut in_value = false;
    while i < b.len() {
        match (in_value, b[i]) {
            (false, b' ') if b.get(i + 1) != Some(&b'[') && b[i - 1] == b']' => return,
            (false, b'"') => in_value = true,
            (true, b'"') => in_value = false,
            (true, b'\\') => {
                assert!(
                    matches!(b.get(i + 1), Some(b'"' | b'\\' | b']')),
                    "bad escape at {i} in {sd:?}"
                );
                i += 1;
            }
            (true, b']') => panic!("unescaped ] in a PARAM-VALUE at {i}"),
            _ => {}
        }
        i += 1;
    }
}

fn check_syslog(ev: &Event, facility: u8, escape_control: bool) -> Result<(), TestCaseError> {
    let opts = SyslogOptions {
        facility,
        hostname: "db-proxy-1".to_owned(),
        app_name: "vigil".to_owned(),
        procid: Some(4242),
        escape_control,
    };
    let line = render(&Format::Syslog(opts), ev);
    if escape_control {
        prop_assert!(
            line.iter().all(|&b| b >= 0x20 && b != 0x7f),
            "control byte in {:?}",
            String::from_utf8_lossy(&line)
        );
    }
    let v = |s: &str| {
        if escape_control {
            octal_escaped(s)
        } else {
            s.to_owned()
        }
    };
    let line = String::from_utf8(line).expect("syslog line is UTF-8");
    strict_sd_escapes(&line);
    let msg = syslog_rfc5424::parse_message(&line)
        .map_err(|e| TestCaseError::fail(format!("syslog_rfc5424: {e} in {line:?}")))?;
    prop_assert_eq!(msg.severity as u8, ev.severity.syslog());
    prop_assert_eq!(msg.facility as u8, facility);
    prop_assert_eq!(msg.version, 1);
    prop_assert_eq!(
        msg.timestamp,
        Some(ev.time.as_micros().div_euclid(1_000_000))
    );
    prop_assert_eq!(
        msg.timestamp_nanos,
        Some(ev.time.as_micros().rem_euclid(1_000_000) as u32 * 1000)
    );
    prop_assert_eq!(msg.hostname.as_deref(), Some("db-proxy-1"));
    prop_assert_eq!(msg.appname.as_deref(), Some("vigil"));
    prop_assert_eq!(msg.procid, Some(syslog_rfc5424::message::ProcId::PID(4242)));
    prop_assert_eq!(msg.msgid.as_deref(), Some(ev.kind.name()));
    // The crate keeps the BOM as part of MSG (RFC 5424 makes it part of
    // MSG-UTF8), so strip it before comparing.
    let body = msg
        .msg
        .strip_prefix('\u{feff}')
        .expect("MSG starts with a BOM");
    prop_assert_eq!(body, v(&ev.message));

    let mut want: BTreeMap<String, String> = BTreeMap::new();
    let mut put = |k: &str, val: String| {
        want.insert(k.to_owned(), val);
    };
    put("code", ev.kind.code().to_string());
    put("seq", ev.seq.to_string());
    put("origin", v(&ev.origin));
    put("category", ev.kind.category().as_str().to_owned());
    put("severity", ev.severity.as_str().to_owned());
    put("outcome", ev.outcome.as_str().to_owned());
    if let Some(s) = &ev.session {
        put("session_id", s.id.to_string());
        for (ak, pk, a) in [
            ("client_addr", "client_port", s.client),
            ("server_addr", "server_port", s.server),
        ] {
            if let Some(a) = a {
                put(ak, addr_text(a));
                put(pk, a.port().to_string());
            }
        }
        for (k, val) in [
            ("client_identity", &s.client_identity),
            ("db_user", &s.db_user),
            ("database", &s.database),
            ("application", &s.application),
            ("tls_version", &s.tls_version),
            ("tls_cipher", &s.tls_cipher),
        ] {
            if let Some(val) = val {
                put(k, v(val));
            }
        }
    }
    if let Some(fp) = ev.fingerprint {
        put("fingerprint", format!("{fp:016x}"));
    }
    prop_assert_eq!(msg.sd.get("vigil@32473"), Some(&want));

    // Repeated names collapse in the crate's map, last one winning.
    let mut fields = BTreeMap::new();
    for f in &ev.fields {
        let val = match &f.value {
            Value::Str(s) => v(s),
            other => value_text(other),
        };
        fields.insert(param_name(&f.key), val);
    }
    prop_assert_eq!(
        msg.sd.get("fields@32473"),
        if ev.fields.is_empty() {
            None
        } else {
            Some(&fields)
        }
    );
    prop_assert_eq!(msg.sd.len(), 1 + usize::from(!ev.fields.is_empty()));
    Ok(())
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn syslog_reads_back_exactly(ev in event(), facility in 0u8..=23) {
        check_syslog(&ev, facility, false)?;
    }

    #[test]
    fn syslog_escaped_is_one_line_and_reads_back(ev in event(), facility in 0u8..=23) {
        check_syslog(&ev, facility, true)?;
    }
}

// ---------------------------------------------------------------------------
// text

const TEXT_RESERVED: [&str; 18] = [
    "time",
    "severity",
    "name",
    "code",
    "origin",
    "seq",
    "outcome",
    "session",
    "client",
    "server",
    "identity",
    "user",
    "db",
    "app",
    "tls",
    "cipher",
    "fingerprint",
    "msg",
];

fn plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !TEXT_RESERVED.contains(&k)
}

/// Reads a possibly quoted token starting at `s[*i]`, up to `stop` when bare.
fn text_token(s: &[u8], i: &mut usize, stop: u8) -> String {
    if s.get(*i) != Some(&b'"') {
        let start = *i;
        while *i < s.len() && s[*i] != stop {
            assert!(!matches!(s[*i], b'"' | b'\\'), "unquoted special at {}", *i);
            *i += 1;
        }
        return String::from_utf8(s[start..*i].to_vec()).expect("UTF-8");
    }
    *i += 1;
    let mut out = Vec::new();
    loop {
        let c = s[*i];
        *i += 1;
        match c {
            b'"' => break,
            b'\\' => {
                let e = s[*i];
                *i += 1;
                match e {
                    b'"' => out.push(b'"'),
                    b'\\' => out.push(b'\\'),
                    b'n' => out.push(b'\n'),
                    b'r' => out.push(b'\r'),
                    b't' => out.push(b'\t'),
                    b'x' => {
                        let hex = std::str::from_utf8(&s[*i..*i + 2]).expect("hex");
                        out.push(u8::from_str_radix(hex, 16).expect("hex"));
                        *i += 2;
                    }
                    other => panic!("bad escape \\{}", char::from(other)),
                }
            }
            c => out.push(c),
        }
    }
    String::from_utf8(out).expect("UTF-8 after unescaping")
}

/// (positional tokens, [(key, written with f., value)]).
fn parse_text(line: &str) -> (Vec<String>, Vec<(String, bool, String)>) {
    let s = line.as_bytes();
    let mut pos = Vec::new();
    let mut i = 0;
    for _ in 0..3 {
        let start = i;
        while s[i] != b' ' {
            i += 1;
        }
        pos.push(line[start..i].to_owned());
        i += 1;
    }
    let mut pairs = Vec::new();
    while i < s.len() {
        let prefixed = s[i..].starts_with(b"f.");
        if prefixed {
            i += 2;
        }
        let key = text_token(s, &mut i, b'=');
        if !prefixed {
            assert!(
                !key.is_empty()
                    && key
                        .bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
            );
        }
        assert_eq!(s[i], b'=', "no = after key {key:?}");
        i += 1;
        let value = text_token(s, &mut i, b' ');
        pairs.push((key, prefixed, value));
        if i < s.len() {
            assert_eq!(s[i], b' ');
            i += 1;
            assert!(i < s.len(), "trailing space");
        }
    }
    (pos, pairs)
}

fn terminal_safe(line: &str) -> bool {
    line.chars().all(|c| {
        !(c.is_control()
            || matches!(c, '\u{61c}' | '\u{200e}' | '\u{200f}' | '\u{2028}'..='\u{202e}' | '\u{2066}'..='\u{2069}'))
    })
}

proptest! {
    #![proptest_config(config())]

    #[test]
    fn text_is_terminal_safe_and_reads_back(ev in event()) {
        let line = String::from_utf8(render(&Format::Text, &ev)).expect("UTF-8");
        prop_assert!(terminal_safe(&line), "unsafe character in {:?}", line);
        let (pos, pairs) = parse_text(&line);
        prop_assert_eq!(pos, vec![ev.time.to_string(), ev.severity.as_str().to_owned(), ev.kind.name().to_owned()]);

        let mut want: Vec<(String, bool, String)> = Vec::new();
        let mut top = |k: &str, v: String| want.push((k.to_owned(), false, v));
        top("code", ev.kind.code().to_string());
        if !ev.origin.is_empty() {
            top("origin", ev.origin.to_string());
        }
        top("seq", ev.seq.to_string());
        if ev.outcome != ev.kind.def().outcome {
            top("outcome", ev.outcome.as_str().to_owned());
        }
        if let Some(s) = &ev.session {
            top("session", s.id.to_string());
            if let Some(a) = s.client {
                top("client", a.to_string());
            }
            if let Some(a) = s.server {
                top("server", a.to_string());
            }
            for (k, v) in [
                ("identity", &s.client_identity),
                ("user", &s.db_user),
                ("db", &s.database),
                ("app", &s.application),
                ("tls", &s.tls_version),
                ("cipher", &s.tls_cipher),
            ] {
                if let Some(v) = v {
                    top(k, v.to_string());
                }
            }
        }
        if let Some(fp) = ev.fingerprint {
            top("fingerprint", format!("{fp:016x}"));
        }
        top("msg", ev.message.to_string());
        for f in &ev.fields {
            want.push((f.key.to_string(), !plain_key(&f.key), value_text(&f.value)));
        }
        prop_assert_eq!(pairs, want);
    }
}

// ---------------------------------------------------------------------------
// ocsf

proptest! {
    #![proptest_config(config())]

    #[test]
    fn ocsf_is_valid_json_with_the_right_attributes(ev in event()) {
        let line = render(&Format::Ocsf, &ev);
        prop_assert!(!has_line_break(&line));
        prop_assert!(no_raw_controls(&line));
        let o: J = serde_json::from_slice(&line).expect("serde_json rejects the record");
        let d = ev.kind.def().ocsf;
        prop_assert_eq!(o["class_uid"].as_u64(), Some(u64::from(d.class_uid)));
        prop_assert_eq!(o["activity_id"].as_u64(), Some(u64::from(d.activity_id)));
        prop_assert_eq!(o["category_uid"].as_u64(), Some(u64::from(d.class_uid / 1000)));
        prop_assert_eq!(o["type_uid"].as_u64(), Some(u64::from(d.class_uid) * 100 + u64::from(d.activity_id)));
        prop_assert_eq!(o["severity_id"].as_u64(), Some(u64::from(ev.severity.ocsf())));
        prop_assert_eq!(o["time"].as_i64(), Some(ev.time.as_millis()));
        let status = match (d.class_uid, ev.outcome) {
            (2004, _) => 1,
            (_, Outcome::Success) => 1,
            (_, Outcome::Failure) => 2,
            (_, Outcome::Unknown) => 0,
        };
        prop_assert_eq!(o["status_id"].as_u64(), Some(status));
        prop_assert_eq!(o["message"].as_str(), Some(&*ev.message));
        let m = &o["metadata"];
        prop_assert_eq!(m["version"].as_str(), Some("1.3.0"));
        prop_assert_eq!(m["uid"].as_str().map(str::to_owned), Some(format!("{}:{}", ev.origin, ev.seq)));
        prop_assert_eq!(m["sequence"].as_u64(), Some(ev.seq));
        prop_assert_eq!(m["event_code"].as_str().map(str::to_owned), Some(ev.kind.code().to_string()));
        prop_assert_eq!(m["log_name"].as_str(), Some(ev.kind.name()));
        if let Some(s) = &ev.session {
            prop_assert_eq!(o["unmapped"]["session_id"].as_u64(), Some(s.id));
        }
        if let Some(fp) = ev.fingerprint {
            prop_assert_eq!(o["unmapped"]["fingerprint"].as_str().map(str::to_owned), Some(format!("{fp:016x}")));
        }
        // Every free field is somewhere: in unmapped.fields or a mapped attribute.
        let unmapped = o["unmapped"]["fields"].as_object().cloned().unwrap_or_default();
        for f in &ev.fields {
            let mapped = matches!(&*f.key, "sqlstate" | "reason" | "query" | "key")
                && matches!(f.value, Value::Str(_));
            prop_assert!(mapped || unmapped.contains_key(&*f.key), "field {:?} lost", f.key);
        }
    }
}

#[test]
fn text_keeps_injected_keys_apart() {
    let ev = Event::new(catalog::AUTH_FAILED, "x user=root")
        .field("user", "root")
        .field("msg", "fake")
        .field("a b", "c")
        .field("ok", "x\" user=\"root");
    let line = String::from_utf8(render(&Format::Text, &ev)).unwrap();
    let (_, pairs) = parse_text(&line);
    let top: Vec<&str> = pairs
        .iter()
        .filter(|p| !p.1)
        .map(|p| p.0.as_str())
        .collect();
    assert_eq!(top, ["code", "seq", "msg", "ok"], "{line}");
    assert!(
        line.ends_with(
            r#"msg="x user=root" f.user=root f.msg=fake f."a b"=c ok="x\" user=\"root""#
        ),
        "{line}"
    );
}
