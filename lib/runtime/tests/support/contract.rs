//! The discovery contract every backend honours; included by the per-backend test crates.

// Each test crate includes this file and uses only the helpers it needs.
#![allow(dead_code)]

use std::sync::Arc;
use std::time::Duration;

use futures::StreamExt;
use stator_runtime::discovery::{
    Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, DiscoveryStream,
    EventChannelRecord, EventQuery, EventScope, EventTransport, Instance, ModelRecord,
    RequestPlaneCodec, TransportType,
};
use stator_runtime::names::{EndpointId, InstanceId};

pub const WAIT: Duration = Duration::from_secs(10);

/// Two discovery clients on one shared store, plus what keeps the store alive.
pub struct Pair {
    /// First client.
    pub a: Arc<dyn Discovery>,
    /// Second client.
    pub b: Arc<dyn Discovery>,
    /// Whatever keeps the store alive (temp dir, server).
    pub _keep: Option<Box<dyn std::any::Any>>,
}

pub fn endpoint(name: &str) -> EndpointId {
    EndpointId::new("test-ns", "backend", name).unwrap()
}

pub fn instance(d: &dyn Discovery, ep: &EndpointId) -> DiscoveryRecord {
    let id = d.instance_id();
    DiscoveryRecord::Endpoint(Instance {
        component: ep.component.clone(),
        endpoint: ep.name.clone(),
        namespace: ep.namespace.clone(),
        instance_id: id,
        transport: TransportType::Tcp(format!("127.0.0.1:1234/{}", ep.instance_path(id))),
        device_type: None,
        request_plane_codec: Some(RequestPlaneCodec::Msgpack),
    })
}

pub fn model(d: &dyn Discovery, ep: &EndpointId) -> DiscoveryRecord {
    DiscoveryRecord::Model(ModelRecord {
        namespace: ep.namespace.clone(),
        component: ep.component.clone(),
        endpoint: ep.name.clone(),
        instance_id: d.instance_id(),
        card_json: serde_json::json!({"display_name": "m", "slug": "m"}),
        model_suffix: None,
    })
}

pub fn channel(publisher: u64, ep: &EndpointId, topic: &str) -> DiscoveryRecord {
    DiscoveryRecord::EventChannel(EventChannelRecord {
        scope: EventScope::Endpoint {
            endpoint: ep.clone(),
        },
        topic: topic.to_owned(),
        instance_id: InstanceId(publisher),
        transport: EventTransport::Zmq {
            endpoint: format!("tcp://127.0.0.1:{}", 5000 + publisher),
        },
    })
}

pub async fn next(stream: &mut DiscoveryStream) -> DiscoveryEvent {
    tokio::time::timeout(WAIT, stream.next())
        .await
        .expect("watch event within the timeout")
        .expect("watch stream still open")
}

pub async fn list_and_watch_contract(p: Pair) {
    let (gen_ep, other_ep) = (endpoint("generate"), endpoint("other"));
    let first = instance(&*p.a, &gen_ep);
    p.a.register(first.clone()).await.unwrap();
    p.a.register(model(&*p.a, &gen_ep)).await.unwrap();
    p.a.register(instance(&*p.a, &other_ep)).await.unwrap();

    let q = DiscoveryQuery::Endpoint(gen_ep.clone());
    assert_eq!(p.b.list(&q).await.unwrap(), vec![first.clone()]);
    let all = p.b.list(&DiscoveryQuery::AllEndpoints).await.unwrap();
    assert_eq!(all.len(), 2);
    let models =
        p.b.list(&DiscoveryQuery::EndpointModels(gen_ep.clone()))
            .await
            .unwrap();
    assert_eq!(models, vec![model(&*p.a, &gen_ep)]);

    let mut watch = p.b.watch(&q).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Added(first.clone()));
    assert_eq!(
        next(&mut watch).await,
        DiscoveryEvent::Resync(vec![first.clone()])
    );

    let second = instance(&*p.b, &gen_ep);
    p.b.register(second.clone()).await.unwrap();
    assert_eq!(
        next(&mut watch).await,
        DiscoveryEvent::Added(second.clone())
    );

    p.a.unregister(&first.id()).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Removed(first.id()));
    // Unregistering again is not an error.
    p.a.unregister(&first.id()).await.unwrap();

    // Shutdown of the owner removes its records: watchers on the other client see it.
    let mut watch_a = p.a.watch(&q).await.unwrap();
    assert_eq!(
        next(&mut watch_a).await,
        DiscoveryEvent::Added(second.clone())
    );
    assert!(matches!(next(&mut watch_a).await, DiscoveryEvent::Resync(v) if v.len() == 1));
    p.b.shutdown().await;
    assert_eq!(
        next(&mut watch_a).await,
        DiscoveryEvent::Removed(second.id())
    );
    assert!(p.a.list(&q).await.unwrap().is_empty());
    assert!(p.b.register(first).await.is_err());
    p.a.shutdown().await;
    assert!(
        tokio::time::timeout(WAIT, watch_a.next())
            .await
            .unwrap()
            .is_none()
    );
}

pub async fn event_channel_contract(p: Pair) {
    let ep = endpoint("generate");
    p.a.register(channel(1, &ep, "kv-events")).await.unwrap();
    p.a.register(channel(2, &ep, "kv_metrics")).await.unwrap();
    p.b.register(channel(3, &ep, "kv-events")).await.unwrap();
    let scope = EventScope::Endpoint {
        endpoint: ep.clone(),
    };
    let q = DiscoveryQuery::EventChannels(EventQuery::scoped(scope.clone(), "kv-events"));
    let mut ids: Vec<u64> =
        p.a.list(&q)
            .await
            .unwrap()
            .iter()
            .map(|r| r.instance_id().0)
            .collect();
    ids.sort_unstable();
    assert_eq!(ids, vec![1, 3]);
    // Scopes match exactly: a namespace-scoped query does not see endpoint-scoped channels.
    let ns_q = DiscoveryQuery::EventChannels(EventQuery {
        scope: Some(EventScope::Namespace {
            name: "test-ns".into(),
        }),
        topic: None,
    });
    assert!(p.a.list(&ns_q).await.unwrap().is_empty());
    let all = DiscoveryQuery::EventChannels(EventQuery::default());
    assert_eq!(p.a.list(&all).await.unwrap().len(), 3);

    let mut watch = p.a.watch(&q).await.unwrap();
    assert!(matches!(next(&mut watch).await, DiscoveryEvent::Added(_)));
    assert!(matches!(next(&mut watch).await, DiscoveryEvent::Added(_)));
    assert!(matches!(next(&mut watch).await, DiscoveryEvent::Resync(v) if v.len() == 2));
    p.b.unregister(&channel(3, &ep, "kv-events").id())
        .await
        .unwrap();
    assert_eq!(
        next(&mut watch).await,
        DiscoveryEvent::Removed(channel(3, &ep, "kv-events").id())
    );
    p.a.shutdown().await;
    p.b.shutdown().await;
}

pub async fn update_in_place(p: Pair) {
    let ep = endpoint("generate");
    let q = DiscoveryQuery::Endpoint(ep.clone());
    let mut watch = p.b.watch(&q).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Resync(vec![]));
    let mut rec = instance(&*p.a, &ep);
    p.a.register(rec.clone()).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Added(rec.clone()));
    if let DiscoveryRecord::Endpoint(i) = &mut rec {
        i.request_plane_codec = Some(RequestPlaneCodec::Json);
    }
    p.a.register(rec.clone()).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Added(rec));
    p.a.shutdown().await;
    p.b.shutdown().await;
}
