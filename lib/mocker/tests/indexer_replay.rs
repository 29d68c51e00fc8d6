//! The mocker's KV events, replayed into the router's real indexers, reproduce its cache:
//! for every prompt, each indexer's match depth equals the leading run of the prompt's blocks
//! that the simulator holds.

use proptest::prelude::*;
use stator_kv_router::indexer::{FlashIndexer, Indexer, RadixTree};
use stator_kv_router::protocols::WorkerWithDpRank;
use stator_mocker::{MockRequest, MockerConfig, RequestId, Simulator};
use stator_tokens::{SaltSeed, block_hashes, sequence_hashes};

const BLOCK_SIZE: usize = 4;

/// (prefix group, shared prefix length, own suffix length, max tokens, cancel after steps)
fn workload() -> impl Strategy<Value = Vec<(u32, usize, usize, u32, Option<u8>)>> {
    proptest::collection::vec(
        (
            0u32..3,
            0usize..24,
            1usize..10,
            1u32..16,
            proptest::option::of(0u8..4),
        ),
        1..30,
    )
}

fn prompt(group: u32, prefix: usize, suffix: usize, id: u64) -> Vec<u32> {
    let mut tokens: Vec<u32> = (0..prefix as u32).map(|t| group * 1000 + t).collect();
    tokens.extend((0..suffix as u32).map(|t| 100_000 + id as u32 * 100 + t));
    tokens
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn indexers_fed_by_events_agree_with_the_simulator(
        requests in workload(),
        workers in 1u64..3,
        num_gpu_blocks in 12usize..40,
    ) {
        let config = MockerConfig {
            block_size: BLOCK_SIZE,
            num_gpu_blocks,
            max_num_seqs: 4,
            max_num_batched_tokens: 16,
            speedup_ratio: 0.0,
            ..MockerConfig::default()
        };
        let mut sims: Vec<Simulator> = (0..workers)
            .map(|w| Simulator::new(config.clone(), 100 + w).unwrap())
            .collect();
        let mut flash = FlashIndexer::new();
        let mut radix = RadixTree::new();
        let mut prompts = Vec::new();
        let mut cancels = Vec::new();
        for (id, &(group, prefix, suffix, max_tokens, cancel)) in requests.iter().enumerate() {
            let id = id as u64;
            let tokens = prompt(group, prefix, suffix, id);
            let sim = &mut sims[(id % workers) as usize];
            if sim.add_request(MockRequest::new(RequestId(id), tokens.clone(), max_tokens)).is_ok() {
                if let Some(after) = cancel {
                    cancels.push((id, usize::from(after)));
                }
                prompts.push(tokens);
            }
        }
        for step in 0..400 {
            for sim in &mut sims {
                for &(id, after) in &cancels {
                    if after == step {
                        sim.cancel(RequestId(id));
                    }
                }
                for event in sim.step().events {
                    prop_assert_eq!(flash.apply_event(event.clone()), Ok(()));
                    prop_assert_eq!(radix.apply_event(event), Ok(()));
                }
            }
            for tokens in &prompts {
                let local = block_hashes(tokens, BLOCK_SIZE, SaltSeed::default());
                let chain = sequence_hashes(&local);
                let flash_scores = flash.find_matches(&local);
                let radix_scores = radix.find_matches(&local);
                for sim in &sims {
                    let cached = sim.cached_blocks();
                    let expected = chain.iter().take_while(|h| cached.contains(h)).count() as u32;
                    let owner = WorkerWithDpRank::new(sim.worker_id(), 0);
                    prop_assert_eq!(flash_scores.depth(owner), expected);
                    prop_assert_eq!(radix_scores.depth(owner), expected);
                }
            }
            if sims.iter().all(Simulator::is_idle) {
                break;
            }
        }
        prop_assert!(sims.iter().all(Simulator::is_idle));
    }
}
