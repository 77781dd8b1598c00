//! `vigil serve`: the proxy as a service, with its event pipeline, sealed
//! audit log, admin listener, schema check, poison records and signals.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context as _;
use tokio::signal::unix::{SignalKind, signal};
use vigil_detect::poison::Scanner;
use vigil_event::{Emitter, Event, Overflow, catalog};
use vigil_keys::{AUDIT_HMAC, CHECKPOINT_SIGNING};
use vigil_proxy::schema::{self, SchemaConnect};
use vigil_proxy::{Gauges, Metrics, Proxy, Reporter};
use vigil_ship::Pipeline;
use vigil_ship::deliver::Delivery;
use zeroize::Zeroizing;

use crate::cli::{EXIT_USAGE, sink_specs};
use crate::config::{self, AuditConfig, Config};

/// How long the sinks may take, after the final checkpoint, to deliver what
/// is left before vigil exits. What they do not take is delivered after the
/// next start.
const DELIVERY_DRAIN: Duration = Duration::from_secs(5);

/// `vigil serve` arguments.
#[derive(Debug, clap::Args)]
pub(crate) struct ServeArgs {
    /// Configuration file; without it, the defaults serve a first run.
    #[arg(long, short, value_name = "FILE")]
    config: Option<PathBuf>,
    /// Listen on ADDR instead of the configured addresses.
    #[arg(long, value_name = "ADDR")]
    listen: Option<SocketAddr>,
    /// Forward to PostgreSQL at HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    upstream: Option<String>,
    /// Keep the audit log and keys under DIR (when there is no [audit]).
    #[arg(long, value_name = "DIR")]
    data_dir: Option<PathBuf>,
    /// Serve /metrics and /healthz on ADDR.
    #[arg(long, value_name = "ADDR")]
    admin: Option<SocketAddr>,
}

fn load(args: &ServeArgs) -> Result<Config, config::ConfigError> {
    let mut cfg = match &args.config {
        Some(path) => config::load(path)?,
        None => Config::default(),
    };
    apply_flags(&mut cfg, args);
    Ok(cfg)
}

fn apply_flags(cfg: &mut Config, args: &ServeArgs) {
    if let Some(listen) = args.listen {
        cfg.proxy.listen = vec![listen];
    }
    if let Some(up) = &args.upstream {
        cfg.proxy.upstream = up.clone();
    }
    if let Some(dir) = &args.data_dir {
        cfg.service.data_dir = dir.clone();
    }
    if let Some(admin) = args.admin {
        cfg.admin = Some(admin);
    }
}

/// The audit log: the `[audit]` section, or `audit/` and `keys/` under the
/// data directory.
fn audit_config(cfg: &Config) -> AuditConfig {
    match &cfg.audit {
        Some(a) => a.clone(),
        None => AuditConfig::under(&cfg.service.data_dir),
    }
}

/// `[detect]`: loads the firewall's rules and starts (or keeps) the anomaly
/// detectors. The detectors' state survives a reload whose anomaly
/// settings did not change.
fn attach_detection(
    cfg: &mut Config,
    previous: Option<&vigil_proxy::Detection>,
) -> Result<(), DetectionError> {
    let d = &cfg.detect;
    let mut detection = vigil_proxy::Detection::new();
    detection.sql_injection = d.sql_injection;
    detection.application_roles = d.application_roles.clone();
    if let Some(path) = &d.firewall {
        let fw = vigil_detect::firewall::Firewall::load(path).map_err(DetectionError::Rules)?;
        detection.firewall = Some(Arc::new(fw));
    }
    if let Some(settings) = &d.anomaly {
        let kept = previous
            .and_then(|p| p.anomalies.as_ref())
            .filter(|a| a.config() == settings)
            .cloned();
        detection.anomalies = Some(match kept {
            Some(a) => a,
            None => Arc::new(
                vigil_detect::anomaly::Anomalies::new(settings.clone(), std::time::Instant::now())
                    .map_err(|e| DetectionError::Anomaly(e.to_string()))?,
            ),
        });
    }
    cfg.proxy.detection = detection;
    Ok(())
}

