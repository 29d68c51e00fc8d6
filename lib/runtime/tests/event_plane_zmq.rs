//! Event plane over real ZMQ sockets on loopback, and over the in-process bus.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use serde::{Deserialize, Serialize};
use stator_runtime::discovery::{
    Discovery, DiscoveryQuery, DiscoveryRecord, EventChannelRecord, EventQuery, EventScope,
    EventTransport, FileDiscovery, FileDiscoveryConfig, MemStore,
};
use stator_runtime::event_plane::{
    EventEnvelope, EventPlane, EventSubscriber, LocalBus, ZmqConfig,
};
use stator_runtime::names::{EndpointId, InstanceId};
use tokio::sync::watch;
use zeromq::{Socket, SocketSend, ZmqMessage};

const WAIT: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct LoadMetrics {
    worker_id: u64,
    kv_used_blocks: u64,
}

fn scope() -> EventScope {
    EventScope::Endpoint {
        endpoint: EndpointId::new("dynamo", "backend", "generate").unwrap(),
    }
}

async fn next(sub: &mut EventSubscriber) -> EventEnvelope {
    tokio::time::timeout(WAIT, sub.next())
        .await
        .expect("event within the timeout")
        .expect("subscriber open")
}

/// Publishes `worker`'s metrics every 20 ms until `stop` flips.
fn spawn_publisher(
    publisher: stator_runtime::event_plane::EventPublisher,
    worker: u64,
    mut stop: watch::Receiver<bool>,
) -> tokio::task::JoinHandle<stator_runtime::event_plane::EventPublisher> {
    tokio::spawn(async move {
        let mut blocks = 0;
        while !*stop.borrow() {
            let event = LoadMetrics {
                worker_id: worker,
                kv_used_blocks: blocks,
            };
            publisher.publish(&event).await.unwrap();
            blocks += 1;
            tokio::select! {
                _ = stop.changed() => {}
                () = tokio::time::sleep(Duration::from_millis(20)) => {}
            }
        }
        publisher
    })
}

async fn two_publishers_one_subscriber(discovery: [Arc<dyn Discovery>; 3]) {
    let [d1, d2, d3] = discovery;
    let plane = |d: Arc<dyn Discovery>| EventPlane::zmq(d, ZmqConfig::loopback());
    let mut sub = plane(d3.clone())
        .subscribe(scope(), "kv_metrics")
        .await
        .unwrap();
    let p1 = plane(d1).publisher(scope(), "kv_metrics").await.unwrap();
    let p2 = plane(d2).publisher(scope(), "kv_metrics").await.unwrap();
    assert!(p1.endpoint().unwrap().starts_with("tcp://127.0.0.1:"));
    let ids = [p1.publisher_id(), p2.publisher_id()];
    assert!(
        ids.iter().all(|id| id.0 < 1 << 53),
        "publisher ids stay JSON-safe"
    );

    let (stop_tx, stop_rx) = watch::channel(false);
    let tasks = [
        spawn_publisher(p1, 1, stop_rx.clone()),
        spawn_publisher(p2, 2, stop_rx),
    ];
    // Each publisher's events arrive in order with consecutive sequence numbers.
    let mut last: HashMap<InstanceId, (u64, u64)> = HashMap::new();
    while last.values().filter(|(_, n)| *n >= 5).count() < 2 {
        let (env, event) = tokio::time::timeout(WAIT, sub.next_typed::<LoadMetrics>())
            .await
            .expect("event within the timeout")
            .expect("subscriber open")
            .expect("decodable event");
        assert!(ids.contains(&env.publisher_id));
        assert_eq!(env.topic, "kv_metrics");
        let entry = last
            .entry(env.publisher_id)
            .or_insert((env.sequence.wrapping_sub(1), 0));
        assert_eq!(
            env.sequence,
            entry.0.wrapping_add(1),
            "no gap within a publisher"
        );
        assert_eq!(event.kv_used_blocks, env.sequence);
        *entry = (env.sequence, entry.1 + 1);
    }
    stop_tx.send(true).unwrap();
    let stats = sub.stats();
    assert_eq!((stats.gaps, stats.decode_errors), (0, 0));

    // Shutting a publisher down removes its channel record.
    let channels = DiscoveryQuery::EventChannels(EventQuery::scoped(scope(), "kv_metrics"));
    assert_eq!(d3.list(&channels).await.unwrap().len(), 2);
    for task in tasks {
        task.await.unwrap().shutdown().await.unwrap();
    }
    assert!(d3.list(&channels).await.unwrap().is_empty());
}

