//! One sink's delivery thread.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use vigil_event::{Event, Timestamp, catalog};
use vigil_seal::split_sealed;

use super::{Cursor, DeliveryConfig, DeliverySink, Entry, LogReader, ReadError, Shared};
use crate::transport::{Record, SendError};

/// How long an idle sink waits for new entries before looking again.
const IDLE_WAIT: Duration = Duration::from_millis(50);
/// How often the cursor is stored while the sink is behind, or has only
/// skipped entries its filter does not pass.
const STORE_EVERY: Duration = Duration::from_secs(1);

const UP: u8 = 0;
const DOWN: u8 = 1;
const PARKED: u8 = 2;

/// Delivery stopped while a batch was still unacknowledged.
struct Stopped;

/// What the waiting, backing off and reporting need: apart from the batch
/// buffers, so a batch can be sent while they are borrowed.
struct Ctl {
    config: Arc<DeliveryConfig>,
    shared: Arc<Shared>,
    name: String,
    backoff_range: (Duration, Duration),
    backoff: Duration,
    down_since: Option<Instant>,
    rng: u64,
}

pub(super) struct Runner {
    ctl: Ctl,
    sink: DeliverySink,
    cursor: Cursor,
    cursor_path: PathBuf,
    rejected_path: PathBuf,
    reader: LogReader,
    entries: Vec<Entry>,
    /// The events of the records prepared for sending, `events[..prepared]`;
    /// the rest are kept for their allocations.
    events: Vec<Event>,
    prepared: usize,
    formatted: Vec<u8>,
    /// Per record: index into `entries`, and its span in `formatted`.
    spans: Vec<(usize, usize, usize)>,
    lagging: bool,
    last_store: Instant,
    /// The cursor moved since it was last stored.
    dirty: bool,
    /// The record being parsed, reused.
    record: Vec<u8>,
}

impl Ctl {
    fn limit(&self) -> u64 {
        self.config
            .durable
            .as_ref()
            .map_or(u64::MAX, |d| d.synced())
    }

    fn report(&self, event: Event) {
        if let Some(emitter) = &self.config.emitter {
            emitter.emit(event.field("sink", self.name.clone()));
        }
    }

    /// After a failure, delivering again: report how long it was down.
    fn recovered(&mut self) {
        if let Some(since) = self.down_since.take() {
            self.shared.counters.state.store(UP, Ordering::Relaxed);
            self.report(
                Event::new(catalog::SINK_UP, "sink delivers again")
                    .field("lost", 0u64)
                    .field("down_ms", since.elapsed().as_millis() as u64),
            );
        }
    }

    /// Counts a failed attempt; the first of an outage marks the sink down
    /// and reports `sink.down` with the reason.
    fn failed(&mut self, why: String) {
        self.shared.counters.failed.fetch_add(1, Ordering::Relaxed);
        if self.down_since.is_none() {
            self.down_since = Some(Instant::now());
            self.shared.counters.state.store(DOWN, Ordering::Relaxed);
            self.report(Event::new(catalog::SINK_DOWN, "sink cannot deliver").field("reason", why));
        }
    }

    /// Records a failure outside sending (reading the log) and waits.
    fn fail(&mut self, why: &str) -> Result<(), Stopped> {
        self.failed(why.to_owned());
        if self.stop_requested().is_some() {
            return Err(Stopped);
        }
        self.sleep_backoff()
    }

    fn take_reopen(&self) -> bool {
        std::mem::take(&mut self.shared.control().reopen)
    }

    fn stop_requested(&self) -> Option<Instant> {
        self.shared.control().stop
    }

    fn past_deadline(&self) -> bool {
        self.stop_requested().is_some_and(|d| Instant::now() >= d)
    }

    /// Waits for new durable entries, a stop or a reopen.
    fn idle(&self, limit: u64) {
        match &self.config.durable {
            Some(d) if limit != u64::MAX => {
                d.wait(limit + 1, IDLE_WAIT);
            }
            _ => {
                let guard = self.shared.control();
                if guard.stop.is_none() && !guard.reopen {
                    let _ = self.shared.wake.wait_timeout(guard, IDLE_WAIT);
                }
            }
        }
    }

