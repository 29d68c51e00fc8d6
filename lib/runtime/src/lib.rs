//! Stator's distributed runtime: discovery, request plane, event plane, engines and routing,
//! wire-compatible with NVIDIA Dynamo 1.6.1.
//!
//! A [`DistributedRuntime`] owns the process's discovery client, its request-plane server
//! (one shared TCP listener, or one NATS subscription per served endpoint with
//! `DYN_REQUEST_PLANE=nats`) and client (pooled, pipelined TCP connections or NATS
//! request-reply, chosen per instance record, plus the call-home response-stream server). Engines implement
//! [`AsyncEngine`]; a worker serves one on an [`Endpoint`] and a client reaches it through a
//! [`PushRouter`], which is itself an engine. Errors are [`StatorError`]s, typed end to end.
//!
//! ```
//! use std::sync::Arc;
//! use stator_runtime::{
//!     AsyncEngine, DiscoveryBackend, DistributedRuntime, Request, RequestPlaneConfig,
//!     ResponseStream, RuntimeConfig, StatorError,
//! };
//!
//! /// Streams the words of the request back, one item each.
//! struct Words;
//!
//! #[async_trait::async_trait]
//! impl AsyncEngine<Request<String>, ResponseStream<String>> for Words {
//!     async fn generate(&self, request: Request<String>) -> Result<ResponseStream<String>, StatorError> {
//!         let (text, context) = request.into_parts();
//!         let words: Vec<String> = text.split(' ').map(str::to_owned).collect();
//!         Ok(ResponseStream::new(futures::stream::iter(words), context))
//!     }
//! }
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), StatorError> {
//! let config = RuntimeConfig {
//!     discovery_backend: DiscoveryBackend::Mem,
//!     request_plane: RequestPlaneConfig {
//!         rpc_host: Some("127.0.0.1".to_owned()),
//!         response_host: Some("127.0.0.1".to_owned()),
//!         ..RequestPlaneConfig::default()
//!     },
//!     ..RuntimeConfig::default()
//! };
//! let drt = DistributedRuntime::new(config).await?;
//!
//! let endpoint = drt.namespace("demo")?.component("words")?.endpoint("generate")?;
//! endpoint.serve(Arc::new(Words)).await?;
//!
//! let router = endpoint.client::<String, String>().await?;
//! router.instances().wait_for_instances().await;
//! let stream = router.generate(Request::new("hello distributed world".to_owned())).await?;
//! assert_eq!(stream.try_collect_items().await?, ["hello", "distributed", "world"]);
//!
//! drt.shutdown().await;
//! # Ok(())
//! # }
//! ```
//!
//! Modules: [`names`] (addresses, instance ids), [`error`] (typed errors), [`discovery`]
//! (backends and records), [`wire`] (frame codecs), [`request_plane`] (TCP server, client,
//! call-home streams), [`engine`] (engine trait, request context, response streams),
//! [`router`] (instance sets and the push router), [`distributed`] (the runtime and its
//! namespace/component/endpoint handles), [`event_plane`], [`system_status`].

pub mod discovery;
pub mod distributed;
pub mod engine;
pub mod error;
pub mod event_plane;
pub mod heap;
pub mod names;
pub mod net;
pub mod request_plane;
pub mod router;
pub mod system_status;
pub mod wire;

pub use discovery::{Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, Instance};
pub use distributed::{
    Component, DiscoveryBackend, DistributedRuntime, Endpoint, EventPlaneKind, Namespace,
    RuntimeConfig, ServedEndpoint,
};
pub use engine::{AsyncEngine, Context, Request, ResponseStream, StreamingEngine};
pub use error::{ErrorClass, ErrorReason, StatorError};
pub use event_plane::EventPlane;
pub use names::{EndpointId, InstanceId};
pub use request_plane::{RequestPlaneClient, RequestPlaneConfig, RequestPlaneServer};
pub use router::{EndpointInstances, PushRouter, RouterMode};
