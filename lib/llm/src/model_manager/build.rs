//! Building a worker set's pipeline from its card.

use std::sync::Arc;

use futures::future::BoxFuture;
use stator_runtime::{DistributedRuntime, Endpoint, RouterMode, StatorError};

use crate::kv_routing::KvRouterStats;
use crate::model_card::{CardFileCache, ModelDeploymentCard};
use crate::model_watcher::WorkerSetKey;
use crate::pipeline::{
    ModelPipeline, PipelineConfig, PipelineError, RoutingPolicy, WorkerSelector,
};

/// Builds the request-aware selector (KV router) of a worker set.
pub trait SelectorFactory: Send + Sync {
    /// A selector over the set's instances; `block_size` is the card's KV block size (or the
    /// frontend's override).
    fn build<'a>(
        &'a self,
        drt: &'a DistributedRuntime,
        endpoint: &'a Endpoint,
        card: &'a ModelDeploymentCard,
        block_size: u32,
    ) -> BoxFuture<'a, Result<Arc<dyn WorkerSelector>, StatorError>>;

    /// The summed KV router stats of the live selectors built for `model`, if this factory
    /// builds KV routers.
    fn kv_stats(&self, model: &str) -> Option<KvRouterStats> {
        let _ = model;
        None
    }
}

/// How the frontend routes (`--router-mode`).
#[derive(Clone)]
pub enum RouterChoice {
    /// A push-router policy.
    Push(RouterMode),
    /// Worker named by the request.
    Direct,
    /// A request-aware selector built per worker set.
    Selector(Arc<dyn SelectorFactory>),
}

/// Localizes the card's files, opens the endpoint's router and loads the preprocessor.
pub(super) async fn build_pipeline(
    drt: &DistributedRuntime,
    key: &WorkerSetKey,
    card: ModelDeploymentCard,
    cache: &CardFileCache,
    routing: &RouterChoice,
    block_size_override: Option<u32>,
) -> Result<ModelPipeline, PipelineError> {
    let cache = cache.clone();
    let mut card = tokio::task::spawn_blocking(move || cache.localize(&card))
        .await
        .map_err(|e| PipelineError::Internal(e.to_string()))??;
    if let Some(block_size) = block_size_override {
        card.kv_cache_block_size = block_size;
    }
    let endpoint = Endpoint::from_id(
        drt,
        stator_runtime::EndpointId {
            namespace: key.namespace.clone(),
            component: key.component.clone(),
            name: key.endpoint.clone(),
        },
    )?;
    let push_mode = match routing {
        RouterChoice::Push(mode) => *mode,
        RouterChoice::Direct | RouterChoice::Selector(_) => RouterMode::RoundRobin,
    };
    let client = endpoint.router(push_mode).await?;
    let policy = match routing {
        RouterChoice::Push(mode) => RoutingPolicy::Push(*mode),
        RouterChoice::Direct => RoutingPolicy::Direct,
        RouterChoice::Selector(factory) => RoutingPolicy::Selector(
            factory
                .build(drt, &endpoint, &card, card.kv_cache_block_size)
                .await?,
        ),
    };
    tokio::task::spawn_blocking(move || {
        let pipeline = ModelPipeline::new(card, client, PipelineConfig { routing: policy });
        // Loading the tokenizer freed several times its resident size in temporaries.
        stator_runtime::heap::release_free_heap();
        pipeline
    })
    .await
    .map_err(|e| PipelineError::Internal(e.to_string()))?
}
