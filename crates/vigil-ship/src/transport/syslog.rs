//! Syslog over UDP (RFC 5426), TCP (RFC 6587) and TLS (RFC 5425): the
//! [`SyslogTransport`], configured by a [`SyslogConfig`].
//!
//! ```no_run
//! use std::time::Duration;
//! use vigil_ship::transport::syslog::{Protocol, SyslogConfig, SyslogTransport, TlsClient};
//!
//! let mut config = SyslogConfig::new(Protocol::Tls, "logs.example.net:6514");
//! let mut tls = TlsClient::new("/etc/vigil/syslog-ca.pem");
//! tls.client_cert = Some("/etc/vigil/syslog-client.pem".into());
//! tls.client_key = Some("/etc/vigil/syslog-client.key".into());
//! config.tls = Some(tls);
//! config.timeout = Duration::from_secs(5);
//! let transport = SyslogTransport::new(config)?;
//! # Ok::<(), vigil_ship::transport::syslog::SyslogConfigError>(())
//! ```
//!
//! # Framing
//!
//! Each record carries [`Record::formatted`], the event in the sink's
//! format (usually RFC 5424, but any format works), as one syslog message:
//!
//! - **UDP**: one datagram per record, exactly the record. A record longer
//!   than [`SyslogConfig::max_datagram`] cannot be sent this way; it is
//!   returned in [`Sent::rejected`] rather than cut.
//! - **TCP** and **TLS**: octet counting, `<length> <message>` (the length
//!   in ASCII decimal, one space, then exactly that many bytes), so a record
//!   may hold any byte, newlines included. TLS is 1.2 or 1.3; the server's
//!   certificate is verified against [`TlsClient::ca`] and
//!   [`TlsClient::server_name`], and a client certificate is presented when
//!   configured. A batch is written with one buffered write.
//!
//! An empty record is rejected: octet counting has no zero length, and an
//! empty datagram carries nothing.
//!
//! # Nothing acknowledges syslog: the resend window
//!
//! A syslog receiver never says what it accepted, so [`Transport::send`]
//! returns once a batch is written and the connection still looks alive,
//! and [`Transport::acknowledged`] is false. Written is not received: a
//! receiver that stops or crashes loses what sat unread in its socket
//! buffers and queues, and the sender only learns that the connection is
//! gone at its next write.
//!
//! So the transport keeps what it wrote on the current connection: every
//! batch written within [`SyslogConfig::resend_window`] before the latest
//! write, at most 64 MiB (the oldest batches are dropped first; the latest
//! batch is always kept). Before writing a batch on an existing connection
//! it reads from the socket without blocking: end of file, a reset or a TLS
//! `close_notify` means the receiver went away. It then connects again and
//! writes the kept batches before the new one, on the new connection, where
//! they count as written anew. The kept batches wait through failed
//! reconnects however long the receiver is away, so a receiver that stops
//! or crashes and comes back loses nothing written in the `resend_window`
//! before the latest write. The window lives in memory: a transport that
//! is dropped (vigil stops, the sink is rebuilt) forgets it. UDP keeps
//! nothing: a datagram has no connection to lose.
//!
//! The price is duplicates: a receiver that did read the kept batches
//! before it went away gets them again, once per reconnect. Every record
//! carries its `origin` and `seq` (in the RFC 5424 `vigil@32473` element
//! and in the JSON fields), which together identify it, so a consumer
//! removes duplicates by `(origin, seq)`.
//!
//! A receiver that closes every connection right after the handshake (an
//! rsyslog that does not accept the client certificate checks it after the
//! TLS handshake and disconnects) would make every write look successful.
//! When a connection is found closed before its second batch, the next new
//! connection is watched for up to half a second after its first write; if
//! the receiver closes it, the send fails with [`SendError::Retry`] instead.
//!
//! # Errors
//!
//! A refused, reset or timed-out connection, a failed write and a name that
//! does not resolve are [`SendError::Retry`], naming the address. A server
//! certificate that does not verify (unknown CA, wrong name, expired), a
//! client certificate the receiver refuses with a TLS alert, or no TLS
//! version in common is [`SendError::Park`]: it will not fix itself.
//! Connecting (to each address the name resolves to), the TLS handshake and
//! each write to the socket are bounded by [`SyslogConfig::timeout`]; the
//! name lookup uses the system resolver and its own timeouts.

