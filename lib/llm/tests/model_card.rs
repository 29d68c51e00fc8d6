//! Model deployment card: Dynamo JSON compatibility, building from the shipped model directory,
//! checksum verification and the `mdc_sum`.

use std::path::{Path, PathBuf};

use serde_json::Value;
use stator_llm::Error;
use stator_llm::model_card::{ModelDeploymentCard, WorkerType};
use stator_tokenizers::Tokenizer;

const EXAMPLE: &str = include_str!("data/mdc_example.json");

fn model_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock")
}

fn example_card_json() -> Value {
    let record: Value = serde_json::from_str(EXAMPLE).unwrap();
    record["card_json"].clone()
}

/// The card the shipped directory yields with the settings the captured Dynamo mocker used.
fn card_like_example() -> ModelDeploymentCard {
    let mut card = ModelDeploymentCard::from_local_path(model_dir(), Some("qwen-mock")).unwrap();
    card.kv_cache_block_size = 64;
    let rc = &mut card.runtime_config;
    rc.total_kv_blocks = Some(16384);
    rc.max_num_seqs = Some(256);
    rc.max_num_batched_tokens = Some(8192);
    rc.enable_local_indexer = true;
    rc.kv_event_publishing_enabled = true;
    rc.runtime_data
        .insert("output_replay_consumer".into(), Value::Bool(true));
    card
}

/// Replaces every `path` and `source_path` string so cards from different places compare.
fn without_paths(mut json: Value) -> Value {
    fn walk(value: &mut Value) {
        match value {
            Value::Object(map) => {
                for (key, v) in map.iter_mut() {
                    if key == "path" || key == "source_path" {
                        *v = Value::String("<path>".into());
                    } else {
                        walk(v);
                    }
                }
            }
            Value::Array(items) => items.iter_mut().for_each(walk),
            _ => {}
        }
    }
    walk(&mut json);
    json
}

#[test]
fn dynamo_card_round_trips_to_identical_json() {
    let original = example_card_json();
    let card: ModelDeploymentCard = serde_json::from_value(original.clone()).unwrap();
    assert_eq!(card.worker_type, Some(WorkerType::Aggregated));
    assert_eq!(card.runtime_config.total_kv_blocks, Some(16384));
    assert_eq!(serde_json::to_value(&card).unwrap(), original);
    // Field order matches Dynamo's too (serde_json keeps insertion order in this crate).
    let keys: Vec<String> = serde_json::to_value(&card).unwrap()["runtime_config"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    let expected: Vec<String> = original["runtime_config"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect();
    assert_eq!(keys, expected);
}

#[test]
fn card_built_from_shipped_dir_matches_the_captured_card() {
    let built = serde_json::to_value(card_like_example()).unwrap();
    // Same files (identical checksums and sizes), same structure, same values.
    assert_eq!(
        without_paths(built.clone()),
        without_paths(example_card_json())
    );
    let path = built["tokenizer"]["hf_tokenizer_json"]["path"]
        .as_str()
        .unwrap();
    assert!(path.ends_with("qwen2.5-0.5b-mock/tokenizer.json"), "{path}");
}

#[test]
fn default_display_name_is_the_directory_name() {
    let card = ModelDeploymentCard::from_local_path(model_dir(), None).unwrap();
    assert_eq!(card.display_name, "qwen2.5-0.5b-mock");
    assert_eq!(card.slug, "qwen2_5-0_5b-mock");
    assert_eq!(card.enforced_context_length(), None);
}

#[test]
fn loaders_read_the_shipped_files() {
    let card = card_like_example();
    let tokenizer = card.load_tokenizer().unwrap();
    assert_eq!(tokenizer.token_to_id("<|im_end|>"), Some(151_645));
    assert_eq!(card.eos_token_ids().unwrap(), vec![151_645, 151_643]);
    let template = card.chat_template_source().unwrap().unwrap();
    assert!(template.as_str().unwrap().contains("<|im_start|>"));
}

/// Copies the shipped model directory into a temporary one.
fn copy_model() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for entry in std::fs::read_dir(model_dir()).unwrap() {
        let entry = entry.unwrap();
        std::fs::copy(entry.path(), dir.path().join(entry.file_name())).unwrap();
    }
    dir
}

#[test]
fn tampered_files_are_rejected_with_a_checksum_error() {
    let dir = copy_model();
    let card = ModelDeploymentCard::from_local_path(dir.path(), None).unwrap();
    std::fs::write(
        dir.path().join("generation_config.json"),
        b"{\"eos_token_id\": 1}",
    )
    .unwrap();
    let err = card.eos_token_ids().unwrap_err();
    assert!(matches!(err, Error::ChecksumMismatch { .. }), "{err}");
    assert!(err.to_string().contains("generation_config.json"), "{err}");
}

#[test]
fn missing_tokenizer_is_a_clear_error() {
    let dir = copy_model();
    std::fs::remove_file(dir.path().join("tokenizer.json")).unwrap();
    let err = ModelDeploymentCard::from_local_path(dir.path(), None).unwrap_err();
    assert!(
        matches!(
            err,
            Error::MissingFile {
                file: "tokenizer.json",
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn mdc_sum_tracks_identity_not_location_or_capacity() {
    let card = card_like_example();
    let sum = card.mdc_sum();
    assert_eq!(sum.len(), 64);
    assert!(sum.chars().all(|c| c.is_ascii_hexdigit()));

    let mut moved = card.clone();
    for file in moved.files_mut() {
        file.path = format!(
            "http://worker:8081/v1/metadata/ns/c/e/qwen-mock/_base/{}",
            file.file_name()
        );
    }
    moved.source_path = "/elsewhere".into();
    moved.runtime_config.total_kv_blocks = Some(1);
    moved.runtime_config.data_parallel_start_rank = 4;
    assert_eq!(moved.mdc_sum(), sum);

    let mut retokenized = card.clone();
    let dir = copy_model();
    std::fs::write(dir.path().join("tokenizer_config.json"), b"{}").unwrap();
    retokenized.prompt_formatter = ModelDeploymentCard::from_local_path(dir.path(), None)
        .unwrap()
        .prompt_formatter;
    assert_ne!(retokenized.mdc_sum(), sum);

    let mut reparsed = card;
    reparsed.runtime_config.tool_call_parser = Some("hermes".into());
    assert_ne!(reparsed.mdc_sum(), sum);
}
