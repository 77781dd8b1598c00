//! The `json` format, and [`Event::from_json`] to read it back.
//!
//! # Format
//!
//! One JSON object (RFC 8259, UTF-8) per event, keys in this order:
//!
//! ```text
//! time      string  RFC 3339, microseconds, Z        always
//! origin    string  the emitting vigil instance      always ("" before the pipeline)
//! seq       number  position in the origin's stream  always (0 before the pipeline)
//! code      number  catalog code                     always
//! name      string  catalog name                     always
//! category  string  catalog category                 always
//! severity  string  debug .. alert                   always
//! outcome   string  success | failure | unknown      always
//! message   string                                   always
//! session_id, client_addr, client_port, server_addr, server_port,
//! client_identity, db_user, database, application, tls_version, tls_cipher
//!                                                    when the event has a session
//!                                                    and the value is known
//! fingerprint  string  16 lower-case hex digits      when set
//! fields    object  the free fields, in order        when there are any
//! ```
//!
//! `client_addr`/`server_addr` hold the IP address alone (`fe80::1%3` for a
//! scoped IPv6 address), the ports are numbers. Free-field values are JSON
//! booleans, integers or strings; free fields live only inside `fields`, so
//! none can shadow a top-level key. Strings escape `"` and `\`, write LF, CR
//! and tab as `\n`, `\r`, `\t` and every other control character (U+0000–
//! U+001F, U+007F–U+009F) as `\u00XX`: a record never contains a raw CR or LF.

use std::borrow::Cow;
use std::cell::RefCell;
use std::net::{IpAddr, Ipv6Addr, SocketAddr, SocketAddrV6};
use std::sync::Arc;

use super::util::{
    escape, is_c1_at, push_addr, push_hex2, push_hex16, push_i64, push_u64, swar, table,
};
use crate::catalog::Kind;
use crate::event::{Event, Field, Outcome, Session, Severity, Value};
use crate::time::Timestamp;

pub(super) fn write(ev: &Event, out: &mut Vec<u8>) {
    out.reserve(256 + ev.message.len());
    out.extend_from_slice(b"{\"time\":\"");
    ev.time.write_rfc3339(out);
    out.extend_from_slice(b"\",\"origin\":");
    write_str(out, &ev.origin);
    out.extend_from_slice(b",\"seq\":");
    push_u64(out, ev.seq);
    out.extend_from_slice(b",\"code\":");
    push_u64(out, u64::from(ev.kind.code()));
    // Catalog names, categories, severities and outcomes are [a-z0-9._].
    out.extend_from_slice(b",\"name\":\"");
    out.extend_from_slice(ev.kind.name().as_bytes());
    out.extend_from_slice(b"\",\"category\":\"");
    out.extend_from_slice(ev.kind.category().as_str().as_bytes());
    out.extend_from_slice(b"\",\"severity\":\"");
    out.extend_from_slice(ev.severity.as_str().as_bytes());
    out.extend_from_slice(b"\",\"outcome\":\"");
    out.extend_from_slice(ev.outcome.as_str().as_bytes());
    out.extend_from_slice(b"\",\"message\":");
    write_str(out, &ev.message);
    if let Some(s) = &ev.session {
        // Uncached while the thread's cache is gone (in a thread-local
        // destructor).
        let cached = SESSIONS
            .try_with(|cache| {
                cache
                    .try_borrow_mut()
                    .map(|mut cache| cache.write(out, s))
                    .is_ok()
            })
            .unwrap_or(false);
        if !cached {
            write_session(out, s);
        }
    }
    if let Some(fp) = ev.fingerprint {
        out.extend_from_slice(b",\"fingerprint\":\"");
        push_hex16(out, fp);
        out.push(b'"');
    }
    if !ev.fields.is_empty() {
        out.extend_from_slice(b",\"fields\":");
        write_fields::<false>(out, ev.fields.iter());
    }
    out.push(b'}');
}

thread_local! {
    static SESSIONS: RefCell<SessionCache> = const { RefCell::new(SessionCache::new()) };
}

/// Sessions written last on this thread, with their bytes: a session's
/// fields are the same in every one of its events, and a busy proxy's
/// events come from a few sessions at a time. Each entry holds its
/// session's `Arc`, so that no other session can take its address while it
/// is the key.
struct SessionCache {
    entries: Vec<(Arc<Session>, Vec<u8>)>,
    /// The entry to replace next.
    next: usize,
}

impl SessionCache {
    const SIZE: usize = 8;

    const fn new() -> SessionCache {
        SessionCache {
            entries: Vec::new(),
            next: 0,
        }
    }

    /// [`write_session`], from the cache when `s` is in it.
    fn write(&mut self, out: &mut Vec<u8>, s: &Arc<Session>) {
        if let Some((_, bytes)) = self.entries.iter().find(|(c, _)| Arc::ptr_eq(c, s)) {
            out.extend_from_slice(bytes);
            return;
        }
        let at = out.len();
        write_session(out, s);
        let written = out.get(at..).unwrap_or_default();
        if self.entries.len() < Self::SIZE {
            self.entries.push((Arc::clone(s), written.to_vec()));
        } else if let Some((session, bytes)) = self.entries.get_mut(self.next) {
            *session = Arc::clone(s);
            bytes.clear();
            bytes.extend_from_slice(written);
            self.next = (self.next + 1) % Self::SIZE;
        }
    }
}

