//! [`ModelManager`]: discovery watch → registry → pipelines, and lookups for the HTTP layer.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use futures::StreamExt;
use parking_lot::RwLock;
use stator_runtime::discovery::{DiscoveryQuery, DiscoveryRecord, ModelRecord, RecordId};
use stator_runtime::{DiscoveryEvent, DistributedRuntime, StatorError};

use super::build::{RouterChoice, build_pipeline};
use crate::kv_routing::KvRouterStats;
use crate::model_card::{CardFileCache, ModelDeploymentCard, WorkerType};
use crate::model_watcher::{
    CardSource, ModelReadiness, ModelRegistry, RegistryChange, WorkerSetKey,
};
use crate::pipeline::ModelPipeline;

/// Settings of a [`ModelManager`].
#[derive(Clone)]
pub struct ManagerConfig {
    /// Serve only models of this namespace (`--namespace`); `None` serves all.
    pub namespace: Option<String>,
    /// How requests are routed.
    pub routing: RouterChoice,
    /// Overrides the cards' KV block size (`--kv-cache-block-size`).
    pub kv_cache_block_size: Option<u32>,
    /// Where card files fetched from workers are cached.
    pub card_cache_dir: PathBuf,
}

/// Why a model cannot take a request.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LookupError {
    /// No worker publishes the model.
    #[error("model not found")]
    NotFound,
    /// Workers publish it, but none can serve yet.
    #[error("model not ready")]
    NotReady,
}

/// What `/v1/models` and the metrics show about a model.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelFacts {
    /// The served name.
    pub name: String,
    /// When the frontend first saw it (Unix seconds).
    pub created: u64,
    /// Whether it passes the serving gate.
    pub ready: bool,
    /// The card of its first worker set.
    pub card: ModelDeploymentCard,
    /// Its KV routers' summed stats (`--router-mode kv` only).
    pub kv_router: Option<KvRouterStats>,
}

#[derive(Default)]
struct State {
    registry: ModelRegistry,
    pipelines: BTreeMap<WorkerSetKey, Arc<ModelPipeline>>,
    /// Per model: the pipelines that may serve (empty until built or when not ready).
    serving: HashMap<String, Vec<Arc<ModelPipeline>>>,
    created: HashMap<String, u64>,
}

impl State {
    fn refresh(&mut self, model: &str) {
        let ready = self.registry.readiness(model).is_some_and(|r| r.ready);
        let pipelines: Vec<Arc<ModelPipeline>> = self
            .pipelines
            .iter()
            .filter(|(key, _)| key.model == model && serves_requests(key))
            .map(|(_, p)| Arc::clone(p))
            .collect();
        if ready && !pipelines.is_empty() {
            self.serving.insert(model.to_owned(), pipelines);
        } else {
            self.serving.remove(model);
        }
    }
}

/// Sets whose workers answer client requests (not prefill or encoder helpers).
fn serves_requests(key: &WorkerSetKey) -> bool {
    matches!(
        key.worker_type,
        Some(WorkerType::Aggregated | WorkerType::Decode)
    )
}

struct Inner {
    drt: DistributedRuntime,
    config: ManagerConfig,
    cache: CardFileCache,
    state: RwLock<State>,
}

/// The models this frontend serves, kept current from discovery. Cheap to clone.
#[derive(Clone)]
pub struct ModelManager {
    inner: Arc<Inner>,
}

impl ModelManager {
    /// Starts watching model cards in `drt`'s discovery; the watch ends with the runtime.
    pub async fn start(
        drt: DistributedRuntime,
        config: ManagerConfig,
    ) -> Result<Self, StatorError> {
        let query = match &config.namespace {
            Some(namespace) => DiscoveryQuery::NamespacedModels {
                namespace: namespace.clone(),
            },
            None => DiscoveryQuery::AllModels,
        };
        let mut events = drt
            .discovery()
            .watch(&query)
            .await
            .map_err(|e| StatorError::unavailable(format!("cannot watch model cards: {e}")))?;
        let manager = Self {
            inner: Arc::new(Inner {
                cache: CardFileCache::new(&config.card_cache_dir),
                drt: drt.clone(),
                config,
                state: RwLock::new(State::default()),
            }),
        };
        let watcher = manager.clone();
        let cancel = drt.cancellation_token();
        tokio::spawn(async move {
            loop {
                let event = tokio::select! {
                    () = cancel.cancelled() => return,
                    event = events.next() => event,
                };
                let Some(event) = event else { return };
                watcher.apply(event);
            }
        });
        Ok(manager)
    }

    /// The runtime the manager routes through.
    pub fn runtime(&self) -> &DistributedRuntime {
        &self.inner.drt
    }

