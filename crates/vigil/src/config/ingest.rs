//! `[ingest]`: vigil's syslog receiver, so programs next to the database
//! can have their own security events sealed and shipped.
//!
//! ```toml
//! [ingest]
//! syslog_udp = "127.0.0.1:5514"
//! syslog_tcp = "127.0.0.1:5514"
//! syslog_tls = "0.0.0.0:6514"
//! tls_cert = "/etc/vigil/ingest.pem"
//! tls_key = "/etc/vigil/ingest.key"
//! tls_client_ca = "/etc/vigil/apps-ca.pem"   # optional: require client certificates
//! max_message_kb = 64
//! ```

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::error::{Invalid, KeyPath};

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(super) struct RawIngest {
    syslog_udp: Option<String>,
    syslog_tcp: Option<String>,
    syslog_tls: Option<String>,
    tls_cert: Option<String>,
    tls_key: Option<String>,
    tls_client_ca: Option<String>,
    max_message_kb: Option<i64>,
}

/// `[ingest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestSettings {
    /// `syslog_udp`: where to receive RFC 5426 datagrams.
    pub udp: Option<SocketAddr>,
    /// `syslog_tcp`: where to receive syslog over TCP (octet counting or
    /// newline framing).
    pub tcp: Option<SocketAddr>,
    /// `syslog_tls`, with `tls_cert`, `tls_key` and optionally
    /// `tls_client_ca`: syslog over TLS (RFC 5425).
    pub tls: Option<IngestTlsSettings>,
    /// `max_message_kb`: the largest message accepted (default 64 KiB).
    pub max_message: usize,
}

/// The TLS listener of `[ingest]`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct IngestTlsSettings {
    /// `syslog_tls`.
    pub listen: SocketAddr,
    /// `tls_cert`: the receiver's certificate chain (PEM).
    pub cert: PathBuf,
    /// `tls_key`: its key (PEM).
    pub key: PathBuf,
    /// `tls_client_ca`: when set, clients must present a certificate it signed.
    pub client_ca: Option<PathBuf>,
}

fn addr(value: &Option<String>, at: &KeyPath, key: &str) -> Result<Option<SocketAddr>, Invalid> {
    value
        .as_deref()
        .map(|v| {
            v.parse().map_err(|_| {
                Invalid::new(
                    at.key(key),
                    format!("{v:?} is not an address and port; e.g. {key} = \"127.0.0.1:5514\""),
                )
            })
        })
        .transpose()
}

fn file(
    value: &Option<String>,
    dir: &Path,
    at: &KeyPath,
    key: &str,
) -> Result<Option<PathBuf>, Invalid> {
    match value.as_deref() {
        None => Ok(None),
        Some("") => Err(Invalid::new(at.key(key), "empty; give a PEM file")),
        Some(v) => {
            let p = Path::new(v);
            Ok(Some(if p.is_absolute() {
                p.to_owned()
            } else {
                dir.join(p)
            }))
        }
    }
}

pub(super) fn ingest(raw: RawIngest, at: &KeyPath, dir: &Path) -> Result<IngestSettings, Invalid> {
    let udp = addr(&raw.syslog_udp, at, "syslog_udp")?;
    let tcp = addr(&raw.syslog_tcp, at, "syslog_tcp")?;
    let tls_listen = addr(&raw.syslog_tls, at, "syslog_tls")?;
    let cert = file(&raw.tls_cert, dir, at, "tls_cert")?;
    let key = file(&raw.tls_key, dir, at, "tls_key")?;
    let client_ca = file(&raw.tls_client_ca, dir, at, "tls_client_ca")?;
    let tls = match (tls_listen, cert, key) {
        (Some(listen), Some(cert), Some(key)) => Some(IngestTlsSettings {
            listen,
            cert,
            key,
            client_ca,
        }),
        (Some(_), None, _) => {
            return Err(Invalid::new(
                at.key("tls_cert"),
                "missing; syslog_tls needs tls_cert and tls_key",
            ));
        }
        (Some(_), _, None) => {
            return Err(Invalid::new(
                at.key("tls_key"),
                "missing; syslog_tls needs tls_cert and tls_key",
            ));
        }
        (None, c, k) if c.is_some() || k.is_some() || client_ca.is_some() => {
            let key = if c.is_some() {
                "tls_cert"
            } else if k.is_some() {
                "tls_key"
            } else {
                "tls_client_ca"
            };
            return Err(Invalid::new(
                at.key(key),
                "only used with syslog_tls; remove it, or add syslog_tls",
            ));
        }
        (None, _, _) => None,
    };
    if udp.is_none() && tcp.is_none() && tls.is_none() {
        return Err(Invalid::new(
            at.clone(),
            "no listener; add syslog_udp, syslog_tcp or syslog_tls, or remove [ingest]",
        ));
    }
    let max_message = match raw.max_message_kb {
        None => 64 << 10,
        Some(kb @ 1..=1024) => (kb as usize) << 10,
        Some(kb) => {
            return Err(Invalid::new(
                at.key("max_message_kb"),
                format!("{kb} is out of range; use 1 to 1024 KiB"),
            ));
        }
    };
    Ok(IngestSettings {
        udp,
        tcp,
        tls,
        max_message,
    })
}