/// Appends `,"session_id":..` and every known session value.
fn write_session(out: &mut Vec<u8>, s: &Session) {
    out.extend_from_slice(b",\"session_id\":");
    push_u64(out, s.id);
    for (addr, port, a) in [
        (
            &b",\"client_addr\":\""[..],
            &b",\"client_port\":"[..],
            s.client,
        ),
        (b",\"server_addr\":\"", b",\"server_port\":", s.server),
    ] {
        if let Some(a) = a {
            out.extend_from_slice(addr);
            push_addr(out, a);
            out.push(b'"');
            out.extend_from_slice(port);
            push_u64(out, u64::from(a.port()));
        }
    }
    for (key, v) in session_strings(s) {
        if let Some(v) = v {
            out.extend_from_slice(b",\"");
            out.extend_from_slice(key.as_bytes());
            out.extend_from_slice(b"\":");
            write_str(out, v);
        }
    }
}

/// The string-valued session fields with their json/syslog names, in order.
pub(super) fn session_strings(s: &Session) -> [(&'static str, Option<&str>); 6] {
    [
        ("client_identity", s.client_identity.as_deref()),
        ("db_user", s.db_user.as_deref()),
        ("database", s.database.as_deref()),
        ("application", s.application.as_deref()),
        ("tls_version", s.tls_version.as_deref()),
        ("tls_cipher", s.tls_cipher.as_deref()),
    ]
}

/// Appends the free fields as a JSON object, keys in order. With `CEF`, the
/// object is also CEF-extension-escaped (for `cs6`).
pub(super) fn write_fields<'a, const CEF: bool>(
    out: &mut Vec<u8>,
    fields: impl Iterator<Item = &'a Field>,
) {
    out.push(b'{');
    for (i, f) in fields.enumerate() {
        if i > 0 {
            out.push(b',');
        }
        write_str_mode::<CEF>(out, &f.key);
        out.push(b':');
        write_value::<CEF>(out, &f.value);
    }
    out.push(b'}');
}

/// Appends a free-field value as a JSON boolean, integer or string.
pub(super) fn write_value<const CEF: bool>(out: &mut Vec<u8>, v: &Value) {
    match v {
        Value::Bool(true) => out.extend_from_slice(b"true"),
        Value::Bool(false) => out.extend_from_slice(b"false"),
        Value::Int(i) => push_i64(out, *i),
        Value::Str(s) => write_str_mode::<CEF>(out, s),
    }
}

/// Appends `s` as a JSON string, quotes included.
#[inline]
pub(super) fn write_str(out: &mut Vec<u8>, s: &str) {
    write_str_mode::<false>(out, s);
}

static JSON_SPECIAL: [bool; 256] =
    table!(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7F || b == 0xC2);
static JSON_CEF_SPECIAL: [bool; 256] =
    table!(|b| b < 0x20 || b == b'"' || b == b'\\' || b == 0x7F || b == 0xC2 || b == b'=');

/// Appends `s` as a JSON string. With `CEF`, every backslash the JSON
/// escaping produces is doubled and `=` is written `\=`, which is the CEF
/// extension escaping of the JSON text (JSON text has no raw CR or LF).
#[inline]
fn write_str_mode<const CEF: bool>(out: &mut Vec<u8>, s: &str) {
    out.push(b'"');
    write_body::<CEF>(out, s);
    out.push(b'"');
}

/// Appends the escaped contents of a JSON string, without the quotes.
#[inline]
pub(super) fn write_str_body(out: &mut Vec<u8>, s: &str) {
    write_body::<false>(out, s);
}

#[inline]
fn write_body<const CEF: bool>(out: &mut Vec<u8>, s: &str) {
    let bs: &[u8] = if CEF { b"\\\\" } else { b"\\" };
    let special = if CEF {
        &JSON_CEF_SPECIAL
    } else {
        &JSON_SPECIAL
    };
    let word = |x: u64| {
        let w = swar::below(x, 0x20)
            | swar::eq(x, b'"')
            | swar::eq(x, b'\\')
            | swar::eq(x, 0x7F)
            | swar::high(x);
        if CEF { w | swar::eq(x, b'=') } else { w }
    };
    escape(out, s.as_bytes(), special, word, |out, s, i| {
        let b = s[i];
        let (esc, n) = match b {
            b'"' => (b'"', 1),
            b'\\' => (b'\\', 1),
            b'\n' => (b'n', 1),
            b'\r' => (b'r', 1),
            b'\t' => (b't', 1),
            b'=' => {
                out.extend_from_slice(b"\\=");
                return 1;
            }
            0xC2 if !is_c1_at(s, i) => {
                out.push(b);
                return 1;
            }
            _ => (b'u', if b == 0xC2 { 2 } else { 1 }),
        };
        out.extend_from_slice(bs);
        if CEF && esc == b'\\' {
            out.extend_from_slice(bs);
        } else {
            out.push(esc);
        }
        if esc == b'u' {
            out.extend_from_slice(b"00");
            push_hex2(out, s[i + n - 1]);
        }
        n
    });
}

