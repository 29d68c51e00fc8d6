//! Worker admission: a pool of running slots plus a bounded FIFO overflow queue.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

/// Decides, at ack time, whether a request runs now, waits in the queue, or is refused.
#[derive(Debug)]
pub(crate) struct Admission {
    pool: Arc<Semaphore>,
    queued: AtomicUsize,
    queue_capacity: usize,
}

/// Outcome of [`Admission::try_admit`].
pub(crate) enum Admit {
    /// A pool slot is held; run at once.
    Now(OwnedSemaphorePermit),
    /// Counted in the queue; await [`Queued::wait`] for a slot (FIFO).
    Queued(Queued),
    /// Pool and queue are both full.
    Full,
}

/// A request's place in the overflow queue.
pub(crate) struct Queued {
    admission: Arc<Admission>,
}

impl Admission {
    pub(crate) fn new(pool_size: usize, queue_capacity: usize) -> Arc<Self> {
        Arc::new(Self {
            pool: Arc::new(Semaphore::new(pool_size.max(1))),
            queued: AtomicUsize::new(0),
            queue_capacity,
        })
    }

    pub(crate) fn try_admit(self: &Arc<Self>) -> Admit {
        if let Ok(permit) = Arc::clone(&self.pool).try_acquire_owned() {
            return Admit::Now(permit);
        }
        if self.queued.fetch_add(1, Ordering::AcqRel) < self.queue_capacity {
            Admit::Queued(Queued {
                admission: Arc::clone(self),
            })
        } else {
            self.queued.fetch_sub(1, Ordering::AcqRel);
            Admit::Full
        }
    }

    /// Requests waiting for a slot.
    pub(crate) fn queue_depth(&self) -> usize {
        self.queued.load(Ordering::Acquire)
    }
}

impl Queued {
    /// Waits for a pool slot; tokio's semaphore serves waiters in FIFO order.
    pub(crate) async fn wait(self) -> OwnedSemaphorePermit {
        let pool = Arc::clone(&self.admission.pool);
        pool.acquire_owned()
            .await
            .expect("the admission semaphore is never closed")
    }
}

impl Drop for Queued {
    fn drop(&mut self) {
        self.admission.queued.fetch_sub(1, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pool_then_queue_then_full() {
        let adm = Admission::new(1, 1);
        let Admit::Now(first) = adm.try_admit() else {
            panic!("first request must run at once")
        };
        let Admit::Queued(second) = adm.try_admit() else {
            panic!("second request must queue")
        };
        assert!(matches!(adm.try_admit(), Admit::Full));
        assert_eq!(adm.queue_depth(), 1);
        let waiter = tokio::spawn(second.wait());
        drop(first);
        let permit = waiter.await.expect("queued request gets the slot");
        assert_eq!(adm.queue_depth(), 0);
        assert!(matches!(adm.try_admit(), Admit::Queued(_)));
        drop(permit);
    }
}
