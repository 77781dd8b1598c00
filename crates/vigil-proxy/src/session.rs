//! One client session: the startup phase (TLS, cancel requests, the
//! StartupMessage), the connection to PostgreSQL, then the relay in both
//! directions, with every message the session's events need decoded on the
//! way and everything else passed through as bytes.

use std::collections::{HashMap, VecDeque};
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use vigil_detect::poison::{Reaction, StreamScanner};
use vigil_event::{Event, Format, Kind, Outcome, Session, catalog};
use vigil_pg::{
    Authentication, BackendMessage, Diagnostic, Framer, FrontendMessage, MessageTag, Severity,
    Target,
};

use crate::config::{ClientTlsMode, PoisonConfig, UpstreamTlsMode};
use crate::race::{First, race};
use crate::report::Reporter;
use crate::server::{Runtime, Shared};
use crate::tls::{self, Side};
use crate::track::{Relay, Tracker};

/// Bytes read at a time.
const READ_CHUNK: usize = 8 * 1024;

/// A DataRow or CopyData longer than this is passed on as it arrives
/// rather than buffered whole.
const STREAM_ABOVE: usize = 64 * 1024;

/// A connection, in clear or in TLS.
#[derive(Debug)]
pub(crate) enum Stream {
    Plain(TcpStream),
    Server(Box<tokio_rustls::server::TlsStream<TcpStream>>),
    Client(Box<tokio_rustls::client::TlsStream<TcpStream>>),
}

impl AsyncRead for Stream {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Server(s) => Pin::new(s).poll_read(cx, buf),
            Stream::Client(s) => Pin::new(s).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Stream {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Server(s) => Pin::new(s).poll_write(cx, buf),
            Stream::Client(s) => Pin::new(s).poll_write(cx, buf),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_flush(cx),
            Stream::Server(s) => Pin::new(s).poll_flush(cx),
            Stream::Client(s) => Pin::new(s).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Stream::Plain(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Server(s) => Pin::new(s).poll_shutdown(cx),
            Stream::Client(s) => Pin::new(s).poll_shutdown(cx),
        }
    }
}

/// Why a session ended.
#[derive(Debug)]
enum End {
    ClientClosed,
    ServerClosed,
    Shutdown,
    Violation(String),
    /// A poison reaction closed the session, maybe in the middle of a
    /// message passed on in pieces (then no error can follow it).
    Poisoned {
        why: &'static str,
        mid_message: bool,
    },
    Io(io::Error),
}

impl End {
    fn reason(&self) -> String {
        match self {
            End::ClientClosed => "client closed the connection".to_owned(),
            End::ServerClosed => "PostgreSQL closed the connection".to_owned(),
            End::Shutdown => "vigil is shutting down".to_owned(),
            End::Violation(why) => format!("protocol violation: {why}"),
            End::Poisoned { why, .. } => format!("closed by vigil: {why}"),
            End::Io(e) => format!("connection error: {e}"),
        }
    }
}

/// Serves one client connection to its end.
pub(crate) async fn serve(shared: Arc<Shared>, tcp: TcpStream, peer: SocketAddr) {
    let local = tcp.local_addr().ok();
    let _ = tcp.set_nodelay(true);
    let rt = shared.runtime();
    let metrics = Arc::clone(shared.reporter.metrics());
    let started = Instant::now();
    let id = shared.next_session_id();
    let startup = timeout(
        rt.config.startup_timeout,
        startup(&shared, &rt, tcp, peer, local, id),
    )
    .await;
    let Ok(Some(mut s)) = startup else {
        if startup.is_err() {
            shared.reporter.emit(
                Event::new(
                    catalog::CLIENT_REJECTED,
                    format!("client {peer} sent no startup message in time"),
                )
                .field("client", peer.to_string()),
            );
            metrics.connection_rejected();
        }
        return;
    };
    metrics.connection_opened();
    let session = Arc::clone(&s.session);
    let upstream = match connect_upstream(&shared, &rt, &session).await {
        Ok(up) => up,
        Err(message) => {
            let _ = send_error(&mut s.client, Severity::Fatal, "08006", &message).await;
            disconnected(
                &shared,
                &session,
                started,
                0,
                0,
                0,
                "PostgreSQL unreachable",
            );
            metrics.connection_closed();
            return;
        }
    };
    // SCRAM channel binding (tls-server-end-point) survives the proxy only
    // when vigil shows clients the certificate PostgreSQL shows vigil.
    let keep_plus = match (&upstream, &rt.own_cert) {
        (Stream::Client(tls), Some(own)) if session.tls_version.is_some() => tls
            .get_ref()
            .1
            .peer_certificates()
            .and_then(|c| c.first())
            .is_some_and(|c| c.as_ref() == own.as_slice()),
        _ => false,
    };
    let (end, stats) = relay(&shared, &rt, s, upstream, keep_plus).await;
    if let Some(key) = stats.cancel_key {
        shared.forget_cancel_key(&key);
    }
    if let End::Violation(why) = &end {
        metrics.protocol_error();
        shared.reporter.emit(
            Event::new(catalog::PROTOCOL_VIOLATION, format!("session ended: {why}"))
                .session(Arc::clone(&session)),
        );
    }
    disconnected(
        &shared,
        &session,
        started,
        stats.from_client,
        stats.from_server,
        stats.statements,
        &end.reason(),
    );
    if let Some(a) = &rt.config.detection.anomalies {
        a.on_disconnect(session.id);
    }
    metrics.connection_closed();
}

fn disconnected(
    shared: &Shared,
    session: &Arc<Session>,
    started: Instant,
    from_client: u64,
    from_server: u64,
    statements: u64,
    reason: &str,
) {
    let duration = i64::try_from(started.elapsed().as_millis()).unwrap_or(i64::MAX);
    let int = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
    shared.reporter.emit(
        Event::new(
            catalog::CLIENT_DISCONNECTED,
            format!("session {} ended: {reason}", session.id),
        )
        .session(Arc::clone(session))
        .field("duration_ms", duration)
        .field("bytes_from_client", int(from_client))
        .field("bytes_from_server", int(from_server))
        .field("statements", int(statements))
        .field("reason", reason.to_owned()),
    );
}

