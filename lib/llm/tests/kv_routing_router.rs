//! The KV router against fake workers in one process: instances registered in mem discovery,
//! KV events and load reports published on the in-process event plane.

use std::sync::Arc;
use std::time::{Duration, Instant};

use stator_kv_router::RouterEvent;
use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheStoreData, KvCacheStoredBlockData, WorkerWithDpRank,
};
use stator_llm::kv_routing::{
    ALL_WORKERS_BUSY, ActiveLoad, KV_EVENTS_TOPIC, KV_METRICS_TOPIC, KvRouter, KvRouterConfig,
    KvRoutingHints, WorkerCapacity,
};
use stator_runtime::discovery::{DiscoveryRecord, EventScope, Instance, TransportType};
use stator_runtime::event_plane::EventPublisher;
use stator_runtime::router::EndpointInstances;
use stator_runtime::{
    DiscoveryBackend, DistributedRuntime, EndpointId, ErrorClass, InstanceId, RuntimeConfig,
};
use stator_tokens::{SaltSeed, block_hashes, sequence_hashes};

const BLOCK: u32 = 16;
const PATIENCE: Duration = Duration::from_secs(20);

struct Harness {
    drt: DistributedRuntime,
    endpoint: EndpointId,
    kv_events: EventPublisher,
    kv_metrics: EventPublisher,
}

impl Harness {
    async fn new() -> Self {
        let config = RuntimeConfig {
            discovery_backend: DiscoveryBackend::Mem,
            ..RuntimeConfig::default()
        };
        let drt = DistributedRuntime::new(config).await.unwrap();
        let endpoint = EndpointId::new("test", "backend", "generate").unwrap();
        let scope = EventScope::Endpoint {
            endpoint: endpoint.clone(),
        };
        let kv_events = drt
            .event_plane()
            .publisher(scope.clone(), KV_EVENTS_TOPIC)
            .await
            .unwrap();
        let kv_metrics = drt
            .event_plane()
            .publisher(scope, KV_METRICS_TOPIC)
            .await
            .unwrap();
        Self {
            drt,
            endpoint,
            kv_events,
            kv_metrics,
        }
    }

    fn record(&self, id: u64) -> DiscoveryRecord {
        let instance_id = InstanceId(id);
        DiscoveryRecord::Endpoint(Instance {
            namespace: self.endpoint.namespace.clone(),
            component: self.endpoint.component.clone(),
            endpoint: self.endpoint.name.clone(),
            instance_id,
            transport: TransportType::Tcp(format!(
                "127.0.0.1:1/{}",
                self.endpoint.instance_path(instance_id)
            )),
            device_type: None,
            request_plane_codec: None,
        })
    }

    async fn add_worker(&self, id: u64) {
        self.drt
            .discovery()
            .register(self.record(id))
            .await
            .unwrap();
    }

    async fn remove_worker(&self, id: u64) {
        self.drt
            .discovery()
            .unregister(&self.record(id).id())
            .await
            .unwrap();
    }

    async fn router(&self, config: KvRouterConfig, workers: usize) -> Arc<KvRouter> {
        let instances =
            EndpointInstances::watch(self.drt.discovery().as_ref(), self.endpoint.clone())
                .await
                .unwrap();
        let router = KvRouter::start_with_seed(
            &self.drt,
            self.endpoint.clone(),
            instances,
            BLOCK,
            config,
            Some(7),
        )
        .await
        .unwrap();
        eventually("the router sees every worker", || {
            router.instances().len() == workers
        })
        .await;
        router
    }

    /// Worker `worker` caches every complete block of `tokens` (one Stored event from the root).
    async fn store(&self, worker: u64, event_id: u64, tokens: &[u32]) {
        let local = block_hashes(tokens, BLOCK as usize, SaltSeed::default());
        let blocks = local
            .iter()
            .zip(sequence_hashes(&local))
            .map(|(&tokens_hash, block_hash)| KvCacheStoredBlockData {
                block_hash,
                tokens_hash,
            })
            .collect();
        let event = KvCacheEvent {
            event_id,
            data: KvCacheEventData::Stored(KvCacheStoreData {
                parent_hash: None,
                start_position: None,
                blocks,
            }),
            dp_rank: 0,
        };
        self.kv_events
            .publish(&RouterEvent::new(worker, event))
            .await
            .unwrap();
    }

    async fn report(&self, worker: u64, active_prefill_tokens: u64) {
        let load = ActiveLoad {
            worker_id: worker,
            dp_rank: 0,
            active_decode_blocks: Some(0),
            active_prefill_tokens: Some(active_prefill_tokens),
            kv_used_blocks: Some(0),
        };
        self.kv_metrics.publish(&load).await.unwrap();
    }
}

