//! [`KvRouter`]: the KV-aware router the frontend's pipeline calls once per request.

use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock};
use rustc_hash::FxHashSet;
use stator_kv_router::ThreadPoolIndexer;
use stator_kv_router::config::{BusyThresholds, KvRouterConfig};
use stator_kv_router::protocols::{OverlapScores, WorkerId};
use stator_kv_router::queue::QueueKey;
use stator_kv_router::selector::{ScheduleError, ScheduleRequest, SelectError, WorkerCapacity};
use stator_runtime::discovery::EventScope;
use stator_runtime::event_plane::{EventSubscriber, SubscriberStats};
use stator_runtime::router::EndpointInstances;
use stator_runtime::{DistributedRuntime, EndpointId, ErrorClass, InstanceId, StatorError};
use stator_tokens::{LocalBlockHash, SaltSeed, block_hashes};
use tokio_util::sync::CancellationToken;

use super::hints::{KvDecision, KvRoutingHints};
use super::placement::{Admission, Placement};
use super::stats::{Counters, KvRouterStats};
use super::{KV_EVENTS_TOPIC, KV_METRICS_TOPIC, tasks};

/// The message of the 529 answer when every worker is over a busy threshold (Dynamo's).
pub const ALL_WORKERS_BUSY: &str = "All workers are busy, please retry later";

/// State shared by the router handle and its background tasks.
pub(crate) struct Shared {
    pub endpoint: EndpointId,
    pub block_size: u32,
    /// The event-driven index; `None` in approximate mode.
    pub index: Option<ThreadPoolIndexer>,
    pub placement: Mutex<Placement>,
    pub counters: Counters,
    /// Workers that left: their late events are dropped instead of re-entering the index.
    pub removed: RwLock<FxHashSet<WorkerId>>,
    /// Event-plane counters of the `kv-events` subscription.
    pub kv_events_stats: Mutex<Option<Arc<SubscriberStats>>>,
}

impl Shared {
    /// Drop a worker that left the instance set from placement and (off the async threads,
    /// since it waits for every writer lane) from the index.
    pub async fn remove_worker(self: &Arc<Self>, worker_id: WorkerId) {
        self.removed.write().insert(worker_id);
        {
            let mut placement = self.placement.lock();
            placement.remove_instance(worker_id);
            placement.pump();
        }
        if self.index.is_some() {
            let shared = Arc::clone(self);
            let removal = tokio::task::spawn_blocking(move || {
                if let Some(index) = &shared.index {
                    index.remove_worker(worker_id);
                }
            });
            if let Err(e) = removal.await {
                tracing::warn!(error = %e, worker_id, "kv router: removing a worker from the index failed");
            }
        }
        Counters::add(&self.counters.workers_removed, 1);
        tracing::info!(endpoint = %self.endpoint, worker_id, "kv router: worker left; its blocks and requests are dropped");
    }
}

/// Cancels the background tasks when the last router handle goes.
struct StopOnDrop(CancellationToken);

impl Drop for StopOnDrop {
    fn drop(&mut self) {
        self.0.cancel();
    }
}

/// KV-cache-aware routing over the live instances of one endpoint.
///
/// It follows the instance set, learns every worker's cache from its `kv-events` (or, in
/// approximate mode, predicts it from its own decisions), tracks the load of the requests it
/// routed, reads the load workers report on `kv_metrics`, and picks the cheapest worker per
/// request with the `stator-kv-router` cost function. See the module docs for an example.
pub struct KvRouter {
    shared: Arc<Shared>,
    _stop: StopOnDrop,
}

impl std::fmt::Debug for KvRouter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KvRouter")
            .field("endpoint", &self.shared.endpoint)
            .field("block_size", &self.shared.block_size)
            .finish_non_exhaustive()
    }
}

/// CPUs this process may run on (affinity mask and cgroup quota), at least 1.
fn available_cpus() -> usize {
    std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get)
}

/// Writer lanes of the index: the `requested` event threads, at least 1 and at most `cpus`.
/// Every lane is one more table that each query searches, and lanes beyond the CPUs add no
/// write throughput (decision D25).
fn index_lanes(requested: usize, cpus: usize) -> usize {
    requested.clamp(1, cpus.max(1))
}

