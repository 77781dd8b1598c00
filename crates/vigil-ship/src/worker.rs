//! The worker thread: numbers each event, then filters, formats and writes
//! it to every sink, and reports drops and sink failures as events of its own.

use std::collections::VecDeque;
use std::io;
use std::panic::{self, AssertUnwindSafe};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use vigil_event::{Ack, Emitter, Event, Format, Overflow, Queued, Receiver, catalog};
use vigil_seal::Sealer;
use zeroize::Zeroizing;

use crate::sink::{Health, Sink};
use crate::stats::Counters;

/// How long the worker waits for an event before it looks at drops, idle
/// sinks and the stop flag. Bounds the latency of `shutdown`.
const TICK: Duration = Duration::from_millis(20);

/// While events keep coming, the worker looks at the queue this often
/// instead of blocking on it: a blocked worker must be woken by every
/// emitter (a futex call on the emitting thread), a polling one only by an
/// urgent event (`Queued::is_urgent`: warnings and above, and events an
/// emitter waits on), which it then takes at once. Each look costs a
/// wake-up of about 10 µs, paid on the machine the proxy shares with its
/// database: at 4 ms the worker behind a busy proxy spends about a quarter
/// less CPU per event than at 1 ms, and an event nobody waits for is still
/// sealed at most 4 ms after it was emitted.
const POLL: Duration = Duration::from_millis(4);

/// How long after its last event the worker keeps polling before it blocks.
const BUSY_FOR: Duration = Duration::from_millis(100);

/// Events taken from the queue between two looks at drops and flush times.
const BATCH: usize = 512;

/// At shutdown, how long the queue must stay empty after `close` before the
/// worker stops: emitters that passed the closed check just before it, or
/// were blocked on a full queue, still get their event in.
const GRACE: Duration = Duration::from_millis(10);

/// Flush rounds per flush: a round can make a sink go down or come back up,
/// and the report of that is written, then flushed, in the next round.
const FLUSH_ROUNDS: usize = 4;

/// One format's rendering of the current event, shared by its sinks.
#[derive(Debug, Default)]
struct Record {
    /// The record and its `\n`.
    buf: Vec<u8>,
    /// `None` until formatted for the current event; `Err` if the formatter
    /// panicked.
    state: Option<Result<(), String>>,
}

/// An event the worker produces itself, and the sink it is about, which
/// does not receive it.
#[derive(Debug)]
struct Report {
    event: Event,
    skip: Option<usize>,
}

#[derive(Debug)]
pub(crate) struct Worker {
    rx: Receiver,
    origin: Arc<str>,
    formats: Vec<Format>,
    sinks: Vec<Sink>,
    counters: Arc<Counters>,
    stop: Arc<AtomicBool>,
    flush_interval: Duration,
    /// The last sequence number given out.
    seq: u64,
    /// One per format, indexed like `formats`.
    records: Vec<Record>,
    dropped_total: u64,
    reports: VecDeque<Report>,
    last_flush: Instant,
    /// The sealed audit log, which numbers every event when present.
    audit: Option<Sealer>,
    /// True while the audit log fails to write; reported once per outage.
    audit_failing: bool,
    /// Requests from the [`Pipeline`](crate::Pipeline) handle.
    control: Option<mpsc::Receiver<Control>>,
}

/// A request to the worker thread, answered on `reply`.
#[derive(Debug)]
pub(crate) enum Control {
    /// Rotate the audit key: seal the rotation, checkpoint, new chain.
    RotateAuditKey {
        version: u32,
        key: Zeroizing<[u8; 32]>,
        reply: mpsc::Sender<Result<(), String>>,
    },
    /// Seal a checkpoint now; reply with its signed note.
    Checkpoint {
        reply: mpsc::Sender<Result<String, String>>,
    },
}

impl Worker {
    pub(crate) fn new(
        rx: Receiver,
        origin: Arc<str>,
        formats: Vec<Format>,
        sinks: Vec<Sink>,
        counters: Arc<Counters>,
        stop: Arc<AtomicBool>,
        flush_interval: Duration,
    ) -> Worker {
        let records = formats.iter().map(|_| Record::default()).collect();
        Worker {
            rx,
            origin,
            formats,
            sinks,
            counters,
            stop,
            flush_interval,
            seq: 0,
            records,
            dropped_total: 0,
            reports: VecDeque::new(),
            last_flush: Instant::now(),
            audit: None,
            audit_failing: false,
            control: None,
        }
    }

