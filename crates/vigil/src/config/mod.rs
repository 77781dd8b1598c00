//! The configuration file: TOML, parsed, validated, then handed to the
//! service as a [`Config`].
//!
//! [`load`] reads a file, [`parse`] takes its text. Both first check the
//! file's shape with serde (unknown keys and wrong types are errors), then
//! validate every value into the types the service uses ([`Format`],
//! [`Filter`], [`Overflow`]). Validation is pure: it does no I/O.
//!
//! Every error is a [`ConfigError`] whose `Display` is one line naming the
//! file, the line and the key:
//!
//! ```text
//! vigil.toml:14: sinks[1].format: unknown format "xml"; expected one of json, text, cef, syslog, ocsf
//! ```
//!
//! `docs/configuration.md` describes every key; [`example`] returns the
//! commented example, `examples/vigil.toml`.
//!
//! ```
//! use std::path::Path;
//!
//! let cfg = vigil::config::parse("[[sinks]]\ntype = \"stderr\"\n", Path::new("vigil.toml")).unwrap();
//! assert_eq!(cfg.sinks[0].name, "stderr-0");
//!
//! let err = vigil::config::parse("[[sinks]]\ntype = \"tape\"\n", Path::new("vigil.toml")).unwrap_err();
//! assert_eq!(err.line(), Some(2));
//! assert_eq!(err.key(), Some("sinks[0].type"));
//! ```

mod detect;
mod error;
mod ingest;
mod locate;
mod poison;
mod proxy;
mod raw;
mod sinks;

pub use detect::DetectConfig;
pub use ingest::{IngestSettings, IngestTlsSettings};
pub use poison::PoisonConfig;
pub use proxy::{DEFAULT_LISTEN, DEFAULT_UPSTREAM, SchemaConfig};
pub use sinks::{DeliveryOptions, HttpApi, SyslogProtocol, TlsFiles};
pub use vigil_proxy::ProxyConfig;

use std::collections::HashMap;
use std::fs;
use std::path::{Path, PathBuf};

use vigil_event::format::{SyslogOptions, facility_from_name};
use vigil_event::{Filter, Format, Overflow, Selector, Severity, catalog};

pub use error::ConfigError;
use error::{Invalid, KeyPath};
use locate::{Document, Located};
use raw::{
    NameOrNumber, RawAudit, RawConfig, RawPipeline, RawSelector, RawService, RawSink, RawSyslog,
};
use std::time::Duration;
use vigil_seal::{LineFormat, SyncPolicy};

/// The commented example configuration, `examples/vigil.toml`.
pub fn example() -> &'static str {
    include_str!("../../../../examples/vigil.toml")
}

/// Reads and validates the configuration file at `path`.
///
/// A relative sink `path` is resolved against the directory of `path`.
pub fn load(path: &Path) -> Result<Config, ConfigError> {
    let bytes = fs::read(path).map_err(|source| ConfigError::Read {
        file: path.to_owned(),
        source,
    })?;
    match String::from_utf8(bytes) {
        Ok(text) => parse(&text, path),
        Err(e) => {
            let valid = e.utf8_error().valid_up_to();
            // Invariant: `valid_up_to` ends a valid UTF-8 prefix.
            let prefix = std::str::from_utf8(&e.as_bytes()[..valid]).unwrap_or_default();
            let doc = Document::lenient(prefix);
            Err(ConfigError::Syntax {
                file: path.to_owned(),
                line: doc.line_at(valid),
                key: doc.key_at(valid),
                message: "the file is not UTF-8 text; save it as UTF-8".to_owned(),
            })
        }
    }
}