/// Why the detectors could not be set up.
#[derive(Debug)]
enum DetectionError {
    Rules(vigil_detect::firewall::RulesError),
    Anomaly(String),
}

impl DetectionError {
    /// The catalog event that reports it.
    fn event(&self) -> Event {
        match self {
            DetectionError::Rules(e) => e.event(),
            DetectionError::Anomaly(why) => {
                Event::new(catalog::CONFIG_INVALID, format!("detect.anomaly: {why}"))
            }
        }
    }
}

impl std::fmt::Display for DetectionError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DetectionError::Rules(e) => write!(f, "{e}"),
            DetectionError::Anomaly(why) => write!(f, "detect.anomaly: {why}"),
        }
    }
}

/// `[poison]`: reads the registry, checks every entry with the poison key
/// version that made it, and hands the values and reactions to the proxy.
fn attach_poison(cfg: &mut Config, store: &vigil_keys::KeyStore) -> anyhow::Result<()> {
    let Some(p) = &cfg.poison else {
        cfg.proxy.poison = None;
        return Ok(());
    };
    let set = crate::poison_cmd::load_verified(&p.registry, store)
        .context("cannot use the poison registry")?;
    let mut poison = vigil_proxy::config::PoisonConfig::new(Arc::new(Scanner::new(&set)));
    poison.reactions = p.reactions.clone();
    poison.script = p.script.clone();
    poison.script_timeout = p.script_timeout;
    cfg.proxy.poison = Some(poison);
    Ok(())
}