/// A client past its StartupMessage.
struct Started {
    client: Stream,
    /// The StartupMessage, to forward as it came.
    startup: BytesMut,
    /// What the client sent after it.
    rest: BytesMut,
    session: Arc<Session>,
}

async fn startup(
    shared: &Arc<Shared>,
    rt: &Runtime,
    tcp: TcpStream,
    peer: SocketAddr,
    local: Option<SocketAddr>,
    id: u64,
) -> Option<Started> {
    let reporter = &shared.reporter;
    if !shared.admit() {
        let mut client = Stream::Plain(tcp);
        let _ = send_error(
            &mut client,
            Severity::Fatal,
            "53300",
            "vigil: too many connections; try again later",
        )
        .await;
        reporter.emit(
            Event::new(
                catalog::CLIENT_REJECTED,
                format!("client {peer} refused: too many connections"),
            )
            .field("client", peer.to_string())
            .field("reason", "max_connections"),
        );
        reporter.metrics().connection_rejected();
        return None;
    }
    let mut client = Stream::Plain(tcp);
    let mut tls_info: Option<(String, String, Option<String>)> = None;
    let mut buf = BytesMut::with_capacity(1024);
    let mut framer = Framer::frontend();

    // PostgreSQL 17's direct TLS: a ClientHello instead of an SSLRequest.
    if let (Stream::Plain(tcp), Some(acceptor)) = (&client, &rt.acceptor) {
        let mut first = [0u8; 1];
        if tcp.peek(&mut first).await.ok() == Some(1) && vigil_pg::is_direct_tls(&first) {
            let Stream::Plain(tcp) = client else {
                return None;
            };
            let (stream, info) = accept_tls(shared, acceptor, tcp, peer).await?;
            client = stream;
            tls_info = Some(info);
        }
    }

    loop {
        let frame = loop {
            match framer.next(&mut buf) {
                Ok(Some(frame)) => break frame,
                Ok(None) => {}
                Err(e) => {
                    violation(shared, peer, &e.to_string());
                    let _ = send_error(&mut client, Severity::Fatal, "08P01", &e.to_string()).await;
                    return None;
                }
            }
            buf.reserve(READ_CHUNK);
            match client.read_buf(&mut buf).await {
                Ok(0) | Err(_) => return None,
                Ok(_) => {}
            }
        };
        let msg = match frame.frontend() {
            Ok(msg) => msg,
            Err(e) => {
                violation(shared, peer, &e.to_string());
                let _ = send_error(&mut client, Severity::Fatal, "08P01", &e.to_string()).await;
                return None;
            }
        };
        match msg {
            FrontendMessage::SslRequest => {
                let acceptor = match (&client, &rt.acceptor) {
                    (Stream::Plain(_), Some(a)) => a,
                    _ => {
                        client.write_all(b"N").await.ok()?;
                        continue;
                    }
                };
                if !buf.is_empty() {
                    // Bytes sent in clear after SSLRequest would be taken
                    // as if they came through TLS.
                    violation(
                        shared,
                        peer,
                        "data after SSLRequest, before the TLS handshake",
                    );
                    return None;
                }
                client.write_all(b"S").await.ok()?;
                let Stream::Plain(tcp) = client else {
                    return None;
                };
                let (stream, info) = accept_tls(shared, acceptor, tcp, peer).await?;
                client = stream;
                tls_info = Some(info);
            }
            FrontendMessage::GssEncRequest => {
                client.write_all(b"N").await.ok()?;
            }
            FrontendMessage::CancelRequest(c) => {
                shared
                    .cancel(
                        c.process_id,
                        c.secret_key.as_bytes(),
                        frame.as_bytes(),
                        peer,
                    )
                    .await;
                return None;
            }
            FrontendMessage::Startup(s) => {
                let (tls_version, tls_cipher, identity) = match tls_info.clone() {
                    Some((v, c, i)) => (Some(v), Some(c), i),
                    None => (None, None, None),
                };
                let boxed = |s: Option<&str>| s.map(Box::<str>::from);
                let session = Arc::new(Session {
                    id,
                    client: Some(peer),
                    server: local,
                    client_identity: boxed(identity.as_deref()),
                    db_user: boxed(s.user()),
                    database: boxed(s.database().or(s.user())),
                    application: boxed(s.application_name()),
                    tls_version: boxed(tls_version.as_deref()),
                    tls_cipher: boxed(tls_cipher.as_deref()),
                });
                let mut ev = Event::new(
                    catalog::CLIENT_CONNECTED,
                    format!(
                        "client {peer} connected as {} to database {}{}",
                        s.user().unwrap_or("?"),
                        session.database.as_deref().unwrap_or("?"),
                        match &tls_version {
                            Some(v) => format!(" over {v}"),
                            None => " without TLS".to_owned(),
                        }
                    ),
                )
                .session(Arc::clone(&session))
                .field("protocol_version", {
                    let v = s.version;
                    format!("{}.{}", v.major, v.minor)
                });
                if s.param("replication").is_some() {
                    ev = ev.field("replication", true);
                }
                reporter.emit(ev);
                if let Some(a) = &rt.config.detection.anomalies {
                    let info = vigil_detect::anomaly::ConnectInfo {
                        user: s.user().unwrap_or(""),
                        application: s.application_name().unwrap_or(""),
                        source: peer.ip(),
                        tls: tls_version.as_deref(),
                        session: Some(&session),
                    };
                    for event in a.on_connect(&info, Instant::now()) {
                        reporter.emit(event);
                    }
                }
                let required = rt
                    .config
                    .client_tls
                    .as_ref()
                    .is_some_and(|t| t.mode == ClientTlsMode::Require);
                if required && tls_info.is_none() {
                    reporter.emit(
                        Event::new(
                            catalog::TLS_CLIENT_REQUIRED,
                            format!("client {peer} refused: it did not use TLS, which is required"),
                        )
                        .session(Arc::clone(&session)),
                    );
                    reporter.metrics().tls_failed();
                    let _ = send_error(
                        &mut client,
                        Severity::Fatal,
                        "28000",
                        "vigil requires TLS: connect with sslmode=require or stronger",
                    )
                    .await;
                    return None;
                }
                let startup = BytesMut::from(frame.as_bytes());
                return Some(Started {
                    client,
                    startup,
                    rest: buf,
                    session,
                });
            }
            _ => {
                violation(
                    shared,
                    peer,
                    "a message other than a startup packet came first",
                );
                return None;
            }
        }
    }
}

