//! NATS JetStream: each record is published to a subject that a JetStream
//! stream captures, and counts as delivered once JetStream acknowledged
//! storing it.
//!
//! [`NatsTransport`] speaks the NATS client protocol itself, over a
//! blocking TCP connection (optionally TLS): it reads the server's `INFO`,
//! sends `CONNECT` (with a user and password or a token, when configured)
//! and a `PING`, and subscribes to a reply inbox `_INBOX.<random hex>.*`.
//! A batch is pipelined: one `HPUB` per record, each with its own reply
//! subject `<inbox>.<n>` and the header `Nats-Msg-Id: <origin>:<seq>`,
//! then one flush, then the transport reads until JetStream acknowledged
//! every message (`{"stream":…,"seq":…}`) or something failed. The payload
//! is the record's formatted event, unchanged. Server `PING`s are answered
//! whenever the transport reads.
//!
//! # De-duplication
//!
//! A batch whose acknowledgements did not all arrive is sent again whole,
//! so a message may reach the server twice. JetStream drops a message
//! whose `Nats-Msg-Id` it stored within the stream's duplicate window and
//! acknowledges it with `"duplicate":true`; the transport counts that as
//! delivered. A stream this transport creates has a window of two minutes.
//! A copy sent again after the window (after a long outage, or a restart
//! that rewound the sink's cursor) is stored a second time: receivers
//! de-duplicate beyond the window by `(origin, seq)`, which every event
//! carries and the message id repeats.
//!
//! # Outcomes
//!
//! | What happened | Result |
//! |---|---|
//! | every message acknowledged, some as duplicates | `Ok(Sent::all())` |
//! | a record larger than the server's `max_payload`, or than the stream's maximum message size | listed in [`Sent::rejected`] |
//! | connection refused, reset or closed, a timeout, missing acknowledgements, garbage from the server | [`SendError::Retry`], reconnect at the next send |
//! | JetStream answered 5xx, 408 or 429 | [`SendError::Retry`] |
//! | no stream captures the subject (no responders, status 503; also while a server starts) | [`SendError::Retry`] |
//! | `-ERR 'Authorization Violation'` or a permissions violation | [`SendError::Park`] |
//! | JetStream answered another 4xx | [`SendError::Park`] |
//! | JetStream is not enabled for the account (also while a server starts) | [`SendError::Retry`] |
//! | the server needs TLS, or its certificate does not verify | [`SendError::Park`] |
//!
//! With [`StreamSpec::create`], every new connection first makes sure the
//! stream exists, creating it when JetStream says it is missing (file
//! storage, capturing the configured subject); [`create_stream`] does the
//! same for tools and tests.
//!
//! ```no_run
//! use vigil_ship::transport::Transport;
//! use vigil_ship::transport::nats::{NatsConfig, NatsTransport, StreamSpec};
//!
//! let config = NatsConfig {
//!     stream: Some(StreamSpec { name: "AUDIT".into(), create: true }),
//!     ..NatsConfig::new("127.0.0.1:4222", "vigil.audit")
//! };
//! let mut nats = NatsTransport::new(config);
//! # let batch: [vigil_ship::transport::Record<'static>; 0] = [];
//! let sent = nats.send(&batch)?;
//! assert!(sent.rejected.is_empty());
//! # Ok::<(), vigil_ship::transport::SendError>(())
//! ```

use std::fmt;
use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::{ClientConfig, ClientConnection, RootCertStore, StreamOwned};
use serde_json::Value;
use zeroize::Zeroizing;

use super::{Record, SendError, Sent, Transport};

/// How long connecting and waiting for acknowledgements may take by
/// default.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// The duplicate window of a stream this transport creates.
pub const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// The longest control line (`INFO`, `MSG`, `-ERR`…) accepted from a
/// server.
const MAX_CONTROL_LINE: usize = 64 * 1024;

/// The `max_payload` assumed when the server's `INFO` does not give one.
const DEFAULT_MAX_PAYLOAD: usize = 1024 * 1024;

/// The subscription id of the reply inbox.
const INBOX_SID: &str = "1";

/// JetStream's error code for "stream not found".
const JS_STREAM_NOT_FOUND: u64 = 10059;
/// JetStream's error code for "stream name already in use with a different
/// configuration".
const JS_STREAM_NAME_IN_USE: u64 = 10058;
/// JetStream's error code for "message size exceeds maximum allowed".
const JS_MESSAGE_TOO_BIG: u64 = 10054;
/// JetStream's error code for "JetStream not enabled".
const JS_NOT_ENABLED: u64 = 10076;
/// JetStream's error code for "JetStream not enabled for account".
const JS_NOT_ENABLED_FOR_ACCOUNT: u64 = 10039;

/// Where and how to publish.
///
/// Build it with [`NatsConfig::new`] and struct update syntax:
///
/// ```
/// use std::time::Duration;
/// use vigil_ship::transport::nats::NatsConfig;
///
/// let config = NatsConfig {
///     token: Some("s3cret".into()),
///     timeout: Duration::from_secs(10),
///     ..NatsConfig::new("nats.example.net:4222", "vigil.audit")
/// };
/// assert!(!format!("{config:?}").contains("s3cret"));
/// ```
#[derive(Clone)]
pub struct NatsConfig {
    /// The server, as `host:port`.
    pub address: String,
    /// The subject every record is published to; a stream must capture it.
    /// No wildcards.
    pub subject: String,
    /// The user name to log in with, together with `password`.
    pub user: Option<String>,
    /// The password of `user`.
    pub password: Option<String>,
    /// A token to log in with (`auth_token`), instead of a user.
    pub token: Option<String>,
    /// How long connecting, and each wait for the server (the next
    /// acknowledgement of a batch, a reply), may take.
    pub timeout: Duration,
    /// The stream expected to capture `subject`, and whether to create it.
    pub stream: Option<StreamSpec>,
    /// TLS towards the server; `None` for plain TCP.
    pub tls: Option<NatsTls>,
}

impl NatsConfig {
    /// Publishes to `subject` on `address` (`host:port`), without
    /// credentials or TLS, with the [`DEFAULT_TIMEOUT`], expecting some
    /// existing stream to capture the subject.
    pub fn new(address: impl Into<String>, subject: impl Into<String>) -> NatsConfig {
        NatsConfig {
            address: address.into(),
            subject: subject.into(),
            user: None,
            password: None,
            token: None,
            timeout: DEFAULT_TIMEOUT,
            stream: None,
            tls: None,
        }
    }

