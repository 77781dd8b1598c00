//! The front of the event pipeline: a cheap, cloneable [`Emitter`] that any
//! task uses to report an event, over a bounded queue.
//!
//! When the queue is full, the [`Overflow`] policy decides: `Block` waits
//! for room, `Drop` discards the event and counts it. The consumer takes the
//! count with [`Receiver::take_dropped`] and reports it as an
//! `events.dropped` event as soon as it runs, so no drop is silent.
//!
//! An emitter that finds the queue full under `Block` sleeps until the
//! consumer has taken it down to half its capacity, then queues again: one
//! wake-up per half a queue of events, not one per event (which cost about
//! a microsecond of CPU per event on a core the consumer needs too).

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering, fence};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

use crossbeam_channel::TrySendError;

use crate::event::{Event, Severity};

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

/// Waits until the entry with a seq is durable, up to a timeout; set by the
/// pipeline when an audit log backs it.
pub type DurabilityWait = dyn Fn(u64, Duration) -> bool + Send + Sync;

struct Shared {
    durable: OnceLock<Arc<DurabilityWait>>,
    overflow: Overflow,
    /// Under `Block`, emitters that found the queue full wait until it
    /// holds at most this many events.
    low_water: usize,
    room: Room,
    /// The consumer's thread, once it asked to be woken for urgent events
    /// ([`Receiver::wake_on_urgent`]).
    consumer: OnceLock<std::thread::Thread>,
    closed: AtomicBool,
    /// Events dropped and not yet taken by the consumer.
    dropped: AtomicU64,
    /// Events dropped since the queue was created.
    dropped_total: AtomicU64,
}

/// Where emitters wait for room in a full queue.
#[derive(Debug, Default)]
struct Room {
    /// Emitters waiting: the consumer wakes them only when there are some,
    /// as waking costs a system call.
    waiting: AtomicUsize,
    lock: Mutex<()>,
    cv: Condvar,
}

/// How long an emitter sleeps at most before it looks at the queue again,
/// in case its consumer went away.
const ROOM_WAIT: Duration = Duration::from_millis(50);

impl Room {
    /// Wakes the waiting emitters.
    fn wake(&self) {
        let _guard = self.lock.lock().unwrap_or_else(|p| p.into_inner());
        self.cv.notify_all();
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("overflow", &self.overflow)
            .field("closed", &self.closed)
            .field("dropped", &self.dropped)
            .finish_non_exhaustive()
    }
}

/// Tells an emitter waiting in [`Emitter::emit_durable`] the seq its event got.
#[derive(Debug)]
pub struct Ack(crossbeam_channel::Sender<u64>);

impl Ack {
    /// Reports the seq; the emitter then waits for durability itself.
    pub fn done(self, seq: u64) {
        // The emitter may have timed out and gone; nothing to tell then.
        let _ = self.0.send(seq);
    }
}

/// An event taken from the queue, with the acknowledgement its emitter
/// waits for, if any.
#[derive(Debug)]
pub struct Queued {
    /// The event.
    pub event: Event,
    /// Present when the emitter waits in [`Emitter::emit_durable`].
    pub ack: Option<Ack>,
}

impl Queued {
    /// Whether the consumer should take it at once rather than at its next
    /// look at the queue: an event of severity `warning` or above (a
    /// poison record read, an injection, a failed login), or one whose
    /// emitter waits for it to be durable.
    pub fn is_urgent(&self) -> bool {
        self.ack.is_some() || self.event.severity >= Severity::Warning
    }
}

/// Why [`Emitter::emit_durable`] could not confirm an event.
#[derive(Clone, Copy, Debug, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum NotDurable {
    /// The queue was full (under `Drop`) or closed: the event was dropped
    /// and counted.
    #[error("the event was dropped: the event queue is full or closed")]
    Dropped,
    /// The event was queued but not confirmed on disk in time.
    #[error("the event was not confirmed durable in time")]
    Timeout,
}

/// A handle to the event queue. Clone it freely; every clone feeds the same
/// queue.
#[derive(Clone, Debug)]
pub struct Emitter {
    tx: crossbeam_channel::Sender<Queued>,
    shared: Arc<Shared>,
}

/// The consuming end of the event queue.
#[derive(Debug)]
pub struct Receiver {
    rx: crossbeam_channel::Receiver<Queued>,
    shared: Arc<Shared>,
}

