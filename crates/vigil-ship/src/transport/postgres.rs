//! Delivery into a PostgreSQL table.
//!
//! [`PostgresTransport`] owns a single-threaded tokio runtime and one
//! connection, opened at the first send and again after any error; when
//! the server closed the connection while it was idle, the batch goes out
//! at once on a new one. Each batch is one transaction: a binary `COPY` into a temporary table, then
//! `INSERT … SELECT … ON CONFLICT (origin, seq) DO NOTHING`, so a batch sent
//! again adds nothing.
//!
//! # Table
//!
//! ```text
//! origin    text         NOT NULL  the instance that sealed the event
//! seq       bigint       NOT NULL  its position in that instance's log
//! time      timestamptz            when it happened (NULL when PostgreSQL
//!                                  cannot hold the time)
//! code      integer                catalog code
//! name      text                   catalog name, e.g. auth.failed
//! severity  text                   debug .. alert
//! event     jsonb                  the event in vigil's json format
//! line      text         NOT NULL  the sealed line exactly as in the audit
//!                                  log, seal fields included: the rows'
//!                                  lines, in seq order, verify like the log
//! PRIMARY KEY (origin, seq)
//! ```
//!
//! With `create_table`, a table that does not exist yet is created with
//! this layout and the statement trigger `vigil_append_only`, which makes
//! `UPDATE`, `DELETE` and `TRUNCATE` fail with an error naming the table.
//! (The table's owner or a superuser can still drop or disable the trigger;
//! the seal fields in `line` show any change made that way.) An existing
//! table is used as it is.
//!
//! The `event` column holds the event in vigil's `json` format whatever
//! the sink's format; a NUL character in it, which `jsonb` cannot hold, is
//! stored as U+FFFD. A record whose sealed line is not UTF-8 or holds a NUL
//! byte cannot be stored in a `text` column and is rejected.
//!
//! # Errors
//!
//! ```text
//! connection refused or closed, timeout,
//! SQLSTATE classes 08, 40, 53, 55, 57, 58, XX   SendError::Retry
//! other SQLSTATEs: 28P01/28000 authentication, 3D000 no database,
//! 42P01 no table, 42501 permission, …           SendError::Park
//! ```
//!
//! Messages name the server as `postgres://user@host:port/dbname`; never
//! with the password.
//!
//! # TLS
//!
//! `sslmode` in the conninfo asks for TLS, and the server's certificate is
//! always verified against the CA certificates of `tls_ca`:
//!
//! ```text
//! sslmode absent, disable   no TLS (tls_ca is refused)
//! require, verify-ca        the chain up to tls_ca, and the dates
//! verify-full               also the name: tls_server_name, else the host
//! prefer, allow             refused: they fall back to no TLS unnoticed
//! ```
//!
//! A certificate that does not verify, or a server that does not accept
//! TLS, is [`SendError::Park`]. SCRAM over TLS uses channel binding
//! (`SCRAM-SHA-256-PLUS`) with the server's certificate.

use std::fmt;
use std::io::{self, Cursor};
use std::path::PathBuf;
use std::pin::pin;
use std::str::FromStr;
use std::time::Duration;

use futures_util::SinkExt;
use tokio::runtime::Runtime;
use tokio::task::JoinHandle;
use tokio_postgres::config::{Host, SslMode};
use tokio_postgres::{Client, Config, NoTls};
use zeroize::Zeroizing;

use self::tls::{MakeRustls, Verify};
use super::{Record, SendError, Sent, Transport};

mod tls;

/// The table used when none is configured.
pub const DEFAULT_TABLE: &str = "vigil_events";
/// How long connecting, or writing one batch, may take by default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The key of the advisory lock taken while creating the table, so vigil
/// instances starting together do not race (`"vigilpg\x01"`).
const SETUP_LOCK: i64 = 0x7669_6769_6c70_6701;
/// The temporary table each batch is copied into.
const BATCH_TABLE: &str = "pg_temp.vigil_batch";
/// The columns, in the order of the table and of the `COPY` data.
const COLUMNS: &str = "origin, seq, time, code, name, severity, event, line";
/// Microseconds from the Unix epoch to PostgreSQL's, 2000-01-01.
const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;
/// The earliest `timestamptz`, 4714-11-24 BC, in PostgreSQL's microseconds.
const PG_MIN_TIMESTAMP: i64 = -211_813_488_000_000_000;
/// The first `timestamptz` past the latest, 294277-01-01, likewise.
const PG_END_TIMESTAMP: i64 = 9_223_371_331_200_000_000;

/// Configuration of a [`PostgresTransport`].
#[derive(Clone)]
pub struct PostgresConfig {
    /// Where to connect, as a libpq-style connection string:
    /// `host=db.example user=vigil password=… dbname=audit` or
    /// `postgresql://vigil:…@db.example/audit`. `sslmode` is `disable`
    /// (the default), `require`, `verify-ca` or `verify-full`; see the
    /// [module](self) docs. The password is never shown in `Debug` output
    /// or errors.
    pub conninfo: String,
    /// The table, `name` or `schema.name`: letters, digits and `_`, folded
    /// to lower case as PostgreSQL does with unquoted names.
    pub table: String,
    /// Creates the table (and its append-only trigger) when it does not
    /// exist.
    pub create_table: bool,
    /// How long connecting, or writing one batch, may take.
    pub timeout: Duration,
    /// The CA certificates (PEM) the server's certificate must chain to:
    /// required with an `sslmode` that asks for TLS, refused without.
    pub tls_ca: Option<PathBuf>,
    /// The name `sslmode=verify-full` checks in the server's certificate
    /// (and TLS sends as SNI) instead of the conninfo's host.
    pub tls_server_name: Option<String>,
    /// vigil's client certificate chain (PEM), for a server that asks for
    /// one (`hostssl … cert`, or `clientcert=verify-full`); with
    /// [`tls_client_key`](Self::tls_client_key) and TLS only.
    pub tls_client_cert: Option<PathBuf>,
    /// Its private key (PEM: PKCS#8, PKCS#1 or SEC1).
    pub tls_client_key: Option<PathBuf>,
}

