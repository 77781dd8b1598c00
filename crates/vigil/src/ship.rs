//! `vigil serve`'s delivering sinks: files and network receivers, each fed
//! from the sealed audit log through its own cursor.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, bail};
use vigil_event::Emitter;
use vigil_seal::{DurableHandle, LineFormat};
use vigil_ship::deliver::{Delivery, DeliveryConfig, DeliverySink, DeliveryStats, SinkState};
use vigil_ship::transport::Transport;
use vigil_ship::transport::file::{FileConfig, FileTransport};
use vigil_ship::transport::nats::{NatsConfig, NatsTransport, StreamSpec};
use vigil_ship::transport::{http, postgres, syslog};

use crate::config::{AuditConfig, Config, HttpApi, SinkConfig, SinkKind, SyslogProtocol};

/// The first wait between retries; `retry_max_ms` caps the doubling.
const FIRST_RETRY: Duration = Duration::from_millis(100);

/// Where delivery keeps its cursors and rejected files.
pub(crate) fn state_dir(cfg: &Config) -> PathBuf {
    cfg.service.data_dir.join("delivery")
}

/// Starts a delivery thread for every file and network sink, or returns
/// `None` when there is none.
pub(crate) fn start(
    cfg: &Config,
    audit: &AuditConfig,
    durable: DurableHandle,
    emitter: Emitter,
) -> anyhow::Result<Option<Delivery>> {
    let mut sinks = Vec::new();
    for s in cfg.sinks.iter().filter(|s| s.kind.delivers_from_log()) {
        let transport = transport(s).with_context(|| format!("sink {:?}", s.name))?;
        let mut d = DeliverySink::new(s.name.clone(), s.format.clone(), transport);
        d.filter = s.filter.clone();
        d.batch = s.delivery.batch;
        d.backoff = (FIRST_RETRY, s.delivery.retry_max.max(FIRST_RETRY));
        d.lag_alert = s.delivery.lag_alert;
        sinks.push(d);
    }
    if sinks.is_empty() && !audit.retention.is_set() {
        return Ok(None);
    }
    if audit.format != LineFormat::Json {
        bail!(
            "file and network sinks deliver from the audit log, which needs format = \"json\" in [audit] (it is {:?})",
            audit.format.as_str()
        );
    }
    let config = DeliveryConfig {
        audit_dir: audit.dir.clone(),
        format: audit.format,
        state_dir: state_dir(cfg),
        durable: Some(durable),
        emitter: Some(emitter),
        retention: audit.retention.clone(),
    };
    Ok(Some(Delivery::start(config, sinks)?))
}

