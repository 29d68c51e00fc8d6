//! Request-plane settings and their `DYN_*` environment variables.

use std::time::Duration;

pub use stator_config::RequestPlaneKind;

use crate::event_plane::NatsConfig;
use crate::wire::{Codec, DEFAULT_MAX_MESSAGE_SIZE};

/// Default of [`RequestPlaneConfig::inline_stream_buffer`]: 16 MiB.
pub const DEFAULT_INLINE_STREAM_BUFFER: usize = 16 * 1024 * 1024;

/// Settings of the request plane (server, client and response-stream server).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RequestPlaneConfig {
    /// Transport workers serve on (`DYN_REQUEST_PLANE`: `tcp` or `nats`). Clients follow each
    /// instance's record, so this only decides how this process's endpoints are served.
    pub kind: RequestPlaneKind,
    /// NATS connection (`NATS_SERVER`, `NATS_AUTH_*`), used by NATS workers and by clients
    /// that reach NATS instances.
    pub nats: NatsConfig,
    /// Host the worker listener binds and advertises (`DYN_TCP_RPC_HOST`; default: the
    /// primary local IP, listener bound to all interfaces).
    pub rpc_host: Option<String>,
    /// Port of the worker listener (`DYN_TCP_RPC_PORT`; 0 = OS-assigned).
    pub rpc_port: u16,
    /// Host of the client's response-stream server (`DYN_TCP_RESPONSE_STREAM_HOST`).
    pub response_host: Option<String>,
    /// Port of the client's response-stream server (`DYN_TCP_RESPONSE_STREAM_PORT`; 0 = OS).
    pub response_port: u16,
    /// Concurrently running requests per worker process (`DYN_TCP_WORKER_POOL_SIZE`).
    pub worker_pool_size: usize,
    /// Requests waiting for a pool slot, FIFO (`DYN_TCP_WORK_QUEUE_SIZE`).
    pub work_queue_size: usize,
    /// Largest frame accepted (`DYN_TCP_MAX_MESSAGE_SIZE`, bytes).
    pub max_message_size: usize,
    /// How long a client waits for an ack (`DYN_TCP_ACK_TIMEOUT_SECS`).
    pub ack_timeout: Duration,
    /// Codec this worker advertises for its request bodies (`DYN_REQUEST_PLANE_CODEC`).
    pub codec: Codec,
    /// Pipelined requests per client connection before another connection is opened.
    pub max_inflight_per_connection: usize,
    /// Client connections per worker address.
    pub max_connections_per_host: usize,
    /// Stator-to-Stator inline response streams (`DYN_TCP_INLINE_RESPONSES`, default on): a
    /// client asks workers to send the response stream on the request connection (a header
    /// Dynamo workers ignore; they still dial back), and a worker honours such requests. Off:
    /// the client sends no header and the worker always dials back, exactly as Dynamo 1.6.1.
    pub inline_responses: bool,
    /// Unread bytes one inline stream may queue on the client before the request is killed
    /// for a consumer that does not keep up (`DYN_TCP_INLINE_STREAM_BUFFER`, bytes).
    pub inline_stream_buffer: usize,
}

impl Default for RequestPlaneConfig {
    fn default() -> Self {
        Self {
            kind: RequestPlaneKind::Tcp,
            nats: NatsConfig::default(),
            rpc_host: None,
            rpc_port: 0,
            response_host: None,
            response_port: 0,
            worker_pool_size: 10_000,
            work_queue_size: 40_000,
            max_message_size: DEFAULT_MAX_MESSAGE_SIZE,
            ack_timeout: Duration::from_secs(5),
            codec: Codec::Msgpack,
            max_inflight_per_connection: 1024,
            max_connections_per_host: 100,
            inline_responses: true,
            inline_stream_buffer: DEFAULT_INLINE_STREAM_BUFFER,
        }
    }
}