impl PostgresConfig {
    /// A configuration for `conninfo`, with the table `vigil_events`
    /// created when missing, a 10 s timeout and no CA certificates.
    pub fn new(conninfo: impl Into<String>) -> PostgresConfig {
        PostgresConfig {
            conninfo: conninfo.into(),
            table: DEFAULT_TABLE.to_owned(),
            create_table: true,
            timeout: DEFAULT_TIMEOUT,
            tls_ca: None,
            tls_server_name: None,
            tls_client_cert: None,
            tls_client_key: None,
        }
    }
}

impl fmt::Debug for PostgresConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let conninfo = match split_conninfo(&self.conninfo) {
            Some(split) => Config::from_str(&split.rest).map(|c| target(&c)).ok(),
            None => None,
        };
        let conninfo = conninfo.unwrap_or_else(|| "<invalid connection string>".to_owned());
        f.debug_struct("PostgresConfig")
            .field("conninfo", &conninfo)
            .field("table", &self.table)
            .field("create_table", &self.create_table)
            .field("timeout", &self.timeout)
            .field("tls_ca", &self.tls_ca)
            .field("tls_server_name", &self.tls_server_name)
            .field("tls_client_cert", &self.tls_client_cert)
            .field("tls_client_key", &self.tls_client_key)
            .finish()
    }
}

/// Why a [`PostgresConfig`] cannot be used; the message says what to
/// change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// A [`Transport`] into a PostgreSQL table; see the [module](self) docs.
pub struct PostgresTransport {
    // Fields drop in this order: the connection before its runtime.
    session: Option<Session>,
    settings: Settings,
    runtime: Runtime,
}

impl fmt::Debug for PostgresTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("PostgresTransport")
            .field("target", &self.settings.target)
            .field("table", &self.settings.table)
            .field("connected", &self.session.is_some())
            .finish_non_exhaustive()
    }
}

/// Everything a send needs but the connection.
struct Settings {
    config: Config,
    /// `postgres://user@host:port/dbname`, for messages.
    target: String,
    /// `schema.name` or `name`, for messages.
    table: String,
    /// The table, quoted: `"schema"."name"` or `"name"`.
    quoted: String,
    /// `CREATE TABLE …` and the trigger; `None` without `create_table`.
    create: Option<String>,
    /// `CREATE TEMPORARY TABLE … vigil_batch`.
    temp: String,
    /// `COPY pg_temp.vigil_batch … FROM STDIN`.
    copy: String,
    /// `INSERT INTO … SELECT … ON CONFLICT DO NOTHING`.
    insert: String,
    timeout: Duration,
    /// The password, to scrub from messages should a server echo it.
    password: Option<Zeroizing<String>>,
    /// The TLS connector; `None` without TLS.
    tls: Option<MakeRustls>,
}

/// An open connection and the task that drives it.
struct Session {
    client: Client,
    task: AbortOnDrop,
}

/// A task that ends when its handle is dropped.
struct AbortOnDrop(JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}

