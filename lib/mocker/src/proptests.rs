//! Property tests over random workloads: block accounting and event fidelity.

use proptest::prelude::*;
use rustc_hash::FxHashSet;
use stator_kv_router::protocols::{KvCacheEventData, RouterEvent};
use stator_tokens::{SaltSeed, SequenceHash, next_sequence_hash};

use crate::{MockRequest, MockerConfig, RequestId, Simulator};

/// A naive model of one worker's cache, built only from its KV events.
#[derive(Default)]
struct EventReplica {
    blocks: FxHashSet<SequenceHash>,
    next_event_id: u64,
}

impl EventReplica {
    fn apply(&mut self, event: &RouterEvent) -> Result<(), String> {
        if event.event.event_id != self.next_event_id {
            return Err(format!(
                "event id {} where {} was due",
                event.event.event_id, self.next_event_id
            ));
        }
        self.next_event_id += 1;
        match &event.event.data {
            KvCacheEventData::Stored(stored) => {
                let mut parent = stored.parent_hash;
                if let Some(p) = parent
                    && !self.blocks.contains(&p)
                {
                    return Err(format!("stored with unknown parent {p:?}"));
                }
                for block in &stored.blocks {
                    let expected = match parent {
                        None => SequenceHash(block.tokens_hash.0),
                        Some(p) => next_sequence_hash(p, block.tokens_hash),
                    };
                    if block.block_hash != expected {
                        return Err(format!("non-canonical hash {:?}", block.block_hash));
                    }
                    if !self.blocks.insert(block.block_hash) {
                        return Err(format!("stored twice: {:?}", block.block_hash));
                    }
                    parent = Some(block.block_hash);
                }
            }
            KvCacheEventData::Removed(removed) => {
                for hash in &removed.block_hashes {
                    if !self.blocks.remove(hash) {
                        return Err(format!("removed unknown {hash:?}"));
                    }
                }
            }
            KvCacheEventData::Cleared => self.blocks.clear(),
        }
        Ok(())
    }
}

#[derive(Debug, Clone)]
enum Op {
    /// A request: prefix group, shared prefix length, own suffix length, max tokens, salted.
    Add(u8, usize, usize, u32, bool),
    /// Cancel the n-th request ever added (if still live).
    Cancel(usize),
    /// Run a few passes.
    Step(u8),
    /// Cancel everything and drop the cache.
    Reset,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..3, 0usize..16, 1usize..10, 1u32..24, any::<bool>())
            .prop_map(|(g, p, s, m, salt)| Op::Add(g, p, s, m, salt)),
        1 => (0usize..40).prop_map(Op::Cancel),
        6 => (1u8..6).prop_map(Op::Step),
        1 => Just(Op::Reset),
    ]
}

fn config() -> impl Strategy<Value = MockerConfig> {
    (
        1usize..6,
        9usize..40,
        1usize..6,
        1usize..48,
        any::<bool>(),
        any::<bool>(),
    )
        .prop_map(
            |(block_size, blocks, seqs, budget, caching, chunked)| MockerConfig {
                block_size,
                num_gpu_blocks: blocks,
                max_num_seqs: seqs,
                max_num_batched_tokens: budget,
                enable_prefix_caching: caching,
                enable_chunked_prefill: chunked,
                speedup_ratio: 0.0,
                vocab_size: 50,
                eos_probability: 0.1,
                ..MockerConfig::default()
            },
        )
}

fn prompt(group: u8, prefix: usize, suffix: usize, id: u64) -> Vec<u32> {
    let mut tokens: Vec<u32> = (0..prefix as u32)
        .map(|t| u32::from(group) * 1000 + t)
        .collect();
    tokens.extend((0..suffix as u32).map(|t| 100_000 + (id as u32) * 100 + t));
    tokens
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// (a) free + private + active + inactive = total and refcounts equal holders after every
    /// operation; (b) the events, replayed into a naive set, reproduce `cached_blocks()`.
    #[test]
    fn accounting_and_events_stay_exact(config in config(), ops in proptest::collection::vec(op(), 1..80)) {
        let caching = config.enable_prefix_caching;
        let mut sim = Simulator::new(config, 3).unwrap();
        let mut replica = EventReplica::default();
        let mut added = 0u64;
        for op in ops {
            match op {
                Op::Add(group, prefix, suffix, max_tokens, salted) => {
                    let mut request = MockRequest::new(RequestId(added), prompt(group, prefix, suffix, added), max_tokens);
                    request.eos_token_ids = vec![7];
                    if salted {
                        request.salt = SaltSeed::new(Some("tenant"), None);
                    }
                    // Requests too big for the tiny cache or budget are refused; that is fine.
                    let _ = sim.add_request(request);
                    added += 1;
                }
                Op::Cancel(n) => {
                    let was_live = sim.contains(RequestId(n as u64));
                    prop_assert_eq!(sim.cancel(RequestId(n as u64)).is_some(), was_live);
                }
                Op::Step(passes) => {
                    for _ in 0..passes {
                        let out = sim.step();
                        for event in &out.events {
                            prop_assert_eq!(event.worker_id, 3);
                            replica.apply(event).map_err(TestCaseError::fail)?;
                        }
                        sim.check_accounting().map_err(TestCaseError::fail)?;
                    }
                }
                Op::Reset => {
                    sim.reset();
                    prop_assert!(sim.is_idle());
                }
            }
            for event in sim.drain_events() {
                replica.apply(&event).map_err(TestCaseError::fail)?;
            }
            sim.check_accounting().map_err(TestCaseError::fail)?;
            prop_assert_eq!(&replica.blocks, &sim.cached_blocks());
            if !caching {
                prop_assert!(replica.blocks.is_empty());
            }
        }
    }
}
