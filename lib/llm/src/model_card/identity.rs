//! The MDC checksum (`mdc_sum`) that identifies a worker set.

use std::fmt::Write as _;

use serde_json::{Value, json};

use super::{
    CheckedFile, GenerationConfigKind, ModelDeploymentCard, ModelInfoType, PromptFormatterArtifact,
    TokenizerKind,
};

impl ModelDeploymentCard {
    /// The MDC checksum: 64 hex digits of blake3 over a canonical JSON (keys sorted, no
    /// whitespace) of the fields that decide how the frontend serves the model.
    ///
    /// Included: `display_name`, `slug`, the checksum of every referenced file keyed by its
    /// role (not its path, which a worker rewrites into its own URL), the context lengths,
    /// `kv_cache_block_size`, `model_type`, `model_input`, `worker_type`, `needs`, `lora`,
    /// `router_config`, and from `runtime_config` the parsers and tool-prompt settings.
    /// Excluded: file paths and sizes, `source_path`, `migration_limit`, `user_data` and
    /// per-engine capacity facts (`total_kv_blocks`, `max_num_seqs`, data-parallel ranks,
    /// `runtime_data`), so workers of one deployment with different capacity or ranks form one
    /// worker set while a changed tokenizer, template or parser starts a new one.
    pub fn mdc_sum(&self) -> String {
        let sum = |file: Option<&CheckedFile>| file.map(|f| f.checksum.to_string());
        let tokenizer = self.tokenizer.as_ref().map(|t| match t {
            TokenizerKind::HfTokenizerJson(f) | TokenizerKind::TikTokenModel(f) => f,
        });
        let rc = &self.runtime_config;
        let identity = json!({
            "display_name": self.display_name,
            "slug": self.slug,
            "files": {
                "model_info": sum(self.model_info.as_ref().map(|ModelInfoType::HfConfigJson(f)| f)),
                "tokenizer": sum(tokenizer),
                "prompt_formatter": sum(self.prompt_formatter.as_ref().map(PromptFormatterArtifact::file)),
                "chat_template_file": sum(self.chat_template_file.as_ref().map(PromptFormatterArtifact::file)),
                "gen_config": sum(self.gen_config.as_ref().map(|GenerationConfigKind::HfGenerationConfigJson(f)| f)),
            },
            "architectural_max_context_length": self.architectural_max_context_length,
            "context_length": self.context_length,
            "kv_cache_block_size": self.kv_cache_block_size,
            "model_type": self.model_type,
            "model_input": self.model_input,
            "worker_type": self.worker_type,
            "needs": self.needs,
            "lora": self.lora,
            "router_config": self.router_config,
            "runtime_config": {
                "context_length": rc.context_length,
                "tool_call_parser": rc.tool_call_parser,
                "reasoning_parser": rc.reasoning_parser,
                "tool_call_arguments_format": rc.tool_call_arguments_format,
                "exclude_tools_when_tool_choice_none": rc.exclude_tools_when_tool_choice_none,
            },
        });
        let mut canonical = String::new();
        write_canonical(&identity, &mut canonical);
        blake3::hash(canonical.as_bytes()).to_hex().to_string()
    }
}

/// Compact JSON with object keys sorted at every level, independent of map ordering features.
fn write_canonical(value: &Value, out: &mut String) {
    match value {
        Value::Object(map) => {
            let mut entries: Vec<_> = map.iter().collect();
            entries.sort_by(|a, b| a.0.cmp(b.0));
            out.push('{');
            for (i, (key, value)) in entries.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(&Value::String(key.clone()), out);
                out.push(':');
                write_canonical(value, out);
            }
            out.push('}');
        }
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(item, out);
            }
            out.push(']');
        }
        scalar => {
            let _ = write!(out, "{scalar}");
        }
    }
}
