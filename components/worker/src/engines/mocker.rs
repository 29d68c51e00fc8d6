//! [`MockerEngine`]: serves requests from a simulated engine running on its own thread.
//!
//! Each request is submitted to the worker's [`MockerHandle`]; its tokens stream back as
//! `LLMEngineOutput` deltas, and the last item carries the finish reason and usage with the
//! prompt's cache hits (`completion_usage.prompt_tokens_details.cached_tokens`). A request the
//! simulator refuses (no `max_tokens`, too long for the cache, ...) fails before the stream
//! with an `InvalidRequest` error, which the frontend answers with HTTP 400. A stopped request
//! is cancelled in the simulator and ends with `cancelled`; a killed or dropped one is
//! cancelled and its stream ends at once.

use async_trait::async_trait;
use futures::StreamExt;
use stator_mocker::{FinishedRequest, MockRequest, MockerError, MockerHandle, RequestId, Update};
use stator_protocols::worker::{Annotated, FinishReason, LLMEngineOutput, PreprocessedRequest};
use stator_runtime::{AsyncEngine, Context, ErrorClass, Request, ResponseStream, StatorError};
use stator_tokens::SaltSeed;
use tokio::sync::mpsc;

use super::{EngineOutput, usage};

/// The mocker engine of one worker: one simulator per data-parallel rank.
#[derive(Debug, Clone)]
pub struct MockerEngine {
    ranks: Vec<MockerHandle>,
}

impl MockerEngine {
    /// Serves requests on the simulators behind `ranks` (index = DP rank).
    ///
    /// # Panics
    /// If `ranks` is empty.
    pub fn new(ranks: Vec<MockerHandle>) -> Self {
        assert!(!ranks.is_empty(), "a mocker engine needs at least one rank");
        Self { ranks }
    }

    /// The rank a request pins with `routing.dp_rank`, else the one with the fewest requests.
    fn pick(&self, request: &PreprocessedRequest) -> Result<&MockerHandle, StatorError> {
        let pinned = request.routing.as_ref().and_then(|r| r.dp_rank);
        if let Some(rank) = pinned {
            return self.ranks.get(rank as usize).ok_or_else(|| {
                StatorError::invalid_request(format!(
                    "dp_rank {rank} is out of range: this worker has {} data-parallel ranks",
                    self.ranks.len()
                ))
            });
        }
        let busy = |handle: &&MockerHandle| {
            let load = *handle.load().borrow();
            load.num_running + load.num_waiting
        };
        Ok(self
            .ranks
            .iter()
            .min_by_key(busy)
            .expect("a mocker engine has at least one rank"))
    }
}

/// The simulator request for a preprocessed request (the driver assigns the id).
pub fn to_mock_request(request: &PreprocessedRequest) -> MockRequest {
    let conditions = &request.stop_conditions;
    let routing = request.routing.as_ref();
    MockRequest {
        id: RequestId(0),
        token_ids: request.token_ids.clone(),
        max_tokens: conditions.max_tokens,
        min_tokens: conditions.min_tokens.unwrap_or(0),
        ignore_eos: conditions.ignore_eos.unwrap_or(false),
        eos_token_ids: request.eos_token_ids.clone(),
        salt: SaltSeed::new(
            routing.and_then(|r| r.cache_salt.as_deref()),
            routing.and_then(|r| r.lora_name.as_deref()),
        ),
    }
}

fn refusal(error: &MockerError) -> StatorError {
    match error {
        MockerError::Stopped => StatorError::new(ErrorClass::EngineShutdown, error.to_string()),
        _ => StatorError::invalid_request(error.to_string()),
    }
}

fn finish_reason(reason: stator_mocker::FinishReason) -> FinishReason {
    match reason {
        stator_mocker::FinishReason::Eos => FinishReason::Eos,
        stator_mocker::FinishReason::Length => FinishReason::Length,
        stator_mocker::FinishReason::Cancelled => FinishReason::Cancelled,
    }
}

/// One request in flight; cancels itself in the simulator if dropped before it finished.
struct Generation {
    handle: MockerHandle,
    id: RequestId,
    updates: mpsc::UnboundedReceiver<Update>,
    context: Context,
    max_tokens: usize,
    produced: usize,
    cancel_sent: bool,
    finished: bool,
}

