//! Delivery to HTTP collectors: Splunk's HTTP Event Collector,
//! Elasticsearch's `_bulk` API and JSON webhooks.
//!
//! [`HttpTransport`] is a small HTTP/1.1 client over one kept-alive
//! connection (plain TCP, or TLS through rustls with the ring provider). It
//! sends each batch as one `POST` with a `Content-Length` body, optionally
//! gzip-compressed (`Content-Encoding: gzip`), and reads answers framed by
//! `Content-Length`, chunked, or the end of the connection, keeping at most
//! 16 MiB of an answer's body. Connecting, the TLS handshake, writing the
//! request and reading the answer share one deadline, the configured
//! timeout. When the receiver closed the kept-alive connection while it was
//! idle, the request is sent once more on a new connection.
//!
//! # Bodies
//!
//! A record's `formatted` bytes are JSON (the sink's format is `json` or
//! `ocsf`) and go into the body as they are; a record that is not a JSON
//! object is sent as a JSON string instead.
//!
//! ```text
//! splunk_hec    per record, concatenated:
//!               {"time":<epoch seconds.micros>,"host":"<origin>","source":"vigil",
//!                "sourcetype":"vigil","event":<record>}
//! elastic_bulk  per record (create with an _id, so a batch sent again is
//!               answered 409 for what already arrived):
//!               {"create":{"_index":"<index>","_id":"<origin>:<seq>"}}\n<record>\n
//! webhook       [<record>,<record>,…]
//! ```
//!
//! # Answers
//!
//! ```text
//! 2xx                      delivered; for _bulk with "errors":true, per item:
//!                          2xx or 409 delivered, 429 or 5xx sent again,
//!                          401/403/404 park the sink, other 4xx rejected
//! 408, 429, 5xx            SendError::Retry
//! timeout, network error   SendError::Retry
//! 3xx, 4xx                 SendError::Park, with the status and an excerpt
//! ```
//!
//! Messages name the URL as `scheme://host:port/path`: never with the
//! credentials or the query, never with the token.

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Ipv6Addr, TcpStream, ToSocketAddrs};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use flate2::Compression;
use flate2::write::GzEncoder;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use zeroize::Zeroizing;

use super::{Record, SendError, Sent, Transport};

/// How long a request may take by default, from connecting to the end of
/// the answer.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// The most of an answer's status line and headers that is read.
const MAX_HEAD: usize = 64 * 1024;
/// The most of an answer's body that is kept.
const MAX_BODY: usize = 16 * 1024 * 1024;
/// The longest line of a chunked body's framing.
const MAX_CHUNK_LINE: usize = 4096;
/// The most bytes one read from the connection takes.
const READ_CHUNK: usize = 16 * 1024;
/// How many characters of an answer's body an error shows.
const EXCERPT_CHARS: usize = 200;
/// How many characters of a `_bulk` item's error a rejection keeps.
const REASON_CHARS: usize = 400;
/// How much is written to the socket at once, so the deadline is checked
/// between writes.
const WRITE_CHUNK: usize = 64 * 1024;
/// Where the system's CA bundle is looked for when `tls_ca` is not set.
const SYSTEM_CA_BUNDLES: [&str; 4] = [
    "/etc/ssl/certs/ca-certificates.crt",
    "/etc/pki/tls/certs/ca-bundle.crt",
    "/etc/ssl/ca-bundle.pem",
    "/etc/ssl/cert.pem",
];
/// Request headers the transport writes itself.
const RESERVED_HEADERS: [&str; 9] = [
    "connection",
    "content-encoding",
    "content-length",
    "expect",
    "host",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// What kind of collector the URL points to; decides the body and how the
/// answer is read.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Kind {
    /// Elasticsearch (or OpenSearch) `_bulk`, creating one document per
    /// record in `index` with the `_id` `<origin>:<seq>`. A URL without a
    /// path gets `/_bulk`.
    ElasticBulk {
        /// The index (or data stream) the documents go to.
        index: String,
    },
    /// Splunk's HTTP Event Collector. A URL without a path gets
    /// `/services/collector/event`.
    SplunkHec,
    /// Any receiver of a JSON array of records.
    Webhook,
}

/// Configuration of an [`HttpTransport`].
#[derive(Clone)]
pub struct HttpConfig {
    /// `http://host[:port][/path][?query]` or `https://…`. Credentials in
    /// the URL (`https://user:password@host/`) are sent as
    /// `Authorization: Basic`.
    pub url: String,
    /// The collector's API.
    pub kind: Kind,
    /// Further request headers, e.g. `X-Scope-OrgID`. The transport writes
    /// `Host`, `Content-Length`, `Content-Encoding` and `Connection` itself;
    /// `Content-Type` may be overridden.
    pub headers: Vec<(String, String)>,
    /// Sent as `Authorization: Splunk <token>` to Splunk and as
    /// `Authorization: Bearer <token>` to the others. Never shown in
    /// `Debug` output or errors.
    pub token: Option<String>,
    /// Compresses request bodies with gzip (`Content-Encoding: gzip`).
    pub gzip: bool,
    /// How long one request may take, from connecting to the end of the
    /// answer.
    pub timeout: Duration,
    /// The CA certificates (PEM) that the collector's certificate must chain
    /// to; the system's CA bundle when unset.
    pub tls_ca: Option<PathBuf>,
}

impl HttpConfig {
    /// A configuration for `url` and `kind`, without headers or token,
    /// uncompressed, with a 10 s timeout and the system's CAs.
    pub fn new(url: impl Into<String>, kind: Kind) -> HttpConfig {
        HttpConfig {
            url: url.into(),
            kind,
            headers: Vec::new(),
            token: None,
            gzip: false,
            timeout: DEFAULT_TIMEOUT,
            tls_ca: None,
        }
    }
}

impl fmt::Debug for HttpConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let header_names: Vec<&str> = self.headers.iter().map(|(n, _)| n.as_str()).collect();
        f.debug_struct("HttpConfig")
            .field("url", &redact_url(&self.url))
            .field("kind", &self.kind)
            .field("headers", &header_names)
            .field("token", &self.token.as_ref().map(|_| "<redacted>"))
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("tls_ca", &self.tls_ca)
            .finish()
    }
}

/// Why an [`HttpConfig`] cannot be used; the message says what to change.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct ConfigError(String);

/// A [`Transport`] to an HTTP collector; see the [module](self) docs.
pub struct HttpTransport {
    url: Url,
    kind: Kind,
    /// `"<index>"`, JSON-encoded, for `_bulk` action lines.
    index_json: Vec<u8>,
    /// `Authorization` header value.
    authorization: Option<Zeroizing<String>>,
    headers: Vec<(String, String)>,
    content_type: &'static str,
    gzip: bool,
    timeout: Duration,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    conn: Option<Conn>,
}

impl fmt::Debug for HttpTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("HttpTransport")
            .field("url", &self.url.display)
            .field("kind", &self.kind)
            .field("gzip", &self.gzip)
            .field("timeout", &self.timeout)
            .field("connected", &self.conn.is_some())
            .finish_non_exhaustive()
    }
}