    /// Checks the configuration without connecting: an address with a
    /// port, a subject without wildcards, a valid stream name, credentials
    /// that go together, a timeout above zero.
    pub fn validate(&self) -> Result<(), String> {
        match self.address.rsplit_once(':') {
            Some((host, port)) if !host.is_empty() && port.parse::<u16>().is_ok() => {}
            _ => {
                return Err(format!(
                    "NATS address {:?} is not host:port (e.g. 127.0.0.1:4222)",
                    self.address
                ));
            }
        }
        if !is_publish_subject(&self.subject) {
            return Err(format!(
                "NATS subject {:?} is not a subject to publish to: give dot-separated \
                 tokens without spaces or wildcards, e.g. vigil.audit",
                self.subject
            ));
        }
        if let Some(stream) = &self.stream
            && !is_stream_name(&stream.name)
        {
            return Err(format!(
                "JetStream stream name {:?} is not valid: give a name without spaces, \
                 '.', '*', '>', '/' or '\\'",
                stream.name
            ));
        }
        match (&self.user, &self.password, &self.token) {
            (Some(_), None, _) => return Err("NATS user is set without a password".into()),
            (None, Some(_), _) => return Err("NATS password is set without a user".into()),
            (Some(_), Some(_), Some(_)) => {
                return Err("set either a NATS user and password or a token, not both".into());
            }
            _ => {}
        }
        if self.timeout.is_zero() {
            return Err("NATS timeout must be above zero".into());
        }
        Ok(())
    }
}

impl fmt::Debug for NatsConfig {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let hidden = |set: bool| if set { Some("<redacted>") } else { None };
        f.debug_struct("NatsConfig")
            .field("address", &self.address)
            .field("subject", &self.subject)
            .field("user", &hidden(self.user.is_some()))
            .field("password", &hidden(self.password.is_some()))
            .field("token", &hidden(self.token.is_some()))
            .field("timeout", &self.timeout)
            .field("stream", &self.stream)
            .field("tls", &self.tls)
            .finish()
    }
}

/// The JetStream stream that captures the subject.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StreamSpec {
    /// The stream's name.
    pub name: String,
    /// Whether to create the stream when it is missing: file storage,
    /// capturing the configured subject, with a [`DUPLICATE_WINDOW`].
    pub create: bool,
}

/// TLS towards the NATS server.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NatsTls {
    /// The CA certificates (PEM) the server's certificate must chain to.
    pub ca_file: PathBuf,
    /// The name the certificate must carry; by default the host of the
    /// address.
    pub server_name: Option<String>,
}

/// Delivers batches to NATS JetStream; see the [module docs](self).
#[derive(Debug)]
pub struct NatsTransport {
    config: NatsConfig,
    client: Option<NatsClient>,
}

impl NatsTransport {
    /// A transport for `config`; it connects at the first send.
    pub fn new(config: NatsConfig) -> NatsTransport {
        NatsTransport {
            config,
            client: None,
        }
    }

    /// A live connection: the current one if the server did not close it
    /// while idle, else a new one (with the stream made sure of).
    fn client(&mut self) -> Result<&mut NatsClient, SendError> {
        if let Some(client) = &mut self.client
            && !client.is_alive()
        {
            self.client = None;
        }
        let client = match self.client.take() {
            Some(client) => client,
            None => {
                let mut client = NatsClient::connect(&self.config)?;
                if let Some(stream) = &self.config.stream
                    && stream.create
                {
                    client.create_stream(&stream.name, &[self.config.subject.as_str()])?;
                }
                client
            }
        };
        Ok(self.client.insert(client))
    }
}

impl Transport for NatsTransport {
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        self.config.validate().map_err(SendError::Park)?;
        let subject = self.config.subject.clone();
        let result = self
            .client()
            .map_err(Failure::Send)
            .and_then(|client| client.publish_batch(&subject, batch));
        match result {
            Ok(sent) => Ok(sent),
            Err(Failure::NoResponders) => {
                self.client = None;
                let address = &self.config.address;
                // A restarting server answers so until JetStream has
                // loaded its streams: worth retrying, with the reason.
                Err(SendError::Retry(match &self.config.stream {
                    Some(StreamSpec { name, create: true }) => format!(
                        "JetStream stream {name} on {address} does not capture subject \
                         {subject}; add the subject to the stream"
                    ),
                    _ => format!(
                        "no JetStream stream captures subject {subject} on {address}; \
                         create one or set create = true"
                    ),
                }))
            }
            Err(Failure::Send(e)) => {
                self.client = None;
                Err(e)
            }
        }
    }

    fn reopen(&mut self) {
        if let Some(client) = self.client.take() {
            client.close();
        }
    }

    fn close(&mut self) {
        if let Some(client) = self.client.take() {
            client.close();
        }
    }
}

/// Makes sure the JetStream stream `name` exists on the server of
/// `config`, creating it when missing with file storage, `config.subject`
/// as its only subject and a [`DUPLICATE_WINDOW`]. True when it was
/// created.
pub fn create_stream(config: &NatsConfig, name: &str) -> Result<bool, SendError> {
    config.validate().map_err(SendError::Park)?;
    NatsClient::connect(config)?.create_stream(name, &[config.subject.as_str()])
}

/// A connection to a NATS server, with a reply inbox for requests and
/// JetStream acknowledgements. Every wait is bounded by the configured
/// timeout.
pub struct NatsClient {
    io: Io,
    address: String,
    timeout: Duration,
    /// Bytes read and not yet parsed start at `rpos`.
    rbuf: Vec<u8>,
    rpos: usize,
    max_payload: usize,
    /// `_INBOX.<random hex>`; replies go to `<inbox>.<n>`.
    inbox: String,
    next_reply: u64,
}

impl fmt::Debug for NatsClient {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("NatsClient")
            .field("address", &self.address)
            .field("tls", &matches!(self.io, Io::Tls(_)))
            .field("max_payload", &self.max_payload)
            .field("inbox", &self.inbox)
            .finish_non_exhaustive()
    }
}