use std::collections::VecDeque;
use std::fmt;
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream, ToSocketAddrs, UdpSocket};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::{AlertDescription, ClientConfig, ClientConnection, RootCertStore};

use super::{Record, SendError, Sent, Transport};

/// The most bytes of written batches kept for resending.
const RESEND_LIMIT: usize = 64 * 1024 * 1024;
/// How long a new connection is watched after its first write when the
/// previous one was closed before its second batch.
const SETTLE: Duration = Duration::from_millis(500);
/// The largest payload of a UDP datagram over IPv4.
const MAX_UDP_PAYLOAD: usize = 65_507;
/// Plaintext written to the TLS connection at a time (rustls buffers at
/// most 64 KiB of records before they are written to the socket).
const TLS_CHUNK: usize = 16 * 1024;

/// How syslog messages travel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// TCP with octet-counted framing (RFC 6587), port 514 or 601 by
    /// convention.
    Tcp,
    /// TLS with octet-counted framing (RFC 5425), port 6514 by convention.
    Tls,
    /// One UDP datagram per message (RFC 5426), port 514 by convention.
    Udp,
}

impl fmt::Display for Protocol {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Protocol::Tcp => "tcp",
            Protocol::Tls => "tls",
            Protocol::Udp => "udp",
        })
    }
}

/// TLS settings of a syslog sink.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct TlsClient {
    /// PEM file of the CA certificates that may issue the receiver's
    /// certificate.
    pub ca: PathBuf,
    /// The name the receiver's certificate must carry (a DNS name or an IP
    /// address); by default the host part of [`SyslogConfig::address`].
    pub server_name: Option<String>,
    /// PEM file of the client certificate (then its intermediates) to
    /// present; none when `None`. Needs [`client_key`](Self::client_key).
    pub client_cert: Option<PathBuf>,
    /// PEM file of the client certificate's private key.
    pub client_key: Option<PathBuf>,
}

impl TlsClient {
    /// Trusts the CAs in `ca`, checks the address's host name, and presents
    /// no client certificate.
    pub fn new(ca: impl Into<PathBuf>) -> TlsClient {
        TlsClient {
            ca: ca.into(),
            server_name: None,
            client_cert: None,
            client_key: None,
        }
    }
}

/// Settings of a syslog sink's transport.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct SyslogConfig {
    /// UDP, TCP or TLS.
    pub protocol: Protocol,
    /// The receiver, `host:port` (`[v6address]:port` for an IPv6 address).
    pub address: String,
    /// TLS settings; required with [`Protocol::Tls`], refused otherwise.
    pub tls: Option<TlsClient>,
    /// Bound on connecting, the TLS handshake and each write. Default 10 s.
    pub timeout: Duration,
    /// UDP only: the largest record sent as a datagram, 1 to 65 507 bytes;
    /// longer ones are rejected. Default 65 000.
    pub max_datagram: usize,
    /// TCP and TLS: how long written batches are kept to be sent again
    /// after a reconnect (see the module documentation). Default 2 s.
    pub resend_window: Duration,
}

impl SyslogConfig {
    /// `protocol` to `address` (`host:port`) with the defaults: no TLS
    /// settings, 10 s timeout, 65 000-byte datagrams, 2 s resend window.
    pub fn new(protocol: Protocol, address: impl Into<String>) -> SyslogConfig {
        SyslogConfig {
            protocol,
            address: address.into(),
            tls: None,
            timeout: Duration::from_secs(10),
            max_datagram: 65_000,
            resend_window: Duration::from_secs(2),
        }
    }
}

/// A syslog setting that cannot be used, with what to do about it.
#[derive(Debug, thiserror::Error)]
#[error("syslog {what}: {why}")]
pub struct SyslogConfigError {
    what: String,
    why: String,
}

fn config_error(what: impl Into<String>, why: impl ToString) -> SyslogConfigError {
    SyslogConfigError {
        what: what.into(),
        why: why.to_string(),
    }
}

