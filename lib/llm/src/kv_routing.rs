//! KV-cache-aware routing for the frontend's `--router-mode kv`.
//!
//! A [`KvRouter`] serves one endpoint. It subscribes to the workers' `kv-events`
//! ([`RouterEvent`](stator_kv_router::RouterEvent)s, applied by the flash indexer's writer
//! lanes off the async threads) and `kv_metrics` ([`ActiveLoad`]) on the runtime's event
//! plane, follows the endpoint's instance set (a worker that leaves is dropped from the index
//! and from load tracking), and for every request picks the worker with the lowest cost
//! (prefill blocks not cached there + decode blocks active there) among those not over a busy
//! threshold. Without KV events (`use_kv_events = false`, `--no-router-kv-events`) it predicts
//! each worker's cache from its own decisions. When every worker is busy it queues the request
//! (with a queue threshold) or answers 529 ([`ALL_WORKERS_BUSY`]).
//!
//! The pipeline calls [`KvRouter::schedule`] before sending a request, [`KvRouter::first_token`]
//! when the first token arrives and [`KvRouter::complete`] when the stream ends for any reason.
//!
//! ```
//! use stator_llm::kv_routing::{KvRouter, KvRouterConfig, KvRoutingHints};
//! use stator_runtime::discovery::{DiscoveryRecord, Instance, TransportType};
//! use stator_runtime::router::EndpointInstances;
//! use stator_runtime::{DiscoveryBackend, DistributedRuntime, EndpointId, InstanceId, RuntimeConfig};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let mut config = RuntimeConfig::default();
//! config.discovery_backend = DiscoveryBackend::Mem;
//! let drt = DistributedRuntime::new(config).await?;
//! let endpoint = EndpointId::new("dynamo", "backend", "generate")?;
//!
//! // A worker instance, as a worker process would register it.
//! let worker = InstanceId(7);
//! drt.discovery()
//!     .register(DiscoveryRecord::Endpoint(Instance {
//!         namespace: endpoint.namespace.clone(),
//!         component: endpoint.component.clone(),
//!         endpoint: endpoint.name.clone(),
//!         instance_id: worker,
//!         transport: TransportType::Tcp(format!("127.0.0.1:1/{}", endpoint.instance_path(worker))),
//!         device_type: None,
//!         request_plane_codec: None,
//!     }))
//!     .await?;
//! let instances = EndpointInstances::watch(drt.discovery().as_ref(), endpoint.clone()).await?;
//! instances.wait_for_instances().await;
//!
//! let router = KvRouter::start(&drt, endpoint, instances, 16, KvRouterConfig::default()).await?;
//! let prompt: Vec<u32> = (0..64).collect();
//! let decision = router.schedule("request-1", &prompt, &KvRoutingHints::default()).await?;
//! assert_eq!(decision.instance_id, worker);
//! router.first_token("request-1");
//! router.complete("request-1");
//! assert_eq!(router.stats().decisions, 1);
//! # Ok(())
//! # }
//! ```

mod event_ids;
mod hints;
mod placement;
mod router;
mod stats;
mod tasks;

pub use hints::{KvDecision, KvRoutingHints};
pub use router::{ALL_WORKERS_BUSY, KvRouter};
pub use stator_kv_router::config::{
    ApproxCachePolicy, BusyThresholds, KvRouterConfig, QueuePolicy,
};
pub use stator_kv_router::protocols::ActiveLoad;
pub use stator_kv_router::selector::WorkerCapacity;
pub use stats::{KvRouterStats, render_by_model};

/// Event-plane topic of KV cache events (`RouterEvent`), in the scope of the worker's endpoint.
pub const KV_EVENTS_TOPIC: &str = "kv-events";
/// Event-plane topic of worker load reports ([`ActiveLoad`]), in the same scope.
pub const KV_METRICS_TOPIC: &str = "kv_metrics";
