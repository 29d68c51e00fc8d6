//! [`ModelDeploymentCard`]: the record a worker publishes so frontends can serve its model.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::{
    CheckedFile, GenerationConfigKind, ModelInfoType, ModelInput, ModelRuntimeConfig, ModelType,
    PromptFormatterArtifact, TokenizerKind, WorkerType,
};
use crate::Error;

/// KV-cache block size written into cards built from a directory, until the worker sets its own.
pub const DEFAULT_KV_CACHE_BLOCK_SIZE: u32 = 16;

/// The model deployment card (MDC), in Dynamo 1.6.1's JSON shape (`card_json` of a `v1/mdc`
/// discovery record).
///
/// Optional fields Dynamo omits when unset (`chat_template_file`, `lora`, `user_data`, ...) are
/// omitted here too, so a card read from a Dynamo worker re-serializes to the same JSON.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelDeploymentCard {
    /// The served model name (what clients put in `model`).
    pub display_name: String,
    /// [`slugify`]`(display_name)`, used in file URLs and cache paths.
    pub slug: String,
    /// Where the worker loaded the model from (local path or HF repo).
    pub source_path: String,
    /// The model's `config.json`.
    pub model_info: Option<ModelInfoType>,
    /// The tokenizer file.
    pub tokenizer: Option<TokenizerKind>,
    /// The file holding the chat template (usually `tokenizer_config.json`).
    pub prompt_formatter: Option<PromptFormatterArtifact>,
    /// A standalone chat template file that overrides the one in `prompt_formatter`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub chat_template_file: Option<PromptFormatterArtifact>,
    /// The model's `generation_config.json`.
    pub gen_config: Option<GenerationConfigKind>,
    /// Other files the worker publishes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub extra_files: Option<Value>,
    /// `max_position_embeddings` from `config.json`.
    #[serde(default)]
    pub architectural_max_context_length: u32,
    /// The context length the engine enforces (legacy mirror of `runtime_config.context_length`;
    /// `0` means none published).
    #[serde(default)]
    pub context_length: u32,
    /// Tokens per KV-cache block.
    #[serde(default)]
    pub kv_cache_block_size: u32,
    /// How many times a failed request may be migrated to another worker.
    #[serde(default)]
    pub migration_limit: u32,
    /// The API surfaces served.
    #[serde(default)]
    pub model_type: ModelType,
    /// Whether the frontend tokenizes (`Tokens`) or the engine does (`Text`).
    #[serde(default)]
    pub model_input: ModelInput,
    /// The worker's role; a card without one is misconfigured and never becomes ready.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub worker_type: Option<WorkerType>,
    /// Peer worker types that must be ready first, in disjunctive normal form.
    #[serde(default)]
    pub needs: Vec<Vec<WorkerType>>,
    /// LoRA adapter served by this card.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lora: Option<Value>,
    /// Other names the model answers to.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub aliases: Option<Value>,
    /// Free-form data from the worker.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub user_data: Option<Value>,
    /// Router settings for this worker set, overriding the frontend's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub router_config: Option<Value>,
    /// Tensor model description (tensor-based models).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tensor_model_config: Option<Value>,
    /// Identity of the KV indexer serving this worker set.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub indexer_identity: Option<Value>,
    /// Engine facts.
    #[serde(default)]
    pub runtime_config: ModelRuntimeConfig,
    /// Multimodal decoder settings.
    #[serde(default)]
    pub media_decoder: Option<Value>,
    /// Multimodal fetcher settings.
    #[serde(default)]
    pub media_fetcher: Option<Value>,
}

impl ModelDeploymentCard {
    /// Builds a card from a local Hugging Face model directory.
    ///
    /// `config.json` and `tokenizer.json` are required; `tokenizer_config.json`,
    /// `generation_config.json` and `chat_template.jinja` are used when present. Every file is
    /// referenced by `dir.join(name)` (not canonicalized) with its blake3 checksum and size.
    /// `display_name` defaults to the directory's name. The card describes an aggregated
    /// `Chat | Completions` worker taking tokens, with no published context limit; callers
    /// adjust the public fields (block size, runtime config, worker type) for their engine.
    pub fn from_local_path(
        dir: impl AsRef<Path>,
        display_name: Option<&str>,
    ) -> Result<Self, Error> {
        let dir = dir.as_ref();
        let required = |file: &'static str| {
            let path = dir.join(file);
            if path.is_file() {
                CheckedFile::from_local(&path)
            } else {
                Err(Error::MissingFile {
                    dir: dir.to_path_buf(),
                    file,
                })
            }
        };
        let optional = |file: &str| {
            let path = dir.join(file);
            path.is_file()
                .then(|| CheckedFile::from_local(&path))
                .transpose()
        };

        let config = required("config.json")?;
        let tokenizer = required("tokenizer.json")?;
        let architectural_max_context_length = max_position_embeddings(&config)?;
        let display_name = display_name.map_or_else(
            || {
                dir.file_name()
                    .map_or_else(|| dir.to_string_lossy(), |name| name.to_string_lossy())
                    .into_owned()
            },
            str::to_owned,
        );

