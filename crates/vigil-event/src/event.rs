//! The security event: what happened, when, to whom, and how it ended.

use std::borrow::Cow;
use std::fmt;
use std::net::SocketAddr;
use std::sync::{Arc, OnceLock};

use crate::catalog::Kind;
use crate::time::Timestamp;

/// How serious an event is, from `debug` to `alert`, in increasing order.
///
/// Each format maps it to its own scale (see `docs/formats.md`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Severity {
    /// Diagnostic detail.
    Debug,
    /// Normal operation worth recording.
    Info,
    /// Normal but significant: lifecycle changes, key rotation.
    Notice,
    /// Something may be wrong: a failed login, a suspicious statement.
    Warning,
    /// Something failed and needs attention.
    Error,
    /// Security control failed or an attack is likely.
    Critical,
    /// Act now: the service reacted to an intrusion.
    Alert,
}

impl Severity {
    /// Every severity, lowest first.
    pub const ALL: [Severity; 7] = [
        Severity::Debug,
        Severity::Info,
        Severity::Notice,
        Severity::Warning,
        Severity::Error,
        Severity::Critical,
        Severity::Alert,
    ];

    /// The lower-case name used in every format and in configuration.
    pub const fn as_str(self) -> &'static str {
        match self {
            Severity::Alert => "alert",
            Severity::Critical => "critical",
            Severity::Debug => "debug",
            Severity::Error => "error",
            Severity::Info => "info",
            Severity::Notice => "notice",
            Severity::Warning => "warning",
        }
    }

    /// Looks a severity up by its [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<Severity> {
        Severity::ALL.into_iter().find(|s| s.as_str() == name)
    }

    /// The RFC 5424 severity (0 emergency .. 7 debug).
    pub const fn syslog(self) -> u8 {
        match self {
            Severity::Alert => 1,
            Severity::Critical => 2,
            Severity::Error => 3,
            Severity::Warning => 4,
            Severity::Notice => 5,
            Severity::Info => 6,
            Severity::Debug => 7,
        }
    }

    /// The CEF severity, 0 (lowest) to 10 (highest).
    pub const fn cef(self) -> u8 {
        match self {
            Severity::Debug => 0,
            Severity::Info => 2,
            Severity::Notice => 4,
            Severity::Warning => 6,
            Severity::Error => 7,
            Severity::Critical => 9,
            Severity::Alert => 10,
        }
    }

    /// The OCSF `severity_id`: 1 informational .. 6 fatal.
    pub const fn ocsf(self) -> u8 {
        match self {
            Severity::Debug | Severity::Info => 1,
            Severity::Notice => 2,
            Severity::Warning => 3,
            Severity::Error => 4,
            Severity::Critical => 5,
            Severity::Alert => 6,
        }
    }
}

impl fmt::Display for Severity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// How the action an event describes ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Outcome {
    /// The action failed or was refused.
    Failure,
    /// The action succeeded.
    Success,
    /// Not known, or not applicable (a detection).
    Unknown,
}

impl Outcome {
    /// The lower-case name used in every format.
    pub const fn as_str(self) -> &'static str {
        match self {
            Outcome::Failure => "failure",
            Outcome::Success => "success",
            Outcome::Unknown => "unknown",
        }
    }

    /// Looks an outcome up by its [`as_str`](Self::as_str) name.
    pub fn from_name(name: &str) -> Option<Outcome> {
        [Outcome::Failure, Outcome::Success, Outcome::Unknown]
            .into_iter()
            .find(|o| o.as_str() == name)
    }
}

impl fmt::Display for Outcome {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// What vigil knows about a client session; shared by every event of it.
///
/// Built once when the session's facts are known and attached to events
/// through an `Arc`, so a statement event costs one reference count, not a
/// copy of these strings.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Session {
    /// Session id, unique within one vigil origin.
    pub id: u64,
    /// The client's address and port.
    pub client: Option<SocketAddr>,
    /// The address and port the client connected to.
    pub server: Option<SocketAddr>,
    /// The client's identity, e.g. the subject of its TLS certificate.
    pub client_identity: Option<Box<str>>,
    /// The database user.
    pub db_user: Option<Box<str>>,
    /// The database name.
    pub database: Option<Box<str>>,
    /// The `application_name` the client sent.
    pub application: Option<Box<str>>,
    /// The TLS version with the client, e.g. `TLSv1.3`.
    pub tls_version: Option<Box<str>>,
    /// The TLS cipher suite with the client.
    pub tls_cipher: Option<Box<str>>,
}

/// A free-form value attached to an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Value {
    /// A boolean.
    Bool(bool),
    /// A signed integer (counts, durations in microseconds, sizes in bytes).
    Int(i64),
    /// A string. Never a secret, a literal or a parameter value.
    Str(Cow<'static, str>),
}

