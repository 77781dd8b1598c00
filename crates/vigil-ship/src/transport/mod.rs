//! Transports: how a delivering sink hands a batch of records to its
//! receiver, and what the receiver said.
//!
//! A [`Transport`] is owned by one delivery thread, which reads the sealed
//! audit log through the sink's cursor, formats each event in the sink's
//! format and calls [`Transport::send`] with a batch. The thread retries,
//! backs off, parks and reports; the transport only talks to its receiver:
//! it (re)connects as needed, writes the batch, and says what was accepted.
//!
//! A transport never blocks forever: every connect, write and read has a
//! timeout, so a receiver that stops answering is a [`SendError::Retry`].

use std::fmt;

use vigil_event::Event;

pub mod file;
pub mod http;
pub mod nats;
pub mod postgres;
pub mod syslog;

/// One sealed event, ready to send.
#[derive(Clone, Copy, Debug)]
pub struct Record<'a> {
    /// The instance that sealed the event; with `seq`, the event's
    /// idempotency key.
    pub origin: &'a str,
    /// The event's position in its origin's audit log, gapless from 1.
    pub seq: u64,
    /// The event, parsed back from the audit log.
    pub event: &'a Event,
    /// The event in the sink's format, without a line terminator.
    pub formatted: &'a [u8],
    /// The sealed line exactly as stored in the audit log, without its
    /// newline: the record plus the seal fields, so a copy of these lines
    /// verifies like the log itself.
    pub sealed: &'a [u8],
}

/// What a receiver accepted of a batch that was not refused whole.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Sent {
    /// Records (indices into the batch) the receiver refused for good, with
    /// its reason, e.g. a document an Elasticsearch mapping rejects. They are
    /// written to the sink's rejected file and reported, never retried.
    pub rejected: Vec<(usize, String)>,
    /// Records (indices into the batch) to send again later, e.g. items an
    /// Elasticsearch `_bulk` answered with 429. The others were accepted.
    pub retry: Vec<usize>,
}

impl Sent {
    /// Every record accepted.
    pub fn all() -> Sent {
        Sent::default()
    }
}

/// Why a batch was not delivered.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum SendError {
    /// Nothing is known to be accepted and trying again may work: the
    /// receiver is unreachable, timed out, closed the connection, answered
    /// 5xx or 429. The whole batch is sent again after a backoff.
    Retry(String),
    /// The receiver refuses the batch and will keep refusing it until a
    /// configuration changes: 401/403, an unknown index or stream, a
    /// certificate that does not verify. The sink is parked: it stops
    /// sending, keeps its cursor, and resumes on reload.
    Park(String),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Retry(why) | SendError::Park(why) => f.write_str(why),
        }
    }
}

/// A receiver of batches of records.
pub trait Transport: Send {
    /// Delivers `batch` (never empty) and returns once the receiver
    /// acknowledged it, or, for a receiver that does not acknowledge (syslog
    /// over TCP or TLS), once it is written and the connection still looks
    /// alive. Connects, or reconnects after an error, on its own.
    fn send(&mut self, batch: &[Record<'_>]) -> Result<Sent, SendError>;

    /// Whether the receiver acknowledges what it accepted. A transport that
    /// does not keeps the records it wrote on the current connection for a
    /// while and sends them again after reconnecting, so a receiver that
    /// goes away with unread data loses nothing (it may see duplicates,
    /// removable by `(origin, seq)`).
    fn acknowledged(&self) -> bool {
        true
    }

    /// Reopens files and reconnects at the next send (on SIGHUP).
    fn reopen(&mut self) {}

    /// Closes connections and files; called when delivery stops.
    fn close(&mut self) {}
}