impl HttpTransport {
    /// Checks `config` and loads the CA certificates; connects at the
    /// first [`send`](Transport::send).
    pub fn new(config: HttpConfig) -> Result<HttpTransport, ConfigError> {
        let mut url = parse_url(&config.url)?;
        if url.path_is_root {
            let default = match config.kind {
                Kind::ElasticBulk { .. } => Some("/_bulk"),
                Kind::SplunkHec => Some("/services/collector/event"),
                Kind::Webhook => None,
            };
            if let Some(path) = default {
                url.set_path(path);
            }
        }
        if config.timeout.is_zero() {
            return Err(ConfigError(format!(
                "{}: the timeout must be longer than zero",
                url.display
            )));
        }

        let mut index_json = Vec::new();
        if let Kind::ElasticBulk { index } = &config.kind {
            check_index(index)?;
            push_json_str(&mut index_json, index);
        }

        let mut authorization = None;
        if let Some(token) = &config.token {
            if token.is_empty() || !token.bytes().all(|b| b.is_ascii_graphic()) {
                return Err(ConfigError(format!(
                    "{}: the token must be non-empty printable ASCII without spaces",
                    url.display
                )));
            }
            if url.basic.is_some() {
                return Err(ConfigError(format!(
                    "{}: give either credentials in the url or a token, not both",
                    url.display
                )));
            }
            let scheme = match config.kind {
                Kind::SplunkHec => "Splunk",
                _ => "Bearer",
            };
            authorization = Some(Zeroizing::new(format!("{scheme} {token}")));
        }
        if let Some(basic) = url.basic.take() {
            authorization = Some(basic);
        }

        let mut content_type = match config.kind {
            Kind::ElasticBulk { .. } => "application/x-ndjson",
            Kind::SplunkHec | Kind::Webhook => "application/json",
        };
        let mut headers = Vec::with_capacity(config.headers.len());
        for (name, value) in &config.headers {
            check_header(name, value, &url.display)?;
            let lower = name.to_ascii_lowercase();
            if RESERVED_HEADERS.contains(&lower.as_str()) {
                return Err(ConfigError(format!(
                    "{}: header {name} is written by vigil itself; remove it",
                    url.display
                )));
            }
            if lower == "authorization" && authorization.is_some() {
                return Err(ConfigError(format!(
                    "{}: an Authorization header and a token (or credentials in the url) \
                     both set Authorization; keep one",
                    url.display
                )));
            }
            if lower == "content-type" {
                content_type = "";
            }
            headers.push((name.clone(), value.clone()));
        }

        let tls = if url.tls {
            let config = tls_config(config.tls_ca.as_deref(), &url.display)?;
            let name = ServerName::try_from(url.host.clone()).map_err(|e| {
                ConfigError(format!(
                    "{}: {e}: the host is not a valid TLS name",
                    url.display
                ))
            })?;
            Some((config, name))
        } else {
            if let Some(ca) = &config.tls_ca {
                return Err(ConfigError(format!(
                    "{}: tls_ca ({}) is set but the url is http://; use https:// or remove tls_ca",
                    url.display,
                    ca.display()
                )));
            }
            None
        };

        Ok(HttpTransport {
            url,
            kind: config.kind,
            index_json,
            authorization,
            headers,
            content_type,
            gzip: config.gzip,
            timeout: config.timeout,
            tls,
            conn: None,
        })
    }

    /// The request body for `batch`, before compression.
    fn body(&self, batch: &[Record<'_>]) -> Vec<u8> {
        let size: usize = batch.iter().map(|r| r.formatted.len() + 128).sum();
        let mut out = Vec::with_capacity(size);
        match self.kind {
            Kind::ElasticBulk { .. } => {
                for r in batch {
                    out.extend_from_slice(b"{\"create\":{\"_index\":");
                    out.extend_from_slice(&self.index_json);
                    out.extend_from_slice(b",\"_id\":");
                    push_json_str(&mut out, &format!("{}:{}", r.origin, r.seq));
                    out.extend_from_slice(b"}}\n");
                    push_record(&mut out, r.formatted);
                    out.push(b'\n');
                }
            }
            Kind::SplunkHec => {
                for r in batch {
                    out.extend_from_slice(b"{\"time\":");
                    push_epoch_seconds(&mut out, r.event.time.as_micros());
                    out.extend_from_slice(b",\"host\":");
                    push_json_str(&mut out, r.origin);
                    out.extend_from_slice(
                        b",\"source\":\"vigil\",\"sourcetype\":\"vigil\",\"event\":",
                    );
                    push_record(&mut out, r.formatted);
                    out.push(b'}');
                }
            }
            Kind::Webhook => {
                out.push(b'[');
                for (i, r) in batch.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    push_record(&mut out, r.formatted);
                }
                out.push(b']');
            }
        }
        out
    }

    /// The request line and headers for a body of `len` bytes.
    fn head(&self, len: usize) -> Zeroizing<Vec<u8>> {
        // Large enough to never reallocate, which would leave a copy of the
        // credentials behind.
        let size = 256
            + self.url.target.len()
            + self.url.host_header.len()
            + self.authorization.as_ref().map_or(0, |a| a.len())
            + self
                .headers
                .iter()
                .map(|(n, v)| n.len() + v.len() + 4)
                .sum::<usize>();
        let mut head = Zeroizing::new(Vec::with_capacity(size));
        let h = &mut *head;
        // Writing to a Vec cannot fail.
        let _ = write!(
            h,
            "POST {} HTTP/1.1\r\nHost: {}\r\nUser-Agent: vigil/{}\r\nAccept: application/json\r\n",
            self.url.target,
            self.url.host_header,
            env!("CARGO_PKG_VERSION")
        );
        if !self.content_type.is_empty() {
            let _ = write!(h, "Content-Type: {}\r\n", self.content_type);
        }
        if self.gzip {
            h.extend_from_slice(b"Content-Encoding: gzip\r\n");
        }
        if let Some(auth) = &self.authorization {
            h.extend_from_slice(b"Authorization: ");
            h.extend_from_slice(auth.as_bytes());
            h.extend_from_slice(b"\r\n");
        }
        for (name, value) in &self.headers {
            let _ = write!(h, "{name}: {value}\r\n");
        }
        let _ = write!(h, "Content-Length: {len}\r\n\r\n");
        head
    }

    /// Sends one request and reads its answer, on the kept-alive connection
    /// when there is one, else on a new one.
    fn exchange(&mut self, head: &[u8], body: &[u8]) -> Result<Response, SendError> {
        let deadline = Instant::now() + self.timeout;
        loop {
            let (mut conn, reused) = match self.conn.take() {
                Some(conn) if conn.is_idle() => (conn, true),
                _ => (self.connect(deadline)?, false),
            };
            match conn.round_trip(head, body, deadline) {
                Ok(response) => {
                    if response.keep_alive {
                        self.conn = Some(conn);
                    }
                    return Ok(response);
                }
                // The receiver closed the idle connection before reading the
                // request: send it again on a new one.
                Err(Failure::Stale(_)) if reused => continue,
                Err(Failure::Stale(e) | Failure::Io(e)) => {
                    return Err(SendError::Retry(self.io_message(&e)));
                }
                Err(Failure::Protocol(why)) => {
                    return Err(SendError::Retry(format!("{}: {why}", self.url.display)));
                }
            }
        }
    }

    /// "URL: what went wrong", for a failed connection.
    fn io_message(&self, e: &io::Error) -> String {
        if is_timeout(e) {
            format!(
                "{}: no complete answer within {} ms",
                self.url.display,
                self.timeout.as_millis()
            )
        } else {
            format!("{}: {e}", self.url.display)
        }
    }

