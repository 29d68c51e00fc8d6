//! `--router-mode kv` end to end: a frontend process and a worker process running two mocker
//! instances with small KV caches (file discovery, ZMQ event plane). A shared-prefix workload
//! with more prefix groups than one instance can cache is sent once per routing mode; the
//! prompt cache hits the mockers report (`usage.prompt_tokens_details.cached_tokens`) must be
//! clearly higher with KV routing, and with approximate KV routing, than with round-robin.

use std::time::Duration;

use serde_json::{Value, json};
use stator_e2e::{Cluster, ClusterSpec, MODEL};

/// Prefix groups; each prefix is about 7 blocks of 16 tokens.
const GROUPS: usize = 8;
const REQUESTS: usize = 96;

fn cluster(frontend_args: &[&str]) -> Cluster {
    let mut spec = ClusterSpec::echo(
        env!("CARGO_BIN_EXE_e2e-frontend"),
        env!("CARGO_BIN_EXE_e2e-worker"),
    );
    spec.worker_args = [
        "--engine",
        "mocker",
        "--num-workers",
        "2",
        "--block-size",
        "16",
        // About five of the eight prefixes fit in one instance's cache.
        "--num-gpu-blocks-override",
        "48",
        "--speedup-ratio",
        "0",
    ]
    .map(str::to_owned)
    .to_vec();
    spec.frontend_args = frontend_args.iter().map(|&a| a.to_owned()).collect();
    Cluster::start(&spec)
}

/// A prompt of `group`: its shared prefix, then a tail unique to request `n`.
fn prompt(group: usize, n: usize) -> String {
    let words = [
        "alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel",
    ];
    let prefix: Vec<String> = (0..24)
        .map(|i| format!("{}{}", words[(group + i) % words.len()], group * 100 + i))
        .collect();
    format!(
        "Document {group}. {} Question {n}: what is item {}?",
        prefix.join(" "),
        n * 7919 % 1000
    )
}

/// The share of prompt tokens the workers served from cache, over the whole workload.
fn hit_rate(c: &Cluster) -> f64 {
    let (mut prompt_tokens, mut cached_tokens) = (0u64, 0u64);
    for n in 0..REQUESTS {
        // A fixed pseudo-random order over the groups (top bits of a multiplicative hash).
        let group = ((n as u64 + 1).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 61) as usize % GROUPS;
        let body = json!({"model": MODEL, "prompt": prompt(group, n), "max_tokens": 2});
        let resp = c.post_json("/v1/completions", &body);
        assert_eq!(resp.status, 200, "{}", resp.body);
        let usage: Value = resp.json()["usage"].clone();
        prompt_tokens += usage["prompt_tokens"].as_u64().unwrap();
        cached_tokens += usage["prompt_tokens_details"]["cached_tokens"]
            .as_u64()
            .unwrap_or(0);
        // Let the request's KV events reach the router before the next decision.
        std::thread::sleep(Duration::from_millis(20));
    }
    cached_tokens as f64 / prompt_tokens as f64
}

#[test]
fn kv_routing_raises_the_prompt_cache_hit_rate() {
    let round_robin = hit_rate(&cluster(&["--router-mode", "round-robin"]));
    let kv = hit_rate(&cluster(&[
        "--router-mode",
        "kv",
        "--kv-cache-block-size",
        "16",
    ]));
    let approximate = hit_rate(&cluster(&[
        "--router-mode",
        "kv",
        "--kv-cache-block-size",
        "16",
        "--no-router-kv-events",
    ]));
    println!(
        "prompt cache hit rate: round-robin {round_robin:.3}, kv {kv:.3}, approximate {approximate:.3}"
    );
    assert!(
        kv > round_robin + 0.15,
        "kv {kv:.3} vs round-robin {round_robin:.3}"
    );
    assert!(
        approximate > round_robin + 0.1,
        "approximate {approximate:.3} vs round-robin {round_robin:.3}"
    );
}
