//! Delivery from the sealed audit log: one thread per sink reads the log
//! through the sink's own [`Cursor`], formats what its filter passes, hands
//! batches to its [`Transport`], and moves the cursor only when the receiver
//! acknowledged them.
//!
//! The audit log is the spool. A receiver that is down costs the proxy
//! nothing (the log is written anyway, and each sink reads at its own pace);
//! a restart resumes at the cursor; nothing is delivered that a crash could
//! take back (only entries the writer reported durable are read). Delivery
//! is at-least-once: an entry may reach a receiver twice after a failure, and
//! `(origin, seq)` identifies it.
//!
//! Each sink reports on itself through the event pipeline, so its reports
//! are sealed and reach the other sinks: `sink.down` (the first failure of
//! an outage, with the reason), `sink.up` (delivering again), `sink.parked`
//! (the receiver refuses for good, e.g. HTTP 401: delivery waits for
//! [`Delivery::reopen`]), `sink.rejected` (records refused one by one, set
//! aside in `<name>.rejected`), `sink.lagging`, `sink.behind_retention` and
//! `sink.cursor_reset`.

mod cursor;
mod reader;
mod retention;
mod runner;

pub use cursor::Cursor;
pub use reader::{Entry, LogReader, ReadError};
pub use retention::{Removed, Retention, apply as apply_retention};

use std::path::PathBuf;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use vigil_event::{Emitter, Filter, Format};
use vigil_seal::{DurableHandle, LineFormat};

use crate::error::Error;
use crate::transport::Transport;

/// One sink that delivers from the audit log.
pub struct DeliverySink {
    /// A name unique among sinks: it names the cursor file
    /// (`<name>.cursor`), the rejected file, the reports and the metrics.
    pub name: String,
    /// The format the transport receives each event in.
    pub format: Format,
    /// Which events the sink receives. Audit checkpoints pass whatever the
    /// filter says, so every receiver holds an off-host copy of them.
    pub filter: Filter,
    /// The receiver.
    pub transport: Box<dyn Transport>,
    /// The most records in one batch (default 1,000).
    pub batch: usize,
    /// The first and the longest wait between retries (default 100 ms and
    /// 30 s); each wait doubles the last, with up to 50% random jitter.
    pub backoff: (Duration, Duration),
    /// Report `sink.lagging` when this many durable entries wait for the
    /// sink (default 100,000).
    pub lag_alert: u64,
}

impl std::fmt::Debug for DeliverySink {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DeliverySink")
            .field("name", &self.name)
            .field("format", &self.format)
            .field("batch", &self.batch)
            .finish_non_exhaustive()
    }
}

impl DeliverySink {
    /// A sink of every event in `format`, with the default batch, backoff
    /// and lag alert.
    pub fn new(name: impl Into<String>, format: Format, transport: Box<dyn Transport>) -> Self {
        DeliverySink {
            name: name.into(),
            format,
            filter: Filter::all(),
            transport,
            batch: 1000,
            backoff: (Duration::from_millis(100), Duration::from_secs(30)),
            lag_alert: 100_000,
        }
    }
}

/// Where delivery reads from and keeps its state.
#[derive(Debug)]
pub struct DeliveryConfig {
    /// The audit directory.
    pub audit_dir: PathBuf,
    /// Its line format; delivery reads `json` logs.
    pub format: LineFormat,
    /// Where the cursors and rejected files live (created 0700).
    pub state_dir: PathBuf,
    /// The writer's durable mark; `None` reads every complete line (for a
    /// log no process is writing, or one written by another process with
    /// `sync = "always"`).
    pub durable: Option<DurableHandle>,
    /// Where reports about the sinks go; normally the pipeline that seals
    /// the log.
    pub emitter: Option<Emitter>,
    /// When old segments are removed; by default never.
    pub retention: Retention,
}

/// One retention pass at a time.
static RETAINING: Mutex<()> = Mutex::new(());

/// How often retention looks at the log.
const RETENTION_EVERY: Duration = Duration::from_secs(10);

/// A sink's state, as the metrics show it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SinkState {
    /// Delivering, or waiting for new entries.
    Up,
    /// Failing; retried with backoff.
    Down,
    /// Refused for good; waiting for a reload.
    Parked,
}

/// What one delivering sink has done.
#[derive(Clone, Debug, PartialEq, Eq)]
#[non_exhaustive]
pub struct DeliveryStats {
    /// The sink's name.
    pub name: String,
    /// Records the receiver acknowledged.
    pub sent: u64,
    /// Failed send attempts.
    pub failed: u64,
    /// Records sent again after a failure or a partial refusal.
    pub retried: u64,
    /// Records the receiver refused for good.
    pub rejected: u64,
    /// Durable entries not yet delivered (or skipped by the filter).
    pub lag_events: u64,
    /// Age of the oldest undelivered entry, when there is one.
    pub lag: Duration,
    /// The last seq delivered.
    pub cursor: u64,
    /// Up, down or parked.
    pub state: SinkState,
}

