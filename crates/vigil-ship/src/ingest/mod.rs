//! A syslog receiver, so programs next to the database can hand vigil
//! their own security events to seal and ship: [`Ingest`], configured by
//! an [`IngestConfig`].
//!
//! Every accepted message becomes one `ingest.message` event on the
//! [`Emitter`] it is given, which the pipeline numbers, seals into the
//! audit log and delivers like any other event.
//!
//! ```no_run
//! use std::time::Duration;
//!
//! use vigil_event::{Emitter, Overflow};
//! use vigil_ship::ingest::{Ingest, IngestConfig, IngestTls};
//!
//! let (emitter, events) = Emitter::channel(1024, Overflow::Block);
//! let mut config = IngestConfig::default();
//! config.tcp = Some("127.0.0.1:6601".parse()?);
//! let mut tls = IngestTls::new(
//!     "0.0.0.0:6514".parse()?,
//!     "/etc/vigil/ingest.crt",
//!     "/etc/vigil/ingest.key",
//! );
//! tls.client_ca = Some("/etc/vigil/ingest-clients-ca.pem".into());
//! config.tls = Some(tls);
//! let ingest = Ingest::start(config, emitter)?;
//! println!("listening on {:?}", ingest.local_addrs());
//! let first = events.recv_timeout(Duration::from_secs(1)); // ingest.started
//! let stats = ingest.shutdown();
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```
//!
//! # Transports and framing
//!
//! - **UDP** (RFC 5426): one message per datagram.
//! - **TCP** (RFC 6587) and **TLS** (RFC 5425, TLS 1.2 or 1.3): a stream
//!   of frames, each detected on its own. A frame that starts with a digit
//!   is octet-counted, `MSG-LEN SP MSG`; any other frame is a line ended by
//!   LF (non-transparent framing; a CR before the LF is dropped, and empty
//!   lines are skipped). When the client closes the stream, a last line
//!   without its LF is still a message. With [`IngestTls::client_ca`],
//!   every TLS client must present a certificate issued by that CA; its
//!   subject's common name (`CN=…`, else `sha256:` and the certificate's
//!   fingerprint, as in `client.connected`) is the event's
//!   `client_identity`.
//!
//! # Messages
//!
//! RFC 5424 and RFC 3164 messages are accepted, as [`parse`] describes.
//! Each becomes an `ingest.message` event whose severity follows the
//! syslog severity (emergency and alert: critical; critical and error:
//! error; warning: warning; notice: notice; informational: info; debug:
//! debug), whose time is the message's RFC 5424 TIMESTAMP when it is valid
//! and the time of reception otherwise (RFC 3164 timestamps have no year
//! nor zone, so they are never used), with these fields:
//!
//! ```text
//! source_addr      string  the sender's IP address (UDP senders can forge it)
//! source_port      number  the sender's port
//! transport        string  udp | tcp | tls
//! client_identity  string  TLS client certificate identity, "" without one
//! received_at      string  RFC 3339 time of reception
//! facility         number  0 .. 23
//! syslog_severity  number  0 (emergency) .. 7 (debug)
//! hostname         string  HOSTNAME, "" when absent
//! app_name         string  APP-NAME or RFC 3164 tag, "" when absent
//! procid           string  PROCID or RFC 3164 pid, "" when absent
//! msgid            string  MSGID, "" when absent
//! structured_data  string  STRUCTURED-DATA exactly as received, "" when absent
//! message          string  MSG, without a BOM; invalid UTF-8 becomes U+FFFD
//! ```
//!
//! # Limits
//!
//! - [`IngestConfig::max_message`] (64 KiB by default) bounds a message:
//!   a datagram or frame, without its octet count or LF. A connection's
//!   buffer never holds more than that plus 11 bytes.
//! - [`IngestConfig::max_connections`] (256) bounds the TCP and TLS
//!   connections together; each has its own thread. A connection over the
//!   limit is closed at once.
//! - [`IngestConfig::idle_timeout`] (5 minutes) closes a connection that
//!   sent nothing for that long; a TLS handshake has at most 10 seconds
//!   (less when the idle timeout is shorter).
//!
//! # Rejections
//!
//! Bad input never stops the receiver: it is counted in
//! [`IngestStats::rejected`] and reported as an `ingest.rejected` event
//! with fields `reason`, `transport`, `source_addr`, `source_port` and
//! `suppressed`. The reason names the broken rule, never the message's
//! content, which may hold secrets. What is rejected:
//!
//! - a message that does not parse (the [`parse::ParseError`]);
//! - a datagram or frame longer than `max_message`: skipped, and the
//!   connection goes on with the next frame (an octet-counted frame is
//!   skipped by its count, a line up to its LF);
//! - an octet count that cannot be read (a leading zero, more than ten
//!   digits, digits not followed by a space): the connection is closed, as
//!   nothing tells where the next frame starts;
//! - a connection that ends, idles out or fails in the middle of a frame,
//!   or is open when the receiver stops with a frame unfinished;
//! - a failed TLS handshake (a client without a valid certificate, a
//!   plain-TCP client on the TLS port, a handshake that does not finish in
//!   time) and a TLS error after it: the connection is closed. A client
//!   that connects and closes without sending a byte is not reported;
//! - a connection over `max_connections`.
//!
//! Reports are rate-limited per source IP address: at most one a second.
//! The rejections in between are counted, and the next report, at the
//! latest a second after the previous one, gives their count in
//! `suppressed` and is itself the latest of them. At shutdown every
//! pending report is made at once. Beyond 4096 sources reported within a
//! second, further sources share one limit.

