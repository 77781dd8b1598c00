//! The listeners, the state every session shares, cancel routing, reload
//! and graceful shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError, RwLock};
use std::time::Duration;

use rustls::pki_types::ServerName;
use tokio::io::AsyncWriteExt;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{Notify, watch};
use tokio::task::JoinHandle;
use vigil_event::{Event, Outcome, Session, catalog};

use crate::config::{ClientCertMode, ClientTlsMode, ProxyConfig};
use crate::report::Reporter;
use crate::session;
use crate::tls::{self, TlsSetupError};

/// The settings sessions read when they start: replaced whole on reload.
pub(crate) struct Runtime {
    pub(crate) config: ProxyConfig,
    pub(crate) acceptor: Option<tokio_rustls::TlsAcceptor>,
    pub(crate) connector: Option<tokio_rustls::TlsConnector>,
    pub(crate) server_name: ServerName<'static>,
    /// vigil's own certificate towards clients (the leaf, DER).
    pub(crate) own_cert: Option<Vec<u8>>,
}

impl Runtime {
    fn new(config: ProxyConfig) -> Result<Runtime, TlsSetupError> {
        let acceptor = match &config.client_tls {
            Some(t) => Some(tokio_rustls::TlsAcceptor::from(tls::server_config(t)?)),
            None => None,
        };
        let connector =
            tls::upstream_config(&config.upstream_tls)?.map(tokio_rustls::TlsConnector::from);
        let host = config
            .upstream_tls
            .server_name
            .clone()
            .unwrap_or_else(|| upstream_host(&config.upstream).to_owned());
        let server_name = ServerName::try_from(host.clone()).map_err(|_| {
            TlsSetupError::new(
                "upstream.server_name",
                format!("{host:?} is not a host name or IP address"),
            )
        })?;
        let own_cert = match &config.client_tls {
            Some(t) => tls::load_certs(&t.cert, "tls.cert")?
                .first()
                .map(|c| c.as_ref().to_vec()),
            None => None,
        };
        Ok(Runtime {
            config,
            acceptor,
            connector,
            server_name,
            own_cert,
        })
    }
}

impl std::fmt::Debug for Runtime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Runtime")
            .field("config", &self.config)
            .field("client_tls", &self.acceptor.is_some())
            .field("upstream_tls", &self.connector.is_some())
            .field("server_name", &self.server_name)
            .finish()
    }
}

/// The host part of `host:port` (brackets removed from `[v6]:port`).
fn upstream_host(addr: &str) -> &str {
    let host = addr.rsplit_once(':').map_or(addr, |(h, _)| h);
    host.trim_start_matches('[').trim_end_matches(']')
}

/// A backend's process id and cancel key.
pub(crate) type CancelKey = (i32, Vec<u8>);

/// What every session shares.
#[derive(Debug)]
pub(crate) struct Shared {
    runtime: RwLock<Arc<Runtime>>,
    pub(crate) reporter: Reporter,
    next_id: AtomicU64,
    active: AtomicUsize,
    idle: Notify,
    closing: watch::Receiver<bool>,
    cancel_keys: Mutex<HashMap<CancelKey, Arc<Session>>>,
    /// A session asked the service to stop (the poison `shutdown` reaction).
    stop: Notify,
}

impl Shared {
    pub(crate) fn runtime(&self) -> Arc<Runtime> {
        Arc::clone(&self.runtime.read().unwrap_or_else(PoisonError::into_inner))
    }

    pub(crate) fn next_session_id(&self) -> u64 {
        self.next_id.fetch_add(1, Ordering::Relaxed)
    }

    pub(crate) fn closing(&self) -> watch::Receiver<bool> {
        self.closing.clone()
    }

    /// Asks the service to stop: [`Proxy::stop_requested`] returns.
    pub(crate) fn request_stop(&self) {
        self.stop.notify_one();
    }

    /// Returns once no connection is open.
    async fn all_closed(&self) {
        loop {
            let idle = self.idle.notified();
            if self.active.load(Ordering::Acquire) == 0 {
                return;
            }
            idle.await;
        }
    }