        Ok(Self {
            slug: slugify(&display_name),
            display_name,
            source_path: dir.to_string_lossy().into_owned(),
            model_info: Some(ModelInfoType::HfConfigJson(config)),
            tokenizer: Some(TokenizerKind::HfTokenizerJson(tokenizer)),
            prompt_formatter: optional("tokenizer_config.json")?
                .map(PromptFormatterArtifact::HfTokenizerConfigJson),
            chat_template_file: optional("chat_template.jinja")?.map(|file| {
                PromptFormatterArtifact::HfChatTemplate {
                    is_custom: false,
                    file,
                }
            }),
            gen_config: optional("generation_config.json")?
                .map(GenerationConfigKind::HfGenerationConfigJson),
            extra_files: None,
            architectural_max_context_length,
            context_length: 0,
            kv_cache_block_size: DEFAULT_KV_CACHE_BLOCK_SIZE,
            migration_limit: 0,
            model_type: ModelType::CHAT | ModelType::COMPLETIONS,
            model_input: ModelInput::Tokens,
            worker_type: Some(WorkerType::Aggregated),
            needs: Vec::new(),
            lora: None,
            aliases: None,
            user_data: None,
            router_config: None,
            tensor_model_config: None,
            indexer_identity: None,
            runtime_config: ModelRuntimeConfig {
                context_length: Some(0),
                ..ModelRuntimeConfig::default()
            },
            media_decoder: None,
            media_fetcher: None,
        })
    }

    /// Every file the card references.
    pub fn files(&self) -> Vec<&CheckedFile> {
        let mut files = Vec::new();
        if let Some(ModelInfoType::HfConfigJson(f)) = &self.model_info {
            files.push(f);
        }
        if let Some(TokenizerKind::HfTokenizerJson(f) | TokenizerKind::TikTokenModel(f)) =
            &self.tokenizer
        {
            files.push(f);
        }
        for artifact in [&self.prompt_formatter, &self.chat_template_file]
            .into_iter()
            .flatten()
        {
            files.push(artifact.file());
        }
        if let Some(GenerationConfigKind::HfGenerationConfigJson(f)) = &self.gen_config {
            files.push(f);
        }
        files
    }

    /// Mutable access to every file the card references (to rewrite paths into URLs).
    pub fn files_mut(&mut self) -> Vec<&mut CheckedFile> {
        let mut files = Vec::new();
        if let Some(ModelInfoType::HfConfigJson(f)) = &mut self.model_info {
            files.push(f);
        }
        if let Some(TokenizerKind::HfTokenizerJson(f) | TokenizerKind::TikTokenModel(f)) =
            &mut self.tokenizer
        {
            files.push(f);
        }
        for artifact in [&mut self.prompt_formatter, &mut self.chat_template_file]
            .into_iter()
            .flatten()
        {
            files.push(artifact.file_mut());
        }
        if let Some(GenerationConfigKind::HfGenerationConfigJson(f)) = &mut self.gen_config {
            files.push(f);
        }
        files
    }

    /// The context limit the frontend enforces, if the engine published one (non-zero
    /// `runtime_config.context_length`, else non-zero `context_length`).
    pub fn enforced_context_length(&self) -> Option<u32> {
        self.runtime_config
            .context_length
            .filter(|&n| n > 0)
            .or((self.context_length > 0).then_some(self.context_length))
    }
}

impl PromptFormatterArtifact {
    /// The file this artifact points at.
    pub fn file(&self) -> &CheckedFile {
        match self {
            Self::HfTokenizerConfigJson(file)
            | Self::HfChatTemplate { file, .. }
            | Self::HfChatTemplateJson(file) => file,
        }
    }

    /// Mutable access to the file this artifact points at.
    pub fn file_mut(&mut self) -> &mut CheckedFile {
        match self {
            Self::HfTokenizerConfigJson(file)
            | Self::HfChatTemplate { file, .. }
            | Self::HfChatTemplateJson(file) => file,
        }
    }
}

/// Lowercases ASCII letters and replaces every character other than `[a-z0-9_-]` by `_`,
/// giving a name safe for URL path segments and file names (`Qwen/Qwen3-0.6B` →
/// `qwen_qwen3-0_6b`).
pub fn slugify(name: &str) -> String {
    name.chars()
        .map(|c| match c.to_ascii_lowercase() {
            c @ ('a'..='z' | '0'..='9' | '-' | '_') => c,
            _ => '_',
        })
        .collect()
}

/// `max_position_embeddings` of a `config.json` (top level, or under `text_config` for
/// multimodal models); `0` when absent.
fn max_position_embeddings(config: &CheckedFile) -> Result<u32, Error> {
    let json = super::load::read_json(config)?;
    let value = json
        .get("max_position_embeddings")
        .or_else(|| json.pointer("/text_config/max_position_embeddings"));
    match value {
        None => Ok(0),
        Some(v) => v
            .as_u64()
            .and_then(|n| u32::try_from(n).ok())
            .ok_or_else(|| Error::InvalidModelFile {
                path: config.path.clone().into(),
                reason: format!("max_position_embeddings is not a context length: {v}"),
            }),
    }
}
