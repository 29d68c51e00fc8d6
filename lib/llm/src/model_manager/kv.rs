//! `--router-mode kv`: the [`KvRouter`] of each worker set as the pipeline's worker selector.

use std::sync::{Arc, Weak};

use futures::future::BoxFuture;
use stator_protocols::worker::RoutingHints;
use stator_runtime::{DistributedRuntime, Endpoint, InstanceId, StatorError};

use super::build::SelectorFactory;
use parking_lot::Mutex;

use crate::kv_routing::{KvRouter, KvRouterConfig, KvRouterStats, KvRoutingHints, WorkerCapacity};
use crate::model_card::ModelDeploymentCard;
use crate::pipeline::{SelectedWorker, WorkerSelector};

/// Starts one [`KvRouter`] per worker set with the frontend's KV router settings, and
/// remembers them (weakly) for their stats.
#[derive(Debug, Clone)]
pub struct KvSelectorFactory {
    config: KvRouterConfig,
    routers: Arc<Mutex<Vec<BuiltRouter>>>,
}

/// A router the factory built, with the served model name it routes for.
type BuiltRouter = (String, Weak<KvRouter>);

impl KvSelectorFactory {
    /// A factory for routers configured by `config`.
    pub fn new(config: KvRouterConfig) -> Self {
        Self {
            config,
            routers: Arc::default(),
        }
    }
}

impl SelectorFactory for KvSelectorFactory {
    fn build<'a>(
        &'a self,
        drt: &'a DistributedRuntime,
        endpoint: &'a Endpoint,
        card: &'a ModelDeploymentCard,
        block_size: u32,
    ) -> BoxFuture<'a, Result<Arc<dyn WorkerSelector>, StatorError>> {
        Box::pin(async move {
            let instances = endpoint.instances().await?;
            let router = KvRouter::start(
                drt,
                endpoint.id().clone(),
                instances,
                block_size,
                self.config.clone(),
            )
            .await?;
            // Busy thresholds and the queue threshold are fractions of these capacities;
            // without them they would never trigger.
            router.set_default_worker_capacity(WorkerCapacity {
                kv_total_blocks: card.runtime_config.total_kv_blocks,
                max_num_batched_tokens: card.runtime_config.max_num_batched_tokens,
            });
            self.routers
                .lock()
                .push((card.display_name.clone(), Arc::downgrade(&router)));
            Ok(Arc::new(KvSelector { router, block_size }) as Arc<dyn WorkerSelector>)
        })
    }

    fn kv_stats(&self, model: &str) -> Option<KvRouterStats> {
        let mut routers = self.routers.lock();
        routers.retain(|(_, router)| router.strong_count() > 0);
        let mut total: Option<KvRouterStats> = None;
        for router in routers
            .iter()
            .filter(|(name, _)| name == model)
            .filter_map(|(_, router)| router.upgrade())
        {
            total
                .get_or_insert_with(KvRouterStats::default)
                .accumulate(&router.stats());
        }
        total
    }
}

struct KvSelector {
    router: Arc<KvRouter>,
    block_size: u32,
}

impl WorkerSelector for KvSelector {
    fn select<'a>(
        &'a self,
        request_id: &'a str,
        token_ids: &'a [u32],
        hints: Option<&'a RoutingHints>,
    ) -> BoxFuture<'a, Result<SelectedWorker, StatorError>> {
        Box::pin(async move {
            let hints = hints.map_or_else(KvRoutingHints::default, |h| KvRoutingHints {
                priority: h.priority,
                strict_priority: h.strict_priority,
                cache_salt: h.cache_salt.clone(),
                lora_name: h.lora_name.clone(),
                expected_output_tokens: h.expected_output_tokens,
                backend_instance_id: h.backend_instance_id.map(InstanceId),
                dp_rank: h.dp_rank,
            });
            let decision = self.router.schedule(request_id, token_ids, &hints).await?;
            Ok(SelectedWorker {
                instance_id: decision.instance_id,
                dp_rank: Some(decision.dp_rank),
                overlap_tokens: decision.overlap_blocks.saturating_mul(self.block_size),
            })
        })
    }

    fn first_token(&self, request_id: &str) {
        self.router.first_token(request_id);
    }

    fn complete(&self, request_id: &str) {
        self.router.complete(request_id);
    }
}