impl PostgresTransport {
    /// Checks `config` and starts the runtime; connects at the first
    /// [`send`](Transport::send).
    pub fn new(config: PostgresConfig) -> Result<PostgresTransport, ConfigError> {
        let split = split_conninfo(&config.conninfo);
        let keys = split.as_ref().map_or(&[][..], |s| &s.keys[..]);
        let foreign = |k: &&String| {
            k.starts_with("ssl") && !matches!(k.as_str(), "sslmode" | "sslnegotiation")
        };
        if let Some(key) = keys.iter().find(foreign) {
            let instead = match key.as_str() {
                "sslrootcert" => "set tls_ca on the sink instead",
                "sslcert" | "sslkey" => "set tls_cert and tls_key on the sink instead",
                "sslpassword" => "give tls_key as an unencrypted PEM key instead",
                _ => "vigil does not read it",
            };
            return Err(ConfigError(format!(
                "the postgres conninfo sets {key}: {instead}"
            )));
        }
        let conninfo = split.as_ref().map_or(config.conninfo.as_str(), |s| &s.rest);
        let mut pg = Config::from_str(conninfo).map_err(|e| {
            let why = std::error::Error::source(&e).map_or_else(String::new, |s| {
                // Never show the character the parser stumbled on: it may
                // belong to the password.
                let text = s.to_string();
                let text = text.split(" but got").next().unwrap_or("").to_owned();
                format!(": {text}")
            });
            ConfigError(format!(
                "the postgres conninfo is not a valid connection string{why}"
            ))
        })?;
        let target = target(&pg);
        if pg.get_hosts().is_empty() {
            return Err(ConfigError(format!(
                "{target}: the conninfo names no host (host=…)"
            )));
        }
        if pg.get_user().is_none() {
            return Err(ConfigError(format!(
                "{target}: the conninfo names no user (user=…)"
            )));
        }
        let sslmode = match &split {
            Some(split) => split.sslmode.clone(),
            None => (pg.get_ssl_mode() == SslMode::Require).then(|| "require".to_owned()),
        };
        let verify = match sslmode.as_deref() {
            None | Some("disable") => None,
            Some("require" | "verify-ca") => Some(Verify::Chain),
            Some("verify-full") => Some(Verify::Full),
            Some(mode @ ("prefer" | "allow")) => {
                return Err(ConfigError(format!(
                    "{target}: sslmode={mode} falls back to an unencrypted connection unnoticed; \
                     use sslmode=verify-full (or require) with tls_ca, or sslmode=disable"
                )));
            }
            Some(mode) => {
                return Err(ConfigError(format!(
                    "{target}: unknown sslmode {mode:?}; use disable, require, verify-ca or \
                     verify-full"
                )));
            }
        };
        let client = match (&config.tls_client_cert, &config.tls_client_key) {
            (Some(cert), Some(key)) => Some((cert.as_path(), key.as_path())),
            (None, None) => None,
            (Some(_), None) => {
                return Err(ConfigError(format!(
                    "{target}: a client certificate needs its key: set tls_key too"
                )));
            }
            (None, Some(_)) => {
                return Err(ConfigError(format!(
                    "{target}: a client key needs its certificate: set tls_cert too"
                )));
            }
        };
        if client.is_some() && verify.is_none() {
            return Err(ConfigError(format!(
                "{target}: a client certificate is set but the conninfo asks for no TLS; add \
                 sslmode=verify-full (and tls_ca), or remove tls_cert and tls_key"
            )));
        }
        let tls = match (verify, &config.tls_ca) {
            (None, None) => {
                if config.tls_server_name.is_some() {
                    return Err(ConfigError(format!(
                        "{target}: tls_server_name is set but the conninfo asks for no TLS; \
                         add sslmode=verify-full (and tls_ca), or remove tls_server_name"
                    )));
                }
                pg.ssl_mode(SslMode::Disable);
                None
            }
            (None, Some(ca)) => {
                return Err(ConfigError(format!(
                    "{target}: tls_ca ({}) is set but the conninfo asks for no TLS; add \
                     sslmode=verify-full (or require) to the conninfo, or remove tls_ca",
                    ca.display()
                )));
            }
            (Some(_), None) => {
                return Err(ConfigError(format!(
                    "{target}: sslmode={} needs tls_ca, the CA certificates (PEM) that issue \
                     the server's certificate: vigil verifies it",
                    sslmode.as_deref().unwrap_or("")
                )));
            }
            (Some(verify), Some(ca)) => {
                if let Some(Host::Unix(path)) =
                    pg.get_hosts().iter().find(|h| matches!(h, Host::Unix(_)))
                {
                    return Err(ConfigError(format!(
                        "{target}: PostgreSQL offers no TLS on the Unix socket {}; connect \
                         over TCP for TLS, or remove sslmode",
                        path.display()
                    )));
                }
                if config.tls_server_name.is_none() {
                    for host in pg.get_hosts() {
                        if let Host::Tcp(name) = host {
                            tls::check_name(name).map_err(|why| {
                                ConfigError(format!(
                                    "{target}: host {why}: TLS cannot verify it; set \
                                     tls_server_name"
                                ))
                            })?;
                        }
                    }
                }
                let make = MakeRustls::new(ca, verify, config.tls_server_name.clone(), client)
                    .map_err(|why| ConfigError(format!("{target}: {why}")))?;
                pg.ssl_mode(SslMode::Require);
                Some(make)
            }
        };
        if config.timeout.is_zero() {
            return Err(ConfigError(format!(
                "{target}: the timeout must be longer than zero"
            )));
        }
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(config.timeout);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("vigil");
        }
        let (schema, name) = parse_table(&config.table)?;
        let quoted = match &schema {
            Some(schema) => format!("\"{schema}\".\"{name}\""),
            None => format!("\"{name}\""),
        };
        let table = match &schema {
            Some(schema) => format!("{schema}.{name}"),
            None => name.clone(),
        };
        let function = match &schema {
            Some(schema) => format!("\"{schema}\".vigil_append_only"),
            None => "vigil_append_only".to_owned(),
        };
        let create = config.create_table.then(|| create_sql(&quoted, &function));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_io()
            .enable_time()
            .build()
            .map_err(|e| ConfigError(format!("{target}: cannot start a tokio runtime: {e}")))?;
        let password = pg
            .get_password()
            .map(|p| Zeroizing::new(String::from_utf8_lossy(p).into_owned()));
        Ok(PostgresTransport {
            runtime,
            settings: Settings {
                config: pg,
                target,
                table,
                temp: "CREATE TEMPORARY TABLE IF NOT EXISTS vigil_batch (origin text, seq bigint, \
                       time timestamptz, code integer, name text, severity text, event jsonb, \
                       line text) ON COMMIT DELETE ROWS"
                    .to_owned(),
                copy: format!("COPY {BATCH_TABLE} ({COLUMNS}) FROM STDIN (FORMAT binary)"),
                insert: format!(
                    "INSERT INTO {quoted} ({COLUMNS}) SELECT {COLUMNS} FROM {BATCH_TABLE} \
                     ON CONFLICT (origin, seq) DO NOTHING"
                ),
                quoted,
                create,
                timeout: config.timeout,
                password,
                tls,
            },
            session: None,
        })
    }
}