    /// Takes requests (key rotation, checkpoints) from `control`.
    pub(crate) fn with_control(mut self, control: mpsc::Receiver<Control>) -> Worker {
        self.control = Some(control);
        self
    }

    /// Answers the requests waiting on the control channel.
    fn serve_control(&mut self) {
        let Some(control) = self.control.as_ref() else {
            return;
        };
        let requests: Vec<Control> = std::iter::from_fn(|| control.try_recv().ok()).collect();
        for request in requests {
            match request {
                Control::RotateAuditKey {
                    version,
                    key,
                    reply,
                } => {
                    let result = match self.audit.as_mut() {
                        None => Err("no audit log is configured".to_owned()),
                        Some(audit) => audit.rotate_key(version, key).map_err(|e| e.to_string()),
                    };
                    let _ = reply.send(result);
                }
                Control::Checkpoint { reply } => {
                    let result = match self.audit.as_mut() {
                        None => Err("no audit log is configured".to_owned()),
                        Some(audit) => audit.checkpoint().map_err(|e| e.to_string()),
                    };
                    let _ = reply.send(result);
                }
            }
            self.audit_periodic();
        }
    }

    /// Publishes the queue length and the audit log's health.
    fn publish_status(&self) {
        self.counters
            .queued
            .store(self.rx.len() as u64, Ordering::Relaxed);
        self.counters
            .audit_failing
            .store(self.audit_failing, Ordering::Relaxed);
        if let Some(audit) = &self.audit {
            let age = audit.last_checkpoint().elapsed().as_millis();
            self.counters
                .checkpoint_age_ms
                .store(u64::try_from(age).unwrap_or(u64::MAX), Ordering::Relaxed);
        }
    }

    /// Seals every event into `audit` before the sinks see it.
    pub(crate) fn with_audit(mut self, audit: Option<Sealer>) -> Worker {
        self.audit = audit;
        self
    }

    /// Runs until the stop flag is set, then drains the queue, flushes and
    /// closes every sink.
    pub(crate) fn run(mut self) {
        self.rx.wake_on_urgent();
        let mut last_event = Instant::now();
        while !self.stop.load(Ordering::Acquire) {
            match self.next_event(&mut last_event) {
                Some(item) => {
                    self.accept(item);
                    for _ in 1..BATCH {
                        match self.rx.try_recv() {
                            Some(item) => self.accept(item),
                            None => break,
                        }
                    }
                    self.report_drops();
                    self.audit_periodic();
                    if self.rx.is_empty() || self.last_flush.elapsed() >= self.flush_interval {
                        self.flush_all(false);
                    }
                }
                None => {
                    self.report_drops();
                    self.audit_periodic();
                    self.flush_all(false);
                }
            }
            self.serve_control();
            self.publish_status();
        }
        self.finish();
    }

    /// The next event, or `None` after a tick without one.
    fn next_event(&self, last_event: &mut Instant) -> Option<Queued> {
        if let Some(item) = self.rx.try_recv() {
            *last_event = Instant::now();
            return Some(item);
        }
        if last_event.elapsed() >= BUSY_FOR {
            let item = self.rx.recv_timeout(TICK);
            if item.is_some() {
                *last_event = Instant::now();
            }
            return item;
        }
        let deadline = Instant::now() + TICK;
        while Instant::now() < deadline && !self.stop.load(Ordering::Acquire) {
            std::thread::park_timeout(POLL);
            if let Some(item) = self.rx.try_recv() {
                *last_event = Instant::now();
                return Some(item);
            }
        }
        None
    }

    fn finish(mut self) {
        self.rx.close();
        loop {
            while let Some(item) = self.rx.try_recv() {
                self.accept(item);
            }
            self.report_drops();
            match self.rx.recv_timeout(GRACE) {
                Some(item) => self.accept(item),
                None => break,
            }
        }
        // Disconnect the queue before the slow part (flushing), so that an
        // emitter that passed the closed check before `close` and only sends
        // now is told the queue is gone, and counts its event as dropped,
        // instead of leaving it in a queue nobody reads.
        let (_, detached) = Emitter::channel(1, Overflow::Drop);
        let rx = std::mem::replace(&mut self.rx, detached);
        let late: Vec<Queued> = std::iter::from_fn(|| rx.try_recv()).collect();
        let late_drops = rx.take_dropped();
        drop(rx);
        for item in late {
            self.accept(item);
        }
        self.report_dropped(late_drops);
        if let Some(audit) = self.audit.take() {
            match audit.close() {
                Ok(generated) => {
                    for event in generated {
                        self.write_sinks(&event, None);
                    }
                }
                Err(e) => {
                    let event = audit_failed_event(&e.to_string());
                    self.write_sinks(&event, None);
                }
            }
        }
        self.flush_all(true);
        for sink in self.sinks.drain(..) {
            let _ = sink.close();
        }
    }