mod check;
mod frame;
pub mod parse;
mod tls;

use std::collections::HashMap;
use std::collections::hash_map::Entry;
use std::fmt;
use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

use rustls::{ServerConfig, ServerConnection};
use vigil_event::{Emitter, Event, Severity, Timestamp, catalog};

pub use check::fuzz_syslog;

use frame::{Framed, Framer, Rest};
use parse::Message;

/// The default [`IngestConfig::max_message`]: 64 KiB.
pub const DEFAULT_MAX_MESSAGE: usize = 64 * 1024;
/// The smallest `max_message`: RFC 5424 receivers accept 480 bytes.
const MIN_MAX_MESSAGE: usize = 480;
/// The largest `max_message`.
const MAX_MAX_MESSAGE: usize = 16 * 1024 * 1024;
/// How often blocked reads wake up to look at the stop flag and the idle
/// time.
const TICK: Duration = Duration::from_millis(200);
/// How often a listener looks for new connections.
const ACCEPT_POLL: Duration = Duration::from_millis(50);
/// The most a TLS handshake may take.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Bound on each write to a client (TLS handshake messages and alerts).
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);
/// At most one rejection report per source in this interval.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);
/// Sources the rate limiter tells apart; the rest share one limit.
const MAX_SOURCES: usize = 4096;
/// Bytes read from a connection at a time.
const READ_BUFFER: usize = 16 * 1024;

/// Settings of the syslog receiver. At least one of `udp`, `tcp` and `tls`
/// must be set.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestConfig {
    /// Where to receive syslog over UDP (RFC 5426); port 0 picks a free one.
    pub udp: Option<SocketAddr>,
    /// Where to receive syslog over plain TCP (RFC 6587).
    pub tcp: Option<SocketAddr>,
    /// Where and how to receive syslog over TLS (RFC 5425).
    pub tls: Option<IngestTls>,
    /// The largest message, in bytes, without its framing: 480 to 16 MiB,
    /// default 64 KiB. UDP cannot carry more than 65 507.
    pub max_message: usize,
    /// The most TCP and TLS connections open at once; default 256.
    pub max_connections: usize,
    /// A connection that sends nothing for this long is closed; default
    /// 5 minutes.
    pub idle_timeout: Duration,
}

impl Default for IngestConfig {
    /// No transport, 64 KiB messages, 256 connections, 5 minutes idle.
    fn default() -> IngestConfig {
        IngestConfig {
            udp: None,
            tcp: None,
            tls: None,
            max_message: DEFAULT_MAX_MESSAGE,
            max_connections: 256,
            idle_timeout: Duration::from_secs(300),
        }
    }
}

/// TLS settings of the receiver.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestTls {
    /// Where to listen; port 0 picks a free one.
    pub listen: SocketAddr,
    /// PEM file of the server certificate, then its intermediates.
    pub cert: PathBuf,
    /// PEM file of the server certificate's private key.
    pub key: PathBuf,
    /// PEM file of the CAs that issue client certificates. When set, every
    /// client must present a certificate it issued; when `None`, clients
    /// are not asked for one.
    pub client_ca: Option<PathBuf>,
}

impl IngestTls {
    /// Listens on `listen` with the certificate `cert` and its key `key`;
    /// no client certificates.
    pub fn new(listen: SocketAddr, cert: impl Into<PathBuf>, key: impl Into<PathBuf>) -> IngestTls {
        IngestTls {
            listen,
            cert: cert.into(),
            key: key.into(),
            client_ca: None,
        }
    }
}

/// Why the receiver could not start.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum IngestError {
    /// The configuration cannot be used; `reason` says what to change.
    #[error("syslog receiver: {reason}")]
    Config {
        /// What is wrong.
        reason: String,
    },
    /// An address could not be bound.
    #[error(
        "syslog receiver: cannot listen for {transport} on {addr}: {source}; is another \
         process using the port, or is the address not this host's?"
    )]
    Bind {
        /// `udp`, `tcp` or `tls`.
        transport: &'static str,
        /// The address.
        addr: SocketAddr,
        /// What the operating system said.
        source: io::Error,
    },
    /// A TLS file could not be read or used.
    #[error("syslog receiver: {what}: {why}")]
    Tls {
        /// Which setting and file.
        what: String,
        /// What is wrong and what to do.
        why: String,
    },
    /// A receiver thread could not be started.
    #[error(
        "syslog receiver: cannot start a thread: {source}; the system is out of threads or \
         memory, check its limits (`ulimit -u`, cgroup pids.max)"
    )]
    Spawn {
        /// What the operating system said.
        source: io::Error,
    },
}

/// Counts since the receiver started.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct IngestStats {
    /// Messages accepted and emitted as `ingest.message` events.
    pub received: u64,
    /// Rejections: bad messages, oversized frames, bad octet counts, failed
    /// TLS handshakes, connections over the limit. Reported or suppressed
    /// alike.
    pub rejected: u64,
}

