//! The enums and flags a model card carries: what the model serves, what it takes as input,
//! which role its worker plays, and which files hold its tokenizer, template and configs.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

use super::CheckedFile;

/// The API surfaces a model serves, a bit set serialized like Dynamo's bitflags:
/// flag names joined by `" | "` in bit order (`"Chat | Completions"`), `""` for none.
#[derive(Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ModelType(pub u32);

impl ModelType {
    /// Chat completions.
    pub const CHAT: Self = Self(1);
    /// Text completions.
    pub const COMPLETIONS: Self = Self(1 << 1);
    /// Embeddings.
    pub const EMBEDDING: Self = Self(1 << 2);
    /// Tensor-in, tensor-out models.
    pub const TENSOR_BASED: Self = Self(1 << 3);
    /// Legacy marker of prefill-only workers.
    pub const PREFILL: Self = Self(1 << 4);
    /// Image generation.
    pub const IMAGES: Self = Self(1 << 5);
    /// Audio generation.
    pub const AUDIOS: Self = Self(1 << 6);
    /// Video generation.
    pub const VIDEOS: Self = Self(1 << 7);
    /// Realtime sessions.
    pub const REALTIME: Self = Self(1 << 8);
    /// Classification.
    pub const CLASSIFY: Self = Self(1 << 9);
    /// Pooling.
    pub const POOLING: Self = Self(1 << 10);
    /// Reranking.
    pub const RERANK: Self = Self(1 << 11);

    /// Every named flag with its wire name, in bit order.
    pub const NAMED: [(&'static str, Self); 12] = [
        ("Chat", Self::CHAT),
        ("Completions", Self::COMPLETIONS),
        ("Embedding", Self::EMBEDDING),
        ("TensorBased", Self::TENSOR_BASED),
        ("Prefill", Self::PREFILL),
        ("Images", Self::IMAGES),
        ("Audios", Self::AUDIOS),
        ("Videos", Self::VIDEOS),
        ("Realtime", Self::REALTIME),
        ("Classify", Self::CLASSIFY),
        ("Pooling", Self::POOLING),
        ("Rerank", Self::RERANK),
    ];

    /// No surface (prefill-only workers).
    pub const fn empty() -> Self {
        Self(0)
    }

    /// Whether every flag of `other` is set.
    pub const fn contains(self, other: Self) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both sets.
    #[must_use]
    pub const fn union(self, other: Self) -> Self {
        Self(self.0 | other.0)
    }
}

impl std::ops::BitOr for ModelType {
    type Output = Self;

    fn bitor(self, rhs: Self) -> Self {
        self.union(rhs)
    }
}

impl fmt::Display for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        let mut first = true;
        for (name, flag) in Self::NAMED {
            if self.contains(flag) {
                if !first {
                    f.write_str(" | ")?;
                }
                f.write_str(name)?;
                first = false;
                rest &= !flag.0;
            }
        }
        if rest != 0 {
            if !first {
                f.write_str(" | ")?;
            }
            write!(f, "{rest:#x}")?;
        }
        Ok(())
    }
}

impl fmt::Debug for ModelType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ModelType({self})")
    }
}

/// A `model_type` string that names no known flag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown model type flag {0:?}")]
pub struct UnknownModelType(pub String);

impl FromStr for ModelType {
    type Err = UnknownModelType;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let mut bits = 0;
        for part in s.split('|').map(str::trim).filter(|p| !p.is_empty()) {
            let flag = if let Some(hex) = part.strip_prefix("0x") {
                u32::from_str_radix(hex, 16).map_err(|_| UnknownModelType(part.to_owned()))?
            } else {
                Self::NAMED
                    .iter()
                    .find(|(name, _)| *name == part)
                    .map(|(_, flag)| flag.0)
                    .ok_or_else(|| UnknownModelType(part.to_owned()))?
            };
            bits |= flag;
        }
        Ok(Self(bits))
    }
}

impl Serialize for ModelType {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for ModelType {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let s = String::deserialize(deserializer)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

/// What the engine takes as input, which decides who preprocesses.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, Default)]
pub enum ModelInput {
    /// The engine takes raw text and preprocesses it itself.
    Text,
    /// The frontend renders the template and tokenizes; the engine takes token ids.
    #[default]
    Tokens,
    /// Tensors in, tensors out.
    Tensor,
}

/// The role a worker plays in (possibly disaggregated) serving.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum WorkerType {
    /// Prefill-only worker of a disaggregated deployment.
    Prefill,
    /// Decode worker of a disaggregated deployment.
    Decode,
    /// Multimodal encoder worker.
    Encode,
    /// A worker that does prefill and decode.
    Aggregated,
}

/// Where the model's `config.json` is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ModelInfoType {
    /// A Hugging Face `config.json`.
    HfConfigJson(CheckedFile),
}

/// Where the model's tokenizer is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TokenizerKind {
    /// A Hugging Face `tokenizer.json`.
    HfTokenizerJson(CheckedFile),
    /// A tiktoken BPE rank file.
    TikTokenModel(CheckedFile),
}

/// Where the model's chat template is.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum PromptFormatterArtifact {
    /// `tokenizer_config.json`, whose `chat_template` key holds the template.
    HfTokenizerConfigJson(CheckedFile),
    /// A standalone Jinja template file (`chat_template.jinja` or a custom one).
    HfChatTemplate {
        /// Whether the worker was given a custom template instead of the model's own.
        is_custom: bool,
        /// The template file.
        file: CheckedFile,
    },
    /// A `chat_template.json` file (`{"chat_template": ...}`).
    HfChatTemplateJson(CheckedFile),
}

/// Where the model's generation defaults are.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum GenerationConfigKind {
    /// A Hugging Face `generation_config.json`.
    HfGenerationConfigJson(CheckedFile),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn model_type_serializes_like_dynamo_bitflags() {
        let both = ModelType::CHAT | ModelType::COMPLETIONS;
        assert_eq!(
            serde_json::to_string(&both).unwrap(),
            "\"Chat | Completions\""
        );
        assert_eq!(ModelType::empty().to_string(), "");
        assert_eq!(ModelType::PREFILL.0, 16);
        assert_eq!(ModelType::RERANK.0, 2048);
        let parsed: ModelType = serde_json::from_str("\"Completions | Chat\"").unwrap();
        assert_eq!(parsed, both);
        assert_eq!("".parse::<ModelType>().unwrap(), ModelType::empty());
        assert!("Chat | Nope".parse::<ModelType>().is_err());
        assert_eq!(ModelType(1 | 1 << 20).to_string(), "Chat | 0x100000");
        assert_eq!(
            "Chat | 0x100000".parse::<ModelType>().unwrap(),
            ModelType(1 | 1 << 20)
        );
    }

    #[test]
    fn worker_type_and_input_use_dynamo_spelling() {
        assert_eq!(
            serde_json::to_string(&WorkerType::Aggregated).unwrap(),
            "\"aggregated\""
        );
        assert_eq!(
            serde_json::to_string(&ModelInput::Tokens).unwrap(),
            "\"Tokens\""
        );
        let needs: Vec<Vec<WorkerType>> = serde_json::from_str(r#"[["decode"]]"#).unwrap();
        assert_eq!(needs, vec![vec![WorkerType::Decode]]);
    }
}
