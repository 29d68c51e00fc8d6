//! Buckets and keys: where each record lives in a key-value discovery store (§1.4 layout).

use std::fmt::Write as _;

use super::DiscoveryError;
use super::records::EventScope;
use crate::names::{EndpointId, InstanceId};

/// A top-level key space of the discovery store.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Bucket {
    /// `v1/instances`: endpoint instances.
    Instances,
    /// `v1/mdc`: model deployment cards.
    Mdc,
    /// `v1/event_channels`: event publishers.
    EventChannels,
    /// `v1/event_sources`: semantic event sources.
    EventSources,
}

impl Bucket {
    /// All buckets.
    pub const ALL: [Self; 4] = [
        Self::Instances,
        Self::Mdc,
        Self::EventChannels,
        Self::EventSources,
    ];

    /// The bucket path, e.g. `v1/instances`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::Instances => "v1/instances",
            Self::Mdc => "v1/mdc",
            Self::EventChannels => "v1/event_channels",
            Self::EventSources => "v1/event_sources",
        }
    }
}

/// The identity of a record: enough to compute its key and to report its removal.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum RecordId {
    /// An endpoint instance: key `{ns}/{comp}/{ep}/{id:x}`.
    Endpoint {
        /// The endpoint.
        endpoint: EndpointId,
        /// The serving process.
        instance_id: InstanceId,
    },
    /// A model card: key `{ns}/{comp}/{ep}/{id:x}[/{suffix}]`.
    Model {
        /// The endpoint.
        endpoint: EndpointId,
        /// The publishing process.
        instance_id: InstanceId,
        /// LoRA suffix, if any.
        model_suffix: Option<String>,
    },
    /// An event channel: key `namespace/{ns}[/component/{c}[/endpoint/{e}]]/topic/{t}/{id:x}`.
    EventChannel {
        /// Scope.
        scope: EventScope,
        /// Topic.
        topic: String,
        /// Publisher id.
        instance_id: InstanceId,
    },
    /// An event source: same key shape as an event channel.
    EventSource {
        /// Scope.
        scope: EventScope,
        /// Topic.
        topic: String,
        /// Publisher id.
        publisher_id: InstanceId,
    },
}

impl RecordId {
    /// The bucket holding the record.
    pub fn bucket(&self) -> Bucket {
        match self {
            Self::Endpoint { .. } => Bucket::Instances,
            Self::Model { .. } => Bucket::Mdc,
            Self::EventChannel { .. } => Bucket::EventChannels,
            Self::EventSource { .. } => Bucket::EventSources,
        }
    }

    /// The instance (or publisher) id.
    pub fn instance_id(&self) -> InstanceId {
        match self {
            Self::Endpoint { instance_id, .. }
            | Self::Model { instance_id, .. }
            | Self::EventChannel { instance_id, .. } => *instance_id,
            Self::EventSource { publisher_id, .. } => *publisher_id,
        }
    }

    /// The key relative to the bucket.
    pub fn key(&self) -> String {
        match self {
            Self::Endpoint {
                endpoint,
                instance_id,
            } => format!("{endpoint}/{instance_id:x}"),
            Self::Model {
                endpoint,
                instance_id,
                model_suffix,
            } => match model_suffix {
                Some(suffix) => format!("{endpoint}/{instance_id:x}/{suffix}"),
                None => format!("{endpoint}/{instance_id:x}"),
            },
            Self::EventChannel {
                scope,
                topic,
                instance_id: id,
            }
            | Self::EventSource {
                scope,
                topic,
                publisher_id: id,
            } => format!(
                "{}/topic/{}/{id:x}",
                scope_path(scope),
                encode_event_segment(topic)
            ),
        }
    }

    /// Parses a key found in `bucket` back into an identity.
    pub fn parse(bucket: Bucket, key: &str) -> Result<Self, DiscoveryError> {
        let invalid = || DiscoveryError::InvalidKey {
            bucket: bucket.as_str(),
            key: key.to_owned(),
        };
        match bucket {
            Bucket::Instances | Bucket::Mdc => {
                let parts: Vec<&str> = key.splitn(5, '/').collect();
                if parts.len() < 4 || parts[..4].iter().any(|p| p.is_empty()) {
                    return Err(invalid());
                }
                let endpoint = EndpointId {
                    namespace: parts[0].to_owned(),
                    component: parts[1].to_owned(),
                    name: parts[2].to_owned(),
                };
                let instance_id = InstanceId::from_hex(parts[3]).map_err(|_| invalid())?;
                match (bucket, parts.get(4)) {
                    (Bucket::Instances, None) => Ok(Self::Endpoint {
                        endpoint,
                        instance_id,
                    }),
                    (Bucket::Mdc, suffix) => Ok(Self::Model {
                        endpoint,
                        instance_id,
                        model_suffix: suffix.map(|s| (*s).to_owned()),
                    }),
                    _ => Err(invalid()),
                }
            }
            Bucket::EventChannels | Bucket::EventSources => {
                let (scope, topic, id) = parse_event_key(key).ok_or_else(invalid)?;
                Ok(if bucket == Bucket::EventChannels {
                    Self::EventChannel {
                        scope,
                        topic,
                        instance_id: id,
                    }
                } else {
                    Self::EventSource {
                        scope,
                        topic,
                        publisher_id: id,
                    }
                })
            }
        }
    }
}