/// The addresses the receiver is bound to, one per enabled transport.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct LocalAddrs {
    /// The UDP socket's address.
    pub udp: Option<SocketAddr>,
    /// The TCP listener's address.
    pub tcp: Option<SocketAddr>,
    /// The TLS listener's address.
    pub tls: Option<SocketAddr>,
}

/// How a message arrived.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Transport {
    Tcp,
    Tls,
    Udp,
}

impl Transport {
    const fn as_str(self) -> &'static str {
        match self {
            Transport::Tcp => "tcp",
            Transport::Tls => "tls",
            Transport::Udp => "udp",
        }
    }
}

impl fmt::Display for Transport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A running syslog receiver; see the [module documentation](self). It
/// stops when [shut down](Ingest::shutdown) or dropped.
#[derive(Debug)]
pub struct Ingest {
    shared: Arc<Shared>,
    addrs: LocalAddrs,
    threads: Vec<JoinHandle<()>>,
}

impl Ingest {
    /// Binds every configured address, emits `ingest.started` naming them,
    /// and starts receiving in background threads.
    pub fn start(config: IngestConfig, emitter: Emitter) -> Result<Ingest, IngestError> {
        validate(&config)?;
        let tls_config = config.tls.as_ref().map(tls::server_config).transpose()?;
        let bind_err = |transport, addr| {
            move |source| IngestError::Bind {
                transport,
                addr,
                source,
            }
        };
        let udp = match config.udp {
            Some(addr) => {
                let socket = UdpSocket::bind(addr).map_err(bind_err("udp", addr))?;
                socket
                    .set_read_timeout(Some(TICK))
                    .map_err(bind_err("udp", addr))?;
                let local = socket.local_addr().map_err(bind_err("udp", addr))?;
                Some((socket, local))
            }
            None => None,
        };
        let listen = |transport, addr: SocketAddr| -> Result<_, IngestError> {
            let listener = TcpListener::bind(addr).map_err(bind_err(transport, addr))?;
            listener
                .set_nonblocking(true)
                .map_err(bind_err(transport, addr))?;
            let local = listener.local_addr().map_err(bind_err(transport, addr))?;
            Ok((listener, local))
        };
        let tcp = config.tcp.map(|addr| listen("tcp", addr)).transpose()?;
        let tls_listener = match (&config.tls, tls_config) {
            (Some(t), Some(server)) => Some((listen("tls", t.listen)?, server)),
            _ => None,
        };
        let addrs = LocalAddrs {
            udp: udp.as_ref().map(|(_, a)| *a),
            tcp: tcp.as_ref().map(|(_, a)| *a),
            tls: tls_listener.as_ref().map(|((_, a), _)| *a),
        };
        let shared = Arc::new(Shared {
            emitter,
            stop: AtomicBool::new(false),
            received: AtomicU64::new(0),
            rejected: AtomicU64::new(0),
            active: AtomicUsize::new(0),
            max_message: config.max_message,
            max_connections: config.max_connections,
            idle_timeout: config.idle_timeout,
            limiter: Mutex::new(Limiter::default()),
        });
        shared.emitter.emit(started_event(
            &addrs,
            config.tls.as_ref().map(|t| t.client_ca.is_some()),
            &config,
        ));
        let mut ingest = Ingest {
            shared,
            addrs,
            threads: Vec::new(),
        };
        if let Some((socket, _)) = udp {
            let shared = Arc::clone(&ingest.shared);
            ingest.spawn("vigil-ingest-udp", move || udp_loop(&socket, &shared))?;
        }
        if let Some((listener, _)) = tcp {
            let shared = Arc::clone(&ingest.shared);
            ingest.spawn("vigil-ingest-tcp", move || {
                accept_loop(&listener, None, &shared);
            })?;
        }
        if let Some(((listener, _), server)) = tls_listener {
            let shared = Arc::clone(&ingest.shared);
            ingest.spawn("vigil-ingest-tls", move || {
                accept_loop(&listener, Some(server), &shared);
            })?;
        }
        let shared = Arc::clone(&ingest.shared);
        ingest.spawn("vigil-ingest-report", move || report_loop(&shared))?;
        Ok(ingest)
    }

    /// The bound addresses (useful when a configured port was 0).
    pub fn local_addrs(&self) -> LocalAddrs {
        self.addrs
    }

    /// Messages received and rejections so far.
    pub fn stats(&self) -> IngestStats {
        self.shared.stats()
    }

    /// Stops receiving: closes the sockets, waits for every connection's
    /// thread (each notices within a fifth of a second, unless it waits for
    /// room in a full event queue under `Overflow::Block`), makes the
    /// pending rejection reports, and returns the final counts.
    pub fn shutdown(mut self) -> IngestStats {
        self.stop();
        self.shared.stats()
    }

    fn spawn(&mut self, name: &str, f: impl FnOnce() + Send + 'static) -> Result<(), IngestError> {
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(f)
            .map_err(|source| IngestError::Spawn { source })?;
        self.threads.push(handle);
        Ok(())
    }

