//! [`ModelPipeline`]: one worker set's engine, and how it picks a worker.

use std::sync::Arc;
use std::time::{Instant, SystemTime};

use futures::future::BoxFuture;
use stator_protocols::worker::{Annotated, LLMEngineOutput, PreprocessedRequest, RoutingHints};
use stator_runtime::{Context, InstanceId, PushRouter, Request, RouterMode, StatorError};

use super::choice::{ChoiceDriver, ChoiceStream, WorkerStream};
use super::error::PipelineError;
use super::prepare::ChoiceRequest;
use super::timing::{ServedBy, Timing};
use crate::model_card::ModelDeploymentCard;
use crate::preprocess::ModelPreprocessor;

/// The push router of a worker set's endpoint. Requests and items are boxed: each passes
/// through several futures or stream layers by value, and a pointer moves cheaper than a
/// ~2 KB request or a ~400-byte item (the bytes on the wire are the same).
pub type WorkerClient = PushRouter<Box<PreprocessedRequest>, Box<Annotated<LLMEngineOutput>>>;

/// What a [`WorkerSelector`] chose for one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SelectedWorker {
    /// The instance to send to.
    pub instance_id: InstanceId,
    /// The data-parallel rank within it, if it has several.
    pub dp_rank: Option<u32>,
    /// Prompt tokens the selector expects the worker to have cached.
    pub overlap_tokens: u32,
}

/// A request-aware worker choice (the KV router): sees the prompt's tokens, is told when the
/// first token arrives and when the request is over.
pub trait WorkerSelector: Send + Sync {
    /// Picks the worker for `token_ids`; may wait for capacity; all busy is an overload error.
    fn select<'a>(
        &'a self,
        request_id: &'a str,
        token_ids: &'a [u32],
        hints: Option<&'a RoutingHints>,
    ) -> BoxFuture<'a, Result<SelectedWorker, StatorError>>;

    /// The request's first token arrived (its prefill is done).
    fn first_token(&self, request_id: &str);

    /// The request ended (finished, failed or cancelled).
    fn complete(&self, request_id: &str);
}

/// Reports a selected request's progress to its selector; completes it when dropped.
pub struct WorkerHooks {
    selector: Arc<dyn WorkerSelector>,
    request_id: String,
    overlap_tokens: u32,
    first_seen: bool,
}

impl WorkerHooks {
    fn new(selector: Arc<dyn WorkerSelector>, request_id: String, overlap_tokens: u32) -> Self {
        Self {
            selector,
            request_id,
            overlap_tokens,
            first_seen: false,
        }
    }

    /// Tells the selector about the first token (once).
    pub(crate) fn first_token(&mut self) {
        if !self.first_seen {
            self.first_seen = true;
            self.selector.first_token(&self.request_id);
        }
    }

    /// The cached prompt tokens the selector predicted.
    pub(crate) fn overlap_tokens(&self) -> u32 {
        self.overlap_tokens
    }
}

impl Drop for WorkerHooks {
    fn drop(&mut self) {
        self.selector.complete(&self.request_id);
    }
}

/// How a pipeline picks the worker of a request.
#[derive(Clone)]
pub enum RoutingPolicy {
    /// A request-blind policy of the push router (round-robin, random, power-of-two,
    /// least-loaded).
    Push(RouterMode),
    /// The worker is named by the request (`nvext.backend_instance_id` or the
    /// `x-dynamo-worker-instance-id` header); a request without one is rejected.
    Direct,
    /// A request-aware selector (KV routing).
    Selector(Arc<dyn WorkerSelector>),
}

/// Settings a pipeline is built with.
#[derive(Clone)]
pub struct PipelineConfig {
    /// How workers are picked.
    pub routing: RoutingPolicy,
}

/// The engine serving one worker set: preprocess, route, detokenize.
pub struct ModelPipeline {
    model: String,
    card: ModelDeploymentCard,
    preprocessor: ModelPreprocessor,
    vocab_size: u32,
    client: WorkerClient,
    routing: RoutingPolicy,
}

impl ModelPipeline {
    /// A pipeline for `card` (files already local) sending through `client`.
    pub fn new(
        card: ModelDeploymentCard,
        client: WorkerClient,
        config: PipelineConfig,
    ) -> Result<Self, PipelineError> {
        let preprocessor = ModelPreprocessor::from_card(&card)?;
        let vocab_size = u32::try_from(preprocessor.tokenizer().vocab_size()).unwrap_or(u32::MAX);
        Ok(Self {
            model: card.display_name.clone(),
            card,
            preprocessor,
            vocab_size,
            client,
            routing: config.routing,
        })
    }

