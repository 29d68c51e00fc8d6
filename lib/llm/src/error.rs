//! The crate's error type.

use std::path::PathBuf;

use stator_tokenizers::TokenizerError;

/// Everything that can go wrong while building, loading or using a model's serving pieces.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A model file could not be read.
    #[error("cannot read {path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// A model file is not the JSON it should be.
    #[error("{path} is not valid JSON: {source}")]
    Json {
        /// The file.
        path: PathBuf,
        /// The parse error.
        #[source]
        source: serde_json::Error,
    },
    /// A required file is missing from the model directory.
    #[error("model directory {dir} has no {file}")]
    MissingFile {
        /// The model directory.
        dir: PathBuf,
        /// The missing file name.
        file: &'static str,
    },
    /// A model file is malformed (a required key is missing or has the wrong type).
    #[error("{path}: {reason}")]
    InvalidModelFile {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file's contents do not match the checksum the model card publishes.
    #[error("checksum mismatch for {path}: the card says {expected}, the file has {actual}")]
    ChecksumMismatch {
        /// Where the file was read from.
        path: String,
        /// The checksum in the card.
        expected: String,
        /// The checksum of the bytes read.
        actual: String,
    },
    /// A checksum string is not `blake3:<64 hex digits>`.
    #[error("invalid checksum {0:?}: expected \"blake3:<64 hex digits>\"")]
    InvalidChecksum(String),
    /// A card file lives somewhere this build cannot fetch from (`hf://`, `https://`).
    #[error("cannot fetch {0}: only local paths and http:// URLs are supported")]
    UnsupportedLocation(String),
    /// Downloading a card file failed.
    #[error("cannot fetch {url}: {reason}")]
    Fetch {
        /// The URL.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The model has no chat template.
    #[error("the model has no chat template")]
    NoChatTemplate,
    /// The chat template could not be compiled or rendered.
    #[error("chat template error: {0}")]
    Template(String),
    /// The chat template called `raise_exception(message)`.
    #[error("chat template rejected the request: {0}")]
    TemplateRaised(String),
    /// The tokenizer failed.
    #[error(transparent)]
    Tokenizer(#[from] TokenizerError),
    /// The prompt plus requested output does not fit the model's context window.
    #[error("{0}")]
    ContextLengthExceeded(String),
}