    fn stop(&mut self) {
        self.shared.stop.store(true, Ordering::Release);
        for handle in self.threads.drain(..) {
            // A receiver thread that panicked has nothing more to give.
            let _ = handle.join();
        }
        self.shared.flush_reports(true);
    }
}

impl Drop for Ingest {
    fn drop(&mut self) {
        self.stop();
    }
}

fn validate(config: &IngestConfig) -> Result<(), IngestError> {
    let err = |reason: &str| {
        Err(IngestError::Config {
            reason: reason.to_owned(),
        })
    };
    if config.udp.is_none() && config.tcp.is_none() && config.tls.is_none() {
        return err("no transport configured: set at least one of udp, tcp and tls");
    }
    if !(MIN_MAX_MESSAGE..=MAX_MAX_MESSAGE).contains(&config.max_message) {
        return err(
            "max_message must be 480 bytes (the least RFC 5424 lets a receiver accept) to 16 MiB",
        );
    }
    if config.max_connections == 0 {
        return err("max_connections must be at least 1");
    }
    if config.idle_timeout.is_zero() {
        return err("idle_timeout must be more than zero");
    }
    Ok(())
}

/// What every receiver thread shares.
#[derive(Debug)]
struct Shared {
    emitter: Emitter,
    stop: AtomicBool,
    received: AtomicU64,
    rejected: AtomicU64,
    /// Open TCP and TLS connections.
    active: AtomicUsize,
    max_message: usize,
    max_connections: usize,
    idle_timeout: Duration,
    limiter: Mutex<Limiter>,
}

impl Shared {
    fn stopping(&self) -> bool {
        self.stop.load(Ordering::Acquire)
    }

    fn stats(&self) -> IngestStats {
        IngestStats {
            received: self.received.load(Ordering::Relaxed),
            rejected: self.rejected.load(Ordering::Relaxed),
        }
    }

    /// Parses one message and emits it, or rejects it.
    fn message(&self, frame: &[u8], peer: SocketAddr, transport: Transport, identity: &str) {
        let received = Timestamp::now();
        match parse::parse(frame) {
            Ok(message) => {
                self.received.fetch_add(1, Ordering::Relaxed);
                self.emitter
                    .emit(message_event(&message, peer, transport, identity, received));
            }
            Err(e) => self.reject(peer, transport, format!("malformed message: {e}")),
        }
    }

    /// Counts a rejection and reports it, unless its source was reported
    /// less than a second ago.
    fn reject(&self, peer: SocketAddr, transport: Transport, reason: String) {
        self.rejected.fetch_add(1, Ordering::Relaxed);
        let report = Report {
            reason,
            transport,
            peer,
        };
        let due = self.limiter().admit(report, Instant::now());
        if let Some((report, suppressed)) = due {
            self.emitter.emit(rejected_event(&report, suppressed));
        }
    }

    /// Makes the reports that are due; with `all`, every pending one.
    fn flush_reports(&self, all: bool) {
        let due = self.limiter().due(Instant::now(), all);
        for (report, suppressed) in due {
            self.emitter.emit(rejected_event(&report, suppressed));
        }
    }

    fn limiter(&self) -> MutexGuard<'_, Limiter> {
        // The limiter's state stays consistent between statements, so a
        // thread that panicked while holding it leaves nothing half done.
        self.limiter.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// One rejection, as reported.
#[derive(Debug)]
struct Report {
    reason: String,
    transport: Transport,
    peer: SocketAddr,
}

/// The rate limit of rejection reports: one per source per second.
#[derive(Debug, Default)]
struct Limiter {
    /// Per source address; `None` is shared by the sources beyond
    /// [`MAX_SOURCES`].
    sources: HashMap<Option<IpAddr>, Bucket>,
}

#[derive(Debug)]
struct Bucket {
    /// When this source was last reported.
    last: Instant,
    /// Rejections not reported since.
    suppressed: u64,
    /// The latest of them.
    pending: Option<Report>,
}

impl Limiter {
    /// Takes a rejection: returns it with the count of suppressed ones
    /// before it when it is to be reported now, else keeps it pending.
    fn admit(&mut self, report: Report, now: Instant) -> Option<(Report, u64)> {
        let ip = report.peer.ip();
        let key = if self.sources.len() < MAX_SOURCES || self.sources.contains_key(&Some(ip)) {
            Some(ip)
        } else {
            None
        };
        match self.sources.entry(key) {
            Entry::Occupied(mut entry) => {
                let bucket = entry.get_mut();
                if now.saturating_duration_since(bucket.last) < REPORT_INTERVAL {
                    bucket.suppressed += 1;
                    bucket.pending = Some(report);
                    None
                } else {
                    let suppressed = std::mem::take(&mut bucket.suppressed);
                    bucket.pending = None;
                    bucket.last = now;
                    Some((report, suppressed))
                }
            }
            Entry::Vacant(entry) => {
                entry.insert(Bucket {
                    last: now,
                    suppressed: 0,
                    pending: None,
                });
                Some((report, 0))
            }
        }
    }

