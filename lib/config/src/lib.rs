//! Layered configuration for Stator binaries: a CLI flag beats its `DYN_*` environment
//! variable, which beats the documented default.
//!
//! [`RuntimeArgs`] is a `clap` argument group every binary flattens into its own parser;
//! [`RuntimeConfig`] is the resolved, plain-field result the runtime consumes. Names and
//! defaults follow NVIDIA Dynamo 1.6.1, except that discovery defaults to `file` so a single
//! machine needs no external service.
//!
//! ```
//! use clap::Parser;
//! use stator_config::{DiscoveryBackend, RuntimeArgs};
//!
//! #[derive(Parser)]
//! struct Cli {
//!     #[command(flatten)]
//!     runtime: RuntimeArgs,
//! }
//!
//! let cli = Cli::parse_from(["worker", "--discovery-backend", "mem", "--system-port", "9090"]);
//! let config = cli.runtime.to_config();
//! assert_eq!(config.discovery_backend, DiscoveryBackend::Mem);
//! assert_eq!(config.system_port, Some(9090));
//! ```

mod kinds;
mod runtime;

pub use kinds::{
    DiscoveryBackend, EventPlaneKind, InvalidPort, OptionalPort, PayloadCodec, RequestPlaneKind,
};
pub use runtime::{
    ConfigError, DEFAULT_ETCD_ENDPOINT, DEFAULT_ETCD_LEASE_TTL_SECS,
    DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECS, DEFAULT_INHIBITED_DURATION_SECS,
    DEFAULT_MAX_BLOCKING_THREADS, DEFAULT_NATS_SERVER, DEFAULT_REQUEST_QUEUE_LIMIT,
    DEFAULT_TCP_MAX_MESSAGE_SIZE, DEFAULT_TCP_WORK_QUEUE_SIZE, DEFAULT_TCP_WORKER_POOL_SIZE,
    RuntimeArgs, RuntimeConfig, RuntimeThreads, default_file_kv,
};

#[cfg(test)]
mod tests;