/// Parses and validates configuration `text`, read from `path`.
///
/// `path` names the file in errors, and relative sink paths are resolved
/// against its directory. The only I/O is reading the host name, for the
/// defaults of `service.origin` and of the syslog HOSTNAME.
pub fn parse(text: &str, path: &Path) -> Result<Config, ConfigError> {
    let file = || path.to_owned();
    let doc = Document::parse(text).map_err(|l: Located| ConfigError::Syntax {
        file: file(),
        line: l.line,
        key: l.key,
        message: l.message,
    })?;
    let raw: RawConfig = doc
        .deserialize()
        .map_err(|l: Located| ConfigError::Schema {
            file: file(),
            line: l.line,
            key: l.key,
            message: l.message,
        })?;
    let host = if raw.service.origin.is_none() {
        host_name()
    } else {
        String::new()
    };
    let cx = Context {
        dir: path.parent().unwrap_or(Path::new("")),
        host_name: &host,
        syslog: SyslogOptions::default(),
    };
    validate(raw, &cx).map_err(|invalid| {
        let l = doc.locate(&invalid.path, invalid.message);
        ConfigError::Invalid {
            file: file(),
            line: l.line,
            key: l.key,
            message: l.message,
        }
    })
}

/// A validated configuration.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct Config {
    /// `[service]`: this instance.
    pub service: ServiceConfig,
    /// `[pipeline]`: the event queue between the emitters and the sinks.
    pub pipeline: PipelineConfig,
    /// `[[sinks]]`: where events go, in file order; empty (`sinks = []`)
    /// when events go only to the audit log.
    pub sinks: Vec<SinkConfig>,
    /// `[audit]`: the sealed audit log every event goes through first, if
    /// configured.
    pub audit: Option<AuditConfig>,
    /// `[proxy]`: listeners, upstream, TLS, statement coverage.
    pub proxy: ProxyConfig,
    /// `[admin] listen`: the metrics and health listener, off by default.
    pub admin: Option<std::net::SocketAddr>,
    /// `[schema]`: monitored columns.
    pub schema: Option<SchemaConfig>,
    /// `[poison]`: poison records and the reactions to them.
    pub poison: Option<PoisonConfig>,
    /// `[detect]`: injection and capability detectors, the firewall,
    /// anomaly detectors.
    pub detect: DetectConfig,
    /// `[ingest]`: the syslog receiver; absent, none runs.
    pub ingest: Option<IngestSettings>,
}

/// `[audit]`: the sealed audit log.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct AuditConfig {
    /// `dir`: the audit directory (created 0700).
    pub dir: PathBuf,
    /// `key_dir`: the key directory; the master key comes from `VIGIL_MASTER_KEY`.
    pub key_dir: PathBuf,
    /// `format`: the segment line format, `json` (default), `text` or `cef`.
    pub format: LineFormat,
    /// `sync` and `sync_interval_ms`: durability, default group commit every 10 ms.
    pub sync: SyncPolicy,
    /// `segment_max_mb`: a new segment after this many bytes (default 64 MiB).
    pub segment_max_bytes: u64,
    /// `segment_max_age_s`: a new segment after this long (default one day).
    pub segment_max_age: Duration,
    /// `checkpoint_every`: a signed checkpoint after this many entries (default 100000).
    pub checkpoint_every: u64,
    /// `checkpoint_interval_s`: a checkpoint at least this often, also when idle (default 60 s).
    pub checkpoint_interval: Duration,
    /// `retention_max_mb`, `retention_max_age_days` and
    /// `retention_undelivered`: when the oldest segments are removed
    /// (default: never).
    pub retention: vigil_ship::deliver::Retention,
}

impl AuditConfig {
    /// The defaults, with the log in `data_dir/audit` and the keys in
    /// `data_dir/keys`.
    pub fn under(data_dir: &Path) -> AuditConfig {
        AuditConfig {
            dir: data_dir.join("audit"),
            key_dir: data_dir.join("keys"),
            format: LineFormat::Json,
            sync: SyncPolicy::Interval(Duration::from_millis(10)),
            segment_max_bytes: 64 << 20,
            segment_max_age: Duration::from_secs(86_400),
            checkpoint_every: 100_000,
            checkpoint_interval: Duration::from_secs(60),
            retention: vigil_ship::deliver::Retention::default(),
        }
    }
}