    /// The pending reports whose source was last reported a second or
    /// more ago (every pending report with `all`), each with the count of
    /// suppressed ones before it. Forgets sources quiet for a second.
    fn due(&mut self, now: Instant, all: bool) -> Vec<(Report, u64)> {
        let mut out = Vec::new();
        self.sources.retain(|_, bucket| {
            let quiet = now.saturating_duration_since(bucket.last) >= REPORT_INTERVAL;
            match bucket.pending.take() {
                Some(report) if quiet || all => {
                    out.push((report, bucket.suppressed.saturating_sub(1)));
                    bucket.suppressed = 0;
                    bucket.last = now;
                    true
                }
                pending => {
                    bucket.pending = pending;
                    !quiet
                }
            }
        });
        out
    }
}

/// Makes due rejection reports until the receiver stops.
fn report_loop(shared: &Shared) {
    while !shared.stopping() {
        thread::sleep(TICK);
        shared.flush_reports(false);
    }
}

/// The event severity of a syslog severity.
fn severity(syslog: u8) -> Severity {
    match syslog {
        0 | 1 => Severity::Critical,
        2 | 3 => Severity::Error,
        4 => Severity::Warning,
        5 => Severity::Notice,
        6 => Severity::Info,
        _ => Severity::Debug,
    }
}

fn message_event(
    m: &Message<'_>,
    peer: SocketAddr,
    transport: Transport,
    identity: &str,
    received: Timestamp,
) -> Event {
    let text = |v: Option<&str>| v.unwrap_or_default().to_owned();
    Event::new(
        catalog::INGEST_MESSAGE,
        format!("syslog message from {} over {transport}", peer.ip()),
    )
    .at(m.timestamp.unwrap_or(received))
    .severity(severity(m.severity))
    .field("source_addr", peer.ip().to_string())
    .field("source_port", u32::from(peer.port()))
    .field("transport", transport.as_str())
    .field("client_identity", identity.to_owned())
    .field("received_at", received.to_string())
    .field("facility", u32::from(m.facility))
    .field("syslog_severity", u32::from(m.severity))
    .field("hostname", text(m.hostname))
    .field("app_name", text(m.app_name))
    .field("procid", text(m.procid))
    .field("msgid", text(m.msgid))
    .field("structured_data", text(m.structured_data))
    .field("message", m.msg.clone().into_owned())
}

fn rejected_event(report: &Report, suppressed: u64) -> Event {
    Event::new(
        catalog::INGEST_REJECTED,
        format!(
            "syslog input from {} over {} rejected: {}",
            report.peer.ip(),
            report.transport,
            report.reason
        ),
    )
    .field("reason", report.reason.clone())
    .field("transport", report.transport.as_str())
    .field("source_addr", report.peer.ip().to_string())
    .field("source_port", u32::from(report.peer.port()))
    .field("suppressed", suppressed)
}

fn started_event(addrs: &LocalAddrs, client_ca: Option<bool>, config: &IngestConfig) -> Event {
    let listening: Vec<(&str, SocketAddr)> =
        [("udp", addrs.udp), ("tcp", addrs.tcp), ("tls", addrs.tls)]
            .into_iter()
            .filter_map(|(name, addr)| Some((name, addr?)))
            .collect();
    let names: Vec<&str> = listening.iter().map(|(name, _)| *name).collect();
    let described: Vec<String> = listening
        .iter()
        .map(|(name, addr)| format!("{name} {addr}"))
        .collect();
    let client_certificates = match client_ca {
        Some(true) => "required",
        Some(false) => "off",
        None => "",
    };
    let addr = |a: Option<SocketAddr>| a.map(|a| a.to_string()).unwrap_or_default();
    let mut message = format!("syslog receiver listening on {}", described.join(", "));
    if !client_certificates.is_empty() {
        message.push_str(&format!(" (TLS client certificates {client_certificates})"));
    }
    Event::new(catalog::INGEST_STARTED, message)
        .field("transports", names.join(","))
        .field("udp_address", addr(addrs.udp))
        .field("tcp_address", addr(addrs.tcp))
        .field("tls_address", addr(addrs.tls))
        .field("client_certificates", client_certificates)
        .field("max_message", config.max_message)
        .field("max_connections", config.max_connections)
}

fn is_timeout(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn oversized(len: Option<u64>, max: usize) -> String {
    match len {
        Some(len) => format!("a frame of {len} bytes is longer than max_message ({max} bytes)"),
        None => format!("a line is longer than max_message ({max} bytes)"),
    }
}

fn udp_loop(socket: &UdpSocket, shared: &Shared) {
    // One byte more than the limit tells an oversized datagram (which the
    // kernel cuts to the buffer) from one that just fits.
    let mut buf = vec![0u8; shared.max_message.saturating_add(1).min(65_536)];
    while !shared.stopping() {
        match socket.recv_from(&mut buf) {
            Ok((n, peer)) if n > shared.max_message => shared.reject(
                peer,
                Transport::Udp,
                format!(
                    "a datagram is longer than max_message ({} bytes)",
                    shared.max_message
                ),
            ),
            Ok((n, peer)) => shared.message(&buf[..n], peer, Transport::Udp, ""),
            Err(e) if is_timeout(&e) || e.kind() == io::ErrorKind::Interrupted => {}
            // Nothing a sender does makes a bound socket fail for long;
            // wait a little rather than spin.
            Err(_) => thread::sleep(TICK),
        }
    }
}

/// Takes one connection slot, or returns false when all are taken.
fn take_slot(shared: &Shared) -> bool {
    shared
        .active
        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
            (n < shared.max_connections).then_some(n + 1)
        })
        .is_ok()
}

