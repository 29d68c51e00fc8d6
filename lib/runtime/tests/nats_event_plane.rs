//! The NATS event plane against a real nats-server: subjects, records, envelopes, and
//! publishers and subscribers that carry on after the server restarts.

#[path = "support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use servers::NatsServer;
use stator_runtime::discovery::{
    Discovery, DiscoveryQuery, EventQuery, EventScope, EventTransport, MemStore,
};
use stator_runtime::event_plane::{EventPlane, EventSubscriber, NatsConfig, decode_nats_message};
use stator_runtime::names::EndpointId;

const WAIT: Duration = Duration::from_secs(20);
const SUBJECT: &str = "namespace.test-ns.component.backend.endpoint.generate.kv-events";

fn scope() -> EventScope {
    EventScope::Endpoint {
        endpoint: EndpointId::new("test-ns", "backend", "generate").unwrap(),
    }
}

async fn client(server: &NatsServer) -> async_nats::Client {
    NatsConfig::new(server.url())
        .connect()
        .await
        .expect("connect to the test nats-server")
}

async fn next_event(sub: &mut EventSubscriber) -> (u64, u64, u64) {
    let (envelope, value) = tokio::time::timeout(WAIT, sub.next_typed::<u64>())
        .await
        .expect("event within the timeout")
        .expect("subscriber open")
        .expect("decodable event");
    (envelope.publisher_id.0, envelope.sequence, value)
}

#[tokio::test]
async fn publishes_frames_on_the_scope_subject() {
    let Some(server) = NatsServer::start() else {
        return;
    };
    let store = MemStore::new();
    let sub_client = client(&server).await;
    let discovery: Arc<dyn Discovery> = Arc::new(store.client());
    let subscribing = EventPlane::nats(discovery.clone(), sub_client.clone());
    let mut sub = subscribing.subscribe(scope(), "kv-events").await.unwrap();
    let mut raw = sub_client.subscribe(SUBJECT).await.unwrap();
    sub_client.flush().await.unwrap();

    let publishing = EventPlane::nats(Arc::new(store.client()), client(&server).await);
    let first = publishing.publisher(scope(), "kv-events").await.unwrap();
    let second = publishing.publisher(scope(), "kv-events").await.unwrap();
    let metrics = publishing.publisher(scope(), "kv_metrics").await.unwrap();
    assert_eq!(first.subject(), Some(SUBJECT));

    metrics.publish(&7_u64).await.unwrap();
    first.publish(&10_u64).await.unwrap();
    first.publish(&11_u64).await.unwrap();
    second.publish(&20_u64).await.unwrap();
    let mut got = vec![
        next_event(&mut sub).await,
        next_event(&mut sub).await,
        next_event(&mut sub).await,
    ];
    got.sort_unstable();
    let (a, b) = (first.publisher_id().0, second.publisher_id().0);
    let mut want = vec![(a, 0, 10), (a, 1, 11), (b, 0, 20)];
    want.sort_unstable();
    assert_eq!(got, want);
    assert_eq!(sub.stats().gaps, 0);

    // On the wire: the 5-byte frame around the msgpack envelope.
    let message = tokio::time::timeout(WAIT, raw.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(message.payload[0], 1);
    let envelope = decode_nats_message(&message.payload).unwrap();
    assert_eq!(envelope.topic, "kv-events");

    // Each publisher is registered like Dynamo's NATS channels.
    let query = DiscoveryQuery::EventChannels(EventQuery::scoped(scope(), "kv-events"));
    let records = discovery.list(&query).await.unwrap();
    assert_eq!(records.len(), 2);
    let json = serde_json::to_value(&records[0]).unwrap();
    assert_eq!(
        json["transport"],
        serde_json::json!({"kind": "Nats", "config": {"subject_prefix": "namespace.test-ns.component.backend.endpoint.generate"}})
    );
    for record in &records {
        let stator_runtime::DiscoveryRecord::EventChannel(channel) = record else {
            panic!("event channel expected");
        };
        assert!(matches!(channel.transport, EventTransport::Nats { .. }));
    }
    first.shutdown().await.unwrap();
    assert_eq!(discovery.list(&query).await.unwrap().len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publishers_and_subscribers_survive_a_server_restart() {
    let Some(mut server) = NatsServer::start() else {
        return;
    };
    let store = MemStore::new();
    let sub_client = client(&server).await;
    let mut sub = EventPlane::nats(Arc::new(store.client()), sub_client.clone())
        .subscribe(scope(), "kv-events")
        .await
        .unwrap();
    sub_client.flush().await.unwrap();
    let publisher = EventPlane::nats(Arc::new(store.client()), client(&server).await)
        .publisher(scope(), "kv-events")
        .await
        .unwrap();
    publisher.publish(&1_u64).await.unwrap();
    assert_eq!(next_event(&mut sub).await.1, 0, "sequences start at 0");

    server.kill();
    server.spawn();

    // Publish until the subscriber hears from the publisher again: both reconnected.
    let resumed = tokio::time::timeout(WAIT, async {
        let mut value = 100_u64;
        loop {
            value += 1;
            publisher.publish(&value).await.unwrap();
            if let Ok(Some(Ok((envelope, _)))) =
                tokio::time::timeout(Duration::from_millis(200), sub.next_typed::<u64>()).await
            {
                return envelope.sequence;
            }
        }
    })
    .await
    .expect("publisher and subscriber resume after the restart");
    assert!(resumed >= 1, "a message published after the restart");
}
