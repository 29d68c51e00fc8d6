//! KV events and load metrics of a mocker worker on the event plane.
//!
//! Each DP rank has its own [`KV_EVENTS_TOPIC`] publisher; every batch of [`RouterEvent`]s a
//! simulator step emits goes out as one message whose payload is a msgpack array of events,
//! as Dynamo 1.6.1 publishes them. Each publisher is also registered as a discovery
//! `EventSource` naming its worker and rank ([`kv_event_source`]): Dynamo's KV router finds
//! KV event publishers through those records. The load goes out as an [`ActiveLoad`] on
//! [`KV_METRICS_TOPIC`] whenever it changes and every [`LOAD_REFRESH`] regardless, so a
//! router that subscribes late still learns it. Both topics live in the scope of the
//! worker's endpoint; the event plane adds Dynamo's envelope.

use std::sync::Arc;
use std::time::Duration;

use stator_kv_router::RouterEvent;
use stator_kv_router::protocols::{ActiveLoad, DpRank, WorkerId};
use stator_mocker::LoadMetrics;
use stator_runtime::InstanceId;
use stator_runtime::discovery::{
    Discovery, DiscoveryRecord, EventScope, EventSourceRecord, RecordId,
};
use stator_runtime::event_plane::EventPublisher;
use stator_runtime::names::EndpointId;
use tokio::sync::{mpsc, watch};
use tokio_util::sync::CancellationToken;

/// Topic of KV cache events (`RouterEvent`).
pub const KV_EVENTS_TOPIC: &str = "kv-events";
/// Topic of load metrics (`ActiveLoad`).
pub const KV_METRICS_TOPIC: &str = "kv_metrics";
/// How often the load is re-published even when it did not change.
pub const LOAD_REFRESH: Duration = Duration::from_secs(1);

/// The discovery `EventSource` record of a KV event publisher, in Dynamo 1.6.1's shape
/// (observed from `python -m dynamo.mocker`): the endpoint whose KV state it describes, the
/// worker and DP rank, and the publisher id. It names no recovery endpoint, so a Dynamo
/// router treats the source as live-only.
pub fn kv_event_source(
    endpoint: &EndpointId,
    worker_id: WorkerId,
    dp_rank: DpRank,
    publisher_id: InstanceId,
) -> DiscoveryRecord {
    DiscoveryRecord::EventSource(EventSourceRecord {
        scope: EventScope::Endpoint {
            endpoint: endpoint.clone(),
        },
        topic: KV_EVENTS_TOPIC.to_owned(),
        publisher_id,
        metadata: serde_json::json!({
            "kv_state_endpoint": {
                "namespace": endpoint.namespace,
                "component": endpoint.component,
                "name": endpoint.name,
            },
            "worker": {"worker_id": worker_id, "dp_rank": dp_rank},
            "publisher_id": publisher_id.0,
        }),
    })
}

/// Publishes every KV event batch of one DP rank as one message until `cancel` fires or the
/// simulator stops, then unregisters `source` and withdraws the publisher's channel.
pub async fn forward_kv_events(
    publisher: EventPublisher,
    mut events: mpsc::UnboundedReceiver<Vec<RouterEvent>>,
    source: Option<(Arc<dyn Discovery>, RecordId)>,
    cancel: CancellationToken,
) {
    loop {
        let batch = tokio::select! {
            () = cancel.cancelled() => break,
            batch = events.recv() => batch,
        };
        let Some(batch) = batch else { break };
        if let Err(e) = publisher.publish(&batch).await {
            tracing::warn!(error = %e, "cannot publish KV events");
        }
    }
    if let Some((discovery, id)) = source
        && let Err(e) = discovery.unregister(&id).await
    {
        tracing::debug!(error = %e, "cannot withdraw the kv-events source record");
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
    use stator_kv_router::protocols::{KvCacheEvent, KvCacheEventData, KvEventsPayload};
    use stator_runtime::discovery::MemStore;
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

    #[tokio::test]
    async fn a_step_batch_is_one_message_and_the_source_record_follows_dynamo() {
        let store = MemStore::new();
        let discovery: Arc<dyn Discovery> = Arc::new(store.client());
        let plane = EventPlane::local(Arc::clone(&discovery), LocalBus::new());
        let endpoint = EndpointId::parse("dynamo/backend/generate").unwrap();
        let scope = EventScope::Endpoint {
            endpoint: endpoint.clone(),
        };
        let mut subscriber = plane
            .subscribe(scope.clone(), KV_EVENTS_TOPIC)
            .await
            .unwrap();
        let publisher = plane.publisher(scope, KV_EVENTS_TOPIC).await.unwrap();
        let record = kv_event_source(&endpoint, 42, 1, publisher.publisher_id());
        let json = serde_json::to_value(&record).unwrap();
        assert_eq!(json["type"], "EventSource");
        assert_eq!(json["topic"], "kv-events");
        assert_eq!(
            json["metadata"]["worker"],
            serde_json::json!({"worker_id": 42, "dp_rank": 1})
        );
        assert_eq!(
            json["metadata"]["kv_state_endpoint"],
            serde_json::json!({"namespace": "dynamo", "component": "backend", "name": "generate"})
        );
        let id = record.id();
        discovery.register(record).await.unwrap();

        let (tx, rx) = mpsc::unbounded_channel();
        let cancel = CancellationToken::new();
        let task = tokio::spawn(forward_kv_events(
            publisher,
            rx,
            Some((Arc::clone(&discovery), id.clone())),
            cancel.clone(),
        ));
        let event = |event_id| {
            RouterEvent::new(
                42,
                KvCacheEvent {
                    event_id,
                    data: KvCacheEventData::Cleared,
                    dp_rank: 1,
                },
            )
        };
        tx.send(vec![event(1), event(2)]).unwrap();
        let (envelope, payload) = subscriber
            .next_typed::<KvEventsPayload>()
            .await
            .unwrap()
            .unwrap();
        assert!(matches!(payload, KvEventsPayload::Batch(_)));
        assert_eq!(payload.into_events(), vec![event(1), event(2)]);
        assert_eq!(envelope.sequence, 0);
        cancel.cancel();
        task.await.unwrap();
        let sources = discovery
            .list(&stator_runtime::discovery::DiscoveryQuery::EventSources(
                stator_runtime::discovery::EventQuery::scoped(
                    EventScope::Endpoint { endpoint },
                    KV_EVENTS_TOPIC,
                ),
            ))
            .await
            .unwrap();
        assert!(sources.is_empty(), "{sources:?}");
    }
}
