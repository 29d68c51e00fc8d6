//! Event plane: typed publish/subscribe between components (KV events, load metrics, …).
//!
//! Wire-compatible with Dynamo 1.6.1's ZMQ direct mode and NATS mode. In ZMQ direct mode
//! each [`EventPublisher`] binds its own PUB socket on an ephemeral port and registers an
//! event-channel record in discovery; an [`EventSubscriber`] watches discovery for the
//! channels of its scope and topic and connects or disconnects SUB sockets as publishers come
//! and go. In NATS mode ([`EventPlane::nats`]) publishers publish on the scope subject
//! ([`event_subject`]) and subscribers subscribe to it. Every event travels as an
//! [`EventEnvelope`] (publisher id, per-publisher sequence, timestamp, topic, payload) in a
//! 5-byte-header frame, so subscribers detect gaps per publisher. For runtimes that share a
//! process (mem discovery), a [`LocalBus`] carries the same envelopes over tokio broadcast
//! channels.
//!
//! ```
//! use std::sync::Arc;
//! use stator_runtime::discovery::{EventScope, MemStore};
//! use stator_runtime::event_plane::{EventPlane, LocalBus};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let plane = EventPlane::local(Arc::new(MemStore::new().client()), LocalBus::new());
//! let scope = EventScope::Namespace { name: "dynamo".into() };
//! let mut subscriber = plane.subscribe(scope.clone(), "kv_metrics").await.unwrap();
//! let publisher = plane.publisher(scope, "kv_metrics").await.unwrap();
//! publisher.publish(&("worker-1", 42_u64)).await.unwrap();
//! let (envelope, event) = subscriber.next_typed::<(String, u64)>().await.unwrap().unwrap();
//! assert_eq!((envelope.sequence, event.1), (0, 42)); // sequences start at 0, as in Dynamo
//! # }
//! ```

mod envelope;
mod local;
mod nats;
mod publisher;
mod sequence;
mod subscriber;
mod zmq;

pub use envelope::{EventEnvelope, FRAME_HEADER_SIZE, FRAME_VERSION, decode_frame, encode_frame};
pub use local::LocalBus;
pub use nats::{
    DEFAULT_NATS_SERVER, ENV_NATS_AUTH_PASSWORD, ENV_NATS_AUTH_TOKEN, ENV_NATS_AUTH_USERNAME,
    ENV_NATS_SERVER, NatsAuth, NatsConfig, decode_message as decode_nats_message, event_subject,
    scope_subject,
};
pub use publisher::EventPublisher;
pub use sequence::{StatsSnapshot, SubscriberStats};
pub use subscriber::EventSubscriber;
pub use zmq::{ENV_EVENT_PLANE_HOST, ZmqConfig};

use std::sync::Arc;

use tokio::sync::{Mutex, mpsc};
use tokio_util::sync::CancellationToken;

use crate::discovery::{
    Discovery, DiscoveryError, DiscoveryQuery, DiscoveryRecord, EventChannelRecord, EventQuery,
    EventScope, EventTransport,
};
use crate::names::InstanceId;
use publisher::Sink;
use sequence::SequenceTracker;
use subscriber::Source;

/// Events a subscriber buffers before its socket tasks wait for the consumer.
const SUBSCRIBER_QUEUE: usize = 4096;

/// A random publisher id below 2^53, as Dynamo 1.6.1 publishers use (exact in JSON numbers).
fn new_publisher_id() -> InstanceId {
    InstanceId(rand::random::<u64>() & ((1 << 53) - 1))
}

/// Errors of the event plane.
#[derive(Debug, thiserror::Error)]
pub enum EventPlaneError {
    /// An event or envelope could not be encoded.
    #[error("cannot encode event: {0}")]
    Encode(String),
    /// An envelope or payload could not be decoded.
    #[error("cannot decode event: {0}")]
    Decode(String),
    /// A frame or message does not follow the wire format.
    #[error("malformed event message: {0}")]
    Malformed(String),
    /// The transport failed (bind, connect).
    #[error("event transport error: {0}")]
    Transport(String),
    /// Registering or watching event channels failed.
    #[error(transparent)]
    Discovery(#[from] DiscoveryError),
    /// The publisher's transport has shut down.
    #[error("event publisher is closed")]
    Closed,
}

#[derive(Clone)]
enum Transport {
    Zmq(ZmqConfig),
    Nats(async_nats::Client),
    Local(LocalBus),
}

/// Creates publishers and subscribers over one transport and one discovery backend.
#[derive(Clone)]
pub struct EventPlane {
    discovery: Arc<dyn Discovery>,
    transport: Transport,
}

impl EventPlane {
    /// ZMQ direct mode; channels are registered in and discovered through `discovery`.
    pub fn zmq(discovery: Arc<dyn Discovery>, config: ZmqConfig) -> Self {
        Self {
            discovery,
            transport: Transport::Zmq(config),
        }
    }