/// Why a line is not an event in vigil's `json` format.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum JsonError {
    /// The line is not valid JSON (or not UTF-8).
    #[error("invalid JSON at byte {offset}: {reason}")]
    Syntax {
        /// Byte offset of the problem in the line.
        offset: usize,
        /// What was wrong there.
        reason: &'static str,
    },
    /// The line is JSON but not an object.
    #[error("not a JSON object")]
    NotAnObject,
    /// A required field is absent.
    #[error("missing field `{0}`")]
    MissingField(&'static str),
    /// A top-level field appears twice.
    #[error("duplicate field `{0}`")]
    DuplicateField(&'static str),
    /// `code` names no catalog entry.
    #[error("unknown event code {0}")]
    UnknownCode(u64),
    /// `name` names no catalog entry.
    #[error("unknown event name `{0}`")]
    UnknownName(String),
    /// `code` and `name` (or `category`) name different events.
    #[error("field `{field}` is `{found}` but event {code} is `{expected}`")]
    Mismatch {
        /// The disagreeing field, `name` or `category`.
        field: &'static str,
        /// Its value.
        found: String,
        /// The code.
        code: u16,
        /// What the code's catalog entry says.
        expected: &'static str,
    },
    /// A top-level field has the wrong type or an invalid value.
    #[error("field `{field}` is {problem}")]
    InvalidField {
        /// The field.
        field: &'static str,
        /// What is wrong, e.g. "not an RFC 3339 timestamp".
        problem: &'static str,
    },
    /// A free field inside `fields` is not a boolean, integer or string.
    #[error("field `fields.{key}` is {problem}; free fields are booleans, integers or strings")]
    InvalidFreeField {
        /// The free field's key.
        key: String,
        /// What it is instead, e.g. "a float".
        problem: &'static str,
    },
}

impl Event {
    /// Parses one record of vigil's `json` format back into an event.
    ///
    /// `code` or `name` (both must agree if both are given) and `message` are
    /// required. `time` defaults to now, `severity` and `outcome` to the
    /// catalog's, `origin` to `""` and `seq` to 0. `category`, when given,
    /// must be the code's. The session is restored when `session_id` is
    /// present; the other session keys need it. Unknown top-level keys are
    /// ignored; duplicate ones are an error. A trailing newline is allowed.
    ///
    /// ```
    /// use vigil_event::{catalog, Event, Format};
    ///
    /// let ev = Event::new(catalog::AUTH_FAILED, "bad password").field("sqlstate", "28P01");
    /// let mut line = Vec::new();
    /// Format::Json.write(&ev, &mut line);
    /// assert_eq!(Event::from_json(&line), Ok(ev));
    ///
    /// let err = Event::from_json(br#"{"code":9999,"message":"x"}"#).unwrap_err();
    /// assert_eq!(err.to_string(), "unknown event code 9999");
    /// ```
    pub fn from_json(line: &[u8]) -> Result<Event, JsonError> {
        let root = Parser::parse(line)?;
        let JVal::Obj(members) = root else {
            return Err(JsonError::NotAnObject);
        };
        let mut slots = Slots::default();
        for (k, v) in members {
            let Some(idx) = slot(&k) else { continue };
            if slots.0[idx].is_some() {
                return Err(JsonError::DuplicateField(KEYS[idx]));
            }
            slots.0[idx] = Some(v);
        }
        let mut ev = Event::new(crate::catalog::ALL[0], "");
        decode_into(&mut ev, slots)?;
        Ok(ev)
    }

    /// Reads one record of vigil's `json` format into this event, as
    /// [`Event::from_json`] would parse it, reusing the event's allocations
    /// (message, origin, session, free fields) where the new values allow.
    ///
    /// Reading a stream of records into one event this way allocates little
    /// or nothing per record: consecutive records of one session share the
    /// session, and records of one kind have the same free-field keys. The
    /// result, and the error, are the same as `from_json`'s for every input;
    /// after an error the event holds unspecified (but valid) values.
    ///
    /// ```
    /// use vigil_event::{catalog, Event, Format};
    ///
    /// let mut ev = Event::new(catalog::AUTH_FAILED, "");
    /// for message in ["first", "second"] {
    ///     let written = Event::new(catalog::AUTH_FAILED, message).field("sqlstate", "28P01");
    ///     let mut line = Vec::new();
    ///     Format::Json.write(&written, &mut line);
    ///     ev.read_json(&line).unwrap();
    ///     assert_eq!(ev, written);
    /// }
    /// ```
    pub fn read_json(&mut self, line: &[u8]) -> Result<(), JsonError> {
        match stream_slots(line) {
            Some(slots) => decode_into(self, slots),
            // Anything the one-pass reader does not take (not an object, a
            // syntax error, a duplicate key) gets the full parser's answer.
            None => Event::from_json(line).map(|ev| *self = ev),
        }
    }
}

/// The top-level keys `from_json` reads, in format order; `fields` last.
const KEYS: [&str; 22] = [
    "time",
    "origin",
    "seq",
    "code",
    "name",
    "category",
    "severity",
    "outcome",
    "message",
    "session_id",
    "client_addr",
    "client_port",
    "server_addr",
    "server_port",
    "client_identity",
    "db_user",
    "database",
    "application",
    "tls_version",
    "tls_cipher",
    "fingerprint",
    "fields",
];

/// Indices into [`KEYS`].
mod k {
    pub(super) const TIME: usize = 0;
    pub(super) const ORIGIN: usize = 1;
    pub(super) const SEQ: usize = 2;
    pub(super) const CODE: usize = 3;
    pub(super) const NAME: usize = 4;
    pub(super) const CATEGORY: usize = 5;
    pub(super) const SEVERITY: usize = 6;
    pub(super) const OUTCOME: usize = 7;
    pub(super) const MESSAGE: usize = 8;
    pub(super) const SESSION_ID: usize = 9;
    pub(super) const CLIENT_ADDR: usize = 10;
    pub(super) const CLIENT_PORT: usize = 11;
    pub(super) const SERVER_ADDR: usize = 12;
    pub(super) const SERVER_PORT: usize = 13;
    /// The six string-valued session keys follow, in `session_strings` order.
    pub(super) const SESSION_STRINGS: usize = 14;
    pub(super) const FINGERPRINT: usize = 20;
    pub(super) const FIELDS: usize = 21;
}

/// The slot of a top-level key, if `from_json` reads it.
fn slot(key: &str) -> Option<usize> {
    Some(match key {
        "time" => k::TIME,
        "origin" => k::ORIGIN,
        "seq" => k::SEQ,
        "code" => k::CODE,
        "name" => k::NAME,
        "category" => k::CATEGORY,
        "severity" => k::SEVERITY,
        "outcome" => k::OUTCOME,
        "message" => k::MESSAGE,
        "session_id" => k::SESSION_ID,
        "client_addr" => k::CLIENT_ADDR,
        "client_port" => k::CLIENT_PORT,
        "server_addr" => k::SERVER_ADDR,
        "server_port" => k::SERVER_PORT,
        "client_identity" => k::SESSION_STRINGS,
        "db_user" => k::SESSION_STRINGS + 1,
        "database" => k::SESSION_STRINGS + 2,
        "application" => k::SESSION_STRINGS + 3,
        "tls_version" => k::SESSION_STRINGS + 4,
        "tls_cipher" => k::SESSION_STRINGS + 5,
        "fingerprint" => k::FINGERPRINT,
        "fields" => k::FIELDS,
        _ => return None,
    })
}

/// The value of each top-level key read, by [`KEYS`] index.
#[derive(Default)]
struct Slots<'a>([Option<JVal<'a>>; KEYS.len()]);