/// `[service]`: this instance.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct ServiceConfig {
    /// `origin`: the instance id on every event. Default: the host name.
    pub origin: String,
    /// `data_dir`: where `vigil serve` keeps its audit log and keys when
    /// there is no `[audit]` section. Default `vigil-data`.
    pub data_dir: PathBuf,
}

/// `[pipeline]`: the event queue between the emitters and the sinks.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct PipelineConfig {
    /// `queue_capacity`: events the queue holds, 1 to
    /// [`MAX_QUEUE_CAPACITY`](Self::MAX_QUEUE_CAPACITY). Default 65536.
    pub queue_capacity: usize,
    /// `overflow`: what a full queue does, `block` (default) or `drop`.
    pub overflow: Overflow,
}

impl PipelineConfig {
    /// The default `queue_capacity`.
    pub const DEFAULT_QUEUE_CAPACITY: usize = 65_536;
    /// The largest `queue_capacity`.
    pub const MAX_QUEUE_CAPACITY: usize = 16_777_216;
}

/// One `[[sinks]]` table: where some events go, in which format.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkConfig {
    /// `name`: unique among sinks. Default `<type>-<index>`, e.g. `file-1`.
    pub name: String,
    /// `type` (and `path`): where the records are written.
    pub kind: SinkKind,
    /// `format` (and `syslog`): how each event is written.
    pub format: Format,
    /// `min_severity`, `include` and `exclude`: which events the sink receives.
    pub filter: Filter,
    /// How a file or network sink delivers from the audit log.
    pub delivery: DeliveryOptions,
}

/// Where a sink writes.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum SinkKind {
    /// `type = "file"`: append to a file.
    File {
        /// The file, absolute or relative to the configuration file's directory.
        path: PathBuf,
    },
    /// `type = "stderr"`: standard error.
    Stderr,
    /// `type = "stdout"`: standard output.
    Stdout,
    /// `type = "syslog"`: a syslog receiver over UDP, TCP or TLS.
    Syslog {
        /// `address`: host:port.
        address: String,
        /// `protocol`: udp, tcp (default) or tls.
        protocol: SyslogProtocol,
        /// The TLS settings, with `protocol = "tls"`.
        tls: Option<TlsFiles>,
    },
    /// `type = "http"`: an HTTP collector.
    Http {
        /// `url`: where requests go.
        url: String,
        /// `api`: splunk_hec, elastic_bulk or webhook.
        api: HttpApi,
        /// `headers`: sent with every request.
        headers: Vec<(String, String)>,
        /// `token_env`: the environment variable holding the token.
        token_env: Option<String>,
        /// `gzip`: compress request bodies.
        gzip: bool,
        /// `tls_ca`: the CA of an https collector (default: none, so https
        /// needs it).
        tls_ca: Option<PathBuf>,
    },
    /// `type = "nats"`: a NATS JetStream subject.
    Nats {
        /// `address`: host:port of a NATS server.
        address: String,
        /// `subject`: where events are published.
        subject: String,
        /// `stream`: the JetStream stream that captures the subject.
        stream: Option<String>,
        /// `create_stream`: create the stream when it is missing.
        create_stream: bool,
        /// `user`: the NATS user.
        user: Option<String>,
        /// `password_env`: the environment variable holding its password.
        password_env: Option<String>,
        /// `token_env`: the environment variable holding a NATS token.
        token_env: Option<String>,
    },
    /// `type = "postgres"`: a table in a PostgreSQL database.
    Postgres {
        /// `conninfo`: libpq-style connection settings, without the password.
        conninfo: String,
        /// `password_env`: the environment variable holding the password.
        password_env: Option<String>,
        /// `table`: the table (default `vigil_events`).
        table: String,
        /// `create_table`: create the table when it is missing.
        create_table: bool,
        /// `tls_ca`: the CAs the server's certificate must chain to, for an
        /// `sslmode` in `conninfo` that asks for TLS.
        tls_ca: Option<PathBuf>,
        /// `tls_server_name`: the name `sslmode=verify-full` checks (default:
        /// the host of `conninfo`).
        tls_server_name: Option<String>,
        /// `tls_cert`: vigil's client certificate, for a server that asks
        /// for one.
        tls_cert: Option<PathBuf>,
        /// `tls_key`: its private key.
        tls_key: Option<PathBuf>,
    },
}