/// The key path of a scope: `namespace/{ns}[/component/{c}[/endpoint/{e}]]`.
pub fn scope_path(scope: &EventScope) -> String {
    match scope {
        EventScope::Namespace { name } => format!("namespace/{}", encode_event_segment(name)),
        EventScope::Component {
            namespace,
            component,
        } => format!(
            "namespace/{}/component/{}",
            encode_event_segment(namespace),
            encode_event_segment(component)
        ),
        EventScope::Endpoint { endpoint } => format!(
            "namespace/{}/component/{}/endpoint/{}",
            encode_event_segment(&endpoint.namespace),
            encode_event_segment(&endpoint.component),
            encode_event_segment(&endpoint.name)
        ),
    }
}

fn parse_event_key(key: &str) -> Option<(EventScope, String, InstanceId)> {
    let parts: Vec<&str> = key.split('/').collect();
    let d = |s: &str| decode_event_segment(s);
    let (scope, rest) = match parts.as_slice() {
        ["namespace", ns, "component", c, "endpoint", e, rest @ ..] => (
            EventScope::Endpoint {
                endpoint: EndpointId {
                    namespace: d(ns)?,
                    component: d(c)?,
                    name: d(e)?,
                },
            },
            rest,
        ),
        ["namespace", ns, "component", c, rest @ ..] => (
            EventScope::Component {
                namespace: d(ns)?,
                component: d(c)?,
            },
            rest,
        ),
        ["namespace", ns, rest @ ..] => (EventScope::Namespace { name: d(ns)? }, rest),
        _ => return None,
    };
    match rest {
        ["topic", topic, id] => Some((scope, d(topic)?, InstanceId::from_hex(id).ok()?)),
        _ => None,
    }
}

/// Percent-encodes an event key segment: every byte outside `[A-Za-z0-9_-]` becomes `%XX`.
pub fn encode_event_segment(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for byte in value.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            out.push(char::from(byte));
        } else {
            write!(out, "%{byte:02X}").expect("writing to a String cannot fail");
        }
    }
    out
}

/// Reverses [`encode_event_segment`]; `None` for malformed escapes or non-UTF-8 results.
pub fn decode_event_segment(value: &str) -> Option<String> {
    percent_decode_strict(value)
}

/// Decodes `%XX` escapes, rejecting truncated or non-hex escapes and invalid UTF-8.
pub(crate) fn percent_decode_strict(value: &str) -> Option<String> {
    let bytes = value.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = bytes.get(i + 1..i + 3)?;
            let hex = std::str::from_utf8(hex).ok()?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn endpoint_and_model_keys() {
        let endpoint = EndpointId::new("dynamo", "backend", "generate").unwrap();
        let id = RecordId::Endpoint {
            endpoint: endpoint.clone(),
            instance_id: InstanceId(0x694d),
        };
        assert_eq!(id.key(), "dynamo/backend/generate/694d");
        assert_eq!(RecordId::parse(Bucket::Instances, &id.key()).unwrap(), id);
        let model = RecordId::Model {
            endpoint,
            instance_id: InstanceId(0xf03b),
            model_suffix: Some("my-lora".into()),
        };
        assert_eq!(model.key(), "dynamo/backend/generate/f03b/my-lora");
        assert_eq!(RecordId::parse(Bucket::Mdc, &model.key()).unwrap(), model);
        assert!(RecordId::parse(Bucket::Instances, "a/b/c/zz").is_err());
        assert!(RecordId::parse(Bucket::Instances, "a/b/c/1/extra").is_err());
        assert!(RecordId::parse(Bucket::Instances, "a/b/c").is_err());
    }

    #[test]
    fn event_channel_keys() {
        let scope = EventScope::Endpoint {
            endpoint: EndpointId::new("dynamo", "backend", "generate").unwrap(),
        };
        let id = RecordId::EventChannel {
            scope,
            topic: "kv-events".into(),
            instance_id: InstanceId(0xab),
        };
        assert_eq!(
            id.key(),
            "namespace/dynamo/component/backend/endpoint/generate/topic/kv-events/ab"
        );
        assert_eq!(
            RecordId::parse(Bucket::EventChannels, &id.key()).unwrap(),
            id
        );
        let ns = RecordId::EventSource {
            scope: EventScope::Namespace { name: "a.b".into() },
            topic: "t/x".into(),
            publisher_id: InstanceId(1),
        };
        assert_eq!(ns.key(), "namespace/a%2Eb/topic/t%2Fx/1");
        assert_eq!(
            RecordId::parse(Bucket::EventSources, &ns.key()).unwrap(),
            ns
        );
        assert!(RecordId::parse(Bucket::EventChannels, "namespace/a/topic/t").is_err());
        assert!(RecordId::parse(Bucket::EventChannels, "namespace/%G1/topic/t/1").is_err());
    }
}