impl KvRouter {
    /// Subscribe to `kv-events` and `kv_metrics` of `endpoint` through the runtime's event
    /// plane, follow the instance set, and build the index: the flash indexer behind the
    /// thread-pool writer (`config.event_threads` lanes, at most one per available CPU), or,
    /// when `config.use_kv_events` is false, only the approximate predictor.
    pub async fn start(
        drt: &DistributedRuntime,
        endpoint: EndpointId,
        instances: EndpointInstances,
        block_size: u32,
        config: KvRouterConfig,
    ) -> Result<Arc<Self>, StatorError> {
        Self::start_with_seed(drt, endpoint, instances, block_size, config, None).await
    }

    /// [`KvRouter::start`] with a seeded sampler (reproducible ties and softmax draws).
    pub async fn start_with_seed(
        drt: &DistributedRuntime,
        endpoint: EndpointId,
        instances: EndpointInstances,
        block_size: u32,
        config: KvRouterConfig,
        seed: Option<u64>,
    ) -> Result<Arc<Self>, StatorError> {
        if block_size == 0 {
            return Err(StatorError::invalid_request(
                "kv router: block size must be positive",
            ));
        }
        let scope = EventScope::Endpoint {
            endpoint: endpoint.clone(),
        };
        let plane = drt.event_plane();
        let subscribe_error = |topic: &str, e| {
            StatorError::unavailable(format!(
                "kv router: cannot subscribe to {topic} of {endpoint}: {e}"
            ))
        };
        let kv_events = if config.use_kv_events {
            Some(
                plane
                    .subscribe(scope.clone(), KV_EVENTS_TOPIC)
                    .await
                    .map_err(|e| subscribe_error(KV_EVENTS_TOPIC, e))?,
            )
        } else {
            None
        };
        let kv_metrics = plane
            .subscribe(scope, KV_METRICS_TOPIC)
            .await
            .map_err(|e| subscribe_error(KV_METRICS_TOPIC, e))?;
        let index = config.use_kv_events.then(|| {
            let lanes = index_lanes(config.event_threads, available_cpus());
            if lanes != config.event_threads {
                tracing::info!(
                    requested = config.event_threads,
                    lanes,
                    "kv router: index event threads capped at the CPUs this process may use"
                );
            }
            ThreadPoolIndexer::new(lanes)
        });
        let shared = Arc::new(Shared {
            endpoint: endpoint.clone(),
            block_size,
            index,
            placement: Mutex::new(Placement::new(config, block_size, seed)),
            counters: Counters::default(),
            removed: RwLock::new(FxHashSet::default()),
            kv_events_stats: Mutex::new(kv_events.as_ref().map(EventSubscriber::stats_handle)),
        });
        let cancel = drt.cancellation_token().child_token();
        if let Some(subscriber) = kv_events {
            tokio::spawn(tasks::ingest_kv_events(
                Arc::clone(&shared),
                subscriber,
                cancel.clone(),
            ));
        }
        tokio::spawn(tasks::ingest_load(
            Arc::clone(&shared),
            kv_metrics,
            cancel.clone(),
        ));
        tasks::follow_instances(Arc::clone(&shared), instances, cancel.clone()).await;
        tokio::spawn(tasks::housekeeping(Arc::clone(&shared), cancel.clone()));
        tracing::info!(%endpoint, block_size, "kv router started");
        Ok(Arc::new(Self {
            shared,
            _stop: StopOnDrop(cancel),
        }))
    }

