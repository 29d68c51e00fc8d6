//! Per-request CPU cost of the model-side serving path on the shipped Qwen tokenizer:
//! chat template rendering, tokenization, and detokenizing a 64-token answer.
//!
//! Run: `cargo bench -p stator-llm --bench serving_path`.

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

use criterion::{Criterion, criterion_group, criterion_main};
use serde_json::json;
use stator_llm::backend::{DetokenizeOptions, Detokenizer, EngineDelta, FinishReason};
use stator_llm::model_card::ModelDeploymentCard;
use stator_llm::preprocess::{ModelPreprocessor, StopRequest};

fn preprocessor() -> ModelPreprocessor {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/qwen2.5-0.5b-mock"
    );
    let card = ModelDeploymentCard::from_local_path(dir, None).expect("shipped model card");
    ModelPreprocessor::from_card(&card).expect("shipped model loads")
}

fn bench(c: &mut Criterion) {
    let pre = preprocessor();
    let messages = json!([
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Write two sentences about the ocean and its tides."}
    ]);
    let answer = "The ocean covers most of the planet, and its tides rise and fall twice a day \
                  as the Moon pulls on the water. Coastal life depends on that rhythm: 潮汐 🌊.";
    let answer_ids = pre.tokenize(answer, false).expect("tokenizes");
    let answer_ids = &answer_ids[..answer_ids.len().min(64)];
    let stop = vec!["<END>".to_owned()];

    c.bench_function("render_chat", |b| {
        b.iter(|| {
            pre.render_chat(&messages, None, true, None)
                .expect("renders")
        });
    });
    let prompt = pre
        .render_chat(&messages, None, true, None)
        .expect("renders");
    c.bench_function("tokenize_prompt", |b| {
        b.iter(|| pre.tokenize(&prompt, false).expect("tokenizes"));
    });
    c.bench_function("detokenize_64_tokens_one_per_item", |b| {
        b.iter(|| {
            let request = StopRequest {
                max_tokens: Some(64),
                stop: &stop,
                ..StopRequest::default()
            };
            let options = DetokenizeOptions {
                stop: pre.stop_conditions(&request, 40).expect("fits"),
                skip_special_tokens: true,
                ..DetokenizeOptions::default()
            };
            let mut detok = Detokenizer::new(pre.tokenizer().clone(), &options);
            let mut text = String::new();
            for (i, id) in answer_ids.iter().enumerate() {
                let last = i + 1 == answer_ids.len();
                let out = detok
                    .process(&EngineDelta {
                        token_ids: std::slice::from_ref(id),
                        text: None,
                        finish_reason: last.then_some(&FinishReason::Length),
                    })
                    .expect("decodes");
                text.push_str(&out.text);
            }
            text
        });
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