impl<'a> Slots<'a> {
    fn take(&mut self, idx: usize) -> Option<JVal<'a>> {
        self.0[idx].take()
    }
}

/// Reads the top-level object member by member into slots, without
/// building the list of members. `None` for anything `from_json` must
/// judge: a line that is not one object, a syntax error, a duplicate key.
fn stream_slots(line: &[u8]) -> Option<Slots<'_>> {
    let s = std::str::from_utf8(line).ok()?;
    let mut p = Parser {
        s,
        b: line,
        i: 0,
        depth: 1,
    };
    let mut slots = Slots::default();
    p.ws();
    if !p.eat(b'{') {
        return None;
    }
    p.ws();
    if !p.eat(b'}') {
        loop {
            p.ws();
            if p.b.get(p.i) != Some(&b'"') {
                return None;
            }
            let key = p.string().ok()?;
            p.ws();
            if !p.eat(b':') {
                return None;
            }
            p.ws();
            let v = p.value().ok()?;
            if let Some(idx) = slot(&key) {
                if slots.0[idx].is_some() {
                    return None;
                }
                slots.0[idx] = Some(v);
            }
            p.ws();
            if p.eat(b',') {
                continue;
            }
            if p.eat(b'}') {
                break;
            }
            return None;
        }
    }
    p.ws();
    (p.i == p.b.len()).then_some(slots)
}

/// Sets every part of `ev` from the slots, keeping its allocations where
/// the values allow.
fn decode_into(ev: &mut Event, mut slots: Slots<'_>) -> Result<(), JsonError> {
    let code = slots.take(k::CODE).map(|v| uint(v, "code")).transpose()?;
    let name = slots.take(k::NAME).map(|v| string(v, "name")).transpose()?;
    let kind = match (code, name) {
        (None, None) => return Err(JsonError::MissingField("code")),
        (Some(c), name) => {
            let kind = u16::try_from(c)
                .ok()
                .and_then(Kind::from_code)
                .ok_or(JsonError::UnknownCode(c))?;
            if let Some(n) = name
                && n != kind.name()
            {
                return Err(JsonError::Mismatch {
                    field: "name",
                    found: n.into_owned(),
                    code: kind.code(),
                    expected: kind.name(),
                });
            }
            kind
        }
        (None, Some(n)) => {
            Kind::from_name(&n).ok_or_else(|| JsonError::UnknownName(n.into_owned()))?
        }
    };
    if let Some(c) = slots
        .take(k::CATEGORY)
        .map(|v| string(v, "category"))
        .transpose()?
        && c != kind.category().as_str()
    {
        return Err(JsonError::Mismatch {
            field: "category",
            found: c.into_owned(),
            code: kind.code(),
            expected: kind.category().as_str(),
        });
    }
    let message = string(
        slots
            .take(k::MESSAGE)
            .ok_or(JsonError::MissingField("message"))?,
        "message",
    )?;
    ev.kind = kind;
    match &mut ev.message {
        Cow::Owned(m) => {
            m.clear();
            m.push_str(&message);
        }
        m => *m = Cow::Owned(message.into_owned()),
    }
    ev.time = match slots.take(k::TIME) {
        Some(t) => {
            Timestamp::parse_rfc3339(&string(t, "time")?).ok_or(JsonError::InvalidField {
                field: "time",
                problem: "not an RFC 3339 timestamp",
            })?
        }
        None => Timestamp::now(),
    };
    let origin = slots
        .take(k::ORIGIN)
        .map(|o| string(o, "origin"))
        .transpose()?;
    let origin = origin.as_deref().unwrap_or("");
    if *ev.origin != *origin {
        ev.origin = Arc::from(origin);
    }
    ev.seq = match slots.take(k::SEQ) {
        Some(s) => uint(s, "seq")?,
        None => 0,
    };
    ev.severity = match slots.take(k::SEVERITY) {
        Some(s) => Severity::from_name(&string(s, "severity")?).ok_or(JsonError::InvalidField {
            field: "severity",
            problem: "not a severity (debug, info, notice, warning, error, critical, alert)",
        })?,
        None => kind.severity(),
    };
    ev.outcome = match slots.take(k::OUTCOME) {
        Some(o) => Outcome::from_name(&string(o, "outcome")?).ok_or(JsonError::InvalidField {
            field: "outcome",
            problem: "not an outcome (success, failure, unknown)",
        })?,
        None => kind.def().outcome,
    };
    decode_session(ev, &mut slots)?;
    ev.fingerprint = match slots.take(k::FINGERPRINT) {
        Some(fp) => {
            let fp = string(fp, "fingerprint")?;
            let ok = fp.len() == 16 && fp.bytes().all(|b| b.is_ascii_hexdigit());
            Some(u64::from_str_radix(&fp, 16).ok().filter(|_| ok).ok_or(
                JsonError::InvalidField {
                    field: "fingerprint",
                    problem: "not 16 hex digits",
                },
            )?)
        }
        None => None,
    };
    match slots.take(k::FIELDS) {
        Some(JVal::Obj(members)) => decode_fields(&mut ev.fields, members),
        Some(_) => Err(JsonError::InvalidField {
            field: "fields",
            problem: "not an object",
        }),
        None => {
            ev.fields.clear();
            Ok(())
        }
    }
}