    /// Pick a worker for a request and start tracking it there.
    ///
    /// When every worker is busy (or saturated) and a queue threshold is configured, the call
    /// waits in the priority queue until one has room; without a queue it fails with a
    /// 529-class [`ErrorClass::CapacityExhausted`] error ("All workers are busy, please retry
    /// later"). No live worker is a 503-class error. Call [`KvRouter::complete`] when the
    /// request ends, whatever the outcome.
    pub async fn schedule(
        &self,
        request_id: &str,
        token_ids: &[u32],
        hints: &KvRoutingHints,
    ) -> Result<KvDecision, StatorError> {
        let seed = SaltSeed::new(hints.cache_salt.as_deref(), hints.lora_name.as_deref());
        let local = block_hashes(token_ids, self.shared.block_size as usize, seed);
        let request = ScheduleRequest {
            request_id,
            local_hashes: &local,
            isl_tokens: token_ids.len() as u64,
            pinned_worker: hints.backend_instance_id.map(|id| id.0),
            pinned_dp_rank: hints.dp_rank,
        };
        let mut arrival: Option<Instant> = None;
        // Set while this request holds the queue's admission (it was woken to place).
        let mut admission: Option<Admission> = None;
        loop {
            let mut overlaps = self.index_overlaps(&local);
            let wait = {
                let mut placement = self.shared.placement.lock();
                let now = Instant::now();
                let queue_enabled = placement.queue_enabled();
                let may_place = !queue_enabled
                    || admission.is_some()
                    || (placement.queue_is_empty() && !placement.must_wait());
                if may_place {
                    match placement.place(&request, &overlaps, now) {
                        Ok(selection) => {
                            drop(admission.take());
                            placement.pump();
                            drop(placement);
                            let c = &self.shared.counters;
                            Counters::add(&c.decisions, 1);
                            Counters::add(&c.prompt_blocks, local.len() as u64);
                            Counters::add(&c.overlap_blocks, u64::from(selection.overlap_blocks));
                            tracing::debug!(
                                request_id,
                                worker = selection.worker.worker_id,
                                dp_rank = selection.worker.dp_rank,
                                overlap_blocks = selection.overlap_blocks,
                                prompt_blocks = local.len(),
                                "kv router: routed"
                            );
                            return Ok(KvDecision {
                                instance_id: InstanceId(selection.worker.worker_id),
                                dp_rank: selection.worker.dp_rank,
                                overlap_blocks: selection.overlap_blocks,
                            });
                        }
                        Err(ScheduleError::Select(SelectError::AllWorkersBusy))
                            if queue_enabled => {}
                        Err(e) => {
                            drop(admission.take());
                            placement.pump();
                            return Err(self.place_error(e));
                        }
                    }
                }
                placement.merge_predicted(&mut overlaps, &local, now);
                let best = overlaps.scores.values().copied().max().unwrap_or(0);
                let cached = u64::from(best) * u64::from(self.shared.block_size);
                let key = QueueKey {
                    strict_priority: hints.strict_priority.unwrap_or(0),
                    priority_jump: f64::from(hints.priority.unwrap_or(0)),
                    effective_prefill_tokens: request.isl_tokens.saturating_sub(cached),
                    arrival: *arrival.get_or_insert(now),
                };
                if admission.take().is_none() {
                    Counters::add(&self.shared.counters.queued, 1);
                }
                placement.enqueue(key)
            };
            match wait.await {
                Ok(granted) => admission = Some(granted),
                Err(_) => {
                    return Err(StatorError::unavailable(
                        "kv router stopped while the request was queued",
                    ));
                }
            }
        }
    }

    /// The request produced its first token: its prompt no longer counts as prefill load.
    pub fn first_token(&self, request_id: &str) {
        let mut placement = self.shared.placement.lock();
        if placement.mark_prefill_completed(request_id) {
            placement.pump();
        }
    }

    /// The request ended (completed, failed or cancelled): release its load. Unknown ids
    /// (already completed, or never placed) are ignored.
    pub fn complete(&self, request_id: &str) {
        let mut placement = self.shared.placement.lock();
        if placement.free(request_id) {
            placement.pump();
        }
    }

    /// Record an instance's capacity (from its model card's `runtime_config`): KV blocks for
    /// the decode busy threshold and the approximate predictor's bound,
    /// `max_num_batched_tokens` for the prefill fraction threshold and the queue.
    pub fn set_worker_capacity(&self, instance_id: InstanceId, capacity: WorkerCapacity) {
        let mut placement = self.shared.placement.lock();
        placement.set_capacity(instance_id.0, capacity);
        placement.pump();
    }

