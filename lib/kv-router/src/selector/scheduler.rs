//! [`KvScheduler`]: the selector wired to active-sequence tracking and, without KV events, to
//! the approximate-mode predictor. Not synchronized: share it behind a lock.

use std::collections::BTreeMap;
use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stator_tokens::{LocalBlockHash, sequence_hashes};

use super::{RequestShape, SelectError, Selection, WorkerLoad, WorkerSelector};
use crate::approx::ApproxIndexer;
use crate::config::{ApproxCachePolicy, BusyThresholds, KvRouterConfig};
use crate::protocols::{OverlapScores, WorkerId, WorkerWithDpRank};
use crate::queue::all_workers_saturated;
use crate::sequences::{ActiveSequencesMultiWorker, SequenceRequest};

/// A request to place.
#[derive(Debug, Clone, Copy)]
pub struct ScheduleRequest<'a> {
    /// Unique id among active requests.
    pub request_id: &'a str,
    /// Local hashes of the prompt's complete blocks.
    pub local_hashes: &'a [LocalBlockHash],
    /// Input sequence length in tokens.
    pub isl_tokens: u64,
}

/// Why a request was not placed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ScheduleError {
    /// No worker could take it (none registered, or all busy).
    #[error(transparent)]
    Select(#[from] SelectError),
    /// A request with this id is already active.
    #[error("request {0} is already active")]
    DuplicateRequest(String),
}

/// Capacity facts a worker advertises (used by busy detection and queueing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCapacity {
    /// KV cache size in blocks.
    pub kv_total_blocks: Option<u64>,
    /// The engine's `max_num_batched_tokens`.
    pub max_num_batched_tokens: Option<u64>,
}

/// Chooses a worker per request (selector over overlap + tracked load) and records the
/// decision into load tracking, and into the cache predictor when KV events are off (or
/// when `predicted_ttl_secs` asks for a side predictor next to the event-driven indexer).
///
/// ```
/// use std::time::Instant;
/// use stator_kv_router::config::KvRouterConfig;
/// use stator_kv_router::protocols::WorkerWithDpRank;
/// use stator_kv_router::selector::{KvScheduler, ScheduleRequest};
/// use stator_tokens::{block_hashes, SaltSeed};
///
/// let config = KvRouterConfig { use_kv_events: false, ..KvRouterConfig::default() };
/// let mut scheduler = KvScheduler::with_seed(config, 4, 1);
/// let (a, b) = (WorkerWithDpRank::new(1, 0), WorkerWithDpRank::new(2, 0));
/// scheduler.add_worker(a);
/// scheduler.add_worker(b);
/// let tokens: Vec<u32> = (0..16).collect();
/// let local = block_hashes(&tokens, 4, SaltSeed::default());
/// let now = Instant::now();
/// let request = |id| ScheduleRequest { request_id: id, local_hashes: &local, isl_tokens: 16 };
/// let first = scheduler.schedule(&request("r1"), None, now).unwrap();
/// scheduler.free("r1");
/// // The predictor remembers where the prompt went: the same prompt follows it.
/// let second = scheduler.schedule(&request("r2"), None, now).unwrap();
/// assert_eq!(second.worker, first.worker);
/// assert_eq!(second.overlap_blocks, 4);
/// ```
#[derive(Debug)]
pub struct KvScheduler<R = StdRng> {
    selector: WorkerSelector,
    block_size: u32,
    sequences: ActiveSequencesMultiWorker,
    approx: Option<ApproxIndexer>,
    capacities: BTreeMap<WorkerWithDpRank, WorkerCapacity>,
    rng: R,
}

impl KvScheduler<StdRng> {
    /// A scheduler for `block_size`-token blocks, sampling from OS entropy.
    pub fn new(config: KvRouterConfig, block_size: u32) -> Self {
        Self::with_rng(config, block_size, StdRng::from_os_rng())
    }

    /// A scheduler with a seeded (reproducible) sampler.
    pub fn with_seed(config: KvRouterConfig, block_size: u32, seed: u64) -> Self {
        Self::with_rng(config, block_size, StdRng::seed_from_u64(seed))
    }
}

impl<R: Rng> KvScheduler<R> {
    /// A scheduler drawing its samples from `rng`.
    pub fn with_rng(config: KvRouterConfig, block_size: u32, rng: R) -> Self {
        let approx = if !config.use_kv_events {
            Some(ApproxIndexer::new(&config))
        } else if let Some(ttl) = config.predicted_ttl_secs {
            let side = KvRouterConfig {
                router_ttl_secs: ttl,
                approx_cache_policy: ApproxCachePolicy::Ttl,
                ..config.clone()
            };
            Some(ApproxIndexer::new(&side))
        } else {
            None
        };
        Self {
            sequences: ActiveSequencesMultiWorker::new(block_size, &config),
            selector: WorkerSelector::new(config),
            block_size,
            approx,
            capacities: BTreeMap::new(),
            rng,
        }
    }

    /// Make a worker a candidate.
    pub fn add_worker(&mut self, worker: WorkerWithDpRank) {
        self.sequences.add_worker(worker);
    }