    /// Sleeps the current backoff (with jitter), then doubles it. Wakes
    /// early for a stop past its deadline.
    fn sleep_backoff(&mut self) -> Result<(), Stopped> {
        self.rng ^= self.rng << 13;
        self.rng ^= self.rng >> 7;
        self.rng ^= self.rng << 17;
        let jitter = self.backoff.as_micros() as u64 / 2;
        let wait =
            self.backoff + Duration::from_micros(if jitter == 0 { 0 } else { self.rng % jitter });
        self.backoff = (self.backoff * 2).min(self.backoff_range.1);
        let until = Instant::now() + wait;
        let mut guard = self.shared.control();
        loop {
            if let Some(deadline) = guard.stop
                && Instant::now() >= deadline.min(until)
                && Instant::now() >= deadline
            {
                return Err(Stopped);
            }
            if guard.reopen {
                return Ok(());
            }
            let now = Instant::now();
            if now >= until {
                return Ok(());
            }
            let mut wake = until - now;
            if let Some(deadline) = guard.stop {
                wake = wake.min(deadline.saturating_duration_since(now));
            }
            guard = self
                .shared
                .wake
                .wait_timeout(guard, wake)
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }

    /// Parked: waits for a reopen (then resumes) or a stop.
    fn wait_unparked(&mut self) -> Result<(), Stopped> {
        let mut guard = self.shared.control();
        loop {
            if guard.stop.is_some() {
                return Err(Stopped);
            }
            if std::mem::take(&mut guard.reopen) {
                drop(guard);
                self.shared.counters.state.store(DOWN, Ordering::Relaxed);
                self.backoff = self.backoff_range.0;
                return Ok(());
            }
            guard = self
                .shared
                .wake
                .wait_timeout(guard, Duration::from_secs(1))
                .map(|(g, _)| g)
                .unwrap_or_else(|p| p.into_inner().0);
        }
    }
}

impl Runner {
    pub(super) fn new(
        config: Arc<DeliveryConfig>,
        sink: DeliverySink,
        cursor: Cursor,
        cursor_path: PathBuf,
        shared: Arc<Shared>,
    ) -> Runner {
        let hint = (cursor.segment > 0).then_some((cursor.segment, cursor.offset));
        let reader = LogReader::new(&config.audit_dir, config.format, cursor.seq + 1, hint);
        let rejected_path = config.state_dir.join(format!("{}.rejected", sink.name));
        let mut seed = [0u8; 8];
        let _ = getrandom::fill(&mut seed);
        Runner {
            ctl: Ctl {
                name: sink.name.clone(),
                backoff_range: sink.backoff,
                backoff: sink.backoff.0,
                config,
                shared,
                down_since: None,
                rng: u64::from_le_bytes(seed) | 1,
            },
            sink,
            cursor,
            cursor_path,
            rejected_path,
            reader,
            entries: Vec::new(),
            events: Vec::new(),
            prepared: 0,
            formatted: Vec::new(),
            spans: Vec::new(),
            lagging: false,
            last_store: Instant::now(),
            dirty: false,
            record: Vec::new(),
        }
    }

    pub(super) fn run(mut self) {
        self.check_cursor();
        loop {
            if self.ctl.take_reopen() {
                self.sink.transport.reopen();
            }
            let limit = self.ctl.limit();
            let batch = self.sink.batch.max(1);
            let mut entries = std::mem::take(&mut self.entries);
            let read = self.reader.read(limit, batch, &mut entries);
            self.entries = entries;
            match read {
                Ok(()) => {}
                Err(ReadError::Behind { wanted, oldest }) => {
                    self.ctl.report(
                        Event::new(
                            catalog::SINK_BEHIND_RETENTION,
                            "sink fell behind the retained audit log",
                        )
                        .field("first_missing", wanted)
                        .field("oldest", oldest)
                        .field("lost", oldest - wanted),
                    );
                    self.reader.seek(oldest, None);
                    self.cursor.seq = oldest - 1;
                    continue;
                }
                Err(e) => {
                    if self.ctl.fail(&e.to_string()).is_err() {
                        break;
                    }
                    continue;
                }
            }
            if self.entries.is_empty() {
                if self.dirty {
                    self.store_cursor();
                }
                self.set_lag(limit, None);
                if self.ctl.stop_requested().is_some() {
                    break;
                }
                self.ctl.idle(limit);
                continue;
            }
            self.prepare();
            if !self.spans.is_empty() && self.deliver().is_err() {
                break;
            }
            self.advance(limit);
            if self.ctl.past_deadline() {
                break;
            }
        }
        self.store_cursor();
        self.sink.transport.close();
    }

    /// A cursor from another log, or ahead of this one, would deliver
    /// nothing (or the wrong entries): restart from the log's first entry.
    fn check_cursor(&mut self) {
        let limit = self.ctl.limit();
        let foreign = self
            .first_origin()
            .is_some_and(|o| !self.cursor.origin.is_empty() && o != self.cursor.origin);
        let ahead = self.ctl.config.durable.is_some() && self.cursor.seq > limit;
        if foreign || ahead {
            self.ctl.report(
                Event::new(catalog::SINK_CURSOR_RESET, "sink cursor reset")
                    .field("cursor", self.cursor.seq)
                    .field("log_last", limit.min(i64::MAX as u64))
                    .field(
                        "reason",
                        if foreign {
                            "cursor belongs to a log of another origin"
                        } else {
                            "cursor is ahead of the log"
                        },
                    ),
            );
            self.cursor = Cursor::default();
            self.reader.seek(1, None);
        }
    }