impl Transport for PostgresTransport {
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        let (data, rows, rejected) = encode(batch);
        if rows == 0 {
            return Ok(Sent {
                rejected,
                retry: Vec::new(),
            });
        }
        let settings = &self.settings;
        let session = &mut self.session;
        let mut data = data;
        let result = self.runtime.block_on(async {
            let timeout = settings.timeout;
            let mut reused = session.is_some();
            loop {
                let mut s = match session.take() {
                    Some(s) => s,
                    None => match tokio::time::timeout(timeout, connect(settings)).await {
                        Ok(connected) => connected?,
                        Err(_) => return Err(Failure::Timeout("connecting")),
                    },
                };
                // Keep a copy while the batch may have to go out again.
                let payload = if reused {
                    data.clone()
                } else {
                    std::mem::take(&mut data)
                };
                let written =
                    tokio::time::timeout(timeout, write_batch(&mut s.client, settings, payload))
                        .await;
                // On any error the session is dropped, so the next attempt
                // starts on a fresh connection.
                match written {
                    Ok(Ok(_)) => {
                        *session = Some(s);
                        return Ok(());
                    }
                    // The server closed the connection while it was idle
                    // (a restart, an idle timeout): the batch is written
                    // again, which adds nothing twice, on a new connection.
                    Ok(Err(e)) if reused && e.as_db_error().is_none() => reused = false,
                    Ok(Err(e)) => return Err(Failure::Pg(e)),
                    Err(_) => return Err(Failure::Timeout("writing the batch")),
                }
            }
        });
        match result {
            Ok(()) => Ok(Sent {
                rejected,
                retry: Vec::new(),
            }),
            Err(failure) => Err(self.settings.error(failure)),
        }
    }

    fn reopen(&mut self) {
        self.close();
    }

    fn close(&mut self) {
        if let Some(Session { client, mut task }) = self.session.take() {
            // Dropping the client makes the connection send Terminate and
            // end; give it a moment to do so.
            drop(client);
            self.runtime.block_on(async {
                let _ = tokio::time::timeout(Duration::from_secs(1), &mut task.0).await;
            });
        }
    }
}

/// Why a send failed.
enum Failure {
    Pg(tokio_postgres::Error),
    /// No answer in time while doing this.
    Timeout(&'static str),
}

impl From<tokio_postgres::Error> for Failure {
    fn from(e: tokio_postgres::Error) -> Self {
        Failure::Pg(e)
    }
}

impl Settings {
    /// The [`SendError`] for `failure`, naming the server but never the
    /// password.
    fn error(&self, failure: Failure) -> SendError {
        let target = &self.target;
        let e = match failure {
            Failure::Timeout(doing) => {
                return SendError::Retry(format!(
                    "{target}: no answer within {} ms while {doing}",
                    self.timeout.as_millis()
                ));
            }
            Failure::Pg(e) => e,
        };
        let (message, park) = match e.as_db_error() {
            Some(db) => {
                let code = db.code().code();
                let table = &self.table;
                let hint = match code {
                    "28000" | "28P01" => "; check the user and password in the conninfo".to_owned(),
                    "3D000" => "; create the database or fix dbname in the conninfo".to_owned(),
                    "42P01" => format!("; create the table {table}, or set create_table"),
                    "42501" => format!(
                        "; grant the user INSERT on {table} and TEMPORARY on the database \
                         (and CREATE on the schema for create_table)"
                    ),
                    "42P10" => {
                        format!("; {table} needs a primary key or unique index on (origin, seq)")
                    }
                    _ => String::new(),
                };
                (
                    format!("{target}: SQLSTATE {code}: {}{hint}", db.message()),
                    !retryable(code),
                )
            }
            None => {
                let mut text = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    text.push_str(": ");
                    text.push_str(&s.to_string());
                    source = s.source();
                }
                // Failures before the server could say anything with a
                // SQLSTATE that retrying cannot fix: a password the server
                // asked for but the conninfo lacks, a bad server signature,
                // a configuration tokio-postgres refuses, a certificate
                // that does not verify, a server without TLS.
                if let Some(hint) = tls_refusal(&e) {
                    (format!("{target}: {text}; {hint}"), true)
                } else {
                    let park = ["authentication error", "invalid configuration"]
                        .iter()
                        .any(|p| text.starts_with(p));
                    (format!("{target}: {text}"), park)
                }
            }
        };
        let message = match &self.password {
            Some(p) if p.len() >= 4 => message.replace(p.as_str(), "<redacted>"),
            _ => message,
        };
        if park {
            SendError::Park(message)
        } else {
            SendError::Retry(message)
        }
    }
}

