//! The synchronous core of the KV router: which workers are candidates, what load they carry,
//! which one a request goes to, and who waits in the queue.
//!
//! [`Placement`] composes the `stator-kv-router` building blocks directly (selector, active
//! sequences, approximate predictor, scheduler queue) instead of going through
//! `KvScheduler`, because the router needs three things that scheduler does not offer:
//! candidates limited to the live instance set (and to a pinned instance), busy detection fed
//! by the load workers report on `kv_metrics` as well as by the router's own tracking, and
//! the queue.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rand::SeedableRng;
use rand::rngs::StdRng;
use rustc_hash::FxHashMap;
use stator_kv_router::approx::ApproxIndexer;
use stator_kv_router::config::{ApproxCachePolicy, BusyThresholds, KvRouterConfig};
use stator_kv_router::protocols::{ActiveLoad, DpRank, OverlapScores, WorkerId, WorkerWithDpRank};
use stator_kv_router::queue::{QueueKey, SchedulerQueue, all_workers_saturated};
use stator_kv_router::selector::{
    RequestShape, Selection, WorkerCapacity, WorkerLoad, WorkerSelector, sample_index,
};
use stator_kv_router::sequences::{ActiveSequencesMultiWorker, SequenceRequest};
use stator_tokens::{LocalBlockHash, SequenceHash};
use tokio::sync::oneshot;

/// A request as placement sees it: hashes computed, hints resolved.
#[derive(Debug, Clone, Copy)]
pub(crate) struct PlaceRequest<'a> {
    pub request_id: &'a str,
    pub seq_hashes: &'a [SequenceHash],
    pub isl_tokens: u64,
    /// Only this worker may serve it (busy thresholds do not apply).
    pub pinned: Option<WorkerId>,
    /// With `pinned`: only this DP rank.
    pub dp_rank: Option<DpRank>,
}

/// Why a request was not placed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum PlaceError {
    /// No live instance.
    NoWorkers,
    /// The pinned instance (or rank) is not live.
    PinnedUnknown(WorkerId),
    /// Every live instance is over a busy threshold.
    AllBusy,
    /// A request with this id is already active.
    Duplicate(String),
}

/// A woken waiter's right to place its request. While one is alive no other waiter is woken,
/// so waiters leave the queue in its order; dropping it (placed, re-queued, or given up)
/// lets the next one go.
#[derive(Debug)]
pub(crate) struct Admission(Arc<AtomicUsize>);

impl Admission {
    fn new(admitting: &Arc<AtomicUsize>) -> Self {
        admitting.fetch_add(1, Ordering::AcqRel);
        Self(Arc::clone(admitting))
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::AcqRel);
    }
}

/// Candidates, load, predictions and the wait queue of one KV router.
#[derive(Debug)]
pub(crate) struct Placement {
    selector: WorkerSelector,
    block_size: u32,
    sequences: ActiveSequencesMultiWorker,
    approx: Option<ApproxIndexer>,
    live: BTreeSet<WorkerId>,
    ranks: BTreeMap<WorkerId, BTreeSet<DpRank>>,
    capacities: FxHashMap<WorkerId, WorkerCapacity>,
    default_capacity: WorkerCapacity,
    reported: FxHashMap<WorkerWithDpRank, ActiveLoad>,
    queue: SchedulerQueue<oneshot::Sender<Admission>>,
    admitting: Arc<AtomicUsize>,
    rng: StdRng,
}

impl Placement {
    /// Empty placement for `block_size`-token blocks. The predictor exists without KV events
    /// (approximate mode) or, next to them, when `predicted_ttl_secs` is set.
    pub fn new(config: KvRouterConfig, block_size: u32, seed: Option<u64>) -> Self {
        let approx = if config.use_kv_events {
            config.predicted_ttl_secs.map(|ttl| {
                ApproxIndexer::new(&KvRouterConfig {
                    router_ttl_secs: ttl,
                    approx_cache_policy: ApproxCachePolicy::Ttl,
                    ..config.clone()
                })
            })
        } else {
            Some(ApproxIndexer::new(&config))
        };
        let rng = seed.map_or_else(StdRng::from_os_rng, StdRng::seed_from_u64);
        Self {
            sequences: ActiveSequencesMultiWorker::new(block_size, &config),
            queue: SchedulerQueue::new(config.queue_policy),
            admitting: Arc::new(AtomicUsize::new(0)),
            selector: WorkerSelector::new(config),
            block_size,
            approx,
            live: BTreeSet::new(),
            ranks: BTreeMap::new(),
            capacities: FxHashMap::default(),
            default_capacity: WorkerCapacity::default(),
            reported: FxHashMap::default(),
            rng,
        }
    }

    /// Whether requests may wait (a queue threshold is configured).
    pub fn queue_enabled(&self) -> bool {
        self.selector.config().queue_threshold.is_some()
    }

