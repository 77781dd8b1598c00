//! The session's select: runs the relay's two directions and the shutdown
//! signal until one of them ends, and at each wake-up polls only those
//! that were woken. A message from the client polls the client's
//! direction, not the server's nor the shutdown signal, as a `select!`
//! over the three would.
//!
//! Each future gets a waker of its own, which marks the future woken and
//! then wakes the task. The mark is cleared before the future is polled,
//! so a wake-up during the poll is never lost.

use std::future::{Future, poll_fn};
use std::pin::pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// Which future ended first, with its output.
#[derive(Debug)]
pub(crate) enum First<A, B, C> {
    A(A),
    B(B),
    C(C),
}

/// Polls `a`, `b` and `c` until one of them is ready, each only when it
/// was woken (all three the first time); the others are dropped.
pub(crate) async fn race<A: Future, B: Future, C: Future>(
    a: A,
    b: B,
    c: C,
) -> First<A::Output, B::Output, C::Output> {
    let (mut a, mut b, mut c) = (pin!(a), pin!(b), pin!(c));
    let branches = [Branch::new(), Branch::new(), Branch::new()];
    // The task's waker the branches wake, as last given to them.
    let mut task: Option<Waker> = None;
    poll_fn(move |cx| {
        if !task.as_ref().is_some_and(|t| t.will_wake(cx.waker())) {
            // A new task waker (the first poll): every branch forwards to
            // it, and every future is polled once with its own waker.
            for branch in &branches {
                branch.wake.set_task(cx.waker());
                branch.wake.woken.store(true, Ordering::Release);
            }
            task = Some(cx.waker().clone());
        }
        if let Poll::Ready(out) = branches[0].poll(a.as_mut()) {
            return Poll::Ready(First::A(out));
        }
        if let Poll::Ready(out) = branches[1].poll(b.as_mut()) {
            return Poll::Ready(First::B(out));
        }
        if let Poll::Ready(out) = branches[2].poll(c.as_mut()) {
            return Poll::Ready(First::C(out));
        }
        Poll::Pending
    })
    .await
}

/// One future's waker and the mark it sets.
struct Branch {
    wake: Arc<BranchWake>,
    waker: Waker,
}

impl Branch {
    fn new() -> Self {
        let wake = Arc::new(BranchWake {
            woken: AtomicBool::new(true),
            task: Mutex::new(None),
        });
        let waker = Waker::from(Arc::clone(&wake));
        Branch { wake, waker }
    }

    /// Polls `fut` with this branch's waker if it was woken since it was
    /// last polled.
    fn poll<F: Future>(&self, fut: std::pin::Pin<&mut F>) -> Poll<F::Output> {
        if !self.wake.woken.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        fut.poll(&mut Context::from_waker(&self.waker))
    }
}

struct BranchWake {
    woken: AtomicBool,
    /// The task to wake.
    task: Mutex<Option<Waker>>,
}

impl BranchWake {
    fn set_task(&self, waker: &Waker) {
        *self.task.lock().unwrap_or_else(PoisonError::into_inner) = Some(waker.clone());
    }
}

impl Wake for BranchWake {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let task = self.task.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(task) = &*task {
            task.wake_by_ref();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;
    use std::sync::atomic::AtomicUsize;

    use super::*;

    /// A future that counts its polls and is ready once `ready` is set.
    async fn counted(polls: &AtomicUsize, ready: &tokio::sync::Notify) -> &'static str {
        polls.fetch_add(1, Ordering::Relaxed);
        ready.notified().await;
        polls.fetch_add(1, Ordering::Relaxed);
        "done"
    }

    #[tokio::test]
    async fn the_woken_future_wins_and_the_idle_ones_are_polled_once() {
        let (pa, pb) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let (na, nb) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let notify_b = async {
            tokio::task::yield_now().await;
            nb.notify_one();
        };
        let (first, ()) = tokio::join!(
            race(counted(&pa, &na), counted(&pb, &nb), rx.wait_for(|c| *c)),
            notify_b
        );
        assert!(matches!(first, First::B("done")));
        // `a` was polled once, at the start, and never woken.
        assert_eq!(pa.load(Ordering::Relaxed), 1);
        assert_eq!(pb.load(Ordering::Relaxed), 2);
        drop(tx);
    }

    #[tokio::test]
    async fn a_signal_ends_the_race() {
        let (tx, mut rx) = tokio::sync::watch::channel(false);
        let send = async {
            tokio::task::yield_now().await;
            tx.send_replace(true);
        };
        let (first, ()) = tokio::join!(
            race(pending::<()>(), pending::<()>(), rx.wait_for(|c| *c)),
            send
        );
        assert!(matches!(first, First::C(Ok(_))));
    }

    #[tokio::test]
    async fn wake_ups_between_polls_are_kept() {
        // Both directions woken before the task runs again: both are
        // polled, the first listed wins.
        let (na, nb) = (tokio::sync::Notify::new(), tokio::sync::Notify::new());
        let (pa, pb) = (AtomicUsize::new(0), AtomicUsize::new(0));
        let wake_both = async {
            tokio::task::yield_now().await;
            nb.notify_one();
            na.notify_one();
        };
        let (first, ()) = tokio::join!(
            race(counted(&pa, &na), counted(&pb, &nb), pending::<()>()),
            wake_both
        );
        assert!(matches!(first, First::A("done")));
        assert_eq!(pa.load(Ordering::Relaxed), 2);
    }
}
