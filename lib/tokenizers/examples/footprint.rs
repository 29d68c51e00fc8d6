//! Load footprint and encode/decode cost of one tokenizer implementation.
//!
//! `cargo run --release -p stator-tokenizers --example footprint -- <hf|fast> [tokenizer.json]`
//! prints: load time, resident MB after loading (`VmRSS`), peak MB during load (`VmHWM`),
//! median encode µs of a ~520-token chat prompt (the `benches/loadgen` shape) and median
//! decode µs of 64 tokens.

#[path = "../benches/common/prompt.rs"]
mod prompt;

use std::time::Instant;

use stator_tokenizers::{BpeTokenizer, HfTokenizer, Tokenizer};

/// One status line of `/proc/self/status` in MB (0 where unavailable).
fn status_mb(key: &str) -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|line| line.strip_prefix(key))
        .and_then(|rest| rest.split_whitespace().next()?.parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// Median of `runs` timings of `f`, in microseconds.
fn median_us(runs: usize, mut f: impl FnMut()) -> f64 {
    let mut samples: Vec<f64> = (0..runs)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e6
        })
        .collect();
    samples.sort_by(f64::total_cmp);
    samples[samples.len() / 2]
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let which = args.next().unwrap_or_else(|| "fast".to_owned());
    let path = args
        .next()
        .unwrap_or_else(|| prompt::TOKENIZER_JSON.to_owned());

    let rss_before = status_mb("VmRSS:");
    let start = Instant::now();
    let tokenizer: Box<dyn Tokenizer> = match which.as_str() {
        "hf" => Box::new(HfTokenizer::from_file(&path)?),
        "fast" => Box::new(BpeTokenizer::from_file(&path)?),
        other => return Err(format!("unknown implementation {other:?} (hf | fast)").into()),
    };
    let load_ms = start.elapsed().as_secs_f64() * 1e3;
    let rss = status_mb("VmRSS:");
    let peak = status_mb("VmHWM:");

    let prompt = prompt::chat_prompt();
    let ids = tokenizer.encode(&prompt, false)?;
    let encode_us = median_us(200, || {
        std::hint::black_box(tokenizer.encode(std::hint::black_box(&prompt), false).ok());
    });
    let out = &ids[ids.len() - 64..];
    let decode_us = median_us(2000, || {
        std::hint::black_box(tokenizer.decode(std::hint::black_box(out), true).ok());
    });

    println!(
        "| impl | load ms | RSS before MB | RSS after load MB | peak MB | prompt tokens | encode µs | decode 64 µs |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    println!(
        "| {which} | {load_ms:.0} | {rss_before:.1} | {rss:.1} | {peak:.1} | {} | {encode_us:.1} | {decode_us:.2} |",
        ids.len()
    );
    Ok(())
}