    /// Opens a connection to the collector and, for https, completes the
    /// TLS handshake.
    fn connect(&self, deadline: Instant) -> Result<Conn, SendError> {
        let url = &self.url;
        let addrs = (url.host.as_str(), url.port)
            .to_socket_addrs()
            .map_err(|e| {
                SendError::Retry(format!("{}: cannot resolve {}: {e}", url.display, url.host))
            })?;
        let mut last = None;
        let mut socket = None;
        for addr in addrs {
            let left = remaining(deadline)
                .map_err(|e| SendError::Retry(format!("{}: cannot connect: {e}", url.display)))?;
            match TcpStream::connect_timeout(&addr, left) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(socket) = socket else {
            let why = last.map_or_else(|| "no address".to_owned(), |e| e.to_string());
            return Err(SendError::Retry(format!(
                "{}: cannot connect: {why}",
                url.display
            )));
        };
        // Batches are written whole; do not hold back their last segment.
        let _ = socket.set_nodelay(true);
        let stream = match &self.tls {
            None => Stream::Plain(socket),
            Some((config, name)) => {
                let tls = ClientConnection::new(Arc::clone(config), name.clone())
                    .map_err(|e| SendError::Retry(format!("{}: TLS: {e}", url.display)))?;
                let mut stream = StreamOwned::new(tls, socket);
                while stream.conn.is_handshaking() {
                    let step = set_timeouts(&stream.sock, deadline)
                        .and_then(|()| stream.conn.complete_io(&mut stream.sock));
                    if let Err(e) = step {
                        return Err(self.handshake_error(&e));
                    }
                }
                Stream::Tls(Box::new(stream))
            }
        };
        Ok(Conn::new(stream))
    }

    /// A failed TLS handshake: a certificate that does not verify parks the
    /// sink, anything else is retried.
    fn handshake_error(&self, e: &io::Error) -> SendError {
        let tls = e
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<rustls::Error>());
        match tls {
            Some(
                err @ (rustls::Error::InvalidCertificate(_)
                | rustls::Error::NoCertificatesPresented
                | rustls::Error::PeerIncompatible(_)),
            ) => SendError::Park(format!(
                "{}: TLS handshake failed: {err}; check tls_ca and the collector's certificate",
                self.url.display
            )),
            _ if is_timeout(e) => SendError::Retry(format!(
                "{}: no TLS handshake within {} ms",
                self.url.display,
                self.timeout.as_millis()
            )),
            _ => SendError::Retry(format!("{}: TLS handshake failed: {e}", self.url.display)),
        }
    }

    /// What the answer means for a batch of `records` records.
    fn judge(&self, response: &Response, records: usize) -> Result<Sent, SendError> {
        let status = response.status;
        let what = || {
            format!(
                "{} answered {status}{}",
                self.url.display,
                if response.reason.is_empty() {
                    String::new()
                } else {
                    format!(" {}", response.reason)
                }
            )
        };
        match status {
            200..=299 => match self.kind {
                Kind::ElasticBulk { .. } => self.bulk_outcome(response, records),
                Kind::SplunkHec | Kind::Webhook => Ok(Sent::all()),
            },
            408 | 429 | 500..=599 => Err(SendError::Retry(format!(
                "{}: {}",
                what(),
                excerpt(&response.body)
            ))),
            300..=399 => Err(SendError::Park(format!(
                "{}; vigil does not follow redirects: set the url to the address the \
                 collector redirects to",
                what()
            ))),
            _ => {
                let hint = match status {
                    401 | 403 => "; check the token (or credentials) and its permissions",
                    404 => "; check the url's path (and the index)",
                    413 => {
                        "; the batch is larger than the collector accepts: lower the \
                            batch size or raise the collector's limit"
                    }
                    _ => "",
                };
                Err(SendError::Park(format!(
                    "{}: {}{hint}",
                    what(),
                    excerpt(&response.body)
                )))
            }
        }
    }

    /// Reads a 2xx `_bulk` answer item by item.
    fn bulk_outcome(&self, response: &Response, len: usize) -> Result<Sent, SendError> {
        let url = &self.url.display;
        if response.truncated {
            return Err(SendError::Retry(format!(
                "{url}: the _bulk answer is longer than {MAX_BODY} bytes; lower the batch size"
            )));
        }
        let not_bulk = |why: &str| {
            SendError::Park(format!(
                "{url}: the answer is not a _bulk answer ({why}): {}; is the url the _bulk \
                 endpoint?",
                excerpt(&response.body)
            ))
        };
        let answer: Value =
            serde_json::from_slice(&response.body).map_err(|_| not_bulk("not JSON"))?;
        match answer.get("errors") {
            Some(Value::Bool(false)) => return Ok(Sent::all()),
            Some(Value::Bool(true)) => {}
            _ => return Err(not_bulk("no \"errors\" field")),
        }
        let items = answer
            .get("items")
            .and_then(Value::as_array)
            .ok_or_else(|| not_bulk("no \"items\" list"))?;
        if items.len() != len {
            return Err(not_bulk(&format!(
                "{} items for {len} records",
                items.len()
            )));
        }
        let mut sent = Sent::default();
        for (i, item) in items.iter().enumerate() {
            // Each item is {"<action>": {...}}.
            let Some(result) = item.as_object().and_then(|o| o.values().next()) else {
                sent.retry.push(i);
                continue;
            };
            match result.get("status").and_then(Value::as_u64) {
                Some(200..=299 | 409) => {}
                Some(status @ (401 | 403 | 404)) => {
                    return Err(SendError::Park(format!(
                        "{url}: a _bulk item was answered {}; check the index and the \
                         token's permissions",
                        item_error(status, result)
                    )));
                }
                Some(429 | 500..) | None => sent.retry.push(i),
                Some(status) => sent.rejected.push((i, item_error(status, result))),
            }
        }
        Ok(sent)
    }
}

impl Transport for HttpTransport {
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        let mut body = self.body(batch);
        if self.gzip {
            body = gzip(&body)
                .map_err(|e| SendError::Retry(format!("{}: gzip: {e}", self.url.display)))?;
        }
        let head = self.head(body.len());
        let response = self.exchange(&head, &body)?;
        self.judge(&response, batch.len())
    }

    fn reopen(&mut self) {
        self.conn = None;
    }

    fn close(&mut self) {
        self.conn = None;
    }
}

/// The status, error type and reason of a `_bulk` item, bounded.
fn item_error(status: u64, result: &Value) -> String {
    let mut out = format!("{status}");
    match result.get("error") {
        Some(Value::Object(error)) => {
            let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_owned();
            let (kind, reason) = (text(error.get("type")), text(error.get("reason")));
            out.push_str(&format!(" {kind}: {reason}"));
            if let Some(Value::Object(cause)) = error.get("caused_by") {
                let (kind, reason) = (text(cause.get("type")), text(cause.get("reason")));
                out.push_str(&format!(" (caused by {kind}: {reason})"));
            }
        }
        Some(Value::String(s)) => {
            out.push(' ');
            out.push_str(s);
        }
        _ => {}
    }
    printable(out.as_bytes(), REASON_CHARS)
}

/// The parts of a URL the transport needs.
struct Url {
    tls: bool,
    /// The host name or address, without brackets.
    host: String,
    port: u16,
    /// The request target: path and query.
    target: String,
    /// The `Host` header: the host, with the port unless it is the default.
    host_header: String,
    /// `scheme://host:port/path`, for messages.
    display: String,
    /// True when the URL has no path, or just `/`.
    path_is_root: bool,
    /// `Basic …` from credentials in the URL.
    basic: Option<Zeroizing<String>>,
}

impl Url {
    /// Replaces the path, keeping the query.
    fn set_path(&mut self, path: &str) {
        let query = self.target.split_once('?').map(|(_, q)| q.to_owned());
        self.target = match query {
            Some(q) => format!("{path}?{q}"),
            None => path.to_owned(),
        };
        let scheme = if self.tls { "https" } else { "http" };
        self.display = format!("{scheme}://{}:{}{path}", bracket(&self.host), self.port);
        self.path_is_root = false;
    }
}

