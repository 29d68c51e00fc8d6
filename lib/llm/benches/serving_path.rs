//! Per-request CPU cost of the model-side serving path on the shipped Qwen tokenizer: chat
//! template rendering, prompt tokenization, and detokenizing a 64-token answer one token per
//! engine item (with a stop string armed). Prints a markdown table of wall and thread-CPU time
//! per operation; CPU time is the figure to compare, since it does not grow when other
//! processes compete for the cores.
//!
//! Run: `cargo bench -p stator-llm --bench serving_path`.

use std::hint::black_box;
use std::time::Instant;

use serde_json::json;
use stator_llm::backend::{DetokenizeOptions, Detokenizer, EngineDelta, FinishReason};
use stator_llm::model_card::ModelDeploymentCard;
use stator_llm::preprocess::{ModelPreprocessor, StopRequest};
use stator_tokenizers::TokenId;

/// Iterations per operation (after a tenth as many for warm-up).
const ITERATIONS: u32 = 2_000;

/// CPU time consumed by the calling thread, in nanoseconds.
fn thread_cpu_ns() -> u128 {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: `ts` is a valid, writable timespec and CLOCK_THREAD_CPUTIME_ID is supported on
    // every Linux this project targets.
    let rc = unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &raw mut ts) };
    assert_eq!(rc, 0, "clock_gettime(CLOCK_THREAD_CPUTIME_ID) failed");
    u128::from(ts.tv_sec.unsigned_abs()) * 1_000_000_000 + u128::from(ts.tv_nsec.unsigned_abs())
}

/// Runs `op` and prints one table row: wall and CPU microseconds per call.
fn measure<R>(name: &str, mut op: impl FnMut() -> R) {
    for _ in 0..ITERATIONS / 10 {
        black_box(op());
    }
    let wall = Instant::now();
    let cpu = thread_cpu_ns();
    for _ in 0..ITERATIONS {
        black_box(op());
    }
    let cpu_us = (thread_cpu_ns() - cpu) as f64 / 1e3 / f64::from(ITERATIONS);
    let wall_us = wall.elapsed().as_secs_f64() * 1e6 / f64::from(ITERATIONS);
    println!("| {name} | {ITERATIONS} | {wall_us:.1} | {cpu_us:.1} |");
}

fn detokenize(pre: &ModelPreprocessor, ids: &[TokenId], stop: &[String]) -> String {
    let request = StopRequest {
        max_tokens: Some(64),
        stop,
        ..StopRequest::default()
    };
    let options = DetokenizeOptions {
        stop: pre.stop_conditions(&request, 30).expect("fits"),
        skip_special_tokens: true,
        ..DetokenizeOptions::default()
    };
    let mut detok = Detokenizer::new(pre.tokenizer().clone(), &options);
    let mut text = String::new();
    for (i, id) in ids.iter().enumerate() {
        let last = i + 1 == ids.len();
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
}

fn main() {
    let dir = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/qwen2.5-0.5b-mock"
    );
    let card = ModelDeploymentCard::from_local_path(dir, None).expect("shipped model card");
    let pre = ModelPreprocessor::from_card(&card).expect("shipped model loads");
    let messages = json!([
        {"role": "system", "content": "You are a concise assistant."},
        {"role": "user", "content": "Write two sentences about the ocean and its tides."}
    ]);
    let answer = "The ocean covers most of the planet, and its tides rise and fall twice a day \
                  as the Moon pulls on the water. Coastal life depends on that rhythm: 潮汐 🌊. \
                  Sailors, fishers and surfers all read the same tables every morning.";
    let answer_ids = pre.tokenize(answer, false).expect("tokenizes");
    let answer_ids = &answer_ids[..answer_ids.len().min(64)];
    let stop = vec!["<END>".to_owned()];
    let prompt = pre
        .render_chat(&messages, None, true, None)
        .expect("renders");
    let prompt_len = pre.tokenize(&prompt, false).expect("tokenizes").len();

    println!("| operation | iterations | wall µs/op | CPU µs/op |");
    println!("|---|---|---|---|");
    measure("render chat template", || {
        pre.render_chat(&messages, None, true, None)
            .expect("renders")
    });
    measure(&format!("tokenize {prompt_len}-token prompt"), || {
        pre.tokenize(&prompt, false).expect("tokenizes")
    });
    measure(
        &format!("detokenize {}-token answer, 1 token/item", answer_ids.len()),
        || detokenize(&pre, answer_ids, &stop),
    );
    measure("whole request (render + tokenize + detokenize)", || {
        let prompt = pre
            .render_chat(&messages, None, true, None)
            .expect("renders");
        let ids = pre.tokenize(&prompt, false).expect("tokenizes");
        (ids.len(), detokenize(&pre, answer_ids, &stop))
    });
}
