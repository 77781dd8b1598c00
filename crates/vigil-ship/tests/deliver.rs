//! Delivery from the sealed audit log: cursors, retries, parking, rejected
//! records, restarts, filters, retention gaps.
#![allow(clippy::unwrap_used)]

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use vigil_event::{Emitter, Event, Filter, Format, Overflow, Selector, Severity, catalog};
use vigil_seal::{CheckpointSigner, LineFormat, SealConfig, SealKeys, Sealer, SyncPolicy};
use vigil_ship::Pipeline;
use vigil_ship::deliver::{Cursor, Delivery, DeliveryConfig, DeliverySink, Retention, SinkState};
use vigil_ship::transport::file::{FileConfig, FileTransport};
use vigil_ship::transport::{Record, SendError, Sent, Transport};
use zeroize::Zeroizing;

type Received = (u64, Vec<u8>, Vec<u8>);

/// A receiver in memory whose answers the test scripts.
#[derive(Clone, Default)]
struct Memory {
    /// `(seq, formatted, sealed)` of every accepted record.
    got: Arc<Mutex<Vec<Received>>>,
    script: Arc<Mutex<VecDeque<Result<Sent, SendError>>>>,
    reopened: Arc<Mutex<u32>>,
}

impl Memory {
    fn seqs(&self) -> Vec<u64> {
        self.got
            .lock()
            .unwrap()
            .iter()
            .map(|(s, _, _)| *s)
            .collect()
    }
    fn then(&self, answer: Result<Sent, SendError>) {
        self.script.lock().unwrap().push_back(answer);
    }
}

impl Transport for Memory {
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError> {
        let answer = self
            .script
            .lock()
            .unwrap()
            .pop_front()
            .unwrap_or(Ok(Sent::all()));
        if let Ok(sent) = &answer {
            let mut got = self.got.lock().unwrap();
            for (i, r) in batch.iter().enumerate() {
                if !sent.retry.contains(&i) && !sent.rejected.iter().any(|(j, _)| *j == i) {
                    got.push((r.seq, r.formatted.to_vec(), r.sealed.to_vec()));
                }
            }
        }
        answer
    }
    fn reopen(&mut self) {
        *self.reopened.lock().unwrap() += 1;
    }
}

fn keys() -> SealKeys {
    SealKeys {
        version: 1,
        audit_key: Zeroizing::new([7; 32]),
        signer: CheckpointSigner::new("test", &[9; 32]).unwrap(),
    }
}

struct Log {
    dir: tempfile::TempDir,
    pipeline: Option<Pipeline>,
    emitter: Emitter,
    durable: vigil_seal::DurableHandle,
}

impl Log {
    fn open(dir: tempfile::TempDir) -> Log {
        let mut cfg = SealConfig::new(dir.path().join("audit"), "db1");
        cfg.sync = SyncPolicy::Interval(Duration::from_millis(5));
        cfg.segment_max_bytes = 16 * 1024;
        cfg.checkpoint_every = 500;
        let (sealer, _) = Sealer::open(cfg, keys()).unwrap();
        let durable = sealer.durable();
        let (pipeline, emitter) = Pipeline::builder()
            .origin("db1")
            .overflow(Overflow::Block)
            .audit(sealer)
            .start()
            .unwrap();
        Log {
            dir,
            pipeline: Some(pipeline),
            emitter,
            durable,
        }
    }

    fn new() -> Log {
        Log::open(tempfile::tempdir().unwrap())
    }

    fn config(&self) -> DeliveryConfig {
        DeliveryConfig {
            audit_dir: self.dir.path().join("audit"),
            format: LineFormat::Json,
            state_dir: self.dir.path().join("state"),
            durable: Some(self.durable.clone()),
            emitter: Some(self.emitter.clone()),
            retention: Retention::default(),
        }
    }

    fn emit(&self, n: u64) {
        for i in 0..n {
            self.emitter.emit(
                Event::new(catalog::STATEMENT_EXECUTED, "statement")
                    .field("sql", "select $1")
                    .field("i", i),
            );
        }
    }

    /// Every sealed event, by reading the segments back.
    fn sealed(&self) -> Vec<Event> {
        let mut out = Vec::new();
        for (_, path) in vigil_seal::list_segments(&self.dir.path().join("audit")).unwrap() {
            for line in std::fs::read(path).unwrap().split(|b| *b == b'\n') {
                if line.is_empty() {
                    continue;
                }
                let (record, _) = vigil_seal::split_sealed(LineFormat::Json, line).unwrap();
                out.push(Event::from_json(&record).unwrap());
            }
        }
        out
    }

