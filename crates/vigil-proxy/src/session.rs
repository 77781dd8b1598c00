//! One client session: the startup phase (TLS, cancel requests, the
//! StartupMessage), the connection to PostgreSQL, then the relay in both
//! directions, with every message the session's events need decoded on the
//! way and everything else passed through as bytes.

use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, BytesMut};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, ReadBuf, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::time::timeout;
use vigil_event::{Event, Outcome, Session, catalog};
use vigil_pg::{
    Authentication, BackendMessage, Diagnostic, Framer, FrontendMessage, MessageTag, Severity,
};

use crate::config::{ClientTlsMode, UpstreamTlsMode};
use crate::server::{Runtime, Shared};
use crate::tls::{self, Side};
use crate::track::Tracker;

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
    Io(io::Error),
}

impl End {
    fn reason(&self) -> String {
        match self {
            End::ClientClosed => "client closed the connection".to_owned(),
            End::ServerClosed => "PostgreSQL closed the connection".to_owned(),
            End::Shutdown => "vigil is shutting down".to_owned(),
            End::Violation(why) => format!("protocol violation: {why}"),
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
        ),
        authenticated: false,
        auth_method: "trust",
        cancel_key: None,
        keep_channel_binding,
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
            client_to_server(&mut cr, &mut sw, rest, &state, &mut from_client, metrics).await
        };
        let s2c = server_to_client(shared, &session, &mut sr, &mut cw, &state, &mut from_server);
        tokio::select! {
            r = c2s => r.err().unwrap_or(End::ClientClosed),
            r = s2c => r.err().unwrap_or(End::ServerClosed),
            _ = closing.wait_for(|c| *c) => End::Shutdown,
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
}

async fn client_to_server(
    from: &mut ReadHalf<Stream>,
    to: &mut WriteHalf<Stream>,
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
        if skip == 0 {
            let (upto, step, terminate) = {
                let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                scan_frontend(&framer, &buf, &mut st)?
            };
            if upto > 0 {
                to.write_all(&buf[..upto]).await.map_err(End::Io)?;
                buf.advance(upto);
            }
            if let Step::Stream { skip: more } = step {
                to.write_all(&buf).await.map_err(End::Io)?;
                buf.clear();
                skip = more;
            }
            if terminate {
                return Ok(());
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
fn scan_frontend(framer: &Framer, buf: &[u8], st: &mut State) -> Result<(usize, Step, bool), End> {
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
        pos += header.frame_len;
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
        st.tracker.frontend(&msg);
    }
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
    let mut skip = 0usize;
    loop {
        if skip > 0 && !buf.is_empty() {
            let n = skip.min(buf.len());
            to.write_all(&buf[..n]).await.map_err(End::Io)?;
            buf.advance(n);
            skip -= n;
        }
        while skip == 0 {
            let (upto, step) = {
                let mut st = state.lock().unwrap_or_else(PoisonError::into_inner);
                scan_backend(shared, session, &framer, &buf, &mut st)?
            };
            if upto > 0 {
                to.write_all(&buf[..upto]).await.map_err(End::Io)?;
                buf.advance(upto);
            }
            match step {
                Step::Read => break,
                Step::Replace { frame_len, bytes } => {
                    to.write_all(&bytes).await.map_err(End::Io)?;
                    buf.advance(frame_len);
                }
                Step::Stream { skip: more } => {
                    to.write_all(&buf).await.map_err(End::Io)?;
                    buf.clear();
                    skip = more;
                }
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
                return Ok((
                    pos,
                    Step::Stream {
                        skip: header.frame_len - rest.len(),
                    },
                ));
            }
            return Ok((pos, Step::Read));
        }
        let frame = &rest[..header.frame_len];
        match tag {
            MessageTag::DATA_ROW => {
                st.tracker.row();
                pos += header.frame_len;
                continue;
            }
            MessageTag::COPY_DATA
            | MessageTag::NOTICE_RESPONSE
            | MessageTag::NOTIFICATION_RESPONSE => {
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
            st.tracker.backend(&msg);
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
        }
        _ => {}
    }
    None
}