fn violation(shared: &Shared, peer: SocketAddr, why: &str) {
    shared.reporter.metrics().protocol_error();
    shared.reporter.emit(
        Event::new(
            catalog::PROTOCOL_VIOLATION,
            format!("client {peer}: {why}; connection closed"),
        )
        .field("client", peer.to_string()),
    );
}

/// The TLS handshake with a client; on failure its event.
async fn accept_tls(
    shared: &Shared,
    acceptor: &tokio_rustls::TlsAcceptor,
    tcp: TcpStream,
    peer: SocketAddr,
) -> Option<(Stream, (String, String, Option<String>))> {
    match acceptor.accept(tcp).await {
        Ok(stream) => {
            let conn = stream.get_ref().1;
            let version = conn
                .protocol_version()
                .map(tls::version_name)
                .unwrap_or_default();
            let cipher = conn
                .negotiated_cipher_suite()
                .map(|c| format!("{:?}", c.suite()))
                .unwrap_or_default();
            let identity = conn
                .peer_certificates()
                .and_then(|c| c.first())
                .map(tls::identity);
            Some((
                Stream::Server(Box::new(stream)),
                (version, cipher, identity),
            ))
        }
        Err(e) => {
            let (kind, reason) = tls::classify(&e, Side::Client);
            shared.reporter.metrics().tls_failed();
            shared.reporter.emit(
                Event::new(
                    kind,
                    format!("TLS handshake with client {peer} failed: {reason}"),
                )
                .field("client", peer.to_string())
                .field("reason", reason),
            );
            if let Some(a) = &shared.runtime().config.detection.anomalies {
                for event in a.on_tls_failed(peer.ip(), None, Instant::now()) {
                    shared.reporter.emit(event);
                }
            }
            None
        }
    }
}

/// Connects to PostgreSQL, with TLS as configured; on failure, the event
/// and the message for the client.
async fn connect_upstream(
    shared: &Shared,
    rt: &Runtime,
    session: &Arc<Session>,
) -> Result<Stream, String> {
    let reporter = &shared.reporter;
    let upstream = &rt.config.upstream;
    let failed = |kind, why: String| {
        reporter.metrics().upstream_failed();
        reporter.emit(
            Event::new(
                kind,
                format!("cannot connect to PostgreSQL at {upstream}: {why}"),
            )
            .session(Arc::clone(session))
            .field("upstream", upstream.clone())
            .field("reason", why),
        );
        "vigil cannot connect to the database server; see vigil's log".to_owned()
    };
    let tcp = match timeout(
        rt.config.connect_timeout,
        TcpStream::connect(upstream.as_str()),
    )
    .await
    {
        Ok(Ok(tcp)) => tcp,
        Ok(Err(e)) => return Err(failed(catalog::UPSTREAM_CONNECT_FAILED, e.to_string())),
        Err(_) => {
            return Err(failed(
                catalog::UPSTREAM_CONNECT_FAILED,
                format!("no answer within {:?}", rt.config.connect_timeout),
            ));
        }
    };
    let _ = tcp.set_nodelay(true);
    let Some(connector) = &rt.connector else {
        return Ok(Stream::Plain(tcp));
    };
    let mut tcp = tcp;
    let mut req = BytesMut::new();
    req.extend_from_slice(&8u32.to_be_bytes());
    req.extend_from_slice(&vigil_pg::SSL_REQUEST_CODE.to_be_bytes());
    let answer = async {
        tcp.write_all(&req).await?;
        let mut b = [0u8; 1];
        tcp.read_exact(&mut b).await?;
        Ok::<u8, io::Error>(b[0])
    };
    match timeout(rt.config.connect_timeout, answer).await {
        Ok(Ok(b'S')) => {}
        Ok(Ok(b'N')) if rt.config.upstream_tls.mode == UpstreamTlsMode::Prefer => {
            return Ok(Stream::Plain(tcp));
        }
        Ok(Ok(b'N')) => {
            return Err(failed(
                catalog::TLS_DATABASE_UNSUPPORTED,
                "PostgreSQL does not accept TLS; enable ssl there or set upstream tls = \"disable\""
                    .to_owned(),
            ));
        }
        Ok(Ok(other)) => {
            return Err(failed(
                catalog::UPSTREAM_CONNECT_FAILED,
                format!("unexpected answer {other:#04x} to SSLRequest"),
            ));
        }
        Ok(Err(e)) => return Err(failed(catalog::UPSTREAM_CONNECT_FAILED, e.to_string())),
        Err(_) => {
            return Err(failed(
                catalog::UPSTREAM_CONNECT_FAILED,
                "no answer to SSLRequest".to_owned(),
            ));
        }
    }
    let name: ServerName<'static> = rt.server_name.clone();
    match connector.connect(name, tcp).await {
        Ok(stream) => Ok(Stream::Client(Box::new(stream))),
        Err(e) => {
            let (kind, reason) = tls::classify(&e, Side::Database);
            reporter.metrics().tls_failed();
            Err(failed(kind, reason))
        }
    }
}

/// Writes an ErrorResponse to a client.
async fn send_error(
    stream: &mut (impl AsyncWrite + Unpin),
    severity: Severity,
    sqlstate: &str,
    message: &str,
) -> io::Result<()> {
    let mut out = BytesMut::new();
    Diagnostic::write_error(&mut out, severity, sqlstate, message)
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e.to_string()))?;
    stream.write_all(&out).await?;
    stream.flush().await
}

/// What a finished relay counted.
#[derive(Debug, Default)]
struct RelayStats {
    from_client: u64,
    from_server: u64,
    statements: u64,
    cancel_key: Option<(i32, Vec<u8>)>,
}

