//! Encode and decode cost of `BpeTokenizer` against `HfTokenizer` on the shipped Qwen2.5
//! tokenizer: `cargo bench -p stator-tokenizers`.

// `criterion_group!` expands to an undocumented `pub fn`.
#![allow(missing_docs)]

#[path = "common/prompt.rs"]
mod prompt;

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use stator_tokenizers::{BpeTokenizer, HfTokenizer, Tokenizer};

fn bench(c: &mut Criterion) {
    let prompt = prompt::chat_prompt();
    let implementations: [(&str, Box<dyn Tokenizer>); 2] = [
        (
            "hf",
            Box::new(HfTokenizer::from_file(prompt::TOKENIZER_JSON).expect("shipped tokenizer")),
        ),
        (
            "fast",
            Box::new(BpeTokenizer::from_file(prompt::TOKENIZER_JSON).expect("shipped tokenizer")),
        ),
    ];
    for (name, tokenizer) in &implementations {
        let ids = tokenizer.encode(&prompt, false).expect("encodes");
        let output = &ids[ids.len() - 64..];
        c.bench_function(
            &format!("encode chat prompt ({} tokens)/{name}", ids.len()),
            |b| {
                b.iter(|| tokenizer.encode(black_box(&prompt), false));
            },
        );
        c.bench_function(&format!("decode 64 tokens/{name}"), |b| {
            b.iter(|| tokenizer.decode(black_box(output), true));
        });
    }
}

criterion_group!(benches, bench);
criterion_main!(benches);
