//! Discovery records in Dynamo 1.6.1's JSON shape (`DiscoveryInstance`, serde tag `"type"`).

use serde::{Deserialize, Serialize};

use super::key::{Bucket, RecordId};
use crate::names::{EndpointId, InstanceId};

/// How a request reaches an endpoint instance.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TransportType {
    /// TCP request plane: `"ip:port/{instance_id:x}/ns/comp/ep"`.
    Tcp(String),
    /// NATS request plane: the instance subject `"{ns}_{comp}.{ep}-{instance_id:x}"`.
    NatsTcp(String),
}

/// The device an endpoint instance executes on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DeviceType {
    /// A CUDA GPU.
    Cuda,
    /// CPU only.
    Cpu,
}

impl DeviceType {
    /// Dynamo's rule: `cpu` when `CUDA_VISIBLE_DEVICES` is empty/`-1`/`none`/`void` or
    /// `NVIDIA_VISIBLE_DEVICES` is `none`/`void`, else `cuda`.
    pub fn detect() -> Self {
        let cuda = std::env::var("CUDA_VISIBLE_DEVICES").ok();
        let nvidia = std::env::var("NVIDIA_VISIBLE_DEVICES").ok();
        Self::from_env_values(cuda.as_deref(), nvidia.as_deref())
    }

    /// [`DeviceType::detect`] on given variable values.
    pub fn from_env_values(cuda_visible: Option<&str>, nvidia_visible: Option<&str>) -> Self {
        let hidden = |v: &str| matches!(v.trim(), "none" | "void");
        if cuda_visible.is_some_and(|v| v.trim().is_empty() || v.trim() == "-1" || hidden(v))
            || nvidia_visible.is_some_and(hidden)
        {
            Self::Cpu
        } else {
            Self::Cuda
        }
    }
}

/// The payload codec an instance accepts on the request plane (`request_plane_codec`): the
/// request plane's own [`Codec`](crate::wire::Codec), named for the record field.
pub type RequestPlaneCodec = crate::wire::Codec;

/// One live registration of an endpoint by one process (`"type": "Endpoint"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Instance {
    /// Component name.
    pub component: String,
    /// Endpoint name.
    pub endpoint: String,
    /// Namespace name.
    pub namespace: String,
    /// The serving process's discovery instance id.
    pub instance_id: InstanceId,
    /// Where requests go.
    pub transport: TransportType,
    /// Execution device, when advertised.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub device_type: Option<DeviceType>,
    /// Request payload codec; absent means JSON.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub request_plane_codec: Option<RequestPlaneCodec>,
}

impl Instance {
    /// The endpoint this instance serves.
    pub fn endpoint_id(&self) -> EndpointId {
        EndpointId {
            namespace: self.namespace.clone(),
            component: self.component.clone(),
            name: self.endpoint.clone(),
        }
    }

    /// The codec to encode requests with (JSON when unadvertised).
    pub fn codec(&self) -> RequestPlaneCodec {
        self.request_plane_codec.unwrap_or_default()
    }
}

/// A model deployment card published for an endpoint instance (`"type": "Model"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ModelRecord {
    /// Namespace name.
    pub namespace: String,
    /// Component name.
    pub component: String,
    /// Endpoint name.
    pub endpoint: String,
    /// The publishing process's discovery instance id.
    pub instance_id: InstanceId,
    /// The card as JSON, so the runtime stays independent of the LLM types.
    pub card_json: serde_json::Value,
    /// Extra key segment after the instance id (LoRA adapters).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub model_suffix: Option<String>,
}

impl ModelRecord {
    /// The endpoint this card is served on.
    pub fn endpoint_id(&self) -> EndpointId {
        EndpointId {
            namespace: self.namespace.clone(),
            component: self.component.clone(),
            name: self.endpoint.clone(),
        }
    }
}