    fn close(mut self) -> Log {
        self.pipeline.take().unwrap().shutdown().unwrap();
        self
    }
}

fn wait_until(what: &str, timeout: Duration, mut f: impl FnMut() -> bool) {
    let end = Instant::now() + timeout;
    while !f() {
        assert!(Instant::now() < end, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(10));
    }
}

fn sink(name: &str, t: impl Transport + 'static) -> DeliverySink {
    let mut s = DeliverySink::new(name, Format::Json, Box::new(t));
    s.backoff = (Duration::from_millis(5), Duration::from_millis(40));
    s.batch = 100;
    s
}

fn count(events: &[Event], kind: vigil_event::Kind, sink: &str) -> usize {
    events
        .iter()
        .filter(|e| {
            e.kind == kind
                && e.field_value("sink")
                    .is_some_and(|v| v.to_string().contains(sink))
        })
        .count()
}

#[test]
fn delivers_every_entry_in_order_across_segments_and_keeps_the_cursor() {
    let log = Log::new();
    let mem = Memory::default();
    let delivery = Delivery::start(log.config(), vec![sink("mem", mem.clone())]).unwrap();
    log.emit(2000);
    wait_until("2000 statements delivered", Duration::from_secs(20), || {
        mem.seqs().len() >= 2000
    });
    let stats = delivery.shutdown(Duration::from_secs(5));
    let log = log.close();
    let sealed = log.sealed();
    let seqs = mem.seqs();
    // In order, no gaps, no duplicates, and each record is its sealed line.
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    let segments = vigil_seal::list_segments(&log.dir.path().join("audit")).unwrap();
    assert!(segments.len() > 10, "{} segments", segments.len());
    for (seq, formatted, sealed_line) in mem.got.lock().unwrap().iter() {
        let (record, seal) = vigil_seal::split_sealed(LineFormat::Json, sealed_line).unwrap();
        assert_eq!(seal.seq, *seq);
        assert_eq!(
            &record[..],
            &formatted[..],
            "json sink gets the record as sealed"
        );
    }
    assert!(stats[0].sent >= 2000 && stats[0].cursor == *seqs.last().unwrap());
    let cursor = Cursor::load(&log.dir.path().join("state/mem.cursor")).unwrap();
    assert_eq!(cursor.seq, *seqs.last().unwrap());
    assert_eq!(cursor.origin, "db1");
    assert!(sealed.len() as u64 >= cursor.seq);
}

#[test]
fn a_failing_receiver_is_retried_reported_down_then_up_and_loses_nothing() {
    let log = Log::new();
    let mem = Memory::default();
    for _ in 0..5 {
        mem.then(Err(SendError::Retry(
            "connection refused by 127.0.0.1:9".into(),
        )));
    }
    let delivery = Delivery::start(log.config(), vec![sink("flaky", mem.clone())]).unwrap();
    log.emit(300);
    wait_until("300 delivered", Duration::from_secs(20), || {
        mem.seqs().len() >= 300
    });
    // Let the sink's own reports be sealed and delivered too.
    std::thread::sleep(Duration::from_millis(200));
    let stats = delivery.shutdown(Duration::from_secs(5));
    let log = log.close();
    let sealed = log.sealed();
    assert_eq!(
        count(&sealed, catalog::SINK_DOWN, "flaky"),
        1,
        "one down report per outage"
    );
    assert_eq!(count(&sealed, catalog::SINK_UP, "flaky"), 1);
    let down = sealed
        .iter()
        .find(|e| e.kind == catalog::SINK_DOWN)
        .unwrap();
    assert!(
        down.field_value("reason")
            .unwrap()
            .to_string()
            .contains("connection refused")
    );
    let seqs = mem.seqs();
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(stats[0].failed, 5);
    assert!(stats[0].retried >= 5);
    assert_eq!(stats[0].state, SinkState::Up);
}