    /// An event from the queue.
    fn accept(&mut self, item: Queued) {
        self.counters.accepted.fetch_add(1, Ordering::Relaxed);
        self.deliver(item.event, None, item.ack);
        self.deliver_reports();
    }

    fn deliver_reports(&mut self) {
        while let Some(Report { event, skip }) = self.reports.pop_front() {
            self.deliver(event, skip, None);
        }
    }

    /// Numbers `event` (sealing it when there is an audit log), acknowledges
    /// its seq, and writes it to the sinks; entries the audit log sealed on
    /// its own go to the sinks too, in seq order.
    fn deliver(&mut self, mut event: Event, skip: Option<usize>, ack: Option<Ack>) {
        let Some(audit) = self.audit.as_mut() else {
            self.seq += 1;
            event.seq = self.seq;
            event.origin = Arc::clone(&self.origin);
            self.write_sinks(&event, skip);
            if let Some(ack) = ack {
                ack.done(event.seq);
            }
            return;
        };
        let sealed = audit.append(&mut event);
        let generated = audit.take_generated();
        let error = audit.take_error();
        match sealed {
            Ok(seq) => {
                if let Some(ack) = ack {
                    ack.done(seq);
                }
            }
            Err(e) => {
                // Not sealed: the sinks still get it, without a seq. An
                // emitter waiting for durability is told by the dropped ack.
                event.seq = 0;
                event.origin = Arc::clone(&self.origin);
                self.audit_failed(e.to_string());
            }
        }
        if let Some(e) = error {
            self.audit_failed(e.to_string());
        }
        let (before, after): (Vec<Event>, Vec<Event>) = generated
            .into_iter()
            .partition(|g| event.seq != 0 && g.seq < event.seq);
        for g in &before {
            self.write_sinks(g, None);
        }
        self.write_sinks(&event, skip);
        for g in &after {
            self.write_sinks(g, None);
        }
    }

    /// Writes buffered audit entries to the file, seals heartbeat
    /// checkpoints, and reports audit failures and recoveries.
    fn audit_periodic(&mut self) {
        let Some(audit) = self.audit.as_mut() else {
            return;
        };
        let flushed = audit.flush();
        let ticked = audit.tick();
        let generated = audit.take_generated();
        let error = audit.take_error();
        let healthy = flushed.is_ok() && ticked.is_ok() && error.is_none() && audit.backlog() == 0;
        for event in &generated {
            self.write_sinks(event, None);
        }
        for e in [flushed.err(), ticked.err(), error].into_iter().flatten() {
            self.audit_failed(e.to_string());
        }
        if healthy {
            self.audit_failing = false;
        }
        self.deliver_reports();
    }

    /// Reports the first audit failure of an outage as `audit.write_failed`.
    fn audit_failed(&mut self, reason: String) {
        if !self.audit_failing {
            self.audit_failing = true;
            self.reports.push_back(Report {
                event: audit_failed_event(&reason),
                skip: None,
            });
        }
    }