impl Generation {
    fn final_item(&mut self, token_ids: Vec<u32>, done: &FinishedRequest) -> EngineOutput {
        self.finished = true;
        let mut item = LLMEngineOutput::finished(token_ids, finish_reason(done.reason));
        item.completion_usage = Some(usage(
            done.prompt_tokens,
            done.output_tokens,
            Some(done.cached_tokens),
        ));
        Annotated::from_data(item)
    }

    fn engine_gone(&mut self) -> EngineOutput {
        self.finished = true;
        Annotated::from_data(LLMEngineOutput::finished(
            Vec::new(),
            FinishReason::Error("the mocker engine stopped".to_owned()),
        ))
    }

    async fn next(&mut self) -> Option<EngineOutput> {
        if self.finished {
            return None;
        }
        loop {
            let update = if self.cancel_sent {
                self.updates.recv().await
            } else {
                tokio::select! {
                    biased;
                    () = self.context.stopped() => {
                        self.handle.cancel(self.id);
                        self.cancel_sent = true;
                        continue;
                    }
                    update = self.updates.recv() => update,
                }
            };
            if self.context.is_killed() {
                // Drop remaining output; Drop has nothing left to cancel.
                self.finished = true;
                return None;
            }
            return Some(match update {
                None => self.engine_gone(),
                Some(Update::Finished(done)) => self.final_item(Vec::new(), &done),
                Some(Update::Token(token)) => self.token(token).await,
            });
        }
    }

    /// Emits `token`, folding in the `Finished` update when it is the last one.
    async fn token(&mut self, token: u32) -> EngineOutput {
        self.produced += 1;
        let mut tokens = vec![token];
        // The last token's `Finished` is sent in the same pass: wait for it when the limit is
        // reached, take it if already there otherwise (an EOS stop).
        loop {
            let next = if self.produced >= self.max_tokens {
                self.updates.recv().await
            } else {
                self.updates.try_recv().ok()
            };
            match next {
                Some(Update::Finished(done)) => return self.final_item(tokens, &done),
                Some(Update::Token(more)) => {
                    self.produced += 1;
                    tokens.push(more);
                }
                None if self.produced >= self.max_tokens => return self.engine_gone(),
                None => return Annotated::from_data(LLMEngineOutput::tokens(tokens)),
            }
        }
    }
}

impl Drop for Generation {
    fn drop(&mut self) {
        if !self.finished && !self.cancel_sent {
            self.handle.cancel(self.id);
        }
    }
}