#[test]
fn partial_refusals_retry_some_and_set_others_aside() {
    let log = Log::new();
    let mem = Memory::default();
    mem.then(Ok(Sent {
        rejected: vec![(1, "mapper_parsing_exception: field [x]".into())],
        retry: vec![2, 3],
    }));
    log.emit(50);
    wait_until("50 durable", Duration::from_secs(10), || {
        log.durable.synced() >= 50
    });
    let delivery = Delivery::start(log.config(), vec![sink("bulk", mem.clone())]).unwrap();
    wait_until("49 delivered", Duration::from_secs(20), || {
        mem.seqs().len() >= 49
    });
    std::thread::sleep(Duration::from_millis(200));
    let stats = delivery.shutdown(Duration::from_secs(5));
    let log = log.close();
    let mut seqs = mem.seqs();
    seqs.sort_unstable();
    seqs.dedup();
    assert!(
        !seqs.contains(&2),
        "the refused record is not delivered: {seqs:?}"
    );
    assert!(
        seqs.contains(&3) && seqs.contains(&4),
        "retried records arrive"
    );
    let rejected = std::fs::read_to_string(log.dir.path().join("state/bulk.rejected")).unwrap();
    assert!(
        rejected.starts_with("seq=2\tmapper_parsing_exception"),
        "{rejected}"
    );
    assert_eq!(stats[0].rejected, 1);
    let sealed = log.sealed();
    assert_eq!(count(&sealed, catalog::SINK_REJECTED, "bulk"), 1);
}

#[test]
fn a_refusing_receiver_is_parked_until_reopened() {
    let log = Log::new();
    let mem = Memory::default();
    mem.then(Err(SendError::Park("HTTP 401 Unauthorized".into())));
    let delivery = Delivery::start(log.config(), vec![sink("hec", mem.clone())]).unwrap();
    log.emit(20);
    wait_until("parked", Duration::from_secs(10), || {
        delivery.stats()[0].state == SinkState::Parked
    });
    std::thread::sleep(Duration::from_millis(300));
    assert!(mem.seqs().is_empty(), "a parked sink does not retry");
    assert_eq!(delivery.stats()[0].failed, 1);
    delivery.reopen();
    wait_until("delivered after reopen", Duration::from_secs(10), || {
        mem.seqs().len() >= 20
    });
    assert!(*mem.reopened.lock().unwrap() >= 1);
    delivery.shutdown(Duration::from_secs(5));
    let sealed = log.close().sealed();
    let parked = sealed
        .iter()
        .find(|e| e.kind == catalog::SINK_PARKED)
        .unwrap();
    assert!(
        parked
            .field_value("reason")
            .unwrap()
            .to_string()
            .contains("401")
    );
}

#[test]
fn a_restart_resumes_at_the_cursor() {
    let log = Log::new();
    let mem = Memory::default();
    let delivery = Delivery::start(log.config(), vec![sink("mem", mem.clone())]).unwrap();
    log.emit(500);
    wait_until("some delivered", Duration::from_secs(20), || {
        mem.seqs().len() >= 200
    });
    drop(delivery);
    let before = mem.seqs();
    log.emit(500);
    let delivery = Delivery::start(log.config(), vec![sink("mem", mem.clone())]).unwrap();
    let log = log.close();
    let last = log.sealed().len() as u64;
    wait_until("all delivered", Duration::from_secs(20), || {
        mem.seqs().last().is_some_and(|s| *s >= last)
    });
    delivery.shutdown(Duration::from_secs(5));
    let seqs = mem.seqs();
    let mut unique = seqs.clone();
    unique.sort_unstable();
    unique.dedup();
    assert_eq!(unique, (1..=last).collect::<Vec<_>>(), "nothing lost");
    assert!(
        seqs.len() - unique.len() <= 100,
        "at most one batch again: {} duplicates",
        seqs.len() - unique.len()
    );
    assert!(before.len() >= 200);
}

#[test]
fn the_filter_applies_but_checkpoints_always_pass() {
    let log = Log::new();
    let mem = Memory::default();
    let mut s = sink("auth", mem.clone());
    s.filter = Filter::new(
        Severity::Info,
        &[Selector::parse("auth.failed").unwrap()],
        &[],
    );
    let delivery = Delivery::start(log.config(), vec![s]).unwrap();
    log.emit(1200);
    log.emitter
        .emit(Event::new(catalog::AUTH_FAILED, "bad password").field("sqlstate", "28P01"));
    let log = log.close();
    let last = log.sealed().len() as u64;
    wait_until("cursor at the end", Duration::from_secs(20), || {
        delivery.stats()[0].cursor >= last
    });
    delivery.shutdown(Duration::from_secs(5));
    let got = mem.got.lock().unwrap();
    let events: Vec<Event> = got
        .iter()
        .map(|(_, f, _)| Event::from_json(f).unwrap())
        .collect();
    assert_eq!(
        events
            .iter()
            .filter(|e| e.kind == catalog::AUTH_FAILED)
            .count(),
        1
    );
    assert!(
        events
            .iter()
            .all(|e| e.kind == catalog::AUTH_FAILED || e.kind == catalog::AUDIT_CHECKPOINT)
    );
    assert!(
        events
            .iter()
            .filter(|e| e.kind == catalog::AUDIT_CHECKPOINT)
            .count()
            >= 2,
        "checkpoints reach every sink"
    );
}