impl NatsClient {
    /// Connects to the server of `config`, logs in and subscribes to a
    /// fresh reply inbox. Unreachable servers and timeouts are
    /// [`SendError::Retry`]; refused credentials, a server that needs TLS
    /// and a certificate that does not verify are [`SendError::Park`].
    pub fn connect(config: &NatsConfig) -> Result<NatsClient, SendError> {
        let address = config.address.clone();
        let timeout = config.timeout;
        if timeout.is_zero() {
            return Err(SendError::Park("NATS timeout must be above zero".into()));
        }
        let mut tcp = dial(&address, timeout)?;
        let retry =
            |what: &str, e: io::Error| SendError::Retry(format!("NATS at {address}: {what}: {e}"));
        tcp.set_nodelay(true)
            .map_err(|e| retry("set TCP_NODELAY", e))?;
        tcp.set_read_timeout(Some(timeout))
            .map_err(|e| retry("set a read timeout", e))?;
        tcp.set_write_timeout(Some(timeout))
            .map_err(|e| retry("set a write timeout", e))?;
        let (info, rest) = greeting(&mut tcp, &address, Instant::now() + timeout)?;
        let info = ServerInfo::parse(&info);
        if !info.headers {
            return Err(SendError::Park(format!(
                "NATS at {address} does not support message headers; JetStream \
                 de-duplication needs nats-server 2.2 or later"
            )));
        }
        let io = match (&config.tls, info.tls_required, info.tls_available) {
            (None, true, _) => {
                return Err(SendError::Park(format!(
                    "NATS at {address} requires TLS; configure tls with the CA of its \
                     certificate"
                )));
            }
            (Some(_), false, false) => {
                return Err(SendError::Park(format!(
                    "NATS at {address} does not offer TLS; remove tls or enable TLS on \
                     the server"
                )));
            }
            // The server says nothing more before the handshake.
            (Some(tls), _, _) => Io::Tls(Box::new(handshake(tcp, tls, &address)?)),
            (None, false, _) => Io::Plain(tcp),
        };
        let mut client = NatsClient {
            io,
            address: address.clone(),
            timeout,
            rbuf: rest,
            rpos: 0,
            max_payload: info.max_payload.unwrap_or(DEFAULT_MAX_PAYLOAD),
            inbox: format!("_INBOX.{}", random_hex()?),
            next_reply: 0,
        };

        let mut hello = connect_line(config);
        hello.extend_from_slice(
            format!("SUB {}.* {INBOX_SID}\r\nPING\r\n", client.inbox).as_bytes(),
        );
        client
            .write_all(&hello)
            .map_err(|e| client.io_error(e, "sending CONNECT"))?;
        drop(hello);
        let deadline = Instant::now() + timeout;
        loop {
            match client.read_op(deadline) {
                Ok(Op::Pong) => return Ok(client),
                Ok(Op::Err(message)) => return Err(server_error(&address, &message)),
                Ok(_) => {}
                Err(e) => return Err(client.read_error(e, "logging in")),
            }
        }
    }

    /// The largest message (headers plus payload) the server accepts, from
    /// its `INFO`.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// Sends `payload` to `subject` with a reply subject in the inbox and
    /// returns the first reply's payload. No responder is a
    /// [`SendError::Park`]; no reply within the timeout a
    /// [`SendError::Retry`].
    pub fn request(&mut self, subject: &str, payload: &[u8]) -> Result<Vec<u8>, SendError> {
        match self.request_msg(subject, payload) {
            Ok(msg) => match msg.status() {
                None | Some(200) => Ok(msg.payload),
                Some(status) => Err(SendError::Retry(format!(
                    "NATS at {} answered a request on {subject} with status {status}",
                    self.address
                ))),
            },
            Err(Failure::NoResponders) => Err(SendError::Park(format!(
                "nothing answers requests on {subject} at {}",
                self.address
            ))),
            Err(Failure::Send(e)) => Err(e),
        }
    }

    /// Makes sure the JetStream stream `name` exists, creating it when
    /// missing with file storage, `subjects` and a [`DUPLICATE_WINDOW`].
    /// An existing stream is left as it is, whatever its subjects. True
    /// when it was created.
    pub fn create_stream(&mut self, name: &str, subjects: &[&str]) -> Result<bool, SendError> {
        if !is_stream_name(name) {
            return Err(SendError::Park(format!(
                "JetStream stream name {name:?} is not valid"
            )));
        }
        let info = self.js_request(&format!("$JS.API.STREAM.INFO.{name}"), b"")?;
        match js_error(&info) {
            None => return Ok(false),
            Some(e) if e.err_code == Some(JS_STREAM_NOT_FOUND) || e.code == Some(404) => {}
            Some(e) => return Err(e.into_send_error(&self.address, &format!("stream {name}"))),
        }
        let config = serde_json::json!({
            "name": name,
            "subjects": subjects,
            "retention": "limits",
            "storage": "file",
            "discard": "old",
            "num_replicas": 1,
            "duplicate_window": u64::try_from(DUPLICATE_WINDOW.as_nanos()).unwrap_or(u64::MAX),
        });
        let body = serde_json::to_vec(&config)
            .map_err(|e| SendError::Retry(format!("encode the stream configuration: {e}")))?;
        let created = self.js_request(&format!("$JS.API.STREAM.CREATE.{name}"), &body)?;
        match js_error(&created) {
            None => Ok(true),
            // Created by someone else since the lookup.
            Some(e) if e.err_code == Some(JS_STREAM_NAME_IN_USE) => Ok(false),
            Some(e) => Err(e.into_send_error(&self.address, &format!("creating stream {name}"))),
        }
    }

    /// Closes the connection.
    pub fn close(mut self) {
        if let Io::Tls(tls) = &mut self.io {
            tls.conn.send_close_notify();
            let _ = tls.flush();
        }
    }

    /// A JetStream API request; no responder means JetStream is off.
    fn js_request(&mut self, subject: &str, payload: &[u8]) -> Result<Value, SendError> {
        let msg = match self.request_msg(subject, payload) {
            Ok(msg) => msg,
            Err(Failure::NoResponders) => {
                return Err(SendError::Park(format!(
                    "JetStream does not answer on NATS at {}: is it enabled (nats-server -js) \
                     for this account?",
                    self.address
                )));
            }
            Err(Failure::Send(e)) => return Err(e),
        };
        serde_json::from_slice(&msg.payload).map_err(|_| {
            SendError::Retry(format!(
                "NATS at {} answered {subject} with something that is not JSON",
                self.address
            ))
        })
    }

