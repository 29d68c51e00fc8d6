//! Routing and admission shared by every request-plane server (TCP listener, NATS
//! subscriptions): find the endpoint's handler, admit into the pool or queue, answer the ack.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
use futures::future::BoxFuture;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admission::{Admission, Admit};
use super::handler::{IncomingRequest, RequestHandler};
use crate::wire::Ack;

/// Registered endpoints plus the process's admission pool and queue.
pub(crate) struct Dispatcher {
    endpoints: DashMap<String, Arc<dyn RequestHandler>>,
    admission: Arc<Admission>,
    cancel: CancellationToken,
    inflight: TaskTracker,
}

impl Dispatcher {
    pub(crate) fn new(pool_size: usize, queue_size: usize) -> Arc<Self> {
        Arc::new(Self {
            endpoints: DashMap::new(),
            admission: Admission::new(pool_size, queue_size),
            cancel: CancellationToken::new(),
            inflight: TaskTracker::new(),
        })
    }

    pub(crate) fn register(&self, key: String, handler: Arc<dyn RequestHandler>) {
        self.endpoints.insert(key, handler);
    }

    pub(crate) fn unregister(&self, key: &str) {
        self.endpoints.remove(key);
    }

    pub(crate) fn inflight(&self) -> usize {
        self.inflight.len()
    }

    pub(crate) fn queue_depth(&self) -> usize {
        self.admission.queue_depth()
    }

    /// Cancelled once shutdown starts; servers stop receiving.
    pub(crate) fn cancelled(&self) -> &CancellationToken {
        &self.cancel
    }

    /// Stops admitting, then waits up to `timeout` for admitted requests to finish.
    pub(crate) async fn shutdown(&self, timeout: Duration) -> bool {
        self.cancel.cancel();
        self.inflight.close();
        tokio::time::timeout(timeout, self.inflight.wait())
            .await
            .is_ok()
    }

    /// Admits a request for endpoint `key`; the ack says whether it runs (now or queued).
    pub(crate) fn admit(&self, key: &str, request: IncomingRequest) -> Ack {
        match self.admission(key, request) {
            Ok(Some(work)) => {
                self.inflight.spawn(work);
                Ack::Accepted
            }
            Ok(None) => Ack::Accepted,
            Err(ack) => ack,
        }
    }

    /// Like [`Dispatcher::admit`], but a request that runs at once is first polled by the
    /// calling task: a short response is then written before this returns (no hand-off to
    /// another thread), and only the unfinished remainder becomes a task.
    pub(crate) async fn admit_polled(&self, key: &str, request: IncomingRequest) -> Ack {
        match self.admission(key, request) {
            Ok(Some(mut work)) => {
                if futures::poll!(work.as_mut()).is_pending() {
                    self.inflight.spawn(work);
                }
                Ack::Accepted
            }
            Ok(None) => Ack::Accepted,
            Err(ack) => ack,
        }
    }

    /// Routes and admits: `Ok(Some(work))` to run now, `Ok(None)` when queued (already
    /// spawned), `Err(ack)` when refused.
    fn admission(
        &self,
        key: &str,
        request: IncomingRequest,
    ) -> Result<Option<BoxFuture<'static, ()>>, Ack> {
        if self.cancel.is_cancelled() {
            request.reject();
            return Err(Ack::unavailable("worker shutting down"));
        }
        let Some(handler) = self.endpoints.get(key).map(|h| Arc::clone(h.value())) else {
            request.reject();
            return Err(Ack::unavailable(&format!("unknown endpoint {key}")));
        };
        match self.admission.try_admit() {
            Admit::Now(permit) => Ok(Some(Box::pin(async move {
                handler.handle(request).await;
                drop(permit);
            }))),
            Admit::Queued(queued) => {
                self.inflight.spawn(async move {
                    let permit = queued.wait().await;
                    handler.handle(request).await;
                    drop(permit);
                });
                Ok(None)
            }
            Admit::Full => {
                request.reject();
                Err(Ack::Overloaded)
            }
        }
    }
}
