//! TCP request plane: the worker-side server, the client pool and the call-home response
//! stream, speaking the frames of [`crate::wire`].
//!
//! A worker process runs one [`RequestPlaneServer`] (one shared listener) on which every served
//! endpoint is registered by its instance path. A client process runs one [`RequestPlaneClient`]:
//! pooled, pipelined request connections per worker address plus one [`TcpStreamServer`] that
//! the workers dial back to deliver response streams.

mod admission;
mod call_home;
mod client;
mod config;
mod connection;
mod handler;
mod metrics;
mod response_reader;
mod server;
mod stream_server;

pub use client::{RequestPlaneClient, TcpTarget};
pub use config::RequestPlaneConfig;
pub use handler::{EngineHandler, RequestHandler};
pub use metrics::{EndpointMetrics, WorkerMetrics};
pub use server::RequestPlaneServer;
pub use stream_server::TcpStreamServer;