/// Sends records to a syslog receiver over UDP, TCP or TLS; see the
/// [module documentation](self).
pub struct SyslogTransport {
    protocol: Protocol,
    address: String,
    timeout: Duration,
    max_datagram: usize,
    resend_window: Duration,
    tls: Option<(Arc<ClientConfig>, ServerName<'static>)>,
    udp: Option<UdpSocket>,
    stream: Option<Stream>,
    /// Batches written on `stream` in the resend window.
    window: Window,
    /// Batches written on the current stream.
    writes: u64,
    /// Consecutive connections found closed before their second batch.
    early_closes: u32,
}

impl fmt::Debug for SyslogTransport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SyslogTransport")
            .field("protocol", &self.protocol)
            .field("address", &self.address)
            .field("connected", &(self.stream.is_some() || self.udp.is_some()))
            .field("window_bytes", &self.window.bytes)
            .finish_non_exhaustive()
    }
}

impl SyslogTransport {
    /// Checks `config` and loads its PEM files. Connects only at the first
    /// send.
    pub fn new(config: SyslogConfig) -> Result<SyslogTransport, SyslogConfigError> {
        let host = host_of(&config.address)?;
        if config.timeout.is_zero() {
            return Err(config_error("timeout", "must be more than zero"));
        }
        if config.protocol == Protocol::Udp && !(1..=MAX_UDP_PAYLOAD).contains(&config.max_datagram)
        {
            return Err(config_error(
                "max_datagram",
                format!(
                    "{} is not a UDP datagram size: give 1 to {MAX_UDP_PAYLOAD} bytes",
                    config.max_datagram
                ),
            ));
        }
        let tls = match (config.protocol, &config.tls) {
            (Protocol::Tls, Some(tls)) => Some(client_config(tls, host)?),
            (Protocol::Tls, None) => {
                return Err(config_error(
                    "tls",
                    "protocol tls needs tls settings: at least tls.ca, the CA that issued the \
                     receiver's certificate",
                ));
            }
            (protocol, Some(_)) => {
                return Err(config_error(
                    "tls",
                    format!("TLS settings are given but the protocol is {protocol}: use tls"),
                ));
            }
            (_, None) => None,
        };
        Ok(SyslogTransport {
            protocol: config.protocol,
            address: config.address,
            timeout: config.timeout,
            max_datagram: config.max_datagram,
            resend_window: config.resend_window,
            tls,
            udp: None,
            stream: None,
            window: Window::default(),
            writes: 0,
            early_closes: 0,
        })
    }

    fn send_udp(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        let socket = match self.udp.take() {
            Some(socket) => socket,
            None => self.open_udp()?,
        };
        let mut sent = Sent::all();
        for (i, record) in batch.iter().enumerate() {
            let len = record.formatted.len();
            if len == 0 {
                sent.rejected.push((i, empty_record()));
                continue;
            }
            if len > self.max_datagram {
                sent.rejected.push((
                    i,
                    format!(
                        "the record is {len} bytes, more than max_datagram ({}) allows in one \
                         UDP datagram; send large events over TCP or TLS",
                        self.max_datagram
                    ),
                ));
                continue;
            }
            let written = socket.send(record.formatted);
            if let Err(e) = check_datagram(written, len) {
                return Err(SendError::Retry(format!(
                    "cannot send to the syslog receiver {} over UDP: {e}",
                    self.address
                )));
            }
        }
        self.udp = Some(socket);
        Ok(sent)
    }

    fn open_udp(&self) -> Result<UdpSocket, SendError> {
        let mut last = None;
        for addr in self.resolve()? {
            let local: SocketAddr = if addr.is_ipv4() {
                ([0u8; 4], 0).into()
            } else {
                ([0u16; 8], 0).into()
            };
            let opened = UdpSocket::bind(local).and_then(|socket| {
                socket.connect(addr)?;
                socket.set_write_timeout(Some(self.timeout))?;
                Ok(socket)
            });
            match opened {
                Ok(socket) => return Ok(socket),
                Err(e) => last = Some(e),
            }
        }
        Err(self.unreachable(last))
    }

