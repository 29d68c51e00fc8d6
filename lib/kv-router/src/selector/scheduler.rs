//! [`KvScheduler`]: the selector wired to active-sequence tracking and, without KV events, to
//! the approximate-mode predictor. Not synchronized: share it behind a lock.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use rustc_hash::{FxHashMap, FxHashSet};
use stator_tokens::{LocalBlockHash, sequence_hashes};

use super::{RequestShape, SelectError, Selection, WorkerLoad, WorkerSelector};
use crate::approx::ApproxIndexer;
use crate::config::{ApproxCachePolicy, BusyThresholds, KvRouterConfig};
use crate::protocols::{ActiveLoad, DpRank, OverlapScores, WorkerId, WorkerWithDpRank};
use crate::queue::all_workers_saturated;
use crate::sequences::{ActiveSequencesMultiWorker, SequenceRequest};

/// A request to place.
#[derive(Debug, Clone, Copy, Default)]
pub struct ScheduleRequest<'a> {
    /// Unique id among active requests.
    pub request_id: &'a str,
    /// Local hashes of the prompt's complete blocks.
    pub local_hashes: &'a [LocalBlockHash],
    /// Input sequence length in tokens.
    pub isl_tokens: u64,
    /// Only this worker may serve it (busy thresholds do not apply), e.g. the client's
    /// `backend_instance_id`.
    pub pinned_worker: Option<WorkerId>,
    /// With `pinned_worker`: only this DP rank of it.
    pub pinned_dp_rank: Option<DpRank>,
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
    /// The pinned worker (or its pinned rank) is not registered.
    #[error("worker {0} is not available")]
    UnknownWorker(WorkerId),
}