/// Sets `ev.session` from the session keys; keeps the session it has when
/// the values are the same.
fn decode_session(ev: &mut Event, slots: &mut Slots<'_>) -> Result<(), JsonError> {
    let session_id = slots
        .take(k::SESSION_ID)
        .map(|v| uint(v, "session_id"))
        .transpose()?;
    let mut addrs = [None; 2];
    let mut any_session_key = None;
    for (j, (addr_idx, port_idx)) in [
        (k::CLIENT_ADDR, k::CLIENT_PORT),
        (k::SERVER_ADDR, k::SERVER_PORT),
    ]
    .into_iter()
    .enumerate()
    {
        let (addr_key, port_key) = (KEYS[addr_idx], KEYS[port_idx]);
        let addr = slots
            .take(addr_idx)
            .map(|v| string(v, addr_key))
            .transpose()?;
        let port = slots
            .take(port_idx)
            .map(|v| uint(v, port_key))
            .transpose()?;
        match (addr, port) {
            (None, None) => {}
            (Some(_), None) => return Err(JsonError::MissingField(port_key)),
            (None, Some(_)) => return Err(JsonError::MissingField(addr_key)),
            (Some(a), Some(p)) => {
                let port = u16::try_from(p).map_err(|_| JsonError::InvalidField {
                    field: port_key,
                    problem: "not a port number (0..=65535)",
                })?;
                addrs[j] = Some(parse_addr(&a, port).ok_or(JsonError::InvalidField {
                    field: addr_key,
                    problem: "not an IP address",
                })?);
                any_session_key = Some(addr_key);
            }
        }
    }
    let mut strings: [Option<Cow<'_, str>>; 6] = Default::default();
    for (j, value) in strings.iter_mut().enumerate() {
        let idx = k::SESSION_STRINGS + j;
        if let Some(v) = slots.take(idx) {
            *value = Some(string(v, KEYS[idx])?);
            any_session_key = Some(KEYS[idx]);
        }
    }
    let Some(id) = session_id else {
        return match any_session_key {
            Some(_) => Err(JsonError::MissingField("session_id")),
            None => {
                ev.session = None;
                Ok(())
            }
        };
    };
    let same = ev.session.as_deref().is_some_and(|s| {
        s.id == id
            && s.client == addrs[0]
            && s.server == addrs[1]
            && session_strings(s)
                .iter()
                .zip(&strings)
                .all(|((_, have), new)| *have == new.as_deref())
    });
    if !same {
        let [
            client_identity,
            db_user,
            database,
            application,
            tls_version,
            tls_cipher,
        ] = strings.map(|v| v.map(|v| Box::from(&*v)));
        ev.session = Some(Arc::new(Session {
            id,
            client: addrs[0],
            server: addrs[1],
            client_identity,
            db_user,
            database,
            application,
            tls_version,
            tls_cipher,
        }));
    }
    Ok(())
}

/// Sets the free fields from the members of `fields`, reusing the keys and
/// string buffers of the fields already there, position by position.
fn decode_fields(
    fields: &mut Vec<Field>,
    members: Vec<(Cow<'_, str>, JVal<'_>)>,
) -> Result<(), JsonError> {
    fields.truncate(members.len());
    fields.reserve_exact(members.len() - fields.len());
    for (j, (key, v)) in members.into_iter().enumerate() {
        let problem = match v {
            JVal::Num(n) => match int(n) {
                Ok(i) => {
                    set_field(fields, j, &key, Value::Int(i));
                    continue;
                }
                Err(problem) => problem,
            },
            JVal::Bool(b) => {
                set_field(fields, j, &key, Value::Bool(b));
                continue;
            }
            JVal::Str(s) => {
                match fields.get_mut(j) {
                    Some(Field {
                        value: Value::Str(Cow::Owned(have)),
                        ..
                    }) => {
                        have.clear();
                        have.push_str(&s);
                        set_key(fields, j, &key);
                    }
                    _ => set_field(fields, j, &key, Value::Str(Cow::Owned(s.into_owned()))),
                }
                continue;
            }
            JVal::Null => "null",
            JVal::Arr => "an array",
            JVal::Obj(_) => "an object",
        };
        return Err(JsonError::InvalidFreeField {
            key: key.into_owned(),
            problem,
        });
    }
    Ok(())
}

/// Puts field `j` (at most one past the end) as `key` = `value`.
fn set_field(fields: &mut Vec<Field>, j: usize, key: &str, value: Value) {
    if j < fields.len() {
        fields[j].value = value;
        set_key(fields, j, key);
    } else {
        fields.push(Field {
            key: Cow::Owned(key.to_owned()),
            value,
        });
    }
}

/// Renames field `j` to `key` unless it already has that name.
fn set_key(fields: &mut [Field], j: usize, key: &str) {
    if fields[j].key != key {
        fields[j].key = Cow::Owned(key.to_owned());
    }
}
fn parse_addr(a: &str, port: u16) -> Option<SocketAddr> {
    if let Some((ip, scope)) = a.split_once('%') {
        let ip: Ipv6Addr = ip.parse().ok()?;
        let scope: u32 = scope.parse().ok()?;
        return Some(SocketAddr::V6(SocketAddrV6::new(ip, port, 0, scope)));
    }
    Some(SocketAddr::new(a.parse::<IpAddr>().ok()?, port))
}

fn string<'a>(v: JVal<'a>, field: &'static str) -> Result<Cow<'a, str>, JsonError> {
    match v {
        JVal::Str(s) => Ok(s),
        _ => Err(JsonError::InvalidField {
            field,
            problem: "not a string",
        }),
    }
}

fn uint(v: JVal<'_>, field: &'static str) -> Result<u64, JsonError> {
    let bad = JsonError::InvalidField {
        field,
        problem: "not an unsigned integer",
    };
    match v {
        JVal::Num(n) if n.bytes().all(|b| b.is_ascii_digit()) => n.parse().map_err(|_| bad),
        _ => Err(bad),
    }
}

/// A JSON number (already validated by the parser) as an `i64`.
fn int(n: &str) -> Result<i64, &'static str> {
    if n.bytes().any(|b| matches!(b, b'.' | b'e' | b'E')) {
        return Err("a float");
    }
    n.parse().map_err(|_| "an integer out of the 64-bit range")
}