    fn send_stream(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        let mut sent = Sent::all();
        let mut frames = Vec::with_capacity(batch.iter().map(|r| r.formatted.len() + 8).sum());
        for (i, record) in batch.iter().enumerate() {
            if record.formatted.is_empty() {
                sent.rejected.push((i, empty_record()));
                continue;
            }
            // Writing into a Vec cannot fail.
            let _ = write!(frames, "{} ", record.formatted.len());
            frames.extend_from_slice(record.formatted);
        }
        if frames.is_empty() {
            return Ok(sent);
        }

        let stream = match self.stream.take() {
            None => None,
            Some(mut stream) => match stream.probe(None, self.timeout) {
                Liveness::Alive => Some(stream),
                Liveness::Closed(_) => {
                    self.early_closes = if self.writes <= 1 {
                        self.early_closes.saturating_add(1)
                    } else {
                        0
                    };
                    None
                }
                Liveness::Refused(why) => return Err(SendError::Park(why)),
            },
        };

        let fresh = stream.is_none();
        let mut stream = match stream {
            Some(stream) => stream,
            None => {
                self.writes = 0;
                self.connect()?
            }
        };
        let written = if fresh && !self.window.is_empty() {
            let mut all = Vec::with_capacity(self.window.bytes + frames.len());
            for (_, kept) in &self.window.batches {
                all.extend_from_slice(kept);
            }
            all.extend_from_slice(&frames);
            stream.write_all(&all)
        } else {
            stream.write_all(&frames)
        };
        if let Err(e) = written {
            return Err(SendError::Retry(format!(
                "cannot write to the syslog receiver {} over {}: {e}",
                self.address, self.protocol
            )));
        }
        if fresh && self.early_closes > 0 {
            match stream.probe(Some(SETTLE.min(self.timeout)), self.timeout) {
                Liveness::Alive => self.early_closes = 0,
                Liveness::Closed(why) => {
                    self.early_closes = self.early_closes.saturating_add(1);
                    return Err(SendError::Retry(format!(
                        "the syslog receiver {} {why} right after it was opened ({} times in a \
                         row); if it authenticates clients by certificate, check that it \
                         accepts tls.client_cert",
                        self.address, self.early_closes
                    )));
                }
                Liveness::Refused(why) => return Err(SendError::Park(why)),
            }
        }
        self.stream = Some(stream);
        let now = Instant::now();
        if fresh {
            self.window.rewritten(now);
        }
        self.window.push(now, frames, self.resend_window);
        self.writes += 1;
        Ok(sent)
    }

    /// Connects, with the TLS handshake for [`Protocol::Tls`].
    fn connect(&self) -> Result<Stream, SendError> {
        let mut last = None;
        let mut socket = None;
        for addr in self.resolve()? {
            match TcpStream::connect_timeout(&addr, self.timeout) {
                Ok(s) => {
                    socket = Some(s);
                    break;
                }
                Err(e) => last = Some(e),
            }
        }
        let Some(socket) = socket else {
            return Err(self.unreachable(last));
        };
        let configured = socket
            .set_nodelay(true)
            .and_then(|()| socket.set_write_timeout(Some(self.timeout)))
            .and_then(|()| socket.set_read_timeout(Some(self.timeout)));
        if let Err(e) = configured {
            return Err(self.unreachable(Some(e)));
        }
        let Some((config, name)) = &self.tls else {
            return Ok(Stream::Tcp(socket));
        };
        let mut tls = TlsStream {
            conn: ClientConnection::new(Arc::clone(config), name.clone()).map_err(|e| {
                SendError::Retry(format!("cannot start TLS with {}: {e}", self.address))
            })?,
            socket,
        };
        let deadline = Instant::now() + self.timeout;
        while tls.conn.is_handshaking() {
            if Instant::now() >= deadline {
                return Err(self.handshake_failed(&io::ErrorKind::TimedOut.into()));
            }
            if let Err(e) = tls.conn.complete_io(&mut tls.socket) {
                return Err(self.handshake_failed(&e));
            }
        }
        Ok(Stream::Tls(Box::new(tls)))
    }

    fn resolve(&self) -> Result<Vec<SocketAddr>, SendError> {
        let addrs: Vec<SocketAddr> = self
            .address
            .to_socket_addrs()
            .map_err(|e| {
                SendError::Retry(format!(
                    "cannot resolve the syslog receiver {}: {e}",
                    self.address
                ))
            })?
            .collect();
        if addrs.is_empty() {
            return Err(SendError::Retry(format!(
                "the syslog receiver's name {} resolves to no address",
                self.address
            )));
        }
        Ok(addrs)
    }

    fn unreachable(&self, err: Option<io::Error>) -> SendError {
        let why = err.map_or_else(|| "no address".to_owned(), |e| e.to_string());
        SendError::Retry(format!(
            "cannot connect to the syslog receiver {} over {}: {why}",
            self.address, self.protocol
        ))
    }

