//! Property tests of scheduling through the public API: progress under preemption, token
//! budgets, sequence limits and prefix-cache hits.

use proptest::prelude::*;
use stator_mocker::{FinishReason, MockRequest, MockerConfig, RequestId, Simulator};

/// (prompt length, max tokens, shared prefix group)
fn workload() -> impl Strategy<Value = Vec<(usize, u32, u8)>> {
    proptest::collection::vec((1usize..40, 1u32..12, 0u8..3), 1..24)
}

fn prompt(len: usize, group: u8, id: u64) -> Vec<u32> {
    // The first half is shared by a group, the rest is unique to the request.
    (0..len)
        .map(|i| {
            if i < len / 2 {
                u32::from(group) * 1000 + i as u32
            } else {
                1_000_000 + id as u32 * 100 + i as u32
            }
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// (c) Under a cache barely larger than the biggest request, preemption still lets every
    /// request finish with all its tokens; every pass respects the token budget and the
    /// sequence limit.
    #[test]
    fn every_request_completes_within_budgets(
        requests in workload(),
        block_size in 1usize..6,
        spare_blocks in 0usize..4,
        max_num_seqs in 1usize..8,
        budget in 1usize..40,
        caching in any::<bool>(),
    ) {
        let biggest = requests
            .iter()
            .map(|&(len, max, _)| (len + max as usize - 1).div_ceil(block_size))
            .max()
            .unwrap_or(1);
        let config = MockerConfig {
            block_size,
            num_gpu_blocks: biggest + spare_blocks,
            max_num_seqs,
            max_num_batched_tokens: budget,
            enable_prefix_caching: caching,
            speedup_ratio: 0.0,
            ..MockerConfig::default()
        };
        let mut sim = Simulator::new(config, 1).unwrap();
        for (id, &(len, max, group)) in requests.iter().enumerate() {
            let id = id as u64;
            sim.add_request(MockRequest::new(RequestId(id), prompt(len, group, id), max)).unwrap();
        }
        let mut outputs = vec![0usize; requests.len()];
        let mut finished = vec![false; requests.len()];
        let mut steps = 0;
        while !sim.is_idle() {
            steps += 1;
            prop_assert!(steps < 20_000, "no progress");
            let pass = sim.step();
            prop_assert!(pass.prefill_tokens + pass.decode_requests <= budget);
            prop_assert!(sim.num_running() <= max_num_seqs);
            prop_assert!(!pass.is_empty(), "a pass with work pending must run something");
            for token in &pass.tokens {
                outputs[token.request_id.0 as usize] += 1;
            }
            for done in &pass.finished {
                let i = done.request_id.0 as usize;
                prop_assert!(!finished[i]);
                finished[i] = true;
                prop_assert_eq!(done.reason, FinishReason::Length);
                prop_assert_eq!(done.output_tokens, requests[i].1 as usize);
            }
        }
        prop_assert!(finished.iter().all(|&f| f));
        for (i, &(_, max, _)) in requests.iter().enumerate() {
            prop_assert_eq!(outputs[i], max as usize, "tokens reported once each");
        }
        prop_assert_eq!(sim.block_usage().in_use(), 0);
    }

    /// (d) A request repeating an earlier request's prompt prefix gets those blocks as hits.
    #[test]
    fn shared_prefixes_hit_the_cache(
        prefix_len in 1usize..60,
        suffix_len in 0usize..20,
        block_size in 1usize..9,
        budget in 1usize..32,
    ) {
        let config = MockerConfig {
            block_size,
            num_gpu_blocks: 256,
            max_num_batched_tokens: budget,
            speedup_ratio: 0.0,
            ..MockerConfig::default()
        };
        let mut sim = Simulator::new(config, 1).unwrap();
        let first: Vec<u32> = (0..prefix_len as u32).collect();
        sim.add_request(MockRequest::new(RequestId(1), first.clone(), 1)).unwrap();
        while !sim.is_idle() {
            sim.step();
        }
        let mut second = first;
        second.extend((0..suffix_len as u32).map(|t| 900_000 + t));
        let len = second.len();
        sim.add_request(MockRequest::new(RequestId(2), second, 1)).unwrap();
        let mut cached = None;
        while !sim.is_idle() {
            for done in sim.step().finished {
                cached = Some(done.cached_tokens);
            }
        }
        // Full blocks of the shared prefix, minus the last block if nothing else is left
        // to compute.
        let expected_blocks = (prefix_len / block_size).min((len - 1) / block_size);
        prop_assert_eq!(cached, Some(expected_blocks * block_size));
    }
}