/// What to check when a TLS failure will not go away by itself: a
/// certificate that does not verify, a server without TLS, no TLS version
/// or cipher suite in common. `None` for anything else, such as a
/// connection that broke during the handshake.
fn tls_refusal(e: &tokio_postgres::Error) -> Option<&'static str> {
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        let tls = s
            .downcast_ref::<io::Error>()
            .and_then(|io| io.get_ref())
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls {
            Some(rustls::Error::InvalidCertificate(_) | rustls::Error::NoCertificatesPresented) => {
                return Some(
                    "the server's certificate does not verify: check tls_ca, tls_server_name \
                     and the server's certificate",
                );
            }
            Some(rustls::Error::PeerIncompatible(_)) => {
                return Some(
                    "no TLS version or cipher suite in common: vigil speaks TLS 1.2 and 1.3",
                );
            }
            Some(_) => return None,
            None => {}
        }
        // tokio-postgres' words for a server that answered SSLRequest with N.
        if s.to_string() == "server does not support TLS" {
            return Some(
                "the server does not accept TLS (ssl = off): turn ssl on in the server, or \
                 remove sslmode from the conninfo",
            );
        }
        source = s.source();
    }
    None
}

/// True for SQLSTATEs worth trying again: connection exceptions (08),
/// transaction rollbacks such as serialization failures and deadlocks (40),
/// insufficient resources (53), objects in use or locked (55), operator
/// intervention such as a shutdown (57), system and internal errors (58,
/// XX).
fn retryable(code: &str) -> bool {
    ["08", "40", "53", "55", "57", "58", "XX"]
        .iter()
        .any(|class| code.starts_with(class))
}

/// Connects, creates the table if asked and missing, and creates the
/// temporary batch table.
async fn connect(settings: &Settings) -> Result<Session, tokio_postgres::Error> {
    // A connection's errors reach the client as failed requests.
    let (client, task) = match &settings.tls {
        None => {
            let (client, connection) = settings.config.connect(NoTls).await?;
            (client, tokio::spawn(async move { drop(connection.await) }))
        }
        Some(tls) => {
            let (client, connection) = settings.config.connect(tls.clone()).await?;
            (client, tokio::spawn(async move { drop(connection.await) }))
        }
    };
    let session = Session {
        client,
        task: AbortOnDrop(task),
    };
    if let Some(create) = &settings.create {
        let exists: bool = session
            .client
            .query_one(
                "SELECT to_regclass($1::text) IS NOT NULL",
                &[&settings.quoted],
            )
            .await?
            .try_get(0)?;
        if !exists {
            session.client.batch_execute(create).await?;
        }
    }
    session.client.batch_execute(&settings.temp).await?;
    Ok(session)
}

/// Copies the batch into the temporary table and from there into the
/// table, in one transaction.
async fn write_batch(
    client: &mut Client,
    settings: &Settings,
    data: Vec<u8>,
) -> Result<u64, tokio_postgres::Error> {
    let tx = client.transaction().await?;
    let sink = tx.copy_in::<_, Cursor<Vec<u8>>>(&settings.copy).await?;
    let mut sink = pin!(sink);
    sink.send(Cursor::new(data)).await?;
    sink.as_mut().finish().await?;
    let inserted = tx.execute(&settings.insert, &[]).await?;
    tx.commit().await?;
    Ok(inserted)
}

/// The statements that create the table, the trigger function and the
/// trigger, in one transaction under an advisory lock.
fn create_sql(table: &str, function: &str) -> String {
    format!(
        r#"BEGIN;
SELECT pg_advisory_xact_lock({SETUP_LOCK});
CREATE TABLE IF NOT EXISTS {table} (
    origin text NOT NULL,
    seq bigint NOT NULL,
    time timestamptz,
    code integer,
    name text,
    severity text,
    event jsonb,
    line text NOT NULL,
    PRIMARY KEY (origin, seq)
);
DO $vigil$
BEGIN
    IF to_regprocedure('{function}()') IS NULL THEN
        CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $body$
        BEGIN
            RAISE EXCEPTION 'table %.% is append-only: % is not allowed',
                TG_TABLE_SCHEMA, TG_TABLE_NAME, TG_OP
                USING HINT = 'vigil keeps security events in it; they may be read, not changed';
        END
        $body$;
    END IF;
    IF NOT EXISTS (SELECT 1 FROM pg_trigger
                   WHERE tgrelid = '{table}'::regclass AND tgname = 'vigil_append_only') THEN
        CREATE TRIGGER vigil_append_only
            BEFORE UPDATE OR DELETE OR TRUNCATE ON {table}
            FOR EACH STATEMENT EXECUTE FUNCTION {function}();
    END IF;
END
$vigil$;
COMMIT;"#
    )
}

/// Splits and checks `schema.name` or `name`, folding to lower case.
fn parse_table(table: &str) -> Result<(Option<String>, String), ConfigError> {
    let parts: Vec<&str> = table.split('.').collect();
    let plain = |part: &str| {
        let mut bytes = part.bytes();
        part.len() <= 63
            && bytes
                .next()
                .is_some_and(|b| b.is_ascii_alphabetic() || b == b'_')
            && bytes.all(|b| b.is_ascii_alphanumeric() || b == b'_')
    };
    if parts.len() > 2 || !parts.iter().all(|p| plain(p)) {
        return Err(ConfigError(format!(
            "table {table:?}: give name or schema.name, each of letters, digits and _, \
             starting with a letter or _, at most 63 characters"
        )));
    }
    let lower = |s: &str| s.to_ascii_lowercase();
    Ok(match parts.as_slice() {
        [schema, name] => (Some(lower(schema)), lower(name)),
        _ => (None, lower(table)),
    })
}

