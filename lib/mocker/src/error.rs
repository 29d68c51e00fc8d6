//! Why the simulator refuses a configuration or a request.

use crate::request::RequestId;

/// Errors of the simulator's public API.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MockerError {
    /// A configuration value is unusable.
    #[error("invalid mocker config: {0}")]
    InvalidConfig(&'static str),
    /// The request gives no `max_tokens` and the simulator has no default.
    #[error("max_tokens is required by the mocker engine")]
    MissingMaxTokens,
    /// `max_tokens` is 0.
    #[error("max_tokens must be at least 1")]
    ZeroMaxTokens,
    /// `min_tokens` is above `max_tokens`.
    #[error("min_tokens ({min_tokens}) must not exceed max_tokens ({max_tokens})")]
    MinTokensAboveMax {
        /// Requested minimum.
        min_tokens: u32,
        /// Requested maximum.
        max_tokens: u32,
    },
    /// The prompt has no tokens.
    #[error("the prompt is empty")]
    EmptyPrompt,
    /// A live request already uses this id.
    #[error("request id {0:?} is already in use")]
    DuplicateRequest(RequestId),
    /// Prompt plus output can never fit in the KV cache, even alone.
    #[error("request needs {needed_blocks} KV blocks but the cache has {num_gpu_blocks}")]
    ExceedsKvCache {
        /// Blocks for `prompt + max_tokens - 1` tokens.
        needed_blocks: usize,
        /// Blocks in the cache.
        num_gpu_blocks: usize,
    },
    /// The driver thread has stopped.
    #[error("the mocker driver has stopped")]
    Stopped,
    /// Without chunked prefill, prompt plus output must fit in one pass's token budget.
    #[error(
        "request needs {tokens} tokens in one pass but max_num_batched_tokens is {max_num_batched_tokens} (chunked prefill is off)"
    )]
    ExceedsBatchBudget {
        /// `prompt + max_tokens - 1`.
        tokens: usize,
        /// The pass budget.
        max_num_batched_tokens: usize,
    },
}