    /// The origin of the log's first readable entry, if any.
    fn first_origin(&self) -> Option<String> {
        let mut r = LogReader::new(&self.ctl.config.audit_dir, self.ctl.config.format, 1, None);
        let mut e = Vec::new();
        r.read(u64::MAX, 1, &mut e).ok()?;
        let first = e.first()?;
        let (record, _) = split_sealed(self.ctl.config.format, r.line(first)).ok()?;
        Event::from_json(&record)
            .ok()
            .map(|ev| ev.origin.to_string())
    }

    /// Parses, filters and formats the entries read.
    fn prepare(&mut self) {
        self.prepared = 0;
        self.formatted.clear();
        self.spans.clear();
        for (i, entry) in self.entries.iter().enumerate() {
            let line = self.reader.line(entry);
            self.record.clear();
            self.reader.record_into(entry, &mut self.record);
            if self.prepared == self.events.len() {
                self.events.push(Event::new(catalog::SINK_UP, ""));
            }
            if self.events[self.prepared].read_json(&self.record).is_err() {
                // A line the seal accepts but that is no vigil event cannot
                // come from vigil's writer; set it aside rather than stall.
                self.set_aside(entry.seq, line, "not a vigil json event");
                continue;
            }
            let event = &self.events[self.prepared];
            if event.kind != catalog::AUDIT_CHECKPOINT && !self.sink.filter.matches(event) {
                continue;
            }
            let start = self.formatted.len();
            self.sink.format.write(event, &mut self.formatted);
            self.spans.push((i, start, self.formatted.len()));
            self.prepared += 1;
        }
    }

    /// The events of the prepared records, in order.
    fn prepared(&self) -> &[Event] {
        &self.events[..self.prepared]
    }