#[test]
fn a_sink_behind_deleted_segments_is_reported_not_silently_skipped() {
    let log = Log::new().close();
    let log = Log::open(log.dir);
    log.emit(1000);
    let log = log.close();
    let audit = log.dir.path().join("audit");
    let segments = vigil_seal::list_segments(&audit).unwrap();
    std::fs::remove_file(&segments[0].1).unwrap();
    std::fs::remove_file(&segments[1].1).unwrap();
    let oldest = segments[2].0;
    let log = Log::open(log.dir);
    let mem = Memory::default();
    let delivery = Delivery::start(log.config(), vec![sink("late", mem.clone())]).unwrap();
    wait_until(
        "delivery from the oldest segment",
        Duration::from_secs(20),
        || mem.seqs().first() == Some(&oldest),
    );
    std::thread::sleep(Duration::from_millis(200));
    delivery.shutdown(Duration::from_secs(5));
    let sealed = log.close().sealed();
    let behind = sealed
        .iter()
        .find(|e| e.kind == catalog::SINK_BEHIND_RETENTION)
        .expect("reported");
    assert_eq!(
        behind.field_value("lost").unwrap().to_string(),
        (oldest - 1).to_string()
    );
}

#[test]
fn a_file_sink_writes_syncs_rotates_and_reopens() {
    let log = Log::new();
    let out = log.dir.path().join("out/events.log");
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    let mut cfg = FileConfig::new(&out);
    cfg.max_bytes = Some(20 * 1024);
    cfg.keep = 100;
    let mut s = DeliverySink::new("file", Format::Json, Box::new(FileTransport::new(cfg)));
    s.batch = 50;
    let delivery = Delivery::start(log.config(), vec![s]).unwrap();
    log.emit(600);
    let log = log.close();
    let last = log.sealed().len() as u64;
    wait_until("file sink at the end", Duration::from_secs(20), || {
        delivery.stats()[0].cursor >= last
    });
    delivery.shutdown(Duration::from_secs(5));
    let mut lines = Vec::new();
    let dir = out.parent().unwrap();
    let mut files: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert!(files.len() > 3, "rotated: {files:?}");
    files.sort_by_key(|p| std::cmp::Reverse(rotation_index(p)));
    for f in &files {
        lines.extend(
            std::fs::read_to_string(f)
                .unwrap()
                .lines()
                .map(|l| Event::from_json(l.as_bytes()).unwrap().seq),
        );
    }
    assert_eq!(lines, (1..=last).collect::<Vec<_>>());
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        for f in &files {
            assert_eq!(
                std::fs::metadata(f).unwrap().permissions().mode() & 0o777,
                0o600
            );
        }
    }
}

fn rotation_index(p: &Path) -> u64 {
    p.extension()
        .and_then(|e| e.to_str())
        .and_then(|e| e.parse().ok())
        .unwrap_or(0)
}