/// Creates a queue of `capacity` events with the given overflow policy.
pub(crate) fn channel(capacity: usize, overflow: Overflow) -> (Emitter, Receiver) {
    let capacity = capacity.max(1);
    let (tx, rx) = crossbeam_channel::bounded(capacity);
    let shared = Arc::new(Shared {
        durable: OnceLock::new(),
        overflow,
        low_water: capacity / 2,
        room: Room::default(),
        consumer: OnceLock::new(),
        closed: AtomicBool::new(false),
        dropped: AtomicU64::new(0),
        dropped_total: AtomicU64::new(0),
    });
    (
        Emitter {
            tx,
            shared: shared.clone(),
        },
        Receiver { rx, shared },
    )
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
        self.send(Queued { event, ack: None });
    }

    /// Queues `event` and waits until it is sealed on disk (or, with no
    /// audit log behind the pipeline, handed to the sinks' buffers, which
    /// is not durable); returns its seq. Waits at most `timeout` in all.
    pub fn emit_durable(&self, event: Event, timeout: Duration) -> Result<u64, NotDurable> {
        let deadline = Instant::now() + timeout;
        let (tx, rx) = crossbeam_channel::bounded(1);
        if !self.send(Queued {
            event,
            ack: Some(Ack(tx)),
        }) {
            return Err(NotDurable::Dropped);
        }
        let seq = match rx.recv_deadline(deadline) {
            Ok(seq) => seq,
            Err(crossbeam_channel::RecvTimeoutError::Timeout) => return Err(NotDurable::Timeout),
            Err(crossbeam_channel::RecvTimeoutError::Disconnected) => {
                return Err(NotDurable::Dropped);
            }
        };
        match self.shared.durable.get() {
            Some(wait) => {
                let left = deadline.saturating_duration_since(Instant::now());
                if wait(seq, left) {
                    Ok(seq)
                } else {
                    Err(NotDurable::Timeout)
                }
            }
            None => Ok(seq),
        }
    }

    /// Queues an item; false when it was dropped (and counted). An urgent
    /// item wakes the consumer.
    fn send(&self, item: Queued) -> bool {
        let urgent = item.is_urgent();
        let sent = self.queue(item);
        if sent
            && urgent
            && let Some(consumer) = self.shared.consumer.get()
        {
            consumer.unpark();
        }
        sent
    }

    fn queue(&self, item: Queued) -> bool {
        if self.shared.closed.load(Ordering::Acquire) {
            self.count_drop();
            return false;
        }
        match self.shared.overflow {
            Overflow::Drop => match self.tx.try_send(item) {
                Ok(()) => true,
                Err(TrySendError::Full(_) | TrySendError::Disconnected(_)) => {
                    self.count_drop();
                    false
                }
            },
            Overflow::Block => {
                let mut item = item;
                loop {
                    match self.tx.try_send(item) {
                        Ok(()) => return true,
                        Err(TrySendError::Full(back)) => {
                            if self.shared.closed.load(Ordering::Acquire) {
                                self.count_drop();
                                return false;
                            }
                            item = back;
                            self.wait_for_room();
                        }
                        Err(TrySendError::Disconnected(_)) => {
                            self.count_drop();
                            return false;
                        }
                    }
                }
            }
        }
    }

    /// Sleeps until the queue is down to its low-water mark, the receiver
    /// is closed, or [`ROOM_WAIT`] passed.
    fn wait_for_room(&self) {
        let shared = &*self.shared;
        let room = &shared.room;
        let deadline = Instant::now() + ROOM_WAIT;
        room.waiting.fetch_add(1, Ordering::SeqCst);
        // Pairs with the fence in `Receiver::taken`: either the consumer
        // sees this emitter waiting, or this emitter sees what it took.
        fence(Ordering::SeqCst);
        let mut guard = room.lock.lock().unwrap_or_else(|p| p.into_inner());
        loop {
            if self.tx.len() <= shared.low_water || shared.closed.load(Ordering::Acquire) {
                break;
            }
            let now = Instant::now();
            if now >= deadline {
                break;
            }
            guard = match room.cv.wait_timeout(guard, deadline - now) {
                Ok((g, _)) => g,
                Err(p) => p.into_inner().0,
            };
        }
        drop(guard);
        room.waiting.fetch_sub(1, Ordering::SeqCst);
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
    /// From now on, every urgent event ([`Queued::is_urgent`]) unparks
    /// the calling thread, so a consumer that polls the queue with
    /// [`std::thread::park_timeout`] takes such events at once and can
    /// look at the queue seldom otherwise. Only the first thread to call
    /// this is woken.
    pub fn wake_on_urgent(&self) {
        let _ = self.shared.consumer.set(std::thread::current());
    }

    /// Waits up to `timeout` for the next event. `None` on timeout, or when
    /// every emitter is gone and the queue is empty.
    pub fn recv_timeout(&self, timeout: Duration) -> Option<Queued> {
        let q = self.rx.recv_timeout(timeout).ok();
        self.taken();
        q
    }

    /// The next event if one is queued.
    pub fn try_recv(&self) -> Option<Queued> {
        let q = self.rx.try_recv().ok();
        self.taken();
        q
    }

    /// Wakes the emitters waiting for room once the queue is down to its
    /// low-water mark.
    fn taken(&self) {
        let shared = &*self.shared;
        // Pairs with the fence in `Emitter::wait_for_room`.
        fence(Ordering::SeqCst);
        if shared.room.waiting.load(Ordering::Relaxed) > 0 && self.rx.len() <= shared.low_water {
            shared.room.wake();
        }
    }

    /// Makes [`Emitter::emit_durable`] wait for durability with `wait`
    /// after the worker acknowledged the seq. Set once; later calls are
    /// ignored.
    pub fn set_durability(&self, wait: Arc<DurabilityWait>) {
        let _ = self.shared.durable.set(wait);
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
        self.shared.room.wake();
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
    fn urgent_events_unpark_the_consumer() {
        let (ack, _) = crossbeam_channel::bounded(1);
        let critical = Event::new(catalog::POISON_ACCESSED, "poison record read");
        assert!(
            !Queued {
                event: ev(),
                ack: None
            }
            .is_urgent()
        );
        assert!(
            Queued {
                event: ev(),
                ack: Some(Ack(ack))
            }
            .is_urgent()
        );
        assert!(
            Queued {
                event: critical.clone(),
                ack: None
            }
            .is_urgent()
        );

        let (tx, rx) = channel(8, Overflow::Block);
        rx.wake_on_urgent();
        tx.emit(critical);
        // The unpark came before the park: it returns at once.
        let start = Instant::now();
        std::thread::park_timeout(Duration::from_secs(60));
        assert!(start.elapsed() < Duration::from_secs(30));
        assert_eq!(rx.len(), 1);
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
    fn blocked_emitters_lose_nothing_and_keep_their_order() {
        let (tx, rx) = channel(8, Overflow::Block);
        let producers: Vec<_> = (0..3u64)
            .map(|p| {
                let tx = tx.clone();
                std::thread::spawn(move || {
                    for i in 0..2000u64 {
                        let mut e = ev();
                        e.seq = p * 1_000_000 + i;
                        tx.emit(e);
                    }
                })
            })
            .collect();
        drop(tx);
        let mut next = [0u64; 3];
        let mut got = 0;
        while got < 6000 {
            // Slower than the producers now and then, so they fill the queue.
            if got % 500 == 0 {
                std::thread::sleep(Duration::from_millis(2));
            }
            let q = rx
                .recv_timeout(Duration::from_secs(5))
                .unwrap_or_else(|| panic!("producers stalled after {got} events"));
            let (p, i) = (q.event.seq / 1_000_000, q.event.seq % 1_000_000);
            assert_eq!(i, next[p as usize], "producer {p}");
            next[p as usize] += 1;
            got += 1;
        }
        for p in producers {
            p.join().unwrap();
        }
        assert_eq!(rx.take_dropped(), 0);
        assert!(rx.try_recv().is_none());
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

    #[test]
    fn emit_durable_waits_for_the_ack_and_the_durability_wait() {
        let (tx, rx) = channel(4, Overflow::Block);
        let durable_upto = Arc::new(AtomicU64::new(0));
        let d = durable_upto.clone();
        rx.set_durability(Arc::new(move |seq, _| d.load(Ordering::SeqCst) >= seq));
        let worker = std::thread::spawn(move || {
            let q = rx.recv_timeout(Duration::from_secs(5)).unwrap();
            q.ack.unwrap().done(7);
        });
        assert_eq!(
            tx.emit_durable(ev(), Duration::from_secs(5)),
            Err(NotDurable::Timeout)
        );
        worker.join().unwrap();
        durable_upto.store(7, Ordering::SeqCst);
        let (tx, rx) = channel(4, Overflow::Drop);
        rx.close();
        assert_eq!(
            tx.emit_durable(ev(), Duration::from_secs(1)),
            Err(NotDurable::Dropped)
        );
    }
}