    /// The served model name.
    pub fn model(&self) -> &str {
        &self.model
    }

    /// The card the pipeline was built from.
    pub fn card(&self) -> &ModelDeploymentCard {
        &self.card
    }

    /// The preprocessor (template, tokenizer, EOS ids, context limit).
    pub fn preprocessor(&self) -> &ModelPreprocessor {
        &self.preprocessor
    }

    /// The tokenizer's vocabulary size including added tokens.
    pub fn vocab_size(&self) -> u32 {
        self.vocab_size
    }

    /// The push router of the set's endpoint.
    pub fn client(&self) -> &WorkerClient {
        &self.client
    }

    /// Whether some instance can take a request now.
    pub fn has_instances(&self) -> bool {
        !self.client.available().is_empty()
    }

    /// Sends every choice to a worker and merges their streams by choice index. The first
    /// choice's request carries `context`; further choices get linked child contexts, so
    /// killing `context` kills them all.
    pub async fn generate(
        &self,
        choices: Vec<ChoiceRequest>,
        context: &Context,
    ) -> Result<ChoiceStream, PipelineError> {
        let received = Instant::now();
        let received_at = SystemTime::now();
        let single = choices.len() == 1;
        let mut drivers = Vec::with_capacity(choices.len());
        for choice in choices {
            let ctx = if single {
                context.clone()
            } else {
                let child = Context::with_id(format!("{}-{}", context.id(), choice.index));
                context.link_child(child.clone());
                child
            };
            let prompt_tokens = if choice.counts_prompt {
                choice.request.token_ids.len() as u32
            } else {
                0
            };
            let (worker, hooks, served_by) = self.route(choice.request, ctx).await?;
            drivers.push(ChoiceDriver::new(
                choice.index,
                prompt_tokens,
                &self.preprocessor,
                &choice.detokenize,
                worker,
                hooks,
                Timing::new(received, received_at, served_by),
            ));
        }
        Ok(if single {
            Box::pin(drivers.pop().expect("one choice"))
        } else {
            Box::pin(futures::stream::select_all(drivers))
        })
    }

    async fn route(
        &self,
        mut request: Box<PreprocessedRequest>,
        context: Context,
    ) -> Result<(WorkerStream, Option<WorkerHooks>, ServedBy), PipelineError> {
        let pinned = request
            .routing
            .as_ref()
            .and_then(|r| r.backend_instance_id.or(r.decode_worker_id));
        let route_err = |e| PipelineError::from_route(&self.model, e);
        let (instance_id, hooks) = if let Some(id) = pinned {
            (InstanceId(id), None)
        } else {
            match &self.routing {
                RoutingPolicy::Push(mode) => (self.client.choose(*mode).map_err(route_err)?, None),
                RoutingPolicy::Direct => {
                    return Err(PipelineError::InvalidRequest(
                        "router mode direct needs a target worker: set nvext.backend_instance_id \
                         or the x-dynamo-worker-instance-id header"
                            .to_owned(),
                    ));
                }
                RoutingPolicy::Selector(selector) => {
                    let id = context.id().to_owned();
                    let choice = selector
                        .select(&id, &request.token_ids, request.routing.as_ref())
                        .await
                        .map_err(|e| match e.http_status() {
                            503 => PipelineError::NotReady(self.model.clone()),
                            _ => PipelineError::Worker(e),
                        })?;
                    let hooks = WorkerHooks::new(Arc::clone(selector), id, choice.overlap_tokens);
                    if let Some(rank) = choice.dp_rank {
                        request
                            .routing
                            .get_or_insert_with(RoutingHints::default)
                            .dp_rank = Some(rank);
                    }
                    (choice.instance_id, Some(hooks))
                }
            }
        };
        let served_by = ServedBy {
            instance_id,
            dp_rank: request.routing.as_ref().and_then(|r| r.dp_rank),
            sent: Instant::now(),
        };
        let stream = self
            .client
            .direct(Request::with_context(request, context), instance_id)
            .await
            .map_err(route_err)?;
        Ok((stream, hooks, served_by))
    }
}

impl std::fmt::Debug for ModelPipeline {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ModelPipeline")
            .field("model", &self.model)
            .field("endpoint", self.client.instances().endpoint())
            .finish_non_exhaustive()
    }
}