    /// Record a worker's advertised capacity (the predictor is bounded by its KV size too).
    pub fn set_worker_capacity(&mut self, worker: WorkerWithDpRank, capacity: WorkerCapacity) {
        self.sequences.add_worker(worker);
        if let (Some(approx), Some(blocks)) = (self.approx.as_mut(), capacity.kv_total_blocks) {
            approx.set_worker_capacity(worker, usize::try_from(blocks).unwrap_or(usize::MAX));
        }
        self.capacities.insert(worker, capacity);
    }

    /// Drop every DP rank of a worker, with its requests and predictions.
    pub fn remove_worker(&mut self, worker_id: WorkerId) {
        let ranks: Vec<_> = self
            .sequences
            .workers()
            .filter(|worker| worker.worker_id == worker_id)
            .collect();
        for worker in ranks {
            self.sequences.remove_worker(worker);
            self.capacities.remove(&worker);
        }
        if let Some(approx) = self.approx.as_mut() {
            approx.remove_worker(worker_id);
        }
    }

    /// Pick a worker for `request` and start tracking it there.
    ///
    /// `indexer_overlaps` are the event-driven indexer's answer for the request's blocks;
    /// without KV events pass `None`. When the scheduler also predicts caches itself, each
    /// worker's overlap is the larger of the two answers.
    pub fn schedule(
        &mut self,
        request: &ScheduleRequest<'_>,
        indexer_overlaps: Option<&OverlapScores>,
        now: Instant,
    ) -> Result<Selection, ScheduleError> {
        if self.sequences.worker_of(request.request_id).is_some() {
            return Err(ScheduleError::DuplicateRequest(
                request.request_id.to_string(),
            ));
        }
        let block_hashes = sequence_hashes(request.local_hashes);
        let mut overlaps = indexer_overlaps.cloned().unwrap_or_default();
        if let Some(approx) = self.approx.as_mut() {
            approx.expire(now);
            for (worker, depth) in approx.find_matches(request.local_hashes).scores {
                let entry = overlaps.scores.entry(worker).or_insert(0);
                *entry = (*entry).max(depth);
            }
        }
        let loads: Vec<(WorkerWithDpRank, WorkerLoad)> = self
            .sequences
            .potential_blocks_and_tokens(&block_hashes)
            .into_iter()
            .map(|(worker, load)| (worker, self.with_capacity(worker, load)))
            .collect();
        let shape = RequestShape {
            isl_tokens: request.isl_tokens,
            block_size: self.block_size,
        };
        let selection = self
            .selector
            .select(&shape, &overlaps, &loads, &mut self.rng)?;
        if let Some(approx) = self.approx.as_mut() {
            approx.record_routing(selection.worker, &block_hashes, now);
        }
        let tracked = SequenceRequest {
            request_id: request.request_id.to_string(),
            block_hashes,
            isl_tokens: request.isl_tokens,
            overlap_blocks: selection.overlap_blocks,
        };
        let added = self.sequences.add_request(selection.worker, tracked, now);
        debug_assert!(added, "duplicates were refused above");
        Ok(selection)
    }

    /// Whether new requests should wait in the queue: `queue_threshold` is set and every
    /// worker's prefill load exceeds it (see [`all_workers_saturated`]).
    pub fn should_queue(&self) -> bool {
        let Some(threshold) = self.selector.config().queue_threshold else {
            return false;
        };
        let loads: Vec<WorkerLoad> = self
            .sequences
            .workers()
            .filter_map(|worker| {
                let load = self.sequences.load(worker)?;
                Some(self.with_capacity(worker, load))
            })
            .collect();
        all_workers_saturated(threshold, &loads)
    }

    /// The request produced its first token.
    pub fn mark_prefill_completed(&mut self, request_id: &str) -> bool {
        self.sequences.mark_prefill_completed(request_id)
    }

    /// The request finished.
    pub fn free(&mut self, request_id: &str) -> bool {
        self.sequences.free(request_id)
    }

    /// Housekeeping: drop stale requests and expired predictions; returns the stale ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        if let Some(approx) = self.approx.as_mut() {
            approx.expire(now);
        }
        self.sequences.expire_stale(now)
    }

    /// The load tracker.
    pub fn sequences(&self) -> &ActiveSequencesMultiWorker {
        &self.sequences
    }

    /// The cache predictor, present when KV events are off or `predicted_ttl_secs` is set.
    pub fn approx(&self) -> Option<&ApproxIndexer> {
        self.approx.as_ref()
    }

    /// The selector (and through it the configuration).
    pub fn selector(&self) -> &WorkerSelector {
        &self.selector
    }

    /// Change the busy thresholds at run time (the `/busy_threshold` admin route).
    pub fn set_busy_thresholds(&mut self, thresholds: BusyThresholds) {
        self.selector.set_busy_thresholds(thresholds);
    }

    fn with_capacity(&self, worker: WorkerWithDpRank, load: WorkerLoad) -> WorkerLoad {
        let capacity = self.capacities.get(&worker).copied().unwrap_or_default();
        WorkerLoad {
            kv_total_blocks: capacity.kv_total_blocks,
            max_num_batched_tokens: capacity.max_num_batched_tokens,
            ..load
        }
    }
}
