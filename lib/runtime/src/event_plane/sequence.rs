//! Per-publisher sequence tracking: gap and duplicate detection on the subscriber side.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};

use super::EventEnvelope;
use crate::names::InstanceId;

/// Live counters of one subscriber; cheap to share with a metrics exporter.
#[derive(Debug, Default)]
pub struct SubscriberStats {
    received: AtomicU64,
    gaps: AtomicU64,
    missed: AtomicU64,
    out_of_order: AtomicU64,
    decode_errors: AtomicU64,
}

/// A point-in-time copy of [`SubscriberStats`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StatsSnapshot {
    /// Events delivered to the consumer.
    pub received: u64,
    /// Number of sequence gaps seen (one per jump).
    pub gaps: u64,
    /// Events known to be missing across all gaps.
    pub missed: u64,
    /// Duplicate or reordered events that were dropped.
    pub out_of_order: u64,
    /// Messages that could not be decoded.
    pub decode_errors: u64,
}

impl SubscriberStats {
    /// The current counter values.
    pub fn snapshot(&self) -> StatsSnapshot {
        StatsSnapshot {
            received: self.received.load(Ordering::Relaxed),
            gaps: self.gaps.load(Ordering::Relaxed),
            missed: self.missed.load(Ordering::Relaxed),
            out_of_order: self.out_of_order.load(Ordering::Relaxed),
            decode_errors: self.decode_errors.load(Ordering::Relaxed),
        }
    }

    pub(crate) fn decode_error(&self) {
        self.decode_errors.fetch_add(1, Ordering::Relaxed);
    }
}

/// Remembers the last sequence of every publisher.
#[derive(Debug, Default)]
pub(crate) struct SequenceTracker {
    last: HashMap<InstanceId, u64>,
}

impl SequenceTracker {
    /// Records `envelope`; returns whether it should be delivered (false for duplicates).
    ///
    /// The first event of a publisher sets its baseline: a subscriber that joins late has
    /// not lost anything it could have seen.
    pub(crate) fn observe(&mut self, envelope: &EventEnvelope, stats: &SubscriberStats) -> bool {
        let seq = envelope.sequence;
        match self.last.insert(envelope.publisher_id, seq) {
            Some(last) if seq <= last => {
                self.last.insert(envelope.publisher_id, last);
                stats.out_of_order.fetch_add(1, Ordering::Relaxed);
                tracing::debug!(publisher = %envelope.publisher_id, seq, last, "event plane: dropping duplicate or reordered event");
                return false;
            }
            Some(last) if seq > last + 1 => {
                let missed = seq - last - 1;
                stats.gaps.fetch_add(1, Ordering::Relaxed);
                stats.missed.fetch_add(missed, Ordering::Relaxed);
                tracing::warn!(
                    publisher = %envelope.publisher_id,
                    topic = %envelope.topic,
                    last,
                    seq,
                    missed,
                    "event plane: sequence gap"
                );
            }
            _ => {}
        }
        stats.received.fetch_add(1, Ordering::Relaxed);
        true
    }
}

#[cfg(test)]
mod tests {
    use bytes::Bytes;

    use super::*;

    fn env(publisher: u64, sequence: u64) -> EventEnvelope {
        EventEnvelope {
            publisher_id: InstanceId(publisher),
            sequence,
            published_at: 0,
            topic: "t".into(),
            payload: Bytes::new(),
        }
    }

    #[test]
    fn detects_gaps_and_duplicates_per_publisher() {
        let stats = SubscriberStats::default();
        let mut t = SequenceTracker::default();
        let delivered: Vec<bool> = [
            (1, 5),
            (1, 6),
            (2, 1),
            (1, 9),
            (1, 9),
            (1, 8),
            (2, 2),
            (1, 10),
        ]
        .into_iter()
        .map(|(p, s)| t.observe(&env(p, s), &stats))
        .collect();
        assert_eq!(
            delivered,
            [true, true, true, true, false, false, true, true]
        );
        let snap = stats.snapshot();
        assert_eq!(snap.received, 6);
        assert_eq!(snap.gaps, 1);
        assert_eq!(snap.missed, 2);
        assert_eq!(snap.out_of_order, 2);
    }
}
