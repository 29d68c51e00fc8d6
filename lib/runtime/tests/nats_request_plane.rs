//! The NATS request plane against a real nats-server: instance records and subjects, echo
//! streaming, mixed TCP and NATS workers behind one router, overload acks, the server's
//! max_payload, and requests that succeed again after the server restarts.

#[path = "support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use servers::NatsServer;
use stator_runtime::discovery::{
    DiscoveryQuery, DiscoveryRecord, Instance, MemStore, TransportType,
};
use stator_runtime::event_plane::{LocalBus, NatsConfig};
use stator_runtime::request_plane::{RequestPlaneKind, instance_subject};
use stator_runtime::{
    AsyncEngine, DistributedRuntime, Endpoint, ErrorClass, PushRouter, Request, RequestPlaneConfig,
    ResponseStream, RouterMode, RuntimeConfig, StatorError,
};

const GENEROUS: Duration = Duration::from_secs(30);

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GENEROUS, fut)
        .await
        .expect("finished within the generous timeout")
}

/// Answers `n` with `n` items naming the serving instance, `delay` apart.
struct Tagged {
    tag: u64,
    delay: Duration,
}

#[async_trait]
impl AsyncEngine<Request<Vec<u8>>, ResponseStream<u64>> for Tagged {
    async fn generate(
        &self,
        request: Request<Vec<u8>>,
    ) -> Result<ResponseStream<u64>, StatorError> {
        let (body, ctx) = request.into_parts();
        let n = body.first().copied().unwrap_or(0);
        let (tag, delay) = (self.tag, self.delay);
        let items = futures::stream::iter(0..n).then(move |_| async move {
            tokio::time::sleep(delay).await;
            tag
        });
        Ok(ResponseStream::new(items, ctx))
    }
}

fn config(nats: &NatsServer, kind: RequestPlaneKind) -> RuntimeConfig {
    RuntimeConfig {
        request_plane: RequestPlaneConfig {
            kind,
            nats: NatsConfig::new(nats.url()),
            rpc_host: Some("127.0.0.1".to_owned()),
            response_host: Some("127.0.0.1".to_owned()),
            ..RequestPlaneConfig::default()
        },
        graceful_shutdown_timeout: GENEROUS,
        ..RuntimeConfig::default()
    }
}

struct Cluster {
    store: MemStore,
    bus: LocalBus,
}

impl Cluster {
    fn new() -> Self {
        Self {
            store: MemStore::new(),
            bus: LocalBus::new(),
        }
    }

    async fn runtime(&self, config: RuntimeConfig) -> DistributedRuntime {
        DistributedRuntime::in_process(&self.store, &self.bus, config)
            .await
            .expect("runtime")
    }

    async fn worker(&self, config: RuntimeConfig, delay: Duration) -> DistributedRuntime {
        let drt = self.runtime(config).await;
        let tag = drt.instance_id().0;
        endpoint(&drt)
            .serve(Arc::new(Tagged { tag, delay }))
            .await
            .expect("serve");
        drt
    }
}

fn endpoint(drt: &DistributedRuntime) -> Endpoint {
    drt.namespace("test")
        .and_then(|ns| ns.component("tagged"))
        .and_then(|c| c.endpoint("generate"))
        .expect("valid names")
}

async fn router(drt: &DistributedRuntime, n: usize) -> PushRouter<Vec<u8>, u64> {
    let router = endpoint(drt)
        .router(RouterMode::RoundRobin)
        .await
        .expect("router");
    within(async {
        while router.instances().list().len() < n {
            router.instances().changed().await;
        }
    })
    .await;
    router
}

async fn collect(router: &PushRouter<Vec<u8>, u64>, n: u8) -> Result<Vec<u64>, StatorError> {
    let stream = router.generate(Request::new(vec![n])).await?;
    stream.collect::<Vec<_>>().await.into_iter().collect()
}

#[tokio::test]
async fn nats_workers_publish_the_subject_and_stream_responses() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let cluster = Cluster::new();
    let worker = cluster
        .worker(config(&nats, RequestPlaneKind::Nats), Duration::ZERO)
        .await;
    let records = worker
        .discovery()
        .list(&DiscoveryQuery::Endpoint(endpoint(&worker).id().clone()))
        .await
        .expect("list");
    let [DiscoveryRecord::Endpoint(Instance { transport, .. })] = records.as_slice() else {
        panic!("expected one endpoint record, got {records:?}")
    };
    let subject = instance_subject(endpoint(&worker).id(), worker.instance_id());
    assert_eq!(
        subject,
        format!("test_tagged.generate-{:x}", worker.instance_id().0)
    );
    assert_eq!(transport, &TransportType::NatsTcp(subject));

    let frontend = cluster.runtime(config(&nats, RequestPlaneKind::Tcp)).await;
    let router = router(&frontend, 1).await;
    for _ in 0..20 {
        let items = within(collect(&router, 5)).await.expect("echo over NATS");
        assert_eq!(items, vec![worker.instance_id().0; 5]);
    }
    assert!(within(worker.shutdown()).await, "worker drained");
}

