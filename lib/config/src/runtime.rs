//! Runtime settings shared by every binary: discovery, planes, TCP limits, status server.

use std::num::NonZeroUsize;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};

use crate::kinds::{
    DiscoveryBackend, EventPlaneKind, OptionalPort, PayloadCodec, RequestPlaneKind,
};

/// Default `DYN_TCP_MAX_MESSAGE_SIZE`: 32 MiB.
pub const DEFAULT_TCP_MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;
/// Default `DYN_TCP_WORKER_POOL_SIZE`.
pub const DEFAULT_TCP_WORKER_POOL_SIZE: usize = 10_000;
/// Default `DYN_TCP_WORK_QUEUE_SIZE`.
pub const DEFAULT_TCP_WORK_QUEUE_SIZE: usize = 40_000;
/// Default `DYN_DYNAMO_REQUEST_QUEUE_LIMIT` (queue size when an engine request limit is set).
pub const DEFAULT_REQUEST_QUEUE_LIMIT: usize = 16;
/// Default `DYN_RUNTIME_INHIBITED_DURATION_SECS`.
pub const DEFAULT_INHIBITED_DURATION_SECS: u64 = 5;
/// Default `DYN_RUNTIME_MAX_BLOCKING_THREADS` (tokio's own default).
pub const DEFAULT_MAX_BLOCKING_THREADS: usize = 512;

/// Default `DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS`.
pub const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECS: u64 = 30;
/// Default `ETCD_ENDPOINTS`.
pub const DEFAULT_ETCD_ENDPOINT: &str = "http://localhost:2379";
/// Default `ETCD_LEASE_TTL` in seconds.
pub const DEFAULT_ETCD_LEASE_TTL_SECS: u64 = 30;
/// Default `NATS_SERVER`.
pub const DEFAULT_NATS_SERVER: &str = "nats://localhost:4222";

/// The runtime flag group; flatten it into a binary's `clap` parser with `#[command(flatten)]`.
///
/// Every flag has a `DYN_*` (or `ETCD_*`) environment twin; a flag beats its variable, which
/// beats the default.
#[derive(Debug, Clone, PartialEq, Eq, Args)]
pub struct RuntimeArgs {
    /// Discovery backend.
    #[arg(long, env = "DYN_DISCOVERY_BACKEND", value_enum, default_value_t)]
    pub discovery_backend: DiscoveryBackend,
    /// Request plane transport.
    #[arg(long, env = "DYN_REQUEST_PLANE", value_enum, default_value_t)]
    pub request_plane: RequestPlaneKind,
    /// Event plane transport.
    #[arg(long, env = "DYN_EVENT_PLANE", value_enum, default_value_t)]
    pub event_plane: EventPlaneKind,
    /// Request payload codec this process's endpoints advertise.
    #[arg(long, env = "DYN_REQUEST_PLANE_CODEC", value_enum, default_value_t)]
    pub request_plane_codec: PayloadCodec,
    /// Root directory of file discovery [default: $TMPDIR/dynamo_store_kv].
    #[arg(long, env = "DYN_FILE_KV")]
    pub file_kv: Option<PathBuf>,
    /// etcd endpoints, comma separated.
    #[arg(long, env = "ETCD_ENDPOINTS", value_delimiter = ',', default_value = DEFAULT_ETCD_ENDPOINT)]
    pub etcd_endpoints: Vec<String>,
    /// etcd lease TTL in seconds.
    #[arg(long, env = "ETCD_LEASE_TTL", default_value_t = DEFAULT_ETCD_LEASE_TTL_SECS)]
    pub etcd_lease_ttl: u64,
    /// NATS server URLs, comma separated (used by `--event-plane nats`).
    #[arg(long, env = "NATS_SERVER", value_delimiter = ',', default_value = DEFAULT_NATS_SERVER)]
    pub nats_server: Vec<String>,
    /// Host the TCP request listener binds and advertises [default: this machine's IP].
    #[arg(long, env = "DYN_TCP_RPC_HOST")]
    pub tcp_rpc_host: Option<String>,
    /// Port of the TCP request listener (0 = OS-assigned).
    #[arg(long, env = "DYN_TCP_RPC_PORT", default_value_t = 0)]
    pub tcp_rpc_port: u16,
    /// Host of the TCP response-stream server [default: this machine's IP].
    #[arg(long, env = "DYN_TCP_RESPONSE_STREAM_HOST")]
    pub tcp_response_stream_host: Option<String>,
    /// Port of the TCP response-stream server (0 = OS-assigned).
    #[arg(long, env = "DYN_TCP_RESPONSE_STREAM_PORT", default_value_t = 0)]
    pub tcp_response_stream_port: u16,
    /// Largest request-plane frame in bytes.
    #[arg(long, env = "DYN_TCP_MAX_MESSAGE_SIZE", default_value_t = DEFAULT_TCP_MAX_MESSAGE_SIZE)]
    pub tcp_max_message_size: usize,
    /// Requests a worker process handles concurrently.
    #[arg(long, env = "DYN_TCP_WORKER_POOL_SIZE", default_value_t = DEFAULT_TCP_WORKER_POOL_SIZE)]
    pub tcp_worker_pool_size: usize,
    /// Requests a worker process queues when the pool is full.
    #[arg(long, env = "DYN_TCP_WORK_QUEUE_SIZE", default_value_t = DEFAULT_TCP_WORK_QUEUE_SIZE)]
    pub tcp_work_queue_size: usize,
    /// Engine concurrency limit; when set it replaces the pool size.
    #[arg(long, env = "DYN_ENGINE_REQUEST_LIMIT")]
    pub engine_request_limit: Option<usize>,
    /// Queue size used together with the engine request limit.
    #[arg(long, env = "DYN_DYNAMO_REQUEST_QUEUE_LIMIT", default_value_t = DEFAULT_REQUEST_QUEUE_LIMIT)]
    pub request_queue_limit: usize,
    /// Host advertised for ZMQ event publishers [default: this machine's IP].
    #[arg(long, env = "DYN_EVENT_PLANE_HOST")]
    pub event_plane_host: Option<String>,
    /// Seconds an instance that failed at the transport level is skipped (0 disables).
    #[arg(long, env = "DYN_RUNTIME_INHIBITED_DURATION_SECS", default_value_t = DEFAULT_INHIBITED_DURATION_SECS)]
    pub inhibited_duration_secs: u64,
    /// Seconds shutdown waits for in-flight requests to finish.
    #[arg(long, env = "DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS", default_value_t = DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECS)]
    pub graceful_shutdown_timeout_secs: u64,
    /// Tokio worker threads of the process [default: one per CPU].
    #[arg(long, env = "DYN_RUNTIME_NUM_WORKER_THREADS")]
    pub num_worker_threads: Option<NonZeroUsize>,
    /// Most threads the process starts for blocking work (file reads, model loading).
    #[arg(long, env = "DYN_RUNTIME_MAX_BLOCKING_THREADS", default_value_t = NonZeroUsize::new(DEFAULT_MAX_BLOCKING_THREADS).expect("nonzero"))]
    pub max_blocking_threads: NonZeroUsize,
    /// Interface of the system status server.
    #[arg(long, env = "DYN_SYSTEM_HOST", default_value = "0.0.0.0")]
    pub system_host: String,
    /// Port of the system status server; -1 disables it.
    #[arg(
        long,
        env = "DYN_SYSTEM_PORT",
        default_value = "-1",
        allow_negative_numbers = true
    )]
    pub system_port: OptionalPort,
}

