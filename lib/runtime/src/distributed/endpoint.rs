//! Namespace → component → endpoint handles, serving and client wiring.

use std::fmt;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::runtime::DistributedRuntime;
use crate::discovery::{DeviceType, DiscoveryRecord, Instance, TransportType};
use crate::engine::StreamingEngine;
use crate::error::StatorError;
use crate::names::{EndpointId, validate_name};
use crate::request_plane::{
    EngineHandler, NatsRequestServer, RequestHandler, RequestPlaneKind, RequestPlaneServer,
    instance_subject,
};
use crate::router::{EndpointInstances, PushRouter, RouterMode};

/// A namespace of the runtime.
#[derive(Clone)]
pub struct Namespace {
    drt: DistributedRuntime,
    name: String,
}

/// A component inside a namespace.
#[derive(Clone)]
pub struct Component {
    drt: DistributedRuntime,
    namespace: String,
    name: String,
}

/// An endpoint of a component: what engines are served on and clients call.
#[derive(Clone)]
pub struct Endpoint {
    drt: DistributedRuntime,
    id: EndpointId,
}

fn invalid(e: impl fmt::Display) -> StatorError {
    StatorError::invalid_request(e.to_string())
}

impl Namespace {
    pub(super) fn new(drt: DistributedRuntime, name: String) -> Self {
        Self { drt, name }
    }

    /// The namespace name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// A component of this namespace.
    pub fn component(&self, name: impl Into<String>) -> Result<Component, StatorError> {
        let name = name.into();
        validate_name("component", &name).map_err(invalid)?;
        Ok(Component {
            drt: self.drt.clone(),
            namespace: self.name.clone(),
            name,
        })
    }
}

impl Component {
    /// The component name.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The namespace name.
    pub fn namespace(&self) -> &str {
        &self.namespace
    }

    /// An endpoint of this component.
    pub fn endpoint(&self, name: impl Into<String>) -> Result<Endpoint, StatorError> {
        let id =
            EndpointId::new(self.namespace.clone(), self.name.clone(), name).map_err(invalid)?;
        Ok(Endpoint {
            drt: self.drt.clone(),
            id,
        })
    }
}

impl fmt::Display for Component {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.namespace, self.name)
    }
}

impl Endpoint {
    /// An endpoint handle straight from its id (e.g. parsed from `dyn://ns.comp.ep`).
    pub fn from_id(drt: &DistributedRuntime, id: EndpointId) -> Result<Self, StatorError> {
        id.validate().map_err(invalid)?;
        Ok(Self {
            drt: drt.clone(),
            id,
        })
    }

    /// The endpoint's address.
    pub fn id(&self) -> &EndpointId {
        &self.id
    }

    /// Serves `engine` on this endpoint until the runtime shuts down or the returned handle
    /// is stopped.
    ///
    /// Order (as Dynamo): route the instance path on the process's request-plane server,
    /// then publish the instance record in discovery; if publishing fails, the route is
    /// removed again.
    pub async fn serve<Req, Resp>(
        &self,
        engine: StreamingEngine<Req, Resp>,
    ) -> Result<ServedEndpoint, StatorError>
    where
        Req: DeserializeOwned + Send + 'static,
        Resp: Serialize + Send + 'static,
    {
        let config = &self.drt.config().request_plane;
        let instance_id = self.drt.instance_id();
        let handler = Arc::new(
            EngineHandler::new(engine, config.max_message_size)
                .with_metrics(self.drt.worker_metrics().endpoint(&self.id)),
        );
        let route: Arc<dyn RequestHandler> = Arc::clone(&handler) as Arc<dyn RequestHandler>;
        let (server, transport) = match config.kind {
            RequestPlaneKind::Tcp => {
                let server = self.drt.request_plane_server().await?;
                let path = self.id.instance_path(instance_id);
                server.register(path.clone(), route);
                let transport = TransportType::Tcp(format!("{}/{path}", server.address()));
                (PlaneServer::Tcp(server, path), transport)
            }
            RequestPlaneKind::Nats => {
                let server = self.drt.nats_request_server().await?;
                let subject = instance_subject(&self.id, instance_id);
                server.register(&subject, route).await?;
                (
                    PlaneServer::Nats(server, subject.clone()),
                    TransportType::NatsTcp(subject),
                )
            }
        };
        let instance = Instance {
            component: self.id.component.clone(),
            endpoint: self.id.name.clone(),
            namespace: self.id.namespace.clone(),
            instance_id,
            transport,
            device_type: Some(DeviceType::detect()),
            request_plane_codec: Some(config.codec),
        };
        let record = DiscoveryRecord::Endpoint(instance.clone());
        if let Err(e) = self.drt.discovery().register(record).await {
            server.unregister();
            return Err(StatorError::unavailable(format!(
                "cannot register {}: {e}",
                self.id
            )));
        }
        tracing::info!(endpoint = %self.id, instance = %instance_id, route = server.route(), "serving");
        // Serving is what makes a worker ready unless readiness is tied to named endpoints.
        self.drt.health().set_endpoint(&self.id.name, true);
        self.drt.health().set_ready(true);
        let served = ServedEndpoint {
            inner: Arc::new(ServedInner {
                drt: self.drt.clone(),
                server,
                instance,
                handler,
                withdrawn: AtomicBool::new(false),
            }),
        };
        self.drt.track_served(served.clone());
        Ok(served)
    }