/// Session state both directions share.
#[derive(Debug)]
struct State {
    tracker: Tracker,
    authenticated: bool,
    auth_method: &'static str,
    cancel_key: Option<(i32, Vec<u8>)>,
    /// Relay SCRAM-SHA-256-PLUS: both TLS connections show the same
    /// certificate.
    keep_channel_binding: bool,
    /// The anomaly detectors, for failed logins.
    anomalies: Option<Arc<vigil_detect::anomaly::Anomalies>>,
    /// The server sent its first ReadyForQuery.
    ready: bool,
    /// Poison records to look for, when configured.
    poison: Option<PoisonWatch>,
}

async fn relay(
    shared: &Arc<Shared>,
    rt: &Runtime,
    s: Started,
    upstream: Stream,
    keep_channel_binding: bool,
) -> (End, RelayStats) {
    let Started {
        client,
        startup,
        rest,
        session,
    } = s;
    let state = Mutex::new(State {
        tracker: Tracker::new(
            Arc::clone(&session),
            shared.reporter.clone(),
            rt.config.coverage,
            rt.config.detection.clone(),
        ),
        authenticated: false,
        auth_method: "trust",
        cancel_key: None,
        keep_channel_binding,
        anomalies: rt.config.detection.anomalies.clone(),
        ready: false,
        poison: rt.config.poison.clone().map(PoisonWatch::new),
    });
    let (mut cr, mut cw) = tokio::io::split(client);
    let (mut sr, mut sw) = tokio::io::split(upstream);
    let mut from_client = 0u64;
    let mut from_server = 0u64;
    let mut closing = shared.closing();
    let end = {
        let c2s = async {
            sw.write_all(&startup).await.map_err(End::Io)?;
            from_client += startup.len() as u64;
            let metrics = shared.reporter.metrics();
            metrics.bytes(startup.len() as u64, 0);
            client_to_server(
                shared,
                &session,
                (&mut cr, &mut sw),
                rest,
                &state,
                &mut from_client,
                metrics,
            )
            .await
        };
        let s2c = server_to_client(shared, &session, &mut sr, &mut cw, &state, &mut from_server);
        match race(c2s, s2c, closing.wait_for(|c| *c)).await {
            First::A(r) => r.err().unwrap_or(End::ClientClosed),
            First::B(r) => r.err().unwrap_or(End::ServerClosed),
            First::C(_) => End::Shutdown,
        }
    };
    if matches!(end, End::Shutdown) {
        let _ = send_error(
            &mut cw,
            Severity::Fatal,
            "57P01",
            "terminating connection because vigil is shutting down",
        )
        .await;
    }
    if let End::Violation(why) = &end {
        let _ = send_error(&mut cw, Severity::Fatal, "08P01", &format!("vigil: {why}")).await;
    }
    if matches!(
        end,
        End::Poisoned {
            mid_message: false,
            ..
        }
    ) {
        let _ = send_error(
            &mut cw,
            Severity::Fatal,
            "42501",
            "vigil: permission denied; the session was closed by a security policy",
        )
        .await;
    }
    let _ = sw.shutdown().await;
    let _ = cw.shutdown().await;
    let st = state.into_inner().unwrap_or_else(PoisonError::into_inner);
    (
        end,
        RelayStats {
            from_client,
            from_server,
            statements: st.tracker.count,
            cancel_key: st.cancel_key,
        },
    )
}

/// What to do with the bytes scanned so far.
enum Step {
    /// Forward `upto` bytes, then read more.
    Read,
    /// Forward `upto` bytes, drop the next `frame_len`, send `bytes` instead.
    Replace { frame_len: usize, bytes: BytesMut },
    /// Forward everything; the current message continues for `skip` more
    /// bytes, passed on as they arrive.
    Stream { skip: usize },
    /// Forward `upto` bytes, withhold the rest and close the session: the
    /// next message carries a poison value.
    Block,
    /// Forward `upto` bytes, then track the simple query that ends there
    /// (its last `frame_len` bytes), then scan on: redacting, inspecting
    /// and reporting it overlap its execution.
    Track { frame_len: usize },
}

