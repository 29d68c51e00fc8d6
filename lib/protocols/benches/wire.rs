//! Per-request costs of the wire layer on the serving hot path: parsing and validating a chat
//! body, encoding one SSE chunk, and the worker codec (msgpack request out, reply item in).

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use stator_protocols::openai::{
    ChatChunkChoice, ChatCompletionChunk, ChatCompletionRequest, ChatDelta, ValidationOptions,
    parse_request,
};
use stator_protocols::sse;
use stator_protocols::worker::{Annotated, LLMEngineOutput, PreprocessedRequest};

const CHAT_BODY: &[u8] = br#"{"model":"qwen2.5-0.5b-mock","messages":[{"role":"system","content":"You are a helpful assistant."},{"role":"user","content":"Write one sentence about the ocean."}],"max_tokens":64,"temperature":0.7,"top_p":0.9,"stream":true,"stream_options":{"include_usage":true},"nvext":{"agent_hints":{"osl":64,"priority":1}}}"#;

fn bench(c: &mut Criterion) {
    let opts = ValidationOptions::default();
    c.bench_function("parse_and_validate_chat_request", |b| {
        b.iter(|| parse_request::<ChatCompletionRequest>(black_box(CHAT_BODY), &opts).unwrap());
    });

    let chunk = ChatCompletionChunk::new(
        "chatcmpl-2966c351-dff0-4e8f-bf78-ece208664ab7",
        "qwen2.5-0.5b-mock",
        1_795_322_621,
        vec![ChatChunkChoice {
            delta: ChatDelta {
                content: Some(" ocean".into()),
                ..ChatDelta::default()
            },
            ..ChatChunkChoice::default()
        }],
    );
    c.bench_function("encode_chat_chunk_sse", |b| {
        b.iter(|| sse::json(black_box(&chunk)).unwrap());
    });

    let request: PreprocessedRequest =
        serde_json::from_str(include_str!("../tests/fixtures/preprocessed_request.json")).unwrap();
    c.bench_function("encode_preprocessed_request_msgpack", |b| {
        b.iter(|| rmp_serde::to_vec_named(black_box(&request)).unwrap());
    });

    let item = rmp_serde::to_vec_named(&Annotated::from_data(LLMEngineOutput::tokens(vec![9707])))
        .unwrap();
    c.bench_function("decode_engine_output_msgpack", |b| {
        b.iter(|| rmp_serde::from_slice::<Annotated<LLMEngineOutput>>(black_box(&item)).unwrap());
    });
}

criterion_group!(benches, bench);
criterion_main!(benches);
