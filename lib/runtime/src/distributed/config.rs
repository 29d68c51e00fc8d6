//! Runtime settings and their `DYN_*` environment variables.

use std::fmt;
use std::str::FromStr;
use std::time::Duration;

use crate::discovery::{EtcdConfig, FileDiscoveryConfig};
use crate::event_plane::{NatsConfig, ZmqConfig};
use crate::request_plane::RequestPlaneConfig;
use crate::router::DEFAULT_INHIBITED_DURATION;
use crate::system_status::SystemStatusConfig;
use crate::wire::Codec;

pub use stator_config::EventPlaneKind;

/// Which discovery backend a runtime uses (`--discovery-backend`, `DYN_DISCOVERY_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DiscoveryBackend {
    /// Process-local store (tests, single-process deployments).
    Mem,
    /// One file per record under `DYN_FILE_KV`; works across processes on one host or a
    /// shared file system.
    #[default]
    File,
    /// An etcd cluster (`ETCD_ENDPOINTS`), every record on the process's lease.
    Etcd,
}

/// The backend name is not one this build supports.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unsupported discovery backend {0:?} (supported: mem, file, etcd)")]
pub struct UnsupportedBackend(pub String);

impl FromStr for DiscoveryBackend {
    type Err = UnsupportedBackend;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "mem" => Ok(Self::Mem),
            "file" => Ok(Self::File),
            "etcd" => Ok(Self::Etcd),
            _ => Err(UnsupportedBackend(s.to_owned())),
        }
    }
}

impl fmt::Display for DiscoveryBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Self::Mem => "mem",
            Self::File => "file",
            Self::Etcd => "etcd",
        })
    }
}

/// Why shared settings cannot start a [`DistributedRuntime`](super::DistributedRuntime).
#[derive(Debug, thiserror::Error)]
pub enum RuntimeConfigError {
    /// A flag or `DYN_*` variable did not parse.
    #[error(transparent)]
    Settings(#[from] stator_config::ConfigError),
    /// The discovery backend is not one [`DistributedRuntime::new`](super::DistributedRuntime::new) opens.
    #[error(transparent)]
    Backend(#[from] UnsupportedBackend),
}

/// Everything a [`DistributedRuntime`](super::DistributedRuntime) needs to start.
#[derive(Debug, Clone)]
pub struct RuntimeConfig {
    /// Discovery backend.
    pub discovery_backend: DiscoveryBackend,
    /// File backend settings (root `DYN_FILE_KV`, TTL).
    pub file_discovery: FileDiscoveryConfig,
    /// etcd backend settings (`ETCD_ENDPOINTS`, lease TTL, authentication, TLS).
    pub etcd: EtcdConfig,
    /// Event plane transport (`--event-plane`, `DYN_EVENT_PLANE`): ZMQ direct (or the
    /// in-process bus with `mem` discovery) or NATS core subjects on
    /// `request_plane.nats`'s servers.
    pub event_plane: EventPlaneKind,
    /// TCP request plane settings.
    pub request_plane: RequestPlaneConfig,
    /// ZMQ event-plane settings (`file` and `etcd` backends; `mem` uses an in-process bus).
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
            etcd: EtcdConfig::from_env(),
            event_plane: EventPlaneKind::Zmq,
            request_plane: RequestPlaneConfig::default(),
            zmq: ZmqConfig::from_env(),
            system_status: SystemStatusConfig::default(),
            inhibit_for: DEFAULT_INHIBITED_DURATION,
            graceful_shutdown_timeout: DEFAULT_GRACEFUL_SHUTDOWN_TIMEOUT,
        }
    }
}

impl RuntimeConfig {
    /// Defaults overridden by the process environment (`DYN_*`, `NATS_SERVER`), read through
    /// [`stator_config::RuntimeConfig::from_env`].
    pub fn from_env() -> Result<Self, RuntimeConfigError> {
        Self::from_shared(&stator_config::RuntimeConfig::from_env()?)
    }

