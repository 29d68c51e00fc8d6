//! The model deployment card a worker publishes, and its discovery record.

use std::path::Path;

use stator_llm::model_card::ModelDeploymentCard;
use stator_mocker::MockerConfig;
use stator_runtime::InstanceId;
use stator_runtime::discovery::{DiscoveryRecord, ModelRecord};
use stator_runtime::names::EndpointId;

use crate::error::WorkerError;

/// The engine facts a card describes besides the model files.
#[derive(Debug, Clone, PartialEq)]
pub struct CardSettings {
    /// The served model name.
    pub model_name: String,
    /// Tokens per KV block (`kv_cache_block_size`).
    pub block_size: u32,
    /// Context length the frontend enforces; `None` publishes none (`0`).
    pub context_length: Option<u32>,
    /// The simulated engine's shape, for a mocker worker (KV capacity, batch limits, events).
    pub mocker: Option<MockerConfig>,
}

/// Builds the card of an aggregated `Chat | Completions` worker that takes tokens, from the
/// model directory (canonicalized, so frontends started elsewhere find the files).
pub fn build_card(
    model_path: &Path,
    settings: &CardSettings,
) -> Result<ModelDeploymentCard, WorkerError> {
    let dir = model_path
        .canonicalize()
        .map_err(|e| WorkerError::Config(format!("--model-path {}: {e}", model_path.display())))?;
    let mut card = ModelDeploymentCard::from_local_path(&dir, Some(&settings.model_name))?;
    card.kv_cache_block_size = settings.block_size;
    let context_length = settings.context_length.unwrap_or(0);
    card.context_length = context_length;
    let runtime = &mut card.runtime_config;
    runtime.context_length = Some(context_length);
    if let Some(mocker) = &settings.mocker {
        let limit = |n: usize| (n != usize::MAX).then_some(n as u64);
        runtime.total_kv_blocks = Some(mocker.num_gpu_blocks as u64);
        runtime.max_num_seqs = limit(mocker.max_num_seqs);
        runtime.max_num_batched_tokens = limit(mocker.max_num_batched_tokens);
        runtime.kv_event_publishing_enabled = mocker.enable_prefix_caching;
        runtime.data_parallel_size = mocker.dp_size;
    }
    Ok(card)
}

/// The `Model` record of `card` for `instance_id` on `endpoint`
/// (key `v1/mdc/{ns}/{comp}/{ep}/{instance_id:x}`).
pub fn model_record(
    card: &ModelDeploymentCard,
    endpoint: &EndpointId,
    instance_id: InstanceId,
) -> Result<DiscoveryRecord, WorkerError> {
    let card_json = serde_json::to_value(card)
        .map_err(|e| WorkerError::Config(format!("cannot encode the model card: {e}")))?;
    Ok(DiscoveryRecord::Model(ModelRecord {
        namespace: endpoint.namespace.clone(),
        component: endpoint.component.clone(),
        endpoint: endpoint.name.clone(),
        instance_id,
        card_json,
        model_suffix: None,
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model_dir() -> std::path::PathBuf {
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock")
    }

    #[test]
    fn mocker_card_has_dynamo_fields_and_engine_facts() {
        let settings = CardSettings {
            model_name: "qwen-mock".into(),
            block_size: 64,
            context_length: None,
            mocker: Some(MockerConfig::default()),
        };
        let card = build_card(&model_dir(), &settings).unwrap();
        let endpoint = EndpointId::parse("dyn://dynamo.backend.generate").unwrap();
        let record = model_record(&card, &endpoint, InstanceId(0xabc)).unwrap();
        assert_eq!(record.key(), "dynamo/backend/generate/abc");
        let DiscoveryRecord::Model(model) = record else {
            panic!("a model record")
        };
        let json = &model.card_json;
        assert_eq!(json["display_name"], "qwen-mock");
        assert_eq!(json["model_type"], "Chat | Completions");
        assert_eq!(json["model_input"], "Tokens");
        assert_eq!(json["worker_type"], "aggregated");
        assert_eq!(json["kv_cache_block_size"], 64);
        assert_eq!(json["runtime_config"]["total_kv_blocks"], 16_384);
        assert_eq!(json["runtime_config"]["max_num_seqs"], 256);
        assert_eq!(json["runtime_config"]["max_num_batched_tokens"], 8192);
        assert_eq!(json["runtime_config"]["kv_event_publishing_enabled"], true);
        assert!(Path::new(json["source_path"].as_str().unwrap()).is_absolute());
    }

    #[test]
    fn echo_card_publishes_the_context_length() {
        let settings = CardSettings {
            model_name: "m".into(),
            block_size: 16,
            context_length: Some(4096),
            mocker: None,
        };
        let card = build_card(&model_dir(), &settings).unwrap();
        assert_eq!(card.enforced_context_length(), Some(4096));
        assert_eq!(card.runtime_config.total_kv_blocks, None);
        assert!(!card.runtime_config.kv_event_publishing_enabled);
        assert!(build_card(Path::new("/nonexistent/model"), &settings).is_err());
    }
}