#[test]
fn retention_removes_old_segments_but_not_what_a_sink_still_needs() {
    let log = Log::new();
    log.emit(1500);
    wait_until("1500 durable", Duration::from_secs(10), || {
        log.durable.synced() >= 1500
    });
    let audit = log.dir.path().join("audit");
    let before = vigil_seal::list_segments(&audit).unwrap();
    assert!(before.len() > 10);
    let mem = Memory::default();
    // The receiver refuses for good: the sink is parked at the start.
    mem.then(Err(SendError::Park("HTTP 403".into())));
    let mut config = log.config();
    config.retention = Retention {
        max_bytes: Some(64 * 1024),
        max_age: None,
        undelivered: false,
    };
    let delivery = Delivery::start(config, vec![sink("held", mem.clone())]).unwrap();
    wait_until("parked", Duration::from_secs(10), || {
        delivery.stats()[0].state == SinkState::Parked
    });
    let held = delivery.apply_retention().unwrap();
    assert_eq!(
        (held.files, held.held),
        (0, 1),
        "a parked sink holds the log back"
    );
    assert_eq!(
        vigil_seal::list_segments(&audit).unwrap().len(),
        before.len()
    );

    delivery.reopen();
    wait_until("delivered", Duration::from_secs(10), || {
        mem.seqs().len() >= 1500
    });
    wait_until("cursor at 1500", Duration::from_secs(10), || {
        delivery.stats()[0].cursor >= 1500
    });
    let removed = delivery.apply_retention().unwrap();
    assert!(removed.files > 5, "{removed:?}");
    assert_eq!(removed.undelivered, 0);
    let after = vigil_seal::list_segments(&audit).unwrap();
    // The log keeps sealing (the sink's and retention's own events) and
    // may have started new segments since: count the ones that were there.
    let last_before = before.last().unwrap().0;
    let old_left = after
        .iter()
        .filter(|(first, _)| *first <= last_before)
        .count();
    assert_eq!(old_left as u64, before.len() as u64 - removed.files);
    let total: u64 = after
        .iter()
        .map(|(_, p)| std::fs::metadata(p).unwrap().len())
        .sum();
    let last_segment = std::fs::metadata(&after.last().unwrap().1).unwrap().len();
    assert!(total <= 64 * 1024 || after.len() == 1 || total - last_segment <= 64 * 1024);
    assert_eq!(removed.seqs.unwrap().0, 1);
    assert_eq!(
        removed.seqs.unwrap().1 + 1,
        after[0].0,
        "contiguous: the rest starts where removal ended"
    );
    delivery.shutdown(Duration::from_secs(5));
    let log = log.close();
    let sealed = log.sealed();
    let ev = sealed
        .iter()
        .find(|e| e.kind == catalog::AUDIT_SEGMENTS_REMOVED)
        .expect("sealed");
    assert_eq!(
        ev.field_value("files").unwrap().to_string(),
        removed.files.to_string()
    );
    // What is left verifies, with the audit key and with the public key
    // alone: the sealed removal accounts for the missing head.
    let lookup = |v: u32| (v == 1).then(|| Zeroizing::new([7u8; 32]));
    let by_key = vigil_seal::Verifier::new()
        .keys(&lookup)
        .verify(std::slice::from_ref(&audit))
        .unwrap();
    let by_public = vigil_seal::Verifier::new()
        .public_key(keys().signer.verifier())
        .verify(std::slice::from_ref(&audit))
        .unwrap();
    for r in [by_key, by_public] {
        assert!(r.verified(), "{:?}", r.failure);
        let trimmed = r.trimmed.unwrap();
        assert_eq!(trimmed.first_seq, removed.seqs.unwrap().1 + 1);
        assert!(trimmed.removal_seq > 0);
    }
}

#[test]
fn retention_can_be_told_to_remove_undelivered_segments() {
    let log = Log::new();
    log.emit(1500);
    wait_until("1500 durable", Duration::from_secs(10), || {
        log.durable.synced() >= 1500
    });
    let mem = Memory::default();
    mem.then(Err(SendError::Park("HTTP 403".into())));
    let mut config = log.config();
    config.retention = Retention {
        max_bytes: Some(64 * 1024),
        max_age: None,
        undelivered: true,
    };
    let delivery = Delivery::start(config, vec![sink("late", mem.clone())]).unwrap();
    wait_until("parked", Duration::from_secs(10), || {
        delivery.stats()[0].state == SinkState::Parked
    });
    // Retention runs on its own at start; a pass now finds at most the
    // one segment that the log's growth since (the sink's and retention's
    // own events are sealed into it too) can have pushed over the limit.
    let audit = log.dir.path().join("audit");
    let again = delivery.apply_retention().unwrap();
    assert!(again.files <= 1, "{again:?}");
    let first_kept = vigil_seal::list_segments(&audit).unwrap()[0].0;
    drop(audit);
    assert!(
        first_kept > 1000,
        "undelivered segments went: the log starts at {first_kept}"
    );
    // Back up, the sink finds its entries gone and says so.
    delivery.reopen();
    // (What it had read before the removal it still sends; then it skips
    // to what is left.)
    wait_until(
        "delivery resumes after the gap",
        Duration::from_secs(10),
        || mem.seqs().contains(&first_kept),
    );
    let seqs = mem.seqs();
    assert!(
        seqs.len() < 1500,
        "the removed entries were not all delivered"
    );
    std::thread::sleep(Duration::from_millis(200));
    delivery.shutdown(Duration::from_secs(5));
    // `sealed` reads the segments that are left.
    let events = log.close().sealed();
    assert!(
        events
            .iter()
            .any(|e| e.kind == catalog::SINK_BEHIND_RETENTION)
    );
    let ev = events
        .iter()
        .find(|e| e.kind == catalog::AUDIT_SEGMENTS_REMOVED)
        .unwrap();
    assert_ne!(ev.field_value("undelivered").unwrap().to_string(), "0");
}
