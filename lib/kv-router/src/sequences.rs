//! Active-sequence tracking: the router's own view of each worker's load.
//!
//! A request is added to a worker when it is routed there, its prefill tokens count until
//! its first token ([`mark_prefill_completed`](ActiveSequencesMultiWorker::mark_prefill_completed)),
//! and its KV blocks count until it completes ([`free`](ActiveSequencesMultiWorker::free)).
//! Blocks are identified by sequence hash and reference-counted per worker, so a prefix
//! shared by several active requests counts once. Requests that are never freed (a lost
//! stream) are dropped by [`expire_stale`](ActiveSequencesMultiWorker::expire_stale).

mod worker;

pub use worker::ActiveSequences;

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use rustc_hash::{FxHashMap, FxHashSet};
use stator_tokens::SequenceHash;

use crate::config::KvRouterConfig;
use crate::protocols::WorkerWithDpRank;
use crate::selector::WorkerLoad;

/// A request as the tracker records it when it is routed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SequenceRequest {
    /// The request's id (unique among active requests).
    pub request_id: String,
    /// Sequence hashes of the prompt's complete blocks.
    pub block_hashes: Vec<SequenceHash>,
    /// Input sequence length in tokens.
    pub isl_tokens: u64,
    /// Leading blocks the chosen worker already caches; those tokens need no prefill.
    pub overlap_blocks: u32,
}

/// Active requests of every worker, with request → worker lookup.
///
/// ```
/// use std::time::Instant;
/// use stator_kv_router::config::KvRouterConfig;
/// use stator_kv_router::protocols::WorkerWithDpRank;
/// use stator_kv_router::sequences::{ActiveSequencesMultiWorker, SequenceRequest};
/// use stator_tokens::SequenceHash;
///
/// let worker = WorkerWithDpRank::new(1, 0);
/// let mut active = ActiveSequencesMultiWorker::new(16, &KvRouterConfig::default());
/// let now = Instant::now();
/// for id in ["a", "b"] {
///     let request = SequenceRequest {
///         request_id: id.into(),
///         block_hashes: vec![SequenceHash(1), SequenceHash(2)], // same prompt twice
///         isl_tokens: 40,
///         overlap_blocks: 0,
///     };
///     assert!(active.add_request(worker, request, now));
/// }
/// let load = active.load(worker).unwrap();
/// assert_eq!(load.active_decode_blocks, 2); // the shared prefix counts once
/// assert_eq!(load.active_prefill_tokens, 80);
/// active.mark_prefill_completed("a");
/// active.free("b");
/// assert_eq!(active.load(worker).unwrap().active_prefill_tokens, 0);
/// ```
#[derive(Debug, Clone)]
pub struct ActiveSequencesMultiWorker {
    block_size: u64,
    assume_kv_reuse: bool,
    stale_ttl: Duration,
    workers: BTreeMap<WorkerWithDpRank, ActiveSequences>,
    owners: FxHashMap<String, WorkerWithDpRank>,
    /// Shared block → the workers where it is active: lets a load query cost
    /// O(blocks + holders) instead of O(workers × blocks).
    holders: FxHashMap<SequenceHash, Vec<WorkerWithDpRank>>,
}

impl ActiveSequencesMultiWorker {
    /// An empty tracker for `block_size`-token blocks, using `config.assume_kv_reuse` and
    /// `config.stale_request_ttl_secs`.
    pub fn new(block_size: u32, config: &KvRouterConfig) -> Self {
        Self {
            block_size: u64::from(block_size.max(1)),
            assume_kv_reuse: config.assume_kv_reuse,
            stale_ttl: config.stale_request_ttl(),
            workers: BTreeMap::new(),
            owners: FxHashMap::default(),
            holders: FxHashMap::default(),
        }
    }

    /// Register a worker with no load; `false` if it was already known.
    pub fn add_worker(&mut self, worker: WorkerWithDpRank) -> bool {
        if self.workers.contains_key(&worker) {
            return false;
        }
        self.workers.insert(worker, ActiveSequences::default());
        true
    }

    /// Forget a worker and its requests; returns how many requests were dropped.
    pub fn remove_worker(&mut self, worker: WorkerWithDpRank) -> usize {
        let Some(sequences) = self.workers.remove(&worker) else {
            return 0;
        };
        for id in sequences.request_ids() {
            self.owners.remove(id);
        }
        for hash in sequences.active_hashes() {
            release_holder(&mut self.holders, *hash, worker);
        }
        sequences.active_requests() as usize
    }