#[async_trait]
impl AsyncEngine<Request<PreprocessedRequest>, ResponseStream<EngineOutput>> for MockerEngine {
    async fn generate(
        &self,
        request: Request<PreprocessedRequest>,
    ) -> Result<ResponseStream<EngineOutput>, StatorError> {
        let (request, context) = request.into_parts();
        let handle = self.pick(&request)?;
        let submitted = handle
            .submit(to_mock_request(&request))
            .map_err(|e| refusal(&e))?;
        let generation = Generation {
            handle: handle.clone(),
            id: submitted.id,
            updates: submitted.updates,
            context: context.clone(),
            max_tokens: request.stop_conditions.max_tokens.unwrap_or(u32::MAX) as usize,
            produced: 0,
            cancel_sent: false,
            finished: false,
        };
        let items = futures::stream::unfold(generation, |mut generation| async move {
            generation.next().await.map(|item| (item, generation))
        })
        .boxed();
        Ok(ResponseStream::new(items, context))
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use stator_mocker::{MockerConfig, Simulator};
    use stator_protocols::worker::{RoutingHints, StopConditions};

    use super::*;

    fn engine_with_ranks(speedup_ratio: f64, dp_size: u32) -> MockerEngine {
        let config = MockerConfig {
            block_size: 4,
            num_gpu_blocks: 64,
            speedup_ratio,
            dp_size,
            ..MockerConfig::default()
        };
        let ranks = (0..dp_size)
            .map(|rank| {
                let simulator = Simulator::with_dp_rank(config.clone(), 3, rank).unwrap();
                MockerHandle::spawn(simulator).unwrap().0
            })
            .collect();
        MockerEngine::new(ranks)
    }

    fn engine(speedup_ratio: f64) -> MockerEngine {
        engine_with_ranks(speedup_ratio, 1)
    }

    fn request(max_tokens: Option<u32>) -> PreprocessedRequest {
        PreprocessedRequest {
            token_ids: (0..16).collect(),
            stop_conditions: StopConditions {
                max_tokens,
                ..StopConditions::default()
            },
            ..PreprocessedRequest::default()
        }
    }

    async fn run(engine: &MockerEngine, max_tokens: u32) -> Vec<LLMEngineOutput> {
        let stream = engine
            .generate(Request::new(request(Some(max_tokens))))
            .await
            .unwrap();
        stream
            .filter_map(|item| async move { item.data })
            .collect()
            .await
    }

    #[tokio::test]
    async fn tokens_then_usage_with_cache_hits() {
        let engine = engine(0.0);
        let first = run(&engine, 5).await;
        let total: usize = first.iter().map(|i| i.token_ids.len()).sum();
        assert_eq!(total, 5);
        let last = first.last().unwrap();
        assert_eq!(last.finish_reason, Some(FinishReason::Length));
        assert!(
            !last.token_ids.is_empty(),
            "the last token carries the finish"
        );
        let second = run(&engine, 5).await;
        let usage = second.last().unwrap().completion_usage.clone().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (16, 5));
        let cached = usage.prompt_tokens_details.unwrap().cached_tokens.unwrap();
        assert!(cached > 0, "the second identical prompt hits the cache");
    }

    async fn cached_tokens(engine: &MockerEngine, dp_rank: u32) -> u32 {
        let mut req = request(Some(3));
        req.routing = Some(RoutingHints {
            dp_rank: Some(dp_rank),
            ..RoutingHints::default()
        });
        let stream = engine.generate(Request::new(req)).await.unwrap();
        let items: Vec<LLMEngineOutput> = stream
            .filter_map(|item| async move { item.data })
            .collect()
            .await;
        let usage = items.last().unwrap().completion_usage.clone().unwrap();
        usage.prompt_tokens_details.unwrap().cached_tokens.unwrap()
    }

    #[tokio::test]
    async fn dp_rank_pins_a_simulator_with_its_own_cache() {
        let engine = engine_with_ranks(0.0, 2);
        assert_eq!(cached_tokens(&engine, 1).await, 0);
        assert!(
            cached_tokens(&engine, 1).await > 0,
            "rank 1 cached the prompt"
        );
        assert_eq!(
            cached_tokens(&engine, 0).await,
            0,
            "rank 0 has its own cache"
        );
        let mut req = request(Some(3));
        req.routing = Some(RoutingHints {
            dp_rank: Some(2),
            ..RoutingHints::default()
        });
        let err = engine.generate(Request::new(req)).await.unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidRequest);
    }

    #[tokio::test]
    async fn missing_max_tokens_is_an_invalid_request() {
        let err = engine(0.0)
            .generate(Request::new(request(None)))
            .await
            .unwrap_err();
        assert_eq!(err.class(), ErrorClass::InvalidRequest);
        assert_eq!(err.http_status(), 400);
    }

    #[tokio::test]
    async fn stop_cancels_and_kill_ends_the_stream() {
        let engine = engine(1.0);
        let mut stream = engine
            .generate(Request::new(request(Some(200))))
            .await
            .unwrap();
        stream.next().await.unwrap();
        stream.context().stop_generating();
        let rest: Vec<EngineOutput> =
            tokio::time::timeout(Duration::from_secs(30), stream.collect())
                .await
                .unwrap();
        let last = rest.last().unwrap().data.as_ref().unwrap();
        assert_eq!(last.finish_reason, Some(FinishReason::Cancelled));

        let mut stream = engine
            .generate(Request::new(request(Some(200))))
            .await
            .unwrap();
        stream.next().await.unwrap();
        stream.context().kill();
        let next = tokio::time::timeout(Duration::from_secs(30), stream.next())
            .await
            .unwrap();
        assert!(next.is_none());
    }
}