    /// A live instance joined.
    pub fn add_instance(&mut self, worker_id: WorkerId) {
        if self.live.insert(worker_id) {
            let ranks = self.ranks.entry(worker_id).or_default();
            ranks.insert(0);
            for &rank in ranks.iter() {
                self.sequences
                    .add_worker(WorkerWithDpRank::new(worker_id, rank));
            }
            self.apply_capacity(worker_id);
        }
    }

    /// A DP rank of a worker showed up in its events or load.
    pub fn note_rank(&mut self, owner: WorkerWithDpRank) {
        if self
            .ranks
            .entry(owner.worker_id)
            .or_default()
            .insert(owner.dp_rank)
            && self.live.contains(&owner.worker_id)
        {
            self.sequences.add_worker(owner);
            self.apply_capacity(owner.worker_id);
        }
    }

    /// An instance left: drop its requests, predictions, load and capacity.
    pub fn remove_instance(&mut self, worker_id: WorkerId) {
        self.live.remove(&worker_id);
        for rank in self.ranks.remove(&worker_id).unwrap_or_default() {
            self.sequences
                .remove_worker(WorkerWithDpRank::new(worker_id, rank));
        }
        self.capacities.remove(&worker_id);
        self.reported
            .retain(|owner, _| owner.worker_id != worker_id);
        if let Some(approx) = self.approx.as_mut() {
            approx.remove_worker(worker_id);
        }
    }

    /// Live instance ids.
    pub fn live(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.live.iter().copied()
    }

    /// Record a worker's capacity (per DP rank), e.g. from its model card.
    pub fn set_capacity(&mut self, worker_id: WorkerId, capacity: WorkerCapacity) {
        self.capacities.insert(worker_id, capacity);
        self.apply_capacity(worker_id);
    }

    /// The capacity of every instance without one of its own (e.g. from the card the
    /// worker set shares).
    pub fn set_default_capacity(&mut self, capacity: WorkerCapacity) {
        self.default_capacity = capacity;
        let live: Vec<WorkerId> = self.live.iter().copied().collect();
        for worker_id in live {
            self.apply_capacity(worker_id);
        }
    }

    fn capacity_of(&self, worker_id: WorkerId) -> WorkerCapacity {
        self.capacities
            .get(&worker_id)
            .copied()
            .unwrap_or(self.default_capacity)
    }

    fn apply_capacity(&mut self, worker_id: WorkerId) {
        let Some(blocks) = self.capacity_of(worker_id).kv_total_blocks else {
            return;
        };
        let Some(approx) = self.approx.as_mut() else {
            return;
        };
        let blocks = usize::try_from(blocks).unwrap_or(usize::MAX);
        for &rank in self.ranks.get(&worker_id).into_iter().flatten() {
            approx.set_worker_capacity(WorkerWithDpRank::new(worker_id, rank), blocks);
        }
    }

    /// The latest load a worker reported on `kv_metrics`.
    pub fn report_load(&mut self, load: ActiveLoad) {
        let owner = WorkerWithDpRank::new(load.worker_id, load.dp_rank);
        self.note_rank(owner);
        self.reported.insert(owner, load);
    }

    /// The busy thresholds in effect.
    pub fn busy_thresholds(&self) -> BusyThresholds {
        self.selector.config().busy_thresholds()
    }

    /// Change the busy thresholds (the `/busy_threshold` admin route).
    pub fn set_busy_thresholds(&mut self, thresholds: BusyThresholds) {
        self.selector.set_busy_thresholds(thresholds);
    }

    /// Overlaps predicted from routing decisions, merged (per-worker max) into `overlaps`.
    pub fn merge_predicted(
        &mut self,
        overlaps: &mut OverlapScores,
        query: &[LocalBlockHash],
        now: Instant,
    ) {
        if let Some(approx) = self.approx.as_mut() {
            approx.expire(now);
            for (worker, depth) in approx.find_matches(query).scores {
                let entry = overlaps.scores.entry(worker).or_insert(0);
                *entry = (*entry).max(depth);
            }
        }
    }