/// Parses `http://` and `https://` URLs.
fn parse_url(raw: &str) -> Result<Url, ConfigError> {
    let shown = redact_url(raw);
    let bad = |why: &str| ConfigError(format!("url {shown:?}: {why}"));
    if raw.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err(bad(
            "contains spaces or control characters; percent-encode them",
        ));
    }
    let (scheme, rest) = raw
        .split_once("://")
        .ok_or_else(|| bad("must start with http:// or https://"))?;
    let tls = match scheme.to_ascii_lowercase().as_str() {
        "http" => false,
        "https" => true,
        _ => return Err(bad("must start with http:// or https://")),
    };
    let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
    let (authority, target) = match rest.find(['/', '?']) {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let (userinfo, hostport) = match authority.rsplit_once('@') {
        Some((u, h)) => (Some(u), h),
        None => (None, authority),
    };
    let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
        let (addr, after) = v6
            .split_once(']')
            .ok_or_else(|| bad("an IPv6 address must be closed with ]"))?;
        addr.parse::<Ipv6Addr>()
            .map_err(|_| bad("the address in [] is not an IPv6 address"))?;
        (addr, after.strip_prefix(':'))
    } else {
        match hostport.split_once(':') {
            Some((h, p)) => (h, Some(p)),
            None => (hostport, None),
        }
    };
    if host.is_empty() {
        return Err(bad("has no host"));
    }
    if !host
        .bytes()
        .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b':'))
    {
        return Err(bad(
            "the host may hold only letters, digits, '-', '.' and '_'",
        ));
    }
    let port = match port {
        None | Some("") => {
            if tls {
                443
            } else {
                80
            }
        }
        Some(p) => p
            .parse::<u16>()
            .ok()
            .filter(|p| *p != 0)
            .ok_or_else(|| bad("the port must be a number from 1 to 65535"))?,
    };
    let target = if target.is_empty() {
        "/".to_owned()
    } else if target.starts_with('?') {
        format!("/{target}")
    } else {
        target.to_owned()
    };
    let path = target.split_once('?').map_or(target.as_str(), |(p, _)| p);
    let basic = match userinfo {
        None => None,
        Some(info) => {
            let (user, password) = info.split_once(':').unwrap_or((info, ""));
            let mut plain = Zeroizing::new(percent_decode(user));
            plain.push(b':');
            plain.extend_from_slice(&percent_decode(password));
            let mut value = Zeroizing::new(String::from("Basic "));
            base64(&plain, &mut value);
            Some(value)
        }
    };
    let default_port = if tls { 443 } else { 80 };
    let host_header = if port == default_port {
        bracket(host)
    } else {
        format!("{}:{port}", bracket(host))
    };
    let scheme = if tls { "https" } else { "http" };
    Ok(Url {
        tls,
        host: host.to_owned(),
        port,
        display: format!("{scheme}://{}:{port}{path}", bracket(host)),
        path_is_root: path == "/",
        target,
        host_header,
        basic,
    })
}

/// `host`, in brackets when it is an IPv6 address.
fn bracket(host: &str) -> String {
    if host.contains(':') {
        format!("[{host}]")
    } else {
        host.to_owned()
    }
}

/// `url` without credentials, query or fragment, for messages about a URL
/// that may not parse.
fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.split_once("://") {
        Some((s, r)) => (Some(s), r),
        None => (None, url),
    };
    let rest = rest.split(['?', '#']).next().unwrap_or("");
    let (authority, path) = match rest.find('/') {
        Some(at) => rest.split_at(at),
        None => (rest, ""),
    };
    let host = authority.rsplit_once('@').map_or(authority, |(_, h)| h);
    match scheme {
        Some(s) => format!("{s}://{host}{path}"),
        None => format!("{host}{path}"),
    }
}

/// Decodes `%XX` escapes; anything else is kept as it is.
fn percent_decode(s: &str) -> Vec<u8> {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        let hex = |c: u8| (c as char).to_digit(16);
        if b[i] == b'%'
            && i + 2 < b.len()
            && let (Some(hi), Some(lo)) = (hex(b[i + 1]), hex(b[i + 2]))
        {
            out.push((hi * 16 + lo) as u8);
            i += 3;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    out
}

/// Appends `data` in standard base64 with padding.
fn base64(data: &[u8], out: &mut String) {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    for chunk in data.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = u32::from(b[0]) << 16 | u32::from(b[1]) << 8 | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ALPHABET[(n >> (18 - 6 * i) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
}

/// Checks an Elasticsearch index name, so a bad one is a configuration
/// error and not a rejection of every record.
fn check_index(index: &str) -> Result<(), ConfigError> {
    let bad = |why: &str| ConfigError(format!("index {index:?}: {why}"));
    if index.is_empty() || index.len() > 255 {
        return Err(bad("must be 1 to 255 bytes long"));
    }
    if index == "." || index == ".." {
        return Err(bad("must not be . or .."));
    }
    if index.starts_with(['-', '_', '+']) {
        return Err(bad("must not start with -, _ or +"));
    }
    if index
        .chars()
        .any(|c| c.is_uppercase() || c.is_control() || " \\/*?\"<>|,#:".contains(c))
    {
        return Err(bad(
            "must be lower case without spaces or any of \\ / * ? \" < > | , # :",
        ));
    }
    Ok(())
}

/// Checks that a configured header is a valid HTTP field, so it cannot
/// inject others.
fn check_header(name: &str, value: &str, url: &str) -> Result<(), ConfigError> {
    let token_char = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    if name.is_empty() || !name.bytes().all(token_char) {
        return Err(ConfigError(format!(
            "{url}: header name {name:?} may hold only letters, digits and !#$%&'*+-.^_`|~"
        )));
    }
    if value.chars().any(|c| c.is_control() && c != '\t') {
        return Err(ConfigError(format!(
            "{url}: the value of header {name} holds control characters (such as a line break)"
        )));
    }
    Ok(())
}

/// The client configuration for https: the CAs from `ca`, else the
/// system's.
fn tls_config(ca: Option<&Path>, url: &str) -> Result<Arc<ClientConfig>, ConfigError> {
    let path = match ca {
        Some(path) => path.to_path_buf(),
        None => SYSTEM_CA_BUNDLES
            .iter()
            .map(PathBuf::from)
            .find(|p| p.is_file())
            .ok_or_else(|| {
                ConfigError(format!(
                    "{url}: https needs CA certificates: set tls_ca, as no system CA bundle \
                     was found (looked at {})",
                    SYSTEM_CA_BUNDLES.join(", ")
                ))
            })?,
    };
    let bad = |why: String| ConfigError(format!("{url}: tls_ca {}: {why}", path.display()));
    let certs = CertificateDer::pem_file_iter(&path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| bad(format!("{e}; give a readable PEM file of CA certificates")))?;
    let mut roots = RootCertStore::empty();
    let (added, _ignored) = roots.add_parsable_certificates(certs);
    if added == 0 {
        return Err(bad(
            "holds no usable CA certificate (-----BEGIN CERTIFICATE-----)".to_owned(),
        ));
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| ConfigError(format!("{url}: TLS: {e}")))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// `s` as a JSON string.
fn push_json_str(out: &mut Vec<u8>, s: &str) {
    // Serializing a string into a Vec cannot fail.
    let _ = serde_json::to_writer(&mut *out, s);
}

/// A record as a JSON value: as it is when it is a JSON object, else as a
/// string.
fn push_record(out: &mut Vec<u8>, formatted: &[u8]) {
    if formatted.trim_ascii_start().starts_with(b"{") {
        out.extend_from_slice(formatted);
    } else {
        push_json_str(out, &String::from_utf8_lossy(formatted));
    }
}

/// Microseconds since the epoch as decimal seconds, e.g. `1764155940.123456`.
fn push_epoch_seconds(out: &mut Vec<u8>, micros: i64) {
    if micros < 0 {
        out.push(b'-');
    }
    let abs = micros.unsigned_abs();
    // Writing to a Vec cannot fail.
    let _ = write!(out, "{}.{:06}", abs / 1_000_000, abs % 1_000_000);
}

fn gzip(body: &[u8]) -> io::Result<Vec<u8>> {
    let mut encoder = GzEncoder::new(Vec::with_capacity(body.len() / 4 + 64), Compression::fast());
    encoder.write_all(body)?;
    encoder.finish()
}

/// At most `max` characters of `bytes`, lossily decoded, with control
/// characters and runs of white space shown as one space.
fn printable(bytes: &[u8], max: usize) -> String {
    let text = String::from_utf8_lossy(bytes);
    let mut out = String::new();
    let mut count = 0;
    let mut space = false;
    for c in text.chars() {
        if c.is_whitespace() || c.is_control() {
            space = !out.is_empty();
            continue;
        }
        let take = 1 + usize::from(space);
        if count + take > max {
            out.push('…');
            break;
        }
        if space {
            out.push(' ');
            space = false;
        }
        out.push(c);
        count += take;
    }
    out
}

/// A short, printable excerpt of an answer's body for messages.
fn excerpt(body: &[u8]) -> String {
    let text = printable(body, EXCERPT_CHARS);
    if text.is_empty() {
        "(empty body)".to_owned()
    } else {
        text
    }
}

/// The time left until `deadline`, or a timeout error.
fn remaining(deadline: Instant) -> io::Result<Duration> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"))
    } else {
        Ok(left)
    }
}

/// Makes the socket's reads and writes give up at `deadline`.
fn set_timeouts(socket: &TcpStream, deadline: Instant) -> io::Result<()> {
    let left = remaining(deadline)?;
    socket.set_read_timeout(Some(left))?;
    socket.set_write_timeout(Some(left))
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock
    )
}

/// True for errors that mean the peer closed or reset the connection.
fn is_closed(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::UnexpectedEof
            | io::ErrorKind::ConnectionReset
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::BrokenPipe
    )
}

