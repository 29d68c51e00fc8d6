//! A worker that accepts a request over NATS (ack) and dies before dialing back must not
//! leave the caller waiting: once its instance record leaves discovery (lease or TTL
//! expiry), the push router fails the request with `Disconnected`.

#[path = "support/servers.rs"]
mod servers;

use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use servers::NatsServer;
use stator_runtime::discovery::{Discovery, DiscoveryRecord, Instance, MemStore, TransportType};
use stator_runtime::event_plane::{LocalBus, NatsConfig};
use stator_runtime::names::EndpointId;
use stator_runtime::request_plane::{RequestPlaneKind, instance_subject};
use stator_runtime::{
    DistributedRuntime, Endpoint, ErrorClass, Request, RequestPlaneConfig, RouterMode,
    RuntimeConfig,
};

const GENEROUS: Duration = Duration::from_secs(30);

#[tokio::test]
async fn an_acked_request_fails_when_its_worker_leaves_discovery() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let store = MemStore::new();
    let endpoint = EndpointId::new("test-ns", "backend", "generate").unwrap();

    // The "worker": accepts every request on its subject with an empty ack, then goes quiet.
    let worker = store.client();
    let subject = instance_subject(&endpoint, worker.instance_id());
    let raw = async_nats::connect(nats.url()).await.expect("NATS up");
    let mut requests = raw.subscribe(subject.clone()).await.expect("subscribe");
    raw.flush().await.expect("flush");
    let acker = {
        let raw = raw.clone();
        tokio::spawn(async move {
            while let Some(message) = requests.next().await {
                if let Some(reply) = message.reply {
                    let _ = raw.publish(reply, Bytes::new()).await;
                }
            }
        })
    };
    let record = DiscoveryRecord::Endpoint(Instance {
        component: endpoint.component.clone(),
        endpoint: endpoint.name.clone(),
        namespace: endpoint.namespace.clone(),
        instance_id: worker.instance_id(),
        transport: TransportType::NatsTcp(subject),
        device_type: None,
        request_plane_codec: None,
    });
    let record_id = record.id();
    worker.register(record).await.expect("register");

    let config = RuntimeConfig {
        request_plane: RequestPlaneConfig {
            kind: RequestPlaneKind::Nats,
            nats: NatsConfig::new(nats.url()),
            rpc_host: Some("127.0.0.1".to_owned()),
            response_host: Some("127.0.0.1".to_owned()),
            ..RequestPlaneConfig::default()
        },
        ..RuntimeConfig::default()
    };
    let drt = DistributedRuntime::in_process(&store, &LocalBus::new(), config)
        .await
        .expect("runtime");
    let router = Endpoint::from_id(&drt, endpoint)
        .expect("endpoint")
        .router::<u32, u32>(RouterMode::RoundRobin)
        .await
        .expect("router");
    tokio::time::timeout(GENEROUS, router.instances().wait_for_instances())
        .await
        .expect("the worker's instance is seen");

    let pending = tokio::spawn(async move {
        let outcome = router
            .generate_with(Request::new(7), RouterMode::RoundRobin)
            .await;
        (outcome.map(|_| ()), router)
    });
    // The request is acked and waits for the call-home that never comes...
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!pending.is_finished(), "nothing answered yet");
    // ...until the worker's record expires.
    worker.unregister(&record_id).await.expect("unregister");
    let (outcome, _router) = tokio::time::timeout(GENEROUS, pending)
        .await
        .expect("the caller is released")
        .expect("task");
    let err = outcome.expect_err("the worker never answered");
    assert_eq!(err.specific_class(), ErrorClass::Disconnected, "{err}");
    acker.abort();
    drt.shutdown().await;
}