    /// The runtime settings a binary's shared flag group resolves to
    /// (`stator_config::RuntimeArgs::to_config()`); settings the group does not carry (health
    /// routes, NATS and etcd authentication and TLS) come from the environment.
    pub fn from_shared(shared: &stator_config::RuntimeConfig) -> Result<Self, RuntimeConfigError> {
        let discovery_backend = match shared.discovery_backend {
            stator_config::DiscoveryBackend::Mem => DiscoveryBackend::Mem,
            stator_config::DiscoveryBackend::File => DiscoveryBackend::File,
            stator_config::DiscoveryBackend::Etcd => DiscoveryBackend::Etcd,
            stator_config::DiscoveryBackend::Kubernetes => {
                return Err(UnsupportedBackend("kubernetes".to_owned()).into());
            }
        };
        let request_plane = RequestPlaneConfig {
            kind: shared.request_plane,
            nats: NatsConfig::from_runtime(shared),
            rpc_host: shared.tcp_rpc_host.clone(),
            rpc_port: shared.tcp_rpc_port,
            response_host: shared.tcp_response_stream_host.clone(),
            response_port: shared.tcp_response_stream_port,
            worker_pool_size: shared.admission_pool_size,
            work_queue_size: shared.admission_queue_size,
            max_message_size: shared.tcp_max_message_size,
            codec: match shared.request_plane_codec {
                stator_config::PayloadCodec::Msgpack => Codec::Msgpack,
                stator_config::PayloadCodec::Json => Codec::Json,
            },
            ..RequestPlaneConfig::from_env()
        };
        let zmq = match &shared.event_plane_host {
            Some(host) => ZmqConfig {
                bind_host: "0.0.0.0".to_owned(),
                advertise_host: host.clone(),
            },
            None => ZmqConfig::from_env(),
        };
        let mut system_status = SystemStatusConfig::from_env();
        system_status.host.clone_from(&shared.system_host);
        system_status.port = shared.system_port;
        Ok(Self {
            discovery_backend,
            file_discovery: FileDiscoveryConfig::new(shared.file_kv.clone()),
            etcd: EtcdConfig::from_runtime(shared),
            event_plane: shared.event_plane,
            request_plane,
            zmq,
            system_status,
            inhibit_for: shared.inhibited_duration,
            graceful_shutdown_timeout: shared.graceful_shutdown_timeout,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::request_plane::RequestPlaneKind;

    #[test]
    fn shared_flags_map_onto_the_runtime() {
        let shared = stator_config::RuntimeConfig::from_args([
            "--discovery-backend",
            "mem",
            "--request-plane",
            "nats",
            "--nats-server",
            "nats://10.0.0.9:4222",
            "--tcp-worker-pool-size",
            "7",
        ])
        .expect("flags parse");
        let config = RuntimeConfig::from_shared(&shared).expect("supported");
        assert_eq!(config.discovery_backend, DiscoveryBackend::Mem);
        assert_eq!(config.request_plane.kind, RequestPlaneKind::Nats);
        assert_eq!(
            config.request_plane.nats.servers,
            vec!["nats://10.0.0.9:4222"]
        );
        assert_eq!(config.request_plane.worker_pool_size, 7);
    }

    #[test]
    fn cluster_backends_map_onto_the_runtime() {
        let shared = stator_config::RuntimeConfig::from_args([
            "--discovery-backend",
            "etcd",
            "--etcd-endpoints",
            "10.0.0.1:2379,10.0.0.2:2379",
            "--etcd-lease-ttl",
            "7",
            "--event-plane",
            "nats",
        ])
        .expect("flags parse");
        let config = RuntimeConfig::from_shared(&shared).expect("supported");
        assert_eq!(config.discovery_backend, DiscoveryBackend::Etcd);
        assert_eq!(
            config.etcd.endpoints,
            vec!["10.0.0.1:2379", "10.0.0.2:2379"]
        );
        assert_eq!(config.etcd.lease_ttl, Duration::from_secs(7));
        assert_eq!(config.event_plane, EventPlaneKind::Nats);
    }

    #[test]
    fn kubernetes_discovery_is_refused() {
        let k8s = stator_config::RuntimeConfig::from_args(["--discovery-backend", "kubernetes"])
            .expect("flags parse");
        assert!(matches!(
            RuntimeConfig::from_shared(&k8s),
            Err(RuntimeConfigError::Backend(_))
        ));
    }
}