#[derive(Debug, Default)]
struct Counters {
    sent: AtomicU64,
    failed: AtomicU64,
    retried: AtomicU64,
    rejected: AtomicU64,
    lag_events: AtomicU64,
    lag_ms: AtomicU64,
    cursor: AtomicU64,
    state: AtomicU8,
}

#[derive(Debug, Default)]
struct Control {
    /// Stop once caught up, or at the deadline.
    stop: Option<Instant>,
    /// Reopen files and unpark at the next chance.
    reopen: bool,
}

#[derive(Debug)]
struct Shared {
    name: String,
    counters: Counters,
    control: Mutex<Control>,
    wake: Condvar,
}

impl Shared {
    fn control(&self) -> std::sync::MutexGuard<'_, Control> {
        self.control.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn stats(&self) -> DeliveryStats {
        let c = &self.counters;
        DeliveryStats {
            name: self.name.clone(),
            sent: c.sent.load(Ordering::Relaxed),
            failed: c.failed.load(Ordering::Relaxed),
            retried: c.retried.load(Ordering::Relaxed),
            rejected: c.rejected.load(Ordering::Relaxed),
            lag_events: c.lag_events.load(Ordering::Relaxed),
            lag: Duration::from_millis(c.lag_ms.load(Ordering::Relaxed)),
            cursor: c.cursor.load(Ordering::Relaxed),
            state: match c.state.load(Ordering::Relaxed) {
                1 => SinkState::Down,
                2 => SinkState::Parked,
                _ => SinkState::Up,
            },
        }
    }
}

/// The running delivery threads, one per sink, and retention.
#[derive(Debug)]
pub struct Delivery {
    sinks: Vec<(Arc<Shared>, Option<JoinHandle<()>>)>,
    config: Arc<DeliveryConfig>,
    /// Retention's thread and its stop flag.
    housekeeper: Option<(Arc<StopFlag>, JoinHandle<()>)>,
}

/// A flag a thread sleeps on until it is raised.
type StopFlag = (Mutex<bool>, Condvar);

impl Delivery {
    /// Loads every sink's cursor and starts its thread.
    pub fn start(config: DeliveryConfig, sinks: Vec<DeliverySink>) -> Result<Delivery, Error> {
        if config.format != LineFormat::Json {
            return Err(Error::Control {
                reason: format!(
                    "delivery from the audit log needs its json line format (it is {}); \
                     set [audit] format = \"json\"",
                    config.format.as_str()
                ),
            });
        }
        for (i, s) in sinks.iter().enumerate() {
            if s.name.is_empty() || sinks[..i].iter().any(|o| o.name == s.name) {
                return Err(Error::SinkName {
                    name: s.name.clone(),
                });
            }
        }
        create_private_dir(&config.state_dir).map_err(|e| Error::Control {
            reason: format!(
                "cannot create the delivery state directory {}: {e}",
                config.state_dir.display()
            ),
        })?;
        let config = Arc::new(config);
        let mut started = Vec::with_capacity(sinks.len());
        for sink in sinks {
            let cursor_path = config.state_dir.join(format!("{}.cursor", sink.name));
            let cursor = Cursor::load(&cursor_path).map_err(|e| Error::Control {
                reason: format!("sink {:?}: {e}", sink.name),
            })?;
            let shared = Arc::new(Shared {
                name: sink.name.clone(),
                counters: Counters::default(),
                control: Mutex::new(Control::default()),
                wake: Condvar::new(),
            });
            shared.counters.cursor.store(cursor.seq, Ordering::Relaxed);
            let runner = runner::Runner::new(
                Arc::clone(&config),
                sink,
                cursor,
                cursor_path,
                Arc::clone(&shared),
            );
            let handle = std::thread::Builder::new()
                .name(format!("vigil-sink-{}", shared.name))
                .spawn(move || runner.run())
                .map_err(|e| Error::Control {
                    reason: format!("cannot start a delivery thread: {e}"),
                })?;
            started.push((shared, Some(handle)));
        }
        let mut delivery = Delivery {
            sinks: started,
            config,
            housekeeper: None,
        };
        if delivery.config.retention.is_set() {
            let stop = Arc::new((Mutex::new(false), Condvar::new()));
            let (flag, config) = (Arc::clone(&stop), Arc::clone(&delivery.config));
            let cursors: Vec<Arc<Shared>> =
                delivery.sinks.iter().map(|(s, _)| Arc::clone(s)).collect();
            let handle = std::thread::Builder::new()
                .name("vigil-retention".into())
                .spawn(move || housekeep(&config, &cursors, &flag))
                .map_err(|e| Error::Control {
                    reason: format!("cannot start the retention thread: {e}"),
                })?;
            delivery.housekeeper = Some((stop, handle));
        }
        Ok(delivery)
    }

