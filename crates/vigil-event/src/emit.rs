//! The front of the event pipeline: a cheap, cloneable [`Emitter`] that any
//! task uses to report an event, over a bounded queue.
//!
//! When the queue is full, the [`Overflow`] policy decides: `Block` waits
//! for room, `Drop` discards the event and counts it. The consumer takes the
//! count with [`Receiver::take_dropped`] and reports it as an
//! `events.dropped` event as soon as it runs, so no drop is silent.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::Duration;

use crossbeam_channel::{RecvTimeoutError, SendTimeoutError, TrySendError};

use crate::event::Event;

/// What [`Emitter::emit`] does when the queue is full.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Overflow {
    /// Wait until there is room: nothing is lost, the emitting thread waits.
    #[default]
    Block,
    /// Discard the event and count it; the count is reported as an
    /// `events.dropped` event.
    Drop,
}

impl Overflow {
    /// The name used in configuration: `block` or `drop`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Overflow::Block => "block",
            Overflow::Drop => "drop",
        }
    }
}

#[derive(Debug)]
struct Shared {
    overflow: Overflow,
    closed: AtomicBool,
    /// Events dropped and not yet taken by the consumer.
    dropped: AtomicU64,
    /// Events dropped since the queue was created.
    dropped_total: AtomicU64,
}

/// A handle to the event queue. Clone it freely; every clone feeds the same
/// queue.
#[derive(Clone, Debug)]
pub struct Emitter {
    tx: crossbeam_channel::Sender<Event>,
    shared: Arc<Shared>,
}

/// The consuming end of the event queue.
#[derive(Debug)]
pub struct Receiver {
    rx: crossbeam_channel::Receiver<Event>,
    shared: Arc<Shared>,
}

/// Creates a queue of `capacity` events with the given overflow policy.
pub(crate) fn channel(capacity: usize, overflow: Overflow) -> (Emitter, Receiver) {
    let (tx, rx) = crossbeam_channel::bounded(capacity.max(1));
    let shared = Arc::new(Shared {
        overflow,
        closed: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
        dropped_total: AtomicU64::new(0),
    });
    (Emitter { tx, shared: shared.clone() }, Receiver { rx, shared })
}

impl Emitter {
    /// Creates a queue of `capacity` events with the given overflow policy.
    pub fn channel(capacity: usize, overflow: Overflow) -> (Emitter, Receiver) {
        channel(capacity, overflow)
    }

    /// Queues `event`. Under `Block` this waits while the queue is full;
    /// under `Drop` a full queue discards the event and counts it. After the
    /// receiver is closed, events are counted as dropped.
    pub fn emit(&self, event: Event) {
        if self.shared.closed.load(Ordering::Acquire) {
            self.count_drop();
            return;
        }
        match self.shared.overflow {
            Overflow::Drop => match self.tx.try_send(event) {
                Ok(()) => {}
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => self.count_drop(),
            },
            Overflow::Block => {
                let mut event = event;
                loop {
                    match self.tx.send_timeout(event, Duration::from_millis(50)) {
                        Ok(()) => return,
                        Err(SendTimeoutError::Timeout(back)) => {
                            if self.shared.closed.load(Ordering::Acquire) {
                                self.count_drop();
                                return;
                            }
                            event = back;
                        }
                        Err(SendTimeoutError::Disconnected(_)) => {
                            self.count_drop();
                            return;
                        }
                    }
                }
            }
        }
    }

    /// Events dropped since the queue was created.
    pub fn dropped_total(&self) -> u64 {
        self.shared.dropped_total.load(Ordering::Relaxed)
    }

    /// The overflow policy of this queue.
    pub fn overflow(&self) -> Overflow {
        self.shared.overflow
    }

    fn count_drop(&self) {
        self.shared.dropped.fetch_add(1, Ordering::Relaxed);
        self.shared.dropped_total.fetch_add(1, Ordering::Relaxed);
    }
}

impl Receiver {
    /// Waits up to `timeout` for the next event. `None` on timeout, or when
    /// every emitter is gone and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Event> {
        match self.rx.recv_timeout(timeout) {
            Ok(ev) => Some(ev),
            Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => None,
        }
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<Event> {
        self.rx.try_recv().ok()
    }

    /// Number of events waiting in the queue.
    pub fn len(&self) -> usize {
        self.rx.len()
    }

    /// True when no event is waiting.
    pub fn is_empty(&self) -> bool {
        self.rx.is_empty()
    }

    /// Takes the count of events dropped since the last call.
    pub fn take_dropped(&self) -> u64 {
        self.shared.dropped.swap(0, Ordering::Relaxed)
    }

    /// Refuses further events: from now on, emitters count them as dropped
    /// and never wait. Events already queued can still be received.
    pub fn close(&self) {
        self.shared.closed.store(true, Ordering::Release);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::catalog;

    fn ev() -> Event {
        Event::new(catalog::STATEMENT_EXECUTED, "statement executed")
    }

    #[test]
    fn drop_policy_counts_every_lost_event() {
        let (tx, rx) = channel(4, Overflow::Drop);
        for _ in 0..10 {
            tx.emit(ev());
        }
        assert_eq!(rx.len(), 4);
        assert_eq!(rx.take_dropped(), 6);
        assert_eq!(rx.take_dropped(), 0);
        assert_eq!(tx.dropped_total(), 6);
    }

    #[test]
    fn block_policy_waits_for_room() {
        let (tx, rx) = channel(2, Overflow::Block);
        let producer = std::thread::spawn(move || {
            for _ in 0..100 {
                tx.emit(ev());
            }
        });
        let mut got = 0;
        while got < 100 {
            if rx.recv_timeout(Duration::from_secs(5)).is_some() {
                got += 1;
            } else {
                panic!("producer stalled after {got} events");
            }
        }
        producer.join().unwrap();
        assert_eq!(rx.take_dropped(), 0);
    }

    #[test]
    fn closed_queue_releases_blocked_emitters_and_counts_them() {
        let (tx, rx) = channel(1, Overflow::Block);
        tx.emit(ev());
        let t = std::thread::spawn(move || tx.emit(ev()));
        std::thread::sleep(Duration::from_millis(20));
        rx.close();
        t.join().unwrap();
        assert_eq!(rx.len(), 1);
        assert_eq!(rx.take_dropped(), 1);
    }
}
