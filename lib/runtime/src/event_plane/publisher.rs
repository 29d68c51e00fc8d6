//! The publishing side: sequence numbering, envelope building, hand-off to the transport.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use serde::Serialize;
use tokio::sync::{Mutex, broadcast};

use super::nats::NatsSink;
use super::zmq::ZmqSink;
use super::{EventEnvelope, EventPlaneError};
use crate::discovery::{Discovery, EventScope, RecordId};
use crate::names::InstanceId;

pub(crate) enum Sink {
    Zmq(ZmqSink),
    Nats(NatsSink),
    Local(broadcast::Sender<EventEnvelope>),
}

/// Publishes events of one topic in one scope; sequence numbers start at 1.
pub struct EventPublisher {
    pub(crate) scope: EventScope,
    pub(crate) topic: String,
    pub(crate) publisher_id: InstanceId,
    /// Sequence number of the next message; held across the hand-off so events leave in
    /// sequence order.
    pub(crate) sequence: Mutex<u64>,
    pub(crate) sink: Sink,
    pub(crate) registration: Option<(Arc<dyn Discovery>, RecordId)>,
}

impl EventPublisher {
    /// This publisher's id (the `instance_id` of its event-channel record).
    pub fn publisher_id(&self) -> InstanceId {
        self.publisher_id
    }

    /// The topic.
    pub fn topic(&self) -> &str {
        &self.topic
    }

    /// The scope.
    pub fn scope(&self) -> &EventScope {
        &self.scope
    }

    /// The advertised ZMQ endpoint, for ZMQ publishers.
    pub fn endpoint(&self) -> Option<&str> {
        match &self.sink {
            Sink::Zmq(sink) => Some(&sink.endpoint),
            Sink::Nats(_) | Sink::Local(_) => None,
        }
    }

    /// The NATS subject, for NATS publishers.
    pub fn subject(&self) -> Option<&str> {
        match &self.sink {
            Sink::Nats(sink) => Some(&sink.subject),
            Sink::Zmq(_) | Sink::Local(_) => None,
        }
    }

    /// Publishes `event` encoded as msgpack with field names; returns its sequence number.
    pub async fn publish<T: Serialize + ?Sized>(&self, event: &T) -> Result<u64, EventPlaneError> {
        let payload =
            rmp_serde::to_vec_named(event).map_err(|e| EventPlaneError::Encode(e.to_string()))?;
        self.publish_payload(Bytes::from(payload)).await
    }

    /// Publishes an already encoded payload; returns its sequence number (the first message
    /// of a publisher is 0, as in Dynamo 1.6.1).
    pub async fn publish_payload(&self, payload: Bytes) -> Result<u64, EventPlaneError> {
        let mut next = self.sequence.lock().await;
        let sequence = *next;
        let envelope = EventEnvelope {
            publisher_id: self.publisher_id,
            sequence,
            published_at: now_ms(),
            topic: self.topic.clone(),
            payload,
        };
        match &self.sink {
            Sink::Zmq(sink) => {
                let parts = envelope.to_multipart()?;
                sink.tx
                    .send(parts)
                    .await
                    .map_err(|_| EventPlaneError::Closed)?;
            }
            Sink::Nats(sink) => sink.send(&envelope).await?,
            // No subscriber is not an error: events are fire-and-forget.
            Sink::Local(tx) => drop(tx.send(envelope)),
        }
        *next += 1;
        Ok(sequence)
    }

    /// Removes the event-channel record and stops publishing.
    pub async fn shutdown(mut self) -> Result<(), EventPlaneError> {
        if let Some((discovery, id)) = self.registration.take() {
            discovery.unregister(&id).await?;
        }
        Ok(())
    }
}

impl Drop for EventPublisher {
    fn drop(&mut self) {
        let Some((discovery, id)) = self.registration.take() else {
            return;
        };
        if let Ok(handle) = tokio::runtime::Handle::try_current() {
            handle.spawn(async move {
                if let Err(e) = discovery.unregister(&id).await {
                    tracing::debug!(error = %e, "event plane: cannot unregister dropped publisher");
                }
            });
        }
    }
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as u64)
}
