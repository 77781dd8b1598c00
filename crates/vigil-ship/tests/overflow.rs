//! Queue overflow: drops are counted and reported, never silent; `Block`
//! loses nothing.
#![allow(clippy::unwrap_used)] // helpers outside #[test] fns, as in tests

mod common;

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::thread;
use std::time::Duration;

use proptest::prelude::*;
use vigil_event::{Emitter, Overflow, catalog};
use vigil_ship::{Pipeline, SinkSpec, Target};

use common::*;

const TOTAL: u64 = 1_000;
const PRODUCERS: u64 = 4;

/// Emits `n` events from `PRODUCERS` threads; returns how many emits returned.
fn emit_from_threads(
    emitter: &Emitter,
    n: u64,
    done: &Arc<AtomicU64>,
) -> Vec<thread::JoinHandle<()>> {
    (0..PRODUCERS)
        .map(|p| {
            let emitter = emitter.clone();
            let done = done.clone();
            let share = n / PRODUCERS + u64::from(p < n % PRODUCERS);
            thread::spawn(move || {
                for i in 0..share {
                    emitter.emit(statement(p * 1_000_000 + i));
                    done.fetch_add(1, Ordering::SeqCst);
                }
            })
        })
        .collect()
}

#[test]
fn queue_overflow_is_counted_and_reported_never_silent() {
    let (writer, gate, out) = gated();
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .capacity(8)
        .overflow(Overflow::Drop)
        .sink(SinkSpec::new("gated", Target::Writer(Box::new(writer))))
        .start()
        .unwrap();

    // The first event makes the worker flush into the gated writer, where it
    // stays until released: from then on the queue fills and overflows.
    emitter.emit(statement(0));
    gate.wait_entered();
    let done = Arc::new(AtomicU64::new(0));
    for t in emit_from_threads(&emitter, TOTAL - 1, &done) {
        t.join().unwrap();
    }
    assert_eq!(done.load(Ordering::SeqCst), TOTAL - 1);
    gate.release();
    let stats = pipeline.shutdown().unwrap();

    let events = out.events();
    assert_gapless(&events);
    assert!(events.iter().all(|e| &*e.origin == "db1"));
    let written = of_kind(&events, catalog::STATEMENT_EXECUTED).len() as u64;
    let reports = of_kind(&events, catalog::EVENTS_DROPPED);
    assert!(!reports.is_empty(), "no events.dropped record");
    let reported: u64 = reports.iter().map(|e| int_field(e, "count")).sum();
    assert_eq!(
        written + reported,
        TOTAL,
        "written {written} + reported drops {reported}"
    );
    assert!(
        reported >= TOTAL - 1 - 8,
        "the queue holds 8, yet only {reported} were dropped"
    );
    // `total` is the running sum of `count`.
    let mut running = 0;
    for r in &reports {
        running += int_field(r, "count");
        assert_eq!(int_field(r, "total"), running);
    }
    assert_eq!(stats.dropped, reported);
    assert_eq!(stats.accepted, written);
    assert_eq!(stats.sinks[0].written, events.len() as u64);
    assert_eq!(emitter.dropped_total(), reported);
}

#[test]
fn block_policy_loses_nothing_behind_a_stalled_sink() {
    let (writer, gate, out) = gated();
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .capacity(8)
        .overflow(Overflow::Block)
        .sink(SinkSpec::new("gated", Target::Writer(Box::new(writer))))
        .start()
        .unwrap();

    emitter.emit(statement(0));
    gate.wait_entered();
    let done = Arc::new(AtomicU64::new(0));
    let producers = emit_from_threads(&emitter, TOTAL - 1, &done);
    // With the worker stalled, the producers fill the queue and then wait.
    assert!(wait_until(Duration::from_secs(2), || done
        .load(Ordering::SeqCst)
        >= 8));
    thread::sleep(Duration::from_millis(100));
    let before_release = done.load(Ordering::SeqCst);
    assert!(
        before_release < TOTAL - 1,
        "producers did not wait: {before_release} emitted"
    );
    gate.release();
    for t in producers {
        t.join().unwrap();
    }
    let stats = pipeline.shutdown().unwrap();

    let events = out.events();
    assert_gapless(&events);
    assert_eq!(
        of_kind(&events, catalog::STATEMENT_EXECUTED).len() as u64,
        TOTAL
    );
    assert!(of_kind(&events, catalog::EVENTS_DROPPED).is_empty());
    assert_eq!((stats.accepted, stats.dropped), (TOTAL, 0));
}