/// The transport of one delivering sink.
fn transport(s: &SinkConfig) -> anyhow::Result<Box<dyn Transport>> {
    Ok(match &s.kind {
        SinkKind::File { path } => {
            let mut c = FileConfig::new(path);
            c.max_bytes = s.delivery.max_bytes;
            c.keep = s.delivery.keep;
            Box::new(FileTransport::new(c))
        }
        SinkKind::Nats {
            address,
            subject,
            stream,
            create_stream,
            user,
            password_env,
            token_env,
        } => {
            let mut c = NatsConfig::new(address.clone(), subject.clone());
            c.timeout = s.delivery.timeout;
            c.user = user.clone();
            c.password = secret(password_env.as_deref(), "password_env")?;
            c.token = secret(token_env.as_deref(), "token_env")?;
            c.stream = stream.as_ref().map(|name| StreamSpec {
                name: name.clone(),
                create: *create_stream,
            });
            c.validate().map_err(anyhow::Error::msg)?;
            Box::new(NatsTransport::new(c))
        }
        SinkKind::Http {
            url,
            api,
            headers,
            token_env,
            gzip,
            tls_ca,
        } => {
            let kind = match api {
                HttpApi::SplunkHec => http::Kind::SplunkHec,
                HttpApi::Webhook => http::Kind::Webhook,
                HttpApi::ElasticBulk { index } => http::Kind::ElasticBulk {
                    index: index.clone(),
                },
            };
            let mut c = http::HttpConfig::new(url.clone(), kind);
            c.headers = headers.clone();
            c.token = secret(token_env.as_deref(), "token_env")?;
            c.gzip = *gzip;
            c.timeout = s.delivery.timeout;
            c.tls_ca = tls_ca.clone();
            Box::new(http::HttpTransport::new(c).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        SinkKind::Postgres {
            conninfo,
            password_env,
            table,
            create_table,
            tls_ca,
            tls_server_name,
            tls_cert,
            tls_key,
        } => {
            let mut conninfo = conninfo.clone();
            if let Some(password) = secret(password_env.as_deref(), "password_env")? {
                let quoted = password.replace('\\', "\\\\").replace('\'', "\\'");
                conninfo.push_str(&format!(" password='{quoted}'"));
            }
            let mut c = postgres::PostgresConfig::new(conninfo);
            c.table = table.clone();
            c.create_table = *create_table;
            c.timeout = s.delivery.timeout;
            c.tls_ca = tls_ca.clone();
            c.tls_server_name = tls_server_name.clone();
            c.tls_client_cert = tls_cert.clone();
            c.tls_client_key = tls_key.clone();
            Box::new(postgres::PostgresTransport::new(c).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        SinkKind::Syslog {
            address,
            protocol,
            tls,
        } => {
            let protocol = match protocol {
                SyslogProtocol::Udp => syslog::Protocol::Udp,
                SyslogProtocol::Tcp => syslog::Protocol::Tcp,
                SyslogProtocol::Tls => syslog::Protocol::Tls,
            };
            let mut c = syslog::SyslogConfig::new(protocol, address.clone());
            c.timeout = s.delivery.timeout;
            c.resend_window = s.delivery.resend_window;
            c.tls = tls.as_ref().map(|t| {
                let mut client = syslog::TlsClient::new(t.ca.clone());
                client.server_name = t.server_name.clone();
                client.client_cert = t.cert.clone();
                client.client_key = t.key.clone();
                client
            });
            Box::new(syslog::SyslogTransport::new(c).map_err(|e| anyhow::anyhow!("{e}"))?)
        }
        SinkKind::Stdout | SinkKind::Stderr => {
            bail!("standard output and error are written by the pipeline")
        }
    })
}

/// The metrics view of delivery stats.
pub(crate) fn gauges(stats: Vec<DeliveryStats>) -> Vec<vigil_proxy::SinkGauge> {
    stats
        .into_iter()
        .map(|s| vigil_proxy::SinkGauge {
            name: s.name,
            sent: s.sent,
            failed: s.failed,
            retried: s.retried,
            rejected: s.rejected,
            lag_events: s.lag_events,
            lag_ms: u64::try_from(s.lag.as_millis()).unwrap_or(u64::MAX),
            state: match s.state {
                SinkState::Up => 0,
                SinkState::Down => 1,
                SinkState::Parked => 2,
            },
        })
        .collect()
}

/// The secret in the environment variable `var` names, if `var` is set.
fn secret(var: Option<&str>, key: &str) -> anyhow::Result<Option<String>> {
    let Some(var) = var else { return Ok(None) };
    match std::env::var(var) {
        Ok(v) if !v.is_empty() => Ok(Some(v)),
        _ => bail!(
            "{key} names the environment variable {var}, which is not set; export it before starting vigil"
        ),
    }
}

/// Starts the syslog receiver of `[ingest]`, if configured: what it
/// receives is sealed and shipped like vigil's own events.
pub(crate) fn start_ingest(
    cfg: &Config,
    emitter: Emitter,
) -> anyhow::Result<Option<vigil_ship::ingest::Ingest>> {
    let Some(settings) = &cfg.ingest else {
        return Ok(None);
    };
    let mut config = vigil_ship::ingest::IngestConfig::default();
    config.udp = settings.udp;
    config.tcp = settings.tcp;
    config.tls = settings.tls.as_ref().map(|t| {
        let mut tls = vigil_ship::ingest::IngestTls::new(t.listen, t.cert.clone(), t.key.clone());
        tls.client_ca = t.client_ca.clone();
        tls
    });
    config.max_message = settings.max_message;
    // Forwarders keep their connection open for long quiet spells.
    config.idle_timeout = Duration::from_secs(3600);
    let ingest = vigil_ship::ingest::Ingest::start(config, emitter)
        .map_err(|e| anyhow::anyhow!("[ingest]: {e}"))?;
    Ok(Some(ingest))
}