    /// Known workers, in order.
    pub fn workers(&self) -> impl Iterator<Item = WorkerWithDpRank> + '_ {
        self.workers.keys().copied()
    }

    /// One worker's active sequences.
    pub fn worker(&self, worker: WorkerWithDpRank) -> Option<&ActiveSequences> {
        self.workers.get(&worker)
    }

    /// The worker a request is active on.
    pub fn worker_of(&self, request_id: &str) -> Option<WorkerWithDpRank> {
        self.owners.get(request_id).copied()
    }

    /// Number of active requests over all workers.
    pub fn len(&self) -> usize {
        self.owners.len()
    }

    /// Whether no request is active.
    pub fn is_empty(&self) -> bool {
        self.owners.is_empty()
    }

    /// Track `request` on `worker` (registering the worker if needed); `false`, and no change,
    /// if a request with the same id is already active anywhere.
    ///
    /// Its prefill tokens are the ISL minus the tokens of `overlap_blocks` cached blocks.
    pub fn add_request(
        &mut self,
        worker: WorkerWithDpRank,
        request: SequenceRequest,
        now: Instant,
    ) -> bool {
        if self.owners.contains_key(&request.request_id) {
            return false;
        }
        let cached_tokens = u64::from(request.overlap_blocks) * self.block_size;
        let prefill_tokens = request.isl_tokens.saturating_sub(cached_tokens);
        let holders = &mut self.holders;
        let added = self.workers.entry(worker).or_default().add(
            request.request_id.clone(),
            &request.block_hashes,
            prefill_tokens,
            self.assume_kv_reuse,
            now,
            |hash| holders.entry(hash).or_default().push(worker),
        );
        debug_assert!(added, "owners and per-worker requests agree");
        self.owners.insert(request.request_id, worker);
        true
    }

    /// The request produced its first token: stop counting its prefill tokens.
    /// `false` if the request is not active.
    pub fn mark_prefill_completed(&mut self, request_id: &str) -> bool {
        self.owners
            .get(request_id)
            .and_then(|worker| self.workers.get_mut(worker))
            .is_some_and(|sequences| sequences.mark_prefill_completed(request_id))
    }

    /// The request finished: release its blocks and tokens. `false` if it was not active.
    pub fn free(&mut self, request_id: &str) -> bool {
        let Some(worker) = self.owners.remove(request_id) else {
            return false;
        };
        let holders = &mut self.holders;
        self.workers.get_mut(&worker).is_some_and(|sequences| {
            sequences.free(request_id, |hash| release_holder(holders, hash, worker))
        })
    }

    /// Free every request added more than the stale TTL before `now`; returns their ids.
    pub fn expire_stale(&mut self, now: Instant) -> Vec<String> {
        let Some(cutoff) = now.checked_sub(self.stale_ttl) else {
            return Vec::new();
        };
        let stale: Vec<String> = self
            .workers
            .values()
            .flat_map(|sequences| sequences.added_before(cutoff))
            .collect();
        for id in &stale {
            self.free(id);
        }
        stale
    }

    /// A worker's current load (`new_decode_blocks` 0, capacity unknown).
    pub fn load(&self, worker: WorkerWithDpRank) -> Option<WorkerLoad> {
        self.workers.get(&worker).map(|sequences| WorkerLoad {
            active_prefill_tokens: sequences.active_prefill_tokens(),
            active_decode_blocks: sequences.active_blocks(),
            active_requests: sequences.active_requests(),
            ..WorkerLoad::default()
        })
    }

    /// For every worker, its load with `new_decode_blocks` set to what a request with
    /// `block_hashes` would add there: the request's potential decode blocks on a worker are
    /// `active_decode_blocks + new_decode_blocks`, its potential prefill tokens
    /// `active_prefill_tokens + isl` (see [`WorkerLoad`]). Capacity fields are left unknown.
    pub fn potential_blocks_and_tokens(
        &self,
        block_hashes: &[SequenceHash],
    ) -> Vec<(WorkerWithDpRank, WorkerLoad)> {
        // A repeated hash (a collision inside one chain) is one block: count it once.
        let mut unique = FxHashSet::default();
        let mut held: FxHashMap<WorkerWithDpRank, u64> = FxHashMap::default();
        for hash in block_hashes {
            if !unique.insert(*hash) {
                continue;
            }
            for worker in self.holders.get(hash).into_iter().flatten() {
                *held.entry(*worker).or_insert(0) += 1;
            }
        }
        let request_blocks = if self.assume_kv_reuse {
            unique.len() as u64
        } else {
            block_hashes.len() as u64
        };
        self.workers
            .iter()
            .map(|(worker, sequences)| {
                let load = WorkerLoad {
                    active_prefill_tokens: sequences.active_prefill_tokens(),
                    active_decode_blocks: sequences.active_blocks(),
                    active_requests: sequences.active_requests(),
                    new_decode_blocks: request_blocks - held.get(worker).copied().unwrap_or(0),
                    ..WorkerLoad::default()
                };
                (*worker, load)
            })
            .collect()
    }
}