/// Resolved runtime settings: plain fields, built from [`RuntimeArgs`] or the environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeConfig {
    /// Discovery backend.
    pub discovery_backend: DiscoveryBackend,
    /// Request plane transport.
    pub request_plane: RequestPlaneKind,
    /// Event plane transport.
    pub event_plane: EventPlaneKind,
    /// Codec this process's endpoints advertise.
    pub request_plane_codec: PayloadCodec,
    /// Root directory of file discovery.
    pub file_kv: PathBuf,
    /// etcd endpoints.
    pub etcd_endpoints: Vec<String>,
    /// etcd lease TTL.
    pub etcd_lease_ttl: Duration,
    /// NATS server URLs.
    pub nats_server: Vec<String>,
    /// TCP request listener host; `None` = auto-detect.
    pub tcp_rpc_host: Option<String>,
    /// TCP request listener port (0 = OS-assigned).
    pub tcp_rpc_port: u16,
    /// Response-stream server host; `None` = auto-detect.
    pub tcp_response_stream_host: Option<String>,
    /// Response-stream server port (0 = OS-assigned).
    pub tcp_response_stream_port: u16,
    /// Largest request-plane frame in bytes.
    pub tcp_max_message_size: usize,
    /// Concurrent requests per worker process (after the engine limit is applied).
    pub admission_pool_size: usize,
    /// Queued requests per worker process (after the engine limit is applied).
    pub admission_queue_size: usize,
    /// Advertised host of ZMQ event publishers; `None` = auto-detect.
    pub event_plane_host: Option<String>,
    /// How long a failing instance is skipped; zero disables inhibition.
    pub inhibited_duration: Duration,
    /// How long shutdown waits for in-flight requests.
    pub graceful_shutdown_timeout: Duration,
    /// System status server interface.
    pub system_host: String,
    /// System status server port; `None` = disabled.
    pub system_port: Option<u16>,
}

/// Why settings could not be read.
#[derive(Debug, thiserror::Error)]
#[error("invalid runtime setting: {0}")]
pub struct ConfigError(String);

#[derive(Parser)]
#[command(no_binary_name = true)]
struct EnvOnly {
    #[command(flatten)]
    args: RuntimeArgs,
}