impl SinkKind {
    /// The `type` name: `file`, `stderr` or `stdout`.
    pub fn as_str(&self) -> &'static str {
        match self {
            SinkKind::File { .. } => "file",
            SinkKind::Stderr => "stderr",
            SinkKind::Stdout => "stdout",
            SinkKind::Syslog { .. } => "syslog",
            SinkKind::Http { .. } => "http",
            SinkKind::Nats { .. } => "nats",
            SinkKind::Postgres { .. } => "postgres",
        }
    }

    /// Whether the sink delivers from the sealed audit log through a cursor
    /// (files and network sinks) rather than straight from the pipeline.
    pub fn delivers_from_log(&self) -> bool {
        !matches!(self, SinkKind::Stdout | SinkKind::Stderr)
    }
}

impl Default for Config {
    /// One sink: standard output, text, `info` and above. The origin is the
    /// host name.
    fn default() -> Self {
        Config {
            service: ServiceConfig {
                origin: host_name(),
                data_dir: PathBuf::from(DEFAULT_DATA_DIR),
            },
            pipeline: PipelineConfig::default(),
            sinks: vec![SinkConfig::default()],
            audit: None,
            proxy: default_proxy(),
            admin: None,
            schema: None,
            poison: None,
            detect: DetectConfig::default(),
            ingest: None,
        }
    }
}

impl Default for PipelineConfig {
    fn default() -> Self {
        PipelineConfig {
            queue_capacity: PipelineConfig::DEFAULT_QUEUE_CAPACITY,
            overflow: Overflow::Block,
        }
    }
}

impl Default for SinkConfig {
    /// `stdout-0`: standard output, text, `info` and above.
    fn default() -> Self {
        SinkConfig {
            name: "stdout-0".to_owned(),
            kind: SinkKind::Stdout,
            format: Format::Text,
            filter: Filter::new(DEFAULT_SEVERITY, &[], &[]),
            delivery: DeliveryOptions::default(),
        }
    }
}

/// The default `service.data_dir`.
pub const DEFAULT_DATA_DIR: &str = "vigil-data";

fn default_proxy() -> ProxyConfig {
    let listen = DEFAULT_LISTEN
        .parse()
        .unwrap_or_else(|_| std::net::SocketAddr::from(([127, 0, 0, 1], 9393)));
    ProxyConfig::new(listen, DEFAULT_UPSTREAM)
}

/// The names `type` accepts.
const SINK_TYPES: [&str; 7] = [
    "stdout", "stderr", "file", "syslog", "http", "nats", "postgres",
];

const DEFAULT_SEVERITY: Severity = Severity::Info;
/// The origin when the host name cannot be read.
const FALLBACK_ORIGIN: &str = "vigil";

/// What validation needs from outside the file, gathered beforehand so that
/// validation stays pure.
#[derive(Debug)]
struct Context<'a> {
    /// The configuration file's directory, for relative sink paths.
    dir: &'a Path,
    /// The default origin.
    host_name: &'a str,
    /// The defaults of the `syslog` format.
    syslog: SyslogOptions,
}

/// The host name, from `/proc/sys/kernel/hostname`, else `vigil`: the
/// default origin everywhere.
pub(crate) fn host_name() -> String {
    fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| token(s, 255).is_ok())
        .unwrap_or_else(|| FALLBACK_ORIGIN.to_owned())
}

