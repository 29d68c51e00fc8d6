//! The distributed runtime: discovery, request plane and the namespace → component →
//! endpoint hierarchy through which engines are served and called.
//!
//! A worker serves an engine with `drt.namespace("ns")?.component("comp")?.endpoint("ep")?
//! .serve(engine)`; a client routes to it with `endpoint.client()`. Shutdown unregisters every
//! served endpoint from discovery first, then drains in-flight requests.

mod config;
mod endpoint;
mod runtime;

pub use config::{
    DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT, DiscoveryBackend, EventPlaneKind, RuntimeConfig,
    RuntimeConfigError, UnsupportedBackend,
};
pub use endpoint::{Component, Endpoint, Namespace, ServedEndpoint};
pub use runtime::DistributedRuntime;
