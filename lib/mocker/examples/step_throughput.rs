//! Simulator step throughput: how fast the simulated engine runs on this CPU.
//!
//! Run: `cargo run --release -p stator-mocker --example step_throughput`
//! Prints a markdown table (one row per scenario) for `docs/benchmarks/mocker.md`.

use std::time::Instant;

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use stator_mocker::{MockRequest, MockerConfig, RequestId, Simulator};

/// One benchmark scenario.
struct Scenario {
    name: &'static str,
    config: MockerConfig,
    requests: usize,
    prompt: (usize, usize),
    output: (u32, u32),
    prefix_groups: u32,
}

fn run(scenario: &Scenario) {
    let mut rng = StdRng::seed_from_u64(7);
    let mut sim = Simulator::new(scenario.config.clone(), 1).expect("valid config");
    let started = Instant::now();
    for id in 0..scenario.requests {
        let len = rng.random_range(scenario.prompt.0..=scenario.prompt.1);
        let group = rng.random_range(0..scenario.prefix_groups);
        // Half of each prompt is a prefix shared by its group (a system prompt / conversation).
        let tokens: Vec<u32> = (0..len)
            .map(|i| {
                if i < len / 2 {
                    group * 100_000 + i as u32
                } else {
                    rng.random_range(0..32_000)
                }
            })
            .collect();
        let max_tokens = rng.random_range(scenario.output.0..=scenario.output.1);
        sim.add_request(MockRequest::new(RequestId(id as u64), tokens, max_tokens))
            .expect("request fits");
    }
    let (mut steps, mut prefill, mut decode, mut events, mut preempted) = (0u64, 0, 0, 0, 0);
    let (mut cached, mut prompt_tokens, mut simulated) = (0, 0, 0.0);
    while !sim.is_idle() {
        let pass = sim.step();
        steps += 1;
        prefill += pass.prefill_tokens;
        decode += pass.decode_requests;
        events += pass.events.len();
        preempted += pass.preempted.len();
        simulated += pass.duration.as_secs_f64();
        for done in &pass.finished {
            cached += done.cached_tokens;
            prompt_tokens += done.prompt_tokens;
        }
    }
    let wall = started.elapsed().as_secs_f64();
    println!(
        "| {} | {} | {} | {:.3} | {:.0} | {:.2} M | {:.2} M | {:.1} % | {} | {} | {:.0} s |",
        scenario.name,
        scenario.requests,
        steps,
        wall,
        steps as f64 / wall,
        (prefill + decode) as f64 / wall / 1e6,
        decode as f64 / wall / 1e6,
        100.0 * cached as f64 / prompt_tokens.max(1) as f64,
        events,
        preempted,
        simulated,
    );
}

fn main() {
    let scenarios = [
        Scenario {
            name: "default engine, 1-4k prompts, 64-256 out",
            config: MockerConfig::default(),
            requests: 2000,
            prompt: (1024, 4096),
            output: (64, 256),
            prefix_groups: 20,
        },
        Scenario {
            name: "decode heavy: 256-token prompts, 512-1024 out",
            config: MockerConfig::default(),
            requests: 2000,
            prompt: (128, 256),
            output: (512, 1024),
            prefix_groups: 20,
        },
        Scenario {
            name: "tiny cache (1024 blocks): eviction + preemption",
            config: MockerConfig {
                num_gpu_blocks: 1024,
                ..MockerConfig::default()
            },
            requests: 1000,
            prompt: (1024, 4096),
            output: (64, 256),
            prefix_groups: 20,
        },
        Scenario {
            name: "block size 16, prefix caching on",
            config: MockerConfig {
                block_size: 16,
                num_gpu_blocks: 65_536,
                ..MockerConfig::default()
            },
            requests: 2000,
            prompt: (1024, 4096),
            output: (64, 256),
            prefix_groups: 20,
        },
    ];
    println!(
        "| scenario | requests | steps | wall s | steps/s | sim tokens/s | decode tokens/s | prompt cache hit | KV events | preemptions | simulated time |"
    );
    println!("|---|---|---|---|---|---|---|---|---|---|---|");
    for scenario in &scenarios {
        run(scenario);
    }
}