    /// Writes a numbered event to every sink whose filter passes it, except
    /// `skip`. Formats it at most once per format.
    fn write_sinks(&mut self, event: &Event, skip: Option<usize>) {
        for record in &mut self.records {
            record.state = None;
        }
        for i in 0..self.sinks.len() {
            let sink = &self.sinks[i];
            if skip == Some(i) || !sink.filter.matches(event) {
                sink.counters.filtered_out.fetch_add(1, Ordering::Relaxed);
                continue;
            }
            let f = sink.format;
            let outcome = {
                let record = &mut self.records[f];
                let buf = &mut record.buf;
                let format = &self.formats[f];
                let state = record
                    .state
                    .get_or_insert_with(|| render(format, event, buf));
                match state {
                    Ok(()) => {
                        let sink = &mut self.sinks[i];
                        guarded(|| sink.write(&record.buf))
                    }
                    Err(reason) => Err(reason.clone()),
                }
            };
            match outcome {
                Ok(true) => self.sink_delivered(i),
                Ok(false) => {}
                Err(reason) => {
                    // Down first, so this record counts in the outage's losses.
                    self.sink_failed(i, reason);
                    self.sinks[i].counters.lost.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
    }

    /// Reports events emitters could not queue since the last look.
    fn report_drops(&mut self) {
        let count = self.rx.take_dropped();
        self.report_dropped(count);
    }

    fn report_dropped(&mut self, count: u64) {
        if count == 0 {
            return;
        }
        self.dropped_total += count;
        self.counters
            .dropped
            .store(self.dropped_total, Ordering::Relaxed);
        let event = Event::new(
            catalog::EVENTS_DROPPED,
            format!(
                "{count} events were dropped because the event queue was full or closing \
                 ({} since start)",
                self.dropped_total
            ),
        )
        .field("count", count)
        .field("total", self.dropped_total);
        self.deliver(event, None, None);
        self.deliver_reports();
    }

    /// Flushes every sink with something to flush. A failing sink is tried
    /// at most once per flush interval here, unless `shutting_down`.
    fn flush_all(&mut self, shutting_down: bool) {
        self.last_flush = Instant::now();
        for _ in 0..FLUSH_ROUNDS {
            for i in 0..self.sinks.len() {
                let sink = &mut self.sinks[i];
                if !sink.is_dirty() {
                    continue;
                }
                if let Health::Down { last_attempt, .. } = sink.health
                    && !shutting_down
                    && last_attempt.elapsed() < self.flush_interval
                {
                    continue;
                }
                match guarded(|| sink.flush()) {
                    Ok(()) => self.sink_delivered(i),
                    Err(reason) => self.sink_failed(i, reason),
                }
            }
            if self.reports.is_empty() {
                return;
            }
            self.deliver_reports();
        }
    }

    /// Counts a failure of sink `i`; the first of an outage is reported to
    /// the other sinks as `sink.down`.
    fn sink_failed(&mut self, i: usize, reason: String) {
        let sink = &mut self.sinks[i];
        sink.counters.errors.fetch_add(1, Ordering::Relaxed);
        match &mut sink.health {
            Health::Down { last_attempt, .. } => *last_attempt = Instant::now(),
            Health::Up => {
                sink.health = Health::Down {
                    lost_before: sink.counters.lost.load(Ordering::Relaxed),
                    last_attempt: Instant::now(),
                };
                let event = Event::new(
                    catalog::SINK_DOWN,
                    format!("sink `{}` cannot deliver: {reason}; retrying", sink.name),
                )
                .field("sink", sink.name.to_string())
                .field("reason", reason);
                self.reports.push_back(Report {
                    event,
                    skip: Some(i),
                });
            }
        }
    }

    /// Sink `i` flushed; if it was down, report `sink.up` to every sink.
    fn sink_delivered(&mut self, i: usize) {
        let sink = &mut self.sinks[i];
        if let Health::Down { lost_before, .. } = sink.health {
            sink.health = Health::Up;
            let lost = sink
                .counters
                .lost
                .load(Ordering::Relaxed)
                .saturating_sub(lost_before);
            let event = Event::new(
                catalog::SINK_UP,
                format!(
                    "sink `{}` delivers again; {lost} records were lost meanwhile",
                    sink.name
                ),
            )
            .field("sink", sink.name.to_string())
            .field("lost", lost);
            self.reports.push_back(Report { event, skip: None });
        }
    }
}

fn audit_failed_event(reason: &str) -> Event {
    Event::new(
        catalog::AUDIT_WRITE_FAILED,
        format!("the audit log cannot be written: {reason}; sealed entries are kept in memory and retried"),
    )
    .field("reason", reason.to_owned())
}

/// Formats `event` into `buf` as one line; a panicking formatter is an error.
fn render(format: &Format, event: &Event, buf: &mut Vec<u8>) -> Result<(), String> {
    buf.clear();
    match panic::catch_unwind(AssertUnwindSafe(|| format.write(event, buf))) {
        Ok(()) => {
            buf.push(b'\n');
            Ok(())
        }
        Err(payload) => {
            buf.clear();
            Err(format!(
                "the {} formatter panicked: {}",
                format.name(),
                panic_message(&*payload)
            ))
        }
    }
}

/// Runs an I/O operation on a sink's writer; a panic in the writer becomes
/// an error like any other.
fn guarded<T>(op: impl FnOnce() -> io::Result<T>) -> Result<T, String> {
    match panic::catch_unwind(AssertUnwindSafe(op)) {
        Ok(Ok(v)) => Ok(v),
        Ok(Err(e)) => Err(e.to_string()),
        Err(payload) => Err(format!("the writer panicked: {}", panic_message(&*payload))),
    }
}

/// The message of a panic payload.
pub(crate) fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    if let Some(s) = payload.downcast_ref::<&str>() {
        (*s).to_owned()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "no message".to_owned()
    }
}