/// Gives a connection slot back when the connection's thread ends.
struct Slot(Arc<Shared>);

impl Drop for Slot {
    fn drop(&mut self) {
        self.0.active.fetch_sub(1, Ordering::AcqRel);
    }
}

fn accept_loop(listener: &TcpListener, tls: Option<Arc<ServerConfig>>, shared: &Arc<Shared>) {
    let transport = if tls.is_some() {
        Transport::Tls
    } else {
        Transport::Tcp
    };
    let mut connections: Vec<JoinHandle<()>> = Vec::new();
    while !shared.stopping() {
        let (stream, peer) = match listener.accept() {
            Ok(accepted) => accepted,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            // WouldBlock when nobody is waiting; anything else (out of file
            // descriptors) passes with time.
            Err(_) => {
                thread::sleep(ACCEPT_POLL);
                continue;
            }
        };
        connections.retain(|c| !c.is_finished());
        if !take_slot(shared) {
            shared.reject(
                peer,
                transport,
                format!(
                    "the connection limit (max_connections {}) is reached; the connection \
                     was closed",
                    shared.max_connections
                ),
            );
            continue;
        }
        let slot = Slot(Arc::clone(shared));
        let tls = tls.clone();
        let spawned = thread::Builder::new()
            .name("vigil-ingest-conn".to_owned())
            .spawn(move || {
                let slot = slot;
                serve(stream, peer, tls, &slot.0);
            });
        match spawned {
            Ok(handle) => connections.push(handle),
            Err(e) => shared.reject(
                peer,
                transport,
                format!("no thread for the connection ({e}); the connection was closed"),
            ),
        }
    }
    for connection in connections {
        let _ = connection.join();
    }
}

/// Serves one TCP or TLS connection until it ends.
fn serve(stream: TcpStream, peer: SocketAddr, tls: Option<Arc<ServerConfig>>, shared: &Shared) {
    let setup = stream
        .set_nonblocking(false)
        .and_then(|()| stream.set_read_timeout(Some(TICK)))
        .and_then(|()| stream.set_write_timeout(Some(WRITE_TIMEOUT)));
    if setup.is_err() {
        // The socket is already unusable: the client went away.
        return;
    }
    match tls {
        None => read_frames(Source::Plain(stream), peer, Transport::Tcp, "", shared),
        Some(config) => {
            if let Some((source, identity)) = handshake(stream, peer, config, shared) {
                read_frames(source, peer, Transport::Tls, &identity, shared);
            }
        }
    }
}

/// A connection's byte stream.
enum Source {
    Plain(TcpStream),
    Tls(Box<ServerConnection>, TcpStream),
}

impl Source {
    /// Reads plaintext. A read timeout is `WouldBlock` or `TimedOut`; a TLS
    /// error is `InvalidData` wrapping the `rustls::Error`.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        match self {
            Source::Plain(stream) => stream.read(buf),
            Source::Tls(conn, sock) => loop {
                match conn.reader().read(buf) {
                    Ok(n) => return Ok(n),
                    Err(e) if e.kind() == io::ErrorKind::WouldBlock => {}
                    Err(e) => return Err(e),
                }
                write_tls(conn, sock)?;
                if conn.read_tls(sock)? == 0 {
                    return Ok(0);
                }
                if let Err(e) = conn.process_new_packets() {
                    // Tell the client why, if it still listens.
                    let _ = write_tls(conn, sock);
                    return Err(io::Error::new(io::ErrorKind::InvalidData, e));
                }
            },
        }
    }
}

/// Writes what rustls has to send.
fn write_tls(conn: &mut ServerConnection, sock: &mut TcpStream) -> io::Result<()> {
    while conn.wants_write() {
        if conn.write_tls(sock)? == 0 {
            return Err(io::ErrorKind::WriteZero.into());
        }
    }
    Ok(())
}

