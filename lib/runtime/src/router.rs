//! Routing requests over the live instances of an endpoint.
//!
//! [`EndpointInstances`] follows discovery and keeps the current instance set;
//! [`PushRouter`] picks one instance per request ([`RouterMode`]), sends it over the request
//! plane, tracks in-flight requests per instance and skips instances that failed at the
//! transport level for the inhibition window.

mod instances;
mod load;
mod push;
mod select;

pub use instances::{EndpointInstances, InstanceEntry};
pub use push::{DEFAULT_INHIBITED_DURATION, PushRouter};
pub use select::RouterMode;
