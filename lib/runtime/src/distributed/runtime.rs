//! [`DistributedRuntime`]: one per process (or several in one process for tests/mockers).

use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::OnceCell;
use tokio_util::sync::CancellationToken;

use super::config::{DiscoveryBackend, RuntimeConfig};
use super::endpoint::{Namespace, ServedEndpoint};
use crate::discovery::{Discovery, FileDiscovery, MemDiscovery};
use crate::error::StatorError;
use crate::names::{InstanceId, validate_name};
use crate::request_plane::{RequestPlaneClient, RequestPlaneServer};

/// The process's handle on discovery, the request plane and metrics. Cheap to clone.
#[derive(Clone)]
pub struct DistributedRuntime {
    inner: Arc<Inner>,
}

struct Inner {
    config: RuntimeConfig,
    discovery: Arc<dyn Discovery>,
    server: OnceCell<Arc<RequestPlaneServer>>,
    client: OnceCell<Arc<RequestPlaneClient>>,
    metrics: prometheus::Registry,
    served: Mutex<Vec<ServedEndpoint>>,
    cancel: CancellationToken,
}

impl DistributedRuntime {
    /// Starts a runtime with the discovery backend named in `config`.
    pub async fn new(config: RuntimeConfig) -> Result<Self, StatorError> {
        let discovery: Arc<dyn Discovery> = match config.discovery_backend {
            DiscoveryBackend::Mem => Arc::new(MemDiscovery::new()),
            DiscoveryBackend::File => Arc::new(
                FileDiscovery::open(config.file_discovery.clone())
                    .await
                    .map_err(|e| StatorError::unavailable(format!("file discovery: {e}")))?,
            ),
        };
        Ok(Self::with_discovery(discovery, config))
    }

    /// Starts a runtime configured from the `DYN_*` environment.
    pub async fn from_env() -> Result<Self, StatorError> {
        let config =
            RuntimeConfig::from_env().map_err(|e| StatorError::invalid_request(e.to_string()))?;
        Self::new(config).await
    }

    /// A runtime over an existing discovery client (e.g. several runtimes sharing one
    /// in-process [`MemStore`](crate::discovery::MemStore)).
    pub fn with_discovery(discovery: Arc<dyn Discovery>, config: RuntimeConfig) -> Self {
        Self {
            inner: Arc::new(Inner {
                config,
                discovery,
                server: OnceCell::new(),
                client: OnceCell::new(),
                metrics: prometheus::Registry::new(),
                served: Mutex::new(Vec::new()),
                cancel: CancellationToken::new(),
            }),
        }
    }

    /// The process's discovery identity: the instance id of everything it registers.
    pub fn instance_id(&self) -> InstanceId {
        self.inner.discovery.instance_id()
    }

    /// The discovery client.
    pub fn discovery(&self) -> &Arc<dyn Discovery> {
        &self.inner.discovery
    }

    /// The settings this runtime started with.
    pub fn config(&self) -> &RuntimeConfig {
        &self.inner.config
    }

    /// The root metrics registry.
    pub fn metrics(&self) -> &prometheus::Registry {
        &self.inner.metrics
    }

    /// Cancelled when the runtime shuts down.
    pub fn cancellation_token(&self) -> CancellationToken {
        self.inner.cancel.clone()
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

    /// Graceful shutdown: unregister every served endpoint from discovery, stop routing
    /// them, drain in-flight requests (up to the graceful-shutdown timeout), then shut
    /// discovery down. Returns whether every in-flight request finished in time.
    pub async fn shutdown(&self) -> bool {
        let served: Vec<ServedEndpoint> = std::mem::take(&mut *self.inner.served.lock());
        for endpoint in &served {
            endpoint.withdraw().await;
        }
        let timeout = self.inner.config.graceful_shutdown_timeout;
        let drained = match self.inner.server.get() {
            Some(server) => server.shutdown(timeout).await,
            None => true,
        };
        self.inner.discovery.shutdown().await;
        self.inner.cancel.cancel();
        drained
    }
}