    /// The live instances of this endpoint, from discovery.
    pub async fn instances(&self) -> Result<EndpointInstances, StatorError> {
        EndpointInstances::watch(self.drt.discovery().as_ref(), self.id.clone()).await
    }

    /// A round-robin [`PushRouter`] to this endpoint.
    pub async fn client<Req, Resp>(&self) -> Result<PushRouter<Req, Resp>, StatorError>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        self.router(RouterMode::RoundRobin).await
    }

    /// A [`PushRouter`] to this endpoint with the given policy.
    pub async fn router<Req, Resp>(
        &self,
        mode: RouterMode,
    ) -> Result<PushRouter<Req, Resp>, StatorError>
    where
        Req: Serialize + Send + 'static,
        Resp: DeserializeOwned + Send + 'static,
    {
        let instances = self.instances().await?;
        let client = self.drt.request_plane_client().await?;
        Ok(PushRouter::new(
            instances,
            client,
            mode,
            self.drt.config().inhibit_for,
        ))
    }
}

impl fmt::Display for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.id.fmt(f)
    }
}

/// What a served endpoint needs from its handler at shutdown, independent of its types.
trait Drain: Send + Sync {
    fn inflight(&self) -> usize;
    fn drain(&self, timeout: Duration) -> BoxFuture<'_, bool>;
}

impl<Req, Resp> Drain for EngineHandler<Req, Resp>
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    fn inflight(&self) -> usize {
        EngineHandler::inflight(self)
    }

    fn drain(&self, timeout: Duration) -> BoxFuture<'_, bool> {
        Box::pin(EngineHandler::drain(self, timeout))
    }
}

/// Handle on an engine being served; cheap to clone.
#[derive(Clone)]
pub struct ServedEndpoint {
    inner: Arc<ServedInner>,
}

/// The request-plane server an endpoint is routed on, with its routing key.
enum PlaneServer {
    Tcp(Arc<RequestPlaneServer>, String),
    Nats(Arc<NatsRequestServer>, String),
}

impl PlaneServer {
    fn route(&self) -> &str {
        match self {
            Self::Tcp(_, key) | Self::Nats(_, key) => key,
        }
    }

    fn unregister(&self) {
        match self {
            Self::Tcp(server, path) => server.unregister(path),
            Self::Nats(server, subject) => server.unregister(subject),
        }
    }
}

struct ServedInner {
    drt: DistributedRuntime,
    server: PlaneServer,
    instance: Instance,
    handler: Arc<dyn Drain>,
    withdrawn: AtomicBool,
}

impl ServedEndpoint {
    /// The instance record published in discovery.
    pub fn instance(&self) -> &Instance {
        &self.inner.instance
    }

    /// Requests of this endpoint being served right now.
    pub fn inflight(&self) -> usize {
        self.inner.handler.inflight()
    }

    /// Removes the instance from discovery, then stops routing its path (later requests get
    /// a `Server unavailable` ack). Idempotent.
    pub async fn withdraw(&self) {
        if self.inner.withdrawn.swap(true, Ordering::AcqRel) {
            return;
        }
        let id = DiscoveryRecord::Endpoint(self.inner.instance.clone()).id();
        if let Err(e) = self.inner.drt.discovery().unregister(&id).await {
            tracing::warn!(error = %e, "cannot unregister {}", self.inner.server.route());
        }
        self.inner.server.unregister();
        self.inner
            .drt
            .health()
            .set_endpoint(&self.inner.instance.endpoint, false);
    }

    /// Graceful stop of this endpoint alone: withdraw, then wait up to `timeout` for its
    /// in-flight requests. Returns whether they all finished.
    pub async fn stop(&self, timeout: Duration) -> bool {
        self.withdraw().await;
        self.inner.handler.drain(timeout).await
    }
}