/// Runs the TLS handshake; returns the connection and the client's
/// identity, or reports why it failed.
fn handshake(
    mut sock: TcpStream,
    peer: SocketAddr,
    config: Arc<ServerConfig>,
    shared: &Shared,
) -> Option<(Source, String)> {
    let fail = |reason: String| shared.reject(peer, Transport::Tls, reason);
    let mut conn = match ServerConnection::new(config) {
        Ok(conn) => conn,
        Err(e) => {
            fail(format!("TLS handshake failed: {e}"));
            return None;
        }
    };
    let limit = HANDSHAKE_TIMEOUT.min(shared.idle_timeout);
    let deadline = Instant::now() + limit;
    let mut heard = false;
    while conn.is_handshaking() {
        if let Err(e) = write_tls(&mut conn, &mut sock) {
            fail(format!("TLS handshake failed: {e}"));
            return None;
        }
        match conn.read_tls(&mut sock) {
            Ok(0) => {
                if heard {
                    fail("the connection closed during the TLS handshake".to_owned());
                }
                return None;
            }
            Ok(_) => {
                heard = true;
                if let Err(e) = conn.process_new_packets() {
                    let _ = write_tls(&mut conn, &mut sock);
                    fail(format!("TLS handshake failed: {e}"));
                    return None;
                }
            }
            Err(e) if is_timeout(&e) => {
                if shared.stopping() {
                    return None;
                }
                if Instant::now() >= deadline {
                    fail(format!(
                        "the TLS handshake did not finish within {} s",
                        limit.as_secs_f64()
                    ));
                    return None;
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                if heard {
                    fail(format!("TLS handshake failed: {e}"));
                }
                return None;
            }
        }
    }
    if let Err(e) = write_tls(&mut conn, &mut sock) {
        fail(format!("TLS handshake failed: {e}"));
        return None;
    }
    let identity = conn
        .peer_certificates()
        .and_then(|certs| certs.first())
        .map(tls::identity)
        .unwrap_or_default();
    Some((Source::Tls(Box::new(conn), sock), identity))
}

/// Reads frames from a connection until it ends, fails or idles out, or
/// the receiver stops.
fn read_frames(
    mut source: Source,
    peer: SocketAddr,
    transport: Transport,
    identity: &str,
    shared: &Shared,
) {
    let mut framer = Framer::new(shared.max_message);
    let mut buf = vec![0u8; READ_BUFFER];
    let mut last_read = Instant::now();
    let end = |framer: &Framer, why: &str| match framer.finish() {
        Rest::Nothing => {}
        Rest::Message(message) => shared.message(message, peer, transport, identity),
        Rest::Truncated(_) => shared.reject(peer, transport, format!("{why} inside a frame")),
    };
    loop {
        match source.read(&mut buf) {
            Ok(0) => return end(&framer, "the connection closed"),
            Ok(n) => {
                last_read = Instant::now();
                let fed = framer.feed(&buf[..n], &mut |framed| match framed {
                    Framed::Message(message) => shared.message(message, peer, transport, identity),
                    Framed::Oversized(len) => {
                        shared.reject(peer, transport, oversized(len, shared.max_message));
                    }
                });
                if let Err(bad) = fed {
                    shared.reject(peer, transport, format!("{bad}; the connection was closed"));
                    return;
                }
            }
            Err(e) if is_timeout(&e) => {
                if shared.stopping() {
                    if framer.in_frame() {
                        shared.reject(
                            peer,
                            transport,
                            "the receiver stopped inside a frame".to_owned(),
                        );
                    }
                    return;
                }
                if last_read.elapsed() >= shared.idle_timeout {
                    return end(&framer, "the connection idled out");
                }
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                let tls = e
                    .get_ref()
                    .and_then(|inner| inner.downcast_ref::<rustls::Error>());
                match tls {
                    Some(tls) => shared.reject(
                        peer,
                        transport,
                        format!("TLS error: {tls}; the connection was closed"),
                    ),
                    None if framer.in_frame() => shared.reject(
                        peer,
                        transport,
                        format!("the connection failed inside a frame: {e}"),
                    ),
                    None => {}
                }
                return;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use vigil_event::{Overflow, Value};

    fn peer(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    fn report(p: &str, reason: &str) -> Report {
        Report {
            reason: reason.to_owned(),
            transport: Transport::Tcp,
            peer: peer(p),
        }
    }

    #[test]
    fn severities_map_as_documented() {
        let got: Vec<Severity> = (0..8).map(severity).collect();
        use Severity::*;
        assert_eq!(
            got,
            [
                Critical, Critical, Error, Error, Warning, Notice, Info, Debug
            ]
        );
    }

    #[test]
    fn limiter_reports_once_a_second_per_source_and_counts_the_rest() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        let s = Duration::from_millis;
        let first = limiter.admit(report("10.0.0.1:1", "a"), t0).unwrap();
        assert_eq!((first.0.reason.as_str(), first.1), ("a", 0));
        // Another source is reported at once.
        assert!(limiter.admit(report("10.0.0.2:1", "x"), t0).is_some());
        assert!(
            limiter
                .admit(report("10.0.0.1:2", "b"), t0 + s(100))
                .is_none()
        );
        assert!(
            limiter
                .admit(report("10.0.0.1:3", "c"), t0 + s(200))
                .is_none()
        );
        assert!(limiter.due(t0 + s(900), false).is_empty());
        // A second after the first report, the latest pending one is made,
        // with the one before it counted.
        let due = limiter.due(t0 + s(1000), false);
        assert_eq!(due.len(), 1);
        assert_eq!(
            (due[0].0.reason.as_str(), due[0].0.peer.port(), due[0].1),
            ("c", 3, 1)
        );
        // Quiet sources are forgotten; a new rejection is reported at once.
        assert!(limiter.due(t0 + s(1500), false).is_empty());
        assert_eq!(limiter.sources.len(), 1);
        assert!(limiter.due(t0 + s(2100), false).is_empty());
        assert!(limiter.sources.is_empty());
        let again = limiter
            .admit(report("10.0.0.1:4", "d"), t0 + s(2200))
            .unwrap();
        assert_eq!((again.0.reason.as_str(), again.1), ("d", 0));
        // A rejection after the window reports itself and the suppressed.
        assert!(
            limiter
                .admit(report("10.0.0.1:5", "e"), t0 + s(2300))
                .is_none()
        );
        assert!(
            limiter
                .admit(report("10.0.0.1:6", "f"), t0 + s(2400))
                .is_none()
        );
        let late = limiter
            .admit(report("10.0.0.1:7", "g"), t0 + s(3300))
            .unwrap();
        assert_eq!((late.0.reason.as_str(), late.1), ("g", 2));
        // At shutdown everything pending is made.
        assert!(
            limiter
                .admit(report("10.0.0.1:8", "h"), t0 + s(3400))
                .is_none()
        );
        let all = limiter.due(t0 + s(3400), true);
        assert_eq!(all.len(), 1);
        assert_eq!((all[0].0.reason.as_str(), all[0].1), ("h", 0));
    }

    #[test]
    fn limiter_bounds_its_sources() {
        let mut limiter = Limiter::default();
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            let ip = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            let r = Report {
                reason: "r".to_owned(),
                transport: Transport::Udp,
                peer: SocketAddr::from((ip, 1)),
            };
            assert!(limiter.admit(r, t0).is_some());
        }
        assert!(limiter.admit(report("192.0.2.1:1", "x"), t0).is_some());
        assert!(limiter.admit(report("192.0.2.2:1", "y"), t0).is_none());
        assert_eq!(limiter.sources.len(), MAX_SOURCES + 1);
    }

    #[test]
    fn message_events_carry_every_field() {
        let m = parse::parse(
            b"<165>1 2003-10-11T22:14:15.003Z mymachine.example.com evntslog 77 ID47 \
              [exampleSDID@32473 iut=\"3\"] \xEF\xBB\xBFAn entry",
        )
        .unwrap();
        let received = Timestamp::from_micros(1_800_000_000_000_000);
        let ev = message_event(
            &m,
            peer("192.0.2.7:5514"),
            Transport::Tls,
            "CN=app",
            received,
        );
        assert_eq!(ev.kind, catalog::INGEST_MESSAGE);
        assert_eq!(ev.severity, Severity::Notice);
        assert_eq!(
            ev.time,
            Timestamp::parse_rfc3339("2003-10-11T22:14:15.003Z").unwrap()
        );
        let fields: Vec<(&str, String)> = ev
            .fields
            .iter()
            .map(|f| (&*f.key, f.value.to_string()))
            .collect();
        let want = [
            ("source_addr", "192.0.2.7"),
            ("source_port", "5514"),
            ("transport", "tls"),
            ("client_identity", "CN=app"),
            ("received_at", "2027-01-15T08:00:00.000000Z"),
            ("facility", "20"),
            ("syslog_severity", "5"),
            ("hostname", "mymachine.example.com"),
            ("app_name", "evntslog"),
            ("procid", "77"),
            ("msgid", "ID47"),
            ("structured_data", "[exampleSDID@32473 iut=\"3\"]"),
            ("message", "An entry"),
        ];
        let want: Vec<(&str, String)> = want.iter().map(|(k, v)| (*k, v.to_string())).collect();
        assert_eq!(fields, want);
        assert_eq!(ev.field_value("facility"), Some(&Value::Int(20)));

        // No valid timestamp: the time of reception.
        let m = parse::parse(b"<15>Oct 11 22:14:15 host app: x").unwrap();
        let ev = message_event(&m, peer("[::1]:9"), Transport::Udp, "", received);
        assert_eq!((ev.time, ev.severity), (received, Severity::Debug));
        assert_eq!(ev.field_value("source_addr"), Some(&Value::from("::1")));
        assert_eq!(ev.field_value("msgid"), Some(&Value::from("")));
    }

    #[test]
    fn configurations_that_cannot_work_are_refused() {
        let (emitter, _rx) = Emitter::channel(16, Overflow::Drop);
        let refuse = |config: IngestConfig| match Ingest::start(config, emitter.clone()) {
            Err(IngestError::Config { reason }) => reason,
            other => panic!("{other:?}"),
        };
        assert!(refuse(IngestConfig::default()).contains("no transport"));
        let mut config = IngestConfig {
            udp: Some(peer("127.0.0.1:0")),
            max_message: 100,
            ..IngestConfig::default()
        };
        assert!(refuse(config.clone()).contains("max_message"));
        config.max_message = DEFAULT_MAX_MESSAGE;
        config.max_connections = 0;
        assert!(refuse(config.clone()).contains("max_connections"));
        config.max_connections = 1;
        config.idle_timeout = Duration::ZERO;
        assert!(refuse(config).contains("idle_timeout"));

        let config = IngestConfig {
            tls: Some(IngestTls::new(
                peer("127.0.0.1:0"),
                "/nonexistent/cert.pem",
                "/nonexistent/key.pem",
            )),
            ..IngestConfig::default()
        };
        match Ingest::start(config, emitter) {
            Err(e @ IngestError::Tls { .. }) => {
                assert!(e.to_string().contains("/nonexistent/cert.pem"), "{e}")
            }
            other => panic!("{other:?}"),
        }
    }
}
