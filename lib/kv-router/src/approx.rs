//! Approximate mode: predicting each worker's cache from the router's own decisions, for
//! workers that publish no KV events (`--no-router-kv-events`).
//!
//! Every routing decision records the request's blocks as cached on the chosen worker. A
//! predicted block is forgotten `router_ttl_secs` after it was last routed (TTL policy) and,
//! whatever the policy, when the worker holds more predicted blocks than its bound (least
//! recently routed first). Within one decision the deepest block counts as the least recently
//! routed, so eviction trims prefixes from their tail and never leaves an unreachable suffix.
//!
//! Time is passed in (`now`), never read, so tests run without sleeping; `now` values that go
//! backwards are treated as the latest one seen.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustc_hash::FxHashMap;
use stator_tokens::{LocalBlockHash, SequenceHash, next_sequence_hash};

use crate::config::{ApproxCachePolicy, KvRouterConfig};
use crate::protocols::{OverlapScores, WorkerId, WorkerWithDpRank};

/// The predicted blocks of one worker, in routing order.
#[derive(Debug, Clone, Default)]
struct PredictedBlocks {
    /// Sequence hash → its tick in `order`.
    ticks: FxHashMap<SequenceHash, u64>,
    /// Tick (older first) → the block and when it was routed.
    order: BTreeMap<u64, (SequenceHash, Instant)>,
    /// Most blocks kept.
    capacity: usize,
}

impl PredictedBlocks {
    fn with_capacity(capacity: usize) -> Self {
        Self {
            capacity,
            ..Self::default()
        }
    }

    fn touch(&mut self, hash: SequenceHash, tick: u64, now: Instant) {
        if let Some(old) = self.ticks.insert(hash, tick) {
            self.order.remove(&old);
        }
        self.order.insert(tick, (hash, now));
    }

    /// Evict least recently routed blocks down to the capacity; returns how many went.
    fn enforce_capacity(&mut self) -> usize {
        let mut evicted = 0;
        while self.ticks.len() > self.capacity {
            let Some((_, (hash, _))) = self.order.pop_first() else {
                break;
            };
            self.ticks.remove(&hash);
            evicted += 1;
        }
        evicted
    }

    /// Drop blocks routed at or before `cutoff`; returns how many went.
    fn expire(&mut self, cutoff: Instant) -> usize {
        let mut expired = 0;
        while let Some(entry) = self.order.first_entry() {
            let (hash, routed_at) = *entry.get();
            if routed_at > cutoff {
                break;
            }
            entry.remove();
            self.ticks.remove(&hash);
            expired += 1;
        }
        expired
    }
}

/// Predicted cache contents per worker, answering overlap queries like a real indexer.
///
/// ```
/// use std::time::{Duration, Instant};
/// use stator_kv_router::approx::ApproxIndexer;
/// use stator_kv_router::config::KvRouterConfig;
/// use stator_kv_router::protocols::WorkerWithDpRank;
/// use stator_tokens::{LocalBlockHash, sequence_hashes};
///
/// let worker = WorkerWithDpRank::new(3, 0);
/// let local = [LocalBlockHash(10), LocalBlockHash(11), LocalBlockHash(12)];
/// let mut approx = ApproxIndexer::new(&KvRouterConfig::default());
/// let start = Instant::now();
/// approx.record_routing(worker, &sequence_hashes(&local[..2]), start);
/// assert_eq!(approx.find_matches(&local).depth(worker), 2);
/// approx.expire(start + Duration::from_secs(120)); // default TTL
/// assert_eq!(approx.find_matches(&local).depth(worker), 0);
/// ```
#[derive(Debug, Clone)]
pub struct ApproxIndexer {
    ttl: Option<Duration>,
    max_blocks_per_worker: usize,
    workers: BTreeMap<WorkerWithDpRank, PredictedBlocks>,
    next_tick: u64,
    latest_now: Option<Instant>,
}

impl ApproxIndexer {
    /// An empty predictor using `config.router_ttl_secs`, `config.approx_cache_policy` and
    /// `config.approx_max_blocks_per_worker`.
    pub fn new(config: &KvRouterConfig) -> Self {
        let ttl = match config.approx_cache_policy {
            ApproxCachePolicy::Ttl => Some(config.router_ttl()),
            ApproxCachePolicy::Lru => None,
        };
        Self {
            ttl,
            max_blocks_per_worker: config.approx_max_blocks_per_worker,
            workers: BTreeMap::new(),
            next_tick: 0,
            latest_now: None,
        }
    }

    /// Bound a worker's predicted blocks by its advertised KV capacity (never above the
    /// configured per-worker bound); returns how many blocks were evicted to fit.
    pub fn set_worker_capacity(&mut self, worker: WorkerWithDpRank, kv_blocks: usize) -> usize {
        let capacity = kv_blocks.min(self.max_blocks_per_worker);
        let blocks = self
            .workers
            .entry(worker)
            .or_insert_with(|| PredictedBlocks::with_capacity(capacity));
        blocks.capacity = capacity;
        blocks.enforce_capacity()
    }

    /// Record that a request with these prompt blocks was routed to `worker` at `now`:
    /// they are predicted cached there (and their TTL restarts).
    pub fn record_routing(
        &mut self,
        worker: WorkerWithDpRank,
        block_hashes: &[SequenceHash],
        now: Instant,
    ) {
        let now = self.monotonic(now);
        let default_capacity = self.max_blocks_per_worker;
        let blocks = self
            .workers
            .entry(worker)
            .or_insert_with(|| PredictedBlocks::with_capacity(default_capacity));
        // Deepest first, so the deepest block holds the oldest tick and is evicted first.
        for &hash in block_hashes.iter().rev() {
            blocks.touch(hash, self.next_tick, now);
            self.next_tick += 1;
        }
        blocks.enforce_capacity();
    }

