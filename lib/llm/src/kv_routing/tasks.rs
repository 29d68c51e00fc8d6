//! The router's background tasks: KV event ingestion, load reports, the instance set, and
//! housekeeping. Each runs until the router is dropped (or the runtime shuts down).

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::{Duration, Instant};

use rustc_hash::FxHashSet;
use stator_kv_router::protocols::{ActiveLoad, KvEventsPayload, WorkerId, WorkerWithDpRank};
use stator_kv_router::{RouterEvent, ThreadPoolIndexer};
use stator_runtime::event_plane::EventSubscriber;
use stator_runtime::router::EndpointInstances;
use tokio_util::sync::CancellationToken;

use super::event_ids::{EventIdCheck, EventIdTracker};
use super::router::Shared;
use super::stats::Counters;

/// How often stale requests and expired predictions are dropped and the queue re-checked.
const HOUSEKEEPING_INTERVAL: Duration = Duration::from_millis(100);

/// Feed every `kv-events` event into the index (an enqueue on the owner's writer lane; the
/// lanes apply it on their own threads), checking event ids per owner on the way.
pub(crate) async fn ingest_kv_events(
    shared: Arc<Shared>,
    mut subscriber: EventSubscriber,
    cancel: CancellationToken,
) {
    let Some(index) = shared.index.as_ref() else {
        return;
    };
    let mut ids = EventIdTracker::default();
    let mut known: FxHashSet<WorkerWithDpRank> = FxHashSet::default();
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            next = subscriber.next_typed::<KvEventsPayload>() => next,
        };
        let events = match next {
            None => return,
            Some(Err(e)) => {
                Counters::add(&shared.counters.decode_errors, 1);
                tracing::warn!(error = %e, endpoint = %shared.endpoint, "kv router: undecodable kv event");
                continue;
            }
            Some(Ok((_, payload))) => payload.into_events(),
        };
        for event in events {
            if !ingest_one(&shared, index, &mut ids, &mut known, event) {
                return;
            }
        }
    }
}

/// Checks one event's id and hands it to the index; `false` once the index has stopped.
fn ingest_one(
    shared: &Shared,
    index: &ThreadPoolIndexer,
    ids: &mut EventIdTracker,
    known: &mut FxHashSet<WorkerWithDpRank>,
    event: RouterEvent,
) -> bool {
    let counters = &shared.counters;
    let owner = event.owner();
    if shared.removed.read().contains(&owner.worker_id) {
        ids.remove_worker(owner.worker_id);
        Counters::add(&counters.events_dropped, 1);
        return true;
    }
    match ids.observe(owner, event.event.event_id) {
        EventIdCheck::InOrder => {}
        EventIdCheck::Gap(missed) => {
            Counters::add(&counters.event_id_gaps, 1);
            Counters::add(&counters.event_ids_missed, missed);
            tracing::warn!(
                worker_id = owner.worker_id,
                dp_rank = owner.dp_rank,
                event_id = event.event.event_id,
                missed,
                "kv router: kv event id gap; the index may be stale for this worker"
            );
        }
        EventIdCheck::Stale => {
            Counters::add(&counters.event_ids_stale, 1);
            tracing::debug!(
                worker_id = owner.worker_id,
                event_id = event.event.event_id,
                "kv router: kv event id not above the last one"
            );
        }
    }
    if known.insert(owner) {
        shared.placement.lock().note_rank(owner);
    }
    match index.apply_event(event) {
        Ok(()) => {
            Counters::add(&counters.events_applied, 1);
            true
        }
        Err(e) => {
            tracing::warn!(error = %e, "kv router: the indexer stopped");
            false
        }
    }
}

/// Keep the last load each worker reported on `kv_metrics`.
pub(crate) async fn ingest_load(
    shared: Arc<Shared>,
    mut subscriber: EventSubscriber,
    cancel: CancellationToken,
) {
    loop {
        let next = tokio::select! {
            () = cancel.cancelled() => return,
            next = subscriber.next_typed::<ActiveLoad>() => next,
        };
        match next {
            None => return,
            Some(Err(e)) => {
                Counters::add(&shared.counters.decode_errors, 1);
                tracing::warn!(error = %e, endpoint = %shared.endpoint, "kv router: undecodable load report");
            }
            Some(Ok((_, load))) => {
                Counters::add(&shared.counters.metrics_received, 1);
                if shared.removed.read().contains(&load.worker_id) {
                    continue;
                }
                let mut placement = shared.placement.lock();
                placement.report_load(load);
                placement.pump();
            }
        }
    }
}

/// Apply the current instance set, then follow its changes in a background task: joins
/// become candidates, departures leave the index, the load tracking and the predictor.
pub(crate) async fn follow_instances(
    shared: Arc<Shared>,
    instances: EndpointInstances,
    cancel: CancellationToken,
) {
    let mut current = apply_instances(&shared, &instances, &BTreeSet::new()).await;
    tokio::spawn(async move {
        loop {
            let alive = tokio::select! {
                () = cancel.cancelled() => return,
                alive = instances.changed() => alive,
            };
            if !alive {
                return;
            }
            current = apply_instances(&shared, &instances, &current).await;
        }
    });
}

async fn apply_instances(
    shared: &Arc<Shared>,
    instances: &EndpointInstances,
    previous: &BTreeSet<WorkerId>,
) -> BTreeSet<WorkerId> {
    let now: BTreeSet<WorkerId> = instances.list().iter().map(|entry| entry.id.0).collect();
    for &gone in previous.difference(&now) {
        shared.remove_worker(gone).await;
    }
    let joined: Vec<WorkerId> = now.difference(previous).copied().collect();
    if !joined.is_empty() {
        // A worker that comes back (a discovery record that lapsed and returned) may publish
        // again; what it cached before it left is gone from the index.
        shared.removed.write().retain(|id| !joined.contains(id));
        let mut placement = shared.placement.lock();
        for &id in &joined {
            placement.add_instance(id);
            tracing::info!(endpoint = %shared.endpoint, worker_id = id, "kv router: worker joined");
        }
        placement.pump();
    }
    now
}

/// Drop stale requests and expired predictions, and wake queued requests whose wake-up was
/// lost (a waiter cancelled between its wake-up and its placement).
pub(crate) async fn housekeeping(shared: Arc<Shared>, cancel: CancellationToken) {
    let mut tick = tokio::time::interval(HOUSEKEEPING_INTERVAL);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = cancel.cancelled() => break,
            _ = tick.tick() => {}
        }
        let mut placement = shared.placement.lock();
        let stale = placement.expire(Instant::now());
        placement.pump();
        drop(placement);
        if !stale.is_empty() {
            tracing::warn!(
                count = stale.len(),
                "kv router: dropped requests that were never completed"
            );
        }
    }
    shared.placement.lock().close_queue();
}
