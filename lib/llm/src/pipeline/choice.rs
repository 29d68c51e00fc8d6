//! One choice's backward path: worker items → detokenized text events.

use std::pin::Pin;
use std::task::{Context as TaskContext, Poll, Waker};

use futures::{Stream, StreamExt};
use stator_protocols::openai;
use stator_protocols::worker::{self, Annotated, LLMEngineOutput};
use stator_runtime::{ResponseStream, StatorError};

use super::engine::WorkerHooks;
use super::error::PipelineError;
use super::timing::{ChoiceReport, Timing};
use crate::backend::{DetokenizeOptions, Detokenizer, EngineDelta, FinishReason};
use crate::preprocess::ModelPreprocessor;

/// The worker's response stream as the push router yields it.
pub(crate) type WorkerStream = ResponseStream<Result<Box<Annotated<LLMEngineOutput>>, StatorError>>;

/// The merged events of all choices of one response.
pub type ChoiceStream = Pin<Box<dyn Stream<Item = Result<ChoiceEvent, PipelineError>> + Send>>;

/// What happened to one choice.
#[derive(Debug, Clone, PartialEq)]
pub enum ChoiceEvent {
    /// New text (possibly empty while a stop string is held back) and the tokens behind it.
    Delta {
        /// The choice index.
        index: u32,
        /// Text to show.
        text: String,
        /// Tokens generated since the previous event.
        tokens: u32,
    },
    /// The choice ended.
    Finish(FinishInfo),
}

/// The end of one choice, with its token accounting.
#[derive(Debug, Clone, PartialEq)]
pub struct FinishInfo {
    /// The choice index.
    pub index: u32,
    /// Why it ended.
    pub reason: openai::FinishReason,
    /// Prompt tokens this choice adds to `usage` (0 for repeated prompts of `n > 1`).
    pub prompt_tokens: u32,
    /// Tokens generated for this choice.
    pub completion_tokens: u32,
    /// Prompt tokens served from the KV cache, when the worker or router reported them.
    pub cached_tokens: Option<u32>,
    /// Which worker ran the choice, and its timing.
    pub report: Option<ChoiceReport>,
}

/// Drives one worker stream through a detokenizer.
pub(crate) struct ChoiceDriver {
    index: u32,
    prompt_tokens: u32,
    worker: WorkerStream,
    detokenizer: Detokenizer,
    cached_tokens: Option<u32>,
    queued: Option<ChoiceEvent>,
    hooks: Option<WorkerHooks>,
    timing: Timing,
    done: bool,
}

impl ChoiceDriver {
    pub(crate) fn new(
        index: u32,
        prompt_tokens: u32,
        preprocessor: &ModelPreprocessor,
        detokenize: &DetokenizeOptions,
        worker: WorkerStream,
        hooks: Option<WorkerHooks>,
        timing: Timing,
    ) -> Self {
        let cached_tokens = hooks.as_ref().map(WorkerHooks::overlap_tokens);
        Self {
            index,
            prompt_tokens,
            worker,
            detokenizer: preprocessor.detokenizer(detokenize),
            cached_tokens,
            queued: None,
            hooks,
            timing,
            done: false,
        }
    }

    fn finish(&mut self, reason: &FinishReason) -> Result<ChoiceEvent, PipelineError> {
        self.done = true;
        let reason = match reason {
            FinishReason::Eos | FinishReason::Stop | FinishReason::Cancelled => {
                openai::FinishReason::Stop
            }
            FinishReason::Length => openai::FinishReason::Length,
            FinishReason::ContentFilter => openai::FinishReason::ContentFilter,
            FinishReason::Error(message) => return Err(PipelineError::Engine(message.clone())),
        };
        Ok(ChoiceEvent::Finish(FinishInfo {
            index: self.index,
            reason,
            prompt_tokens: self.prompt_tokens,
            completion_tokens: self.detokenizer.generated_tokens(),
            cached_tokens: if self.prompt_tokens > 0 {
                self.cached_tokens
            } else {
                None
            },
            report: Some(self.timing.report()),
        }))
    }

