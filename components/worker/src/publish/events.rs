//! KV events and load metrics of a mocker worker on the event plane.
//!
//! Every [`RouterEvent`] the simulator emits goes out as its own event on [`KV_EVENTS_TOPIC`];
//! the load goes out as an [`ActiveLoad`] on [`KV_METRICS_TOPIC`] whenever it changes and every
//! [`LOAD_REFRESH`] regardless, so a router that subscribes late still learns it. Both topics
//! live in the scope of the worker's endpoint; the event plane adds Dynamo's envelope.

use std::time::Duration;

use futures::StreamExt;
use serde::{Deserialize, Serialize};
use stator_kv_router::RouterEvent;
use stator_kv_router::protocols::{DpRank, WorkerId};
use stator_mocker::LoadMetrics;
use stator_runtime::event_plane::EventPublisher;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Topic of KV cache events (`RouterEvent`).
pub const KV_EVENTS_TOPIC: &str = "kv-events";
/// Topic of load metrics (`ActiveLoad`).
pub const KV_METRICS_TOPIC: &str = "kv_metrics";
/// How often the load is re-published even when it did not change.
pub const LOAD_REFRESH: Duration = Duration::from_secs(1);

/// A worker's load as the KV router consumes it (Dynamo's `ActiveLoad`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ActiveLoad {
    /// The worker's instance id.
    pub worker_id: WorkerId,
    /// Its data-parallel rank.
    pub dp_rank: DpRank,
    /// KV blocks held by running sequences.
    pub active_decode_blocks: Option<u64>,
    /// Prompt tokens still to prefill.
    pub active_prefill_tokens: Option<u64>,
    /// KV blocks in use.
    pub kv_used_blocks: Option<u64>,
}

impl From<LoadMetrics> for ActiveLoad {
    fn from(load: LoadMetrics) -> Self {
        Self {
            worker_id: load.worker_id,
            dp_rank: load.dp_rank,
            active_decode_blocks: Some(load.active_decode_blocks),
            active_prefill_tokens: Some(load.active_prefill_tokens),
            kv_used_blocks: Some(load.kv_used_blocks),
        }
    }
}

/// Publishes every KV event batch from `events` (one receiver per DP rank) until `cancel`
/// fires or the simulators stop, then withdraws the publisher's channel.
pub async fn forward_kv_events(
    publisher: EventPublisher,
    events: Vec<mpsc::UnboundedReceiver<Vec<RouterEvent>>>,
    cancel: CancellationToken,
) {
    let mut batches = futures::stream::select_all(events.into_iter().map(|rx| {
        futures::stream::unfold(rx, |mut rx| async move { rx.recv().await.map(|b| (b, rx)) })
            .boxed()
    }));
    loop {
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = batches.next() => batch,
        };
        let Some(batch) = batch else { break };
        for event in &batch {
            if let Err(e) = publisher.publish(event).await {
                tracing::warn!(error = %e, "cannot publish a KV event");
            }
        }
    }
    if let Err(e) = publisher.shutdown().await {
        tracing::debug!(error = %e, "cannot withdraw the kv-events channel");
    }
}

/// Publishes each DP rank's load (one receiver per rank) when it changes and every
/// `refresh`, until `cancel` fires or the simulators stop, then withdraws the publisher's
/// channel.
pub async fn publish_load(
    publisher: EventPublisher,
    mut loads: Vec<watch::Receiver<LoadMetrics>>,
    refresh: Duration,
    cancel: CancellationToken,
) {
    let mut heartbeat = tokio::time::interval(refresh);
    heartbeat.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut last: Vec<Option<ActiveLoad>> = vec![None; loads.len()];
    while !loads.is_empty() {
        let changed =
            futures::future::select_all(loads.iter_mut().map(|rx| Box::pin(rx.changed())));
        tokio::select! {
            () = cancel.cancelled() => break,
            (changed, _, _) = changed => if changed.is_err() { break },
            _ = heartbeat.tick() => last.fill(None),
        }
        for (load, last) in loads.iter_mut().zip(&mut last) {
            let current = ActiveLoad::from(*load.borrow_and_update());
            if *last == Some(current) {
                continue;
            }
            match publisher.publish(&current).await {
                Ok(_) => *last = Some(current),
                Err(e) => tracing::warn!(error = %e, "cannot publish the load"),
            }
        }
    }
    if let Err(e) = publisher.shutdown().await {
        tracing::debug!(error = %e, "cannot withdraw the kv_metrics channel");
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use stator_runtime::discovery::{EventScope, MemStore};
    use stator_runtime::event_plane::{EventPlane, LocalBus};

    use super::*;

    fn load(active_decode_blocks: u64) -> LoadMetrics {
        LoadMetrics {
            worker_id: 9,
            dp_rank: 0,
            active_decode_blocks,
            active_prefill_tokens: 3,
            kv_used_blocks: active_decode_blocks,
            kv_total_blocks: 100,
            num_running: 1,
            num_waiting: 0,
        }
    }

    #[tokio::test]
    async fn load_goes_out_on_change_in_dynamo_shape() {
        let plane = EventPlane::local(Arc::new(MemStore::new().client()), LocalBus::new());
        let scope = EventScope::Namespace {
            name: "dynamo".into(),
        };
        let mut subscriber = plane
            .subscribe(scope.clone(), KV_METRICS_TOPIC)
            .await
            .unwrap();
        let publisher = plane.publisher(scope, KV_METRICS_TOPIC).await.unwrap();
        let (tx, rx) = watch::channel(load(1));
        let cancel = CancellationToken::new();
        let task = tokio::spawn(publish_load(
            publisher,
            vec![rx],
            Duration::from_hours(1),
            cancel.clone(),
        ));
        let (_, first) = subscriber
            .next_typed::<ActiveLoad>()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(first, ActiveLoad::from(load(1)));
        tx.send_replace(load(5));
        let (_, second) = subscriber
            .next_typed::<ActiveLoad>()
            .await
            .unwrap()
            .unwrap();
        assert_eq!(second.active_decode_blocks, Some(5));
        let json = serde_json::to_value(second).unwrap();
        assert_eq!(
            json,
            serde_json::json!({"worker_id": 9, "dp_rank": 0, "active_decode_blocks": 5,
                "active_prefill_tokens": 3, "kv_used_blocks": 5})
        );
        cancel.cancel();
        task.await.unwrap();
    }
}