    /// Forget every block whose TTL ran out by `now` (no-op under the LRU policy);
    /// returns how many were dropped. Call it periodically and before queries.
    pub fn expire(&mut self, now: Instant) -> usize {
        let now = self.monotonic(now);
        let Some(cutoff) = self.ttl.and_then(|ttl| now.checked_sub(ttl)) else {
            return 0;
        };
        self.workers
            .values_mut()
            .map(|blocks| blocks.expire(cutoff))
            .sum()
    }

    /// Forget every DP rank of `worker_id`.
    pub fn remove_worker(&mut self, worker_id: WorkerId) {
        self.workers.retain(|owner, _| owner.worker_id != worker_id);
    }

    /// Predicted blocks held for `worker`.
    pub fn predicted_blocks(&self, worker: WorkerWithDpRank) -> usize {
        self.workers
            .get(&worker)
            .map_or(0, |blocks| blocks.ticks.len())
    }

    /// For each worker, how many leading blocks of `query` (local hashes of a prompt) it is
    /// predicted to cache. Workers matching nothing are absent.
    pub fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        let mut scores = OverlapScores::default();
        let Some((first, rest)) = query.split_first() else {
            return scores;
        };
        let mut seq = SequenceHash(first.0);
        let mut alive: Vec<(WorkerWithDpRank, &PredictedBlocks)> = self
            .workers
            .iter()
            .filter(|(_, blocks)| blocks.ticks.contains_key(&seq))
            .map(|(worker, blocks)| (*worker, blocks))
            .collect();
        let mut depth = 1u32;
        for &local in rest {
            if alive.is_empty() {
                break;
            }
            seq = next_sequence_hash(seq, local);
            alive.retain(|(worker, blocks)| {
                let hit = blocks.ticks.contains_key(&seq);
                if !hit {
                    scores.scores.insert(*worker, depth);
                }
                hit
            });
            depth += 1;
        }
        for (worker, _) in alive {
            scores.scores.insert(worker, depth);
        }
        scores
    }

    fn monotonic(&mut self, now: Instant) -> Instant {
        let now = self.latest_now.map_or(now, |latest| latest.max(now));
        self.latest_now = Some(now);
        now
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use stator_tokens::sequence_hashes;

    fn w(id: u64) -> WorkerWithDpRank {
        WorkerWithDpRank::new(id, 0)
    }

    fn locals(values: &[u64]) -> Vec<LocalBlockHash> {
        values.iter().map(|&v| LocalBlockHash(v)).collect()
    }

    #[test]
    fn lru_bound_trims_the_tail_first() {
        let config = KvRouterConfig {
            approx_max_blocks_per_worker: 3,
            ..KvRouterConfig::default()
        };
        let mut approx = ApproxIndexer::new(&config);
        let now = Instant::now();
        let query = locals(&[1, 2, 3, 4, 5]);
        approx.record_routing(w(1), &sequence_hashes(&query), now);
        assert_eq!(approx.predicted_blocks(w(1)), 3);
        assert_eq!(approx.find_matches(&query).depth(w(1)), 3);
        // A newer decision pushes out the older prefix entirely.
        let other = locals(&[9, 8, 7]);
        approx.record_routing(w(1), &sequence_hashes(&other), now);
        assert_eq!(approx.find_matches(&query).depth(w(1)), 0);
        assert_eq!(approx.find_matches(&other).depth(w(1)), 3);
        assert_eq!(approx.set_worker_capacity(w(1), 1), 2);
        assert_eq!(approx.find_matches(&other).depth(w(1)), 1);
    }

    #[test]
    fn rerouting_refreshes_the_ttl() {
        let mut approx = ApproxIndexer::new(&KvRouterConfig::default());
        let start = Instant::now();
        let query = locals(&[1, 2]);
        let hashes = sequence_hashes(&query);
        approx.record_routing(w(1), &hashes, start);
        approx.record_routing(w(1), &hashes[..1], start + Duration::from_secs(100));
        assert_eq!(approx.expire(start + Duration::from_secs(150)), 1);
        assert_eq!(approx.find_matches(&query).depth(w(1)), 1);
        assert_eq!(approx.expire(start + Duration::from_secs(220)), 1);
        assert!(approx.find_matches(&query).scores.is_empty());
    }

    #[test]
    fn lru_policy_never_expires_and_workers_leave() {
        let config = KvRouterConfig {
            approx_cache_policy: ApproxCachePolicy::Lru,
            ..KvRouterConfig::default()
        };
        let mut approx = ApproxIndexer::new(&config);
        let start = Instant::now();
        let query = locals(&[4, 5]);
        approx.record_routing(w(1), &sequence_hashes(&query), start);
        approx.record_routing(WorkerWithDpRank::new(1, 1), &sequence_hashes(&query), start);
        assert_eq!(approx.expire(start + Duration::from_secs(100_000)), 0);
        assert_eq!(approx.find_matches(&query).scores.len(), 2);
        approx.remove_worker(1);
        assert!(approx.find_matches(&query).scores.is_empty());
    }

    #[test]
    fn depth_stops_at_the_first_hole() {
        let mut approx = ApproxIndexer::new(&KvRouterConfig::default());
        let now = Instant::now();
        let query = locals(&[1, 2, 3]);
        let hashes = sequence_hashes(&query);
        approx.record_routing(w(1), &[hashes[0], hashes[2]], now);
        approx.record_routing(w(2), &hashes[1..], now);
        let scores = approx.find_matches(&query);
        assert_eq!(scores.depth(w(1)), 1);
        assert_eq!(scores.depth(w(2)), 0);
        assert!(approx.find_matches(&[]).scores.is_empty());
    }
}
