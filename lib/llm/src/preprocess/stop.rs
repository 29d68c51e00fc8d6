//! Stop conditions for a request and the context-length budget.

use stator_tokenizers::TokenId;

use crate::Error;

/// The stop-related fields of a request, as the client sent them.
#[derive(Clone, Copy, Debug, Default)]
pub struct StopRequest<'a> {
    /// `max_tokens` / `max_completion_tokens`.
    pub max_tokens: Option<u32>,
    /// `min_tokens`: stop conditions other than length are ignored before this many tokens.
    pub min_tokens: Option<u32>,
    /// User stop strings (`stop`).
    pub stop: &'a [String],
    /// Request-level stop token ids (`stop_token_ids`), never shown in the output.
    pub stop_token_ids: &'a [TokenId],
    /// `ignore_eos`: keep generating past the model's end-of-sequence tokens.
    pub ignore_eos: bool,
}

/// The stop conditions the engine and the detokenizer enforce for one request.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct StopConditions {
    /// Maximum tokens to generate (after the context budget filled it in, if it could).
    pub max_tokens: Option<u32>,
    /// Minimum tokens to generate before any other stop condition applies.
    pub min_tokens: Option<u32>,
    /// User stop strings: generation ends at the first occurrence, which is not shown unless
    /// `include_stop_str_in_output` is set.
    pub stop: Vec<String>,
    /// Token ids that end generation and are not shown: the request's `stop_token_ids`
    /// followed by the model's EOS ids (unless `ignore_eos`), without duplicates.
    pub stop_token_ids_hidden: Vec<TokenId>,
    /// Whether EOS ids were left out on request.
    pub ignore_eos: bool,
}

impl StopConditions {
    /// Assembles the stop conditions of a request for a model with `eos_token_ids`, applying
    /// the context budget (see [`context_budget`]) for a prompt of `prompt_len` tokens.
    pub fn assemble(
        request: &StopRequest<'_>,
        eos_token_ids: &[TokenId],
        prompt_len: usize,
        context_length: Option<u32>,
    ) -> Result<Self, Error> {
        let mut hidden: Vec<TokenId> = Vec::new();
        let eos: &[TokenId] = if request.ignore_eos {
            &[]
        } else {
            eos_token_ids
        };
        for &id in request.stop_token_ids.iter().chain(eos) {
            if !hidden.contains(&id) {
                hidden.push(id);
            }
        }
        Ok(Self {
            max_tokens: context_budget(prompt_len, request.max_tokens, context_length)?,
            min_tokens: request.min_tokens,
            stop: request.stop.to_vec(),
            stop_token_ids_hidden: hidden,
            ignore_eos: request.ignore_eos,
        })
    }
}

/// Applies the context-length budget: with a published limit (`Some(n)`, `n > 0`), a prompt
/// that fills the window, or a prompt plus `max_tokens` beyond it, is an error with Dynamo's
/// message; a missing `max_tokens` becomes the remaining budget. Without a limit `max_tokens`
/// passes through unchanged.
pub fn context_budget(
    prompt_len: usize,
    max_tokens: Option<u32>,
    context_length: Option<u32>,
) -> Result<Option<u32>, Error> {
    let Some(limit) = context_length.filter(|&n| n > 0) else {
        return Ok(max_tokens);
    };
    let limit = u64::from(limit);
    let prompt = prompt_len as u64;
    match max_tokens {
        Some(max) if prompt + u64::from(max) > limit || prompt >= limit => {
            Err(Error::ContextLengthExceeded(format!(
                "This model configuration accepts at most {limit} combined input and output tokens. \
                 However, your request has {prompt} input tokens and asks for {max} output tokens \
                 ({} tokens total).",
                prompt + u64::from(max)
            )))
        }
        Some(max) => Ok(Some(max)),
        None if prompt >= limit => Err(Error::ContextLengthExceeded(format!(
            "This model configuration accepts at most {limit} combined input and output tokens. \
             However, your request has {prompt} input tokens, which leaves no room for output tokens."
        ))),
        None => Ok(Some(
            u32::try_from(limit - prompt).expect("below a u32 limit"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn eos_ids_become_hidden_stop_ids_after_request_ids() {
        let request = StopRequest {
            stop_token_ids: &[7, 151_643],
            ..StopRequest::default()
        };
        let stop = StopConditions::assemble(&request, &[151_645, 151_643], 10, None).unwrap();
        assert_eq!(stop.stop_token_ids_hidden, vec![7, 151_643, 151_645]);
        assert_eq!(stop.max_tokens, None);
    }

    #[test]
    fn ignore_eos_drops_model_eos_ids() {
        let stop_strings = vec!["END".to_owned()];
        let request = StopRequest {
            ignore_eos: true,
            stop: &stop_strings,
            min_tokens: Some(2),
            max_tokens: Some(5),
            ..StopRequest::default()
        };
        let stop = StopConditions::assemble(&request, &[151_645], 10, None).unwrap();
        assert!(stop.stop_token_ids_hidden.is_empty());
        assert!(stop.ignore_eos);
        assert_eq!(stop.stop, stop_strings);
        assert_eq!((stop.min_tokens, stop.max_tokens), (Some(2), Some(5)));
    }

    #[test]
    fn budget_fills_missing_max_tokens_and_rejects_overflow() {
        assert_eq!(context_budget(30, None, Some(100)).unwrap(), Some(70));
        assert_eq!(context_budget(30, Some(70), Some(100)).unwrap(), Some(70));
        assert_eq!(context_budget(30, None, Some(0)).unwrap(), None);
        assert_eq!(context_budget(30, Some(9), None).unwrap(), Some(9));
        let err = context_budget(30, Some(71), Some(100)).unwrap_err();
        assert_eq!(
            err.to_string(),
            "This model configuration accepts at most 100 combined input and output tokens. \
             However, your request has 30 input tokens and asks for 71 output tokens (101 tokens total)."
        );
        assert!(matches!(
            context_budget(100, None, Some(100)),
            Err(Error::ContextLengthExceeded(_))
        ));
    }
}
