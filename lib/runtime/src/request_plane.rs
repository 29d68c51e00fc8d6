//! Request plane: the worker-side servers, the client and the call-home response stream,
//! speaking the frames of [`crate::wire`].
//!
//! A TCP worker process runs one [`RequestPlaneServer`] (one shared listener) on which every
//! served endpoint is registered by its instance path; a NATS worker runs one
//! [`NatsRequestServer`] subscribed to each endpoint's instance subject. Both admit through the
//! same pool-and-queue logic and answer with the same ack. A client process runs one
//! [`RequestPlaneClient`]: pooled, pipelined TCP connections per worker address, a NATS
//! connection opened on first use, and one [`TcpStreamServer`] the workers dial back to deliver
//! response streams whichever plane carried the request. Between Stator processes on TCP the
//! response stream instead comes back on the request connection itself (inline, see
//! [`crate::wire::InlineFrame`]), which saves a TCP connection per request; Dynamo peers keep
//! the call-home protocol.

mod admission;
mod call_home;
mod client;
mod config;
mod connection;
mod dispatch;
mod handler;
mod inline_client;
mod inline_server;
mod metrics;
mod nats;
mod respond;
mod response_reader;
mod server;
mod stream_server;
mod target;
mod writer;

pub use client::RequestPlaneClient;
pub use config::{DEFAULT_INLINE_STREAM_BUFFER, RequestPlaneConfig, RequestPlaneKind};
pub use handler::{EngineHandler, IncomingRequest, RequestHandler};
pub use metrics::{EndpointMetrics, WorkerMetrics};
pub use nats::NatsRequestServer;
pub use server::RequestPlaneServer;
pub use stream_server::TcpStreamServer;
pub use target::{NatsTarget, RequestTarget, TcpTarget, instance_subject};
