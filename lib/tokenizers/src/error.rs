//! The crate's error type.

use std::path::PathBuf;

/// Errors raised while loading a tokenizer or encoding/decoding with it.
#[derive(Debug, thiserror::Error)]
pub enum TokenizerError {
    /// The tokenizer file could not be read or parsed.
    #[error("failed to load tokenizer from {path}: {message}")]
    Load {
        /// The file that failed to load.
        path: PathBuf,
        /// What the underlying library reported.
        message: String,
    },
    /// The tokenizer file needs a feature [`crate::BpeTokenizer`] does not reproduce exactly
    /// (use [`crate::HfTokenizer`] for it; [`crate::load`] does so by itself).
    #[error("tokenizer not supported by the fast implementation: {0}")]
    Unsupported(String),
    /// Encoding a text failed.
    #[error("failed to encode text: {0}")]
    Encode(String),
    /// Decoding token ids failed.
    #[error("failed to decode token ids: {0}")]
    Decode(String),
}