    fn handshake_failed(&self, err: &io::Error) -> SendError {
        if let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
            && let Some(why) = refusal(&self.address, tls)
        {
            return SendError::Park(why);
        }
        let why = if matches!(
            err.kind(),
            io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
        ) {
            format!("no answer within {:?}", self.timeout)
        } else {
            err.to_string()
        };
        SendError::Retry(format!(
            "the TLS handshake with the syslog receiver {} failed: {why}",
            self.address
        ))
    }

    /// Ends the connection cleanly: TLS `close_notify`, then FIN.
    fn disconnect(&mut self) {
        if let Some(mut stream) = self.stream.take() {
            // Unread input would turn the FIN into a reset.
            let _ = stream.probe(None, self.timeout);
            stream.shutdown();
        }
        self.udp = None;
    }
}

impl Transport for SyslogTransport {
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        match self.protocol {
            Protocol::Udp => self.send_udp(batch),
            Protocol::Tcp | Protocol::Tls => self.send_stream(batch),
        }
    }

    /// False: syslog has no acknowledgements; TCP and TLS resend their
    /// window after a reconnect.
    fn acknowledged(&self) -> bool {
        false
    }

    /// Closes the connection; the next send connects again and resends the
    /// window first.
    fn reopen(&mut self) {
        self.disconnect();
    }

    fn close(&mut self) {
        self.disconnect();
    }
}

impl Drop for SyslogTransport {
    fn drop(&mut self) {
        self.disconnect();
    }
}

/// Batches written on the current connection, newest last.
#[derive(Debug, Default)]
struct Window {
    batches: VecDeque<(Instant, Vec<u8>)>,
    bytes: usize,
}

impl Window {
    fn is_empty(&self) -> bool {
        self.batches.is_empty()
    }

    /// Keeps `frames`, written at `now`, and forgets batches written more
    /// than `keep` before it, then the oldest while over the size limit.
    fn push(&mut self, now: Instant, frames: Vec<u8>, keep: Duration) {
        self.bytes += frames.len();
        self.batches.push_back((now, frames));
        while self.batches.len() > 1 {
            let Some((written, oldest)) = self.batches.front() else {
                break;
            };
            if now.duration_since(*written) <= keep && self.bytes <= RESEND_LIMIT {
                break;
            }
            self.bytes -= oldest.len();
            self.batches.pop_front();
        }
    }

    /// The kept batches were written again at `now`, on a new connection.
    fn rewritten(&mut self, now: Instant) {
        for (written, _) in &mut self.batches {
            *written = now;
        }
    }
}

/// A TCP connection, plain or with TLS.
enum Stream {
    Tcp(TcpStream),
    Tls(Box<TlsStream>),
}

struct TlsStream {
    conn: ClientConnection,
    socket: TcpStream,
}

/// What reading from a connection revealed.
#[derive(Debug)]
enum Liveness {
    /// Nothing, or data the receiver sent (ignored).
    Alive,
    /// The receiver closed or reset the connection; how, in words.
    Closed(String),
    /// The receiver refused us with a TLS alert; the reason to park.
    Refused(String),
}

impl Stream {
    fn socket(&self) -> &TcpStream {
        match self {
            Stream::Tcp(socket) => socket,
            Stream::Tls(tls) => &tls.socket,
        }
    }

    /// Reads and discards what the receiver sent, to see whether it closed
    /// the connection: without blocking when `wait` is `None`, else until
    /// `wait` passed. Restores the blocking read timeout `timeout`.
    fn probe(&mut self, wait: Option<Duration>, timeout: Duration) -> Liveness {
        let deadline = wait.map(|w| Instant::now() + w);
        if wait.is_none()
            && let Err(e) = self.socket().set_nonblocking(true)
        {
            return Liveness::Closed(format!("cannot poll the connection ({e})"));
        }
        let liveness = loop {
            if let Some(deadline) = deadline {
                let left = deadline.saturating_duration_since(Instant::now());
                if left.is_zero() {
                    break Liveness::Alive;
                }
                if let Err(e) = self.socket().set_read_timeout(Some(left)) {
                    break Liveness::Closed(format!("cannot poll the connection ({e})"));
                }
            }
            match self.read_some() {
                Ok(true) => {}
                Ok(false) => break Liveness::Closed("closed the connection".to_owned()),
                Err(e)
                    if matches!(
                        e.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    break Liveness::Alive;
                }
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => break self.failed(e),
            }
        };
        let restored = self
            .socket()
            .set_nonblocking(false)
            .and_then(|()| self.socket().set_read_timeout(Some(timeout)));
        match (liveness, restored) {
            (Liveness::Alive, Err(e)) => {
                Liveness::Closed(format!("cannot poll the connection ({e})"))
            }
            (liveness, _) => liveness,
        }
    }