async fn eventually(what: &str, mut condition: impl FnMut() -> bool) {
    let deadline = Instant::now() + PATIENCE;
    while !condition() {
        assert!(Instant::now() < deadline, "timed out waiting until {what}");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// `blocks` complete blocks of tokens unique to `group`, then a partial block.
fn prompt(group: u32, blocks: u32) -> Vec<u32> {
    (0..blocks * BLOCK + 5)
        .map(|i| group * 100_000 + i)
        .collect()
}

fn depth(router: &KvRouter, tokens: &[u32], worker: u64) -> u32 {
    router
        .overlaps(tokens, &KvRoutingHints::default())
        .depth(WorkerWithDpRank::new(worker, 0))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn routes_to_the_worker_that_caches_the_prefix() {
    let h = Harness::new().await;
    h.add_worker(1).await;
    h.add_worker(2).await;
    let router = h.router(KvRouterConfig::default(), 2).await;
    let (a, b) = (prompt(1, 8), prompt(2, 8));
    h.store(2, 0, &a).await;
    h.store(1, 0, &b).await;
    eventually("both prefixes are indexed", || {
        depth(&router, &a, 2) == 8 && depth(&router, &b, 1) == 8
    })
    .await;

    let hints = KvRoutingHints::default();
    let to_a = router.schedule("a", &a, &hints).await.unwrap();
    assert_eq!((to_a.instance_id, to_a.overlap_blocks), (InstanceId(2), 8));
    let to_b = router.schedule("b", &b, &hints).await.unwrap();
    assert_eq!((to_b.instance_id, to_b.overlap_blocks), (InstanceId(1), 8));

    // A salted prompt hashes differently: nothing is cached for it.
    let salted = KvRoutingHints {
        cache_salt: Some("tenant-x".into()),
        ..KvRoutingHints::default()
    };
    assert_eq!(
        router
            .schedule("salted", &a, &salted)
            .await
            .unwrap()
            .overlap_blocks,
        0
    );

    // A pinned request goes where it is told, even without the prefix.
    let pinned = KvRoutingHints {
        backend_instance_id: Some(InstanceId(1)),
        ..KvRoutingHints::default()
    };
    let decision = router.schedule("pinned", &a, &pinned).await.unwrap();
    assert_eq!(
        (decision.instance_id, decision.overlap_blocks),
        (InstanceId(1), 0)
    );
    let unknown = KvRoutingHints {
        backend_instance_id: Some(InstanceId(99)),
        ..KvRoutingHints::default()
    };
    let err = router.schedule("unknown", &a, &unknown).await.unwrap_err();
    assert_eq!(err.class(), ErrorClass::Unavailable);

    for id in ["a", "b", "salted", "pinned"] {
        router.first_token(id);
        router.complete(id);
    }
    router.complete("never-routed");
    let stats = router.stats();
    assert_eq!(stats.events_applied, 2);
    assert_eq!(stats.decisions, 4);
    assert_eq!(stats.overlap_blocks, 16);
    assert_eq!(stats.prompt_blocks, 32);
    assert_eq!(stats.active_requests, 0);
    assert!(
        stats
            .to_prometheus("dynamo_frontend")
            .contains("dynamo_frontend_kv_router_decisions_total 4\n")
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_worker_that_leaves_is_dropped_from_the_index() {
    let h = Harness::new().await;
    h.add_worker(1).await;
    h.add_worker(2).await;
    let router = h.router(KvRouterConfig::default(), 2).await;
    let a = prompt(1, 6);
    h.store(2, 0, &a).await;
    eventually("the prefix is indexed", || depth(&router, &a, 2) == 6).await;
    let placed = router
        .schedule("on-2", &a, &KvRoutingHints::default())
        .await
        .unwrap();
    assert_eq!(placed.instance_id, InstanceId(2));
    assert_eq!(router.stats().active_requests, 1);

    h.remove_worker(2).await;
    eventually("worker 2 leaves", || router.instances() == [InstanceId(1)]).await;
    eventually("its blocks leave the index", || {
        router
            .overlaps(&a, &KvRoutingHints::default())
            .scores
            .is_empty()
    })
    .await;
    eventually("the removal is counted", || {
        router.stats().workers_removed == 1
    })
    .await;
    assert_eq!(
        router.stats().active_requests,
        0,
        "its requests are no longer tracked"
    );

    // A late event from the departed worker does not bring its blocks back.
    h.store(2, 1, &a).await;
    eventually("the late event is dropped", || {
        router.stats().events_dropped == 1
    })
    .await;
    assert!(
        router
            .overlaps(&a, &KvRoutingHints::default())
            .scores
            .is_empty()
    );
    let again = router
        .schedule("again", &a, &KvRoutingHints::default())
        .await
        .unwrap();
    assert_eq!(
        (again.instance_id, again.overlap_blocks),
        (InstanceId(1), 0)
    );

    // If it comes back, its new events count again.
    h.add_worker(2).await;
    eventually("worker 2 is back", || router.instances().len() == 2).await;
    h.store(2, 2, &a).await;
    eventually("its new blocks are indexed", || depth(&router, &a, 2) == 6).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kv_event_id_gaps_are_counted() {
    let h = Harness::new().await;
    h.add_worker(1).await;
    let router = h.router(KvRouterConfig::default(), 1).await;
    for (event_id, group) in [(10, 1), (11, 2), (14, 3)] {
        h.store(1, event_id, &prompt(group, 2)).await;
    }
    eventually("all three events are applied", || {
        router.stats().events_applied == 3
    })
    .await;
    let stats = router.stats();
    assert_eq!((stats.event_id_gaps, stats.event_ids_missed), (1, 2));
    assert_eq!(
        stats.sequence_gaps, 0,
        "the event plane itself lost nothing"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approximate_mode_sends_repeat_prefixes_to_the_same_worker() {
    let h = Harness::new().await;
    for id in [1, 2, 3] {
        h.add_worker(id).await;
    }
    let config = KvRouterConfig {
        use_kv_events: false,
        ..KvRouterConfig::default()
    };
    let router = h.router(config, 3).await;
    let hints = KvRoutingHints::default();
    let mut first = Vec::new();
    for group in 0..6 {
        let id = format!("first-{group}");
        let decision = router
            .schedule(&id, &prompt(group, 4), &hints)
            .await
            .unwrap();
        assert_eq!(decision.overlap_blocks, 0);
        router.first_token(&id);
        router.complete(&id);
        first.push(decision.instance_id);
    }
    for group in 0..6 {
        let id = format!("again-{group}");
        // Same prefix, different tail.
        let mut tokens = prompt(group, 4);
        tokens.extend([7, 7, 7]);
        let decision = router.schedule(&id, &tokens, &hints).await.unwrap();
        assert_eq!(decision.instance_id, first[group as usize], "group {group}");
        assert_eq!(decision.overlap_blocks, 4);
        router.complete(&id);
    }
    assert_eq!(router.stats().events_applied, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_workers_busy_is_a_529() {
    let h = Harness::new().await;
    h.add_worker(1).await;
    let config = KvRouterConfig {
        active_prefill_tokens_threshold: Some(50),
        ..KvRouterConfig::default()
    };
    let router = h.router(config, 1).await;
    let hints = KvRoutingHints::default();
    router
        .schedule("long", &prompt(1, 4), &hints)
        .await
        .unwrap();
    // The router's own tracking: 69 prompt tokens in prefill > 50.
    let err = router
        .schedule("refused", &prompt(2, 1), &hints)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::CapacityExhausted);
    assert_eq!(err.http_status(), 529);
    assert_eq!(err.message(), ALL_WORKERS_BUSY);
    router.first_token("long");
    router
        .schedule("accepted", &prompt(2, 1), &hints)
        .await
        .unwrap();
    router.complete("accepted");
    router.complete("long");

    // The worker's own report counts too.
    h.report(1, 10_000).await;
    eventually("the load report arrives", || {
        router.stats().metrics_received >= 1
    })
    .await;
    let err = router
        .schedule("reported-busy", &prompt(3, 1), &hints)
        .await
        .unwrap_err();
    assert_eq!(err.http_status(), 529);
    h.report(1, 0).await;
    eventually("the second report arrives", || {
        router.stats().metrics_received >= 2
    })
    .await;
    router
        .schedule("idle-again", &prompt(3, 1), &hints)
        .await
        .unwrap();
    assert_eq!(router.stats().rejected_busy, 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_queue_releases_requests_by_priority() {
    let h = Harness::new().await;
    h.add_worker(1).await;
    let config = KvRouterConfig {
        // Busy as soon as anything is in prefill; queue instead of refusing.
        active_prefill_tokens_threshold: Some(0),
        queue_threshold: Some(1.0),
        ..KvRouterConfig::default()
    };
    let router = h.router(config, 1).await;
    router.set_worker_capacity(
        InstanceId(1),
        WorkerCapacity {
            kv_total_blocks: Some(1000),
            max_num_batched_tokens: Some(8192),
        },
    );
    let hints = KvRoutingHints::default();
    router
        .schedule("head", &prompt(9, 2), &hints)
        .await
        .unwrap();

    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    for (n, (id, priority)) in [("low", 0), ("mid", 1), ("high", 5)]
        .into_iter()
        .enumerate()
    {
        let queued = Arc::clone(&router);
        let tx = tx.clone();
        tokio::spawn(async move {
            let hints = KvRoutingHints {
                priority: Some(priority),
                ..KvRoutingHints::default()
            };
            let decision = queued.schedule(id, &prompt(n as u32, 2), &hints).await;
            tx.send((id, decision.is_ok())).unwrap();
        });
        eventually("the request queues", || {
            router.stats().queue_depth == n as u64 + 1
        })
        .await;
    }
    let mut order = Vec::new();
    let mut running = "head";
    for _ in 0..3 {
        router.first_token(running);
        let (id, placed) = tokio::time::timeout(PATIENCE, rx.recv())
            .await
            .unwrap()
            .unwrap();
        assert!(placed);
        order.push(id);
        running = id;
    }
    assert_eq!(order, ["high", "mid", "low"]);
    let stats = router.stats();
    assert_eq!(
        (stats.queued, stats.queue_depth, stats.rejected_busy),
        (3, 0, 0)
    );
}