pub(crate) fn run(args: ServeArgs) -> anyhow::Result<ExitCode> {
    let mut cfg = match load(&args) {
        Ok(cfg) => cfg,
        Err(e) => {
            // No pipeline yet: the event goes to standard error as text.
            let mut ev = Event::new(catalog::CONFIG_INVALID, e.to_string())
                .field("file", e.file().display().to_string());
            if let Some(line) = e.line() {
                ev = ev.field("line", i64::try_from(line).unwrap_or(i64::MAX));
            }
            if let Some(key) = e.key() {
                ev = ev.field("key", key.to_owned());
            }
            crate::cli::show_event(&ev);
            eprintln!("vigil: {e}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    if let Err(e) = attach_detection(&mut cfg, None) {
        // No pipeline yet: the event goes to standard error as text.
        crate::cli::show_event(&e.event());
        eprintln!("vigil: {e}");
        return Ok(ExitCode::from(EXIT_USAGE));
    }
    let audit = audit_config(&cfg);
    if cfg.audit.is_none() {
        create_private_dir(&cfg.service.data_dir)?;
    }

    // Key loads are reported before the log is open, then sealed into it.
    let (key_events, key_rx) = Emitter::channel(1024, Overflow::Drop);
    let opened = (|| {
        let store = crate::audit_cmd::open_store(&audit.key_dir, Some(&key_events))?;
        for name in [AUDIT_HMAC, CHECKPOINT_SIGNING] {
            store
                .ensure(name)
                .with_context(|| format!("cannot create the {name} key"))?;
        }
        attach_poison(&mut cfg, &store)?;
        let seal = crate::audit_cmd::seal_config(&audit, &cfg.service.origin);
        let sealer = crate::audit_cmd::seal_with(&store, seal, &key_events)?;
        Ok::<_, anyhow::Error>((store, sealer))
    })();
    let (store, sealer) = match opened {
        Ok(v) => v,
        Err(e) => {
            crate::cli::show_on_stderr(&key_rx);
            eprintln!("vigil: {e:#}");
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    let durable = sealer.durable();
    let mut builder = Pipeline::builder()
        .origin(&cfg.service.origin)
        .capacity(cfg.pipeline.queue_capacity)
        .overflow(cfg.pipeline.overflow)
        .audit(sealer);
    for sink in sink_specs(&cfg, false) {
        builder = builder.sink(sink);
    }
    let (pipeline, emitter) = builder.start()?;
    while let Some(q) = key_rx.try_recv() {
        emitter.emit(q.event);
    }
    let started = crate::ship::start(&cfg, &audit, durable, emitter.clone()).and_then(|d| {
        Ok((
            d.map(Arc::new),
            crate::ship::start_ingest(&cfg, emitter.clone())?,
        ))
    });
    let (delivery, ingest) = match started {
        Ok(v) => v,
        Err(e) => {
            // The audit log is open: the refusal is sealed there too.
            emitter.emit(Event::new(catalog::CONFIG_INVALID, format!("{e:#}")));
            eprintln!("vigil: {e:#}");
            drop(emitter);
            let _ = pipeline.shutdown();
            return Ok(ExitCode::from(EXIT_USAGE));
        }
    };
    emitter.emit(
        Event::new(
            catalog::SERVICE_STARTED,
            format!("vigil {} started", env!("CARGO_PKG_VERSION")),
        )
        .field("version", env!("CARGO_PKG_VERSION"))
        .field("pid", i64::from(std::process::id()))
        .field("audit_dir", audit.dir.display().to_string()),
    );
    if let Some(fw) = &cfg.proxy.detection.firewall {
        emitter.emit(fw.loaded_event());
    }
    emitter.emit(
        Event::new(
            catalog::CONFIG_VALID,
            match &args.config {
                Some(p) => format!("configuration {} is valid", p.display()),
                None => "no configuration file; using the defaults".to_owned(),
            },
        )
        .field(
            "file",
            args.config
                .as_ref()
                .map(|p| p.display().to_string())
                .unwrap_or_default(),
        ),
    );
    let pipeline = Arc::new(pipeline);
    let runtime = match cfg.proxy.workers {
        1 => tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build(),
        n => tokio::runtime::Builder::new_multi_thread()
            .worker_threads(n)
            .enable_all()
            .thread_name("vigil-proxy")
            .build(),
    }
    .context("cannot start the runtime")?;
    let code = runtime.block_on(serve(
        &args,
        cfg,
        emitter.clone(),
        &pipeline,
        delivery.as_ref(),
        &store,
    ));
    runtime.shutdown_timeout(Duration::from_secs(1));
    if let Some(ingest) = ingest {
        ingest.shutdown();
    }
    drop(emitter);
    match Arc::try_unwrap(pipeline) {
        Ok(p) => {
            p.shutdown()?;
        }
        Err(p) => drop(p),
    }
    // The final checkpoint is sealed: let the sinks take what is left.
    if let Some(d) = delivery.and_then(|d| Arc::try_unwrap(d).ok()) {
        d.shutdown(DELIVERY_DRAIN);
    }
    Ok(code)
}

fn create_private_dir(dir: &Path) -> anyhow::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
        .with_context(|| format!("cannot create the data directory {}", dir.display()))
}

async fn serve(
    args: &ServeArgs,
    cfg: Config,
    emitter: Emitter,
    pipeline: &Arc<Pipeline>,
    delivery: Option<&Arc<Delivery>>,
    store: &vigil_keys::KeyStore,
) -> ExitCode {
    let metrics = Arc::new(Metrics::new());
    let reporter = Reporter::new(emitter, Arc::clone(&metrics));
    let proxy = match Proxy::start(cfg.proxy.clone(), reporter.clone()).await {
        Ok(p) => p,
        Err(e) => {
            eprintln!("vigil: {e}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    let (stop_admin, admin_stopped) = tokio::sync::watch::channel(false);
    if let Some(addr) = cfg.admin {
        match tokio::net::TcpListener::bind(addr).await {
            Ok(listener) => {
                let shown = listener.local_addr().unwrap_or(addr);
                reporter.emit(
                    Event::new(
                        catalog::LISTENER_STARTED,
                        format!("admin listener on http://{shown}/metrics and /healthz (no TLS)"),
                    )
                    .field("address", shown.ip().to_string())
                    .field("port", i64::from(shown.port()))
                    .field("tls_mode", "off")
                    .field("purpose", "admin"),
                );
                let p = Arc::clone(pipeline);
                let d = delivery.cloned();
                let gauges = Arc::new(move || {
                    let s = p.stats();
                    Gauges {
                        events_dropped: s.dropped,
                        audit_queue: s.queued,
                        last_checkpoint_age: s.last_checkpoint_age,
                        audit_ok: !s.audit_failing,
                        sinks: d
                            .as_ref()
                            .map(|d| crate::ship::gauges(d.stats()))
                            .unwrap_or_default(),
                    }
                });
                tokio::spawn(vigil_proxy::admin::serve(
                    listener,
                    Arc::clone(&metrics),
                    gauges,
                    admin_stopped,
                ));
            }
            Err(e) => {
                reporter.emit(
                    Event::new(
                        catalog::LISTENER_FAILED,
                        format!("cannot listen on {addr} for the admin listener: {e}"),
                    )
                    .field("address", addr.ip().to_string())
                    .field("port", i64::from(addr.port()))
                    .field("reason", e.to_string()),
                );
            }
        }
    }
    spawn_schema_check(&cfg, &reporter);

    let mut current = cfg;
    let signals = (|| {
        Ok::<_, std::io::Error>((
            signal(SignalKind::terminate())?,
            signal(SignalKind::interrupt())?,
            signal(SignalKind::hangup())?,
            signal(SignalKind::user_defined1())?,
        ))
    })();
    let Ok((mut term, mut int, mut hup, mut usr1)) = signals else {
        eprintln!("vigil: cannot install signal handlers");
        return ExitCode::from(EXIT_USAGE);
    };
    let kind = loop {
        tokio::select! {
            _ = term.recv() => break Some(catalog::SIGNAL_SIGTERM),
            _ = int.recv() => break Some(catalog::SIGNAL_SIGINT),
            // The poison shutdown reaction: its event is already out.
            _ = proxy.stop_requested() => break None,
            _ = hup.recv() => {
                reporter.emit(Event::new(catalog::SIGNAL_SIGHUP, "SIGHUP received: reloading the configuration"));
                if let Some(d) = delivery {
                    // Files are reopened (logrotate) and parked sinks retried.
                    d.reopen();
                }
                if let Some(next) = reload(args, &current, &proxy, &reporter, store) {
                    current = next;
                    spawn_schema_check(&current, &reporter);
                }
            }
            _ = usr1.recv() => {
                reporter.emit(Event::new(catalog::SIGNAL_SIGUSR1, "SIGUSR1 received: rotating the audit key"));
                rotate(store, pipeline, &reporter);
            }
        }
    };
    // After a poison shutdown, sessions are closed at once.
    let timeout = match kind {
        Some(kind) => {
            let name = if kind == catalog::SIGNAL_SIGTERM {
                "SIGTERM"
            } else {
                "SIGINT"
            };
            reporter.emit(Event::new(kind, format!("{name} received: shutting down")));
            current.proxy.shutdown_timeout
        }
        None => Duration::ZERO,
    };
    let open = proxy.active_sessions();
    reporter.emit(
        Event::new(
            catalog::SHUTDOWN_STARTED,
            format!(
                "shutting down: no new connections; {open} session(s) have {}s to finish",
                timeout.as_secs()
            ),
        )
        .field("sessions", i64::try_from(open).unwrap_or(i64::MAX))
        .field(
            "timeout_s",
            i64::try_from(timeout.as_secs()).unwrap_or(i64::MAX),
        ),
    );
    let closed = proxy.shutdown(timeout).await;
    let _ = stop_admin.send(true);
    reporter.emit(
        Event::new(
            catalog::SHUTDOWN_COMPLETED,
            format!("shutdown complete; {closed} session(s) closed at the timeout"),
        )
        .field("sessions_closed", i64::try_from(closed).unwrap_or(i64::MAX)),
    );
    ExitCode::SUCCESS
}

/// SIGHUP: the new configuration, or the old one kept and the reason
/// reported.
fn reload(
    args: &ServeArgs,
    current: &Config,
    proxy: &Proxy,
    reporter: &Reporter,
    store: &vigil_keys::KeyStore,
) -> Option<Config> {
    let Some(path) = &args.config else {
        reporter.emit(Event::new(
            catalog::CONFIG_RELOADED,
            "no configuration file to reload; the defaults stay",
        ));
        return None;
    };
    let failed = |why: String| {
        reporter.emit(
            Event::new(
                catalog::CONFIG_RELOAD_FAILED,
                format!("reload failed, the running configuration stays: {why}"),
            )
            .field("file", path.display().to_string())
            .field("reason", why),
        );
        None
    };
    let mut next = match load(args) {
        Ok(next) => next,
        Err(e) => return failed(e.to_string()),
    };
    if let Err(e) = attach_poison(&mut next, store) {
        return failed(format!("{e:#}"));
    }
    if let Err(e) = attach_detection(&mut next, Some(&current.proxy.detection)) {
        reporter.emit(e.event());
        return failed(e.to_string());
    }
    let mut unchanged = Vec::new();
    if next.proxy.listen != current.proxy.listen {
        unchanged.push("proxy.listen");
    }
    if next.audit != current.audit || next.sinks != current.sinks {
        unchanged.push("audit and sinks");
    }
    if let Err(e) = proxy.reload(next.proxy.clone()) {
        return failed(e.to_string());
    }
    if let Some(fw) = &next.proxy.detection.firewall {
        reporter.emit(fw.loaded_event());
    }
    let mut ev = Event::new(
        catalog::CONFIG_RELOADED,
        format!("configuration {} reloaded", path.display()),
    )
    .field("file", path.display().to_string());
    if !unchanged.is_empty() {
        ev = ev.field(
            "needs_restart",
            format!("{} (changed; take effect on restart)", unchanged.join(", ")),
        );
    }
    reporter.emit(ev);
    Some(next)
}

/// SIGUSR1: a new audit key version, and a new chain under it.
fn rotate(store: &vigil_keys::KeyStore, pipeline: &Pipeline, reporter: &Reporter) {
    let rotated = store
        .rotate(AUDIT_HMAC)
        .and_then(|v| Ok((v, store.load(AUDIT_HMAC, v)?)));
    let result = rotated
        .map_err(|e| e.to_string())
        .and_then(|(version, key)| {
            pipeline
                .rotate_audit_key(
                    version,
                    Zeroizing::new(*key.expose()),
                    Duration::from_secs(10),
                )
                .map_err(|e| e.to_string())
        });
    if let Err(why) = result {
        reporter.emit(
            Event::new(
                catalog::AUDIT_WRITE_FAILED,
                format!("audit key rotation failed: {why}"),
            )
            .field("reason", why),
        );
    }
}

fn spawn_schema_check(cfg: &Config, reporter: &Reporter) {
    let Some(schema_cfg) = cfg.schema.clone() else {
        return;
    };
    let (host, port) = match cfg.proxy.upstream.rsplit_once(':') {
        Some((h, p)) => (
            h.trim_start_matches('[').trim_end_matches(']').to_owned(),
            p.parse().unwrap_or(5432),
        ),
        None => (cfg.proxy.upstream.clone(), 5432),
    };
    let password = schema_cfg
        .password_env
        .as_ref()
        .and_then(|var| std::env::var(var).ok());
    let connect = SchemaConnect {
        host,
        port,
        user: schema_cfg.user,
        password,
        database: schema_cfg.database,
    };
    let reporter = reporter.clone();
    tokio::spawn(async move {
        for event in schema::check(&connect, &schema_cfg.columns).await {
            reporter.emit(event);
        }
    });
}
