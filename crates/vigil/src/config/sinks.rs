//! `[[sinks]]` of the types that deliver from the sealed audit log: files,
//! syslog, HTTP collectors, NATS JetStream and a PostgreSQL table. Their
//! keys, checked here; the transports themselves live in `vigil-ship`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use super::error::{Invalid, KeyPath};
use super::raw::RawSink;
use super::{SinkKind, file_path};

/// How a sink delivers from the audit log: `batch`, `timeout_ms`,
/// `retry_max_ms`, `lag_alert`, and for files `max_mb` and `keep`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryOptions {
    /// `batch`: the most events sent at once (default 1,000).
    pub batch: usize,
    /// `timeout_ms`: connect, write and acknowledgement timeout (default 10 s).
    pub timeout: Duration,
    /// `retry_max_ms`: the longest wait between retries (default 30 s).
    pub retry_max: Duration,
    /// `lag_alert`: report `sink.lagging` past this many undelivered events
    /// (default 100,000).
    pub lag_alert: u64,
    /// `max_mb` (files): rotate at this size; none by default.
    pub max_bytes: Option<u64>,
    /// `keep` (files): rotated files kept (default 5).
    pub keep: usize,
    /// `resend_window_ms` (syslog over TCP and TLS, which has no
    /// acknowledgements): what was written in this window before a broken
    /// connection is sent again after reconnecting (default 2 s).
    pub resend_window: Duration,
}

impl Default for DeliveryOptions {
    fn default() -> Self {
        DeliveryOptions {
            batch: 1000,
            timeout: Duration::from_secs(10),
            retry_max: Duration::from_secs(30),
            lag_alert: 100_000,
            max_bytes: None,
            keep: 5,
            resend_window: Duration::from_secs(2),
        }
    }
}

/// `protocol` of a syslog sink.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SyslogProtocol {
    /// RFC 5426: one datagram per event; no delivery guarantee.
    Udp,
    /// RFC 6587 octet counting over TCP (default).
    Tcp,
    /// RFC 5425: octet counting over TLS.
    Tls,
}

/// `tls_ca`, `tls_server_name`, `tls_cert` and `tls_key`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TlsFiles {
    /// The CA that signs the receiver's certificate.
    pub ca: PathBuf,
    /// The name the receiver's certificate must carry (default: the host
    /// of `address`).
    pub server_name: Option<String>,
    /// vigil's client certificate, if the receiver asks for one.
    pub cert: Option<PathBuf>,
    /// Its key.
    pub key: Option<PathBuf>,
}

/// `api` of an HTTP sink.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum HttpApi {
    /// `splunk_hec`: Splunk's HTTP Event Collector, event endpoint.
    SplunkHec,
    /// `elastic_bulk`: the Elasticsearch / OpenSearch `_bulk` API, into `index`.
    ElasticBulk {
        /// `index`: where the documents go.
        index: String,
    },
    /// `webhook`: a JSON array of events per request.
    Webhook,
}

/// Every key a delivering sink may have, and the types that take it.
const KEYS: &[(&str, &[&str])] = &[
    ("batch", &["file", "syslog", "http", "nats", "postgres"]),
    ("timeout_ms", &["syslog", "http", "nats", "postgres"]),
    (
        "retry_max_ms",
        &["file", "syslog", "http", "nats", "postgres"],
    ),
    ("lag_alert", &["file", "syslog", "http", "nats", "postgres"]),
    ("max_mb", &["file"]),
    ("keep", &["file"]),
    ("address", &["syslog", "nats"]),
    ("protocol", &["syslog"]),
    ("tls_ca", &["syslog", "http", "postgres"]),
    ("tls_server_name", &["syslog", "postgres"]),
    ("tls_cert", &["syslog", "postgres"]),
    ("tls_key", &["syslog", "postgres"]),
    ("resend_window_ms", &["syslog"]),
    ("url", &["http"]),
    ("api", &["http"]),
    ("index", &["http"]),
    ("token_env", &["http", "nats"]),
    ("headers", &["http"]),
    ("gzip", &["http"]),
    ("subject", &["nats"]),
    ("stream", &["nats"]),
    ("create_stream", &["nats"]),
    ("user", &["nats"]),
    ("password_env", &["nats", "postgres"]),
    ("conninfo", &["postgres"]),
    ("table", &["postgres"]),
    ("create_table", &["postgres"]),
];