/// Thread counts of the process's tokio runtime (`DYN_RUNTIME_NUM_WORKER_THREADS`,
/// `DYN_RUNTIME_MAX_BLOCKING_THREADS`); read before the runtime starts, so they are not part of
/// [`RuntimeConfig`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RuntimeThreads {
    /// Worker threads; `None` = one per CPU.
    pub worker_threads: Option<NonZeroUsize>,
    /// Most blocking-pool threads.
    pub max_blocking_threads: NonZeroUsize,
}

impl Default for RuntimeThreads {
    fn default() -> Self {
        Self {
            worker_threads: None,
            max_blocking_threads: NonZeroUsize::new(DEFAULT_MAX_BLOCKING_THREADS).expect("nonzero"),
        }
    }
}

impl RuntimeArgs {
    /// The runtime's thread counts.
    pub fn threads(&self) -> RuntimeThreads {
        RuntimeThreads {
            worker_threads: self.num_worker_threads,
            max_blocking_threads: self.max_blocking_threads,
        }
    }

    /// The resolved settings.
    pub fn to_config(&self) -> RuntimeConfig {
        let (admission_pool_size, admission_queue_size) = match self.engine_request_limit {
            Some(limit) => (limit, self.request_queue_limit),
            None => (self.tcp_worker_pool_size, self.tcp_work_queue_size),
        };
        RuntimeConfig {
            discovery_backend: self.discovery_backend,
            request_plane: self.request_plane,
            event_plane: self.event_plane,
            request_plane_codec: self.request_plane_codec,
            file_kv: self
                .file_kv
                .clone()
                .filter(|p| !p.as_os_str().is_empty())
                .unwrap_or_else(default_file_kv),
            etcd_endpoints: self.etcd_endpoints.clone(),
            etcd_lease_ttl: Duration::from_secs(self.etcd_lease_ttl),
            nats_server: self.nats_server.clone(),
            tcp_rpc_host: non_empty(self.tcp_rpc_host.as_ref()),
            tcp_rpc_port: self.tcp_rpc_port,
            tcp_response_stream_host: non_empty(self.tcp_response_stream_host.as_ref()),
            tcp_response_stream_port: self.tcp_response_stream_port,
            tcp_max_message_size: self.tcp_max_message_size,
            admission_pool_size,
            admission_queue_size,
            event_plane_host: non_empty(self.event_plane_host.as_ref()),
            inhibited_duration: Duration::from_secs(self.inhibited_duration_secs),
            graceful_shutdown_timeout: Duration::from_secs(self.graceful_shutdown_timeout_secs),
            system_host: self.system_host.clone(),
            system_port: self.system_port.0,
        }
    }
}

fn non_empty(value: Option<&String>) -> Option<String> {
    value.filter(|v| !v.is_empty()).cloned()
}

/// `$TMPDIR/dynamo_store_kv`, Dynamo's file discovery root.
pub fn default_file_kv() -> PathBuf {
    std::env::temp_dir().join("dynamo_store_kv")
}

impl RuntimeConfig {
    /// Settings from the environment alone (no flags): variable, else default.
    pub fn from_env() -> Result<Self, ConfigError> {
        Self::from_args(std::iter::empty::<String>())
    }

    /// Settings from command-line style arguments (without the binary name) over the
    /// environment.
    pub fn from_args<I, T>(args: I) -> Result<Self, ConfigError>
    where
        I: IntoIterator<Item = T>,
        T: Into<std::ffi::OsString> + Clone,
    {
        EnvOnly::try_parse_from(args)
            .map(|parsed| parsed.args.to_config())
            .map_err(|e| ConfigError(e.to_string()))
    }
}

impl Default for RuntimeConfig {
    /// Every setting at its documented default, ignoring the environment.
    fn default() -> Self {
        RuntimeConfig {
            discovery_backend: DiscoveryBackend::default(),
            request_plane: RequestPlaneKind::default(),
            event_plane: EventPlaneKind::default(),
            request_plane_codec: PayloadCodec::default(),
            file_kv: default_file_kv(),
            etcd_endpoints: vec![DEFAULT_ETCD_ENDPOINT.to_owned()],
            etcd_lease_ttl: Duration::from_secs(DEFAULT_ETCD_LEASE_TTL_SECS),
            nats_server: vec![DEFAULT_NATS_SERVER.to_owned()],
            tcp_rpc_host: None,
            tcp_rpc_port: 0,
            tcp_response_stream_host: None,
            tcp_response_stream_port: 0,
            tcp_max_message_size: DEFAULT_TCP_MAX_MESSAGE_SIZE,
            admission_pool_size: DEFAULT_TCP_WORKER_POOL_SIZE,
            admission_queue_size: DEFAULT_TCP_WORK_QUEUE_SIZE,
            event_plane_host: None,
            inhibited_duration: Duration::from_secs(DEFAULT_INHIBITED_DURATION_SECS),
            graceful_shutdown_timeout: Duration::from_secs(DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT_SECS),
            system_host: "0.0.0.0".to_owned(),
            system_port: None,
        }
    }
}