/// A conninfo split for tokio-postgres, which reads `sslmode` only up to
/// `require`.
#[derive(Debug, PartialEq, Eq)]
struct Conninfo {
    /// The conninfo without `sslmode`.
    rest: String,
    /// The last `sslmode` given.
    sslmode: Option<String>,
    /// The names of the parameters, in order.
    keys: Vec<String>,
}

/// Splits `sslmode` off a key/value or URL conninfo, reading it as
/// tokio-postgres does; `None` when it cannot be read, for tokio-postgres
/// to say why.
fn split_conninfo(conninfo: &str) -> Option<Conninfo> {
    match ["postgres://", "postgresql://"]
        .into_iter()
        .find(|p| conninfo.starts_with(p))
    {
        Some(scheme) => split_url(conninfo, scheme.len()),
        None => split_key_values(conninfo),
    }
}

/// `key=value …`, values optionally in single quotes, `\` escaping the
/// next character.
fn split_key_values(conninfo: &str) -> Option<Conninfo> {
    let mut chars = conninfo.char_indices().peekable();
    let mut split = Conninfo {
        rest: String::with_capacity(conninfo.len()),
        sslmode: None,
        keys: Vec::new(),
    };
    let mut kept_to = 0;
    loop {
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let start = chars.peek().map_or(conninfo.len(), |&(i, _)| i);
        while chars
            .next_if(|&(_, c)| !c.is_whitespace() && c != '=')
            .is_some()
        {}
        let key_end = chars.peek().map_or(conninfo.len(), |&(i, _)| i);
        let key = conninfo.get(start..key_end)?;
        if key.is_empty() {
            // Where tokio-postgres stops reading too.
            break;
        }
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        chars.next_if(|&(_, c)| c == '=')?;
        while chars.next_if(|&(_, c)| c.is_whitespace()).is_some() {}
        let mut value = String::new();
        if chars.next_if(|&(_, c)| c == '\'').is_some() {
            loop {
                match chars.next()?.1 {
                    '\'' => break,
                    '\\' => value.push(chars.next()?.1),
                    c => value.push(c),
                }
            }
        } else {
            while let Some((_, c)) = chars.next_if(|&(_, c)| !c.is_whitespace()) {
                if c != '\\' {
                    value.push(c);
                } else if let Some((_, escaped)) = chars.next() {
                    value.push(escaped);
                }
            }
            if value.is_empty() {
                return None;
            }
        }
        let end = chars.peek().map_or(conninfo.len(), |&(i, _)| i);
        if key == "sslmode" {
            split.rest.push_str(conninfo.get(kept_to..start)?);
            kept_to = end;
            split.sslmode = Some(value);
        }
        split.keys.push(key.to_owned());
    }
    split.rest.push_str(conninfo.get(kept_to..)?);
    Some(split)
}

/// `postgres[ql]://[credentials@]hosts[/dbname][?key=value&…]`, the query
/// percent-encoded.
fn split_url(url: &str, scheme_len: usize) -> Option<Conninfo> {
    // tokio-postgres takes the credentials up to the first '@', then hosts
    // and path up to the first '?'.
    let after_scheme = url.get(scheme_len..)?;
    let hosts = after_scheme.find('@').map_or(0, |at| at + 1);
    let Some(query) = after_scheme.get(hosts..)?.find('?') else {
        return Some(Conninfo {
            rest: url.to_owned(),
            sslmode: None,
            keys: Vec::new(),
        });
    };
    let query = scheme_len + hosts + query;
    let mut split = Conninfo {
        rest: url.get(..query)?.to_owned(),
        sslmode: None,
        keys: Vec::new(),
    };
    let mut kept = Vec::new();
    let pairs = url.get(query + 1..)?;
    let pairs = pairs.strip_suffix('&').unwrap_or(pairs);
    for pair in pairs.split('&').filter(|_| !pairs.is_empty()) {
        let (key, value) = pair.split_once('=')?;
        let key = percent_decode(key)?;
        if key == "sslmode" {
            split.sslmode = Some(percent_decode(value)?);
        } else {
            kept.push(pair);
        }
        split.keys.push(key);
    }
    if !kept.is_empty() {
        split.rest.push('?');
        split.rest.push_str(&kept.join("&"));
    }
    Some(split)
}

/// Decodes `%XX` escapes; `None` when the result is not UTF-8.
fn percent_decode(s: &str) -> Option<String> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while let Some(&c) = b.get(i) {
        let hex = |at: usize| b.get(at).and_then(|&h| (h as char).to_digit(16));
        match (c, hex(i + 1), hex(i + 2)) {
            (b'%', Some(hi), Some(lo)) => {
                out.push((hi * 16 + lo) as u8);
                i += 3;
            }
            _ => {
                out.push(c);
                i += 1;
            }
        }
    }
    String::from_utf8(out).ok()
}

/// `postgres://user@host:port/dbname` (hosts and ports comma-separated),
/// without the password.
fn target(config: &Config) -> String {
    let hosts: Vec<String> = config
        .get_hosts()
        .iter()
        .enumerate()
        .map(|(i, host)| {
            let port = config
                .get_ports()
                .get(i)
                .or_else(|| config.get_ports().first())
                .copied()
                .unwrap_or(5432);
            match host {
                Host::Tcp(name) if name.contains(':') => format!("[{name}]:{port}"),
                Host::Tcp(name) => format!("{name}:{port}"),
                Host::Unix(path) => format!("{}:{port}", path.display()),
            }
        })
        .collect();
    let user = config.get_user().unwrap_or("");
    let dbname = config.get_dbname().unwrap_or(user);
    format!("postgres://{user}@{}/{dbname}", hosts.join(","))
}

