//! The distributed runtime in one process: registration, routing policies, fault inhibition,
//! graceful shutdown and the system status server. Runtimes share a `MemStore` and a
//! `LocalBus`, as several workers in one process would.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use stator_runtime::discovery::{
    DiscoveryQuery, DiscoveryRecord, Instance, MemStore, RequestPlaneCodec, TransportType,
};
use stator_runtime::event_plane::LocalBus;
use stator_runtime::system_status::SystemStatusConfig;
use stator_runtime::{
    AsyncEngine, DistributedRuntime, Endpoint, EndpointId, ErrorClass, InstanceId, PushRouter,
    Request, RequestPlaneConfig, ResponseStream, RouterMode, RuntimeConfig, StatorError,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

const GENEROUS: Duration = Duration::from_secs(20);

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GENEROUS, fut)
        .await
        .expect("finished within the generous timeout")
}

fn config() -> RuntimeConfig {
    RuntimeConfig {
        request_plane: RequestPlaneConfig {
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
}

/// Answers `n` with `n` items naming the serving instance, `delay` apart.
struct Tagged {
    tag: u64,
    delay: Duration,
}

#[async_trait]
impl AsyncEngine<Request<u32>, ResponseStream<u64>> for Tagged {
    async fn generate(&self, request: Request<u32>) -> Result<ResponseStream<u64>, StatorError> {
        let (n, ctx) = request.into_parts();
        let (tag, delay) = (self.tag, self.delay);
        let items = futures::stream::iter(0..n).then(move |_| async move {
            tokio::time::sleep(delay).await;
            tag
        });
        Ok(ResponseStream::new(items, ctx))
    }
}

fn endpoint(drt: &DistributedRuntime) -> Endpoint {
    drt.namespace("test")
        .and_then(|ns| ns.component("tagged"))
        .and_then(|c| c.endpoint("generate"))
        .expect("valid names")
}

async fn worker(cluster: &Cluster, delay: Duration) -> DistributedRuntime {
    let drt = cluster.runtime(config()).await;
    let tag = drt.instance_id().0;
    endpoint(&drt)
        .serve(Arc::new(Tagged { tag, delay }))
        .await
        .expect("serve");
    drt
}

async fn router(drt: &DistributedRuntime, mode: RouterMode, n: usize) -> PushRouter<u32, u64> {
    let router = endpoint(drt).router(mode).await.expect("router");
    within(async {
        while router.instances().list().len() < n {
            router.instances().changed().await;
        }
    })
    .await;
    router
}

async fn first_item(router: &PushRouter<u32, u64>, mode: RouterMode) -> Result<u64, StatorError> {
    let mut stream = router.generate_with(Request::new(1), mode).await?;
    stream.next().await.expect("one item")
}

#[tokio::test]
async fn serving_publishes_a_dynamo_instance_record() {
    let cluster = Cluster::new();
    let drt = worker(&cluster, Duration::ZERO).await;
    let id = EndpointId::parse("dyn://test.tagged.generate").expect("id");
    let records = drt
        .discovery()
        .list(&DiscoveryQuery::Endpoint(id))
        .await
        .expect("list");
    let [
        DiscoveryRecord::Endpoint(Instance {
            instance_id,
            transport: TransportType::Tcp(transport),
            request_plane_codec,
            ..
        }),
    ] = records.as_slice()
    else {
        panic!("expected one endpoint record, got {records:?}")
    };
    assert_eq!(*instance_id, drt.instance_id());
    let server = drt.request_plane_server().await.expect("server");
    assert_eq!(
        transport,
        &format!(
            "{}/{:x}/test/tagged/generate",
            server.address(),
            drt.instance_id().0
        )
    );
    assert_eq!(*request_plane_codec, Some(RequestPlaneCodec::Msgpack));
    assert!(drt.shutdown().await);
    assert!(
        drt.discovery()
            .list(&DiscoveryQuery::AllEndpoints)
            .await
            .map_or(true, |r| r.is_empty())
    );
}

#[tokio::test]
async fn round_robin_alternates_and_direct_pins() {
    let cluster = Cluster::new();
    let a = worker(&cluster, Duration::ZERO).await;
    let b = worker(&cluster, Duration::ZERO).await;
    let client = cluster.runtime(config()).await;
    let router = router(&client, RouterMode::RoundRobin, 2).await;

    let mut seen = Vec::new();
    for _ in 0..4 {
        seen.push(
            within(first_item(&router, RouterMode::RoundRobin))
                .await
                .expect("item"),
        );
    }
    assert_ne!(seen[0], seen[1]);
    assert_eq!((seen[0], seen[1]), (seen[2], seen[3]));

    for target in [a.instance_id(), b.instance_id()] {
        for _ in 0..3 {
            let tag = within(router.direct(Request::new(1), target))
                .await
                .expect("direct");
            let items = within(tag.try_collect_items()).await.expect("items");
            assert_eq!(items, [target.0]);
        }
    }
    for mode in [
        RouterMode::Random,
        RouterMode::PowerOfTwo,
        RouterMode::LeastLoaded,
    ] {
        let tag = within(first_item(&router, mode)).await.expect("item");
        assert!(tag == a.instance_id().0 || tag == b.instance_id().0);
    }
    let missing = router
        .direct(Request::new(1), InstanceId(7))
        .await
        .expect_err("unknown id");
    assert_eq!(missing.class(), ErrorClass::Unavailable);
}

#[tokio::test]
async fn least_loaded_avoids_the_busy_instance() {
    let cluster = Cluster::new();
    let a = worker(&cluster, Duration::from_millis(20)).await;
    let _b = worker(&cluster, Duration::from_millis(20)).await;
    let client = cluster.runtime(config()).await;
    let router = router(&client, RouterMode::LeastLoaded, 2).await;

    let busy = within(router.direct(Request::new(1000), a.instance_id()))
        .await
        .expect("busy");
    assert_eq!(router.inflight(a.instance_id()), 1);
    for _ in 0..3 {
        let tag = within(first_item(&router, RouterMode::LeastLoaded))
            .await
            .expect("item");
        assert_ne!(tag, a.instance_id().0);
    }
    drop(busy);
    assert_eq!(router.inflight(a.instance_id()), 0);
}

#[tokio::test]
async fn transport_faults_inhibit_the_instance() {
    let cluster = Cluster::new();
    let live = worker(&cluster, Duration::ZERO).await;
    let client = cluster.runtime(config()).await;

    // An instance record whose process is gone: nothing listens on its port.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port();
    let dead = InstanceId(0xdead);
    let ghost = cluster.store.client_with_id(dead);
    let record = DiscoveryRecord::Endpoint(Instance {
        component: "tagged".to_owned(),
        endpoint: "generate".to_owned(),
        namespace: "test".to_owned(),
        instance_id: dead,
        transport: TransportType::Tcp(format!("127.0.0.1:{port}/dead/test/tagged/generate")),
        device_type: None,
        request_plane_codec: None,
    });
    stator_runtime::Discovery::register(&ghost, record)
        .await
        .expect("register ghost");

    let router = router(&client, RouterMode::RoundRobin, 2).await;
    let mut failures = 0;
    for _ in 0..6 {
        match within(first_item(&router, RouterMode::RoundRobin)).await {
            Ok(tag) => assert_eq!(tag, live.instance_id().0),
            Err(err) => {
                assert_eq!(err.specific_class(), ErrorClass::CannotConnect);
                failures += 1;
            }
        }
    }
    assert_eq!(failures, 1, "after one fault the dead instance is skipped");
    let available: Vec<InstanceId> = router.available().iter().map(|e| e.id).collect();
    assert_eq!(available, [live.instance_id()]);
}

#[tokio::test]
async fn shutdown_unregisters_first_then_drains() {
    let cluster = Cluster::new();
    let worker = worker(&cluster, Duration::from_millis(30)).await;
    let client = cluster.runtime(config()).await;
    let router = router(&client, RouterMode::RoundRobin, 1).await;

    let stream = within(router.generate(Request::new(10)))
        .await
        .expect("accepted");
    let shutdown = tokio::spawn({
        let worker = worker.clone();
        async move { worker.shutdown().await }
    });
    within(async {
        while !router.instances().list().is_empty() {
            router.instances().changed().await;
        }
    })
    .await;
    let items = within(stream.try_collect_items())
        .await
        .expect("the in-flight request completes");
    assert_eq!(items.len(), 10);
    assert!(
        within(shutdown).await.expect("shutdown task"),
        "drained in time"
    );
    let err = router
        .generate(Request::new(1))
        .await
        .expect_err("no instance left");
    assert_eq!(err.class(), ErrorClass::Unavailable);
}

#[tokio::test]
async fn system_status_reports_ready_while_serving() {
    let cluster = Cluster::new();
    let mut config = crate::config();
    config.system_status = SystemStatusConfig {
        host: "127.0.0.1".to_owned(),
        port: Some(0),
        ..SystemStatusConfig::default()
    };
    let drt = cluster.runtime(config).await;
    let addr = drt.system_status_addr().expect("status server runs");
    assert!(get(addr, "/health").await.starts_with("HTTP/1.1 503"));
    endpoint(&drt)
        .serve(Arc::new(Tagged {
            tag: 1,
            delay: Duration::ZERO,
        }))
        .await
        .expect("serve");
    let health = get(addr, "/health").await;
    assert!(health.starts_with("HTTP/1.1 200"), "{health}");
    assert!(health.contains(r#""generate":"ready""#), "{health}");
    assert!(get(addr, "/live").await.starts_with("HTTP/1.1 200"));

    let client = cluster.runtime(crate::config()).await;
    let router = router(&client, RouterMode::RoundRobin, 1).await;
    within(first_item(&router, RouterMode::RoundRobin))
        .await
        .expect("item");
    let metrics = get(addr, "/metrics").await;
    assert!(
        metrics.contains(
            r#"dynamo_component_requests_total{dynamo_component="tagged",dynamo_endpoint="generate",dynamo_namespace="test"} 1"#
        ),
        "{metrics}"
    );
    drt.shutdown().await;
}

async fn get(addr: std::net::SocketAddr, path: &str) -> String {
    within(async {
        let mut socket = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
        socket.write_all(request.as_bytes()).await.expect("send");
        let mut response = String::new();
        socket.read_to_string(&mut response).await.expect("read");
        response
    })
    .await
}