    /// Whether the connections open now, this one included, are within
    /// `max_connections`.
    pub(crate) fn admit(&self) -> bool {
        self.active.load(Ordering::Acquire) <= self.runtime().config.max_connections
    }

    pub(crate) fn remember_cancel_key(&self, key: (i32, Vec<u8>), session: Arc<Session>) {
        self.cancel_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .insert(key, session);
    }

    pub(crate) fn forget_cancel_key(&self, key: &(i32, Vec<u8>)) {
        self.cancel_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(key);
    }

    /// A CancelRequest: forwarded to PostgreSQL when its key belongs to a
    /// session of this proxy, refused otherwise.
    pub(crate) async fn cancel(&self, pid: i32, secret: &[u8], packet: &[u8], peer: SocketAddr) {
        let target = self
            .cancel_keys
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get(&(pid, secret.to_vec()))
            .cloned();
        let Some(session) = target else {
            self.reporter.emit(
                Event::new(
                    catalog::CANCEL_REQUESTED,
                    format!("cancel request from {peer} for an unknown session; not forwarded"),
                )
                .outcome(Outcome::Failure)
                .field("client", peer.to_string())
                .field("forwarded", false),
            );
            return;
        };
        let rt = self.runtime();
        let forwarded = async {
            let mut up = TcpStream::connect(rt.config.upstream.as_str()).await?;
            up.write_all(packet).await?;
            up.shutdown().await
        };
        let ok = tokio::time::timeout(rt.config.connect_timeout, forwarded)
            .await
            .is_ok_and(|r| r.is_ok());
        self.reporter.emit(
            Event::new(
                catalog::CANCEL_REQUESTED,
                format!(
                    "cancel request from {peer} for session {}{}",
                    session.id,
                    if ok {
                        ""
                    } else {
                        "; PostgreSQL could not be reached"
                    }
                ),
            )
            .session(session)
            .outcome(if ok {
                Outcome::Success
            } else {
                Outcome::Failure
            })
            .field("client", peer.to_string())
            .field("forwarded", ok),
        );
    }
}

/// A running proxy.
#[derive(Debug)]
pub struct Proxy {
    shared: Arc<Shared>,
    addrs: Vec<SocketAddr>,
    accepting: Vec<JoinHandle<()>>,
    closing: watch::Sender<bool>,
}

/// Why the proxy could not start.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// A TLS setting is unusable.
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    /// A listen address could not be bound.
    #[error("cannot listen on {addr}: {source}; is another process using it?")]
    Listen {
        /// The address.
        addr: SocketAddr,
        /// What the system said.
        source: std::io::Error,
    },
}

