//! What a caller submits to the simulator, and why a request ends.

use serde::{Deserialize, Serialize};
use stator_tokens::{SaltSeed, Token};

/// Caller-chosen id of a request, unique among the simulator's live requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct RequestId(pub u64);

/// A generation request: a tokenized prompt and its output limits.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MockRequest {
    /// Id under which outputs are reported.
    pub id: RequestId,
    /// The prompt tokens (must not be empty).
    pub token_ids: Vec<Token>,
    /// Most output tokens; `None` falls back to `MockerConfig::default_max_tokens`.
    pub max_tokens: Option<u32>,
    /// No EOS before this many output tokens.
    pub min_tokens: u32,
    /// Never stop on EOS; produce exactly `max_tokens`.
    pub ignore_eos: bool,
    /// Token ids that end generation; the first one is the one emitted on an EOS stop.
    pub eos_token_ids: Vec<Token>,
    /// Seed of the block hashes (cache salt and LoRA name), see [`SaltSeed::new`].
    pub salt: SaltSeed,
}

impl MockRequest {
    /// A request for `max_tokens` output tokens after `token_ids`, with no EOS ids and no salt.
    pub fn new(id: RequestId, token_ids: Vec<Token>, max_tokens: u32) -> Self {
        Self {
            id,
            token_ids,
            max_tokens: Some(max_tokens),
            min_tokens: 0,
            ignore_eos: false,
            eos_token_ids: Vec::new(),
            salt: SaltSeed::default(),
        }
    }
}

/// Why a request stopped producing tokens.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum FinishReason {
    /// The request produced an EOS token (the last token reported).
    Eos,
    /// The request produced `max_tokens` tokens.
    Length,
    /// The request was cancelled or the simulator was reset.
    Cancelled,
}
