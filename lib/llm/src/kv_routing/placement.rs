//! The synchronous core of the KV router: which workers are live, where a request goes, and
//! who waits in the queue.
//!
//! [`Placement`] owns a `stator-kv-router` [`KvScheduler`] (selector, load tracking,
//! reported load, pins, approximate predictor) and adds what only the serving router has:
//! the live instance set as discovery reports it (with the DP ranks seen in events and load
//! reports) and the admission queue that wakes waiting requests in priority order.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use stator_kv_router::config::{BusyThresholds, KvRouterConfig};
use stator_kv_router::protocols::{ActiveLoad, DpRank, OverlapScores, WorkerId, WorkerWithDpRank};
use stator_kv_router::queue::{QueueKey, SchedulerQueue};
use stator_kv_router::selector::{
    KvScheduler, ScheduleError, ScheduleRequest, Selection, WorkerCapacity,
};
use stator_tokens::LocalBlockHash;
use tokio::sync::oneshot;

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

/// Live instances, the scheduler and the wait queue of one KV router.
#[derive(Debug)]
pub(crate) struct Placement {
    scheduler: KvScheduler,
    live: BTreeSet<WorkerId>,
    ranks: BTreeMap<WorkerId, BTreeSet<DpRank>>,
    queue: SchedulerQueue<oneshot::Sender<Admission>>,
    admitting: Arc<AtomicUsize>,
}

impl Placement {
    /// Empty placement for `block_size`-token blocks, sampling from `seed` when given.
    pub fn new(config: KvRouterConfig, block_size: u32, seed: Option<u64>) -> Self {
        let queue = SchedulerQueue::new(config.queue_policy);
        let scheduler = match seed {
            Some(seed) => KvScheduler::with_seed(config, block_size, seed),
            None => KvScheduler::new(config, block_size),
        };
        Self {
            scheduler,
            live: BTreeSet::new(),
            ranks: BTreeMap::new(),
            queue,
            admitting: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// Whether requests may wait (a queue threshold is configured).
    pub fn queue_enabled(&self) -> bool {
        self.scheduler.selector().config().queue_threshold.is_some()
    }

    /// A live instance joined: it and every DP rank seen for it become candidates.
    pub fn add_instance(&mut self, worker_id: WorkerId) {
        if self.live.insert(worker_id) {
            let ranks = self.ranks.entry(worker_id).or_default();
            ranks.insert(0);
            for &rank in ranks.iter() {
                self.scheduler
                    .add_worker(WorkerWithDpRank::new(worker_id, rank));
            }
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
            self.scheduler.add_worker(owner);
        }
    }

    /// An instance left: drop its requests, predictions, load and capacity.
    pub fn remove_instance(&mut self, worker_id: WorkerId) {
        self.live.remove(&worker_id);
        self.ranks.remove(&worker_id);
        self.scheduler.remove_worker(worker_id);
    }

    /// Live instance ids.
    pub fn live(&self) -> impl Iterator<Item = WorkerId> + '_ {
        self.live.iter().copied()
    }

    /// Record a worker's capacity (per DP rank), e.g. from its model card.
    pub fn set_capacity(&mut self, worker_id: WorkerId, capacity: WorkerCapacity) {
        self.scheduler.set_worker_capacity(worker_id, capacity);
    }

    /// The capacity of every instance without one of its own (e.g. from the card the
    /// worker set shares).
    pub fn set_default_capacity(&mut self, capacity: WorkerCapacity) {
        self.scheduler.set_default_capacity(capacity);
    }

    /// The latest load a worker reported on `kv_metrics`.
    pub fn report_load(&mut self, load: ActiveLoad) {
        self.note_rank(WorkerWithDpRank::new(load.worker_id, load.dp_rank));
        self.scheduler.report_load(load);
    }

    /// The busy thresholds in effect.
    pub fn busy_thresholds(&self) -> BusyThresholds {
        self.scheduler.selector().config().busy_thresholds()
    }

    /// Change the busy thresholds (the `/busy_threshold` admin route).
    pub fn set_busy_thresholds(&mut self, thresholds: BusyThresholds) {
        self.scheduler.set_busy_thresholds(thresholds);
    }

    /// Overlaps predicted from routing decisions, merged (per-worker max) into `overlaps`.
    pub fn merge_predicted(
        &mut self,
        overlaps: &mut OverlapScores,
        query: &[LocalBlockHash],
        now: Instant,
    ) {
        self.scheduler.merge_predicted(overlaps, query, now);
    }

    /// Pick a worker for `request` and start tracking it there. `overlaps` are the indexer's
    /// answer (the scheduler merges its own predictions in).
    pub fn place(
        &mut self,
        request: &ScheduleRequest<'_>,
        overlaps: &OverlapScores,
        now: Instant,
    ) -> Result<Selection, ScheduleError> {
        self.scheduler.schedule(request, Some(overlaps), now)
    }

    /// Whether a new request must wait: the queue is on and every live worker is saturated
    /// (prefill over `queue_threshold × max_num_batched_tokens`) or busy.
    pub fn must_wait(&self) -> bool {
        self.scheduler.should_queue()
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
        self.scheduler.mark_prefill_completed(request_id)
    }

    /// The request finished (or failed, or was cancelled).
    pub fn free(&mut self, request_id: &str) -> bool {
        self.scheduler.free(request_id)
    }

    /// Housekeeping: stale requests and expired predictions; returns the stale request ids.
    pub fn expire(&mut self, now: Instant) -> Vec<String> {
        self.scheduler.expire(now)
    }

    /// Requests being tracked.
    pub fn active_requests(&self) -> usize {
        self.scheduler.sequences().len()
    }
}

#[cfg(test)]
mod tests;