    /// Every live (worker, rank), or only the pinned worker's (rank).
    fn candidates(&self, request: &PlaceRequest<'_>) -> Result<Vec<WorkerWithDpRank>, PlaceError> {
        let ranks_of = |worker_id: WorkerId| {
            self.ranks
                .get(&worker_id)
                .into_iter()
                .flatten()
                .map(move |&rank| WorkerWithDpRank::new(worker_id, rank))
        };
        if let Some(pinned) = request.pinned {
            if !self.live.contains(&pinned) {
                return Err(PlaceError::PinnedUnknown(pinned));
            }
            let chosen: Vec<_> = ranks_of(pinned)
                .filter(|owner| request.dp_rank.is_none_or(|rank| rank == owner.dp_rank))
                .collect();
            return if chosen.is_empty() {
                Err(PlaceError::PinnedUnknown(pinned))
            } else {
                Ok(chosen)
            };
        }
        let all: Vec<_> = self.live.iter().flat_map(|&id| ranks_of(id)).collect();
        if all.is_empty() {
            Err(PlaceError::NoWorkers)
        } else {
            Ok(all)
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

    /// Busy by the router's own tracking or by the worker's last reported load.
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

    /// Pick a worker for `request` and start tracking it there.
    pub fn place(
        &mut self,
        request: &PlaceRequest<'_>,
        overlaps: &OverlapScores,
        now: Instant,
    ) -> Result<Selection, PlaceError> {
        if self.sequences.worker_of(request.request_id).is_some() {
            return Err(PlaceError::Duplicate(request.request_id.to_owned()));
        }
        let candidates = self.candidates(request)?;
        let loads: FxHashMap<WorkerWithDpRank, WorkerLoad> = self
            .sequences
            .potential_blocks_and_tokens(request.seq_hashes)
            .into_iter()
            .collect();
        let candidate_loads: Vec<(WorkerWithDpRank, WorkerLoad)> = candidates
            .iter()
            .map(|&worker| {
                let load = loads.get(&worker).copied().unwrap_or(WorkerLoad {
                    new_decode_blocks: request.seq_hashes.len() as u64,
                    ..WorkerLoad::default()
                });
                (worker, self.with_capacity(worker, load))
            })
            .collect();
        let shape = RequestShape {
            isl_tokens: request.isl_tokens,
            block_size: self.block_size,
        };
        let eligible: Vec<_> = self
            .selector
            .costs(&shape, overlaps, &candidate_loads)
            .into_iter()
            .zip(&candidate_loads)
            .filter(|(_, (worker, load))| request.pinned.is_some() || !self.is_busy(*worker, load))
            .map(|(cost, _)| cost)
            .collect();
        let logits: Vec<f64> = eligible.iter().map(|cost| cost.logit).collect();
        let index = sample_index(&logits, self.selector.config().temperature, &mut self.rng)
            .ok_or(PlaceError::AllBusy)?;
        let chosen = eligible[index];
        if let Some(approx) = self.approx.as_mut() {
            approx.record_routing(chosen.worker, request.seq_hashes, now);
        }
        let tracked = SequenceRequest {
            request_id: request.request_id.to_owned(),
            block_hashes: request.seq_hashes.to_vec(),
            isl_tokens: request.isl_tokens,
            overlap_blocks: chosen.overlap_blocks,
        };
        let added = self.sequences.add_request(chosen.worker, tracked, now);
        debug_assert!(added, "duplicates were refused above");
        Ok(Selection {
            worker: chosen.worker,
            overlap_blocks: chosen.overlap_blocks,
            logit: chosen.logit,
        })
    }

    /// Whether a new request must wait: the queue is on and every live worker is saturated
    /// (prefill over `queue_threshold × max_num_batched_tokens`) or busy.
    pub fn must_wait(&self) -> bool {
        let Some(threshold) = self.selector.config().queue_threshold else {
            return false;
        };
        let loads: Vec<(WorkerWithDpRank, WorkerLoad)> = self
            .live
            .iter()
            .flat_map(|&id| {
                self.ranks
                    .get(&id)
                    .into_iter()
                    .flatten()
                    .map(move |&rank| WorkerWithDpRank::new(id, rank))
            })
            .map(|worker| {
                let load = self.sequences.load(worker).unwrap_or_default();
                (worker, self.with_capacity(worker, load))
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

    /// Whether nobody waits.
    pub fn queue_is_empty(&self) -> bool {
        self.queue.is_empty()
    }

    /// Requests waiting.
    pub fn queue_len(&self) -> usize {
        self.queue.len()
    }

    /// Queue a request; the receiver fires when it may try again.
    pub fn enqueue(&mut self, key: QueueKey) -> oneshot::Receiver<Admission> {
        let (tx, rx) = oneshot::channel();
        self.queue.push(tx, key);
        rx
    }

    /// Wake the next waiter if there is room; waiters that gave up are skipped.
    pub fn pump(&mut self) {
        while self.admitting.load(Ordering::Acquire) == 0
            && !self.queue.is_empty()
            && !self.must_wait()
        {
            let Some(waiter) = self.queue.pop() else {
                return;
            };
            // A waiter that gave up hands the admission back (dropped with the error).
            if waiter.send(Admission::new(&self.admitting)).is_ok() {
                return;
            }
        }
    }

    /// Close the queue: every waiter's receiver errors.
    pub fn close_queue(&mut self) {
        self.queue.drain();
    }

    /// The request produced its first token.
    pub fn mark_prefill_completed(&mut self, request_id: &str) -> bool {
        self.sequences.mark_prefill_completed(request_id)
    }

    /// The request finished (or failed, or was cancelled).
    pub fn free(&mut self, request_id: &str) -> bool {
        self.sequences.free(request_id)
    }

    /// Housekeeping: stale requests and expired predictions; returns the stale request ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        if let Some(approx) = self.approx.as_mut() {
            approx.expire(now);
        }
        self.sequences.expire_stale(now)
    }

    /// Requests being tracked.
    pub fn active_requests(&self) -> usize {
        self.sequences.len()
    }
}

#[cfg(test)]
mod tests;