    /// Applies retention now (it also runs every 10 seconds on its own).
    pub fn apply_retention(&self) -> std::io::Result<Removed> {
        let shared: Vec<Arc<Shared>> = self.sinks.iter().map(|(s, _)| Arc::clone(s)).collect();
        retain(&self.config, &shared)
    }

    /// What every sink has done so far, in configuration order.
    pub fn stats(&self) -> Vec<DeliveryStats> {
        self.sinks.iter().map(|(s, _)| s.stats()).collect()
    }

    /// Reopens files and connections and resumes parked sinks (on SIGHUP,
    /// after the receiver's configuration was fixed).
    pub fn reopen(&self) {
        for (s, _) in &self.sinks {
            s.control().reopen = true;
            s.wake.notify_all();
        }
    }

    /// Lets every sink deliver what is durable for up to `drain`, then stops
    /// them and returns their final stats. A sink that is down or parked
    /// stops at once; its cursor keeps its place for the next start.
    pub fn shutdown(mut self, drain: Duration) -> Vec<DeliveryStats> {
        self.stop_housekeeper();
        let deadline = Instant::now() + drain;
        for (s, _) in &self.sinks {
            s.control().stop = Some(deadline);
            s.wake.notify_all();
        }
        for (_, handle) in &mut self.sinks {
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
        self.stats()
    }
}

impl Delivery {
    fn stop_housekeeper(&mut self) {
        if let Some((stop, handle)) = self.housekeeper.take() {
            *stop.0.lock().unwrap_or_else(|p| p.into_inner()) = true;
            stop.1.notify_all();
            let _ = handle.join();
        }
    }
}

/// One retention pass: removes what the limits say, keeps what a sink still
/// needs, and reports what went.
fn retain(config: &DeliveryConfig, sinks: &[Arc<Shared>]) -> std::io::Result<Removed> {
    let _one = RETAINING.lock().unwrap_or_else(|p| p.into_inner());
    let delivered = sinks
        .iter()
        .map(|s| s.counters.cursor.load(Ordering::Relaxed))
        .min()
        .unwrap_or(u64::MAX);
    let plan = retention::plan(&config.audit_dir, &config.retention, delivered)?;
    // The removal is sealed, durably, before the files go: the log then
    // always accounts for the entries it lost.
    if let (Some(event), Some(emitter)) = (plan.removed.event(), &config.emitter) {
        emitter
            .emit_durable(event, SEAL_REMOVAL_TIMEOUT)
            .map_err(|e| {
                std::io::Error::other(format!(
                    "the removal could not be sealed first ({e}); nothing was removed"
                ))
            })?;
    }
    plan.remove()
}

/// How long retention waits for its removal entry to be sealed.
const SEAL_REMOVAL_TIMEOUT: Duration = Duration::from_secs(10);

fn housekeep(config: &DeliveryConfig, sinks: &[Arc<Shared>], stop: &(Mutex<bool>, Condvar)) {
    let mut stopped = stop.0.lock().unwrap_or_else(|p| p.into_inner());
    while !*stopped {
        drop(stopped);
        if let Err(e) = retain(config, sinks)
            && let Some(emitter) = &config.emitter
        {
            emitter.emit(
                vigil_event::Event::new(
                    vigil_event::catalog::AUDIT_WRITE_FAILED,
                    "retention could not remove old audit segments",
                )
                .field("reason", e.to_string()),
            );
        }
        stopped = stop.0.lock().unwrap_or_else(|p| p.into_inner());
        if !*stopped {
            stopped = stop
                .1
                .wait_timeout(stopped, RETENTION_EVERY)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Drop for Delivery {
    fn drop(&mut self) {
        self.stop_housekeeper();
        let now = Instant::now();
        for (s, _) in &self.sinks {
            s.control().stop = Some(now);
            s.wake.notify_all();
        }
        for (_, handle) in &mut self.sinks {
            if let Some(h) = handle.take() {
                let _ = h.join();
            }
        }
    }
}

fn create_private_dir(dir: &std::path::Path) -> std::io::Result<()> {
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::DirBuilderExt;
        builder.mode(0o700);
    }
    builder.create(dir)
}