impl Proxy {
    /// Binds every listen address and starts accepting clients. Must run
    /// inside a tokio runtime.
    pub async fn start(config: ProxyConfig, reporter: Reporter) -> Result<Proxy, StartError> {
        let runtime = Runtime::new(config)?;
        let (closing, closing_rx) = watch::channel(false);
        let tls_mode = match &runtime.config.client_tls {
            None => "off",
            Some(t) if t.mode == ClientTlsMode::Require => "required",
            Some(_) => "optional",
        };
        let client_certs = match runtime.config.client_tls.as_ref().map(|t| t.client_cert) {
            Some(ClientCertMode::Required) => "required",
            Some(ClientCertMode::Optional) => "optional",
            _ => "off",
        };
        let mut listeners = Vec::new();
        for addr in &runtime.config.listen {
            match TcpListener::bind(addr).await {
                Ok(l) => listeners.push(l),
                Err(source) => {
                    reporter.emit(
                        Event::new(
                            catalog::LISTENER_FAILED,
                            format!("cannot listen on {addr}: {source}"),
                        )
                        .field("address", addr.ip().to_string())
                        .field("port", i64::from(addr.port()))
                        .field("reason", source.to_string()),
                    );
                    return Err(StartError::Listen {
                        addr: *addr,
                        source,
                    });
                }
            }
        }
        let upstream = runtime.config.upstream.clone();
        let upstream_tls = runtime.config.upstream_tls.mode.as_str();
        let shared = Arc::new(Shared {
            runtime: RwLock::new(Arc::new(runtime)),
            reporter,
            next_id: AtomicU64::new(1),
            active: AtomicUsize::new(0),
            idle: Notify::new(),
            closing: closing_rx,
            cancel_keys: Mutex::new(HashMap::new()),
            stop: Notify::new(),
        });
        let mut addrs = Vec::new();
        let mut accepting = Vec::new();
        for listener in listeners {
            let addr = listener.local_addr().map_err(|source| StartError::Listen {
                addr: SocketAddr::from(([0, 0, 0, 0], 0)),
                source,
            })?;
            shared.reporter.emit(
                Event::new(
                    catalog::LISTENER_STARTED,
                    format!(
                        "listening on {addr} for PostgreSQL clients (TLS {tls_mode}, client \
                         certificates {client_certs}), forwarding to {upstream} (TLS {upstream_tls})"
                    ),
                )
                .field("address", addr.ip().to_string())
                .field("port", i64::from(addr.port()))
                .field("tls_mode", tls_mode)
                .field("client_certificates", client_certs)
                .field("upstream", upstream.clone())
                .field("upstream_tls", upstream_tls),
            );
            addrs.push(addr);
            accepting.push(tokio::spawn(accept_loop(listener, Arc::clone(&shared))));
        }
        Ok(Proxy {
            shared,
            addrs,
            accepting,
            closing,
        })
    }

    /// The addresses the proxy listens on (with the ports the system chose
    /// for port 0).
    pub fn local_addrs(&self) -> &[SocketAddr] {
        &self.addrs
    }

    /// Returns once a session has asked the service to stop (the poison
    /// `shutdown` reaction); the service then calls [`shutdown`](Self::shutdown).
    /// A request made before the call is not lost.
    pub async fn stop_requested(&self) {
        self.shared.stop.notified().await;
    }

    /// Sessions open now.
    pub fn active_sessions(&self) -> usize {
        self.shared.active.load(Ordering::Acquire)
    }

    /// Takes new settings for sessions that start from now on: TLS,
    /// upstream, coverage, timeouts, poison records. Listen addresses are
    /// kept.
    pub fn reload(&self, config: ProxyConfig) -> Result<(), TlsSetupError> {
        let runtime = Runtime::new(config)?;
        *self
            .shared
            .runtime
            .write()
            .unwrap_or_else(PoisonError::into_inner) = Arc::new(runtime);
        Ok(())
    }

    /// Stops accepting, lets sessions finish for up to `timeout`, then
    /// closes the rest. Returns how many sessions were closed.
    pub async fn shutdown(self, timeout: Duration) -> usize {
        for task in &self.accepting {
            task.abort();
        }
        let drained = tokio::time::timeout(timeout, self.shared.all_closed()).await;
        if drained.is_ok() {
            return 0;
        }
        let open = self.shared.active.load(Ordering::Acquire);
        let _ = self.closing.send(true);
        // Closing sessions report their end; give them a moment.
        let _ = tokio::time::timeout(Duration::from_secs(5), self.shared.all_closed()).await;
        open
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((tcp, peer)) => {
                let shared = Arc::clone(&shared);
                let guard = Active::enter(shared);
                tokio::spawn(async move {
                    session::serve(Arc::clone(&guard.0), tcp, peer).await;
                    drop(guard);
                });
            }
            Err(_) => {
                // Out of file descriptors, or a connection reset before
                // accept: wait a little rather than spin.
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Counts a connection as open while it lives, panics included.
#[derive(Debug)]
struct Active(Arc<Shared>);

impl Active {
    fn enter(shared: Arc<Shared>) -> Active {
        shared.active.fetch_add(1, Ordering::AcqRel);
        Active(shared)
    }
}

impl Drop for Active {
    fn drop(&mut self) {
        if self.0.active.fetch_sub(1, Ordering::AcqRel) == 1 {
            self.0.idle.notify_waiters();
        }
    }
}
