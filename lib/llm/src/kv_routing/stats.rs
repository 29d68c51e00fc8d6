//! Counters of one KV router and their point-in-time snapshot.

use std::fmt::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};

/// Live counters, shared by the router's tasks and callers.
#[derive(Debug, Default)]
pub(crate) struct Counters {
    pub events_applied: AtomicU64,
    pub events_dropped: AtomicU64,
    pub event_id_gaps: AtomicU64,
    pub event_ids_missed: AtomicU64,
    pub event_ids_stale: AtomicU64,
    pub metrics_received: AtomicU64,
    pub decode_errors: AtomicU64,
    pub decisions: AtomicU64,
    pub prompt_blocks: AtomicU64,
    pub overlap_blocks: AtomicU64,
    pub rejected_busy: AtomicU64,
    pub queued: AtomicU64,
    pub workers_removed: AtomicU64,
}

impl Counters {
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }
}

fn get(counter: &AtomicU64) -> u64 {
    counter.load(Ordering::Relaxed)
}

/// A snapshot of a [`KvRouter`](super::KvRouter)'s activity.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KvRouterStats {
    /// KV events handed to the indexer.
    pub events_applied: u64,
    /// KV events dropped because their worker had already left.
    pub events_dropped: u64,
    /// KV events the indexer rejected (unknown parent, unknown removed block).
    pub events_rejected: u64,
    /// Jumps in a worker's KV event ids (per worker and DP rank).
    pub event_id_gaps: u64,
    /// KV events known missing across those jumps.
    pub event_ids_missed: u64,
    /// KV events whose id was not above the last one seen from their worker.
    pub event_ids_stale: u64,
    /// Event-plane sequence gaps on `kv-events` (per publisher).
    pub sequence_gaps: u64,
    /// Event-plane messages known missing across those gaps.
    pub sequence_missed: u64,
    /// Load reports received on `kv_metrics`.
    pub metrics_received: u64,
    /// Payloads that did not decode (both topics).
    pub decode_errors: u64,
    /// Routing decisions made.
    pub decisions: u64,
    /// Complete prompt blocks of the routed requests.
    pub prompt_blocks: u64,
    /// Of those, blocks the chosen worker was believed to cache.
    pub overlap_blocks: u64,
    /// Requests refused because every worker was busy (HTTP 529).
    pub rejected_busy: u64,
    /// Requests that had to wait in the queue.
    pub queued: u64,
    /// Requests waiting now.
    pub queue_depth: u64,
    /// Requests being tracked now (routed, not completed).
    pub active_requests: u64,
    /// Live worker instances now.
    pub workers: u64,
    /// Workers that left and were dropped from the index.
    pub workers_removed: u64,
}

impl KvRouterStats {
    pub(crate) fn from_counters(c: &Counters) -> Self {
        Self {
            events_applied: get(&c.events_applied),
            events_dropped: get(&c.events_dropped),
            event_id_gaps: get(&c.event_id_gaps),
            event_ids_missed: get(&c.event_ids_missed),
            event_ids_stale: get(&c.event_ids_stale),
            metrics_received: get(&c.metrics_received),
            decode_errors: get(&c.decode_errors),
            decisions: get(&c.decisions),
            prompt_blocks: get(&c.prompt_blocks),
            overlap_blocks: get(&c.overlap_blocks),
            rejected_busy: get(&c.rejected_busy),
            queued: get(&c.queued),
            workers_removed: get(&c.workers_removed),
            ..Self::default()
        }
    }

    /// The snapshot in the Prometheus text format, one metric per field, named
    /// `{prefix}_kv_router_{field}` (counters end in `_total`, gauges do not).
    ///
    /// ```
    /// use stator_llm::kv_routing::KvRouterStats;
    ///
    /// let stats = KvRouterStats { decisions: 3, ..KvRouterStats::default() };
    /// let text = stats.to_prometheus("dynamo_frontend");
    /// assert!(text.contains("dynamo_frontend_kv_router_decisions_total 3\n"));
    /// assert!(text.contains("# TYPE dynamo_frontend_kv_router_queue_depth gauge\n"));
    /// ```
    pub fn to_prometheus(&self, prefix: &str) -> String {
        let counters = [
            (
                "events_applied",
                self.events_applied,
                "KV events handed to the indexer",
            ),
            (
                "events_dropped",
                self.events_dropped,
                "KV events of workers that already left",
            ),
            (
                "events_rejected",
                self.events_rejected,
                "KV events the indexer rejected",
            ),
            (
                "event_id_gaps",
                self.event_id_gaps,
                "Jumps in per-worker KV event ids",
            ),
            (
                "event_ids_missed",
                self.event_ids_missed,
                "KV events missing across id jumps",
            ),
            (
                "event_ids_stale",
                self.event_ids_stale,
                "KV events with a non-increasing id",
            ),
            (
                "sequence_gaps",
                self.sequence_gaps,
                "Event-plane sequence gaps on kv-events",
            ),
            (
                "sequence_missed",
                self.sequence_missed,
                "Event-plane messages missing across gaps",
            ),
            (
                "metrics_received",
                self.metrics_received,
                "Load reports received on kv_metrics",
            ),
            (
                "decode_errors",
                self.decode_errors,
                "Event payloads that did not decode",
            ),
            ("decisions", self.decisions, "Routing decisions"),
            (
                "prompt_blocks",
                self.prompt_blocks,
                "Complete prompt blocks routed",
            ),
            (
                "overlap_blocks",
                self.overlap_blocks,
                "Routed prompt blocks cached on the chosen worker",
            ),
            (
                "rejected_busy",
                self.rejected_busy,
                "Requests refused because all workers were busy",
            ),
            (
                "queued",
                self.queued,
                "Requests that waited in the router queue",
            ),
            (
                "workers_removed",
                self.workers_removed,
                "Workers dropped from the index",
            ),
        ];
        let gauges = [
            (
                "queue_depth",
                self.queue_depth,
                "Requests waiting in the router queue",
            ),
            (
                "active_requests",
                self.active_requests,
                "Requests being tracked",
            ),
            ("workers", self.workers, "Live worker instances"),
        ];
        let mut out = String::new();
        for (name, value, help) in counters {
            let full = format!("{prefix}_kv_router_{name}_total");
            let _ = write!(
                out,
                "# HELP {full} {help}\n# TYPE {full} counter\n{full} {value}\n"
            );
        }
        for (name, value, help) in gauges {
            let full = format!("{prefix}_kv_router_{name}");
            let _ = write!(
                out,
                "# HELP {full} {help}\n# TYPE {full} gauge\n{full} {value}\n"
            );
        }
        out
    }
}