    /// Consumes what the worker already sent after the choice ended (usually its final frame
    /// and end-of-stream marker arrive with the last item), so the stream ends cleanly instead
    /// of being dropped mid-way, which sends the worker a `kill` for a request it already
    /// finished (a system call and a frame per request for nothing). Never waits: polled with
    /// a no-op waker, so nothing wakes this task for the rest.
    fn drain_worker(&mut self) {
        let mut cx = TaskContext::from_waker(Waker::noop());
        while let Poll::Ready(Some(_)) = self.worker.poll_next_unpin(&mut cx) {}
    }

    /// Applies one worker item; `None` when it produced nothing to report.
    fn apply(
        &mut self,
        item: Box<Annotated<LLMEngineOutput>>,
    ) -> Option<Result<ChoiceEvent, PipelineError>> {
        if item.is_error() {
            self.done = true;
            let message = item
                .error
                .map_or_else(|| "worker reported an error".to_owned(), |e| e.to_string());
            return Some(Err(PipelineError::Engine(message)));
        }
        let data = item.data?;
        if let Some(cached) = data
            .completion_usage
            .as_ref()
            .and_then(|u| u.prompt_tokens_details.as_ref())
            .and_then(|d| d.cached_tokens)
        {
            self.cached_tokens = Some(cached);
        }
        let engine_finish = data.finish_reason.as_ref().map(engine_reason);
        let out = match self.detokenizer.process(&EngineDelta {
            token_ids: &data.token_ids,
            text: data.text.as_deref(),
            finish_reason: engine_finish.as_ref(),
        }) {
            Ok(out) => out,
            Err(e) => {
                self.done = true;
                return Some(Err(PipelineError::Internal(e.to_string())));
            }
        };
        let tokens = out.consumed;
        if tokens > 0 {
            self.timing.first_token();
            if let Some(hooks) = self.hooks.as_mut() {
                hooks.first_token();
            }
        }
        let finish = out.finish_reason.as_ref().map(|r| self.finish(r));
        if finish.is_some() {
            self.drain_worker();
        }
        let delta = (tokens > 0 || !out.text.is_empty()).then_some(ChoiceEvent::Delta {
            index: self.index,
            text: out.text,
            tokens,
        });
        match (delta, finish) {
            (Some(delta), Some(Ok(finish))) => {
                self.queued = Some(finish);
                Some(Ok(delta))
            }
            (_, Some(Err(e))) => Some(Err(e)),
            (Some(delta), None) => Some(Ok(delta)),
            (None, Some(finish)) => Some(finish),
            (None, None) => None,
        }
    }
}

fn engine_reason(reason: &worker::FinishReason) -> FinishReason {
    match reason {
        worker::FinishReason::Eos => FinishReason::Eos,
        worker::FinishReason::Length => FinishReason::Length,
        worker::FinishReason::Stop => FinishReason::Stop,
        worker::FinishReason::Error(m) => FinishReason::Error(m.clone()),
        worker::FinishReason::Cancelled => FinishReason::Cancelled,
        worker::FinishReason::ContentFilter => FinishReason::ContentFilter,
    }
}

impl Stream for ChoiceDriver {
    type Item = Result<ChoiceEvent, PipelineError>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if let Some(event) = this.queued.take() {
            return Poll::Ready(Some(Ok(event)));
        }
        if this.done {
            return Poll::Ready(None);
        }
        loop {
            match this.worker.poll_next_unpin(cx) {
                Poll::Pending => return Poll::Pending,
                Poll::Ready(None) => {
                    // The worker completed without a finish reason: end as a natural stop.
                    return Poll::Ready(Some(this.finish(&FinishReason::Stop)));
                }
                Poll::Ready(Some(Err(e))) => {
                    this.done = true;
                    return Poll::Ready(Some(Err(PipelineError::Worker(e))));
                }
                Poll::Ready(Some(Ok(item))) => {
                    if let Some(event) = this.apply(item) {
                        return Poll::Ready(Some(event));
                    }
                }
            }
        }
    }
}
