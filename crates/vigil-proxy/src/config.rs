//! What the proxy needs to run, validated: addresses, TLS on both sides,
//! statement coverage, timeouts and poison records. The service's TOML
//! configuration is turned into a [`ProxyConfig`]; tests build one directly.

use std::fmt;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use vigil_detect::poison::{Reaction, Scanner};
use vigil_sql::StatementClass;

/// The proxy's settings.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ProxyConfig {
    /// Addresses to listen on.
    pub listen: Vec<SocketAddr>,
    /// The PostgreSQL server: `host:port`.
    pub upstream: String,
    /// TLS towards clients; `None` answers every SSLRequest with `N`.
    pub client_tls: Option<ClientTls>,
    /// TLS towards PostgreSQL.
    pub upstream_tls: UpstreamTls,
    /// Which statements are logged when they succeed (failures always are).
    pub coverage: Coverage,
    /// On SIGTERM or SIGINT, how long sessions may run before they are closed.
    pub shutdown_timeout: Duration,
    /// How long to wait for PostgreSQL to accept a connection.
    pub connect_timeout: Duration,
    /// How long a client may take from connecting to its StartupMessage.
    pub startup_timeout: Duration,
    /// Client connections served at once; more are refused with an error.
    pub max_connections: usize,
    /// Threads that relay sessions. One thread, as PgBouncer, costs the
    /// least per statement on a small host; more spread many busy sessions
    /// over more cores.
    pub workers: usize,
    /// Poison records to look for in results and statements, and how to
    /// react; `None` costs nothing.
    pub poison: Option<PoisonConfig>,
    /// SQL injection and capability detectors, the firewall, anomalies.
    pub detection: crate::detect::Detection,
}

impl ProxyConfig {
    /// Listens on `listen`, forwards to `upstream`, no TLS, logs all
    /// statements.
    pub fn new(listen: SocketAddr, upstream: impl Into<String>) -> Self {
        ProxyConfig {
            listen: vec![listen],
            upstream: upstream.into(),
            client_tls: None,
            upstream_tls: UpstreamTls::default(),
            coverage: Coverage::all(),
            shutdown_timeout: Duration::from_secs(30),
            connect_timeout: Duration::from_secs(10),
            startup_timeout: Duration::from_secs(30),
            max_connections: 10_000,
            workers: 1,
            poison: None,
            detection: crate::detect::Detection::new(),
        }
    }
}

/// Poison records: the values to look for and the reactions to a hit.
///
/// On a hit the proxy always emits `poison.accessed` (a result carried a
/// value) or `poison.queried` (a statement or parameter mentioned one),
/// then runs [`reactions`](Self::reactions) in order.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct PoisonConfig {
    /// The registered values, in every encoding.
    pub scanner: Arc<Scanner>,
    /// What to do after the event, in order.
    pub reactions: Vec<Reaction>,
    /// The program `Reaction::Script` runs, with the event as JSON on its
    /// standard input.
    pub script: Option<PathBuf>,
    /// How long the script may run before it is killed.
    pub script_timeout: Duration,
}

impl PoisonConfig {
    /// Looks for `scanner`'s values; no reaction but the event; a script
    /// gets 5 s.
    pub fn new(scanner: Arc<Scanner>) -> Self {
        PoisonConfig {
            scanner,
            reactions: Vec::new(),
            script: None,
            script_timeout: Duration::from_secs(5),
        }
    }

    /// Whether a hit withholds the message and closes the session.
    pub fn blocks(&self) -> bool {
        self.reactions.contains(&Reaction::Block)
    }
}

impl PartialEq for PoisonConfig {
    /// The same scanner (not only equal values), reactions and script.
    fn eq(&self, other: &Self) -> bool {
        Arc::ptr_eq(&self.scanner, &other.scanner)
            && self.reactions == other.reactions
            && self.script == other.script
            && self.script_timeout == other.script_timeout
    }
}

impl Eq for PoisonConfig {}

/// TLS towards clients.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ClientTls {
    /// The server certificate chain, PEM.
    pub cert: PathBuf,
    /// Its private key, PEM.
    pub key: PathBuf,
    /// CA certificates that client certificates must chain to, PEM.
    pub client_ca: Option<PathBuf>,
    /// Whether clients must present a certificate.
    pub client_cert: ClientCertMode,
    /// Whether clients may connect without TLS.
    pub mode: ClientTlsMode,
}

impl ClientTls {
    /// TLS with `cert` and `key`, optional for clients, no client certificates.
    pub fn new(cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> Self {
        ClientTls {
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
            client_cert: ClientCertMode::None,
            mode: ClientTlsMode::Allow,
        }
    }
}

/// Whether clients may connect in clear.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientTlsMode {
    /// TLS when the client asks for it.
    #[default]
    Allow,
    /// Refuse clients that do not use TLS.
    Require,
}

/// Client certificates.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ClientCertMode {
    /// Not asked for.
    #[default]
    None,
    /// Asked for and verified when presented.
    Optional,
    /// Required and verified.
    Required,
}