    /// NATS mode over a connected client (see [`NatsConfig::connect`]); channels are
    /// registered in `discovery` as Dynamo does, subscribers use the subject directly.
    pub fn nats(discovery: Arc<dyn Discovery>, client: async_nats::Client) -> Self {
        Self {
            discovery,
            transport: Transport::Nats(client),
        }
    }

    /// In-process mode over `bus` (share one bus between runtimes of one process).
    pub fn local(discovery: Arc<dyn Discovery>, bus: LocalBus) -> Self {
        Self {
            discovery,
            transport: Transport::Local(bus),
        }
    }

    /// A publisher for `topic` in `scope`, registered in discovery (ZMQ and NATS modes).
    pub async fn publisher(
        &self,
        scope: EventScope,
        topic: &str,
    ) -> Result<EventPublisher, EventPlaneError> {
        let publisher_id = new_publisher_id();
        let (sink, registration) = match &self.transport {
            Transport::Local(bus) => (Sink::Local(bus.sender(&scope, topic)), None),
            Transport::Zmq(config) => {
                let sink = zmq::bind_publisher(config).await?;
                let record = DiscoveryRecord::EventChannel(EventChannelRecord {
                    scope: scope.clone(),
                    topic: topic.to_owned(),
                    instance_id: publisher_id,
                    transport: EventTransport::Zmq {
                        endpoint: sink.endpoint.clone(),
                    },
                });
                let id = record.id();
                self.discovery.register(record).await?;
                (Sink::Zmq(sink), Some((self.discovery.clone(), id)))
            }
            Transport::Nats(client) => {
                let record = DiscoveryRecord::EventChannel(EventChannelRecord {
                    scope: scope.clone(),
                    topic: topic.to_owned(),
                    instance_id: publisher_id,
                    transport: EventTransport::Nats {
                        subject_prefix: scope_subject(&scope),
                    },
                });
                let id = record.id();
                self.discovery.register(record).await?;
                let sink = nats::NatsSink {
                    client: client.clone(),
                    subject: event_subject(&scope, topic),
                };
                (Sink::Nats(sink), Some((self.discovery.clone(), id)))
            }
        };
        Ok(EventPublisher {
            scope,
            topic: topic.to_owned(),
            publisher_id,
            sequence: Mutex::new(0),
            sink,
            registration,
        })
    }

    /// A subscriber to `topic` in exactly `scope`, following publishers as they come and go.
    pub async fn subscribe(
        &self,
        scope: EventScope,
        topic: &str,
    ) -> Result<EventSubscriber, EventPlaneError> {
        let stats = Arc::new(SubscriberStats::default());
        let cancel = CancellationToken::new();
        let source = match &self.transport {
            Transport::Local(bus) => Source::Local(bus.sender(&scope, topic).subscribe()),
            Transport::Zmq(_) => {
                let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
                let query = DiscoveryQuery::EventChannels(EventQuery::scoped(scope, topic));
                zmq::follow_channels(
                    self.discovery.clone(),
                    query,
                    tx,
                    stats.clone(),
                    cancel.clone(),
                )
                .await?;
                Source::Channel(rx)
            }
            Transport::Nats(client) => {
                let (tx, rx) = mpsc::channel(SUBSCRIBER_QUEUE);
                nats::follow_subject(
                    client.clone(),
                    event_subject(&scope, topic),
                    tx,
                    stats.clone(),
                    cancel.clone(),
                )
                .await?;
                Source::Channel(rx)
            }
        };
        Ok(EventSubscriber {
            source,
            tracker: SequenceTracker::default(),
            stats,
            cancel,
        })
    }
}
