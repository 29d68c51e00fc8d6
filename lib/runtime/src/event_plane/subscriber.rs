//! The subscribing side: one stream of envelopes from every matching publisher.

use std::sync::Arc;

use serde::de::DeserializeOwned;
use tokio::sync::{broadcast, mpsc};
use tokio_util::sync::CancellationToken;

use super::sequence::SequenceTracker;
use super::{EventEnvelope, EventPlaneError, StatsSnapshot, SubscriberStats};

pub(crate) enum Source {
    Channel(mpsc::Receiver<EventEnvelope>),
    Local(broadcast::Receiver<EventEnvelope>),
}

/// Receives the events of one topic in one scope, from every publisher, in arrival order.
///
/// Duplicates are dropped; gaps are logged and counted in [`EventSubscriber::stats`].
pub struct EventSubscriber {
    pub(crate) source: Source,
    pub(crate) tracker: SequenceTracker,
    pub(crate) stats: Arc<SubscriberStats>,
    pub(crate) cancel: CancellationToken,
}

impl EventSubscriber {
    /// The next event; `None` once the plane behind it has shut down.
    pub async fn next(&mut self) -> Option<EventEnvelope> {
        loop {
            let envelope = match &mut self.source {
                Source::Channel(rx) => rx.recv().await?,
                Source::Local(rx) => match rx.recv().await {
                    Ok(envelope) => envelope,
                    // Skipped events show up as a sequence gap on the next one.
                    Err(broadcast::error::RecvError::Lagged(_)) => continue,
                    Err(broadcast::error::RecvError::Closed) => return None,
                },
            };
            if self.tracker.observe(&envelope, &self.stats) {
                return Some(envelope);
            }
        }
    }

    /// The next event with its payload decoded from msgpack.
    pub async fn next_typed<T: DeserializeOwned>(
        &mut self,
    ) -> Option<Result<(EventEnvelope, T), EventPlaneError>> {
        let envelope = self.next().await?;
        Some(match rmp_serde::from_slice(&envelope.payload) {
            Ok(event) => Ok((envelope, event)),
            Err(e) => {
                self.stats.decode_error();
                Err(EventPlaneError::Decode(e.to_string()))
            }
        })
    }

    /// Current counters (received, gaps, missed, out of order, decode errors).
    pub fn stats(&self) -> StatsSnapshot {
        self.stats.snapshot()
    }

    /// The live counters, e.g. for a metrics exporter.
    pub fn stats_handle(&self) -> Arc<SubscriberStats> {
        self.stats.clone()
    }
}

impl Drop for EventSubscriber {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}