fn present(raw: &RawSink, key: &str) -> bool {
    match key {
        "batch" => raw.batch.is_some(),
        "timeout_ms" => raw.timeout_ms.is_some(),
        "retry_max_ms" => raw.retry_max_ms.is_some(),
        "lag_alert" => raw.lag_alert.is_some(),
        "max_mb" => raw.max_mb.is_some(),
        "keep" => raw.keep.is_some(),
        "address" => raw.address.is_some(),
        "protocol" => raw.protocol.is_some(),
        "tls_ca" => raw.tls_ca.is_some(),
        "tls_server_name" => raw.tls_server_name.is_some(),
        "tls_cert" => raw.tls_cert.is_some(),
        "tls_key" => raw.tls_key.is_some(),
        "resend_window_ms" => raw.resend_window_ms.is_some(),
        "url" => raw.url.is_some(),
        "api" => raw.api.is_some(),
        "index" => raw.index.is_some(),
        "token_env" => raw.token_env.is_some(),
        "headers" => raw.headers.is_some(),
        "gzip" => raw.gzip.is_some(),
        "subject" => raw.subject.is_some(),
        "stream" => raw.stream.is_some(),
        "create_stream" => raw.create_stream.is_some(),
        "user" => raw.user.is_some(),
        "password_env" => raw.password_env.is_some(),
        "conninfo" => raw.conninfo.is_some(),
        "table" => raw.table.is_some(),
        "create_table" => raw.create_table.is_some(),
        _ => false,
    }
}

/// Refuses keys that do not belong to a sink of `type_name`.
pub(super) fn check_keys(raw: &RawSink, type_name: &str, at: &KeyPath) -> Result<(), Invalid> {
    for (key, types) in KEYS {
        if present(raw, key) && !types.contains(&type_name) {
            return Err(Invalid::new(
                at.key(key),
                format!(
                    "not allowed on a {type_name} sink; it belongs to {} sinks",
                    types.join(", ")
                ),
            ));
        }
    }
    Ok(())
}

fn required<'a>(
    value: &'a Option<String>,
    at: &KeyPath,
    key: &str,
    example: &str,
) -> Result<&'a str, Invalid> {
    match value.as_deref() {
        Some(v) if !v.trim().is_empty() => Ok(v),
        Some(_) => Err(Invalid::new(
            at.key(key),
            format!("empty; e.g. {key} = {example}"),
        )),
        None => Err(Invalid::new(
            at.key(key),
            format!("missing {key}; this sink needs one, e.g. {key} = {example}"),
        )),
    }
}

fn host_port(value: &str, at: &KeyPath, key: &str) -> Result<String, Invalid> {
    let ok = value
        .rsplit_once(':')
        .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(
            at.key(key),
            format!("{value:?} is not host:port; e.g. {key} = \"siem.example:6514\""),
        ))
    }
}

fn env_name(value: &Option<String>, at: &KeyPath, key: &str) -> Result<Option<String>, Invalid> {
    match value {
        None => Ok(None),
        Some(v)
            if !v.is_empty()
                && v.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'_')
                && !v.as_bytes()[0].is_ascii_digit() =>
        {
            Ok(Some(v.clone()))
        }
        Some(v) => Err(Invalid::new(
            at.key(key),
            format!(
                "{v:?} is not an environment variable name; {key} names the variable that \
                 holds the secret (the secret itself never goes in this file)"
            ),
        )),
    }
}

