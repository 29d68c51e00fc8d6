//! In-process event bus for runtimes that share one process (mem discovery).

use std::collections::HashMap;
use std::sync::Arc;

use parking_lot::Mutex;
use tokio::sync::broadcast;

use super::EventEnvelope;
use crate::discovery::EventScope;

/// Events buffered per channel before slow subscribers start missing them.
const CHANNEL_CAPACITY: usize = 16_384;

type Channels = HashMap<(EventScope, String), broadcast::Sender<EventEnvelope>>;

/// A process-local bus: one broadcast channel per (scope, topic). Clone to share.
#[derive(Clone, Default)]
pub struct LocalBus {
    channels: Arc<Mutex<Channels>>,
}

impl LocalBus {
    /// An empty bus.
    pub fn new() -> Self {
        Self::default()
    }

    /// The sender of a channel, created on first use.
    pub(crate) fn sender(
        &self,
        scope: &EventScope,
        topic: &str,
    ) -> broadcast::Sender<EventEnvelope> {
        self.channels
            .lock()
            .entry((scope.clone(), topic.to_owned()))
            .or_insert_with(|| broadcast::channel(CHANNEL_CAPACITY).0)
            .clone()
    }
}