fn validate(raw: RawConfig, cx: &Context<'_>) -> Result<Config, Invalid> {
    let root = KeyPath::root();
    let service = service(raw.service, &root.key("service"), cx)?;
    let pipeline = pipeline(raw.pipeline, &root.key("pipeline"))?;
    let sinks = match raw.sinks {
        None => vec![SinkConfig::default()],
        // `sinks = []`: events go only to the sealed audit log.
        Some(list) if list.is_empty() => Vec::new(),
        Some(list) => {
            let at = root.key("sinks");
            let mut names: HashMap<String, usize> = HashMap::new();
            let mut sinks = Vec::with_capacity(list.len());
            for (i, raw) in list.into_iter().enumerate() {
                let at = at.index(i);
                let explicit = raw.name.is_some();
                let s = sink(raw, i, &at, cx)?;
                if let Some(first) = names.insert(s.name.clone(), i) {
                    return Err(Invalid::new(
                        if explicit { at.key("name") } else { at },
                        format!(
                            "duplicate sink name {:?} (also sinks[{first}]); \
                             give each sink a unique name",
                            s.name
                        ),
                    ));
                }
                sinks.push(s);
            }
            sinks
        }
    };
    let audit = match raw.audit {
        Some(raw) => Some(audit(raw, &root.key("audit"), cx)?),
        None => None,
    };
    let proxy = proxy::proxy(raw.proxy, &root.key("proxy"), cx.dir)?;
    let admin = match raw.admin {
        Some(raw) => proxy::admin(raw, &root.key("admin"))?,
        None => None,
    };
    let schema = match raw.schema {
        Some(raw) => Some(proxy::schema(raw, &root.key("schema"))?),
        None => None,
    };
    let detect = match raw.detect {
        Some(raw) => detect::detect(raw, &root.key("detect"), cx.dir)?,
        None => DetectConfig::default(),
    };
    let ingest = match raw.ingest {
        Some(raw) => Some(ingest::ingest(raw, &root.key("ingest"), cx.dir)?),
        None => None,
    };
    let poison = match raw.poison {
        Some(raw) => Some(poison::poison(raw, &root.key("poison"), cx.dir)?),
        None => None,
    };
    Ok(Config {
        service,
        pipeline,
        sinks,
        audit,
        proxy,
        admin,
        schema,
        poison,
        detect,
        ingest,
    })
}

fn audit(raw: RawAudit, at: &KeyPath, cx: &Context<'_>) -> Result<AuditConfig, Invalid> {
    let dir_path = |value: Option<String>, key: &str, example: &str| match value {
        Some(v) if !v.is_empty() => {
            let p = Path::new(&v);
            Ok(if p.is_absolute() {
                p.to_owned()
            } else {
                cx.dir.join(p)
            })
        }
        _ => Err(Invalid::new(
            at.key(key),
            format!("missing; the audit log needs it, e.g. {key} = \"{example}\""),
        )),
    };
    let dir = dir_path(raw.dir, "dir", "/var/lib/vigil/audit")?;
    let key_dir = dir_path(raw.key_dir, "key_dir", "/var/lib/vigil/keys")?;
    let format = match raw.format.as_deref() {
        None => LineFormat::Json,
        Some(name) => LineFormat::from_name(name).ok_or_else(|| {
            Invalid::new(
                at.key("format"),
                format!("unknown audit format {name:?}; expected json, text or cef"),
            )
        })?,
    };
    let range = |value: Option<i64>,
                 key: &str,
                 default: u64,
                 lo: u64,
                 hi: u64,
                 unit: &str|
     -> Result<u64, Invalid> {
        match value {
            None => Ok(default),
            Some(n) => u64::try_from(n)
                .ok()
                .filter(|n| (lo..=hi).contains(n))
                .ok_or_else(|| {
                    Invalid::new(
                        at.key(key),
                        format!("{n} is out of range; use {lo} to {hi} {unit}"),
                    )
                }),
        }
    };
    let interval = range(
        raw.sync_interval_ms,
        "sync_interval_ms",
        10,
        1,
        1000,
        "milliseconds",
    )?;
    let sync = match raw.sync.as_deref() {
        None | Some("interval") => SyncPolicy::Interval(Duration::from_millis(interval)),
        Some("always") => SyncPolicy::Always,
        Some("never") => SyncPolicy::Never,
        Some(other) => {
            return Err(Invalid::new(
                at.key("sync"),
                format!("unknown sync policy {other:?}; expected always, interval or never"),
            ));
        }
    };
    if raw.sync_interval_ms.is_some() && !matches!(sync, SyncPolicy::Interval(_)) {
        return Err(Invalid::new(
            at.key("sync_interval_ms"),
            "only used with sync = \"interval\"; remove it",
        ));
    }
    Ok(AuditConfig {
        dir,
        key_dir,
        format,
        sync,
        segment_max_bytes: range(raw.segment_max_mb, "segment_max_mb", 64, 1, 65_536, "MiB")? << 20,
        segment_max_age: Duration::from_secs(range(
            raw.segment_max_age_s,
            "segment_max_age_s",
            86_400,
            1,
            31_622_400,
            "seconds",
        )?),
        checkpoint_every: range(
            raw.checkpoint_every,
            "checkpoint_every",
            100_000,
            1,
            1 << 40,
            "entries",
        )?,
        checkpoint_interval: Duration::from_secs(range(
            raw.checkpoint_interval_s,
            "checkpoint_interval_s",
            60,
            1,
            86_400,
            "seconds",
        )?),
        retention: vigil_ship::deliver::Retention {
            max_bytes: raw
                .retention_max_mb
                .map(|_| {
                    range(
                        raw.retention_max_mb,
                        "retention_max_mb",
                        0,
                        1,
                        1 << 24,
                        "MiB",
                    )
                })
                .transpose()?
                .map(|mb| mb << 20),
            max_age: raw
                .retention_max_age_days
                .map(|_| {
                    range(
                        raw.retention_max_age_days,
                        "retention_max_age_days",
                        0,
                        1,
                        36_600,
                        "days",
                    )
                })
                .transpose()?
                .map(|d| Duration::from_secs(d * 86_400)),
            undelivered: raw.retention_undelivered.unwrap_or(false),
        },
    })
}

