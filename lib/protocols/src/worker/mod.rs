//! Frontend ⇄ worker wire types: the request the frontend sends after preprocessing, and the
//! items a worker streams back. They travel as msgpack maps with field names (or JSON).

mod annotated;
mod engine_output;
mod preprocessed;

pub use annotated::{Annotated, ERROR_EVENT};
pub use engine_output::{FinishReason, LLMEngineOutput, OutputType, StopReason, TopLogprob};
pub use preprocessed::{
    BootstrapInfo, GuidedDecodingOptions, OutputOptions, PrefillResult, PreprocessedRequest,
    RoutingHints, SamplingOptions, StopConditions,
};