    /// Record the capacity of every instance that has none of its own, now and later (the
    /// `runtime_config` of the card a worker set shares).
    pub fn set_default_worker_capacity(&self, capacity: WorkerCapacity) {
        let mut placement = self.shared.placement.lock();
        placement.set_default_capacity(capacity);
        placement.pump();
    }

    /// The busy thresholds in effect.
    pub fn busy_thresholds(&self) -> BusyThresholds {
        self.shared.placement.lock().busy_thresholds()
    }

    /// Change the busy thresholds at run time (the `/busy_threshold` admin route).
    pub fn set_busy_thresholds(&self, thresholds: BusyThresholds) {
        let mut placement = self.shared.placement.lock();
        placement.set_busy_thresholds(thresholds);
        placement.pump();
    }

    /// For each worker rank, how many leading blocks of this prompt it is believed to cache
    /// (index, plus predictions in approximate mode). Workers with no overlap are absent.
    pub fn overlaps(&self, token_ids: &[u32], hints: &KvRoutingHints) -> OverlapScores {
        let seed = SaltSeed::new(hints.cache_salt.as_deref(), hints.lora_name.as_deref());
        let local = block_hashes(token_ids, self.shared.block_size as usize, seed);
        let mut overlaps = self.index_overlaps(&local);
        self.shared
            .placement
            .lock()
            .merge_predicted(&mut overlaps, &local, Instant::now());
        overlaps
    }

    /// Wait until every KV event received so far is applied to the index (a barrier over the
    /// writer lanes; immediate in approximate mode).
    pub async fn flush(&self) {
        if self.shared.index.is_none() {
            return;
        }
        let shared = Arc::clone(&self.shared);
        let barrier = tokio::task::spawn_blocking(move || {
            if let Some(index) = &shared.index {
                index.flush();
            }
        });
        if let Err(e) = barrier.await {
            tracing::warn!(error = %e, "kv router: index flush failed");
        }
    }

    /// The live instances the router routes over.
    pub fn instances(&self) -> Vec<InstanceId> {
        self.shared
            .placement
            .lock()
            .live()
            .map(InstanceId)
            .collect()
    }

    /// A snapshot of the router's counters and gauges.
    pub fn stats(&self) -> KvRouterStats {
        let mut stats = KvRouterStats::from_counters(&self.shared.counters);
        if let Some(index) = &self.shared.index {
            stats.events_rejected = index.error_count();
        }
        if let Some(plane) = self.shared.kv_events_stats.lock().as_ref() {
            let snapshot = plane.snapshot();
            stats.sequence_gaps = snapshot.gaps;
            stats.sequence_missed = snapshot.missed;
        }
        let placement = self.shared.placement.lock();
        stats.queue_depth = placement.queue_len() as u64;
        stats.active_requests = placement.active_requests() as u64;
        stats.workers = placement.live().count() as u64;
        stats
    }

    fn index_overlaps(&self, local: &[LocalBlockHash]) -> OverlapScores {
        self.shared
            .index
            .as_ref()
            .map(|index| index.find_matches(local))
            .unwrap_or_default()
    }

    fn place_error(&self, error: ScheduleError) -> StatorError {
        match error {
            ScheduleError::Select(SelectError::AllWorkersBusy) => {
                Counters::add(&self.shared.counters.rejected_busy, 1);
                StatorError::new(ErrorClass::CapacityExhausted, ALL_WORKERS_BUSY)
                    .public_message(ALL_WORKERS_BUSY)
            }
            ScheduleError::Select(SelectError::NoWorkers) => StatorError::unavailable(format!(
                "no instances of {} are available",
                self.shared.endpoint
            )),
            ScheduleError::UnknownWorker(id) => StatorError::unavailable(format!(
                "instance {} of {} is not available",
                InstanceId(id),
                self.shared.endpoint
            )),
            ScheduleError::DuplicateRequest(id) => {
                StatorError::internal(format!("kv router: request {id} is already being routed"))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::index_lanes;

    #[test]
    fn index_lanes_stay_between_one_and_the_cpus() {
        assert_eq!(index_lanes(4, 2), 2);
        assert_eq!(index_lanes(4, 16), 4);
        assert_eq!(index_lanes(0, 8), 1);
        assert_eq!(index_lanes(3, 0), 1);
    }
}