    fn request_msg(&mut self, subject: &str, payload: &[u8]) -> Result<Msg, Failure> {
        if !is_publish_subject(subject) {
            return Err(Failure::Send(SendError::Park(format!(
                "{subject:?} is not a subject to publish to"
            ))));
        }
        let reply = format!("{}.{}", self.inbox, self.next_reply);
        self.next_reply += 1;
        let mut out = format!("PUB {subject} {reply} {}\r\n", payload.len()).into_bytes();
        out.extend_from_slice(payload);
        out.extend_from_slice(b"\r\n");
        self.write_all(&out)
            .map_err(|e| Failure::Send(self.io_error(e, "sending a request")))?;
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.read_op(deadline) {
                Ok(Op::Msg(msg)) if msg.subject == reply => {
                    return match msg.status() {
                        Some(503) => Err(Failure::NoResponders),
                        _ => Ok(msg),
                    };
                }
                Ok(Op::Err(message)) => {
                    return Err(Failure::Send(server_error(&self.address, &message)));
                }
                Ok(_) => {}
                Err(e) => {
                    let what = format!("waiting for the reply to {subject}");
                    return Err(Failure::Send(self.read_error(e, &what)));
                }
            }
        }
    }

    /// Publishes `batch` to `subject`, pipelined, and waits for every
    /// acknowledgement.
    fn publish_batch(&mut self, subject: &str, batch: &[Record<'_>]) -> Result<Sent, Failure> {
        let mut sent = Sent::default();
        // Reply `<inbox>.<first + i>` acknowledges batch[i].
        let first = self.next_reply;
        self.next_reply += batch.len() as u64;
        let mut waiting = vec![false; batch.len()];
        let mut out = Vec::with_capacity(
            batch
                .iter()
                .map(|r| r.formatted.len() + r.origin.len() + 160)
                .sum(),
        );
        for (i, record) in batch.iter().enumerate() {
            let headers = format!(
                "NATS/1.0\r\nNats-Msg-Id: {}\r\n\r\n",
                msg_id(record.origin, record.seq)
            );
            let total = headers.len() + record.formatted.len();
            if total > self.max_payload {
                sent.rejected.push((
                    i,
                    format!(
                        "{total} bytes with headers is more than the {} bytes NATS at {} \
                         accepts (max_payload)",
                        self.max_payload, self.address
                    ),
                ));
                continue;
            }
            out.extend_from_slice(
                format!(
                    "HPUB {subject} {}.{} {} {total}\r\n",
                    self.inbox,
                    first + i as u64,
                    headers.len()
                )
                .as_bytes(),
            );
            out.extend_from_slice(headers.as_bytes());
            out.extend_from_slice(record.formatted);
            out.extend_from_slice(b"\r\n");
            waiting[i] = true;
        }
        let published = waiting.iter().filter(|w| **w).count();
        let mut left = published;
        if left == 0 {
            return Ok(sent);
        }
        self.write_all(&out)
            .map_err(|e| Failure::Send(self.io_error(e, "publishing")))?;
        drop(out);

        // The server may stay silent for the timeout while acknowledgements
        // are due; every acknowledgement restarts the clock, so a large
        // batch stored steadily is not cut short.
        let mut deadline = Instant::now() + self.timeout;
        while left > 0 {
            let msg = match self.read_op(deadline) {
                Ok(Op::Msg(msg)) => msg,
                Ok(Op::Err(message)) => {
                    return Err(Failure::Send(server_error(&self.address, &message)));
                }
                Ok(_) => continue,
                Err(ReadError::TimedOut) => {
                    return Err(Failure::Send(SendError::Retry(format!(
                        "NATS at {} acknowledged {} of {published} messages, then nothing \
                         for {:?}",
                        self.address,
                        published - left,
                        self.timeout
                    ))));
                }
                Err(e) => return Err(Failure::Send(self.read_error(e, "waiting for acks"))),
            };
            let Some(i) = self.reply_index(&msg.subject, first, batch.len()) else {
                continue; // a late reply to something abandoned
            };
            if !waiting[i] {
                continue;
            }
            match msg.status() {
                None | Some(200) => {}
                Some(503) => return Err(Failure::NoResponders),
                Some(status) => {
                    return Err(Failure::Send(SendError::Retry(format!(
                        "NATS at {} answered a publish with status {status}",
                        self.address
                    ))));
                }
            }
            match Ack::parse(&msg.payload) {
                Ack::Stored => {}
                Ack::Refused(e) if e.err_code == Some(JS_MESSAGE_TOO_BIG) => {
                    sent.rejected.push((
                        i,
                        format!("JetStream refused the message: {}", e.description),
                    ));
                }
                Ack::Refused(e) => {
                    return Err(Failure::Send(e.into_send_error(
                        &self.address,
                        &format!("a message on {subject}"),
                    )));
                }
                Ack::Unknown => {
                    return Err(Failure::Send(SendError::Retry(format!(
                        "NATS at {} answered a publish with something that is not a \
                         JetStream acknowledgement",
                        self.address
                    ))));
                }
            }
            waiting[i] = false;
            left -= 1;
            deadline = Instant::now() + self.timeout;
        }
        sent.rejected.sort_by_key(|(i, _)| *i);
        Ok(sent)
    }

    /// The batch index a reply subject `<inbox>.<first + i>` stands for.
    fn reply_index(&self, subject: &str, first: u64, len: usize) -> Option<usize> {
        let n: u64 = subject
            .strip_prefix(self.inbox.as_str())?
            .strip_prefix('.')?
            .parse()
            .ok()?;
        let i = usize::try_from(n.checked_sub(first)?).ok()?;
        (i < len).then_some(i)
    }

    /// Whether the connection survived being idle: reads what the server
    /// sent meanwhile without waiting, answering `PING`s; false once the
    /// server closed it or complained.
    fn is_alive(&mut self) -> bool {
        if self.io.set_read_timeout(Duration::from_millis(1)).is_err() {
            return false;
        }
        let alive = loop {
            match self.parse_buffered() {
                Ok(Some(Op::Err(_))) | Err(_) => break false,
                Ok(Some(_)) => continue,
                Ok(None) => {}
            }
            match self.fill() {
                Ok(0) => break false,
                Ok(_) => {}
                Err(e) if is_timeout(&e) => break true,
                Err(_) => break false,
            }
        };
        alive && self.io.set_read_timeout(self.timeout).is_ok()
    }

    /// The next operation from the server, answering `PING`s and taking
    /// note of `INFO` updates on the way.
    fn read_op(&mut self, deadline: Instant) -> Result<Op, ReadError> {
        loop {
            if let Some(op) = self.parse_buffered()? {
                return Ok(op);
            }
            let now = Instant::now();
            if now >= deadline {
                return Err(ReadError::TimedOut);
            }
            self.io
                .set_read_timeout(deadline - now)
                .map_err(ReadError::Io)?;
            match self.fill() {
                Ok(0) => return Err(ReadError::Closed),
                Ok(_) => {}
                Err(e) if is_timeout(&e) => return Err(ReadError::TimedOut),
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(ReadError::Io(e)),
            }
        }
    }

    /// Parses one operation from what was read; answers `PING` and applies
    /// `INFO` itself (returning `INFO` too, for the greeting).
    fn parse_buffered(&mut self) -> Result<Option<Op>, ReadError> {
        let limit = self
            .max_payload
            .saturating_mul(2)
            .saturating_add(MAX_CONTROL_LINE);
        let Some((op, used)) = parse_op(&self.rbuf[self.rpos..], limit)? else {
            return Ok(None);
        };
        self.rpos += used;
        match &op {
            Op::Ping => {
                self.write_all(b"PONG\r\n").map_err(ReadError::Io)?;
                return self.parse_buffered();
            }
            Op::Info(json) => {
                if let Some(max) = ServerInfo::parse(json).max_payload {
                    self.max_payload = max;
                }
            }
            _ => {}
        }
        Ok(Some(op))
    }

    /// Reads more bytes into the buffer; the byte count, 0 at end of file.
    fn fill(&mut self) -> io::Result<usize> {
        if self.rpos == self.rbuf.len() {
            self.rbuf.clear();
            self.rpos = 0;
        } else if self.rpos > 64 * 1024 {
            self.rbuf.drain(..self.rpos);
            self.rpos = 0;
        }
        let mut chunk = [0u8; 16 * 1024];
        let n = self.io.read(&mut chunk)?;
        self.rbuf.extend_from_slice(&chunk[..n]);
        Ok(n)
    }

    fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.io.send(bytes)
    }

    fn io_error(&mut self, e: io::Error, what: &str) -> SendError {
        // The server may have said why it closed the connection.
        if let Some(message) = self.last_words() {
            return server_error(&self.address, &message);
        }
        SendError::Retry(format!("NATS at {}: {what}: {e}", self.address))
    }

    fn read_error(&mut self, e: ReadError, what: &str) -> SendError {
        let address = &self.address;
        SendError::Retry(match e {
            ReadError::TimedOut => {
                format!(
                    "NATS at {address}: no answer within {:?} {what}",
                    self.timeout
                )
            }
            ReadError::Closed => format!("NATS at {address} closed the connection {what}"),
            ReadError::Io(e) => format!("NATS at {address}: {what}: {e}"),
            ReadError::Protocol(why) => {
                format!("NATS at {address} broke the protocol {what}: {why}")
            }
        })
    }

    /// An `-ERR` the server sent before closing, if one can be read at once.
    fn last_words(&mut self) -> Option<String> {
        self.io.set_read_timeout(Duration::from_millis(100)).ok()?;
        let deadline = Instant::now() + Duration::from_millis(200);
        loop {
            match self.read_op(deadline) {
                Ok(Op::Err(message)) => return Some(message),
                Ok(_) => {}
                Err(_) => return None,
            }
        }
    }
}