fn path(
    value: &Option<String>,
    dir: &Path,
    at: &KeyPath,
    key: &str,
) -> Result<Option<PathBuf>, Invalid> {
    value
        .as_deref()
        .map(|p| file_path(p, dir, &at.key(key)))
        .transpose()
}

/// `tls_cert` and `tls_key`: both or neither.
fn client_certificate(
    raw: &RawSink,
    dir: &Path,
    at: &KeyPath,
) -> Result<(Option<PathBuf>, Option<PathBuf>), Invalid> {
    let cert = path(&raw.tls_cert, dir, at, "tls_cert")?;
    let key = path(&raw.tls_key, dir, at, "tls_key")?;
    match (&cert, &key) {
        (Some(_), None) | (None, Some(_)) => Err(Invalid::new(
            at.key(if cert.is_some() {
                "tls_key"
            } else {
                "tls_cert"
            }),
            "a client certificate needs both tls_cert and tls_key",
        )),
        _ => Ok((cert, key)),
    }
}

fn positive(value: Option<i64>, at: &KeyPath, key: &str, max: i64) -> Result<Option<u64>, Invalid> {
    match value {
        None => Ok(None),
        Some(v) if (1..=max).contains(&v) => Ok(Some(v as u64)),
        Some(v) => Err(Invalid::new(
            at.key(key),
            format!("{v} is out of range; use 1 to {max}"),
        )),
    }
}

/// The delivery options of any delivering sink.
pub(super) fn options(raw: &RawSink, at: &KeyPath) -> Result<DeliveryOptions, Invalid> {
    let d = DeliveryOptions::default();
    Ok(DeliveryOptions {
        batch: positive(raw.batch, at, "batch", 100_000)?.map_or(d.batch, |v| v as usize),
        timeout: positive(raw.timeout_ms, at, "timeout_ms", 600_000)?
            .map_or(d.timeout, Duration::from_millis),
        retry_max: positive(raw.retry_max_ms, at, "retry_max_ms", 3_600_000)?
            .map_or(d.retry_max, Duration::from_millis),
        lag_alert: positive(raw.lag_alert, at, "lag_alert", i64::MAX)?.unwrap_or(d.lag_alert),
        max_bytes: positive(raw.max_mb, at, "max_mb", 1 << 20)?.map(|mb| mb << 20),
        keep: positive(raw.keep, at, "keep", 1000)?.map_or(d.keep, |v| v as usize),
        resend_window: positive(raw.resend_window_ms, at, "resend_window_ms", 600_000)?
            .map_or(d.resend_window, Duration::from_millis),
    })
}

