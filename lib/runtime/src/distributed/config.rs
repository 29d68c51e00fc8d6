//! Runtime settings and their `DYN_*` environment variables.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::discovery::FileDiscoveryConfig;
use crate::event_plane::ZmqConfig;
use crate::request_plane::RequestPlaneConfig;
use crate::router::DEFAULT_INHIBITED_DURATION;
use crate::system_status::SystemStatusConfig;

/// Which discovery backend a runtime uses (`--discovery-backend`, `DYN_DISCOVERY_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiscoveryBackend {
    /// Process-local store (tests, single-process deployments).
    Mem,
    /// One file per record under `DYN_FILE_KV`; works across processes on one host or a
    /// shared file system.
    #[default]
    File,
}

/// The backend name is not one this build supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported discovery backend {0:?} (supported: mem, file)")]
pub struct UnsupportedBackend(pub String);

impl FromStr for DiscoveryBackend {
    type Err = UnsupportedBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mem" => Ok(Self::Mem),
            "file" => Ok(Self::File),
            _ => Err(UnsupportedBackend(s.to_owned())),
        }
    }
}

impl fmt::Display for DiscoveryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mem => "mem",
            Self::File => "file",
        })
    }
}

/// Everything a [`DistributedRuntime`](super::DistributedRuntime) needs to start.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Discovery backend.
    pub discovery_backend: DiscoveryBackend,
    /// File backend settings (root `DYN_FILE_KV`, TTL).
    pub file_discovery: FileDiscoveryConfig,
    /// TCP request plane settings.
    pub request_plane: RequestPlaneConfig,
    /// ZMQ event-plane settings (used with the `file` backend; `mem` uses an in-process bus).
    pub zmq: ZmqConfig,
    /// System status server (`DYN_SYSTEM_*`; off unless a port is set).
    pub system_status: SystemStatusConfig,
    /// How long an instance that failed at the transport level is skipped
    /// (`DYN_RUNTIME_INHIBITED_DURATION_SECS`; zero disables).
    pub inhibit_for: Duration,
    /// How long shutdown waits for in-flight requests
    /// (`DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS`).
    pub graceful_shutdown_timeout: Duration,
}

/// Default of `DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS`.
pub const DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(30);

/// Defaults; the ZMQ advertise host is resolved as Dynamo does (`DYN_EVENT_PLANE_HOST`, else
/// the outbound interface's address).
impl Default for RuntimeConfig {
    fn default() -> Self {
        Self {
            discovery_backend: DiscoveryBackend::default(),
            file_discovery: FileDiscoveryConfig::new(FileDiscoveryConfig::default_root()),
            request_plane: RequestPlaneConfig::default(),
            zmq: ZmqConfig::from_env(),
            system_status: SystemStatusConfig::default(),
            inhibit_for: DEFAULT_INHIBITED_DURATION,
            graceful_shutdown_timeout: DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
        }
    }
}

impl RuntimeConfig {
    /// Defaults overridden by the process environment.
    pub fn from_env() -> Result<Self, UnsupportedBackend> {
        let secs = |key: &str| {
            std::env::var(key)
                .ok()
                .and_then(|v| v.trim().parse::<f64>().ok())
                .filter(|s| *s >= 0.0)
                .map(Duration::from_secs_f64)
        };
        let discovery_backend = match std::env::var("DYN_DISCOVERY_BACKEND") {
            Ok(name) if !name.trim().is_empty() => name.parse()?,
            _ => DiscoveryBackend::default(),
        };
        Ok(Self {
            discovery_backend,
            file_discovery: FileDiscoveryConfig::from_env(),
            request_plane: RequestPlaneConfig::from_env(),
            zmq: ZmqConfig::from_env(),
            system_status: SystemStatusConfig::from_env(),
            inhibit_for: secs("DYN_RUNTIME_INHIBITED_DURATION_SECS")
                .unwrap_or(DEFAULT_INHIBITED_DURATION),
            graceful_shutdown_timeout: secs("DYN_RUNTIME_GRACEFUL_SHUTDOWN_TIMEOUT_SECS")
                .unwrap_or(DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT),
        })
    }
}
