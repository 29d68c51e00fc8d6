//! The per-model engine a frontend builds for each worker set: preprocess an OpenAI request
//! (chat template, tokenize, stop conditions, context budget), route it over the request plane
//! to a worker, and detokenize the worker's token stream into per-choice text events.
//!
//! `n > 1` issues one worker request per choice (seeds varied when a seed is set) and merges
//! the streams by choice index, so clients really get `n` choices. The HTTP layer turns the
//! [`ChoiceEvent`]s into OpenAI chunks or a folded unary response.

mod choice;
mod engine;
mod error;
mod prepare;
mod timing;

pub use choice::{ChoiceEvent, ChoiceStream, FinishInfo};
pub use engine::{
    ModelPipeline, PipelineConfig, RoutingPolicy, SelectedWorker, WorkerHooks, WorkerSelector,
};
pub use error::PipelineError;
pub use prepare::ChoiceRequest;
pub use timing::ChoiceReport;