/// Shuts down while producers are still emitting: what was accepted is all
/// written, and everything else is counted as dropped.
fn shutdown_under_fire(overflow: Overflow) {
    const EACH: u64 = 20_000;
    let out = Shared::default();
    let (pipeline, emitter) = Pipeline::builder()
        .origin("db1")
        .capacity(64)
        .overflow(overflow)
        .sink(SinkSpec::new("m", Target::Writer(Box::new(out.clone()))))
        .start()
        .unwrap();
    let done = Arc::new(AtomicU64::new(0));
    let producers = emit_from_threads(&emitter, PRODUCERS * EACH, &done);
    assert!(wait_until(Duration::from_secs(5), || done
        .load(Ordering::SeqCst)
        > 1_000));
    let stats = pipeline.shutdown().unwrap();
    for t in producers {
        t.join().unwrap();
    }
    let events = out.events();
    assert_gapless(&events);
    let written = of_kind(&events, catalog::STATEMENT_EXECUTED).len() as u64;
    let reported: u64 = of_kind(&events, catalog::EVENTS_DROPPED)
        .iter()
        .map(|e| int_field(e, "count"))
        .sum();
    assert_eq!(written, stats.accepted, "accepted but not written");
    assert_eq!(reported, stats.dropped);
    // Emits after shutdown are counted by the emitters, but nobody is left
    // to report them.
    assert_eq!(
        stats.accepted + emitter.dropped_total(),
        PRODUCERS * EACH,
        "an event vanished"
    );
    assert!(stats.dropped <= emitter.dropped_total());
    assert!(
        stats.accepted < PRODUCERS * EACH,
        "shutdown came too late to test anything"
    );
}

#[test]
fn shutdown_while_emitting_under_drop_accounts_for_every_event() {
    shutdown_under_fire(Overflow::Drop);
}

#[test]
fn shutdown_while_emitting_under_block_accounts_for_every_event() {
    shutdown_under_fire(Overflow::Block);
}

/// A writer that is slow now and then, so small queues overflow.
#[derive(Debug)]
struct Sluggish {
    out: Shared,
    every: u64,
    n: u64,
}

impl std::io::Write for Sluggish {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.n += 1;
        if self.every > 0 && self.n.is_multiple_of(self.every) {
            thread::sleep(Duration::from_millis(1));
        }
        self.out.write_all(buf).map(|()| buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 32, ..ProptestConfig::default() })]

    /// Model: every emitted event is written or reported dropped, exactly once.
    #[test]
    fn written_plus_reported_drops_equals_emitted(
        capacity in 1usize..64,
        drop in any::<bool>(),
        producers in 1u64..5,
        per_producer in 0u64..400,
        every in 0u64..4,
    ) {
        let out = Shared::default();
        let overflow = if drop { Overflow::Drop } else { Overflow::Block };
        let (pipeline, emitter) = Pipeline::builder()
            .origin("model")
            .capacity(capacity)
            .overflow(overflow)
            .flush_interval(Duration::from_millis(1))
            .sink(SinkSpec::new("m", Target::Writer(Box::new(Sluggish { out: out.clone(), every, n: 0 }))))
            .start()
            .unwrap();
        let threads: Vec<_> = (0..producers)
            .map(|p| {
                let emitter = emitter.clone();
                thread::spawn(move || (0..per_producer).for_each(|i| emitter.emit(statement(p * 1000 + i))))
            })
            .collect();
        for t in threads {
            t.join().unwrap();
        }
        let stats = pipeline.shutdown().unwrap();
        let events = out.events();
        assert_gapless(&events);
        let emitted = producers * per_producer;
        let written = of_kind(&events, catalog::STATEMENT_EXECUTED).len() as u64;
        let reported: u64 =
            of_kind(&events, catalog::EVENTS_DROPPED).iter().map(|e| int_field(e, "count")).sum();
        prop_assert_eq!(written + reported, emitted);
        prop_assert_eq!(stats.accepted + stats.dropped, emitted);
        prop_assert_eq!(stats.dropped, reported);
        if !drop {
            prop_assert_eq!(reported, 0);
        }
    }
}