impl RequestPlaneConfig {
    /// Defaults overridden by the `DYN_*` variables of the process environment.
    ///
    /// `DYN_ENGINE_REQUEST_LIMIT=N` sets the pool to N and the queue to
    /// `DYN_DYNAMO_REQUEST_QUEUE_LIMIT` (default 16), as Dynamo does. Unparsable values are
    /// ignored with a warning.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Like [`Self::from_env`] with an explicit variable lookup (for tests and embedding).
    pub fn from_lookup(get: impl Fn(&str) -> Option<String>) -> Self {
        fn parsed<T: std::str::FromStr>(
            get: &dyn Fn(&str) -> Option<String>,
            key: &str,
        ) -> Option<T> {
            let raw = get(key)?;
            let value = raw.trim().parse().ok();
            if value.is_none() {
                tracing::warn!(%key, %raw, "ignoring unparsable setting");
            }
            value
        }
        let get: &dyn Fn(&str) -> Option<String> = &get;
        let mut cfg = Self {
            nats: NatsConfig::from_lookup(get),
            ..Self::default()
        };
        match get("DYN_REQUEST_PLANE").map(|v| v.trim().to_ascii_lowercase()) {
            Some(v) if v == "nats" => cfg.kind = RequestPlaneKind::Nats,
            Some(v) if v == "tcp" || v.is_empty() => cfg.kind = RequestPlaneKind::Tcp,
            Some(raw) => tracing::warn!(%raw, "ignoring unknown DYN_REQUEST_PLANE"),
            None => {}
        }
        let nonempty = |key: &str| get(key).filter(|v| !v.trim().is_empty());
        cfg.rpc_host = nonempty("DYN_TCP_RPC_HOST");
        cfg.response_host = nonempty("DYN_TCP_RESPONSE_STREAM_HOST");
        cfg.rpc_port = parsed(get, "DYN_TCP_RPC_PORT").unwrap_or(cfg.rpc_port);
        cfg.response_port =
            parsed(get, "DYN_TCP_RESPONSE_STREAM_PORT").unwrap_or(cfg.response_port);
        cfg.worker_pool_size =
            parsed(get, "DYN_TCP_WORKER_POOL_SIZE").unwrap_or(cfg.worker_pool_size);
        cfg.work_queue_size = parsed(get, "DYN_TCP_WORK_QUEUE_SIZE").unwrap_or(cfg.work_queue_size);
        if let Some(limit) = parsed::<usize>(get, "DYN_ENGINE_REQUEST_LIMIT") {
            cfg.worker_pool_size = limit;
            cfg.work_queue_size = parsed(get, "DYN_DYNAMO_REQUEST_QUEUE_LIMIT").unwrap_or(16);
        }
        cfg.max_message_size =
            parsed(get, "DYN_TCP_MAX_MESSAGE_SIZE").unwrap_or(cfg.max_message_size);
        if let Some(secs) = parsed::<f64>(get, "DYN_TCP_ACK_TIMEOUT_SECS").filter(|s| *s > 0.0) {
            cfg.ack_timeout = Duration::from_secs_f64(secs);
        }
        cfg.codec = parsed(get, "DYN_REQUEST_PLANE_CODEC").unwrap_or(cfg.codec);
        if let Some(raw) = get("DYN_TCP_INLINE_RESPONSES") {
            match raw.trim().to_ascii_lowercase().as_str() {
                "1" | "true" | "on" | "yes" => cfg.inline_responses = true,
                "0" | "false" | "off" | "no" => cfg.inline_responses = false,
                _ => tracing::warn!(%raw, "ignoring unparsable DYN_TCP_INLINE_RESPONSES"),
            }
        }
        cfg.inline_stream_buffer = parsed::<usize>(get, "DYN_TCP_INLINE_STREAM_BUFFER")
            .filter(|n| *n > 0)
            .unwrap_or(cfg.inline_stream_buffer);
        cfg
    }
}

/// Bind address and advertised host for a listener configured with `host`.
///
/// An explicit host is bound and advertised as is; without one the listener binds all
/// interfaces and advertises the address of the interface that carries the default route
/// (loopback when there is none).
pub(crate) fn bind_and_advertise(host: Option<&str>) -> (String, String) {
    match host {
        Some(host) => (host.to_owned(), host.to_owned()),
        None => ("0.0.0.0".to_owned(), crate::net::advertised_host("0.0.0.0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn env_overrides_defaults() {
        let env = [
            ("DYN_TCP_WORKER_POOL_SIZE", "3"),
            ("DYN_TCP_WORK_QUEUE_SIZE", "0"),
            ("DYN_REQUEST_PLANE_CODEC", "json"),
            ("DYN_TCP_RPC_HOST", "127.0.0.1"),
            ("DYN_TCP_RPC_PORT", "nope"),
            ("DYN_REQUEST_PLANE", "nats"),
            ("NATS_SERVER", "nats://10.0.0.5:4222"),
            ("DYN_TCP_INLINE_RESPONSES", "off"),
            ("DYN_TCP_INLINE_STREAM_BUFFER", "65536"),
        ];
        let cfg = RequestPlaneConfig::from_lookup(|k| {
            env.iter()
                .find(|(key, _)| *key == k)
                .map(|(_, v)| (*v).to_owned())
        });
        assert_eq!(cfg.worker_pool_size, 3);
        assert_eq!(cfg.work_queue_size, 0);
        assert_eq!(cfg.codec, Codec::Json);
        assert_eq!(cfg.rpc_host.as_deref(), Some("127.0.0.1"));
        assert_eq!(cfg.rpc_port, 0);
        assert_eq!(cfg.kind, RequestPlaneKind::Nats);
        assert_eq!(cfg.nats.servers, vec!["nats://10.0.0.5:4222"]);
        assert!(!cfg.inline_responses);
        assert_eq!(cfg.inline_stream_buffer, 65536);
    }

    #[test]
    fn inline_responses_default_on() {
        let cfg = RequestPlaneConfig::from_lookup(|_| None);
        assert!(cfg.inline_responses);
        assert_eq!(cfg.inline_stream_buffer, DEFAULT_INLINE_STREAM_BUFFER);
    }

    #[test]
    fn engine_request_limit_sets_pool_and_queue() {
        let cfg = RequestPlaneConfig::from_lookup(|k| {
            (k == "DYN_ENGINE_REQUEST_LIMIT").then(|| "8".to_owned())
        });
        assert_eq!((cfg.worker_pool_size, cfg.work_queue_size), (8, 16));
    }
}