/// TLS towards PostgreSQL.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct UpstreamTls {
    /// Whether and how.
    pub mode: UpstreamTlsMode,
    /// CA certificates the server's certificate must chain to, PEM
    /// (`verify-full`).
    pub ca_file: Option<PathBuf>,
    /// The name the server's certificate must carry; default: the host of
    /// `upstream`.
    pub server_name: Option<String>,
}

/// TLS towards PostgreSQL, named as libpq's `sslmode`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UpstreamTlsMode {
    /// Never.
    #[default]
    Disable,
    /// TLS if the server offers it, without checking its certificate.
    Prefer,
    /// TLS, without checking the server's certificate.
    Require,
    /// TLS; the certificate must chain to `ca_file` and carry the server's name.
    VerifyFull,
}

impl UpstreamTlsMode {
    /// The mode's name.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Disable => "disable",
            Self::Prefer => "prefer",
            Self::Require => "require",
            Self::VerifyFull => "verify-full",
        }
    }

    /// The mode named `name`.
    pub fn from_name(name: &str) -> Option<Self> {
        [Self::Disable, Self::Prefer, Self::Require, Self::VerifyFull]
            .into_iter()
            .find(|m| m.as_str() == name)
    }
}

/// The statement classes whose successful statements are logged, as
/// pgaudit's `pgaudit.log`: `none`, `ddl`, `mod`, `all`, or a list of
/// classes (`read, write`), where `-class` removes one (`all, -misc`).
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Coverage {
    classes: [bool; StatementClass::ALL.len()],
}

impl Coverage {
    /// Every class.
    pub fn all() -> Self {
        Coverage {
            classes: [true; StatementClass::ALL.len()],
        }
    }

    /// No class: only failed statements are logged.
    pub fn none() -> Self {
        Coverage {
            classes: [false; StatementClass::ALL.len()],
        }
    }

    /// Whether successful statements of `class` are logged.
    pub fn covers(&self, class: StatementClass) -> bool {
        StatementClass::ALL
            .iter()
            .position(|c| *c == class)
            .is_some_and(|i| self.classes[i])
    }

    fn set(&mut self, class: StatementClass, on: bool) {
        if let Some(i) = StatementClass::ALL.iter().position(|c| *c == class) {
            self.classes[i] = on;
        }
    }

    /// Parses a coverage list: items separated by commas, each `none`,
    /// `ddl` (ddl and role), `mod` (ddl, role and write), `all`, a class
    /// name, or `-` and one of those to remove it.
    pub fn parse(spec: &str) -> Result<Self, String> {
        let mut cov = Coverage::none();
        let mut any = false;
        for item in spec.split(',').map(str::trim) {
            if item.is_empty() {
                continue;
            }
            any = true;
            let (on, name) = match item.strip_prefix('-') {
                Some(rest) => (false, rest.trim()),
                None => (true, item),
            };
            let classes: &[StatementClass] = match name.to_ascii_lowercase().as_str() {
                "none" => {
                    if on {
                        cov = Coverage::none();
                    }
                    &[]
                }
                "all" => &StatementClass::ALL,
                "ddl" => &[StatementClass::Ddl, StatementClass::Role],
                "mod" => &[
                    StatementClass::Ddl,
                    StatementClass::Role,
                    StatementClass::Write,
                ],
                other => match StatementClass::from_name(other) {
                    Some(c) => match c {
                        StatementClass::Ddl => &[StatementClass::Ddl],
                        StatementClass::Function => &[StatementClass::Function],
                        StatementClass::Misc => &[StatementClass::Misc],
                        StatementClass::Read => &[StatementClass::Read],
                        StatementClass::Role => &[StatementClass::Role],
                        _ => &[StatementClass::Write],
                    },
                    None => {
                        return Err(format!(
                            "unknown statement class {other:?}; expected none, ddl, mod, all, \
                             or read, write, function, role, ddl, misc (\"-misc\" removes one)"
                        ));
                    }
                },
            };
            for c in classes {
                cov.set(*c, on);
            }
        }
        if !any {
            return Err("empty; use none, ddl, mod, all, or a list of classes".to_owned());
        }
        Ok(cov)
    }
}

impl fmt::Debug for Coverage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = StatementClass::ALL
            .iter()
            .filter(|c| self.covers(**c))
            .map(|c| c.as_str())
            .collect();
        write!(f, "Coverage({})", names.join(","))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn coverage_lists() {
        let c = Coverage::parse("mod").unwrap();
        assert!(c.covers(StatementClass::Write) && c.covers(StatementClass::Role));
        assert!(!c.covers(StatementClass::Read));
        let c = Coverage::parse("all, -misc").unwrap();
        assert!(c.covers(StatementClass::Read) && !c.covers(StatementClass::Misc));
        let c = Coverage::parse("read,function").unwrap();
        assert!(c.covers(StatementClass::Function) && !c.covers(StatementClass::Write));
        assert!(
            StatementClass::ALL
                .iter()
                .all(|k| !Coverage::parse("none").unwrap().covers(*k))
        );
        assert!(Coverage::parse("reads").unwrap_err().contains("\"reads\""));
        assert!(Coverage::parse(" , ").is_err());
    }
}
