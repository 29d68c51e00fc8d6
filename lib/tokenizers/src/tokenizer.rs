//! The [`Tokenizer`] trait every tokenizer backend implements.

use std::sync::Arc;

use crate::TokenizerError;

/// A token id as produced by a tokenizer and consumed by an engine.
pub type TokenId = u32;

/// Text ⇄ token id conversion, the capabilities the serving path needs.
///
/// Implementations must be cheap to share across threads (`Send + Sync`); the serving path
/// keeps one per model behind an `Arc` and calls it from many requests at once.
pub trait Tokenizer: Send + Sync {
    /// Encodes `text`; with `add_special_tokens` the model's post-processor may add
    /// tokens such as BOS (the chat template usually adds them itself, so callers that
    /// tokenize a rendered chat prompt pass `false`).
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<TokenId>, TokenizerError>;

    /// Decodes `ids` to text; with `skip_special_tokens` special tokens produce no text.
    /// Byte sequences that are not valid UTF-8 decode to U+FFFD, as in Hugging Face.
    fn decode(&self, ids: &[TokenId], skip_special_tokens: bool) -> Result<String, TokenizerError>;

    /// The id of a token given by its exact vocabulary string (e.g. `"<|im_end|>"`).
    fn token_to_id(&self, token: &str) -> Option<TokenId>;

    /// The vocabulary string of a token id.
    fn id_to_token(&self, id: TokenId) -> Option<String>;

    /// The number of distinct token ids, added tokens included.
    fn vocab_size(&self) -> usize;
}

/// A shared tokenizer is a tokenizer (so `Arc::new(load(path)?)` still gives an
/// `Arc<dyn Tokenizer>`).
impl<T: Tokenizer + ?Sized> Tokenizer for Arc<T> {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<TokenId>, TokenizerError> {
        (**self).encode(text, add_special_tokens)
    }

    fn decode(&self, ids: &[TokenId], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        (**self).decode(ids, skip_special_tokens)
    }

    fn token_to_id(&self, token: &str) -> Option<TokenId> {
        (**self).token_to_id(token)
    }

    fn id_to_token(&self, id: TokenId) -> Option<String> {
        (**self).id_to_token(id)
    }

    fn vocab_size(&self) -> usize {
        (**self).vocab_size()
    }
}
