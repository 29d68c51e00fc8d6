//! Polls a future again, in place, when it wakes itself while being polled.
//!
//! hyper's HTTP/1 dispatcher and the request body it hands to the handler are the two ends
//! of one channel, polled by the same task: every body read wakes the dispatcher, that is the
//! task itself. Tokio's multi-thread scheduler treats a task woken during its own poll as a
//! yield: it queues the task behind the others and wakes an idle worker thread to steal it.
//! On an otherwise quiet server that is one futex wake, two context switches and a move of
//! the connection to another core per request. [`RepollSelfWakes`] notices the self-wake and
//! polls again before returning to the scheduler, so the request stays on its thread.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures::task::AtomicWaker;

/// How many times one scheduler poll may poll the inner future; a future that keeps waking
/// itself (hyper yields on purpose after 16 pipelined requests) then yields to the scheduler.
const MAX_POLLS: usize = 4;

/// A future wrapper that answers the inner future's own wake-ups by polling it again.
pub(crate) struct RepollSelfWakes<F> {
    inner: Pin<Box<F>>,
    state: Arc<WakeState>,
}

impl<F: Future> RepollSelfWakes<F> {
    /// Wraps `inner`.
    pub(crate) fn new(inner: F) -> Self {
        Self {
            inner: Box::pin(inner),
            state: Arc::new(WakeState::default()),
        }
    }
}

impl<F: Future> Future for RepollSelfWakes<F> {
    type Output = F::Output;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<F::Output> {
        let this = &mut *self;
        this.state.outer.register(cx.waker());
        let waker = Waker::from(Arc::clone(&this.state));
        let mut inner_cx = Context::from_waker(&waker);
        for _ in 0..MAX_POLLS {
            this.state.woken.store(false, Ordering::SeqCst);
            this.state.polling.store(true, Ordering::SeqCst);
            let polled = this.inner.as_mut().poll(&mut inner_cx);
            this.state.polling.store(false, Ordering::SeqCst);
            if polled.is_ready() || !this.state.woken.load(Ordering::SeqCst) {
                return polled;
            }
        }
        cx.waker().wake_by_ref();
        Poll::Pending
    }
}

/// What the inner future's waker reaches.
#[derive(Default)]
struct WakeState {
    /// Set while the inner future is being polled: a wake-up then only marks `woken`.
    polling: AtomicBool,
    /// A wake-up arrived since the current poll began.
    woken: AtomicBool,
    /// The scheduler's waker of the task that owns the wrapper.
    outer: AtomicWaker,
}

impl Wake for WakeState {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    /// Marks the wake-up first and forwards it unless a poll is running: a poll that ends
    /// after the mark polls again, and one that ended before it left `polling` false, so the
    /// wake-up reaches the scheduler. Either way none is lost.
    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::SeqCst);
        if !self.polling.load(Ordering::SeqCst) {
            self.outer.wake();
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use super::*;

    /// Wakes itself `self_wakes` times, then completes.
    struct SelfWaking {
        self_wakes: usize,
        polls: Arc<AtomicUsize>,
    }

    impl Future for SelfWaking {
        type Output = ();

        fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.fetch_add(1, Ordering::SeqCst);
            if self.self_wakes == 0 {
                return Poll::Ready(());
            }
            self.self_wakes -= 1;
            cx.waker().wake_by_ref();
            Poll::Pending
        }
    }

    /// Counts how often the outer task is woken.
    #[derive(Default)]
    struct CountingWaker(AtomicUsize);

    impl Wake for CountingWaker {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    /// Poll a wrapped future that wakes itself `self_wakes` times once, returning the
    /// result, how often the inner future was polled and how often the scheduler was woken.
    fn poll_once_with_self_wakes(self_wakes: usize) -> (Poll<()>, usize, usize) {
        let polls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::new(CountingWaker::default());
        let waker = Waker::from(Arc::clone(&counter));
        let mut future = RepollSelfWakes::new(SelfWaking {
            self_wakes,
            polls: Arc::clone(&polls),
        });
        let polled = Pin::new(&mut future).poll(&mut Context::from_waker(&waker));
        (
            polled,
            polls.load(Ordering::SeqCst),
            counter.0.load(Ordering::SeqCst),
        )
    }

    #[test]
    fn self_wakes_are_polled_in_place() {
        let (polled, polls, wakes) = poll_once_with_self_wakes(2);
        assert!(polled.is_ready());
        assert_eq!(polls, 3);
        assert_eq!(wakes, 0);
    }

    #[test]
    fn endless_self_wakes_yield_to_the_scheduler() {
        let (polled, polls, wakes) = poll_once_with_self_wakes(usize::MAX);
        assert!(polled.is_pending());
        assert_eq!(polls, MAX_POLLS);
        assert_eq!(wakes, 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn wake_ups_from_other_tasks_are_forwarded() {
        let (tx, rx) = tokio::sync::oneshot::channel::<u32>();
        let waiting = tokio::spawn(RepollSelfWakes::new(rx));
        tokio::time::sleep(Duration::from_millis(20)).await;
        tx.send(7).expect("receiver alive");
        let received = tokio::time::timeout(Duration::from_secs(10), waiting)
            .await
            .expect("woken")
            .expect("task ran");
        assert_eq!(received, Ok(7));
    }
}