#[tokio::test]
async fn zmq_with_mem_discovery() {
    let store = MemStore::new();
    two_publishers_one_subscriber([
        Arc::new(store.client()),
        Arc::new(store.client()),
        Arc::new(store.client()),
    ])
    .await;
}

#[tokio::test]
async fn zmq_with_file_discovery() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileDiscoveryConfig::new(dir.path());
    config.poll_interval = Duration::from_millis(50);
    let open = || FileDiscovery::open(config.clone());
    two_publishers_one_subscriber([
        Arc::new(open().await.unwrap()),
        Arc::new(open().await.unwrap()),
        Arc::new(open().await.unwrap()),
    ])
    .await;
}

fn raw_message(seq: u64, publisher: u64) -> ZmqMessage {
    let env = EventEnvelope {
        publisher_id: InstanceId(publisher),
        sequence: seq,
        published_at: 1,
        topic: "kv-events".into(),
        payload: Bytes::from(rmp_serde::to_vec_named(&seq).unwrap()),
    };
    ZmqMessage::try_from(Vec::from(env.to_multipart().unwrap())).unwrap()
}

/// A hand-built publisher (raw PUB socket + hand-written channel record) that skips
/// sequence numbers and sends garbage: the subscriber counts the gap and survives.
#[tokio::test]
async fn detects_gaps_and_survives_garbage() {
    let store = MemStore::new();
    let discovery: Arc<dyn Discovery> = Arc::new(store.client());
    let mut socket = zeromq::PubSocket::new();
    let bound = socket.bind("tcp://127.0.0.1:0").await.unwrap();
    discovery
        .register(DiscoveryRecord::EventChannel(EventChannelRecord {
            scope: scope(),
            topic: "kv-events".into(),
            instance_id: InstanceId(77),
            transport: EventTransport::Zmq {
                endpoint: bound.to_string(),
            },
        }))
        .await
        .unwrap();
    let plane = EventPlane::zmq(Arc::new(store.client()), ZmqConfig::loopback());
    let mut sub = plane.subscribe(scope(), "kv-events").await.unwrap();

    // Repeat the first event until the subscription is established (ZMQ slow joiner).
    let first = loop {
        socket.send(raw_message(1, 77)).await.unwrap();
        if let Ok(Some(env)) = tokio::time::timeout(Duration::from_millis(50), sub.next()).await {
            break env;
        }
    };
    assert_eq!(first.sequence, 1);
    let garbage = vec![
        Bytes::from_static(b"kv-events"),
        Bytes::from_static(&[0; 8]),
        Bytes::from_static(&[0; 8]),
        Bytes::from_static(&[1, 0, 0, 0, 9, 1, 2]),
    ];
    socket
        .send(ZmqMessage::try_from(garbage).unwrap())
        .await
        .unwrap();
    for seq in [2, 5, 6] {
        socket.send(raw_message(seq, 77)).await.unwrap();
    }
    let seqs = [
        next(&mut sub).await,
        next(&mut sub).await,
        next(&mut sub).await,
    ]
    .map(|e| e.sequence);
    assert_eq!(seqs, [2, 5, 6]);
    let stats = sub.stats();
    assert_eq!((stats.gaps, stats.missed, stats.decode_errors), (1, 2, 1));
}

#[tokio::test]
async fn local_bus_delivers_typed_events() {
    let store = MemStore::new();
    let bus = LocalBus::new();
    let plane = EventPlane::local(Arc::new(store.client()), bus.clone());
    let other = EventPlane::local(Arc::new(store.client()), bus);
    let mut sub = other.subscribe(scope(), "kv_metrics").await.unwrap();
    let mut unrelated = other.subscribe(scope(), "kv-events").await.unwrap();
    let publisher = plane.publisher(scope(), "kv_metrics").await.unwrap();
    for blocks in 0..3 {
        let seq = publisher
            .publish(&LoadMetrics {
                worker_id: 9,
                kv_used_blocks: blocks,
            })
            .await
            .unwrap();
        assert_eq!(seq, blocks);
    }
    for blocks in 0..3 {
        let (env, event) = sub.next_typed::<LoadMetrics>().await.unwrap().unwrap();
        assert_eq!(env.sequence, blocks);
        assert_eq!(event.kv_used_blocks, blocks);
    }
    assert!(
        tokio::time::timeout(Duration::from_millis(100), unrelated.next())
            .await
            .is_err(),
        "other topics see nothing"
    );
    publisher.publish(&"not metrics").await.unwrap();
    assert!(sub.next_typed::<LoadMetrics>().await.unwrap().is_err());
    assert_eq!(sub.stats().decode_errors, 1);
}