/// The byte stream to the server.
enum Io {
    Plain(TcpStream),
    Tls(Box<StreamOwned<ClientConnection, TcpStream>>),
}

impl Io {
    fn set_read_timeout(&self, timeout: Duration) -> io::Result<()> {
        match self {
            Io::Plain(tcp) => tcp.set_read_timeout(Some(timeout)),
            Io::Tls(tls) => tls.sock.set_read_timeout(Some(timeout)),
        }
    }
}

impl Read for Io {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Io::Plain(tcp) => tcp.read(buf),
            Io::Tls(tls) => tls.read(buf),
        }
    }
}

impl Io {
    /// Writes all of `bytes` and flushes them to the socket.
    fn send(&mut self, bytes: &[u8]) -> io::Result<()> {
        match self {
            Io::Plain(tcp) => tcp.write_all(bytes),
            Io::Tls(tls) => {
                tls.write_all(bytes)?;
                tls.flush()
            }
        }
    }
}

/// Reads the server's `INFO` greeting; its JSON and any bytes after it.
fn greeting(
    tcp: &mut TcpStream,
    address: &str,
    deadline: Instant,
) -> Result<(Vec<u8>, Vec<u8>), SendError> {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    loop {
        match parse_op(&buf, MAX_CONTROL_LINE) {
            Ok(Some((Op::Info(json), used))) => {
                return Ok((json, buf.get(used..).unwrap_or_default().to_vec()));
            }
            Ok(None) => {}
            Ok(Some(_)) | Err(_) => {
                return Err(SendError::Retry(format!(
                    "{address} did not greet like a NATS server (no INFO)"
                )));
            }
        }
        let now = Instant::now();
        let read = if now >= deadline {
            Err(io::ErrorKind::TimedOut.into())
        } else {
            tcp.set_read_timeout(Some(deadline - now))
                .and_then(|()| tcp.read(&mut chunk))
        };
        match read {
            Ok(0) => {
                return Err(SendError::Retry(format!(
                    "NATS at {address} closed the connection before greeting"
                )));
            }
            Ok(n) => buf.extend_from_slice(chunk.get(..n).unwrap_or_default()),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                return Err(SendError::Retry(format!(
                    "NATS at {address}: waiting for the server's INFO: {e}"
                )));
            }
        }
    }
}

/// The TLS handshake, after the plain-text `INFO`.
fn handshake(
    tcp: TcpStream,
    tls: &NatsTls,
    address: &str,
) -> Result<StreamOwned<ClientConnection, TcpStream>, SendError> {
    let config = tls_config(tls).map_err(SendError::Park)?;
    let host = match &tls.server_name {
        Some(name) => name.clone(),
        None => host_of(address).to_owned(),
    };
    let name = ServerName::try_from(host.clone()).map_err(|e| {
        SendError::Park(format!(
            "TLS server name {host:?} for NATS is not valid: {e}"
        ))
    })?;
    let conn = ClientConnection::new(config, name)
        .map_err(|e| SendError::Park(format!("TLS towards NATS at {address}: {e}")))?;
    let mut stream = StreamOwned::new(conn, tcp);
    while stream.conn.is_handshaking() {
        if let Err(e) = stream.conn.complete_io(&mut stream.sock) {
            // rustls reports what it refused (a certificate that does not
            // verify, no common protocol) as invalid data.
            return Err(if e.kind() == io::ErrorKind::InvalidData {
                SendError::Park(format!("TLS handshake with NATS at {address} failed: {e}"))
            } else {
                SendError::Retry(format!("TLS handshake with NATS at {address}: {e}"))
            });
        }
    }
    Ok(stream)
}

/// Why a publish or request failed.
enum Failure {
    /// No subscriber, i.e. no stream, for the subject (status 503).
    NoResponders,
    /// Anything else, already classified.
    Send(SendError),
}

/// Why reading from the server failed.
#[derive(Debug)]
enum ReadError {
    /// The deadline passed.
    TimedOut,
    /// The server closed the connection.
    Closed,
    /// The socket failed.
    Io(io::Error),
    /// The server sent something that is not the NATS protocol.
    Protocol(String),
}

/// One operation from the server.
#[derive(Debug, PartialEq, Eq)]
enum Op {
    /// `INFO {json}`.
    Info(Vec<u8>),
    /// `MSG` or `HMSG`.
    Msg(Msg),
    /// `PING`.
    Ping,
    /// `PONG`.
    Pong,
    /// `+OK`.
    Ok,
    /// `-ERR 'message'`, without the quotes.
    Err(String),
}

/// A message delivered to a subscription.
#[derive(Debug, PartialEq, Eq)]
struct Msg {
    subject: String,
    reply: Option<String>,
    /// The header block of an `HMSG`, from `NATS/1.0` to the empty line.
    headers: Option<Vec<u8>>,
    payload: Vec<u8>,
}

impl Msg {
    /// The status code of the header block's first line (`NATS/1.0 503`).
    fn status(&self) -> Option<u16> {
        let headers = self.headers.as_deref()?;
        let first = headers.split(|b| *b == b'\n').next()?;
        let rest = first.strip_prefix(b"NATS/1.0")?;
        let code = rest.trim_ascii().get(..3)?;
        if !code.iter().all(u8::is_ascii_digit) {
            return None;
        }
        std::str::from_utf8(code).ok()?.parse().ok()
    }
}

/// Runs the parser of what a NATS server sends over arbitrary bytes, one
/// operation after another, as the fuzz target does: it must never panic,
/// and every operation must take at least one byte and no more than there is.
#[doc(hidden)]
pub fn fuzz_server_bytes(data: &[u8]) {
    let mut at = 0;
    while at < data.len() {
        match parse_op(&data[at..], 1 << 20) {
            Ok(Some((_, used))) => {
                assert!(
                    used > 0 && used <= data.len() - at,
                    "parse_op took {used} bytes"
                );
                at += used;
            }
            Ok(None) | Err(_) => break,
        }
    }
}