/// Why a request on a connection failed.
enum Failure {
    /// The connection failed before any byte of an answer came: on a
    /// kept-alive connection, the receiver most likely closed it while idle.
    Stale(io::Error),
    /// The connection failed or timed out later.
    Io(io::Error),
    /// The answer is not HTTP/1.1 as the transport reads it.
    Protocol(String),
}

impl From<io::Error> for Failure {
    fn from(e: io::Error) -> Self {
        Failure::Io(e)
    }
}

/// An answer.
#[derive(Debug)]
struct Response {
    status: u16,
    /// The reason phrase, printable and bounded.
    reason: String,
    /// The body, at most [`MAX_BODY`] bytes of it.
    body: Vec<u8>,
    /// True when the body was longer than [`MAX_BODY`].
    truncated: bool,
    /// Whether the connection may carry the next request.
    keep_alive: bool,
}

/// How an answer's body is framed.
enum Framing {
    Chunked,
    Length(usize),
    UntilClose,
    Empty,
}

enum Stream {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Plain(s) => s,
            Stream::Tls(s) => &s.sock,
        }
    }
}

impl Read for Stream {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.read(buf),
            Stream::Tls(s) => s.read(buf),
        }
    }
}

impl Write for Stream {
    #[allow(clippy::disallowed_methods)] // a forwarding impl; callers use write_all
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Stream::Plain(s) => s.write(buf),
            Stream::Tls(s) => s.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Stream::Plain(s) => s.flush(),
            Stream::Tls(s) => s.flush(),
        }
    }
}

/// What a [`Conn`] writes requests to and reads answers from: a socket, or
/// bytes in memory for [`fuzz_http_response`].
trait Io: Read + Write {
    /// Makes reads and writes give up at `deadline`, or fails when it has
    /// passed.
    fn set_deadline(&self, deadline: Instant) -> io::Result<()>;
}

impl Io for Stream {
    fn set_deadline(&self, deadline: Instant) -> io::Result<()> {
        set_timeouts(self.socket(), deadline)
    }
}

/// A connection with the bytes read from it but not yet used.
struct Conn<S = Stream> {
    stream: S,
    buf: Vec<u8>,
    /// Where the unused bytes of `buf` start.
    start: usize,
}

impl Conn {
    /// True when the receiver neither closed the connection nor sent
    /// anything (such as a 408 before closing) since the last answer.
    fn is_idle(&self) -> bool {
        let socket = self.stream.socket();
        if self.start < self.buf.len() || socket.set_nonblocking(true).is_err() {
            return false;
        }
        let mut byte = [0u8; 1];
        let idle =
            matches!(socket.peek(&mut byte), Err(e) if e.kind() == io::ErrorKind::WouldBlock);
        socket.set_nonblocking(false).is_ok() && idle
    }
}

impl<S: Io> Conn<S> {
    fn new(stream: S) -> Conn<S> {
        Conn {
            stream,
            buf: Vec::new(),
            start: 0,
        }
    }

    /// Writes the request and reads the answer, skipping `1xx` answers.
    fn round_trip(
        &mut self,
        head: &[u8],
        body: &[u8],
        deadline: Instant,
    ) -> Result<Response, Failure> {
        self.buf.clear();
        self.start = 0;
        self.write_all(head, deadline).map_err(Failure::Stale)?;
        self.write_all(body, deadline).map_err(Failure::Stale)?;
        self.stream.set_deadline(deadline)?;
        self.stream.flush().map_err(Failure::Stale)?;
        let mut first = true;
        loop {
            let (status, reason, framing, keep_alive) = self.read_head(deadline, first)?;
            first = false;
            if (100..200).contains(&status) {
                if status == 101 {
                    return Err(Failure::Protocol(
                        "the collector switched protocols".to_owned(),
                    ));
                }
                continue;
            }
            let mut response = Response {
                status,
                reason,
                body: Vec::new(),
                truncated: false,
                keep_alive,
            };
            self.read_body(framing, &mut response, deadline)?;
            if self.start < self.buf.len() {
                response.keep_alive = false;
            }
            return Ok(response);
        }
    }

    fn write_all(&mut self, data: &[u8], deadline: Instant) -> io::Result<()> {
        for chunk in data.chunks(WRITE_CHUNK) {
            self.stream.set_deadline(deadline)?;
            self.stream.write_all(chunk)?;
        }
        Ok(())
    }

    /// The unused bytes read so far.
    fn available(&self) -> &[u8] {
        &self.buf[self.start..]
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
    }