fn service(raw: RawService, at: &KeyPath, cx: &Context<'_>) -> Result<ServiceConfig, Invalid> {
    let origin = match raw.origin {
        None => cx.host_name.to_owned(),
        Some(origin) => {
            token(&origin, 255).map_err(|why| {
                Invalid::new(
                    at.key("origin"),
                    format!("invalid origin {origin:?}: {why}"),
                )
            })?;
            origin
        }
    };
    let data_dir = match raw.data_dir {
        None => PathBuf::from(DEFAULT_DATA_DIR),
        Some(d) if d.is_empty() => {
            return Err(Invalid::new(at.key("data_dir"), "empty; give a directory"));
        }
        Some(d) => {
            let p = Path::new(&d);
            if p.is_absolute() {
                p.to_owned()
            } else {
                cx.dir.join(p)
            }
        }
    };
    Ok(ServiceConfig { origin, data_dir })
}

fn pipeline(raw: RawPipeline, at: &KeyPath) -> Result<PipelineConfig, Invalid> {
    let mut cfg = PipelineConfig::default();
    if let Some(n) = raw.queue_capacity {
        cfg.queue_capacity = usize::try_from(n)
            .ok()
            .filter(|n| (1..=PipelineConfig::MAX_QUEUE_CAPACITY).contains(n))
            .ok_or_else(|| {
                Invalid::new(
                    at.key("queue_capacity"),
                    format!(
                        "{n} is out of range; use 1 to {} events",
                        PipelineConfig::MAX_QUEUE_CAPACITY
                    ),
                )
            })?;
    }
    if let Some(name) = raw.overflow {
        cfg.overflow = [Overflow::Block, Overflow::Drop]
            .into_iter()
            .find(|o| o.as_str() == name)
            .ok_or_else(|| {
                Invalid::new(
                    at.key("overflow"),
                    format!(
                        "unknown overflow policy {name:?}; expected block (wait for room) \
                         or drop (discard and count)"
                    ),
                )
            })?;
    }
    Ok(cfg)
}