/// Parses one operation at the start of `buf`: `Ok(None)` when more bytes
/// are needed, else the operation and the bytes it took. Message payloads
/// larger than `max_payload` are refused. Never panics, whatever `buf`
/// holds.
fn parse_op(buf: &[u8], max_payload: usize) -> Result<Option<(Op, usize)>, ReadError> {
    let protocol = |why: String| ReadError::Protocol(why);
    let Some(eol) = buf
        .iter()
        .take(MAX_CONTROL_LINE + 2)
        .position(|b| *b == b'\n')
    else {
        return if buf.len() > MAX_CONTROL_LINE {
            Err(protocol(format!(
                "a line longer than {MAX_CONTROL_LINE} bytes"
            )))
        } else {
            Ok(None)
        };
    };
    let line = buf.get(..eol).unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    let body_start = eol + 1;
    let (name, rest) = match line.iter().position(|b| *b == b' ' || *b == b'\t') {
        Some(i) => (
            line.get(..i).unwrap_or_default(),
            line.get(i + 1..).unwrap_or_default(),
        ),
        None => (line, &[][..]),
    };
    let name = name.to_ascii_uppercase();
    let op = match name.as_slice() {
        b"PING" => Op::Ping,
        b"PONG" => Op::Pong,
        b"+OK" => Op::Ok,
        b"-ERR" => {
            let text = String::from_utf8_lossy(rest.trim_ascii());
            let text = text.trim_matches('\'');
            Op::Err(text.to_owned())
        }
        b"INFO" => Op::Info(rest.trim_ascii().to_vec()),
        b"MSG" | b"HMSG" => {
            let with_headers = name == b"HMSG";
            let args = std::str::from_utf8(rest)
                .map_err(|_| protocol("a MSG line that is not UTF-8".into()))?;
            let args: Vec<&str> = args.split_ascii_whitespace().collect();
            let n_sizes = if with_headers { 2 } else { 1 };
            let (subject, reply, sizes) = match args.as_slice() {
                [subject, _sid, rest @ ..] if rest.len() == n_sizes => (*subject, None, rest),
                [subject, _sid, reply, rest @ ..] if rest.len() == n_sizes => {
                    (*subject, Some(*reply), rest)
                }
                _ => {
                    return Err(protocol(format!(
                        "a malformed {} line",
                        name.escape_ascii()
                    )));
                }
            };
            let size = |s: &str| {
                s.parse::<usize>()
                    .ok()
                    .filter(|n| *n <= max_payload)
                    .ok_or_else(|| protocol(format!("a message size {s:?} out of range")))
            };
            let total = size(sizes.last().copied().unwrap_or_default())?;
            let header_len = match sizes {
                [h, _] => size(h)?,
                _ => 0,
            };
            if header_len > total {
                return Err(protocol("headers larger than their message".into()));
            }
            let end = body_start + total;
            let Some(after) = buf.get(end..end + 2) else {
                return Ok(None);
            };
            if after != b"\r\n" {
                return Err(protocol("a message not followed by CRLF".into()));
            }
            let body = buf.get(body_start..end).unwrap_or_default();
            let (headers, payload) = body.split_at(header_len);
            let msg = Msg {
                subject: subject.to_owned(),
                reply: reply.map(str::to_owned),
                headers: with_headers.then(|| headers.to_vec()),
                payload: payload.to_vec(),
            };
            return Ok(Some((Op::Msg(msg), end + 2)));
        }
        _ => {
            let shown: String = String::from_utf8_lossy(&name).chars().take(20).collect();
            return Err(protocol(format!("an unknown operation {shown:?}")));
        }
    };
    Ok(Some((op, body_start)))
}

/// What the server's `INFO` says that matters here.
#[derive(Debug, Default, PartialEq, Eq)]
struct ServerInfo {
    max_payload: Option<usize>,
    headers: bool,
    tls_required: bool,
    tls_available: bool,
}

impl ServerInfo {
    fn parse(json: &[u8]) -> ServerInfo {
        let Ok(v) = serde_json::from_slice::<Value>(json) else {
            return ServerInfo::default();
        };
        let flag = |key: &str| v.get(key).and_then(Value::as_bool).unwrap_or(false);
        ServerInfo {
            max_payload: v
                .get("max_payload")
                .and_then(Value::as_u64)
                .and_then(|n| usize::try_from(n).ok())
                .filter(|n| *n > 0),
            headers: flag("headers"),
            tls_required: flag("tls_required"),
            tls_available: flag("tls_available"),
        }
    }
}

/// A JetStream API error: `{"error":{"code":…,"err_code":…,"description":…}}`.
#[derive(Debug, PartialEq, Eq)]
struct JsError {
    code: Option<u64>,
    err_code: Option<u64>,
    description: String,
}

impl JsError {
    /// Park for 4xx codes but 408 and 429, and for JetStream being off for
    /// the account: they will not change until someone changes the server,
    /// the stream or the permissions. Retry for the rest (5xx).
    fn into_send_error(self, address: &str, about: &str) -> SendError {
        let code = self.code.unwrap_or(500);
        let why = format!(
            "JetStream on {address} refused {about}: {} (code {code}{})",
            self.description,
            self.err_code
                .map(|c| format!(", err_code {c}"))
                .unwrap_or_default()
        );
        let js_off = matches!(
            self.err_code,
            Some(JS_NOT_ENABLED | JS_NOT_ENABLED_FOR_ACCOUNT)
        );
        // JetStream reports itself off for a moment while a server starts.
        if !js_off && (400..500).contains(&code) && code != 408 && code != 429 {
            SendError::Park(why)
        } else {
            SendError::Retry(why)
        }
    }
}

fn js_error(v: &Value) -> Option<JsError> {
    let e = v.get("error")?;
    Some(JsError {
        code: e.get("code").and_then(Value::as_u64),
        err_code: e.get("err_code").and_then(Value::as_u64),
        description: e
            .get("description")
            .and_then(Value::as_str)
            .unwrap_or("no description")
            .chars()
            .take(200)
            .collect(),
    })
}

/// JetStream's answer to a publish.
#[derive(Debug, PartialEq, Eq)]
enum Ack {
    /// Stored now, or earlier (`"duplicate":true`).
    Stored,
    /// An API error.
    Refused(JsError),
    /// Neither.
    Unknown,
}

impl Ack {
    fn parse(payload: &[u8]) -> Ack {
        let Ok(v) = serde_json::from_slice::<Value>(payload) else {
            return Ack::Unknown;
        };
        if let Some(e) = js_error(&v) {
            return Ack::Refused(e);
        }
        if v.get("stream").is_some_and(Value::is_string) && v.get("seq").is_some_and(Value::is_u64)
        {
            Ack::Stored
        } else {
            Ack::Unknown
        }
    }
}