    /// Reads more bytes; 0 at the end of the connection.
    fn fill(&mut self, deadline: Instant) -> io::Result<usize> {
        if self.start > 0 {
            self.buf.drain(..self.start);
            self.start = 0;
        }
        let mut chunk = [0u8; READ_CHUNK];
        loop {
            self.stream.set_deadline(deadline)?;
            match self.stream.read(&mut chunk) {
                Ok(n) => {
                    self.buf.extend_from_slice(&chunk[..n]);
                    return Ok(n);
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                // A TLS peer that closes without close_notify.
                Err(e) if e.kind() == io::ErrorKind::UnexpectedEof => return Ok(0),
                Err(e) if is_timeout(&e) => {
                    return Err(io::Error::new(io::ErrorKind::TimedOut, "timed out"));
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// Reads the status line and headers: status, reason, how the body is
    /// framed, and whether the connection stays open.
    fn read_head(
        &mut self,
        deadline: Instant,
        first: bool,
    ) -> Result<(u16, String, Framing, bool), Failure> {
        let mut searched = 0;
        let end = loop {
            match find_within(self.available(), b"\r\n\r\n", MAX_HEAD, searched) {
                Ok(at) => break at,
                Err(Some(n)) => searched = n,
                Err(None) => {
                    return Err(Failure::Protocol(format!(
                        "the answer's headers are longer than {MAX_HEAD} bytes"
                    )));
                }
            }
            let nothing_yet = first && self.available().is_empty();
            match self.fill(deadline) {
                Ok(0) if nothing_yet => {
                    return Err(Failure::Stale(io::Error::new(
                        io::ErrorKind::UnexpectedEof,
                        "the collector closed the connection without answering",
                    )));
                }
                Ok(0) => {
                    return Err(Failure::Protocol(
                        "the collector closed the connection in the middle of its answer"
                            .to_owned(),
                    ));
                }
                Ok(_) => {}
                Err(e) if nothing_yet && is_closed(&e) => return Err(Failure::Stale(e)),
                Err(e) => return Err(Failure::Io(e)),
            }
        };
        let head = String::from_utf8_lossy(&self.available()[..end]).into_owned();
        self.consume(end + 4);

        let mut lines = head.split("\r\n");
        let status_line = lines.next().unwrap_or("");
        let bad_status = || {
            Failure::Protocol(format!(
                "the answer does not start with an HTTP/1.x status line: {}",
                printable(status_line.as_bytes(), EXCERPT_CHARS)
            ))
        };
        let mut parts = status_line.splitn(3, ' ');
        let version = parts.next().unwrap_or("");
        let http10 = match version {
            "HTTP/1.1" => false,
            "HTTP/1.0" => true,
            _ => return Err(bad_status()),
        };
        let status = parts
            .next()
            .filter(|s| s.len() == 3)
            .and_then(|s| s.parse::<u16>().ok())
            .filter(|s| (100..=599).contains(s))
            .ok_or_else(bad_status)?;
        let reason = printable(parts.next().unwrap_or("").as_bytes(), 60);

        let mut length: Option<usize> = None;
        let mut chunked = false;
        let mut close = http10;
        for line in lines {
            let Some((name, value)) = line.split_once(':') else {
                continue;
            };
            let value = value.trim();
            if name.eq_ignore_ascii_case("content-length") {
                let n = value
                    .parse::<usize>()
                    .map_err(|_| Failure::Protocol(format!("invalid Content-Length {value:?}")))?;
                if length.is_some_and(|l| l != n) {
                    return Err(Failure::Protocol("conflicting Content-Length".to_owned()));
                }
                length = Some(n);
            } else if name.eq_ignore_ascii_case("transfer-encoding") {
                let last = value.rsplit(',').next().unwrap_or("").trim();
                if last.eq_ignore_ascii_case("chunked") {
                    chunked = true;
                } else {
                    return Err(Failure::Protocol(format!(
                        "unsupported Transfer-Encoding {value:?}"
                    )));
                }
            } else if name.eq_ignore_ascii_case("connection") {
                for token in value.split(',').map(str::trim) {
                    if token.eq_ignore_ascii_case("close") {
                        close = true;
                    } else if token.eq_ignore_ascii_case("keep-alive") && http10 {
                        close = false;
                    }
                }
            }
        }
        let framing = if (100..200).contains(&status) || status == 204 || status == 304 {
            Framing::Empty
        } else if chunked {
            Framing::Chunked
        } else if let Some(n) = length {
            Framing::Length(n)
        } else {
            close = true;
            Framing::UntilClose
        };
        Ok((status, reason, framing, !close))
    }

    /// Reads the body into `response`, keeping at most [`MAX_BODY`] bytes;
    /// a longer body is not read to its end, and the connection is not
    /// reused.
    fn read_body(
        &mut self,
        framing: Framing,
        response: &mut Response,
        deadline: Instant,
    ) -> Result<(), Failure> {
        match framing {
            Framing::Empty => Ok(()),
            Framing::Length(n) => self.read_exact_into(n, response, deadline),
            Framing::UntilClose => loop {
                let n = self.available().len();
                keep(response, &self.buf[self.start..]);
                self.consume(n);
                if response.truncated || self.fill(deadline)? == 0 {
                    response.keep_alive = false;
                    return Ok(());
                }
            },
            Framing::Chunked => {
                loop {
                    let line = self.read_line(deadline)?;
                    let size = line.split(';').next().unwrap_or("").trim();
                    let size = usize::from_str_radix(size, 16).map_err(|_| {
                        Failure::Protocol(format!(
                            "invalid chunk size {:?}",
                            printable(size.as_bytes(), 20)
                        ))
                    })?;
                    if size == 0 {
                        break;
                    }
                    self.read_exact_into(size, response, deadline)?;
                    if response.truncated {
                        return Ok(());
                    }
                    if !self.read_line(deadline)?.is_empty() {
                        return Err(Failure::Protocol(
                            "a chunk is longer than its size".to_owned(),
                        ));
                    }
                }
                // Trailers, up to the empty line.
                while !self.read_line(deadline)?.is_empty() {}
                Ok(())
            }
        }
    }

    /// Reads `n` body bytes into `response`.
    fn read_exact_into(
        &mut self,
        mut n: usize,
        response: &mut Response,
        deadline: Instant,
    ) -> Result<(), Failure> {
        while n > 0 {
            if self.available().is_empty() && self.fill(deadline)? == 0 {
                return Err(Failure::Protocol(
                    "the collector closed the connection before the end of the body".to_owned(),
                ));
            }
            let take = self.available().len().min(n);
            keep(response, &self.buf[self.start..self.start + take]);
            self.consume(take);
            n -= take;
            if response.truncated {
                response.keep_alive = false;
                return Ok(());
            }
        }
        Ok(())
    }

    /// Reads one CRLF-terminated line of chunk framing, without the CRLF.
    fn read_line(&mut self, deadline: Instant) -> Result<String, Failure> {
        let mut searched = 0;
        loop {
            match find_within(self.available(), b"\r\n", MAX_CHUNK_LINE, searched) {
                Ok(at) => {
                    let line = String::from_utf8_lossy(&self.available()[..at]).into_owned();
                    self.consume(at + 2);
                    return Ok(line);
                }
                Err(Some(n)) => searched = n,
                Err(None) => {
                    return Err(Failure::Protocol(
                        "a line of the chunked body is too long".to_owned(),
                    ));
                }
            }
            if self.fill(deadline)? == 0 {
                return Err(Failure::Protocol(
                    "the collector closed the connection in the middle of a chunked body"
                        .to_owned(),
                ));
            }
        }
    }
}

/// Reads arbitrary bytes as a collector's answer and judges it, as the
/// `http_response` fuzz target does; panics when the reader breaks a
/// promise.
///
/// The first byte picks how the answer is cut into reads (its low three
/// bits: 1 byte to 16 KiB at a time) and how many records the batch held
/// (the other five bits: 0 to 31), for `_bulk` answers. The rest is the
/// answer. Promises checked: nothing panics; the reader holds at most
/// [`MAX_HEAD`] and one read of unused bytes, and at most [`MAX_BODY`] of
/// body; it uses no more bytes than it was given; an answer it returns has
/// a final status from 200 to 599 (`1xx` are skipped) and a bounded reason;
/// the answer, or the error, is the same however the bytes are cut; every
/// message is one line; a 2xx `_bulk` outcome names each record at most
/// once, and only records of the batch; other collectors take a 2xx whole.
#[doc(hidden)]
pub fn fuzz_http_response(data: &[u8]) {
    let Some((&knob, answer)) = data.split_first() else {
        return;
    };
    let step = [1, 2, 3, 7, 64, 1000, 4096, READ_CHUNK][usize::from(knob & 7)];
    let records = usize::from(knob >> 3);
    let cut = replay(answer, step);
    let whole = replay(answer, READ_CHUNK);
    let key = |r: &Result<(Response, usize), String>| match r {
        Ok((a, used)) => Ok((
            a.status,
            a.reason.clone(),
            a.body.clone(),
            a.truncated,
            *used,
        )),
        Err(why) => Err(why.clone()),
    };
    assert_eq!(
        key(&cut),
        key(&whole),
        "the answer depends on how it is cut into reads of {step} bytes"
    );
    let response = match cut {
        Ok((response, _)) => response,
        Err(why) => {
            assert_one_line(&why);
            return;
        }
    };
    assert!(
        (200..=599).contains(&response.status),
        "final status {}",
        response.status
    );
    assert!(
        response.reason.chars().count() <= 61,
        "reason {:?}",
        response.reason
    );
    assert_one_line(&response.reason);
    assert!(response.body.len() <= MAX_BODY);
    assert!(!response.truncated || response.body.len() == MAX_BODY);

    let url = "http://collector.test/";
    let bulk = Kind::ElasticBulk {
        index: "vigil".to_owned(),
    };
    for kind in [bulk, Kind::Webhook] {
        let is_bulk = matches!(kind, Kind::ElasticBulk { .. });
        let transport = HttpTransport::new(HttpConfig::new(url, kind)).expect("a valid config");
        match transport.judge(&response, records) {
            Ok(sent) => {
                assert!((200..=299).contains(&response.status), "{sent:?}");
                assert!(is_bulk || sent == Sent::all(), "{sent:?}");
                let mut named = vec![false; records];
                let rejected = sent.rejected.iter().map(|(i, _)| i);
                for &i in sent.retry.iter().chain(rejected) {
                    assert!(i < records, "record {i} of {records}: {sent:?}");
                    assert!(!named[i], "record {i} named twice: {sent:?}");
                    named[i] = true;
                }
                for (_, why) in &sent.rejected {
                    assert!(why.chars().count() <= REASON_CHARS + 1, "{why:?}");
                    assert_one_line(why);
                }
            }
            Err(SendError::Park(why) | SendError::Retry(why)) => assert_one_line(&why),
        }
    }
}

/// Reads `answer` as a collector's answer, `step` bytes per read: the
/// answer and how many bytes it took, or why it was refused.
fn replay(answer: &[u8], step: usize) -> Result<(Response, usize), String> {
    let mut conn = Conn::new(Replay {
        data: answer,
        at: 0,
        step,
    });
    let deadline = Instant::now() + Duration::from_secs(3600);
    let result = conn.round_trip(b"", b"", deadline);
    assert!(
        conn.buf.len() <= MAX_HEAD + READ_CHUNK,
        "{} unused bytes held",
        conn.buf.len()
    );
    let unused = conn.buf.len().checked_sub(conn.start);
    let used = unused.and_then(|unused| conn.stream.at.checked_sub(unused));
    let used = used.expect("the reader used no more than it read");
    assert!(
        used <= answer.len(),
        "used {used} of {} bytes",
        answer.len()
    );
    match result {
        Ok(response) => Ok((response, used)),
        Err(Failure::Protocol(why)) => Err(why),
        Err(Failure::Io(e) | Failure::Stale(e)) => Err(e.to_string()),
    }
}

/// Panics when `text` would span more than one line of a log.
fn assert_one_line(text: &str) {
    assert!(
        !text
            .chars()
            .any(|c| c.is_control() || c == '\u{2028}' || c == '\u{2029}'),
        "not one line: {text:?}"
    );
}

/// An answer in memory, handed out at most `step` bytes per read; what is
/// written to it is dropped.
struct Replay<'a> {
    data: &'a [u8],
    /// How much of `data` was read.
    at: usize,
    step: usize,
}

impl Read for Replay<'_> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let rest = self.data.get(self.at..).unwrap_or_default();
        let n = rest.len().min(self.step).min(buf.len());
        buf[..n].copy_from_slice(&rest[..n]);
        self.at += n;
        Ok(n)
    }
}

impl Write for Replay<'_> {
    #[allow(clippy::disallowed_methods)] // the trait's method; callers use write_all
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Io for Replay<'_> {
    fn set_deadline(&self, _deadline: Instant) -> io::Result<()> {
        Ok(())
    }
}

/// Adds `bytes` to the body, up to [`MAX_BODY`].
fn keep(response: &mut Response, bytes: &[u8]) {
    let room = MAX_BODY - response.body.len();
    if bytes.len() > room {
        response.truncated = true;
    }
    response
        .body
        .extend_from_slice(&bytes[..bytes.len().min(room)]);
}

/// Where `needle` first occurs in `haystack`.
fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

/// Where the terminator `end` of a line or head at most `max` bytes long
/// starts in `buf`, whose first `searched` bytes were searched before.
/// `Err(Some(n))`: not yet, search again from `n` once more bytes came;
/// `Err(None)`: longer than `max`. The answer depends only on the bytes, not
/// on how they arrived, and each byte is searched about once.
fn find_within(
    buf: &[u8],
    end: &[u8],
    max: usize,
    searched: usize,
) -> Result<usize, Option<usize>> {
    let limit = buf.len().min(max + end.len());
    // The terminator may straddle what was searched and what came since.
    let from = searched.saturating_sub(end.len() - 1).min(limit);
    match find(&buf[from..limit], end) {
        Some(at) => Ok(from + at),
        None if buf.len() >= max + end.len() => Err(None),
        None => Err(Some(buf.len())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_urls() {
        let u = parse_url("https://es.example:9200/_bulk?pipeline=p").unwrap();
        assert!(u.tls);
        assert_eq!((u.host.as_str(), u.port), ("es.example", 9200));
        assert_eq!(u.target, "/_bulk?pipeline=p");
        assert_eq!(u.host_header, "es.example:9200");
        assert_eq!(u.display, "https://es.example:9200/_bulk");

        let u = parse_url("http://[::1]").unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.target.as_str()),
            ("::1", 80, "/")
        );
        assert_eq!(u.host_header, "[::1]");
        assert!(u.path_is_root);

        let u = parse_url("HTTP://user:p%40ss@h:8080?x=1").unwrap();
        assert_eq!(u.target, "/?x=1");
        assert_eq!(u.display, "http://h:8080/");
        // base64("user:p@ss")
        assert_eq!(
            u.basic.as_deref().map(String::as_str),
            Some("Basic dXNlcjpwQHNz")
        );

        for bad in [
            "ftp://h/",
            "h:80/x",
            "http://",
            "http://h:0/",
            "http://h:99999/",
            "http://h x/",
            "http://[::1/",
            "http://h/a b",
        ] {
            assert!(parse_url(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn redacts_urls() {
        assert_eq!(
            redact_url("https://u:secret@h:1/p?token=secret#f"),
            "https://h:1/p"
        );
        assert_eq!(redact_url("u:secret@h"), "h");
    }

    #[test]
    fn encodes_base64() {
        for (plain, want) in [
            ("", ""),
            ("f", "Zg=="),
            ("fo", "Zm8="),
            ("foo", "Zm9v"),
            ("foob", "Zm9vYg=="),
            ("fooba", "Zm9vYmE="),
            ("foobar", "Zm9vYmFy"),
        ] {
            let mut out = String::new();
            base64(plain.as_bytes(), &mut out);
            assert_eq!(out, want);
        }
    }

    #[test]
    fn writes_epoch_seconds() {
        let s = |m| {
            let mut out = Vec::new();
            push_epoch_seconds(&mut out, m);
            String::from_utf8(out).unwrap()
        };
        assert_eq!(s(1_764_155_940_123_456), "1764155940.123456");
        assert_eq!(s(5), "0.000005");
        assert_eq!(s(-500_000), "-0.500000");
    }

    #[test]
    fn shows_printable_excerpts() {
        assert_eq!(printable(b"a\r\n\tb\x00c  ", 10), "a b c");
        assert_eq!(printable(b"abcdef", 3), "abc…");
        assert_eq!(excerpt(b""), "(empty body)");
    }

    /// Found by the `http_response` fuzz target: a space before the last
    /// character let an excerpt grow one past its limit.
    #[test]
    fn printable_keeps_to_its_limit_with_a_space_before_the_last_character() {
        assert_eq!(printable(b"abcd e", 5), "abcd…");
        assert_eq!(printable(b"abc e", 5), "abc e");
        assert_eq!(printable(b"abc  ef", 5), "abc e…");
        let crash = include_bytes!("../../../../fuzz/seeds/http_response/crash-reason-over-limit");
        fuzz_http_response(crash);
    }

    /// A head that ends just past the limit is refused however the answer
    /// is cut into reads, and finding the end of a long head takes time in
    /// proportion to its length even when it arrives a byte at a time.
    #[test]
    fn the_head_limit_does_not_depend_on_reads() {
        for extra in [0, 1, 2, 3, 4, 5, 100] {
            let mut answer = b"HTTP/1.1 200 OK\r\nX: ".to_vec();
            answer.resize(MAX_HEAD - 4 + extra, b'a');
            answer.extend_from_slice(b"\r\n\r\n");
            let whole = replay(&answer, READ_CHUNK).map(|(r, _)| r.status);
            for step in [1, 7, 4096] {
                let cut = replay(&answer, step).map(|(r, _)| r.status);
                assert_eq!(cut, whole, "{extra} past, reads of {step}");
            }
            assert_eq!(whole.is_ok(), extra <= 4, "{extra} past: {whole:?}");
        }
        let mut line = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n1;".to_vec();
        line.resize(line.len() + MAX_CHUNK_LINE + 100, b'x');
        line.extend_from_slice(b"\r\nz\r\n0\r\n\r\n");
        let whole = replay(&line, READ_CHUNK).map(|(r, _)| r.status);
        assert!(whole.is_err());
        assert_eq!(replay(&line, 1).map(|(r, _)| r.status), whole);
    }

    #[test]
    fn checks_index_names() {
        assert!(check_index("vigil-events").is_ok());
        for bad in ["", "Vigil", "a b", "-x", "a/b", ".."] {
            assert!(check_index(bad).is_err(), "{bad}");
        }
    }

    /// A `_bulk` answer for two records, the second refused by the mapping.
    const BULK_ITEM_ERROR: &[u8] = b"{\"took\":3,\"errors\":true,\"items\":[\
        {\"create\":{\"_index\":\"vigil\",\"_id\":\"db1:1\",\"status\":201}},\
        {\"create\":{\"_index\":\"vigil\",\"_id\":\"db1:2\",\"status\":400,\
        \"error\":{\"type\":\"document_parsing_exception\",\"reason\":\"bad [time]\"}}}]}";

    fn chunked(body: &[u8], pieces: usize) -> Vec<u8> {
        let mut out = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
        for piece in body.chunks(body.len().div_ceil(pieces)) {
            out.extend_from_slice(format!("{:x};x=y\r\n", piece.len()).as_bytes());
            out.extend_from_slice(piece);
            out.extend_from_slice(b"\r\n");
        }
        out.extend_from_slice(b"0\r\nX-Trailer: 1\r\n\r\n");
        out
    }

    #[test]
    fn reads_answers_from_memory() {
        let answer = chunked(BULK_ITEM_ERROR, 3);
        for step in [1, 5, READ_CHUNK] {
            let (response, used) = replay(&answer, step).unwrap();
            assert_eq!((response.status, used), (200, answer.len()));
            assert_eq!(response.body, BULK_ITEM_ERROR);
            assert!(response.keep_alive);
        }

        let mut answer = b"HTTP/1.1 100 Continue\r\n\r\n".to_vec();
        answer.extend_from_slice(
            b"HTTP/1.1 503 Service Unavailable\r\nContent-Length: 4\r\n\r\nbusyHTTP/1.1",
        );
        let (response, used) = replay(&answer, 2).unwrap();
        assert_eq!(response.status, 503);
        assert_eq!(response.reason, "Service Unavailable");
        assert_eq!(used, answer.len() - b"HTTP/1.1".len());

        let (response, _) = replay(b"HTTP/1.0 200 OK\r\n\r\nall of it", 3).unwrap();
        assert_eq!(response.body, b"all of it");
        assert!(!response.keep_alive);

        for (bad, why) in [
            (&b""[..], "without answering"),
            (b"HTTP/1.1 200 OK\r\n", "in the middle of its answer"),
            (b"HTTP/2 200\r\n\r\n", "status line"),
            (
                b"HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nabc",
                "end of the body",
            ),
            (
                b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nz\r\n",
                "chunk size",
            ),
        ] {
            let err = replay(bad, 4).unwrap_err();
            assert!(err.contains(why), "{err}");
        }
    }

    #[test]
    fn judges_bulk_items() {
        let (response, _) = replay(&chunked(BULK_ITEM_ERROR, 2), 64).unwrap();
        let kind = Kind::ElasticBulk {
            index: "vigil".to_owned(),
        };
        let t = HttpTransport::new(HttpConfig::new("http://collector.test/", kind)).unwrap();
        let sent = t.judge(&response, 2).unwrap();
        assert!(sent.retry.is_empty());
        assert_eq!(
            sent.rejected,
            [(1, "400 document_parsing_exception: bad [time]".to_owned())]
        );
        assert!(matches!(t.judge(&response, 3), Err(SendError::Park(_))));
    }

    #[test]
    fn the_fuzz_check_passes_on_typical_answers() {
        let mut answers = vec![
            chunked(BULK_ITEM_ERROR, 2),
            b"HTTP/1.1 200 OK\r\nContent-Length: 27\r\n\r\n{\"text\":\"Success\",\"code\":0}"
                .to_vec(),
            b"HTTP/1.1 503 Service Unavailable\r\nConnection: close\r\n\r\nbusy".to_vec(),
            b"HTTP/1.1 204 No Content\r\n\r\n".to_vec(),
            b"garbage".to_vec(),
            Vec::new(),
        ];
        answers.push(vec![b'a'; 2 * MAX_HEAD]);
        for answer in &answers {
            for knob in [0u8, 2 << 3 | 1, 2 << 3 | 7, 255] {
                let mut data = vec![knob];
                data.extend_from_slice(answer);
                fuzz_http_response(&data);
            }
        }
        fuzz_http_response(&[]);
    }
}