#[tokio::test]
async fn one_router_reaches_tcp_and_nats_workers() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let cluster = Cluster::new();
    let tcp = cluster
        .worker(config(&nats, RequestPlaneKind::Tcp), Duration::ZERO)
        .await;
    let over_nats = cluster
        .worker(config(&nats, RequestPlaneKind::Nats), Duration::ZERO)
        .await;
    let frontend = cluster.runtime(config(&nats, RequestPlaneKind::Tcp)).await;
    let router = router(&frontend, 2).await;
    let mut seen = Vec::new();
    for _ in 0..4 {
        let items = within(collect(&router, 2)).await.expect("echo");
        seen.push(items[0]);
    }
    seen.sort_unstable();
    seen.dedup();
    let mut expected = vec![tcp.instance_id().0, over_nats.instance_id().0];
    expected.sort_unstable();
    assert_eq!(seen, expected, "round robin used both transports");
}

#[tokio::test]
async fn a_full_nats_worker_acks_overloaded() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let cluster = Cluster::new();
    let mut worker_config = config(&nats, RequestPlaneKind::Nats);
    worker_config.request_plane.worker_pool_size = 1;
    worker_config.request_plane.work_queue_size = 0;
    let worker = cluster
        .worker(worker_config, Duration::from_millis(200))
        .await;
    let frontend = cluster.runtime(config(&nats, RequestPlaneKind::Tcp)).await;
    let router = router(&frontend, 1).await;
    // Holds the only slot for ~2 s.
    let mut busy = within(router.generate(Request::new(vec![10])))
        .await
        .expect("first request admitted");
    let err = within(router.direct(Request::new(vec![1]), worker.instance_id()))
        .await
        .expect_err("pool and queue are full");
    assert_eq!(err.specific_class(), ErrorClass::WorkerOverloaded);
    assert!(err.message().starts_with("Server overloaded"), "{err}");
    let mut count = 0;
    while let Some(item) = within(busy.next()).await {
        item.expect("item");
        count += 1;
    }
    assert_eq!(count, 10);
}

#[tokio::test]
async fn payloads_over_max_payload_are_invalid_requests() {
    let Some(nats) = NatsServer::start() else {
        return;
    };
    let cluster = Cluster::new();
    let _worker = cluster
        .worker(config(&nats, RequestPlaneKind::Nats), Duration::ZERO)
        .await;
    let frontend = cluster.runtime(config(&nats, RequestPlaneKind::Tcp)).await;
    let router = router(&frontend, 1).await;
    // nats-server's default max_payload is 1 MiB.
    let mut big = vec![0_u8; 2 * 1024 * 1024];
    big[0] = 1;
    let err = within(router.generate(Request::new(big)))
        .await
        .expect_err("too large for NATS");
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
    assert_eq!(err.http_status(), 400);
    assert!(
        err.message().starts_with("Request payload is too large"),
        "{err}"
    );
    let items = within(collect(&router, 3))
        .await
        .expect("small requests still work");
    assert_eq!(items.len(), 3);
}

#[tokio::test]
async fn requests_succeed_again_after_a_nats_restart() {
    let Some(mut nats) = NatsServer::start() else {
        return;
    };
    let cluster = Cluster::new();
    let mut frontend_config = config(&nats, RequestPlaneKind::Tcp);
    // No inhibition: every retry below must reach the one worker.
    frontend_config.inhibit_for = Duration::ZERO;
    let worker = cluster
        .worker(config(&nats, RequestPlaneKind::Nats), Duration::ZERO)
        .await;
    let frontend = cluster.runtime(frontend_config).await;
    let router = router(&frontend, 1).await;
    assert_eq!(within(collect(&router, 2)).await.expect("before").len(), 2);

    nats.kill();
    nats.spawn();
    let items = tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            match collect(&router, 2).await {
                Ok(items) => return items,
                Err(err) => {
                    tracing::debug!(error = %err, "retrying after the restart");
                    tokio::time::sleep(Duration::from_millis(200)).await;
                }
            }
        }
    })
    .await
    .expect("a request succeeds after NATS comes back");
    assert_eq!(items, vec![worker.instance_id().0; 2]);
    for _ in 0..5 {
        assert_eq!(within(collect(&router, 2)).await.expect("after").len(), 2);
    }
}