/// Classifies an `-ERR`: credentials and permissions park, the rest
/// retries.
fn server_error(address: &str, message: &str) -> SendError {
    let shown: String = message.chars().take(200).collect();
    let lower = shown.to_ascii_lowercase();
    if lower.contains("authorization violation") || lower.contains("authentication") {
        SendError::Park(format!(
            "NATS at {address} refused the credentials ({shown}); check user and password \
             or token"
        ))
    } else if lower.contains("permissions violation") {
        SendError::Park(format!("NATS at {address} does not permit it: {shown}"))
    } else if lower.contains("secure connection") || lower.contains("tls required") {
        SendError::Park(format!("NATS at {address} requires TLS: {shown}"))
    } else {
        SendError::Retry(format!("NATS at {address} reported an error: {shown}"))
    }
}

/// Connects to the first address `address` resolves to that answers.
fn dial(address: &str, timeout: Duration) -> Result<TcpStream, SendError> {
    let addrs: Vec<SocketAddr> = address
        .to_socket_addrs()
        .map_err(|e| SendError::Retry(format!("cannot resolve NATS address {address}: {e}")))?
        .collect();
    let mut last = None;
    for addr in &addrs {
        match TcpStream::connect_timeout(addr, timeout) {
            Ok(tcp) => return Ok(tcp),
            Err(e) => last = Some(e),
        }
    }
    Err(SendError::Retry(match last {
        Some(e) => format!("cannot connect to NATS at {address}: {e}"),
        None => format!("NATS address {address} resolves to nothing"),
    }))
}

/// The `CONNECT` line, kept in memory that is wiped when dropped because
/// it may hold a password or token.
fn connect_line(config: &NatsConfig) -> Zeroizing<Vec<u8>> {
    let secrets: usize = [&config.user, &config.password, &config.token]
        .iter()
        .filter_map(|s| s.as_ref().map(String::len))
        .sum();
    // Large enough that escaping never reallocates (and leaves copies).
    let mut line = Zeroizing::new(Vec::with_capacity(512 + 6 * secrets));
    line.extend_from_slice(
        format!(
            "CONNECT {{\"verbose\":false,\"pedantic\":false,\"tls_required\":{},\
             \"headers\":true,\"no_responders\":true,\"protocol\":1,\"echo\":true,\
             \"lang\":\"rust\",\"version\":\"{}\",\"name\":\"vigil\"",
            config.tls.is_some(),
            env!("CARGO_PKG_VERSION")
        )
        .as_bytes(),
    );
    let mut field = |key: &str, value: &Option<String>| {
        if let Some(value) = value {
            line.extend_from_slice(format!(",\"{key}\":").as_bytes());
            // Writing to a Vec cannot fail.
            let _ = serde_json::to_writer(&mut *line, value);
        }
    };
    field("user", &config.user);
    field("pass", &config.password);
    field("auth_token", &config.token);
    line.extend_from_slice(b"}\r\n");
    line
}

fn tls_config(tls: &NatsTls) -> Result<Arc<ClientConfig>, String> {
    let path = tls.ca_file.display();
    let certs = CertificateDer::pem_file_iter(&tls.ca_file)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| format!("NATS tls.ca_file {path}: {e}; give a readable PEM file"))?;
    if certs.is_empty() {
        return Err(format!(
            "NATS tls.ca_file {path} holds no PEM certificate (-----BEGIN CERTIFICATE-----)"
        ));
    }
    let mut roots = RootCertStore::empty();
    for cert in certs {
        roots
            .add(cert)
            .map_err(|e| format!("NATS tls.ca_file {path}: {e}; give CA certificates"))?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let config = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("NATS TLS: {e}"))?
        .with_root_certificates(roots)
        .with_no_client_auth();
    Ok(Arc::new(config))
}

/// The host part of `host:port` (`[::1]:4222` gives `::1`).
fn host_of(address: &str) -> &str {
    let host = address.rsplit_once(':').map_or(address, |(host, _)| host);
    host.strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host)
}

/// `Nats-Msg-Id`: `<origin>:<seq>`, with control characters and `%` in
/// the origin percent-encoded so the header stays one line.
fn msg_id(origin: &str, seq: u64) -> String {
    let mut id = String::with_capacity(origin.len() + 21);
    for c in origin.chars() {
        if c.is_ascii_control() || c == '%' {
            id.push_str(&format!("%{:02X}", c as u32));
        } else {
            id.push(c);
        }
    }
    id.push(':');
    id.push_str(&seq.to_string());
    id
}

/// Dot-separated tokens of visible characters, without wildcards.
fn is_publish_subject(subject: &str) -> bool {
    !subject.is_empty()
        && subject.split('.').all(|token| {
            !token.is_empty()
                && token != "*"
                && token != ">"
                && token.chars().all(|c| !c.is_whitespace() && !c.is_control())
        })
}

/// A JetStream stream name: visible characters but `.`, `*`, `>`, `/`
/// and `\`.
fn is_stream_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 255
        && name.chars().all(|c| {
            !c.is_whitespace() && !c.is_control() && !matches!(c, '.' | '*' | '>' | '/' | '\\')
        })
}

