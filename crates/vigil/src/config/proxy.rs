//! `[proxy]`, `[admin]` and `[schema]`: what `vigil serve` runs.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use vigil_proxy::schema::MonitoredColumn;
use vigil_proxy::{
    ClientCertMode, ClientTls, ClientTlsMode, Coverage, ProxyConfig, UpstreamTls, UpstreamTlsMode,
};

use super::error::{Invalid, KeyPath};

/// The default listen address.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:9393";
/// The default PostgreSQL address.
pub const DEFAULT_UPSTREAM: &str = "127.0.0.1:5432";

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawProxy {
    listen: Option<OneOrMany>,
    upstream: Option<String>,
    coverage: Option<OneOrMany>,
    shutdown_timeout_s: Option<i64>,
    connect_timeout_s: Option<i64>,
    max_connections: Option<i64>,
    workers: Option<i64>,
    tls: Option<RawClientTls>,
    upstream_tls: Option<RawUpstreamTls>,
}

#[derive(Debug, Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn items(&self) -> Vec<&str> {
        match self {
            OneOrMany::One(s) => vec![s.as_str()],
            OneOrMany::Many(v) => v.iter().map(String::as_str).collect(),
        }
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawClientTls {
    cert: Option<String>,
    key: Option<String>,
    client_ca: Option<String>,
    client_cert: Option<String>,
    required: Option<bool>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawUpstreamTls {
    mode: Option<String>,
    ca_file: Option<String>,
    server_name: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawAdmin {
    listen: Option<String>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawSchema {
    user: Option<String>,
    database: Option<String>,
    password_env: Option<String>,
    columns: Option<Vec<RawColumn>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawColumn {
    table: Option<String>,
    column: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
}

/// `[schema]`: monitored columns, checked at start and on reload.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SchemaConfig {
    /// `user`: the role vigil connects as to read the catalog.
    pub user: String,
    /// `database`: where the monitored tables are.
    pub database: String,
    /// `password_env`: the environment variable holding that role's
    /// password, if it needs one (never the password itself).
    pub password_env: Option<String>,
    /// `[[schema.columns]]`.
    pub columns: Vec<MonitoredColumn>,
}

fn path(value: &str, dir: &Path) -> PathBuf {
    let p = Path::new(value);
    if p.is_absolute() {
        p.to_owned()
    } else {
        dir.join(p)
    }
}

fn seconds(value: Option<i64>, at: &KeyPath, default: u64, max: u64) -> Result<Duration, Invalid> {
    match value {
        None => Ok(Duration::from_secs(default)),
        Some(n) => u64::try_from(n)
            .ok()
            .filter(|n| (1..=max).contains(n))
            .map(Duration::from_secs)
            .ok_or_else(|| {
                Invalid::new(
                    at.clone(),
                    format!("{n} is out of range; use 1 to {max} seconds"),
                )
            }),
    }
}

pub(super) fn socket_addr(value: &str, at: &KeyPath) -> Result<SocketAddr, Invalid> {
    value.parse().map_err(|_| {
        Invalid::new(
            at.clone(),
            format!("{value:?} is not an address and port; write e.g. \"127.0.0.1:9393\" or \"[::1]:9393\""),
        )
    })
}

fn host_port(value: &str, at: &KeyPath) -> Result<String, Invalid> {
    let ok = value
        .rsplit_once(':')
        .is_some_and(|(h, p)| !h.is_empty() && p.parse::<u16>().is_ok_and(|p| p > 0));
    if ok {
        Ok(value.to_owned())
    } else {
        Err(Invalid::new(
            at.clone(),
            format!("{value:?} is not host:port; write e.g. \"db.internal:5432\""),
        ))
    }
}

pub(super) fn proxy(raw: RawProxy, at: &KeyPath, dir: &Path) -> Result<ProxyConfig, Invalid> {
    let listen = match &raw.listen {
        None => vec![socket_addr(DEFAULT_LISTEN, at)?],
        Some(list) => {
            let items = list.items();
            if items.is_empty() {
                return Err(Invalid::new(
                    at.key("listen"),
                    "empty; give at least one address",
                ));
            }
            items
                .iter()
                .enumerate()
                .map(|(i, a)| {
                    let key = match list {
                        OneOrMany::One(_) => at.key("listen"),
                        OneOrMany::Many(_) => at.key("listen").index(i),
                    };
                    socket_addr(a, &key)
                })
                .collect::<Result<Vec<_>, _>>()?
        }
    };
    let upstream = match &raw.upstream {
        None => DEFAULT_UPSTREAM.to_owned(),
        Some(u) => host_port(u, &at.key("upstream"))?,
    };
    let mut cfg = ProxyConfig::new(listen[0], upstream);
    cfg.listen = listen;
    if let Some(cov) = &raw.coverage {
        cfg.coverage = Coverage::parse(&cov.items().join(","))
            .map_err(|why| Invalid::new(at.key("coverage"), why))?;
    }
    cfg.shutdown_timeout = seconds(
        raw.shutdown_timeout_s,
        &at.key("shutdown_timeout_s"),
        30,
        86_400,
    )?;
    cfg.connect_timeout = seconds(
        raw.connect_timeout_s,
        &at.key("connect_timeout_s"),
        10,
        3_600,
    )?;
    if let Some(n) = raw.max_connections {
        cfg.max_connections = usize::try_from(n)
            .ok()
            .filter(|n| (1..=1_000_000).contains(n))
            .ok_or_else(|| {
                Invalid::new(
                    at.key("max_connections"),
                    format!("{n} is out of range; use 1 to 1000000"),
                )
            })?;
    }
    if let Some(n) = raw.workers {
        cfg.workers = usize::try_from(n)
            .ok()
            .filter(|n| (1..=256).contains(n))
            .ok_or_else(|| {
                Invalid::new(
                    at.key("workers"),
                    format!("{n} is out of range; use 1 to 256 threads"),
                )
            })?;
    }
    if let Some(tls) = raw.tls {
        let at = at.key("tls");
        let need = |v: Option<String>, key: &str, example: &str| {
            v.filter(|s| !s.is_empty())
                .map(|s| path(&s, dir))
                .ok_or_else(|| {
                    Invalid::new(
                        at.key(key),
                        format!(
                            "missing; TLS towards clients needs it, e.g. {key} = \"{example}\""
                        ),
                    )
                })
        };
        let mut client = ClientTls::new(
            need(tls.cert, "cert", "/etc/vigil/server.crt")?,
            need(tls.key, "key", "/etc/vigil/server.key")?,
        );
        client.client_ca = tls.client_ca.map(|s| path(&s, dir));
        client.client_cert = match tls.client_cert.as_deref() {
            None | Some("none") => ClientCertMode::None,
            Some("optional") => ClientCertMode::Optional,
            Some("required") => ClientCertMode::Required,
            Some(other) => {
                return Err(Invalid::new(
                    at.key("client_cert"),
                    format!("unknown value {other:?}; expected none, optional or required"),
                ));
            }
        };
        if client.client_cert != ClientCertMode::None && client.client_ca.is_none() {
            return Err(Invalid::new(
                at.key("client_ca"),
                "missing; client certificates are checked against it, e.g. client_ca = \"/etc/vigil/clients-ca.crt\"",
            ));
        }
        if tls.required == Some(true) {
            client.mode = ClientTlsMode::Require;
        }
        cfg.client_tls = Some(client);
    }
    if let Some(up) = raw.upstream_tls {
        let at = at.key("upstream_tls");
        let mut t = UpstreamTls::default();
        if let Some(mode) = &up.mode {
            t.mode = UpstreamTlsMode::from_name(mode).ok_or_else(|| {
                Invalid::new(
                    at.key("mode"),
                    format!(
                        "unknown mode {mode:?}; expected disable, prefer, require or verify-full"
                    ),
                )
            })?;
        }
        t.ca_file = up.ca_file.map(|s| path(&s, dir));
        t.server_name = up.server_name;
        if t.mode == UpstreamTlsMode::VerifyFull && t.ca_file.is_none() {
            return Err(Invalid::new(
                at.key("ca_file"),
                "missing; verify-full checks PostgreSQL's certificate against it",
            ));
        }
        cfg.upstream_tls = t;
    }
    Ok(cfg)
}

pub(super) fn admin(raw: RawAdmin, at: &KeyPath) -> Result<Option<SocketAddr>, Invalid> {
    match raw.listen {
        None => Ok(None),
        Some(a) => socket_addr(&a, &at.key("listen")).map(Some),
    }
}

pub(super) fn schema(raw: RawSchema, at: &KeyPath) -> Result<SchemaConfig, Invalid> {
    let user = raw.user.filter(|u| !u.is_empty()).ok_or_else(|| {
        Invalid::new(
            at.key("user"),
            "missing; the schema check connects as this role, e.g. user = \"vigil_monitor\"",
        )
    })?;
    let database = raw.database.unwrap_or_else(|| "postgres".to_owned());
    let list = raw.columns.unwrap_or_default();
    if list.is_empty() {
        return Err(Invalid::new(
            at.key("columns"),
            "no monitored columns; add [[schema.columns]] tables with table, column and type",
        ));
    }
    let mut columns = Vec::with_capacity(list.len());
    for (i, c) in list.into_iter().enumerate() {
        let at = at.key("columns").index(i);
        let field = |v: Option<String>, key: &str| {
            v.filter(|s| !s.trim().is_empty())
                .ok_or_else(|| Invalid::new(at.key(key), format!("missing {key}")))
        };
        columns.push(MonitoredColumn {
            table: field(c.table, "table")?,
            column: field(c.column, "column")?,
            expected_type: field(c.kind, "type")?,
        });
    }
    Ok(SchemaConfig {
        user,
        database,
        password_env: raw.password_env,
        columns,
    })
}