    fn apply(&self, event: DiscoveryEvent) {
        let changes = {
            let mut state = self.inner.state.write();
            let changes = match event {
                DiscoveryEvent::Added(DiscoveryRecord::Model(record)) => match parse(&record) {
                    Some((source, card)) => state.registry.add(source, card),
                    None => Vec::new(),
                },
                DiscoveryEvent::Removed(RecordId::Model {
                    endpoint,
                    instance_id,
                    ..
                }) => state.registry.remove(&CardSource {
                    namespace: endpoint.namespace,
                    component: endpoint.component,
                    endpoint: endpoint.name,
                    instance_id: instance_id.0,
                }),
                DiscoveryEvent::Resync(records) => {
                    let cards = records.iter().filter_map(|r| match r {
                        DiscoveryRecord::Model(record) => parse(record),
                        _ => None,
                    });
                    state.registry.resync(cards.collect::<Vec<_>>())
                }
                DiscoveryEvent::Added(_) | DiscoveryEvent::Removed(_) => Vec::new(),
            };
            let now = unix_now();
            let models: Vec<String> = state
                .registry
                .models()
                .iter()
                .map(|m| (*m).to_owned())
                .collect();
            for model in &models {
                state.created.entry(model.clone()).or_insert(now);
            }
            for change in &changes {
                match change {
                    RegistryChange::SetAdded { .. } => {}
                    RegistryChange::SetRemoved { key } => {
                        tracing::info!(model = %key.model, endpoint = %key.endpoint, "worker set retired");
                        state.pipelines.remove(key);
                    }
                    RegistryChange::ModelRemoved { model } => {
                        tracing::info!(%model, "model removed");
                        state.created.remove(model);
                    }
                }
            }
            for model in &models {
                state.refresh(model);
            }
            state.serving.retain(|model, _| models.contains(model));
            changes
        };
        for change in changes {
            if let RegistryChange::SetAdded { key, card } = change {
                let manager = self.clone();
                tokio::spawn(async move { manager.add_set(key, *card).await });
            }
        }
    }

    async fn add_set(&self, key: WorkerSetKey, card: ModelDeploymentCard) {
        let inner = &self.inner;
        let built = build_pipeline(
            &inner.drt,
            &key,
            card,
            &inner.cache,
            &inner.config.routing,
            inner.config.kv_cache_block_size,
        )
        .await;
        match built {
            Ok(pipeline) => {
                let mut state = inner.state.write();
                if state.registry.sets().any(|(k, _)| *k == key) {
                    tracing::info!(model = %key.model, endpoint = %key.endpoint, "worker set ready");
                    state.pipelines.insert(key.clone(), Arc::new(pipeline));
                    state.refresh(&key.model);
                }
            }
            Err(e) => {
                tracing::error!(model = %key.model, error = %e, "cannot build the model pipeline");
            }
        }
    }

    /// The pipeline that should take the next request for `model`.
    pub fn pipeline(&self, model: &str) -> Result<Arc<ModelPipeline>, LookupError> {
        let state = self.inner.state.read();
        match state.serving.get(model) {
            Some(pipelines) => Ok(Arc::clone(
                pipelines
                    .iter()
                    .find(|p| p.has_instances())
                    .unwrap_or(&pipelines[0]),
            )),
            None if state.registry.sets_of(model).next().is_some() => Err(LookupError::NotReady),
            None => Err(LookupError::NotFound),
        }
    }

    /// The `/v1/models/{id}/ready` body, or `None` for an unknown model.
    pub fn readiness(&self, model: &str) -> Option<ModelReadiness> {
        let state = self.inner.state.read();
        let mut readiness = state.registry.readiness(model)?;
        readiness.ready = readiness.ready && state.serving.contains_key(model);
        Some(readiness)
    }

    /// Every registered model with its facts, sorted by name.
    pub fn models(&self) -> Vec<ModelFacts> {
        let state = self.inner.state.read();
        state
            .registry
            .models()
            .into_iter()
            .filter_map(|name| {
                let (_, set) = state.registry.sets_of(name).next()?;
                Some(ModelFacts {
                    name: name.to_owned(),
                    created: state.created.get(name).copied().unwrap_or_default(),
                    ready: state.serving.contains_key(name),
                    card: set.card.clone(),
                    kv_router: match &self.inner.config.routing {
                        RouterChoice::Selector(factory) => factory.kv_stats(name),
                        RouterChoice::Push(_) | RouterChoice::Direct => None,
                    },
                })
            })
            .collect()
    }
}

/// The card source and card of a `Model` record; malformed cards are logged and skipped.
fn parse(record: &ModelRecord) -> Option<(CardSource, ModelDeploymentCard)> {
    match serde_json::from_value::<ModelDeploymentCard>(record.card_json.clone()) {
        Ok(card) => Some((
            CardSource {
                namespace: record.namespace.clone(),
                component: record.component.clone(),
                endpoint: record.endpoint.clone(),
                instance_id: record.instance_id.0,
            },
            card,
        )),
        Err(e) => {
            tracing::warn!(instance = %record.instance_id, error = %e, "ignoring a malformed model card");
            None
        }
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
