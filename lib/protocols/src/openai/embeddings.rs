//! `POST /v1/embeddings` request and response.

use serde::{Deserialize, Serialize};

use crate::nvext::NvExt;

/// `input`: text or token ids, single or batched.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingInput {
    /// One text.
    Text(String),
    /// A batch of texts.
    TextBatch(Vec<String>),
    /// One pre-tokenized input.
    Tokens(Vec<u32>),
    /// A batch of pre-tokenized inputs.
    TokensBatch(Vec<Vec<u32>>),
}

impl EmbeddingInput {
    /// Number of inputs in the batch.
    pub fn batch_size(&self) -> usize {
        match self {
            Self::Text(_) | Self::Tokens(_) => 1,
            Self::TextBatch(v) => v.len(),
            Self::TokensBatch(v) => v.len(),
        }
    }
}

/// An embeddings request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(expecting = "struct NvCreateEmbeddingRequest")]
pub struct EmbeddingRequest {
    /// The served model name.
    pub model: String,
    /// What to embed.
    pub input: EmbeddingInput,
    /// `float` (default) or `base64`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub encoding_format: Option<String>,
    /// Output dimensions (models that support truncation).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub dimensions: Option<u32>,
    /// End-user id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user: Option<String>,
    /// Include model-declared special tokens for raw text inputs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub add_special_tokens: Option<bool>,
    /// Keep only the first N tokens (`-1`: the model's maximum).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub truncate_prompt_tokens: Option<i64>,
    /// NVIDIA extensions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub nvext: Option<NvExt>,
}

/// An embedding vector, as floats or base64 of little-endian f32.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum EmbeddingVector {
    /// `encoding_format: float`.
    Float(Vec<f32>),
    /// `encoding_format: base64`.
    Base64(String),
}

/// One embedding of the response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Embedding {
    /// Always `embedding`.
    pub object: String,
    /// The input's index.
    pub index: u32,
    /// The vector.
    pub embedding: EmbeddingVector,
}

/// `usage` of an embeddings response.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct EmbeddingUsage {
    /// Tokens in the inputs.
    pub prompt_tokens: u32,
    /// Same as `prompt_tokens`.
    pub total_tokens: u32,
}

/// An embeddings response.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EmbeddingResponse {
    /// Always `list`.
    pub object: String,
    /// The embeddings in input order.
    pub data: Vec<Embedding>,
    /// The served model name.
    pub model: String,
    /// Token accounting.
    pub usage: EmbeddingUsage,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_and_response_round_trip() {
        let req: EmbeddingRequest =
            serde_json::from_str(r#"{"model":"m","input":["a","b"]}"#).unwrap();
        assert_eq!(req.input.batch_size(), 2);
        let resp = EmbeddingResponse {
            object: "list".into(),
            data: vec![Embedding {
                object: "embedding".into(),
                index: 0,
                embedding: EmbeddingVector::Float(vec![0.5, -1.0]),
            }],
            model: "m".into(),
            usage: EmbeddingUsage {
                prompt_tokens: 2,
                total_tokens: 2,
            },
        };
        let json = serde_json::to_string(&resp).unwrap();
        assert_eq!(
            serde_json::from_str::<EmbeddingResponse>(&json).unwrap(),
            resp
        );
    }
}
