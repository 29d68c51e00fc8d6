//! Reading a card's files back: verified bytes, parsed JSON, the tokenizer, EOS ids.

use std::sync::Arc;

use serde_json::Value;
use stator_tokenizers::{TokenId, Tokenizer};

use super::{
    CheckedFile, GenerationConfigKind, ModelDeploymentCard, ModelInfoType, PromptFormatterArtifact,
    TokenizerKind,
};
use crate::Error;

/// Reads a card file (checksum verified) and parses it as JSON.
pub(crate) fn read_json(file: &CheckedFile) -> Result<Value, Error> {
    let bytes = file.read_verified()?;
    serde_json::from_slice(&bytes).map_err(|source| Error::Json {
        path: file.path.clone().into(),
        source,
    })
}

impl ModelDeploymentCard {
    /// Loads the tokenizer (checksum verified): the compact byte-level BPE where it applies,
    /// Hugging Face `tokenizers` otherwise ([`stator_tokenizers::load_bytes`]).
    pub fn load_tokenizer(&self) -> Result<Arc<dyn Tokenizer>, Error> {
        match &self.tokenizer {
            Some(TokenizerKind::HfTokenizerJson(file)) => {
                Ok(stator_tokenizers::load_bytes(&file.read_verified()?)?)
            }
            Some(TokenizerKind::TikTokenModel(file)) => Err(Error::UnsupportedLocation(format!(
                "{} (tiktoken models are not supported)",
                file.path
            ))),
            None => Err(Error::InvalidModelFile {
                path: self.source_path.clone().into(),
                reason: "the model card has no tokenizer".to_owned(),
            }),
        }
    }

    /// The parsed `config.json`, if the card has one.
    pub fn model_config_json(&self) -> Result<Option<Value>, Error> {
        match &self.model_info {
            Some(ModelInfoType::HfConfigJson(file)) => read_json(file).map(Some),
            None => Ok(None),
        }
    }

    /// The parsed `tokenizer_config.json`, if the card's prompt formatter is one.
    pub fn tokenizer_config_json(&self) -> Result<Option<Value>, Error> {
        match &self.prompt_formatter {
            Some(PromptFormatterArtifact::HfTokenizerConfigJson(file)) => read_json(file).map(Some),
            _ => Ok(None),
        }
    }

    /// The parsed `generation_config.json`, if the card has one.
    pub fn generation_config_json(&self) -> Result<Option<Value>, Error> {
        match &self.gen_config {
            Some(GenerationConfigKind::HfGenerationConfigJson(file)) => read_json(file).map(Some),
            None => Ok(None),
        }
    }

    /// The chat template source: the standalone template file when the card has one, else
    /// `chat_template` of `tokenizer_config.json` / `chat_template.json` (a string, or a list
    /// of `{name, template}`).
    pub fn chat_template_source(&self) -> Result<Option<Value>, Error> {
        for artifact in [&self.chat_template_file, &self.prompt_formatter]
            .into_iter()
            .flatten()
        {
            match artifact {
                PromptFormatterArtifact::HfChatTemplate { file, .. } => {
                    let bytes = file.read_verified()?;
                    let text = String::from_utf8(bytes).map_err(|e| Error::InvalidModelFile {
                        path: file.path.clone().into(),
                        reason: format!("chat template is not UTF-8: {e}"),
                    })?;
                    return Ok(Some(Value::String(text)));
                }
                PromptFormatterArtifact::HfTokenizerConfigJson(file)
                | PromptFormatterArtifact::HfChatTemplateJson(file) => {
                    if let Some(template) = read_json(file)?.get_mut("chat_template") {
                        return Ok(Some(template.take()));
                    }
                }
            }
        }
        Ok(None)
    }

    /// The model's end-of-sequence ids, in `generation_config.json` order, else from
    /// `config.json` (`eos_token_id` may be one id or a list). Empty when neither has any.
    pub fn eos_token_ids(&self) -> Result<Vec<TokenId>, Error> {
        for json in [self.generation_config_json()?, self.model_config_json()?]
            .into_iter()
            .flatten()
        {
            let ids = token_ids(json.get("eos_token_id"));
            if !ids.is_empty() {
                return Ok(ids);
            }
        }
        Ok(Vec::new())
    }
}

fn token_ids(value: Option<&Value>) -> Vec<TokenId> {
    let as_id = |v: &Value| v.as_u64().and_then(|n| TokenId::try_from(n).ok());
    match value {
        Some(Value::Array(items)) => items.iter().filter_map(as_id).collect(),
        Some(v) => as_id(v).into_iter().collect(),
        None => Vec::new(),
    }
}
