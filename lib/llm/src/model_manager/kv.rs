//! `--router-mode kv`: the [`KvRouter`] of each worker set as the pipeline's worker selector.

use std::sync::Arc;

use futures::future::BoxFuture;
use stator_protocols::worker::RoutingHints;
use stator_runtime::{DistributedRuntime, Endpoint, StatorError};

use super::build::SelectorFactory;
use crate::kv_routing::{KvRouter, KvRouterConfig, KvRoutingHints, WorkerCapacity};
use crate::model_card::ModelDeploymentCard;
use crate::pipeline::{SelectedWorker, WorkerSelector};

/// Starts one [`KvRouter`] per worker set with the frontend's KV router settings.
#[derive(Debug, Clone)]
pub struct KvSelectorFactory {
    config: KvRouterConfig,
}

impl KvSelectorFactory {
    /// A factory for routers configured by `config`.
    pub fn new(config: KvRouterConfig) -> Self {
        Self { config }
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
            Ok(Arc::new(KvSelector { router, block_size }) as Arc<dyn WorkerSelector>)
        })
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
                backend_instance_id: None,
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
