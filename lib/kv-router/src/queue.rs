//! The scheduler queue: where requests wait while every worker is saturated
//! (`--router-queue-threshold`), and the order in which they leave it.
//!
//! Entries are ordered by `(strict_priority, score)`, highest first (Dynamo 1.6.1
//! `scheduling/policy.rs`):
//!
//! - **fcfs**: `score = priority_jump − arrival_offset_secs`: arrival order, with
//!   `priority_jump` (from `nvext.agent_hints.priority`) moving a request ahead by that many
//!   seconds.
//! - **wspt** (weighted shortest processing time, Smith's rule):
//!   `score = (1 + priority_jump) / max(1, effective_prefill_tokens)`, where the token count
//!   is the ISL minus the best cached overlap.
//!
//! Equal keys leave in arrival (push) order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::config::QueuePolicy;
use crate::selector::WorkerLoad;

/// What orders a queued request.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QueueKey {
    /// Strict priority class: a higher class always leaves first (`agent_hints.strict_priority`).
    pub strict_priority: u32,
    /// Soft priority (`agent_hints.priority`, wire `routing.priority_jump`): seconds of
    /// queue time skipped under fcfs, a weight under wspt.
    pub priority_jump: f64,
    /// Prefill tokens the request needs on its best worker (ISL minus the best overlap).
    pub effective_prefill_tokens: u64,
    /// When the request arrived.
    pub arrival: Instant,
}

/// A queued item with its precomputed order.
#[derive(Debug)]
struct Entry<T> {
    strict_priority: u32,
    score: f64,
    sequence: u64,
    item: T,
}

impl<T> Ord for Entry<T> {
    fn cmp(&self, other: &Self) -> Ordering {
        self.strict_priority
            .cmp(&other.strict_priority)
            .then_with(|| self.score.total_cmp(&other.score))
            .then_with(|| other.sequence.cmp(&self.sequence))
    }
}

impl<T> PartialOrd for Entry<T> {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl<T> PartialEq for Entry<T> {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl<T> Eq for Entry<T> {}

/// A priority queue of waiting requests under one [`QueuePolicy`].
///
/// ```
/// use std::time::{Duration, Instant};
/// use stator_kv_router::config::QueuePolicy;
/// use stator_kv_router::queue::{QueueKey, SchedulerQueue};
///
/// let t0 = Instant::now();
/// let key = |secs, jump| QueueKey {
///     strict_priority: 0,
///     priority_jump: jump,
///     effective_prefill_tokens: 100,
///     arrival: t0 + Duration::from_secs(secs),
/// };
/// let mut queue = SchedulerQueue::new(QueuePolicy::Fcfs);
/// queue.push("first", key(0, 0.0));
/// queue.push("second", key(1, 0.0));
/// queue.push("urgent", key(2, 5.0)); // jumps 5 s ahead
/// assert_eq!(queue.pop(), Some("urgent"));
/// assert_eq!(queue.pop(), Some("first"));
/// assert_eq!(queue.pop(), Some("second"));
/// ```
#[derive(Debug)]
pub struct SchedulerQueue<T> {
    policy: QueuePolicy,
    heap: BinaryHeap<Entry<T>>,
    epoch: Option<Instant>,
    next_sequence: u64,
}

impl<T> SchedulerQueue<T> {
    /// An empty queue ordered by `policy`.
    pub fn new(policy: QueuePolicy) -> Self {
        Self {
            policy,
            heap: BinaryHeap::new(),
            epoch: None,
            next_sequence: 0,
        }
    }

    /// The ordering policy.
    pub fn policy(&self) -> QueuePolicy {
        self.policy
    }

    /// Number of waiting items.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether nothing waits.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Add an item.
    pub fn push(&mut self, item: T, key: QueueKey) {
        let score = self.score(&key);
        self.heap.push(Entry {
            strict_priority: key.strict_priority,
            score,
            sequence: self.next_sequence,
            item,
        });
        self.next_sequence += 1;
    }

    /// The item that leaves next.
    pub fn peek(&self) -> Option<&T> {
        self.heap.peek().map(|entry| &entry.item)
    }

    /// Take the item that leaves next (call when capacity frees).
    pub fn pop(&mut self) -> Option<T> {
        self.heap.pop().map(|entry| entry.item)
    }