/// The ownership domain of an event channel; matched exactly, never by prefix.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum EventScope {
    /// A whole namespace.
    Namespace {
        /// Namespace name.
        name: String,
    },
    /// One component.
    Component {
        /// Namespace name.
        namespace: String,
        /// Component name.
        component: String,
    },
    /// One endpoint (the usual scope of KV events and load metrics).
    Endpoint {
        /// The endpoint.
        endpoint: EndpointId,
    },
}

/// How subscribers reach an event publisher.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(tag = "kind", content = "config")]
pub enum EventTransport {
    /// NATS core pub/sub under a subject prefix.
    Nats {
        /// Subject prefix, e.g. `namespace.dynamo.component.backend`.
        subject_prefix: String,
    },
    /// ZMQ direct mode: the publisher's PUB socket.
    Zmq {
        /// `tcp://host:port`.
        endpoint: String,
    },
    /// ZMQ broker mode endpoints.
    ZmqBroker {
        /// XSUB endpoints publishers connect to.
        xsub_endpoints: Vec<String>,
        /// XPUB endpoints subscribers connect to.
        xpub_endpoints: Vec<String>,
    },
}

/// An event publisher's channel (`"type": "EventChannel"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventChannelRecord {
    /// Scope of the channel.
    pub scope: EventScope,
    /// Topic, e.g. `kv-events`.
    pub topic: String,
    /// The publisher's id (one per publisher, not per process).
    pub instance_id: InstanceId,
    /// Where to subscribe.
    pub transport: EventTransport,
}

/// A semantic event source with domain metadata (`"type": "EventSource"`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventSourceRecord {
    /// Scope of the source.
    pub scope: EventScope,
    /// Topic.
    pub topic: String,
    /// The publisher's id.
    pub publisher_id: InstanceId,
    /// Domain-specific descriptor (e.g. KV-event recovery endpoint).
    pub metadata: serde_json::Value,
}

/// Anything stored in discovery; the JSON value of one key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum DiscoveryRecord {
    /// An endpoint instance (bucket `v1/instances`).
    Endpoint(Instance),
    /// A model card (bucket `v1/mdc`).
    Model(ModelRecord),
    /// An event channel (bucket `v1/event_channels`).
    EventChannel(EventChannelRecord),
    /// An event source (bucket `v1/event_sources`).
    EventSource(EventSourceRecord),
}

impl DiscoveryRecord {
    /// The identity of this record, from which its bucket and key derive.
    pub fn id(&self) -> RecordId {
        match self {
            Self::Endpoint(i) => RecordId::Endpoint {
                endpoint: i.endpoint_id(),
                instance_id: i.instance_id,
            },
            Self::Model(m) => RecordId::Model {
                endpoint: m.endpoint_id(),
                instance_id: m.instance_id,
                model_suffix: m.model_suffix.clone(),
            },
            Self::EventChannel(c) => RecordId::EventChannel {
                scope: c.scope.clone(),
                topic: c.topic.clone(),
                instance_id: c.instance_id,
            },
            Self::EventSource(s) => RecordId::EventSource {
                scope: s.scope.clone(),
                topic: s.topic.clone(),
                publisher_id: s.publisher_id,
            },
        }
    }

    /// The instance (or publisher) id carried by the record.
    pub fn instance_id(&self) -> InstanceId {
        match self {
            Self::Endpoint(i) => i.instance_id,
            Self::Model(m) => m.instance_id,
            Self::EventChannel(c) => c.instance_id,
            Self::EventSource(s) => s.publisher_id,
        }
    }

    /// The bucket the record is stored in.
    pub fn bucket(&self) -> Bucket {
        match self {
            Self::Endpoint(_) => Bucket::Instances,
            Self::Model(_) => Bucket::Mdc,
            Self::EventChannel(_) => Bucket::EventChannels,
            Self::EventSource(_) => Bucket::EventSources,
        }
    }

    /// The key within the bucket.
    pub fn key(&self) -> String {
        self.id().key()
    }
}
