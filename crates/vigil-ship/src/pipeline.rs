//! The pipeline: its builder, its handle, and how it starts and stops.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::Duration;

use vigil_event::{Emitter, Format, Overflow};
use vigil_seal::Sealer;

use crate::error::Error;
use crate::sink::{Sink, SinkSpec};
use crate::stats::{Counters, SinkCounters, Stats};
use crate::worker::{Control, Worker, panic_message};
use zeroize::Zeroizing;

/// Configures and starts a [`Pipeline`]. Made by [`Pipeline::builder`].
#[derive(Debug)]
pub struct PipelineBuilder {
    origin: Option<Arc<str>>,
    capacity: usize,
    overflow: Overflow,
    flush_interval: Duration,
    sinks: Vec<SinkSpec>,
    audit: Option<Sealer>,
}

impl Default for PipelineBuilder {
    fn default() -> Self {
        PipelineBuilder {
            origin: None,
            capacity: 65_536,
            overflow: Overflow::default(),
            flush_interval: Duration::from_millis(100),
            sinks: Vec::new(),
            audit: None,
        }
    }
}

impl PipelineBuilder {
    /// The name of this vigil instance, stamped on every event (required).
    /// With `seq` it identifies an event, so it must be unique among
    /// instances: the host name is a good choice.
    pub fn origin(mut self, origin: impl AsRef<str>) -> Self {
        self.origin = Some(Arc::from(origin.as_ref()));
        self
    }

    /// How many events the queue holds (default 65 536; at least 1).
    pub fn capacity(mut self, capacity: usize) -> Self {
        self.capacity = capacity;
        self
    }

    /// What emitting does when the queue is full (default
    /// [`Overflow::Block`]). Drops are counted and reported either way.
    pub fn overflow(mut self, overflow: Overflow) -> Self {
        self.overflow = overflow;
        self
    }

    /// The longest a written record waits in a sink's buffer while events
    /// keep coming (default 100 ms). Sinks are also flushed whenever the
    /// queue runs empty, and a failing sink is retried at this interval.
    pub fn flush_interval(mut self, interval: Duration) -> Self {
        self.flush_interval = interval;
        self
    }

    /// Seals every event into this audit log before any sink sees it; the
    /// log then numbers the events, and [`Emitter::emit_durable`] waits for
    /// its group commit.
    pub fn audit(mut self, sealer: Sealer) -> Self {
        self.audit = Some(sealer);
        self
    }

    /// Adds a sink. Names must be unique.
    pub fn sink(mut self, sink: SinkSpec) -> Self {
        self.sinks.push(sink);
        self
    }

    /// Opens every sink, then starts the worker thread. Returns the pipeline
    /// and the emitter that feeds it; clone the emitter freely.
    pub fn start(self) -> Result<(Pipeline, Emitter), Error> {
        let origin = match self.origin {
            Some(origin) if !origin.trim().is_empty() => origin,
            _ => return Err(Error::NoOrigin),
        };
        if self.sinks.is_empty() && self.audit.is_none() {
            return Err(Error::NoSinks);
        }
        for (i, spec) in self.sinks.iter().enumerate() {
            if spec.name.is_empty() || self.sinks[..i].iter().any(|s| s.name == spec.name) {
                return Err(Error::SinkName {
                    name: spec.name.clone(),
                });
            }
        }

        let mut formats: Vec<Format> = Vec::new();
        let mut sinks = Vec::with_capacity(self.sinks.len());
        let mut handles = Vec::with_capacity(self.sinks.len());
        for spec in self.sinks {
            let format = match formats.iter().position(|f| *f == spec.format) {
                Some(i) => i,
                None => {
                    formats.push(spec.format);
                    formats.len() - 1
                }
            };
            let out = spec.target.open(&spec.name)?;
            let name: Arc<str> = Arc::from(spec.name);
            let counters = Arc::new(SinkCounters::default());
            handles.push((Arc::clone(&name), Arc::clone(&counters)));
            sinks.push(Sink::new(name, spec.filter, format, out, counters));
        }

        let (emitter, rx) = Emitter::channel(self.capacity, self.overflow);
        if let Some(audit) = &self.audit {
            let durable = audit.durable();
            rx.set_durability(Arc::new(move |seq, timeout| durable.wait(seq, timeout)));
        }
        let counters = Arc::new(Counters::default());
        let stop = Arc::new(AtomicBool::new(false));
        let audited = self.audit.is_some();
        let (control, control_rx) = mpsc::channel();
        let worker = Worker::new(
            rx,
            origin,
            formats,
            sinks,
            Arc::clone(&counters),
            Arc::clone(&stop),
            self.flush_interval,
        )
        .with_audit(self.audit)
        .with_control(control_rx);
        let handle = thread::Builder::new()
            .name("vigil-ship".to_owned())
            .spawn(move || worker.run())
            .map_err(|source| Error::Spawn { source })?;
        let pipeline = Pipeline {
            worker: Some(handle),
            stop,
            counters,
            sinks: handles,
            control: Mutex::new(control),
            audited,
        };
        Ok((pipeline, emitter))
    }
}

