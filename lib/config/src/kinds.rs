//! The small enumerations and value types runtime settings are made of.

use std::fmt;
use std::str::FromStr;

/// Where discovery records live (`--discovery-backend`, `DYN_DISCOVERY_BACKEND`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum DiscoveryBackend {
    /// One file per key under `DYN_FILE_KV` (Stator's default: works with no service).
    #[default]
    File,
    /// In-process only (tests, single-process deployments).
    Mem,
    /// etcd with leases (Dynamo's default).
    Etcd,
    /// Kubernetes custom resources plus pod readiness.
    Kubernetes,
}

/// How requests reach workers (`--request-plane`, `DYN_REQUEST_PLANE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum RequestPlaneKind {
    /// Direct TCP with a call-home response stream.
    #[default]
    Tcp,
    /// NATS request-reply.
    Nats,
}

/// How events are published (`--event-plane`, `DYN_EVENT_PLANE`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum EventPlaneKind {
    /// ZMQ PUB/SUB, publishers found through discovery.
    #[default]
    Zmq,
    /// NATS core pub/sub.
    Nats,
}

/// Request payload encoding a worker advertises (`DYN_REQUEST_PLANE_CODEC`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, clap::ValueEnum)]
pub enum PayloadCodec {
    /// MessagePack with field names.
    #[default]
    Msgpack,
    /// JSON.
    Json,
}

/// A port that may be disabled: `-1` (or any negative number, or empty) means off.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct OptionalPort(pub Option<u16>);

/// Why a port setting could not be parsed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid port {0:?}: expected 0-65535, or -1 to disable")]
pub struct InvalidPort(String);

impl FromStr for OptionalPort {
    type Err = InvalidPort;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = s.trim();
        if t.is_empty() {
            return Ok(Self(None));
        }
        match t.parse::<i64>() {
            Ok(n) if n < 0 => Ok(Self(None)),
            Ok(n) => u16::try_from(n)
                .map(|p| Self(Some(p)))
                .map_err(|_| InvalidPort(s.to_owned())),
            Err(_) => Err(InvalidPort(s.to_owned())),
        }
    }
}

impl fmt::Display for OptionalPort {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.0 {
            Some(port) => write!(f, "{port}"),
            None => f.write_str("-1"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn optional_port_parsing() {
        assert_eq!("9090".parse(), Ok(OptionalPort(Some(9090))));
        assert_eq!("-1".parse(), Ok(OptionalPort(None)));
        assert_eq!("".parse(), Ok(OptionalPort(None)));
        assert!("70000".parse::<OptionalPort>().is_err());
        assert!("http".parse::<OptionalPort>().is_err());
        assert_eq!(OptionalPort(None).to_string(), "-1");
    }
}
