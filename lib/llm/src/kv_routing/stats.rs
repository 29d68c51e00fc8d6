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
        render(prefix, &[(None, *self)])
    }

    /// Adds `other`'s counters and gauges to these (the stats of several routers of one
    /// model, one per worker set).
    pub fn accumulate(&mut self, other: &Self) {
        for (mine, theirs) in self.values_mut().into_iter().zip(other.values()) {
            *mine += theirs;
        }
    }

    /// Every field, in the order of [`FIELDS`].
    fn values_mut(&mut self) -> [&mut u64; FIELD_COUNT] {
        [
            &mut self.events_applied,
            &mut self.events_dropped,
            &mut self.events_rejected,
            &mut self.event_id_gaps,
            &mut self.event_ids_missed,
            &mut self.event_ids_stale,
            &mut self.sequence_gaps,
            &mut self.sequence_missed,
            &mut self.metrics_received,
            &mut self.decode_errors,
            &mut self.decisions,
            &mut self.prompt_blocks,
            &mut self.overlap_blocks,
            &mut self.rejected_busy,
            &mut self.queued,
            &mut self.workers_removed,
            &mut self.queue_depth,
            &mut self.active_requests,
            &mut self.workers,
        ]
    }

    /// Every field's value, in the order of [`FIELDS`].
    fn values(&self) -> [u64; FIELD_COUNT] {
        let mut copy = *self;
        copy.values_mut().map(|value| *value)
    }
}

const FIELD_COUNT: usize = 19;

/// How each field is exposed: metric name suffix, help text, and whether it is a gauge
/// (counters get `_total`).
const FIELDS: [(&str, &str, bool); FIELD_COUNT] = [
    ("events_applied", "KV events handed to the indexer", false),
    (
        "events_dropped",
        "KV events of workers that already left",
        false,
    ),
    ("events_rejected", "KV events the indexer rejected", false),
    ("event_id_gaps", "Jumps in per-worker KV event ids", false),
    (
        "event_ids_missed",
        "KV events missing across id jumps",
        false,
    ),
    (
        "event_ids_stale",
        "KV events with a non-increasing id",
        false,
    ),
    (
        "sequence_gaps",
        "Event-plane sequence gaps on kv-events",
        false,
    ),
    (
        "sequence_missed",
        "Event-plane messages missing across gaps",
        false,
    ),
    (
        "metrics_received",
        "Load reports received on kv_metrics",
        false,
    ),
    ("decode_errors", "Event payloads that did not decode", false),
    ("decisions", "Routing decisions", false),
    ("prompt_blocks", "Complete prompt blocks routed", false),
    (
        "overlap_blocks",
        "Routed prompt blocks cached on the chosen worker",
        false,
    ),
    (
        "rejected_busy",
        "Requests refused because all workers were busy",
        false,
    ),
    ("queued", "Requests that waited in the router queue", false),
    ("workers_removed", "Workers dropped from the index", false),
    ("queue_depth", "Requests waiting in the router queue", true),
    ("active_requests", "Requests being tracked", true),
    ("workers", "Live worker instances", true),
];

/// The Prometheus text of several models' router stats: each family once, one sample per
/// model labelled `model="…"`.
///
/// ```
/// use stator_llm::kv_routing::{KvRouterStats, render_by_model};
///
/// let a = KvRouterStats { decisions: 3, ..KvRouterStats::default() };
/// let b = KvRouterStats { decisions: 5, ..KvRouterStats::default() };
/// let text = render_by_model("dynamo_frontend", &[("a", a), ("b", b)]);
/// assert!(text.contains("dynamo_frontend_kv_router_decisions_total{model=\"a\"} 3\n"));
/// assert!(text.contains("dynamo_frontend_kv_router_decisions_total{model=\"b\"} 5\n"));
/// assert_eq!(text.matches("# TYPE dynamo_frontend_kv_router_decisions_total").count(), 1);
/// ```
pub fn render_by_model(prefix: &str, stats: &[(&str, KvRouterStats)]) -> String {
    let labelled: Vec<(Option<&str>, KvRouterStats)> =
        stats.iter().map(|(model, s)| (Some(*model), *s)).collect();
    render(prefix, &labelled)
}

fn render(prefix: &str, stats: &[(Option<&str>, KvRouterStats)]) -> String {
    let mut out = String::new();
    if stats.is_empty() {
        return out;
    }
    let values: Vec<(Option<&str>, [u64; FIELD_COUNT])> = stats
        .iter()
        .map(|(model, s)| (*model, s.values()))
        .collect();
    for (field, (name, help, gauge)) in FIELDS.iter().enumerate() {
        let (suffix, kind) = if *gauge {
            ("", "gauge")
        } else {
            ("_total", "counter")
        };
        let full = format!("{prefix}_kv_router_{name}{suffix}");
        let _ = write!(out, "# HELP {full} {help}\n# TYPE {full} {kind}\n");
        for (model, all) in &values {
            let value = all[field];
            match model {
                Some(model) => {
                    let _ = writeln!(out, "{full}{{model=\"{}\"}} {value}", escape_label(model));
                }
                None => {
                    let _ = writeln!(out, "{full} {value}");
                }
            }
        }
    }
    out
}

/// Escapes a Prometheus label value (backslash, double quote, newline).
fn escape_label(value: &str) -> String {
    value
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('\n', "\\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn accumulate_adds_every_field() {
        let mut total = KvRouterStats {
            events_applied: 2,
            workers: 1,
            ..KvRouterStats::default()
        };
        total.accumulate(&KvRouterStats {
            events_applied: 5,
            workers: 2,
            workers_removed: 1,
            ..KvRouterStats::default()
        });
        assert_eq!(
            (total.events_applied, total.workers, total.workers_removed),
            (7, 3, 1)
        );
    }

    #[test]
    fn every_field_is_summed_and_rendered() {
        let mut one = KvRouterStats::default();
        for (i, value) in one.values_mut().into_iter().enumerate() {
            *value = i as u64 + 1;
        }
        let mut total = one;
        total.accumulate(&one);
        assert_eq!(total.values(), one.values().map(|v| 2 * v));
        let text = one.to_prometheus("p");
        for ((name, _, gauge), value) in FIELDS.iter().zip(one.values()) {
            let suffix = if *gauge { "" } else { "_total" };
            assert!(
                text.contains(&format!("p_kv_router_{name}{suffix} {value}\n")),
                "{name}"
            );
        }
    }

    #[test]
    fn label_values_are_escaped() {
        let text = render_by_model("p", &[("a\"b\\c\nd", KvRouterStats::default())]);
        assert!(text.contains("p_kv_router_workers{model=\"a\\\"b\\\\c\\nd\"} 0\n"));
    }
}