/// The batch as binary `COPY` data, with the number of rows in it and the
/// records that cannot be stored.
fn encode(batch: &[Record<'_>]) -> (Vec<u8>, usize, Vec<(usize, String)>) {
    let size: usize = batch.iter().map(|r| r.sealed.len() * 2 + 256).sum();
    let mut out = Vec::with_capacity(size + 32);
    out.extend_from_slice(b"PGCOPY\n\xff\r\n\0");
    out.extend_from_slice(&0i32.to_be_bytes()); // flags
    out.extend_from_slice(&0i32.to_be_bytes()); // header extension length
    let mut rows = 0;
    let mut rejected = Vec::new();
    let mut json = Vec::new();
    for (i, record) in batch.iter().enumerate() {
        let line = match std::str::from_utf8(record.sealed) {
            Ok(line) if !line.contains('\0') => line,
            Ok(_) => {
                rejected.push((
                    i,
                    "the sealed line holds a NUL byte, which a text column cannot hold".to_owned(),
                ));
                continue;
            }
            Err(_) => {
                rejected.push((
                    i,
                    "the sealed line is not UTF-8, which a text column needs".to_owned(),
                ));
                continue;
            }
        };
        let Ok(seq) = i64::try_from(record.seq) else {
            rejected.push((i, format!("seq {} does not fit a bigint", record.seq)));
            continue;
        };
        if record.origin.contains('\0') {
            rejected.push((i, "the origin holds a NUL byte".to_owned()));
            continue;
        }
        json.clear();
        vigil_event::Format::Json.write(record.event, &mut json);
        let event = without_nul_escapes(&json);
        let kind = record.event.kind;

        let row_start = out.len();
        out.extend_from_slice(&8i16.to_be_bytes());
        let fits = push_field(&mut out, record.origin.as_bytes())
            && push_field(&mut out, &seq.to_be_bytes())
            && match pg_time(record.event.time.as_micros()) {
                Some(t) => push_field(&mut out, &t.to_be_bytes()),
                None => {
                    out.extend_from_slice(&(-1i32).to_be_bytes());
                    true
                }
            }
            && push_field(&mut out, &i32::from(kind.code()).to_be_bytes())
            && push_field(&mut out, kind.name().as_bytes())
            && push_field(&mut out, record.event.severity.as_str().as_bytes())
            && push_jsonb(&mut out, &event)
            && push_field(&mut out, line.as_bytes());
        if fits {
            rows += 1;
        } else {
            out.truncate(row_start);
            rejected.push((
                i,
                "the record is larger than a PostgreSQL field can hold".to_owned(),
            ));
        }
    }
    out.extend_from_slice(&(-1i16).to_be_bytes());
    (out, rows, rejected)
}

/// Appends a field: its length, then its bytes. False when it is too long.
fn push_field(out: &mut Vec<u8>, bytes: &[u8]) -> bool {
    let Ok(len) = i32::try_from(bytes.len()) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(bytes);
    true
}

/// Appends a `jsonb` field: format version 1, then the JSON text.
fn push_jsonb(out: &mut Vec<u8>, json: &[u8]) -> bool {
    let Ok(len) = i32::try_from(json.len() + 1) else {
        return false;
    };
    out.extend_from_slice(&len.to_be_bytes());
    out.push(1);
    out.extend_from_slice(json);
    true
}

/// Microseconds since the Unix epoch as a `timestamptz` (microseconds since
/// 2000-01-01), or `None` outside its range.
fn pg_time(unix_micros: i64) -> Option<i64> {
    unix_micros
        .checked_sub(PG_EPOCH_MICROS)
        .filter(|t| (PG_MIN_TIMESTAMP..PG_END_TIMESTAMP).contains(t))
}

/// `json` with each `\u0000` escape, which `jsonb` refuses, written as
/// `\ufffd`.
fn without_nul_escapes(json: &[u8]) -> std::borrow::Cow<'_, [u8]> {
    const NUL: &[u8] = b"\\u0000";
    if !json.windows(NUL.len()).any(|w| w == NUL) {
        return std::borrow::Cow::Borrowed(json);
    }
    let mut out = Vec::with_capacity(json.len());
    let mut i = 0;
    while i < json.len() {
        // In valid JSON a backslash only occurs in strings, starting an
        // escape; skip each escape whole so `\\u0000` stays as it is.
        if json[i] == b'\\' {
            if json[i..].starts_with(NUL) {
                out.extend_from_slice(b"\\ufffd");
                i += NUL.len();
            } else {
                out.extend_from_slice(&json[i..(i + 2).min(json.len())]);
                i += 2;
            }
        } else {
            out.push(json[i]);
            i += 1;
        }
    }
    std::borrow::Cow::Owned(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_table_names() {
        assert_eq!(
            parse_table("vigil_events").unwrap(),
            (None, "vigil_events".to_owned())
        );
        assert_eq!(
            parse_table("Audit.Events_2").unwrap(),
            (Some("audit".to_owned()), "events_2".to_owned())
        );
        for bad in [
            "",
            "a.b.c",
            "1abc",
            "a-b",
            "a\"b",
            "a.",
            ".a",
            "a b",
            &"x".repeat(64),
        ] {
            assert!(parse_table(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn replaces_nul_escapes() {
        assert_eq!(
            &*without_nul_escapes(br#"{"a":"x\u0000y"}"#),
            br#"{"a":"x\ufffdy"}"#
        );
        assert_eq!(
            &*without_nul_escapes(br#"{"a":"x\\u0000y"}"#),
            br#"{"a":"x\\u0000y"}"#
        );
        assert_eq!(
            &*without_nul_escapes(br#"{"a":"\\\u0000"}"#),
            br#"{"a":"\\\ufffd"}"#
        );
    }

    #[test]
    fn converts_times() {
        assert_eq!(pg_time(PG_EPOCH_MICROS), Some(0));
        assert_eq!(pg_time(i64::MIN), None);
        assert_eq!(pg_time(PG_MIN_TIMESTAMP + PG_EPOCH_MICROS - 1), None);
        // The latest Unix time in microseconds, in the year 294247, fits.
        assert!(pg_time(i64::MAX).is_some());
    }

    #[test]
    fn splits_sslmode_off_the_conninfo() {
        let split = |c: &str| {
            let s = split_conninfo(c).unwrap();
            (s.rest, s.sslmode, s.keys.join(","))
        };
        let some = |m: &str| Some(m.to_owned());
        assert_eq!(
            split("host=db sslmode=verify-full user=vigil"),
            (
                "host=db  user=vigil".to_owned(),
                some("verify-full"),
                "host,sslmode,user".into()
            )
        );
        assert_eq!(
            split("sslmode = 'require' password='a b\\' sslmode=x' host=h"),
            (
                " password='a b\\' sslmode=x' host=h".to_owned(),
                some("require"),
                "sslmode,password,host".into()
            )
        );
        assert_eq!(
            split("sslmode=disable sslmode=verify\\-ca"),
            (" ".to_owned(), some("verify-ca"), "sslmode,sslmode".into())
        );
        assert_eq!(split("host=db").1, None);
        assert_eq!(
            split("postgresql://u:p?w@db:5433/audit?sslmode=verify%2Dfull&application_name=x"),
            (
                "postgresql://u:p?w@db:5433/audit?application_name=x".to_owned(),
                some("verify-full"),
                "sslmode,application_name".into()
            )
        );
        assert_eq!(
            split("postgres://db/audit?sslmode=require&"),
            (
                "postgres://db/audit".to_owned(),
                some("require"),
                "sslmode".into()
            )
        );
        assert_eq!(split("postgres://db/audit?").0, "postgres://db/audit");
        assert_eq!(split("postgres://db").0, "postgres://db");
        for bad in ["host=db password='open", "host=", "host", "postgres://db?x"] {
            assert_eq!(split_conninfo(bad), None, "{bad}");
        }
    }

    #[test]
    fn checks_tls_settings() {
        let ca = std::env::temp_dir().join("vigil-no-such-ca.pem");
        let new = |conninfo: &str, ca: Option<&std::path::Path>, name: Option<&str>| {
            let mut c = PostgresConfig::new(conninfo);
            c.tls_ca = ca.map(Into::into);
            c.tls_server_name = name.map(Into::into);
            PostgresTransport::new(c)
                .map(|_| ())
                .map_err(|e| e.to_string())
        };
        assert_eq!(new("host=db user=v", None, None), Ok(()));
        assert_eq!(new("host=db user=v sslmode=disable", None, None), Ok(()));
        for (conninfo, ca, name, says) in [
            ("host=db user=v sslmode=require", None, None, "needs tls_ca"),
            ("host=db user=v", Some(&*ca), None, "asks for no TLS"),
            ("host=db user=v", None, Some("db"), "asks for no TLS"),
            ("host=db user=v sslmode=prefer", None, None, "unencrypted"),
            ("host=db user=v sslmode=allow", None, None, "unencrypted"),
            (
                "host=db user=v sslmode=strict",
                None,
                None,
                "unknown sslmode",
            ),
            (
                "host=/run/pg user=v sslmode=require",
                Some(&*ca),
                None,
                "Unix socket",
            ),
            (
                "host=db user=v sslmode=verify-full",
                Some(&*ca),
                None,
                "vigil-no-such-ca.pem",
            ),
            (
                "host=db user=v sslrootcert=/ca.pem",
                None,
                None,
                "set tls_ca",
            ),
            (
                "host=db user=v sslcert=/c.pem",
                None,
                None,
                "set tls_cert and tls_key",
            ),
            (
                "host=db..example user=v sslmode=verify-full",
                Some(&*ca),
                None,
                "tls_server_name",
            ),
        ] {
            let err = new(conninfo, ca, name).unwrap_err();
            assert!(err.contains(says), "{conninfo}: {err}");
        }
    }

    #[test]
    fn names_the_target_without_the_password() {
        for conninfo in [
            "host=db port=5433 user=vigil password=s3cret dbname=audit",
            "postgresql://vigil:s3cret@db:5433/audit",
        ] {
            let config = Config::from_str(conninfo).unwrap();
            assert_eq!(target(&config), "postgres://vigil@db:5433/audit");
            let debug = format!("{:?}", PostgresConfig::new(conninfo));
            assert!(!debug.contains("s3cret"), "{debug}");
        }
        let err = PostgresTransport::new(PostgresConfig::new("host=db user=vigil password='s3cr"))
            .unwrap_err();
        assert!(!err.to_string().contains("s3cr"), "{err}");
    }
}