    /// Reads once; false when the receiver closed the connection.
    fn read_some(&mut self) -> io::Result<bool> {
        let mut scratch = [0u8; 4096];
        match self {
            Stream::Tcp(socket) => Ok(socket.read(&mut scratch)? > 0),
            Stream::Tls(tls) => {
                if tls.conn.read_tls(&mut tls.socket)? == 0 {
                    return Ok(false);
                }
                let state = tls
                    .conn
                    .process_new_packets()
                    .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?;
                let mut unread = state.plaintext_bytes_to_read();
                while unread > 0 {
                    let n = tls.conn.reader().read(&mut scratch)?;
                    if n == 0 {
                        break;
                    }
                    unread = unread.saturating_sub(n);
                }
                Ok(!state.peer_has_closed())
            }
        }
    }

    /// What a read error says about the connection.
    fn failed(&self, err: io::Error) -> Liveness {
        if let Some(tls) = err
            .get_ref()
            .and_then(|e| e.downcast_ref::<rustls::Error>())
        {
            let address = self
                .socket()
                .peer_addr()
                .map_or_else(|_| "peer".to_owned(), |a| a.to_string());
            if let Some(why) = refusal(&address, tls) {
                return Liveness::Refused(why);
            }
            return Liveness::Closed(format!("broke the TLS session ({tls})"));
        }
        match err.kind() {
            io::ErrorKind::ConnectionReset => Liveness::Closed("reset the connection".to_owned()),
            io::ErrorKind::UnexpectedEof => Liveness::Closed("closed the connection".to_owned()),
            _ => Liveness::Closed(format!("broke the connection ({err})")),
        }
    }

    /// Writes `data` and flushes it to the socket.
    fn write_all(&mut self, data: &[u8]) -> io::Result<()> {
        match self {
            Stream::Tcp(socket) => {
                socket.write_all(data)?;
                socket.flush()
            }
            Stream::Tls(tls) => {
                for chunk in data.chunks(TLS_CHUNK) {
                    tls.conn.writer().write_all(chunk)?;
                    tls.flush()?;
                }
                tls.socket.flush()
            }
        }
    }

    /// Sends TLS `close_notify` and shuts the socket down, ignoring errors.
    fn shutdown(self) {
        match self {
            Stream::Tcp(socket) => {
                let _ = socket.shutdown(Shutdown::Both);
            }
            Stream::Tls(mut tls) => {
                tls.conn.send_close_notify();
                let _ = tls.flush();
                let _ = tls.socket.shutdown(Shutdown::Both);
            }
        }
    }
}

impl TlsStream {
    /// Writes every pending TLS record to the socket.
    fn flush(&mut self) -> io::Result<()> {
        while self.conn.wants_write() {
            if self.conn.write_tls(&mut self.socket)? == 0 {
                return Err(io::ErrorKind::WriteZero.into());
            }
        }
        Ok(())
    }
}

/// The reason to park for a TLS error that will not go away by itself, or
/// `None` for one that may (a broken message, a closed connection).
fn refusal(address: &str, err: &rustls::Error) -> Option<String> {
    use AlertDescription as A;
    match err {
        rustls::Error::InvalidCertificate(e) => Some(format!(
            "the syslog receiver {address} presented a certificate that does not verify \
             ({e:?}): check tls.ca and tls.server_name, or renew the receiver's certificate"
        )),
        rustls::Error::NoCertificatesPresented => Some(format!(
            "the syslog receiver {address} presented no certificate: configure TLS on it"
        )),
        rustls::Error::AlertReceived(
            alert @ (A::BadCertificate
            | A::UnsupportedCertificate
            | A::CertificateRevoked
            | A::CertificateExpired
            | A::CertificateUnknown
            | A::UnknownCA
            | A::AccessDenied
            | A::CertificateRequired),
        ) => Some(format!(
            "the syslog receiver {address} refused our client certificate (TLS alert \
             {alert:?}): check tls.client_cert and tls.client_key, and the CAs the receiver \
             trusts"
        )),
        rustls::Error::PeerIncompatible(_)
        | rustls::Error::AlertReceived(
            A::ProtocolVersion | A::HandshakeFailure | A::InsufficientSecurity,
        ) => Some(format!(
            "the syslog receiver {address} has no TLS version or cipher suite in common with \
             vigil ({err}): vigil speaks TLS 1.2 and 1.3 with modern cipher suites"
        )),
        _ => None,
    }
}

