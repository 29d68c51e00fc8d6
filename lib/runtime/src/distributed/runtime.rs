//! [`DistributedRuntime`]: one per process (or several in one process for tests/mockers).

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::config::{DiscoveryBackend, EventPlaneKind, RuntimeConfig};
use super::endpoint::{Namespace, ServedEndpoint};
use crate::discovery::{Discovery, EtcdDiscovery, FileDiscovery, MemDiscovery, MemStore};
use crate::error::StatorError;
use crate::event_plane::{EventPlane, LocalBus};
use crate::names::{InstanceId, validate_name};
use crate::request_plane::{
    NatsRequestServer, RequestPlaneClient, RequestPlaneServer, WorkerMetrics,
};
use crate::system_status::{FileRoutes, HealthState, SystemStatusServer};

/// The process's handle on discovery, the request plane and metrics. Cheap to clone.
#[derive(Clone)]
pub struct DistributedRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    config: RuntimeConfig,
    discovery: Arc<dyn Discovery>,
    event_plane: EventPlane,
    health: HealthState,
    files: FileRoutes,
    status_server: Mutex<Option<SystemStatusServer>>,
    server: OnceCell<Arc<RequestPlaneServer>>,
    nats_server: OnceCell<Arc<NatsRequestServer>>,
    client: OnceCell<Arc<RequestPlaneClient>>,
    metrics: prometheus::Registry,
    worker_metrics: WorkerMetrics,
    served: Mutex<Vec<ServedEndpoint>>,
    cancel: CancellationToken,
    registration_lost: CancellationToken,
}

impl DistributedRuntime {
    /// Starts a runtime with the discovery backend and event plane named in `config`:
    /// - `mem`: a private store, with an in-process event bus (or NATS);
    /// - `file`: file discovery, with the ZMQ event plane (or NATS);
    /// - `etcd`: etcd discovery on the process's primary lease, whose id becomes the instance
    ///   id, with the ZMQ event plane (or NATS). Losing the lease cancels
    ///   [`DistributedRuntime::registration_lost`].
    ///
    /// The system status server starts too when `config.system_status.port` is set.
    pub async fn new(config: RuntimeConfig) -> Result<Self, StatorError> {
        let (discovery, registration_lost): (Arc<dyn Discovery>, CancellationToken) = match config
            .discovery_backend
        {
            DiscoveryBackend::Mem => (Arc::new(MemDiscovery::new()), CancellationToken::new()),
            DiscoveryBackend::File => (
                Arc::new(
                    FileDiscovery::open(config.file_discovery.clone())
                        .await
                        .map_err(|e| StatorError::unavailable(format!("file discovery: {e}")))?,
                ),
                CancellationToken::new(),
            ),
            DiscoveryBackend::Etcd => {
                let etcd = EtcdDiscovery::connect(config.etcd.clone())
                    .await
                    .map_err(|e| StatorError::unavailable(format!("etcd discovery: {e}")))?;
                let lost = etcd.lease_lost();
                (Arc::new(etcd), lost)
            }
        };
        let event_plane =
            match (config.event_plane, config.discovery_backend) {
                (EventPlaneKind::Nats, _) => {
                    let client =
                        config.request_plane.nats.connect().await.map_err(|e| {
                            StatorError::unavailable(format!("NATS event plane: {e}"))
                        })?;
                    EventPlane::nats(Arc::clone(&discovery), client)
                }
                (EventPlaneKind::Zmq, DiscoveryBackend::Mem) => {
                    EventPlane::local(Arc::clone(&discovery), LocalBus::new())
                }
                (EventPlaneKind::Zmq, DiscoveryBackend::File | DiscoveryBackend::Etcd) => {
                    EventPlane::zmq(Arc::clone(&discovery), config.zmq.clone())
                }
            };
        let drt = Self::with_parts(discovery, event_plane, config).await?;
        drt.watch_registration(registration_lost);
        Ok(drt)
    }

    /// Forwards a discovery backend's "registration lost for good" signal (etcd lease
    /// expiry) to [`DistributedRuntime::registration_lost`], logging it.
    fn watch_registration(&self, lost: CancellationToken) {
        let ours = self.inner.registration_lost.clone();
        let closed = self.inner.cancel.clone();
        tokio::spawn(async move {
            tokio::select! {
                () = lost.cancelled() => {
                    tracing::error!(
                        "discovery registration lost (etcd lease expired or revoked): \
                         this process must shut down"
                    );
                    ours.cancel();
                }
                () = closed.cancelled() => {}
            }
        });
    }

    /// Starts a runtime configured from the `DYN_*` environment.
    pub async fn from_env() -> Result<Self, StatorError> {
        let config =
            RuntimeConfig::from_env().map_err(|e| StatorError::invalid_request(e.to_string()))?;
        Self::new(config).await
    }

    /// A runtime on a shared in-process discovery store and event bus: several runtimes of
    /// one process (embedded workers and their frontend, tests) see each other's records and
    /// events. `config.discovery_backend` is not consulted.
    pub async fn in_process(
        store: &MemStore,
        bus: &LocalBus,
        config: RuntimeConfig,
    ) -> Result<Self, StatorError> {
        let discovery: Arc<dyn Discovery> = Arc::new(store.client());
        let events = EventPlane::local(Arc::clone(&discovery), bus.clone());
        Self::with_parts(discovery, events, config).await
    }