fn sink(raw: RawSink, index: usize, at: &KeyPath, cx: &Context<'_>) -> Result<SinkConfig, Invalid> {
    let Some(type_name) = raw.kind.clone() else {
        return Err(Invalid::new(
            at.key("type"),
            "missing sink type; add type = \"stdout\", \"stderr\", \"file\", \"syslog\", \"http\", \"nats\" or \"postgres\"",
        ));
    };
    if let Some(name) = &raw.name {
        sink_name(name).map_err(|why| Invalid::new(at.key("name"), why))?;
    }
    sinks::check_keys(&raw, &type_name, at)?;
    let delivery = sinks::options(&raw, at)?;
    let network = sinks::network(&raw, &type_name, cx.dir, at)?;
    if let (Some(_), Some(_)) = (&network, &raw.path) {
        return Err(Invalid::new(
            at.key("path"),
            format!("not allowed on a {type_name} sink; remove it, or set type = \"file\""),
        ));
    }
    let kind = match (type_name.as_str(), raw.path) {
        _ if network.is_some() => network.unwrap_or(SinkKind::Stdout),
        ("file", Some(path)) => SinkKind::File {
            path: file_path(&path, cx.dir, &at.key("path"))?,
        },
        ("file", None) => {
            return Err(Invalid::new(
                at.key("path"),
                "missing path; a file sink needs one, e.g. path = \"/var/log/vigil/events.log\"",
            ));
        }
        ("stdout" | "stderr", Some(_)) => {
            return Err(Invalid::new(
                at.key("path"),
                format!("not allowed on a {type_name} sink; remove it, or set type = \"file\""),
            ));
        }
        ("stdout", None) => SinkKind::Stdout,
        ("stderr", None) => SinkKind::Stderr,
        (other, _) => {
            return Err(Invalid::new(
                at.key("type"),
                format!(
                    "unknown sink type {other:?}; expected one of {}",
                    SINK_TYPES.join(", ")
                ),
            ));
        }
    };
    let name = raw.name.unwrap_or_else(|| format!("{type_name}-{index}"));
    let format = format(raw.format.as_deref(), &kind, raw.syslog, at, cx)?;
    let min_severity = match raw.min_severity {
        None => DEFAULT_SEVERITY,
        Some(s) => Severity::from_name(&s).ok_or_else(|| {
            let names: Vec<&str> = Severity::ALL.iter().map(|s| s.as_str()).collect();
            Invalid::new(
                at.key("min_severity"),
                format!(
                    "unknown severity {s:?}; expected one of {}",
                    names.join(", ")
                ),
            )
        })?,
    };
    let include = selectors(raw.include.as_deref(), &at.key("include"))?;
    let exclude = selectors(raw.exclude.as_deref(), &at.key("exclude"))?;
    let filter = Filter::new(min_severity, &include, &exclude);
    if !catalog::ALL.iter().any(|&k| filter.matches_kind(k)) {
        let key = if exclude.is_empty() {
            "include"
        } else {
            "exclude"
        };
        return Err(Invalid::new(
            at.key(key),
            "include and exclude leave no event for this sink; exclude less",
        ));
    }
    Ok(SinkConfig {
        name,
        kind,
        format,
        filter,
        delivery,
    })
}

/// Sink names end up in file names and metric labels: keep them plain.
fn sink_name(name: &str) -> Result<(), String> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if ok {
        Ok(())
    } else {
        Err(format!(
            "invalid sink name {name:?}; use 1 to 64 letters, digits, '-', '_' or '.'"
        ))
    }
}

fn file_path(path: &str, dir: &Path, at: &KeyPath) -> Result<PathBuf, Invalid> {
    if path.is_empty() {
        return Err(Invalid::new(at.clone(), "empty; give the file to write to"));
    }
    if path.ends_with('/') {
        return Err(Invalid::new(
            at.clone(),
            format!("{path:?} names a directory; give a file, e.g. \"{path}events.log\""),
        ));
    }
    let p = Path::new(path);
    Ok(if p.is_absolute() {
        p.to_owned()
    } else {
        dir.join(p)
    })
}