/// An `io::Error` for a datagram that was not sent whole.
fn check_datagram(written: io::Result<usize>, len: usize) -> io::Result<()> {
    match written {
        Ok(n) if n == len => Ok(()),
        Ok(n) => Err(io::Error::other(format!(
            "only {n} of the record's {len} bytes were sent"
        ))),
        Err(e) => Err(e),
    }
}

fn empty_record() -> String {
    "the record is empty; a syslog message cannot be empty".to_owned()
}

/// The host part of `host:port` or `[v6]:port`, after checking the port.
fn host_of(address: &str) -> Result<&str, SyslogConfigError> {
    let bad = |why: &str| config_error(format!("address {address:?}"), why);
    let (host, port) = if let Some(rest) = address.strip_prefix('[') {
        let (host, port) = rest
            .split_once("]:")
            .ok_or_else(|| bad("write an IPv6 receiver as [address]:port"))?;
        (host, port)
    } else {
        let (host, port) = address
            .rsplit_once(':')
            .ok_or_else(|| bad("give the receiver as host:port, e.g. logs.example.net:6514"))?;
        if host.contains(':') {
            return Err(bad("write an IPv6 receiver as [address]:port"));
        }
        (host, port)
    };
    if host.is_empty() {
        return Err(bad("the host is empty; give the receiver as host:port"));
    }
    match port.parse::<u16>() {
        Ok(p) if p > 0 => Ok(host),
        _ => Err(bad("the port must be a number from 1 to 65535")),
    }
}

/// The rustls client configuration and the name to verify, with the PEM
/// files loaded.
fn client_config(
    tls: &TlsClient,
    host: &str,
) -> Result<(Arc<ClientConfig>, ServerName<'static>), SyslogConfigError> {
    let name = tls.server_name.as_deref().unwrap_or(host);
    let server_name = ServerName::try_from(name.to_owned()).map_err(|e| {
        config_error(
            format!("tls.server_name {name:?}"),
            format!("{e}; give the DNS name or IP address the receiver's certificate carries"),
        )
    })?;
    let mut roots = RootCertStore::empty();
    for cert in load_certs(&tls.ca, "tls.ca")? {
        roots.add(cert).map_err(|e| {
            config_error(
                format!("tls.ca {}", tls.ca.display()),
                format!("{e}; give the CA certificates that issue the receiver's certificate"),
            )
        })?;
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| config_error("tls", e))?
        .with_root_certificates(roots);
    let config = match (&tls.client_cert, &tls.client_key) {
        (None, None) => builder.with_no_client_auth(),
        (Some(cert), Some(key)) => {
            let chain = load_certs(cert, "tls.client_cert")?;
            let key = PrivateKeyDer::from_pem_file(key).map_err(|e| {
                config_error(
                    format!("tls.client_key {}", key.display()),
                    format!("{e}; give a readable PEM private key (PKCS#8, PKCS#1 or SEC1)"),
                )
            })?;
            builder.with_client_auth_cert(chain, key).map_err(|e| {
                config_error(
                    "tls.client_cert and tls.client_key",
                    format!("{e}; do they belong together?"),
                )
            })?
        }
        (Some(_), None) => {
            return Err(config_error(
                "tls.client_key",
                "tls.client_cert needs tls.client_key, its private key",
            ));
        }
        (None, Some(_)) => {
            return Err(config_error(
                "tls.client_cert",
                "tls.client_key needs tls.client_cert, the certificate it belongs to",
            ));
        }
    };
    Ok((Arc::new(config), server_name))
}