/// `worker` no longer holds `hash`: drop it from the holder list.
fn release_holder(
    holders: &mut FxHashMap<SequenceHash, Vec<WorkerWithDpRank>>,
    hash: SequenceHash,
    worker: WorkerWithDpRank,
) {
    if let Some(list) = holders.get_mut(&hash) {
        if let Some(at) = list.iter().position(|held| *held == worker) {
            list.swap_remove(at);
        }
        if list.is_empty() {
            holders.remove(&hash);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(id: u64) -> WorkerWithDpRank {
        WorkerWithDpRank::new(id, 0)
    }

    fn request(id: &str, blocks: &[u64], isl: u64, overlap: u32) -> SequenceRequest {
        SequenceRequest {
            request_id: id.into(),
            block_hashes: blocks.iter().map(|&h| SequenceHash(h)).collect(),
            isl_tokens: isl,
            overlap_blocks: overlap,
        }
    }

    #[test]
    fn overlap_reduces_prefill_tokens_and_duplicates_are_refused() {
        let mut active = ActiveSequencesMultiWorker::new(4, &KvRouterConfig::default());
        let now = Instant::now();
        assert!(active.add_request(w(1), request("a", &[1, 2, 3], 14, 2), now));
        assert!(!active.add_request(w(2), request("a", &[9], 4, 0), now));
        let load = active.load(w(1)).unwrap();
        assert_eq!(load.active_prefill_tokens, 6);
        assert_eq!(load.active_decode_blocks, 3);
        assert_eq!(active.worker_of("a"), Some(w(1)));
        assert!(active.load(w(2)).is_none());
    }

    #[test]
    fn potential_counts_only_blocks_not_active() {
        let mut active = ActiveSequencesMultiWorker::new(4, &KvRouterConfig::default());
        let now = Instant::now();
        active.add_worker(w(2));
        assert!(active.add_request(w(1), request("a", &[1, 2, 3], 12, 0), now));
        let loads = active.potential_blocks_and_tokens(&[
            SequenceHash(1),
            SequenceHash(2),
            SequenceHash(7),
        ]);
        assert_eq!(loads.len(), 2);
        assert_eq!(loads[0].0, w(1));
        assert_eq!(loads[0].1.new_decode_blocks, 1);
        assert_eq!(loads[0].1.potential_decode_blocks(), 4);
        assert_eq!(loads[1].1.new_decode_blocks, 3);
        assert_eq!(loads[1].1.potential_prefill_tokens(12), 12);
    }

    #[test]
    fn without_kv_reuse_each_request_counts_its_blocks() {
        let config = KvRouterConfig {
            assume_kv_reuse: false,
            ..KvRouterConfig::default()
        };
        let mut active = ActiveSequencesMultiWorker::new(4, &config);
        let now = Instant::now();
        assert!(active.add_request(w(1), request("a", &[1, 2], 8, 0), now));
        assert!(active.add_request(w(1), request("b", &[1, 2], 8, 0), now));
        assert_eq!(active.load(w(1)).unwrap().active_decode_blocks, 4);
        assert_eq!(
            active.potential_blocks_and_tokens(&[SequenceHash(1)])[0]
                .1
                .new_decode_blocks,
            1
        );
        assert!(active.free("a"));
        assert_eq!(active.load(w(1)).unwrap().active_decode_blocks, 2);
    }

    #[test]
    fn stale_requests_expire_and_workers_can_leave() {
        let mut active = ActiveSequencesMultiWorker::new(4, &KvRouterConfig::default());
        let start = Instant::now();
        assert!(active.add_request(w(1), request("old", &[1], 4, 0), start));
        let later = start + Duration::from_secs(200);
        assert!(active.add_request(w(1), request("new", &[2], 4, 0), later));
        assert!(active.expire_stale(later).is_empty());
        let expired = active.expire_stale(start + Duration::from_secs(301));
        assert_eq!(expired, vec!["old".to_string()]);
        assert_eq!(active.len(), 1);
        assert_eq!(active.remove_worker(w(1)), 1);
        assert!(active.is_empty());
        assert!(!active.free("new"));
        assert!(!active.mark_prefill_completed("new"));
    }
}