async fn client_to_server(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    (from, to): (&mut ReadHalf<Stream>, &mut WriteHalf<Stream>),
    mut buf: BytesMut,
    state: &Mutex<State>,
    count: &mut u64,
    metrics: &crate::metrics::Metrics,
) -> Result<(), End> {
    let mut framer = Framer::frontend();
    framer.skip_startup();
    let mut skip = 0usize;
    loop {
        if skip > 0 && !buf.is_empty() {
            let n = skip.min(buf.len());
            to.write_all(&buf[..n]).await.map_err(End::Io)?;
            buf.advance(n);
            skip -= n;
        }
        while skip == 0 {
            let (upto, step, terminate) = {
                let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                scan_frontend(shared, session, &framer, &buf, &mut st)?
            };
            if let Step::Track { frame_len } = step {
                // What the socket takes at once; the query is tracked
                // before waiting for more, so no answer to it can come
                // back untracked.
                let sent = write_now(to, &buf[..upto]).await.map_err(End::Io)?;
                {
                    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                    let frame = &buf[upto - frame_len..upto];
                    let msg = FrontendMessage::decode(MessageTag::QUERY, &frame[5..])
                        .map_err(|e| End::Violation(e.to_string()))?;
                    st.tracker.frontend(&msg);
                }
                to.write_all(&buf[sent..upto]).await.map_err(End::Io)?;
                buf.advance(upto);
                continue;
            }
            if upto > 0 {
                to.write_all(&buf[..upto]).await.map_err(End::Io)?;
                buf.advance(upto);
            }
            if terminate {
                return Ok(());
            }
            match step {
                Step::Stream { skip: more } => {
                    to.write_all(&buf).await.map_err(End::Io)?;
                    buf.clear();
                    skip = more;
                }
                Step::Replace { frame_len, bytes } => {
                    to.write_all(&bytes).await.map_err(End::Io)?;
                    buf.advance(frame_len);
                }
                _ => break,
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let n = from.read_buf(&mut buf).await.map_err(End::Io)?;
        if n == 0 {
            if skip > 0 {
                return Err(End::Violation(
                    "the client closed inside a message".to_owned(),
                ));
            }
            return framer
                .finish(&buf)
                .map_err(|e| End::Violation(e.to_string()));
        }
        *count += n as u64;
        metrics.bytes(n as u64, 0);
    }
}

/// Scans whole client messages at the front of `buf`: returns how many
/// bytes to forward, what then, and whether the client said Terminate.
fn scan_frontend(
    shared: &Shared,
    session: &Arc<Session>,
    framer: &Framer,
    buf: &[u8],
    st: &mut State,
) -> Result<(usize, Step, bool), End> {
    let mut pos = 0;
    loop {
        let rest = &buf[pos..];
        let Some(header) = framer
            .peek(rest)
            .map_err(|e| End::Violation(e.to_string()))?
        else {
            return Ok((pos, Step::Read, false));
        };
        if rest.len() < header.frame_len {
            if header.tag == Some(MessageTag::COPY_DATA) && header.frame_len > STREAM_ABOVE {
                return Ok((
                    pos,
                    Step::Stream {
                        skip: header.frame_len - rest.len(),
                    },
                    false,
                ));
            }
            return Ok((pos, Step::Read, false));
        }
        let frame = &rest[..header.frame_len];
        let tag = header.tag.unwrap_or(MessageTag(0));
        let start = pos;
        pos += header.frame_len;
        if st.tracker.skipping() && tag != MessageTag::SYNC {
            // The rest of a denied extended-query batch.
            return Ok((
                start,
                Step::Replace {
                    frame_len: header.frame_len,
                    bytes: BytesMut::new(),
                },
                false,
            ));
        }
        if matches!(
            tag,
            MessageTag::COPY_DATA | MessageTag::AUTH_RESPONSE | MessageTag::FLUSH
        ) {
            continue;
        }
        let msg =
            FrontendMessage::decode(tag, &frame[5..]).map_err(|e| End::Violation(e.to_string()))?;
        if matches!(msg, FrontendMessage::Terminate) {
            return Ok((pos, Step::Read, true));
        }
        if let Some(w) = st.poison.as_mut() {
            w.frontend(&msg);
            let source = match tag {
                MessageTag::QUERY => Some("query"),
                MessageTag::PARSE => Some("parse"),
                MessageTag::BIND => Some("bind"),
                MessageTag::FUNCTION_CALL => Some("function_call"),
                _ => None,
            };
            if let Some(source) = source
                && w.scan(frame)
            {
                let fingerprint = w.statement_fingerprint(&msg);
                if poison_hit(
                    shared,
                    session,
                    w,
                    catalog::POISON_QUERIED,
                    source,
                    fingerprint,
                ) {
                    return Err(End::Poisoned {
                        why: "a statement mentioned a poison record",
                        mid_message: false,
                    });
                }
            }
        }
        if tag == MessageTag::QUERY && !st.tracker.can_deny() {
            return Ok((
                pos,
                Step::Track {
                    frame_len: header.frame_len,
                },
                false,
            ));
        }
        match st.tracker.frontend(&msg) {
            Relay::Forward => {}
            Relay::Drop => {
                return Ok((
                    start,
                    Step::Replace {
                        frame_len: header.frame_len,
                        bytes: BytesMut::new(),
                    },
                    false,
                ));
            }
            Relay::Sync => {
                return Ok((
                    start,
                    Step::Replace {
                        frame_len: header.frame_len,
                        bytes: BytesMut::from(&b"S\0\0\0\x04"[..]),
                    },
                    false,
                ));
            }
        }
    }
}

/// Writes what `to` takes of `data` without waiting: 0 when it takes
/// nothing now.
async fn write_now(to: &mut WriteHalf<Stream>, data: &[u8]) -> io::Result<usize> {
    std::future::poll_fn(|cx| match Pin::new(&mut *to).poll_write(cx, data) {
        Poll::Pending => Poll::Ready(Ok(0)),
        ready => ready,
    })
    .await
}

async fn server_to_client(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    from: &mut ReadHalf<Stream>,
    to: &mut WriteHalf<Stream>,
    state: &Mutex<State>,
    count: &mut u64,
) -> Result<(), End> {
    let framer = Framer::backend();
    let mut buf = BytesMut::with_capacity(READ_CHUNK);
    // Bytes of a long message still to pass on as they arrive.
    let mut skip = 0usize;
    // Of those, the bytes at the front of `buf` already scanned but held
    // back, so that a poison value split between reads never reaches the
    // client whole when the reaction is to block.
    let mut held = 0usize;
    loop {
        if skip > 0 && buf.len() > held {
            let n = skip.min(buf.len());
            let hold = {
                let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                scan_stream(shared, session, &buf[held..n], &mut st)?
            };
            let send = if n < skip { n.saturating_sub(hold) } else { n };
            if send > 0 {
                to.write_all(&buf[..send]).await.map_err(End::Io)?;
                buf.advance(send);
                skip -= send;
            }
            held = n - send;
        }
        if skip == 0 {
            loop {
                let (upto, step) = {
                    let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                    scan_backend(shared, session, &framer, &buf, &mut st)?
                };
                if upto > 0 {
                    to.write_all(&buf[..upto]).await.map_err(End::Io)?;
                    buf.advance(upto);
                }
                match step {
                    // (Only the client's scan asks for Track.)
                    Step::Read | Step::Track { .. } => break,
                    Step::Replace { frame_len, bytes } => {
                        to.write_all(&bytes).await.map_err(End::Io)?;
                        buf.advance(frame_len);
                    }
                    Step::Stream { skip: more } => {
                        skip = buf.len() + more;
                        held = 0;
                        break;
                    }
                    Step::Block => {
                        return Err(End::Poisoned {
                            why: "a poison record was withheld",
                            mid_message: false,
                        });
                    }
                }
            }
            if skip > 0 {
                continue;
            }
        }
        if buf.capacity() - buf.len() < READ_CHUNK / 2 {
            buf.reserve(READ_CHUNK);
        }
        let n = from.read_buf(&mut buf).await.map_err(End::Io)?;
        if n == 0 {
            return Ok(());
        }
        *count += n as u64;
        shared.reporter.metrics().bytes(0, n as u64);
    }
}

/// Scans the next piece of a message passed on as it arrives; returns how
/// many of the bytes scanned so far to hold back (block reaction), or ends
/// the session when they complete a poison value and the reaction blocks.
fn scan_stream(
    shared: &Shared,
    session: &Arc<Session>,
    new: &[u8],
    st: &mut State,
) -> Result<usize, End> {
    let Some(w) = st.poison.as_mut() else {
        return Ok(0);
    };
    w.hits.clear();
    if w.stream.feed(&w.config.scanner, new, &mut w.hits) {
        let source = w.stream_source;
        if (w.block || !w.reported) && report_access(shared, session, w, source) {
            return Err(End::Poisoned {
                why: "a poison record was withheld",
                mid_message: true,
            });
        }
    }
    Ok(if w.block { w.stream.overlap() } else { 0 })
}

/// Scans whole server messages at the front of `buf`.
fn scan_backend(
    shared: &Arc<Shared>,
    session: &Arc<Session>,
    framer: &Framer,
    buf: &[u8],
    st: &mut State,
) -> Result<(usize, Step), End> {
    let mut pos = 0;
    loop {
        let rest = &buf[pos..];
        let Some(header) = framer
            .peek(rest)
            .map_err(|e| End::Violation(format!("PostgreSQL sent an invalid message: {e}")))?
        else {
            return Ok((pos, Step::Read));
        };
        let tag = header.tag.unwrap_or(MessageTag(0));
        if rest.len() < header.frame_len {
            if matches!(tag, MessageTag::DATA_ROW | MessageTag::COPY_DATA)
                && header.frame_len > STREAM_ABOVE
            {
                if tag == MessageTag::DATA_ROW {
                    st.tracker.row();
                }
                if let Some(w) = st.poison.as_mut() {
                    w.rows += 1;
                    w.stream.reset();
                    w.stream_source = if tag == MessageTag::DATA_ROW {
                        "data_row"
                    } else {
                        "copy_data"
                    };
                }
                return Ok((
                    pos,
                    Step::Stream {
                        skip: header.frame_len - rest.len(),
                    },
                ));
            }
            return Ok((pos, Step::Read));
        }
        // A statement vigil refused gets its error here, in order.
        if let Some(bytes) = st.tracker.injection() {
            return Ok((
                pos,
                Step::Replace {
                    frame_len: 0,
                    bytes,
                },
            ));
        }
        let frame = &rest[..header.frame_len];
        match tag {
            MessageTag::DATA_ROW | MessageTag::COPY_DATA => {
                if tag == MessageTag::DATA_ROW {
                    st.tracker.row();
                }
                if let Some(w) = st.poison.as_mut() {
                    w.rows += 1;
                    if w.scan(frame) && (w.block || !w.reported) {
                        let source = if tag == MessageTag::DATA_ROW {
                            "data_row"
                        } else {
                            "copy_data"
                        };
                        if report_access(shared, session, w, source) {
                            return Ok((pos, Step::Block));
                        }
                    }
                }
                pos += header.frame_len;
                continue;
            }
            MessageTag::NOTICE_RESPONSE | MessageTag::NOTIFICATION_RESPONSE => {
                pos += header.frame_len;
                continue;
            }
            _ => {}
        }
        let msg = BackendMessage::decode(tag, &frame[5..])
            .map_err(|e| End::Violation(format!("PostgreSQL sent an invalid message: {e}")))?;
        if !st.authenticated {
            if let Some(replacement) = authentication(shared, session, &msg, st) {
                return Ok((
                    pos,
                    Step::Replace {
                        frame_len: header.frame_len,
                        bytes: replacement,
                    },
                ));
            }
        } else {
            match &msg {
                BackendMessage::ReadyForQuery(_) => st.ready = true,
                // Authenticated, but the server refuses the session before
                // it is ready: an unknown database, too many connections,
                // a role that may not log in.
                BackendMessage::ErrorResponse(d) if !st.ready => {
                    startup_refused(shared, session, d, st);
                }
                _ => {}
            }
            st.tracker.backend(&msg);
            if let Some(w) = st.poison.as_mut() {
                w.backend(&msg);
            }
        }
        if let BackendMessage::BackendKeyData(k) = &msg {
            let key = (k.process_id, k.secret_key.as_bytes().to_vec());
            shared.remember_cancel_key(key.clone(), Arc::clone(session));
            st.cancel_key = Some(key);
        }
        if let BackendMessage::ParameterStatus(_) = &msg {
            st.tracker.backend(&msg);
        }
        pos += header.frame_len;
    }
}

/// A FATAL error after AuthenticationOk and before the first
/// ReadyForQuery: the login failed although the credentials were right.
fn startup_refused(shared: &Shared, session: &Arc<Session>, d: &Diagnostic<'_>, st: &State) {
    let reporter = &shared.reporter;
    reporter.metrics().auth_failed();
    reporter.emit(
        Event::new(
            catalog::AUTH_FAILED,
            format!(
                "PostgreSQL refused the session of {} on database {} after authentication: {}",
                session.db_user.as_deref().unwrap_or("?"),
                session.database.as_deref().unwrap_or("?"),
                vigil_sql::redact_message(d.message().unwrap_or(""))
            ),
        )
        .session(Arc::clone(session))
        .outcome(Outcome::Failure)
        .field("method", st.auth_method)
        .field("stage", "startup")
        .field("sqlstate", d.sqlstate().unwrap_or("").to_owned()),
    );
}

/// Follows authentication; returns a replacement for a SASL offer that
/// lists channel-binding mechanisms.
fn authentication(
    shared: &Shared,
    session: &Arc<Session>,
    msg: &BackendMessage<'_>,
    st: &mut State,
) -> Option<BytesMut> {
    let reporter = &shared.reporter;
    match msg {
        BackendMessage::Authentication(a) => match a {
            Authentication::Ok => {
                st.authenticated = true;
                reporter.emit(
                    Event::new(
                        catalog::AUTH_SUCCEEDED,
                        format!(
                            "{} authenticated to database {} ({})",
                            session.db_user.as_deref().unwrap_or("?"),
                            session.database.as_deref().unwrap_or("?"),
                            st.auth_method
                        ),
                    )
                    .session(Arc::clone(session))
                    .field("method", st.auth_method),
                );
            }
            Authentication::CleartextPassword => st.auth_method = "password",
            Authentication::Md5Password { .. } => st.auth_method = "md5",
            Authentication::Gss | Authentication::GssContinue(_) => st.auth_method = "gss",
            Authentication::Sspi => st.auth_method = "sspi",
            Authentication::Sasl(mechs) => {
                st.auth_method = "scram-sha-256";
                if !st.keep_channel_binding && mechs.iter().any(|m| m.ends_with("-PLUS")) {
                    // vigil ends the client's TLS: channel binding to its
                    // certificate cannot be checked by PostgreSQL.
                    let mut out = BytesMut::new();
                    if Authentication::write_sasl(&mut out, mechs.without_channel_binding()).is_ok()
                    {
                        return Some(out);
                    }
                }
            }
            _ => {}
        },
        BackendMessage::ErrorResponse(d) => {
            let sqlstate = d.sqlstate().unwrap_or("");
            reporter.metrics().auth_failed();
            reporter.emit(
                Event::new(
                    catalog::AUTH_FAILED,
                    format!(
                        "{} failed to authenticate to database {} ({}): {}",
                        session.db_user.as_deref().unwrap_or("?"),
                        session.database.as_deref().unwrap_or("?"),
                        st.auth_method,
                        vigil_sql::redact_message(d.message().unwrap_or(""))
                    ),
                )
                .session(Arc::clone(session))
                .outcome(Outcome::Failure)
                .field("method", st.auth_method)
                .field("sqlstate", sqlstate.to_owned()),
            );
            if let (Some(a), Some(client)) = (&st.anomalies, session.client) {
                for event in a.on_auth_failed(client.ip(), Some(session), Instant::now()) {
                    reporter.emit(event);
                }
            }
        }
        _ => {}
    }
    None
}

/// Poison records in one session: the scanner, which statement each result
/// belongs to, and whether the current one was reported.
#[derive(Debug)]
struct PoisonWatch {
    config: PoisonConfig,
    block: bool,
    /// The message passed on as it arrives.
    stream: StreamScanner,
    stream_source: &'static str,
    /// The ids the last scan found.
    hits: Vec<u32>,
    /// What the server will answer with results, in order.
    answers: VecDeque<Answer>,
    /// Prepared statements and portals: their SQL.
    statements: HashMap<Box<str>, Arc<str>>,
    portals: HashMap<Box<str>, Arc<str>>,
    /// Rows (DataRow or CopyData) of the current statement so far.
    rows: u64,
    /// `poison.accessed` was emitted for the current statement.
    reported: bool,
}

/// A message the server will answer with results or a statement's end.
#[derive(Debug)]
enum Answer {
    /// A simple query: its SQL and how many of its statements completed.
    Query { sql: Arc<str>, done: usize },
    /// An Execute, with its statement's SQL when known.
    Execute(Option<Arc<str>>),
    /// A Sync or a FunctionCall: ends with ReadyForQuery.
    Sync,
}

impl PoisonWatch {
    fn new(config: PoisonConfig) -> Self {
        PoisonWatch {
            block: config.blocks(),
            stream: config.scanner.stream(),
            stream_source: "data_row",
            config,
            hits: Vec::new(),
            answers: VecDeque::new(),
            statements: HashMap::new(),
            portals: HashMap::new(),
            rows: 0,
            reported: false,
        }
    }

    /// Scans a whole message; the ids found are in `hits`.
    fn scan(&mut self, frame: &[u8]) -> bool {
        self.hits.clear();
        self.config.scanner.scan(frame, &mut self.hits)
    }

    fn frontend(&mut self, msg: &FrontendMessage<'_>) {
        fn set(map: &mut HashMap<Box<str>, Arc<str>>, name: &str, sql: Arc<str>) {
            match map.get_mut(name) {
                Some(v) => *v = sql,
                None => {
                    map.insert(name.into(), sql);
                }
            }
        }
        match msg {
            FrontendMessage::Query(q) => self.answers.push_back(Answer::Query {
                sql: Arc::from(q.sql),
                done: 0,
            }),
            FrontendMessage::Parse(p) => set(&mut self.statements, p.name, Arc::from(p.sql)),
            FrontendMessage::Bind(b) => match self.statements.get(b.statement).cloned() {
                Some(sql) => set(&mut self.portals, b.portal, sql),
                None => {
                    self.portals.remove(b.portal);
                }
            },
            FrontendMessage::Execute(e) => {
                let sql = self.portals.get(e.portal).cloned();
                self.answers.push_back(Answer::Execute(sql));
            }
            FrontendMessage::Close(c) => {
                match c.target {
                    Target::Statement => self.statements.remove(c.name),
                    Target::Portal => self.portals.remove(c.name),
                };
            }
            FrontendMessage::Sync | FrontendMessage::FunctionCall(_) => {
                self.answers.push_back(Answer::Sync);
            }
            _ => {}
        }
    }

    fn backend(&mut self, msg: &BackendMessage<'_>) {
        match msg {
            BackendMessage::CommandComplete(_)
            | BackendMessage::EmptyQueryResponse
            | BackendMessage::PortalSuspended => {
                match self.answers.front_mut() {
                    Some(Answer::Query { done, .. }) => *done += 1,
                    Some(Answer::Execute(_)) => {
                        self.answers.pop_front();
                    }
                    _ => {}
                }
                self.end_statement();
            }
            BackendMessage::ErrorResponse(_) => {
                // After an error in an extended-query batch the server
                // skips to the next Sync.
                while matches!(self.answers.front(), Some(Answer::Execute(_))) {
                    self.answers.pop_front();
                }
                self.end_statement();
            }
            BackendMessage::ReadyForQuery(_) => {
                while let Some(a) = self.answers.pop_front() {
                    if matches!(a, Answer::Query { .. } | Answer::Sync) {
                        break;
                    }
                }
                self.end_statement();
            }
            _ => {}
        }
    }

    fn end_statement(&mut self) {
        self.rows = 0;
        self.reported = false;
    }

    /// The fingerprint of the statement whose results arrive now.
    fn current_fingerprint(&self) -> Option<u64> {
        match self.answers.front()? {
            Answer::Query { sql, done } => {
                let r = vigil_sql::redact(sql);
                r.statements
                    .get(*done)
                    .or(r.statements.last())
                    .map(|s| s.fingerprint)
            }
            Answer::Execute(Some(sql)) => Some(vigil_sql::fingerprint(sql)),
            _ => None,
        }
    }

    /// The fingerprint of the statement a client message carries or binds.
    fn statement_fingerprint(&self, msg: &FrontendMessage<'_>) -> Option<u64> {
        match msg {
            FrontendMessage::Query(q) => Some(vigil_sql::fingerprint(q.sql)),
            FrontendMessage::Parse(p) => Some(vigil_sql::fingerprint(p.sql)),
            FrontendMessage::Bind(b) => self
                .statements
                .get(b.statement)
                .map(|sql| vigil_sql::fingerprint(sql)),
            _ => None,
        }
    }
}

/// A result carried a poison value: reports it once per statement and
/// reacts; returns whether to block.
fn report_access(
    shared: &Shared,
    session: &Arc<Session>,
    w: &mut PoisonWatch,
    source: &'static str,
) -> bool {
    w.reported = true;
    let fingerprint = w.current_fingerprint();
    poison_hit(
        shared,
        session,
        w,
        catalog::POISON_ACCESSED,
        source,
        fingerprint,
    )
}

/// Emits `kind` (`poison.accessed` or `poison.queried`) for the ids in
/// `w.hits`, then runs the reactions in order; returns whether to block.
fn poison_hit(
    shared: &Shared,
    session: &Arc<Session>,
    w: &PoisonWatch,
    kind: Kind,
    source: &'static str,
    fingerprint: Option<u64>,
) -> bool {
    let ids = w
        .hits
        .iter()
        .map(u32::to_string)
        .collect::<Vec<_>>()
        .join(",");
    let who = format!(
        "session {} ({} on database {})",
        session.id,
        session.db_user.as_deref().unwrap_or("?"),
        session.database.as_deref().unwrap_or("?"),
    );
    let message = if kind == catalog::POISON_ACCESSED {
        format!(
            "poison record {ids} returned to {who} at row {} of the statement",
            w.rows
        )
    } else {
        format!("{who} sent a statement that mentions poison record {ids}")
    };
    let mut ev = Event::new(kind, message)
        .session(Arc::clone(session))
        .field("poison_id", w.hits.first().copied().unwrap_or(0))
        .field("poison_ids", ids.clone())
        .field("source", source);
    if kind == catalog::POISON_ACCESSED {
        ev = ev.field("rows_seen", w.rows);
    }
    if let Some(fp) = fingerprint {
        ev = ev.fingerprint(fp);
    }
    let reactions = &w.config.reactions;
    if !reactions.is_empty() {
        let names: Vec<&str> = reactions.iter().map(|r| r.as_str()).collect();
        ev = ev.field("reactions", names.join(","));
    }
    let for_script = reactions.contains(&Reaction::Script).then(|| ev.clone());
    shared.reporter.emit(ev);
    for reaction in reactions {
        match reaction {
            Reaction::Block => shared.reporter.emit(
                Event::new(
                    catalog::POISON_BLOCKED,
                    format!("{who} closed: poison record {ids} withheld from the client"),
                )
                .session(Arc::clone(session))
                .field("poison_ids", ids.clone())
                .field("source", source),
            ),
            Reaction::Script => {
                if let (Some(script), Some(event)) = (&w.config.script, &for_script) {
                    spawn_script(
                        shared.reporter.clone(),
                        Arc::clone(session),
                        script.clone(),
                        w.config.script_timeout,
                        event,
                    );
                }
            }
            Reaction::Shutdown => {
                shared.reporter.emit(
                    Event::new(
                        catalog::POISON_SHUTDOWN,
                        format!("poison record {ids} reached {who}: vigil shuts down"),
                    )
                    .session(Arc::clone(session))
                    .field("poison_ids", ids.clone()),
                );
                shared.request_stop();
            }
        }
    }
    w.config.blocks()
}

/// Runs the reaction script with `event` as one JSON line on its standard
/// input, in the background: the session does not wait for it. A failure,
/// an exit status other than 0 or a timeout (the script is then killed) is
/// reported as `poison.script_failed`.
fn spawn_script(
    reporter: Reporter,
    session: Arc<Session>,
    script: PathBuf,
    limit: Duration,
    event: &Event,
) {
    let mut json = Vec::with_capacity(1024);
    Format::Json.write(event, &mut json);
    json.push(b'\n');
    tokio::spawn(async move {
        let run = async {
            let mut child = tokio::process::Command::new(&script)
                .stdin(std::process::Stdio::piped())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null())
                .kill_on_drop(true)
                .spawn()?;
            if let Some(mut stdin) = child.stdin.take() {
                // A script that does not read its input may close it first.
                match stdin.write_all(&json).await {
                    Err(e) if e.kind() != io::ErrorKind::BrokenPipe => return Err(e),
                    _ => {}
                }
            }
            child.wait().await
        };
        let why = match timeout(limit, run).await {
            Ok(Ok(status)) if status.success() => return,
            Ok(Ok(status)) => format!("it exited with {status}"),
            Ok(Err(e)) => format!("it could not be run: {e}"),
            Err(_) => format!("it ran longer than {} s and was killed", limit.as_secs()),
        };
        reporter.emit(
            Event::new(
                catalog::POISON_SCRIPT_FAILED,
                format!("poison reaction script {}: {why}", script.display()),
            )
            .session(session)
            .field("script", script.display().to_string())
            .field("reason", why),
        );
    });
}