/// The [`SinkKind`] of a network sink.
pub(super) fn network(
    raw: &RawSink,
    type_name: &str,
    dir: &Path,
    at: &KeyPath,
) -> Result<Option<SinkKind>, Invalid> {
    Ok(Some(match type_name {
        "syslog" => {
            let address = host_port(
                required(&raw.address, at, "address", "\"siem.example:6514\"")?,
                at,
                "address",
            )?;
            let protocol = match raw.protocol.as_deref().unwrap_or("tcp") {
                "udp" => SyslogProtocol::Udp,
                "tcp" => SyslogProtocol::Tcp,
                "tls" => SyslogProtocol::Tls,
                other => {
                    return Err(Invalid::new(
                        at.key("protocol"),
                        format!("unknown protocol {other:?}; expected udp, tcp or tls"),
                    ));
                }
            };
            let tls = match protocol {
                SyslogProtocol::Tls => {
                    let ca = path(&raw.tls_ca, dir, at, "tls_ca")?.ok_or_else(|| {
                        Invalid::new(
                            at.key("tls_ca"),
                            "missing tls_ca; a TLS syslog sink verifies the receiver against this CA file",
                        )
                    })?;
                    let (cert, key) = client_certificate(raw, dir, at)?;
                    Some(TlsFiles {
                        ca,
                        server_name: raw.tls_server_name.clone(),
                        cert,
                        key,
                    })
                }
                _ => {
                    for key in ["tls_ca", "tls_server_name", "tls_cert", "tls_key"] {
                        if present(raw, key) {
                            return Err(Invalid::new(
                                at.key(key),
                                "TLS settings need protocol = \"tls\"; remove them, or set it",
                            ));
                        }
                    }
                    None
                }
            };
            SinkKind::Syslog {
                address,
                protocol,
                tls,
            }
        }
        "http" => {
            let url = required(
                &raw.url,
                at,
                "url",
                "\"https://splunk.example:8088/services/collector/event\"",
            )?;
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                return Err(Invalid::new(
                    at.key("url"),
                    format!("{url:?} is not an http:// or https:// URL"),
                ));
            }
            let api = match required(&raw.api, at, "api", "\"splunk_hec\"")? {
                "splunk_hec" => HttpApi::SplunkHec,
                "webhook" => HttpApi::Webhook,
                "elastic_bulk" => HttpApi::ElasticBulk {
                    index: required(&raw.index, at, "index", "\"vigil-events\"")?.to_owned(),
                },
                other => {
                    return Err(Invalid::new(
                        at.key("api"),
                        format!(
                            "unknown api {other:?}; expected splunk_hec, elastic_bulk or webhook"
                        ),
                    ));
                }
            };
            if raw.index.is_some() && !matches!(api, HttpApi::ElasticBulk { .. }) {
                return Err(Invalid::new(
                    at.key("index"),
                    "index needs api = \"elastic_bulk\"",
                ));
            }
            SinkKind::Http {
                url: url.to_owned(),
                api,
                headers: raw
                    .headers
                    .clone()
                    .unwrap_or_default()
                    .into_iter()
                    .collect(),
                token_env: env_name(&raw.token_env, at, "token_env")?,
                gzip: raw.gzip.unwrap_or(false),
                tls_ca: path(&raw.tls_ca, dir, at, "tls_ca")?,
            }
        }
        "nats" => SinkKind::Nats {
            address: host_port(
                required(&raw.address, at, "address", "\"nats.example:4222\"")?,
                at,
                "address",
            )?,
            subject: required(&raw.subject, at, "subject", "\"vigil.events\"")?.to_owned(),
            stream: raw.stream.clone(),
            create_stream: raw.create_stream.unwrap_or(false),
            user: raw.user.clone(),
            password_env: env_name(&raw.password_env, at, "password_env")?,
            token_env: env_name(&raw.token_env, at, "token_env")?,
        },
        "postgres" => {
            let table = raw
                .table
                .clone()
                .unwrap_or_else(|| "vigil_events".to_owned());
            let plain = |s: &str| {
                !s.is_empty()
                    && s.len() <= 63
                    && s.bytes()
                        .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
                    && !s.as_bytes()[0].is_ascii_digit()
            };
            if !table.split('.').all(plain) || table.split('.').count() > 2 {
                return Err(Invalid::new(
                    at.key("table"),
                    format!(
                        "{table:?} is not a plain table name; use lower-case letters, digits and _, optionally schema.table"
                    ),
                ));
            }
            let conninfo = required(
                &raw.conninfo,
                at,
                "conninfo",
                "\"host=db.example dbname=audit user=vigil\"",
            )?;
            if conninfo.to_ascii_lowercase().contains("password") {
                return Err(Invalid::new(
                    at.key("conninfo"),
                    "holds a password; remove it and name the environment variable that holds it with password_env",
                ));
            }
            let (tls_cert, tls_key) = client_certificate(raw, dir, at)?;
            SinkKind::Postgres {
                conninfo: conninfo.to_owned(),
                password_env: env_name(&raw.password_env, at, "password_env")?,
                table,
                create_table: raw.create_table.unwrap_or(false),
                tls_ca: path(&raw.tls_ca, dir, at, "tls_ca")?,
                tls_server_name: raw.tls_server_name.clone(),
                tls_cert,
                tls_key,
            }
        }
        _ => return Ok(None),
    }))
}