    /// A runtime over an existing discovery client and event plane, e.g. several runtimes in
    /// one process sharing a [`MemStore`](crate::discovery::MemStore) and a [`LocalBus`].
    /// `config.discovery_backend` is not consulted.
    pub async fn with_parts(
        discovery: Arc<dyn Discovery>,
        event_plane: EventPlane,
        config: RuntimeConfig,
    ) -> Result<Self, StatorError> {
        let health = config.system_status.health_state();
        let metrics = prometheus::Registry::new();
        let worker_metrics = WorkerMetrics::register(&metrics)?;
        let files = FileRoutes::default();
        let status_server = SystemStatusServer::start(
            &config.system_status,
            health.clone(),
            metrics.clone(),
            files.clone(),
        )
        .await
        .map_err(|e| {
            StatorError::internal(format!("cannot start the system status server: {e}"))
        })?;
        Ok(Self {
            inner: Arc::new(Inner {
                config,
                discovery,
                event_plane,
                health,
                files,
                status_server: Mutex::new(status_server),
                server: OnceCell::new(),
                nats_server: OnceCell::new(),
                client: OnceCell::new(),
                metrics,
                worker_metrics,
                served: Mutex::new(Vec::new()),
                cancel: CancellationToken::new(),
                registration_lost: CancellationToken::new(),
            }),
        })
    }

    /// The process's discovery identity: the instance id of everything it registers.
    pub fn instance_id(&self) -> InstanceId {
        self.inner.discovery.instance_id()
    }

    /// The discovery client.
    pub fn discovery(&self) -> &Arc<dyn Discovery> {
        &self.inner.discovery
    }

    /// The event plane (publishers and subscribers).
    pub fn event_plane(&self) -> &EventPlane {
        &self.inner.event_plane
    }

    /// The health state the system status server reports.
    pub fn health(&self) -> &HealthState {
        &self.inner.health
    }

    /// Where the system status server listens, when it runs.
    pub fn system_status_addr(&self) -> Option<std::net::SocketAddr> {
        self.inner
            .status_server
            .lock()
            .as_ref()
            .map(SystemStatusServer::local_addr)
    }

    /// `host:port` where other machines reach the system status server, when it runs.
    pub fn system_status_authority(&self) -> Option<String> {
        self.inner
            .status_server
            .lock()
            .as_ref()
            .map(|server| server.advertised_authority().to_owned())
    }

    /// The files the system status server serves under `/v1/metadata/…` (self-hosted
    /// model-card artifacts).
    pub fn metadata_files(&self) -> &FileRoutes {
        &self.inner.files
    }

    /// The settings this runtime started with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The root metrics registry.
    pub fn metrics(&self) -> &prometheus::Registry {
        &self.inner.metrics
    }

    /// The `dynamo_component_*` request metrics of served endpoints.
    pub fn worker_metrics(&self) -> &WorkerMetrics {
        &self.inner.worker_metrics
    }

    /// Cancelled when the runtime shuts down.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
    }

    /// Cancelled when the process's discovery registration is gone for good: its etcd
    /// primary lease expired or was revoked (etcd unreachable for longer than the TTL, or
    /// restarted without its data). The instance id died with the lease, so the process
    /// cannot re-register; binaries shut down when this fires, as Dynamo does. Never
    /// cancelled for `mem` and `file` discovery.
    pub fn registration_lost(&self) -> CancellationToken {
        self.inner.registration_lost.clone()
    }

    /// A namespace handle (`^[a-z0-9-_]+$`).
    pub fn namespace(&self, name: impl Into<String>) -> Result<Namespace, StatorError> {
        let name = name.into();
        validate_name("namespace", &name)
            .map_err(|e| StatorError::invalid_request(e.to_string()))?;
        Ok(Namespace::new(self.clone(), name))
    }

    /// The process-wide request-plane server, bound on first use.
    pub async fn request_plane_server(&self) -> Result<Arc<RequestPlaneServer>, StatorError> {
        self.inner
            .server
            .get_or_try_init(|| async {
                RequestPlaneServer::bind(&self.inner.config.request_plane)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// The process-wide NATS request-plane server, connected on first use.
    pub async fn nats_request_server(&self) -> Result<Arc<NatsRequestServer>, StatorError> {
        self.inner
            .nats_server
            .get_or_try_init(|| async {
                NatsRequestServer::connect(&self.inner.config.request_plane)
                    .await
                    .map(Arc::new)
            })
            .await
            .cloned()
    }

    /// The process-wide request-plane client (pool + response-stream server), started on
    /// first use.
    pub async fn request_plane_client(&self) -> Result<Arc<RequestPlaneClient>, StatorError> {
        self.inner
            .client
            .get_or_try_init(|| RequestPlaneClient::new(self.inner.config.request_plane.clone()))
            .await
            .cloned()
    }

    pub(crate) fn track_served(&self, served: ServedEndpoint) {
        self.inner.served.lock().push(served);
    }

    /// Graceful shutdown: report not ready, unregister every served endpoint from discovery,
    /// stop routing them, drain in-flight requests (up to the graceful-shutdown timeout), then
    /// shut discovery and the status server down. Returns whether every in-flight request
    /// finished in time.
    pub async fn shutdown(&self) -> bool {
        self.inner.health.set_ready(false);
        let served: Vec<ServedEndpoint> = std::mem::take(&mut *self.inner.served.lock());
        for endpoint in &served {
            endpoint.withdraw().await;
        }
        let timeout = self.inner.config.graceful_shutdown_timeout;
        let tcp_drained = match self.inner.server.get() {
            Some(server) => server.shutdown(timeout).await,
            None => true,
        };
        let nats_drained = match self.inner.nats_server.get() {
            Some(server) => server.shutdown(timeout).await,
            None => true,
        };
        let drained = tcp_drained && nats_drained;
        self.inner.discovery.shutdown().await;
        let status_server = self.inner.status_server.lock().take();
        if let Some(status_server) = status_server {
            status_server.shutdown().await;
        }
        self.inner.cancel.cancel();
        drained
    }
}
