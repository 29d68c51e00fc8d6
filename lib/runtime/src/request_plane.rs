//! Request plane: the worker-side servers, the client and the call-home response stream,
//! speaking the frames of [`crate::wire`].
//!
//! A TCP worker process runs one [`RequestPlaneServer`] (one shared listener) on which every
//! served endpoint is registered by its instance path; a NATS worker runs one
//! [`NatsRequestServer`] subscribed to each endpoint's instance subject. Both admit through the
//! same pool-and-queue logic and answer with the same ack. A client process runs one
//! [`RequestPlaneClient`]: pooled, pipelined TCP connections per worker address, a NATS
//! connection opened on first use, and one [`TcpStreamServer`] the workers dial back to deliver
//! response streams whichever plane carried the request.

mod admission;
mod call_home;
mod client;
mod config;
mod connection;
mod dispatch;
mod handler;
mod metrics;
mod nats;
mod response_reader;
mod server;
mod stream_server;
mod target;

pub use client::RequestPlaneClient;
pub use config::{RequestPlaneConfig, RequestPlaneKind};
pub use handler::{EngineHandler, RequestHandler};
pub use metrics::{EndpointMetrics, WorkerMetrics};
pub use nats::NatsRequestServer;
pub use server::RequestPlaneServer;
pub use stream_server::TcpStreamServer;
pub use target::{NatsTarget, RequestTarget, TcpTarget, instance_subject};