/// 16 random bytes in hex, for the inbox.
fn random_hex() -> Result<String, SendError> {
    let mut bytes = [0u8; 16];
    getrandom::fill(&mut bytes)
        .map_err(|e| SendError::Retry(format!("no randomness for a NATS inbox: {e}")))?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    const BIG: usize = 1 << 20;

    fn parse(buf: &[u8]) -> Option<(Op, usize)> {
        parse_op(buf, BIG).unwrap()
    }

    #[test]
    fn parses_control_lines() {
        assert_eq!(parse(b"PING\r\n"), Some((Op::Ping, 6)));
        assert_eq!(parse(b"pong\r\nPING"), Some((Op::Pong, 6)));
        assert_eq!(parse(b"+OK\r\n"), Some((Op::Ok, 5)));
        assert_eq!(
            parse(b"-ERR 'Authorization Violation'\r\n"),
            Some((Op::Err("Authorization Violation".into()), 32))
        );
        assert_eq!(
            parse(b"INFO {\"max_payload\":8} \r\n"),
            Some((Op::Info(b"{\"max_payload\":8}".to_vec()), 25))
        );
        assert_eq!(parse(b"PIN"), None);
        assert_eq!(parse(b""), None);
    }

    #[test]
    fn parses_messages_with_extra_spaces() {
        // nats-server 2.9 writes JetStream acks with two spaces.
        let ack = b"MSG _INBOX.ab.7 1  26\r\n{\"stream\":\"LOGS\", \"seq\":1}\r\nPING\r\n";
        let (op, used) = parse(ack).unwrap();
        assert_eq!(used, ack.len() - 6);
        let Op::Msg(msg) = op else { panic!("{op:?}") };
        assert_eq!(msg.subject, "_INBOX.ab.7");
        assert_eq!(msg.reply, None);
        assert_eq!(Ack::parse(&msg.payload), Ack::Stored);
        assert_eq!(msg.status(), None);
    }

    #[test]
    fn parses_headers_and_status() {
        let nr = b"HMSG _INBOX.x.1 1 16 16\r\nNATS/1.0 503\r\n\r\n\r\n";
        let (Op::Msg(msg), used) = parse(nr).unwrap() else {
            panic!()
        };
        assert_eq!(used, nr.len());
        assert_eq!(msg.status(), Some(503));
        assert!(msg.payload.is_empty());
        let m = b"HMSG a.b 9 r.1 12 14\r\nNATS/1.0\r\n\r\nhi\r\n";
        let (Op::Msg(msg), _) = parse(m).unwrap() else {
            panic!()
        };
        assert_eq!(msg.reply.as_deref(), Some("r.1"));
        assert_eq!(msg.payload, b"hi");
        assert_eq!(msg.status(), None);
    }

    #[test]
    fn waits_for_whole_messages() {
        let m = b"MSG a 1 5\r\nhello\r\n";
        for cut in 0..m.len() {
            assert_eq!(parse_op(&m[..cut], BIG).unwrap(), None, "cut at {cut}");
        }
        assert!(parse(m).is_some());
    }

    #[test]
    fn refuses_garbage() {
        for bad in [
            &b"HELLO\r\n"[..],
            b"MSG a 1 x\r\n",
            b"MSG a\r\n",
            b"MSG a 1 2\r\nhiXX",
            b"HMSG a 1 5 2\r\nhi\r\n",
            b"MSG a 1 18446744073709551616\r\n",
            b"MSG \xff 1 2\r\nhi\r\n",
        ] {
            assert!(parse_op(bad, BIG).is_err(), "{}", bad.escape_ascii());
        }
        assert!(parse_op(b"MSG a 1 100\r\n", 99).is_err());
        assert!(parse_op(&vec![b'x'; MAX_CONTROL_LINE + 1], BIG).is_err());
    }

    proptest! {
        #[test]
        fn never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..300)) {
            let _ = parse_op(&bytes, 64);
            let msg = Msg { subject: String::new(), reply: None, headers: Some(bytes.clone()), payload: bytes.clone() };
            let _ = msg.status();
            let _ = Ack::parse(&bytes);
            let _ = ServerInfo::parse(&bytes);
        }

        #[test]
        fn never_panics_on_protocol_like_input(
            parts in proptest::collection::vec(
                prop_oneof![
                    Just("MSG ".to_owned()), Just("HMSG ".to_owned()), Just("\r\n".to_owned()),
                    Just(" ".to_owned()), "[0-9]{1,3}", "[a-z.]{1,5}", Just("-ERR".to_owned()),
                ],
                0..20,
            )
        ) {
            let _ = parse_op(parts.concat().as_bytes(), 64);
        }
    }

    #[test]
    fn classifies_acks() {
        assert_eq!(
            Ack::parse(br#"{"stream":"S", "seq":3,"duplicate": true}"#),
            Ack::Stored
        );
        let Ack::Refused(e) = Ack::parse(
            br#"{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}"#,
        ) else {
            panic!()
        };
        assert!(matches!(e.into_send_error("a:1", "x"), SendError::Retry(_)));
        let Ack::Refused(e) = Ack::parse(
            br#"{"error":{"code":400,"err_code":10060,"description":"expected stream does not match"}}"#,
        ) else {
            panic!()
        };
        assert!(matches!(e.into_send_error("a:1", "x"), SendError::Park(_)));
        let off = js_error(&serde_json::json!({"error": {
            "code": 503, "err_code": 10039, "description": "JetStream not enabled for account"
        }}));
        assert!(matches!(
            off.unwrap().into_send_error("a:1", "x"),
            SendError::Retry(_)
        ));
        assert_eq!(Ack::parse(b"{}"), Ack::Unknown);
        assert_eq!(Ack::parse(b"\xff"), Ack::Unknown);
    }

    #[test]
    fn classifies_server_errors() {
        assert!(matches!(
            server_error("a:1", "Authorization Violation"),
            SendError::Park(_)
        ));
        assert!(matches!(
            server_error("a:1", "Permissions Violation for Publish to \"x\""),
            SendError::Park(_)
        ));
        assert!(matches!(
            server_error("a:1", "Stale Connection"),
            SendError::Retry(_)
        ));
    }

    #[test]
    fn reads_server_info() {
        let info = ServerInfo::parse(
            br#"{"server_id":"N","headers":true,"max_payload":1048576,"jetstream":true}"#,
        );
        assert_eq!(info.max_payload, Some(1 << 20));
        assert!(info.headers && !info.tls_required);
        assert_eq!(ServerInfo::parse(b"nope"), ServerInfo::default());
    }

    #[test]
    fn message_ids_stay_one_line() {
        assert_eq!(msg_id("db1", 42), "db1:42");
        assert_eq!(msg_id("a\r\nb%", 1), "a%0D%0Ab%25:1");
    }

    #[test]
    fn validates_config() {
        let ok = NatsConfig::new("127.0.0.1:4222", "vigil.audit");
        assert_eq!(ok.validate(), Ok(()));
        for bad in [
            NatsConfig::new("127.0.0.1", "a"),
            NatsConfig::new("127.0.0.1:4222", "a.*"),
            NatsConfig::new("127.0.0.1:4222", "a..b"),
            NatsConfig::new("127.0.0.1:4222", "a b"),
            NatsConfig {
                stream: Some(StreamSpec {
                    name: "a.b".into(),
                    create: true,
                }),
                ..ok.clone()
            },
            NatsConfig {
                password: Some("p".into()),
                ..ok.clone()
            },
            NatsConfig {
                timeout: Duration::ZERO,
                ..ok.clone()
            },
        ] {
            assert!(bad.validate().is_err(), "{bad:?}");
        }
    }

    #[test]
    fn debug_hides_credentials() {
        let config = NatsConfig {
            user: Some("vigil-user".into()),
            password: Some("pa55word".into()),
            token: Some("t0ken".into()),
            ..NatsConfig::new("127.0.0.1:4222", "a")
        };
        let shown = format!("{config:?}");
        for secret in ["vigil-user", "pa55word", "t0ken"] {
            assert!(!shown.contains(secret), "{shown}");
        }
        let line = connect_line(&config);
        let line = String::from_utf8_lossy(&line);
        assert!(line.contains(r#""user":"vigil-user","pass":"pa55word","auth_token":"t0ken"}"#));
        assert!(line.ends_with("}\r\n"));
    }

    #[test]
    fn finds_hosts() {
        assert_eq!(host_of("nats.example.net:4222"), "nats.example.net");
        assert_eq!(host_of("[::1]:4222"), "::1");
    }
}