/// The certificates in the PEM file `path`, at least one.
fn load_certs(path: &Path, what: &str) -> Result<Vec<CertificateDer<'static>>, SyslogConfigError> {
    let certs = CertificateDer::pem_file_iter(path)
        .and_then(|it| it.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            config_error(
                format!("{what} {}", path.display()),
                format!("{e}; give a readable PEM file of certificates"),
            )
        })?;
    if certs.is_empty() {
        return Err(config_error(
            format!("{what} {}", path.display()),
            "holds no PEM certificate (-----BEGIN CERTIFICATE-----)",
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn addresses() {
        assert_eq!(
            host_of("logs.example.net:6514").unwrap(),
            "logs.example.net"
        );
        assert_eq!(host_of("127.0.0.1:514").unwrap(), "127.0.0.1");
        assert_eq!(host_of("[::1]:514").unwrap(), "::1");
        for bad in [
            "logs",
            "::1:514",
            ":514",
            "host:0",
            "host:65536",
            "host:x",
            "[::1]514",
        ] {
            let err = host_of(bad).unwrap_err().to_string();
            assert!(err.contains(&format!("{bad:?}")), "{err}");
        }
    }

    #[test]
    fn window_keeps_recent_batches_within_the_limit() {
        let keep = Duration::from_secs(2);
        let t0 = Instant::now();
        let mut w = Window::default();
        w.push(t0, vec![1; 10], keep);
        w.push(t0 + Duration::from_secs(1), vec![2; 10], keep);
        assert_eq!((w.batches.len(), w.bytes), (2, 20));
        w.push(t0 + Duration::from_secs(3), vec![3; 10], keep);
        assert_eq!((w.batches.len(), w.bytes), (2, 20));
        assert_eq!(w.batches[0].1, vec![2; 10]);
        // Long after: only the newest stays, whatever its age.
        w.push(t0 + Duration::from_secs(60), vec![4; 10], keep);
        assert_eq!((w.batches.len(), w.bytes), (1, 10));
        // The size limit drops the oldest but keeps the newest.
        let t1 = t0 + Duration::from_secs(61);
        w.push(t1, vec![5; RESEND_LIMIT - 5], keep);
        assert_eq!(w.batches.len(), 1);
        w.push(t1, vec![6; RESEND_LIMIT + 1], keep);
        assert_eq!((w.batches.len(), w.bytes), (1, RESEND_LIMIT + 1));
        w.rewritten(t1 + Duration::from_secs(5));
        assert_eq!(w.batches[0].0, t1 + Duration::from_secs(5));
    }

    #[test]
    fn refusals() {
        let park = refusal(
            "h:1",
            &rustls::Error::InvalidCertificate(rustls::CertificateError::UnknownIssuer),
        )
        .unwrap();
        assert!(
            park.contains("certificate") && park.contains("UnknownIssuer"),
            "{park}"
        );
        assert!(refusal("h:1", &rustls::Error::AlertReceived(A::UnknownCA)).is_some());
        assert!(refusal("h:1", &rustls::Error::AlertReceived(A::CloseNotify)).is_none());
        assert!(refusal("h:1", &rustls::Error::DecryptError).is_none());
    }

    use AlertDescription as A;

    #[test]
    fn configs_are_checked() {
        let err = |c: SyslogConfig| SyslogTransport::new(c).unwrap_err().to_string();
        let mut c = SyslogConfig::new(Protocol::Tls, "127.0.0.1:6514");
        assert!(err(c.clone()).contains("needs tls settings"));
        c.tls = Some(TlsClient::new("/nonexistent/ca.pem"));
        let e = err(c.clone());
        assert!(e.contains("tls.ca /nonexistent/ca.pem"), "{e}");
        let mut c = SyslogConfig::new(Protocol::Udp, "127.0.0.1:514");
        c.max_datagram = 70_000;
        assert!(err(c.clone()).contains("max_datagram"));
        c.max_datagram = 1_000;
        c.timeout = Duration::ZERO;
        assert!(err(c.clone()).contains("timeout"));
        let mut c = SyslogConfig::new(Protocol::Tcp, "127.0.0.1:514");
        c.tls = Some(TlsClient::new("ca.pem"));
        assert!(err(c).contains("protocol is tcp"));
        let t = SyslogTransport::new(SyslogConfig::new(Protocol::Udp, "127.0.0.1:514")).unwrap();
        assert!(!t.acknowledged());
    }
}
