//! Counters the worker updates and [`Pipeline::stats`](crate::Pipeline::stats) reads.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

/// What a pipeline has done so far.
///
/// After a clean [`shutdown`](crate::Pipeline::shutdown), every event an
/// emitter offered is either `accepted` or `dropped`, and for every sink
/// `written + filtered_out + lost` is the number of events the pipeline
/// produced: the accepted ones plus its own `events.dropped`, `sink.down` and
/// `sink.up` reports.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Stats {
    /// Events taken from the queue and given a sequence number.
    pub accepted: u64,
    /// Events emitters could not queue (queue full under `Overflow::Drop`,
    /// or the pipeline shutting down); each was reported in an
    /// `events.dropped` event.
    pub dropped: u64,
    /// One entry per sink, in configuration order.
    pub sinks: Vec<SinkStats>,
    /// Events waiting in the queue, as the worker last saw it.
    pub queued: u64,
    /// Time since the audit log's last checkpoint, if there is an audit log.
    pub last_checkpoint_age: Option<std::time::Duration>,
    /// The audit log is failing to write (reported as `audit.write_failed`).
    pub audit_failing: bool,
}

/// What one sink has done so far.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct SinkStats {
    /// The sink's name.
    pub name: String,
    /// Records delivered to the sink's writer (counted when a flush succeeds).
    pub written: u64,
    /// Events the sink's filter excluded, and reports about the sink itself
    /// (`sink.down`), which go to the other sinks only.
    pub filtered_out: u64,
    /// Failed write and flush attempts, formatter failures included.
    pub errors: u64,
    /// Records the sink was meant to receive but that could not be
    /// delivered, or not confirmed delivered, because it was failing.
    pub lost: u64,
}

#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub(crate) accepted: AtomicU64,
    pub(crate) dropped: AtomicU64,
    /// Events waiting in the queue at the worker's last look.
    pub(crate) queued: AtomicU64,
    /// Milliseconds since the audit log's last checkpoint, at the last look.
    pub(crate) checkpoint_age_ms: AtomicU64,
    /// The audit log is failing to write.
    pub(crate) audit_failing: AtomicBool,
}

#[derive(Debug, Default)]
pub(crate) struct SinkCounters {
    pub(crate) written: AtomicU64,
    pub(crate) filtered_out: AtomicU64,
    pub(crate) errors: AtomicU64,
    pub(crate) lost: AtomicU64,
}

impl SinkCounters {
    pub(crate) fn snapshot(&self, name: &str) -> SinkStats {
        SinkStats {
            name: name.to_owned(),
            written: self.written.load(Ordering::Relaxed),
            filtered_out: self.filtered_out.load(Ordering::Relaxed),
            errors: self.errors.load(Ordering::Relaxed),
            lost: self.lost.load(Ordering::Relaxed),
        }
    }
}