    /// Sends the prepared records until every one is acknowledged or set
    /// aside.
    fn deliver(&mut self) -> Result<(), Stopped> {
        let records: Vec<Record<'_>> = self
            .spans
            .iter()
            .zip(&self.events[..self.prepared])
            .map(|(&(i, start, end), event)| Record {
                origin: &event.origin,
                seq: event.seq,
                event,
                formatted: &self.formatted[start..end],
                sealed: self.reader.line(&self.entries[i]),
            })
            .collect();
        let oldest = records.first().map(|r| r.event.time);
        let mut pending: Vec<usize> = (0..records.len()).collect();
        loop {
            let batch: Vec<Record<'_>> = pending.iter().map(|&i| records[i]).collect();
            match self.sink.transport.send(&batch) {
                Ok(sent) => {
                    self.ctl.recovered();
                    let c = &self.ctl.shared.counters;
                    for (j, reason) in &sent.rejected {
                        if let Some(r) = batch.get(*j) {
                            set_aside(&self.rejected_path, r.seq, r.sealed, reason);
                            c.rejected.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    if let Some((j, reason)) = sent.rejected.first() {
                        self.ctl.report(
                            Event::new(catalog::SINK_REJECTED, "receiver refused events")
                                .field("count", sent.rejected.len() as u64)
                                .field("first_seq", batch.get(*j).map_or(0, |r| r.seq))
                                .field("reason", reason.clone())
                                .field("file", self.rejected_path.display().to_string()),
                        );
                    }
                    let refused = sent.retry.iter().filter(|&&j| j < batch.len()).count()
                        + sent
                            .rejected
                            .iter()
                            .filter(|(j, _)| *j < batch.len())
                            .count();
                    let accepted = batch.len().saturating_sub(refused);
                    c.sent.fetch_add(accepted as u64, Ordering::Relaxed);
                    if sent.retry.is_empty() {
                        self.ctl.backoff = self.ctl.backoff_range.0;
                        return Ok(());
                    }
                    pending = sent
                        .retry
                        .iter()
                        .filter_map(|&j| pending.get(j).copied())
                        .collect();
                    c.retried.fetch_add(pending.len() as u64, Ordering::Relaxed);
                    if pending.is_empty() {
                        return Ok(());
                    }
                    self.ctl.sleep_backoff()?;
                }
                Err(SendError::Retry(why)) => {
                    let c = &self.ctl.shared.counters;
                    c.retried.fetch_add(batch.len() as u64, Ordering::Relaxed);
                    if let Some(t) = oldest {
                        set_lag_ms(&self.ctl.shared, t);
                    }
                    let limit = self.ctl.limit();
                    if limit != u64::MAX {
                        c.lag_events
                            .store(limit.saturating_sub(self.cursor.seq), Ordering::Relaxed);
                    }
                    self.ctl.failed(why);
                    if self.ctl.past_deadline() {
                        return Err(Stopped);
                    }
                    self.ctl.sleep_backoff()?;
                }
                Err(SendError::Park(why)) => {
                    let c = &self.ctl.shared.counters;
                    c.failed.fetch_add(1, Ordering::Relaxed);
                    c.state.store(PARKED, Ordering::Relaxed);
                    self.ctl.down_since.get_or_insert_with(Instant::now);
                    self.ctl.report(
                        Event::new(
                            catalog::SINK_PARKED,
                            "sink parked: the receiver refuses events",
                        )
                        .field("reason", why),
                    );
                    self.ctl.wait_unparked()?;
                    self.sink.transport.reopen();
                }
            }
        }
    }

    /// Moves the cursor past the batch just handled.
    fn advance(&mut self, limit: u64) {
        let Some(last) = self.entries.last().copied() else {
            return;
        };
        self.cursor.seq = last.seq;
        self.cursor.segment = last.segment;
        self.cursor.offset = last.end;
        if self.cursor.origin.is_empty()
            && let Some(ev) = self.prepared().first()
        {
            self.cursor.origin = ev.origin.to_string();
        }
        self.ctl
            .shared
            .counters
            .cursor
            .store(last.seq, Ordering::Relaxed);
        // Storing the cursor costs an fsync and a rename (milliseconds on a
        // disk): after every batch once caught up, at most once a second
        // while working through a backlog. A crash then re-sends at most
        // the last batch, or the last second of a backlog.
        self.dirty = true;
        let caught_up = last.seq >= limit;
        if self.last_store.elapsed() >= STORE_EVERY || (caught_up && !self.spans.is_empty()) {
            self.store_cursor();
        }
        let next_time = self.prepared().last().map(|e| e.time);
        self.set_lag(limit, next_time);
    }

    fn store_cursor(&mut self) {
        if let Err(e) = self.cursor.store(&self.cursor_path) {
            // Delivery goes on; a restart re-delivers from the older cursor.
            self.ctl.report(
                Event::new(catalog::SINK_DOWN, "sink cursor not saved").field(
                    "reason",
                    format!("cannot write {}: {e}", self.cursor_path.display()),
                ),
            );
        }
        self.last_store = Instant::now();
        self.dirty = false;
    }

    /// Updates the lag gauges and reports `sink.lagging` once per episode.
    fn set_lag(&mut self, limit: u64, last_sent: Option<Timestamp>) {
        let lag = if limit == u64::MAX {
            0
        } else {
            limit.saturating_sub(self.cursor.seq)
        };
        let c = &self.ctl.shared.counters;
        c.lag_events.store(lag, Ordering::Relaxed);
        match last_sent {
            Some(t) if lag > 0 => set_lag_ms(&self.ctl.shared, t),
            _ if lag == 0 => c.lag_ms.store(0, Ordering::Relaxed),
            _ => {}
        }
        if lag >= self.sink.lag_alert && !self.lagging {
            self.lagging = true;
            self.ctl.report(
                Event::new(catalog::SINK_LAGGING, "sink is lagging")
                    .field("events", lag)
                    .field("seconds", c.lag_ms.load(Ordering::Relaxed) / 1000),
            );
        } else if lag < self.sink.lag_alert / 2 {
            self.lagging = false;
        }
    }

    fn set_aside(&self, seq: u64, line: &[u8], reason: &str) {
        set_aside(&self.rejected_path, seq, line, reason);
        self.ctl
            .shared
            .counters
            .rejected
            .fetch_add(1, Ordering::Relaxed);
        self.ctl.report(
            Event::new(catalog::SINK_REJECTED, "entry set aside")
                .field("count", 1u64)
                .field("first_seq", seq)
                .field("reason", reason.to_owned())
                .field("file", self.rejected_path.display().to_string()),
        );
    }
}

fn set_lag_ms(shared: &Shared, oldest: Timestamp) {
    let age = Timestamp::now()
        .as_millis()
        .saturating_sub(oldest.as_millis())
        .max(0);
    shared.counters.lag_ms.store(age as u64, Ordering::Relaxed);
}

/// Appends a refused entry to the sink's rejected file (mode 0600): the
/// reason, a tab, the sealed line.
fn set_aside(path: &std::path::Path, seq: u64, line: &[u8], reason: &str) {
    let mut options = OpenOptions::new();
    options.create(true).append(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    if let Ok(mut f) = options.open(path) {
        let reason = reason.replace(['\t', '\n', '\r'], " ");
        let mut buf = format!("seq={seq}\t{reason}\t").into_bytes();
        buf.extend_from_slice(line);
        buf.push(b'\n');
        let _ = f.write_all(&buf);
    }
}