/// A parsed JSON value. Objects keep their members in order, duplicates
/// included, which `serde_json::Value` (without `preserve_order`) cannot.
#[derive(Debug)]
enum JVal<'a> {
    Null,
    Bool(bool),
    /// The number's text, validated against the JSON grammar.
    Num(&'a str),
    Str(Cow<'a, str>),
    /// An array; vigil's format has none, so its items are checked and dropped.
    Arr,
    Obj(Vec<(Cow<'a, str>, JVal<'a>)>),
}

/// A strict RFC 8259 parser over one line.
struct Parser<'a> {
    s: &'a str,
    b: &'a [u8],
    i: usize,
    depth: usize,
}

/// Nesting deeper than this is refused rather than recursed into.
const MAX_DEPTH: usize = 64;

impl<'a> Parser<'a> {
    fn parse(line: &'a [u8]) -> Result<JVal<'a>, JsonError> {
        let s = std::str::from_utf8(line).map_err(|e| JsonError::Syntax {
            offset: e.valid_up_to(),
            reason: "not UTF-8",
        })?;
        let mut p = Parser {
            s,
            b: line,
            i: 0,
            depth: 0,
        };
        p.ws();
        let v = p.value()?;
        p.ws();
        if p.i != p.b.len() {
            return Err(p.err("trailing characters after the value"));
        }
        Ok(v)
    }

    fn err(&self, reason: &'static str) -> JsonError {
        JsonError::Syntax {
            offset: self.i,
            reason,
        }
    }

    fn ws(&mut self) {
        while let Some(b' ' | b'\t' | b'\n' | b'\r') = self.b.get(self.i) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> bool {
        if self.b.get(self.i) == Some(&c) {
            self.i += 1;
            true
        } else {
            false
        }
    }

    fn literal(&mut self, word: &'static [u8], v: JVal<'a>) -> Result<JVal<'a>, JsonError> {
        if self.b[self.i..].starts_with(word) {
            self.i += word.len();
            Ok(v)
        } else {
            Err(self.err("unexpected character"))
        }
    }

    fn value(&mut self) -> Result<JVal<'a>, JsonError> {
        match self.b.get(self.i) {
            None => Err(self.err("unexpected end of input")),
            Some(b'{') => self.nested(Self::object),
            Some(b'[') => self.nested(Self::array),
            Some(b'"') => Ok(JVal::Str(self.string()?)),
            Some(b't') => self.literal(b"true", JVal::Bool(true)),
            Some(b'f') => self.literal(b"false", JVal::Bool(false)),
            Some(b'n') => self.literal(b"null", JVal::Null),
            Some(b'-' | b'0'..=b'9') => self.number(),
            Some(_) => Err(self.err("unexpected character")),
        }
    }