impl fmt::Display for Value {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Value::Bool(b) => write!(f, "{b}"),
            Value::Int(i) => write!(f, "{i}"),
            Value::Str(s) => f.write_str(s),
        }
    }
}

impl From<bool> for Value {
    fn from(v: bool) -> Self {
        Value::Bool(v)
    }
}
impl From<i64> for Value {
    fn from(v: i64) -> Self {
        Value::Int(v)
    }
}
impl From<u64> for Value {
    fn from(v: u64) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<u32> for Value {
    fn from(v: u32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<i32> for Value {
    fn from(v: i32) -> Self {
        Value::Int(i64::from(v))
    }
}
impl From<usize> for Value {
    fn from(v: usize) -> Self {
        Value::Int(i64::try_from(v).unwrap_or(i64::MAX))
    }
}
impl From<&'static str> for Value {
    fn from(v: &'static str) -> Self {
        Value::Str(Cow::Borrowed(v))
    }
}
impl From<String> for Value {
    fn from(v: String) -> Self {
        Value::Str(Cow::Owned(v))
    }
}
impl From<Cow<'static, str>> for Value {
    fn from(v: Cow<'static, str>) -> Self {
        Value::Str(v)
    }
}

/// A named value on an event.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Field {
    /// The field name: lower-case, `[a-z0-9_]`, by convention.
    pub key: Cow<'static, str>,
    /// The value.
    pub value: Value,
}

/// One security event.
///
/// `origin` and `seq` are assigned by the pipeline when the event is
/// accepted; an event fresh from [`Event::new`] has an empty origin and seq 0.
///
/// ```
/// use vigil_event::{catalog, Event};
///
/// let ev = Event::new(catalog::LISTENER_STARTED, "listening on 127.0.0.1:9393")
///     .field("address", "127.0.0.1:9393")
///     .field("tls", false);
/// assert_eq!(ev.kind.name(), "listener.started");
/// assert_eq!(ev.field_value("tls"), Some(&vigil_event::Value::Bool(false)));
/// ```
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Event {
    /// When it happened.
    pub time: Timestamp,
    /// The vigil instance that emitted it.
    pub origin: Arc<str>,
    /// Position in the origin's event stream, gapless from 1.
    pub seq: u64,
    /// The catalog entry: code, name, category.
    pub kind: Kind,
    /// Severity, by default the catalog's.
    pub severity: Severity,
    /// Outcome, by default the catalog's.
    pub outcome: Outcome,
    /// A sentence for humans. Never contains secrets or literals.
    pub message: Cow<'static, str>,
    /// The session it belongs to, if any.
    pub session: Option<Arc<Session>>,
    /// The statement fingerprint, if it concerns a statement.
    pub fingerprint: Option<u64>,
    /// Further named values, in the order they were added.
    pub fields: Vec<Field>,
}

/// The empty origin of a new event: one shared `Arc`, so that a new event
/// allocates only its own parts.
fn no_origin() -> Arc<str> {
    static EMPTY: OnceLock<Arc<str>> = OnceLock::new();
    Arc::clone(EMPTY.get_or_init(|| Arc::from("")))
}

impl Event {
    /// A new event of `kind`, now, with the catalog's severity and outcome.
    pub fn new(kind: Kind, message: impl Into<Cow<'static, str>>) -> Self {
        Event {
            time: Timestamp::now(),
            origin: no_origin(),
            seq: 0,
            kind,
            severity: kind.severity(),
            outcome: kind.def().outcome,
            message: message.into(),
            session: None,
            fingerprint: None,
            fields: Vec::new(),
        }
    }

    /// Sets the time.
    pub fn at(mut self, time: Timestamp) -> Self {
        self.time = time;
        self
    }

    /// Overrides the severity.
    pub fn severity(mut self, severity: Severity) -> Self {
        self.severity = severity;
        self
    }

    /// Overrides the outcome.
    pub fn outcome(mut self, outcome: Outcome) -> Self {
        self.outcome = outcome;
        self
    }

    /// Attaches the session.
    pub fn session(mut self, session: Arc<Session>) -> Self {
        self.session = Some(session);
        self
    }

    /// Sets the statement fingerprint.
    pub fn fingerprint(mut self, fingerprint: u64) -> Self {
        self.fingerprint = Some(fingerprint);
        self
    }

    /// Adds a named value.
    pub fn field(mut self, key: impl Into<Cow<'static, str>>, value: impl Into<Value>) -> Self {
        self.fields.push(Field {
            key: key.into(),
            value: value.into(),
        });
        self
    }

    /// The value of the first field named `key`.
    pub fn field_value(&self, key: &str) -> Option<&Value> {
        self.fields.iter().find(|f| f.key == key).map(|f| &f.value)
    }
}