    /// Take every item, in leaving order (e.g. to fail them on shutdown).
    pub fn drain(&mut self) -> Vec<T> {
        std::iter::from_fn(|| self.pop()).collect()
    }

    fn score(&mut self, key: &QueueKey) -> f64 {
        match self.policy {
            QueuePolicy::Fcfs => {
                // Offsets are taken from the first arrival seen so the floats stay small.
                let epoch = *self.epoch.get_or_insert(key.arrival);
                let offset = if key.arrival >= epoch {
                    key.arrival.duration_since(epoch).as_secs_f64()
                } else {
                    -epoch.duration_since(key.arrival).as_secs_f64()
                };
                key.priority_jump - offset
            }
            QueuePolicy::Wspt => {
                (1.0 + key.priority_jump) / key.effective_prefill_tokens.max(1) as f64
            }
        }
    }
}

/// Whether requests must queue: every worker's active prefill tokens exceed
/// `threshold × max_num_batched_tokens`.
///
/// A worker whose `max_num_batched_tokens` is unknown never counts as saturated, and an
/// empty worker list is not saturated (there is nothing to wait for).
///
/// ```
/// use stator_kv_router::queue::all_workers_saturated;
/// use stator_kv_router::selector::WorkerLoad;
///
/// let load = |tokens| WorkerLoad {
///     active_prefill_tokens: tokens,
///     max_num_batched_tokens: Some(1000),
///     ..WorkerLoad::default()
/// };
/// assert!(all_workers_saturated(1.5, [&load(1600), &load(2000)]));
/// assert!(!all_workers_saturated(1.5, [&load(1600), &load(1500)]));
/// ```
pub fn all_workers_saturated<'a>(
    threshold: f64,
    loads: impl IntoIterator<Item = &'a WorkerLoad>,
) -> bool {
    let mut any = false;
    for load in loads {
        any = true;
        let saturated = load
            .max_num_batched_tokens
            .is_some_and(|batch| load.active_prefill_tokens as f64 > threshold * batch as f64);
        if !saturated {
            return false;
        }
    }
    any
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn key(strict: u32, jump: f64, tokens: u64, at: Instant) -> QueueKey {
        QueueKey {
            strict_priority: strict,
            priority_jump: jump,
            effective_prefill_tokens: tokens,
            arrival: at,
        }
    }

    #[test]
    fn wspt_prefers_short_and_weighted_work() {
        let t0 = Instant::now();
        let mut queue = SchedulerQueue::new(QueuePolicy::Wspt);
        queue.push("long", key(0, 0.0, 1000, t0));
        queue.push("short", key(0, 0.0, 10, t0));
        queue.push("weighted-long", key(0, 199.0, 1000, t0)); // 200/1000 beats 1/10
        queue.push("strict", key(1, 0.0, 100_000, t0));
        assert_eq!(queue.len(), 4);
        assert_eq!(
            queue.drain(),
            vec!["strict", "weighted-long", "short", "long"]
        );
        assert!(queue.is_empty());
    }

    #[test]
    fn fcfs_handles_out_of_order_arrivals_and_ties() {
        let t0 = Instant::now() + Duration::from_secs(10);
        let mut queue = SchedulerQueue::new(QueuePolicy::Fcfs);
        queue.push("b", key(0, 0.0, 1, t0));
        queue.push(
            "a",
            key(0, 0.0, 1, t0.checked_sub(Duration::from_secs(3)).unwrap()),
        );
        queue.push("b-twin", key(0, 0.0, 1, t0));
        assert_eq!(queue.peek(), Some(&"a"));
        assert_eq!(queue.drain(), vec!["a", "b", "b-twin"]);
    }

    #[test]
    fn saturation_needs_every_worker_known_and_over() {
        let over = WorkerLoad {
            active_prefill_tokens: 11,
            max_num_batched_tokens: Some(10),
            ..WorkerLoad::default()
        };
        let unknown = WorkerLoad {
            active_prefill_tokens: 1_000_000,
            ..WorkerLoad::default()
        };
        assert!(all_workers_saturated(1.0, [&over]));
        assert!(!all_workers_saturated(1.0, [&over, &unknown]));
        assert!(!all_workers_saturated(1.0, std::iter::empty()));
    }
}