/// A running event pipeline: a worker thread that numbers every event from
/// its [`Emitter`], and writes it to each sink whose filter passes it.
///
/// Stop it with [`shutdown`](Self::shutdown); dropping it does the same and
/// discards the result.
#[derive(Debug)]
pub struct Pipeline {
    worker: Option<JoinHandle<()>>,
    stop: Arc<AtomicBool>,
    counters: Arc<Counters>,
    sinks: Vec<(Arc<str>, Arc<SinkCounters>)>,
    control: Mutex<mpsc::Sender<Control>>,
    audited: bool,
}

impl Pipeline {
    /// A builder with the defaults: capacity 65 536, [`Overflow::Block`],
    /// flushes every 100 ms, no sinks and no origin.
    pub fn builder() -> PipelineBuilder {
        PipelineBuilder::default()
    }

    /// The counters so far. `written` lags by up to a flush interval.
    pub fn stats(&self) -> Stats {
        Stats {
            accepted: self.counters.accepted.load(Ordering::Relaxed),
            dropped: self.counters.dropped.load(Ordering::Relaxed),
            sinks: self
                .sinks
                .iter()
                .map(|(name, c)| c.snapshot(name))
                .collect(),
            queued: self.counters.queued.load(Ordering::Relaxed),
            last_checkpoint_age: self.audited.then(|| {
                Duration::from_millis(self.counters.checkpoint_age_ms.load(Ordering::Relaxed))
            }),
            audit_failing: self.counters.audit_failing.load(Ordering::Relaxed),
        }
    }

    /// Rotates the audit log's key to `version` (already stored in the
    /// keystore): the worker seals `audit.key_rotated` and a checkpoint
    /// under the old key and starts a new chain under `key`. Waits for the
    /// worker, at most `timeout`.
    pub fn rotate_audit_key(
        &self,
        version: u32,
        key: Zeroizing<[u8; 32]>,
        timeout: Duration,
    ) -> Result<(), Error> {
        let (reply, answer) = mpsc::channel();
        self.request(Control::RotateAuditKey {
            version,
            key,
            reply,
        })?;
        answer
            .recv_timeout(timeout)
            .map_err(|_| Error::Control {
                reason: "the pipeline did not answer".to_owned(),
            })?
            .map_err(|reason| Error::Control { reason })
    }

    /// Seals a checkpoint now and returns its signed note.
    pub fn checkpoint(&self, timeout: Duration) -> Result<String, Error> {
        let (reply, answer) = mpsc::channel();
        self.request(Control::Checkpoint { reply })?;
        answer
            .recv_timeout(timeout)
            .map_err(|_| Error::Control {
                reason: "the pipeline did not answer".to_owned(),
            })?
            .map_err(|reason| Error::Control { reason })
    }

    fn request(&self, request: Control) -> Result<(), Error> {
        let control = self.control.lock().unwrap_or_else(|p| p.into_inner());
        control.send(request).map_err(|_| Error::Control {
            reason: "the pipeline has stopped".to_owned(),
        })
    }

    /// Stops the pipeline: from now on emitters count their events as
    /// dropped and never wait; every event already queued is written, the
    /// drops are reported, and every sink is flushed and closed. Nothing
    /// accepted is lost unless a sink is failing, which the stats show.
    pub fn shutdown(mut self) -> Result<Stats, Error> {
        self.stop_worker()?;
        Ok(self.stats())
    }

    fn stop_worker(&mut self) -> Result<(), Error> {
        self.stop.store(true, Ordering::Release);
        match self.worker.take() {
            Some(handle) => handle.join().map_err(|payload| Error::WorkerPanicked {
                message: panic_message(&*payload),
            }),
            None => Ok(()),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Nobody is left to tell; a worker panic was already printed.
        let _ = self.stop_worker();
    }
}
