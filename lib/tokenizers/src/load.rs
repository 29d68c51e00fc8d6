//! [`load`]: the fast tokenizer where it applies, Hugging Face's otherwise.

use std::path::Path;
use std::sync::Arc;

use crate::{BpeTokenizer, HfTokenizer, Tokenizer, TokenizerError};

/// Loads a `tokenizer.json` file: a [`BpeTokenizer`] when the file is one it reproduces
/// exactly, an [`HfTokenizer`] otherwise (logged at `info`).
pub fn load(path: impl AsRef<Path>) -> Result<Arc<dyn Tokenizer>, TokenizerError> {
    let path = path.as_ref();
    let bytes = std::fs::read(path).map_err(|e| TokenizerError::Load {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    load_bytes(&bytes).map_err(|e| match e {
        TokenizerError::Load { message, .. } => TokenizerError::Load {
            path: path.to_path_buf(),
            message,
        },
        other => other,
    })
}

/// [`load`] from the contents of a `tokenizer.json` file.
pub fn load_bytes(bytes: &[u8]) -> Result<Arc<dyn Tokenizer>, TokenizerError> {
    match BpeTokenizer::from_bytes(bytes) {
        Ok(fast) => {
            tracing::info!(
                vocab_size = fast.vocab_size(),
                "tokenizer: fast byte-level BPE"
            );
            Ok(Arc::new(fast))
        }
        Err(TokenizerError::Unsupported(reason)) => {
            tracing::info!(%reason, "tokenizer: Hugging Face tokenizers (fast BPE does not apply)");
            Ok(Arc::new(HfTokenizer::from_bytes(bytes)?))
        }
        Err(e) => Err(e),
    }
}
