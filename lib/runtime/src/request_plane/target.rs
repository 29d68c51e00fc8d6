//! Where a request goes: a worker's TCP listener path or its NATS instance subject.

use crate::discovery::TransportType;
use crate::error::StatorError;
use crate::names::{EndpointId, InstanceId};
use crate::wire::Codec;

/// Where one endpoint instance listens: `host:port` plus its instance path and codec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpTarget {
    /// `host:port` of the worker's shared listener.
    pub address: String,
    /// Instance path `"{id:x}/ns/comp/ep"` the worker routes by.
    pub path: String,
    /// Codec the instance advertised for request bodies.
    pub codec: Codec,
}

impl TcpTarget {
    /// Parses an instance's `transport.tcp` value, `"host:port/{id:x}/ns/comp/ep"`.
    pub fn parse(transport: &str, codec: Codec) -> Result<Self, StatorError> {
        let (address, path) = transport.split_once('/').ok_or_else(|| {
            StatorError::invalid_request(format!("malformed tcp transport {transport:?}"))
        })?;
        if address.is_empty() || path.is_empty() {
            return Err(StatorError::invalid_request(format!(
                "malformed tcp transport {transport:?}"
            )));
        }
        Ok(Self {
            address: address.to_owned(),
            path: path.to_owned(),
            codec,
        })
    }
}

/// An endpoint instance on the NATS request plane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct NatsTarget {
    /// Instance subject `"{ns}_{comp}.{ep}-{id:x}"`.
    pub subject: String,
    /// Codec the instance advertised for request bodies.
    pub codec: Codec,
}

/// A routable instance on either request plane.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RequestTarget {
    /// TCP request plane (`{"tcp": …}` transport).
    Tcp(TcpTarget),
    /// NATS request plane (`{"nats_tcp": …}` transport).
    Nats(NatsTarget),
}

impl RequestTarget {
    /// The target an instance's discovery transport names.
    pub fn from_transport(transport: &TransportType, codec: Codec) -> Result<Self, StatorError> {
        match transport {
            TransportType::Tcp(value) => TcpTarget::parse(value, codec).map(Self::Tcp),
            TransportType::NatsTcp(subject) if !subject.is_empty() => Ok(Self::Nats(NatsTarget {
                subject: subject.clone(),
                codec,
            })),
            TransportType::NatsTcp(_) => Err(StatorError::invalid_request("empty NATS subject")),
        }
    }

    /// The codec request bodies are encoded with.
    pub fn codec(&self) -> Codec {
        match self {
            Self::Tcp(t) => t.codec,
            Self::Nats(t) => t.codec,
        }
    }

    /// The worker-side routing key: TCP path or NATS subject.
    pub fn route(&self) -> &str {
        match self {
            Self::Tcp(t) => &t.path,
            Self::Nats(t) => &t.subject,
        }
    }
}

impl From<TcpTarget> for RequestTarget {
    fn from(target: TcpTarget) -> Self {
        Self::Tcp(target)
    }
}

impl From<NatsTarget> for RequestTarget {
    fn from(target: NatsTarget) -> Self {
        Self::Nats(target)
    }
}

/// The NATS instance subject of `endpoint` served by `instance`: `"{ns}_{comp}.{ep}-{id:x}"`.
///
/// Dynamo names the component's NATS service `slugify("{ns}_{comp}")`; validated names
/// (`[a-z0-9_-]`) are already slugs, so the names go in unchanged.
pub fn instance_subject(endpoint: &EndpointId, instance: InstanceId) -> String {
    format!(
        "{}_{}.{}-{instance:x}",
        endpoint.namespace, endpoint.component, endpoint.name
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subject_layout_matches_dynamo() {
        let id = EndpointId::new("dynamo", "backend", "generate").expect("valid");
        assert_eq!(
            instance_subject(&id, InstanceId(0x694d_9a6b_7c3e)),
            "dynamo_backend.generate-694d9a6b7c3e"
        );
    }

    #[test]
    fn targets_follow_the_transport() {
        let nats = TransportType::NatsTcp("ns_c.e-1".into());
        let target = RequestTarget::from_transport(&nats, Codec::Json).expect("nats target");
        assert_eq!(target.route(), "ns_c.e-1");
        let tcp = TransportType::Tcp("127.0.0.1:9/1/ns/c/e".into());
        let target = RequestTarget::from_transport(&tcp, Codec::Msgpack).expect("tcp target");
        assert_eq!(
            (target.route(), target.codec()),
            ("1/ns/c/e", Codec::Msgpack)
        );
        assert!(
            RequestTarget::from_transport(&TransportType::NatsTcp(String::new()), Codec::Json)
                .is_err()
        );
    }
}
