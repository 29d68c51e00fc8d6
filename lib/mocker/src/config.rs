//! Simulator configuration, with Dynamo 1.6.1's mocker defaults (vLLM flavour).

use serde::{Deserialize, Deserializer, Serialize};

use crate::error::MockerError;
use crate::request::MockRequest;

/// Knobs of one simulated engine. Plain fields; [`Default`] matches Dynamo's mocker.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct MockerConfig {
    /// Tokens per KV block (Dynamo: 64 for the vLLM flavour).
    pub block_size: usize,
    /// KV blocks in the simulated GPU cache (Dynamo: 16384; `--num-gpu-blocks-override`).
    pub num_gpu_blocks: usize,
    /// Most sequences running at once (256). `usize::MAX` (JSON `null`) for unbounded.
    #[serde(deserialize_with = "unbounded_if_null")]
    pub max_num_seqs: usize,
    /// Most tokens (prefill chunk tokens + one per decode) in one forward pass (8192).
    /// `usize::MAX` (JSON `null`) for unbounded.
    #[serde(deserialize_with = "unbounded_if_null")]
    pub max_num_batched_tokens: usize,
    /// Register full blocks, reuse cached prefixes and publish KV events (true).
    pub enable_prefix_caching: bool,
    /// Split long prompts over several passes (true). When false a prompt is prefilled whole
    /// in one pass, so `prompt + max_tokens` must fit in `max_num_batched_tokens`.
    pub enable_chunked_prefill: bool,
    /// Divides every simulated pass duration (1.0). 0 means no delay at all: Dynamo documents
    /// this meaning, but Dynamo 1.6.1 itself divides by zero; Stator does what it documents.
    pub speedup_ratio: f64,
    /// Further divides the decode part of a pass (1.0).
    pub decode_speedup_ratio: f64,
    /// Data-parallel ranks of the worker (1). One [`Simulator`](crate::Simulator) simulates one
    /// rank; a worker with `dp_size` ranks runs one simulator per rank.
    pub dp_size: u32,
    /// Size of the vocabulary random output tokens are drawn from (ids `0..vocab_size`).
    pub vocab_size: u32,
    /// Probability per generated token, once `min_tokens` are out and unless the request sets
    /// `ignore_eos`, that the token is an EOS id (finishing the request with
    /// [`FinishReason::Eos`](crate::FinishReason::Eos)). 0.0 by default, so a request produces
    /// exactly `max_tokens` tokens, like Dynamo's mocker.
    pub eos_probability: f64,
    /// `max_tokens` for requests that give none. `None` (the default, as in Dynamo) rejects
    /// such requests with [`MockerError::MissingMaxTokens`](crate::MockerError::MissingMaxTokens).
    pub default_max_tokens: Option<u32>,
    /// Seed of the output-token generator; mixed with the worker id and DP rank.
    pub seed: u64,
}

impl Default for MockerConfig {
    fn default() -> Self {
        Self {
            block_size: 64,
            num_gpu_blocks: 16_384,
            max_num_seqs: 256,
            max_num_batched_tokens: 8192,
            enable_prefix_caching: true,
            enable_chunked_prefill: true,
            speedup_ratio: 1.0,
            decode_speedup_ratio: 1.0,
            dp_size: 1,
            vocab_size: 32_000,
            eos_probability: 0.0,
            default_max_tokens: None,
            seed: 0,
        }
    }
}

impl MockerConfig {
    /// Check that every value is usable.
    pub fn validate(&self) -> Result<(), MockerError> {
        let checks = [
            (self.block_size == 0, "block_size must be at least 1"),
            (
                self.num_gpu_blocks == 0,
                "num_gpu_blocks must be at least 1",
            ),
            (self.max_num_seqs == 0, "max_num_seqs must be at least 1"),
            (
                self.max_num_batched_tokens == 0,
                "max_num_batched_tokens must be at least 1",
            ),
            (
                self.speedup_ratio.is_nan() || self.speedup_ratio < 0.0,
                "speedup_ratio must be 0 or positive",
            ),
            (
                self.decode_speedup_ratio.is_nan() || self.decode_speedup_ratio <= 0.0,
                "decode_speedup_ratio must be positive",
            ),
            (
                !(0.0..=1.0).contains(&self.eos_probability),
                "eos_probability must be within 0..=1",
            ),
        ];
        match checks.into_iter().find(|(bad, _)| *bad) {
            Some((_, why)) => Err(MockerError::InvalidConfig(why)),
            None => Ok(()),
        }
    }

    /// Check a request against this engine's limits, without any engine state; returns its
    /// effective `max_tokens`. Lets a worker refuse a request before queueing it.
    pub fn check_request(&self, request: &MockRequest) -> Result<u32, MockerError> {
        self.validate()?;
        let max_tokens = request
            .max_tokens
            .or(self.default_max_tokens)
            .ok_or(MockerError::MissingMaxTokens)?;
        if max_tokens == 0 {
            return Err(MockerError::ZeroMaxTokens);
        }
        if request.min_tokens > max_tokens {
            return Err(MockerError::MinTokensAboveMax {
                min_tokens: request.min_tokens,
                max_tokens,
            });
        }
        if request.token_ids.is_empty() {
            return Err(MockerError::EmptyPrompt);
        }
        // The last output token's KV is never computed.
        let kv_tokens = request.token_ids.len() + max_tokens as usize - 1;
        let needed_blocks = kv_tokens.div_ceil(self.block_size);
        if needed_blocks > self.num_gpu_blocks {
            return Err(MockerError::ExceedsKvCache {
                needed_blocks,
                num_gpu_blocks: self.num_gpu_blocks,
            });
        }
        if !self.enable_chunked_prefill && kv_tokens > self.max_num_batched_tokens {
            return Err(MockerError::ExceedsBatchBudget {
                tokens: kv_tokens,
                max_num_batched_tokens: self.max_num_batched_tokens,
            });
        }
        Ok(max_tokens)
    }
}

/// Dynamo's engine config writes an unbounded limit as `null`.
fn unbounded_if_null<'de, D: Deserializer<'de>>(deserializer: D) -> Result<usize, D::Error> {
    Ok(Option::<usize>::deserialize(deserializer)?.unwrap_or(usize::MAX))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dynamo_engine_json_decodes_with_defaults_and_null_limits() {
        let config: MockerConfig = serde_json::from_str(
            r#"{"block_size": 16, "max_num_seqs": null, "enable_prefix_caching": false}"#,
        )
        .unwrap();
        assert_eq!(config.block_size, 16);
        assert_eq!(config.max_num_seqs, usize::MAX);
        assert_eq!(config.max_num_batched_tokens, 8192);
        assert_eq!(config.num_gpu_blocks, 16_384);
        assert!(!config.enable_prefix_caching);
        assert!(config.enable_chunked_prefill);
    }
}