    fn nested(
        &mut self,
        f: fn(&mut Self) -> Result<JVal<'a>, JsonError>,
    ) -> Result<JVal<'a>, JsonError> {
        if self.depth == MAX_DEPTH {
            return Err(self.err("nested too deeply"));
        }
        self.depth += 1;
        let v = f(self);
        self.depth -= 1;
        v
    }

    fn object(&mut self) -> Result<JVal<'a>, JsonError> {
        self.i += 1;
        let mut members = Vec::new();
        self.ws();
        if self.eat(b'}') {
            return Ok(JVal::Obj(members));
        }
        loop {
            self.ws();
            if self.b.get(self.i) != Some(&b'"') {
                return Err(self.err("expected a string key"));
            }
            let key = self.string()?;
            self.ws();
            if !self.eat(b':') {
                return Err(self.err("expected `:`"));
            }
            self.ws();
            let v = self.value()?;
            members.push((key, v));
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b'}') {
                return Ok(JVal::Obj(members));
            }
            return Err(self.err("expected `,` or `}`"));
        }
    }

    fn array(&mut self) -> Result<JVal<'a>, JsonError> {
        self.i += 1;
        self.ws();
        if self.eat(b']') {
            return Ok(JVal::Arr);
        }
        loop {
            self.ws();
            self.value()?;
            self.ws();
            if self.eat(b',') {
                continue;
            }
            if self.eat(b']') {
                return Ok(JVal::Arr);
            }
            return Err(self.err("expected `,` or `]`"));
        }
    }

    fn digits(&mut self) -> usize {
        let start = self.i;
        while self.b.get(self.i).is_some_and(u8::is_ascii_digit) {
            self.i += 1;
        }
        self.i - start
    }

    fn number(&mut self) -> Result<JVal<'a>, JsonError> {
        let start = self.i;
        self.eat(b'-');
        match self.b.get(self.i) {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => {
                self.digits();
            }
            _ => return Err(self.err("invalid number")),
        }
        if self.eat(b'.') && self.digits() == 0 {
            return Err(self.err("invalid number"));
        }
        if self.eat(b'e') || self.eat(b'E') {
            let _ = self.eat(b'+') || self.eat(b'-');
            if self.digits() == 0 {
                return Err(self.err("invalid number"));
            }
        }
        Ok(JVal::Num(self.s.get(start..self.i).unwrap_or_default()))
    }

    fn hex4(&mut self) -> Result<u32, JsonError> {
        let mut v = 0;
        for _ in 0..4 {
            let d = self
                .b
                .get(self.i)
                .and_then(|&c| char::from(c).to_digit(16))
                .ok_or(self.err("invalid \\u escape"))?;
            v = v * 16 + d;
            self.i += 1;
        }
        Ok(v)
    }

    /// The first position at or after `i` that holds `"`, `\\` or a control
    /// character, or the end: eight bytes at a time, then byte by byte.
    #[inline]
    fn skip_plain(&self, mut i: usize) -> usize {
        while let Some(chunk) = self.b.get(i..i + 8) {
            let mut w = [0; 8];
            w.copy_from_slice(chunk);
            let x = u64::from_le_bytes(w);
            let stop = swar::below(x, 0x20) | swar::eq(x, b'"') | swar::eq(x, b'\\');
            if stop != 0 {
                // The lowest flagged byte is the first stop (the tests flag
                // no byte before it).
                return i + (stop.trailing_zeros() / 8) as usize;
            }
            i += 8;
        }
        while self
            .b
            .get(i)
            .is_some_and(|&c| c >= 0x20 && c != b'"' && c != b'\\')
        {
            i += 1;
        }
        i
    }

    /// Parses a string at `"`; borrows it when it has no escapes.
    fn string(&mut self) -> Result<Cow<'a, str>, JsonError> {
        self.i += 1;
        let start = self.i;
        let mut owned: Option<String> = None;
        let mut run = start;
        loop {
            let Some(&c) = self.b.get(self.i) else {
                return Err(self.err("unterminated string"));
            };
            match c {
                b'"' => {
                    let tail = self.s.get(run..self.i).unwrap_or_default();
                    self.i += 1;
                    return Ok(match owned {
                        None => Cow::Borrowed(tail),
                        Some(mut o) => {
                            o.push_str(tail);
                            Cow::Owned(o)
                        }
                    });
                }
                b'\\' => {
                    let o = owned.get_or_insert_with(String::new);
                    o.push_str(self.s.get(run..self.i).unwrap_or_default());
                    self.i += 1;
                    let Some(&e) = self.b.get(self.i) else {
                        return Err(self.err("unterminated string"));
                    };
                    self.i += 1;
                    let ch = match e {
                        b'"' => '"',
                        b'\\' => '\\',
                        b'/' => '/',
                        b'b' => '\u{8}',
                        b'f' => '\u{c}',
                        b'n' => '\n',
                        b'r' => '\r',
                        b't' => '\t',
                        b'u' => {
                            let hi = self.hex4()?;
                            let cp = if (0xD800..0xDC00).contains(&hi) {
                                if !(self.eat(b'\\') && self.eat(b'u')) {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                let lo = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&lo) {
                                    return Err(self.err("unpaired surrogate"));
                                }
                                0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00)
                            } else {
                                hi
                            };
                            char::from_u32(cp).ok_or(self.err("unpaired surrogate"))?
                        }
                        _ => {
                            self.i -= 1;
                            return Err(self.err("invalid escape"));
                        }
                    };
                    o.push(ch);
                    run = self.i;
                }
                0..0x20 => return Err(self.err("raw control character in string")),
                _ => self.i = self.skip_plain(self.i + 1),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn err(line: &str) -> String {
        Event::from_json(line.as_bytes()).unwrap_err().to_string()
    }

    fn session(id: u64, user: &str) -> Arc<Session> {
        Arc::new(Session {
            id,
            client: Some("10.0.0.1:5000".parse().unwrap()),
            db_user: Some(user.into()),
            ..Session::default()
        })
    }

    fn session_bytes(s: &Session) -> Vec<u8> {
        let mut out = Vec::new();
        write_session(&mut out, s);
        out
    }

    #[test]
    fn cached_sessions_are_written_as_they_are() {
        // More sessions than the cache holds, in turns, each new one built
        // after the last was dropped: whatever the allocator reuses, every
        // event shows its own session.
        let mut sessions: Vec<Arc<Session>> =
            (0..12).map(|i| session(i, &format!("user{i}"))).collect();
        for round in 0..40u64 {
            let i = usize::try_from(round * 7 % 12).unwrap();
            if round % 5 == 4 {
                sessions[i] = session(100 + round, &format!("new\"{round}"));
            }
            let s = &sessions[i];
            let ev = Event::new(catalog::STATEMENT_EXECUTED, "x").session(Arc::clone(s));
            let mut line = Vec::new();
            write(&ev, &mut line);
            let want = session_bytes(s);
            assert!(
                line.windows(want.len()).any(|w| w == want),
                "round {round}: {}",
                String::from_utf8_lossy(&line)
            );
            let back = Event::from_json(&line).unwrap();
            assert_eq!(back.session.as_deref(), Some(&**s), "round {round}");
        }
    }

    #[test]
    fn error_messages_name_the_problem() {
        assert_eq!(err(r#"{"code":1111}"#), "missing field `message`");
        assert_eq!(err(r#"{"message":"x"}"#), "missing field `code`");
        assert_eq!(
            err(r#"{"code":9999,"message":"x"}"#),
            "unknown event code 9999"
        );
        assert_eq!(
            err(r#"{"name":"no.such","message":"x"}"#),
            "unknown event name `no.such`"
        );
        assert_eq!(
            err(r#"{"code":1111,"name":"auth.succeeded","message":"x"}"#),
            "field `name` is `auth.succeeded` but event 1111 is `auth.failed`"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","time":"yesterday"}"#),
            "field `time` is not an RFC 3339 timestamp"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","fields":{"rows":1.5}}"#),
            "field `fields.rows` is a float; free fields are booleans, integers or strings"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","fields":{"a":null}}"#),
            "field `fields.a` is null; free fields are booleans, integers or strings"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","fields":{"a":{"b":1}}}"#),
            "field `fields.a` is an object; free fields are booleans, integers or strings"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","seq":-1}"#),
            "field `seq` is not an unsigned integer"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","code":1111}"#),
            "duplicate field `code`"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","db_user":"a"}"#),
            "missing field `session_id`"
        );
        assert_eq!(
            err(r#"{"code":1111,"message":"x","session_id":1,"client_addr":"1.2.3.4"}"#),
            "missing field `client_port`"
        );
        assert_eq!(err(r#"[1]"#), "not a JSON object");
        assert_eq!(
            err(r#"{"code":1111,"message":"x"} x"#),
            "invalid JSON at byte 28: trailing characters after the value"
        );
        assert_eq!(
            err("{\"code\":1111,\"message\":\"a\nb\"}"),
            "invalid JSON at byte 25: raw control character in string"
        );
        assert_eq!(
            err(&"[".repeat(100)),
            "invalid JSON at byte 64: nested too deeply"
        );
    }

    #[test]
    fn defaults_and_name_only() {
        let ev =
            Event::from_json(br#"{"name":"auth.failed","message":"m","extra":[1,{"x":null}]}"#)
                .unwrap();
        assert_eq!(ev.kind, catalog::AUTH_FAILED);
        assert_eq!(ev.severity, catalog::AUTH_FAILED.severity());
        assert_eq!(ev.outcome, Outcome::Failure);
        assert_eq!(&*ev.origin, "");
        assert!(ev.session.is_none());
    }

    #[test]
    fn escapes_decode() {
        let ev = Event::from_json(
            br#"{"code":1111,"message":"a\"\\\/\b\f\n\r\t\u00e9\ud83d\ude00","time":"2026-11-26T11:19:00.123456Z"}"#,
        )
        .unwrap();
        assert_eq!(ev.message, "a\"\\/\u{8}\u{c}\n\r\t\u{e9}\u{1F600}");
        assert_eq!(ev.time.to_string(), "2026-11-26T11:19:00.123456Z");
        assert!(Event::from_json(br#"{"code":1111,"message":"\ud83d"}"#).is_err());
        assert!(Event::from_json(br#"{"code":1111,"message":"\x"}"#).is_err());
    }

    #[test]
    fn writes_controls_escaped() {
        let mut out = Vec::new();
        write_str(&mut out, "a\u{0}\u{1b}\u{7f}\u{85}\u{9f}\u{a0}é\"\\\n");
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "\"a\\u0000\\u001b\\u007f\\u0085\\u009f\u{a0}é\\\"\\\\\\n\""
        );
        let mut out = Vec::new();
        write_str_mode::<true>(&mut out, "a=\"\\\n");
        assert_eq!(String::from_utf8(out).unwrap(), r#""a\=\\"\\\\\\n""#);
    }
}