/// Capacity facts a worker advertises (used by busy detection and queueing).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct WorkerCapacity {
    /// KV cache size in blocks (per DP rank).
    pub kv_total_blocks: Option<u64>,
    /// The engine's `max_num_batched_tokens` (per DP rank).
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
/// let request = |id| ScheduleRequest {
///     request_id: id,
///     local_hashes: &local,
///     isl_tokens: 16,
///     ..ScheduleRequest::default()
/// };
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
    capacities: FxHashMap<WorkerId, WorkerCapacity>,
    default_capacity: WorkerCapacity,
    reported: FxHashMap<WorkerWithDpRank, ActiveLoad>,
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
            capacities: FxHashMap::default(),
            default_capacity: WorkerCapacity::default(),
            reported: FxHashMap::default(),
            rng,
        }
    }

    /// Make a worker (one DP rank of it) a candidate.
    pub fn add_worker(&mut self, worker: WorkerWithDpRank) {
        self.sequences.add_worker(worker);
        self.apply_capacity(worker);
    }

    /// Whether `worker` is a candidate.
    pub fn has_worker(&self, worker: WorkerWithDpRank) -> bool {
        self.sequences.load(worker).is_some()
    }

    /// Every candidate.
    pub fn workers(&self) -> impl Iterator<Item = WorkerWithDpRank> + '_ {
        self.sequences.workers()
    }

    /// Record the capacity every DP rank of `worker_id` advertises (the predictor is bounded
    /// by its KV size too).
    pub fn set_worker_capacity(&mut self, worker_id: WorkerId, capacity: WorkerCapacity) {
        self.capacities.insert(worker_id, capacity);
        self.apply_capacity_to(worker_id);
    }

    /// The capacity of every worker without one of its own (e.g. from the model card the
    /// worker set shares).
    pub fn set_default_capacity(&mut self, capacity: WorkerCapacity) {
        self.default_capacity = capacity;
        let ids: FxHashSet<WorkerId> = self.workers().map(|w| w.worker_id).collect();
        for worker_id in ids {
            self.apply_capacity_to(worker_id);
        }
    }

    /// The latest load a worker reported itself (Dynamo's `kv_metrics`): busy detection
    /// takes it into account next to the scheduler's own tracking.
    pub fn report_load(&mut self, load: ActiveLoad) {
        self.reported
            .insert(WorkerWithDpRank::new(load.worker_id, load.dp_rank), load);
    }

    /// Drop every DP rank of a worker, with its requests, predictions, reported load and
    /// capacity.
    pub fn remove_worker(&mut self, worker_id: WorkerId) {
        for worker in self.ranks_of(worker_id) {
            self.sequences.remove_worker(worker);
        }
        self.capacities.remove(&worker_id);
        self.reported
            .retain(|owner, _| owner.worker_id != worker_id);
        if let Some(approx) = self.approx.as_mut() {
            approx.remove_worker(worker_id);
        }
    }

    /// Merge the overlaps the scheduler predicts from its own routing decisions (when it
    /// predicts: no KV events, or `predicted_ttl_secs`) into `overlaps`, per worker the
    /// larger answer.
    pub fn merge_predicted(
        &mut self,
        overlaps: &mut OverlapScores,
        local_hashes: &[LocalBlockHash],
        now: Instant,
    ) {
        if let Some(approx) = self.approx.as_mut() {
            approx.expire(now);
            for (worker, depth) in approx.find_matches(local_hashes).scores {
                let entry = overlaps.scores.entry(worker).or_insert(0);
                *entry = (*entry).max(depth);
            }
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
        let candidates = self.candidates(request)?;
        let block_hashes = sequence_hashes(request.local_hashes);
        let mut overlaps = indexer_overlaps.cloned().unwrap_or_default();
        self.merge_predicted(&mut overlaps, request.local_hashes, now);
        let loads: FxHashMap<WorkerWithDpRank, WorkerLoad> = self
            .sequences
            .potential_blocks_and_tokens(&block_hashes)
            .into_iter()
            .collect();
        let candidate_loads: Vec<(WorkerWithDpRank, WorkerLoad)> = candidates
            .into_iter()
            .map(|worker| {
                let load = loads.get(&worker).copied().unwrap_or(WorkerLoad {
                    new_decode_blocks: block_hashes.len() as u64,
                    ..WorkerLoad::default()
                });
                (worker, self.with_capacity(worker, load))
            })
            .collect();
        let shape = RequestShape {
            isl_tokens: request.isl_tokens,
            block_size: self.block_size,
        };
        let mut costs = self.selector.costs(&shape, &overlaps, &candidate_loads);
        for (cost, (worker, load)) in costs.iter_mut().zip(&candidate_loads) {
            cost.busy = request.pinned_worker.is_none() && self.is_busy(*worker, load);
        }
        let selection = self.selector.pick(costs, &mut self.rng)?;
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
    /// worker is saturated (see [`all_workers_saturated`]) or busy.
    pub fn should_queue(&self) -> bool {
        let Some(threshold) = self.selector.config().queue_threshold else {
            return false;
        };
        let loads: Vec<(WorkerWithDpRank, WorkerLoad)> = self
            .sequences
            .workers()
            .filter_map(|worker| {
                let load = self.sequences.load(worker)?;
                Some((worker, self.with_capacity(worker, load)))
            })
            .collect();
        if loads.is_empty() {
            return false;
        }
        all_workers_saturated(threshold, loads.iter().map(|(_, load)| load))
            || loads
                .iter()
                .all(|(worker, load)| self.is_busy(*worker, load))
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

    /// Every candidate, or only the pinned worker's (rank).
    fn candidates(
        &self,
        request: &ScheduleRequest<'_>,
    ) -> Result<Vec<WorkerWithDpRank>, ScheduleError> {
        let Some(pinned) = request.pinned_worker else {
            let all: Vec<_> = self.sequences.workers().collect();
            return if all.is_empty() {
                Err(SelectError::NoWorkers.into())
            } else {
                Ok(all)
            };
        };
        let chosen: Vec<_> = self
            .sequences
            .workers()
            .filter(|worker| {
                worker.worker_id == pinned
                    && request
                        .pinned_dp_rank
                        .is_none_or(|rank| rank == worker.dp_rank)
            })
            .collect();
        if chosen.is_empty() {
            Err(ScheduleError::UnknownWorker(pinned))
        } else {
            Ok(chosen)
        }
    }

    /// Busy by the scheduler's own tracking or by the worker's last reported load.
    fn is_busy(&self, worker: WorkerWithDpRank, tracked: &WorkerLoad) -> bool {
        if self.selector.is_busy(tracked) {
            return true;
        }
        self.reported.get(&worker).is_some_and(|reported| {
            let load = WorkerLoad {
                active_decode_blocks: reported.active_decode_blocks.unwrap_or(0),
                active_prefill_tokens: reported.active_prefill_tokens.unwrap_or(0),
                ..*tracked
            };
            self.selector.is_busy(&load)
        })
    }

    /// The registered DP ranks of `worker_id`.
    fn ranks_of(&self, worker_id: WorkerId) -> Vec<WorkerWithDpRank> {
        self.sequences
            .workers()
            .filter(|worker| worker.worker_id == worker_id)
            .collect()
    }

    fn capacity_of(&self, worker_id: WorkerId) -> WorkerCapacity {
        self.capacities
            .get(&worker_id)
            .copied()
            .unwrap_or(self.default_capacity)
    }

    fn apply_capacity_to(&mut self, worker_id: WorkerId) {
        for worker in self.ranks_of(worker_id) {
            self.apply_capacity(worker);
        }
    }

    fn apply_capacity(&mut self, worker: WorkerWithDpRank) {
        let blocks = self.capacity_of(worker.worker_id).kv_total_blocks;
        if let (Some(approx), Some(blocks)) = (self.approx.as_mut(), blocks) {
            approx.set_worker_capacity(worker, usize::try_from(blocks).unwrap_or(usize::MAX));
        }
    }

    fn with_capacity(&self, worker: WorkerWithDpRank, load: WorkerLoad) -> WorkerLoad {
        let capacity = self.capacity_of(worker.worker_id);
        WorkerLoad {
            kv_total_blocks: capacity.kv_total_blocks,
            max_num_batched_tokens: capacity.max_num_batched_tokens,
            ..load
        }
    }
}
