//! Routing and admission shared by every request-plane server (TCP listener, NATS
//! subscriptions): find the endpoint's handler, admit into the pool or queue, answer the ack.

use std::sync::Arc;
use std::time::Duration;

use dashmap::DashMap;
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
        if self.cancel.is_cancelled() {
            request.reject();
            return Ack::unavailable("worker shutting down");
        }
        let Some(handler) = self.endpoints.get(key).map(|h| Arc::clone(h.value())) else {
            request.reject();
            return Ack::unavailable(&format!("unknown endpoint {key}"));
        };
        match self.admission.try_admit() {
            Admit::Now(permit) => {
                self.inflight.spawn(async move {
                    handler.handle(request).await;
                    drop(permit);
                });
            }
            Admit::Queued(queued) => {
                self.inflight.spawn(async move {
                    let permit = queued.wait().await;
                    handler.handle(request).await;
                    drop(permit);
                });
            }
            Admit::Full => {
                request.reject();
                return Ack::Overloaded;
            }
        }
        Ack::Accepted
    }
}