fn format(
    name: Option<&str>,
    kind: &SinkKind,
    syslog: Option<RawSyslog>,
    at: &KeyPath,
    cx: &Context<'_>,
) -> Result<Format, Invalid> {
    let name = name.unwrap_or(match kind {
        SinkKind::Syslog { .. } => "syslog",
        SinkKind::Stderr | SinkKind::Stdout => "text",
        _ => "json",
    });
    let json_only = matches!(kind, SinkKind::Http { .. } | SinkKind::Postgres { .. });
    if json_only && !matches!(name, "json" | "ocsf") {
        return Err(Invalid::new(
            at.key("format"),
            format!(
                "a {} sink sends JSON documents; use format = \"json\" or \"ocsf\", not {name:?}",
                kind.as_str()
            ),
        ));
    }
    if name == "syslog" {
        // Not `Format::from_name`: its defaults read the host name, and
        // validation does no I/O.
        let mut opts = cx.syslog.clone();
        syslog_options(&mut opts, syslog.unwrap_or_default(), at)?;
        return Ok(Format::Syslog(opts));
    }
    let Some(format) = Format::from_name(name) else {
        return Err(Invalid::new(
            at.key("format"),
            format!(
                "unknown format {name:?}; expected one of {}",
                Format::NAMES.join(", ")
            ),
        ));
    };
    if syslog.is_some() {
        return Err(Invalid::new(
            at.key("syslog"),
            format!(
                "syslog options need format = \"syslog\", not {name:?}; remove them, \
                 or set format = \"syslog\""
            ),
        ));
    }
    Ok(format)
}

/// Applies the `syslog` table over the defaults of [`SyslogOptions`].
fn syslog_options(opts: &mut SyslogOptions, raw: RawSyslog, at: &KeyPath) -> Result<(), Invalid> {
    let at = at.key("syslog");
    if let Some(f) = raw.facility.map(|f| f.0) {
        opts.facility = match &f {
            NameOrNumber::Name(name) => facility_from_name(name),
            NameOrNumber::Number(n) => u8::try_from(*n).ok().filter(|n| *n <= 23),
        }
        .ok_or_else(|| {
            let shown = match f {
                NameOrNumber::Name(name) => format!("{name:?}"),
                NameOrNumber::Number(n) => n.to_string(),
            };
            Invalid::new(
                at.key("facility"),
                format!(
                    "unknown facility {shown}; expected a name such as auth, authpriv, daemon, \
                     audit or local0 to local7, or a number 0 to 23"
                ),
            )
        })?;
    }
    if let Some(hostname) = raw.hostname {
        token(&hostname, 255).map_err(|why| {
            Invalid::new(
                at.key("hostname"),
                format!("invalid hostname {hostname:?}: {why}"),
            )
        })?;
        opts.hostname = hostname;
    }
    if let Some(app_name) = raw.app_name {
        token(&app_name, 48).map_err(|why| {
            Invalid::new(
                at.key("app_name"),
                format!("invalid app_name {app_name:?}: {why}"),
            )
        })?;
        opts.app_name = app_name;
    }
    Ok(())
}

fn selectors(list: Option<&[RawSelector]>, at: &KeyPath) -> Result<Vec<Selector>, Invalid> {
    let Some(list) = list else {
        return Ok(Vec::new());
    };
    list.iter()
        .enumerate()
        .map(|(i, s)| {
            match &s.0 {
                NameOrNumber::Name(name) => Selector::parse(name),
                NameOrNumber::Number(n) => u16::try_from(*n)
                    .map_err(|_| format!("no event has code {n} (see `vigil events`)"))
                    .and_then(Selector::code),
            }
            .map_err(|why| Invalid::new(at.index(i), format!("invalid selector: {why}")))
        })
        .collect()
}

/// Checks a name that goes into record headers (origin, syslog HOSTNAME and
/// APP-NAME): printable ASCII, no spaces, at most `max` bytes.
fn token(s: &str, max: usize) -> Result<(), String> {
    if !s.is_empty() && s.len() <= max && s.bytes().all(|b| b.is_ascii_graphic()) {
        Ok(())
    } else {
        Err(format!(
            "use 1 to {max} printable ASCII characters, without spaces"
        ))
    }
}

#[cfg(test)]
mod tests;
