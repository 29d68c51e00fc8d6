//! The push router: pick an instance, send over the request plane, account for the outcome.

use std::marker::PhantomData;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use async_trait::async_trait;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::instances::{EndpointInstances, InstanceEntry};
use super::load::LoadBook;
use super::select::{RouterMode, pick};
use crate::engine::{AsyncEngine, Request, ResponseStream};
use crate::error::StatorError;
use crate::names::InstanceId;
use crate::request_plane::RequestPlaneClient;

/// Default of `DYN_RUNTIME_INHIBITED_DURATION_SECS`.
pub const DEFAULT_INHIBITED_DURATION: Duration = Duration::from_secs(5);

/// Routes `Req`s to the instances of one endpoint and streams back `Resp`s.
///
/// Implements [`AsyncEngine`], so it composes like any other engine. Stream items are
/// `Result`s: a stream that breaks yields a final `Err` (e.g. `Disconnected`).
pub struct PushRouter<Req, Resp> {
    instances: EndpointInstances,
    client: Arc<RequestPlaneClient>,
    mode: RouterMode,
    book: Arc<LoadBook>,
    counter: AtomicUsize,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> PushRouter<Req, Resp>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    /// A router over `instances` using `client`; failing instances are skipped for
    /// `inhibit_for` (zero disables inhibition).
    pub fn new(
        instances: EndpointInstances,
        client: Arc<RequestPlaneClient>,
        mode: RouterMode,
        inhibit_for: Duration,
    ) -> Self {
        Self {
            instances,
            client,
            mode,
            book: Arc::new(LoadBook::new(inhibit_for)),
            counter: AtomicUsize::new(0),
            _types: PhantomData,
        }
    }

    /// The watched instance set.
    pub fn instances(&self) -> &EndpointInstances {
        &self.instances
    }

    /// The routing policy.
    pub fn mode(&self) -> RouterMode {
        self.mode
    }

    /// Instances that are known and not inhibited.
    pub fn available(&self) -> Vec<InstanceEntry> {
        let now = Instant::now();
        self.instances
            .list()
            .iter()
            .filter(|e| !self.book.is_inhibited(e.id, now))
            .cloned()
            .collect()
    }

    /// Requests this router has in flight on `id`.
    pub fn inflight(&self, id: InstanceId) -> usize {
        self.book.inflight(id)
    }

    /// Skips `id` for the inhibition window (what transport faults do automatically).
    pub fn report_instance_down(&self, id: InstanceId) {
        self.book.report_down(id);
    }

    /// The instance `mode` picks now (for [`RouterMode::Direct`], that instance if it is
    /// known), without sending anything: a caller that must know where a request goes picks
    /// first and then sends with [`PushRouter::direct`].
    pub fn choose(&self, mode: RouterMode) -> Result<InstanceId, StatorError> {
        self.choose_entry(mode).map(|entry| entry.id)
    }

    fn choose_entry(&self, mode: RouterMode) -> Result<InstanceEntry, StatorError> {
        let entry = if let RouterMode::Direct(id) = mode {
            self.instances.list().iter().find(|e| e.id == id).cloned()
        } else {
            let candidates = self.available();
            let ids: Vec<InstanceId> = candidates.iter().map(|e| e.id).collect();
            let counter = self.counter.fetch_add(1, Ordering::Relaxed);
            pick(
                mode,
                &ids,
                |i| self.book.inflight(ids[i]),
                counter,
                |n| rand::random_range(0..n),
            )
            .map(|i| candidates[i].clone())
        };
        entry.ok_or_else(|| match mode {
            RouterMode::Direct(id) => StatorError::unavailable(format!(
                "instance {id} of {} is not available",
                self.instances.endpoint()
            )),
            _ => StatorError::unavailable(format!(
                "no instances of {} available",
                self.instances.endpoint()
            )),
        })
    }

    /// Routes with an explicit policy instead of the router's own.
    pub async fn generate_with(
        &self,
        request: Request<Req>,
        mode: RouterMode,
    ) -> Result<ResponseStream<Result<Resp, StatorError>>, StatorError> {
        let entry = self.choose_entry(mode)?;
        self.send(&entry, request).await
    }

    /// Sends to one instance by id.
    pub async fn direct(
        &self,
        request: Request<Req>,
        id: InstanceId,
    ) -> Result<ResponseStream<Result<Resp, StatorError>>, StatorError> {
        self.generate_with(request, RouterMode::Direct(id)).await
    }

    async fn send(
        &self,
        entry: &InstanceEntry,
        request: Request<Req>,
    ) -> Result<ResponseStream<Result<Resp, StatorError>>, StatorError> {
        let guard = self.book.start(entry.id);
        // A worker that dies after accepting (acked over NATS, or over TCP before it dialed
        // back) would leave the caller waiting; its instance record leaving discovery (lease
        // or TTL expiry) ends the wait.
        let sent = tokio::select! {
            biased;
            sent = self.client.generate(&entry.target, request) => sent,
            () = self.instances.departed(entry.id) => Err(StatorError::disconnected(format!(
                "instance {} of {} left discovery before responding",
                entry.id,
                self.instances.endpoint()
            ))),
        };
        let stream = match sent {
            Ok(stream) => stream,
            Err(err) => {
                if err.inhibits_instance() {
                    self.book.report_down(entry.id);
                }
                return Err(err);
            }
        };
        let book = Arc::clone(&self.book);
        let id = entry.id;
        Ok(stream.map(move |item| {
            let _counted = &guard;
            if let Err(err) = &item
                && err.inhibits_instance()
            {
                book.report_down(id);
            }
            item
        }))
    }
}

#[async_trait]
impl<Req, Resp> AsyncEngine<Request<Req>, ResponseStream<Result<Resp, StatorError>>>
    for PushRouter<Req, Resp>
where
    Req: Serialize + Send + 'static,
    Resp: DeserializeOwned + Send + 'static,
{
    async fn generate(
        &self,
        request: Request<Req>,
    ) -> Result<ResponseStream<Result<Resp, StatorError>>, StatorError> {
        self.generate_with(request, self.mode).await
    }
}
