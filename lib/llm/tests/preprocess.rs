//! Preprocessing with the shipped model, checked against what the Dynamo frontend produced
//! for the same requests (the `formatted_prompt` / `token_ids` annotations and usage counts of
//! the captured HTTP transcripts).

use std::path::Path;
use std::sync::LazyLock;

use serde_json::json;
use stator_llm::Error;
use stator_llm::model_card::ModelDeploymentCard;
use stator_llm::preprocess::{ModelPreprocessor, StopRequest};

fn card() -> ModelDeploymentCard {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock");
    ModelDeploymentCard::from_local_path(dir, Some("qwen2.5-0.5b-mock")).unwrap()
}

/// Loading the tokenizer is the slow part of these tests; share one preprocessor.
static PREPROCESSOR: LazyLock<ModelPreprocessor> =
    LazyLock::new(|| ModelPreprocessor::from_card(&card()).expect("shipped model loads"));

#[test]
fn chat_prompt_and_tokens_match_dynamo() {
    let pre = &*PREPROCESSOR;
    let messages = json!([{"role": "user", "content": "Write one sentence about the ocean."}]);
    let prompt = pre.render_chat(&messages, None, true, None).unwrap();
    assert_eq!(
        prompt,
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n\
         <|im_start|>user\nWrite one sentence about the ocean.<|im_end|>\n<|im_start|>assistant\n"
    );
    let ids = pre.tokenize(&prompt, false).unwrap();
    assert_eq!(
        ids,
        vec![
            151_644, 8948, 198, 2610, 525, 1207, 16948, 11, 3465, 553, 54364, 14817, 13, 1446, 525,
            264, 10950, 17847, 13, 151_645, 198, 151_644, 872, 198, 7985, 825, 11652, 911, 279,
            17951, 13, 151_645, 198, 151_644, 77091, 198
        ]
    );
}

#[test]
fn text_content_parts_are_joined() {
    let pre = &*PREPROCESSOR;
    let messages = json!([{"role": "user", "content": [
        {"type": "text", "text": "Describe"}, {"type": "text", "text": " the sea."}
    ]}]);
    let prompt = pre.render_chat(&messages, None, true, None).unwrap();
    assert!(
        prompt.contains("<|im_start|>user\nDescribe\n the sea.<|im_end|>"),
        "{prompt}"
    );
    // Dynamo reported 34 prompt tokens for this request.
    assert_eq!(pre.tokenize(&prompt, false).unwrap().len(), 34);
}

#[test]
fn stop_conditions_carry_the_model_eos_ids() {
    let pre = &*PREPROCESSOR;
    assert_eq!(pre.eos_token_ids(), [151_645, 151_643]);
    assert_eq!(pre.mdc_sum(), card().mdc_sum());
    let stop = vec!["xyz".to_owned()];
    let request = StopRequest {
        max_tokens: Some(3),
        stop: &stop,
        ..StopRequest::default()
    };
    let conditions = pre.stop_conditions(&request, 36).unwrap();
    assert_eq!(conditions.stop_token_ids_hidden, vec![151_645, 151_643]);
    assert_eq!(conditions.max_tokens, Some(3));
    assert_eq!(conditions.stop, stop);
}

#[test]
fn published_context_length_bounds_the_request() {
    let mut card = card();
    card.runtime_config.context_length = Some(40);
    let pre = ModelPreprocessor::from_card(&card).unwrap();
    assert_eq!(pre.context_length(), Some(40));
    let filled = pre.stop_conditions(&StopRequest::default(), 36).unwrap();
    assert_eq!(filled.max_tokens, Some(4));
    let too_many = StopRequest {
        max_tokens: Some(5),
        ..StopRequest::default()
    };
    assert!(matches!(
        pre.stop_conditions(&too_many, 36),
        Err(Error::ContextLengthExceeded(_))
    ));
}
