//! The engines a worker can serve, all behind the runtime's one engine trait:
//! `AsyncEngine<Request<PreprocessedRequest>, ResponseStream<Annotated<LLMEngineOutput>>>`.
//!
//! - [`EchoEngine`]: streams the prompt's tokens back, one per item (deterministic).
//! - [`MockerEngine`]: a simulated vLLM-style engine driven in real time by
//!   [`stator_mocker::MockerHandle`].

mod echo;
mod mocker;

pub use echo::{EchoEngine, echo_outputs};
pub use mocker::{MockerEngine, to_mock_request};

use stator_protocols::openai::{PromptTokensDetails, Usage};
use stator_protocols::worker::PreprocessedRequest;
use stator_protocols::worker::{Annotated, LLMEngineOutput};
use stator_runtime::StreamingEngine;

/// One item of a worker's response stream.
pub type EngineOutput = Annotated<LLMEngineOutput>;

/// A shareable LLM engine as the worker serves it.
pub type LlmEngine = StreamingEngine<PreprocessedRequest, EngineOutput>;

/// Usage of a finished sequence; `cached_tokens` fills `prompt_tokens_details` when known.
pub(crate) fn usage(
    prompt_tokens: usize,
    completion_tokens: usize,
    cached: Option<usize>,
) -> Usage {
    let mut usage = Usage::new(prompt_tokens as u32, completion_tokens as u32);
    usage.prompt_tokens_details = cached.map(|cached| PromptTokensDetails {
        audio_tokens: None,
        cached_tokens: Some(cached as u32),
    });
    usage
}
