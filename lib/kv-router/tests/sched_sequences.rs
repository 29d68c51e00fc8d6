//! Active-sequence tracking against a naive model: every counter after any operation stream,
//! shared prefixes counted once, and everything back to zero once all requests are freed.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use proptest::prelude::*;
use stator_kv_router::config::KvRouterConfig;
use stator_kv_router::protocols::WorkerWithDpRank;
use stator_kv_router::sequences::{ActiveSequencesMultiWorker, SequenceRequest};
use stator_tokens::SequenceHash;

const BLOCK_SIZE: u32 = 4;

#[derive(Debug, Clone)]
enum Op {
    Add {
        id: u8,
        worker: u8,
        prefix: u8,
        len: u8,
        overlap: u8,
        repeat_first: bool,
    },
    PrefillDone(u8),
    Free(u8),
    Advance(u16),
    Expire,
    RemoveWorker(u8),
}

fn op_strategy() -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (0u8..24, 0u8..3, 0u8..3, 0u8..6, 0u8..4, prop::bool::weighted(0.1)).prop_map(
            |(id, worker, prefix, len, overlap, repeat_first)| {
                Op::Add { id, worker, prefix, len, overlap, repeat_first }
            }
        ),
        2 => (0u8..24).prop_map(Op::PrefillDone),
        2 => (0u8..24).prop_map(Op::Free),
        1 => (0u16..200).prop_map(Op::Advance),
        1 => Just(Op::Expire),
        1 => (0u8..3).prop_map(Op::RemoveWorker),
    ]
}

/// Blocks of a request: a chain from one of three shared prefixes, `len` blocks long.
fn blocks(prefix: u8, len: u8) -> Vec<SequenceHash> {
    (0..u64::from(len))
        .map(|i| SequenceHash(u64::from(prefix) * 1000 + i))
        .collect()
}

/// The same, with the first hash repeated at the end (a hash collision inside one request).
fn blocks_with_repeat(prefix: u8, len: u8, repeat_first: bool) -> Vec<SequenceHash> {
    let mut chain = blocks(prefix, len);
    if repeat_first && let Some(&first) = chain.first() {
        chain.push(first);
    }
    chain
}

#[derive(Debug, Clone)]
struct ModelRequest {
    worker: WorkerWithDpRank,
    blocks: Vec<SequenceHash>,
    prefill_tokens: u64,
    added_at: Instant,
}

#[derive(Default)]
struct Model {
    requests: BTreeMap<String, ModelRequest>,
}

impl Model {
    fn load(&self, worker: WorkerWithDpRank, reuse: bool) -> (u64, u64, u64) {
        let mine: Vec<_> = self
            .requests
            .values()
            .filter(|r| r.worker == worker)
            .collect();
        let tokens = mine.iter().map(|r| r.prefill_tokens).sum();
        let blocks = if reuse {
            mine.iter()
                .flat_map(|r| r.blocks.iter().copied())
                .collect::<BTreeSet<_>>()
                .len() as u64
        } else {
            mine.iter().map(|r| r.blocks.len() as u64).sum()
        };
        (tokens, blocks, mine.len() as u64)
    }
}

fn run(ops: &[Op], reuse: bool) -> Result<(), TestCaseError> {
    let config = KvRouterConfig {
        assume_kv_reuse: reuse,
        ..KvRouterConfig::default()
    };
    let ttl = config.stale_request_ttl();
    let mut active = ActiveSequencesMultiWorker::new(BLOCK_SIZE, &config);
    let mut model = Model::default();
    let workers: Vec<_> = (0..3)
        .map(|i| WorkerWithDpRank::new(i, i as u32 % 2))
        .collect();
    for worker in &workers {
        active.add_worker(*worker);
    }
    let mut now = Instant::now();
    for op in ops {
        match op {
            Op::Add {
                id,
                worker,
                prefix,
                len,
                overlap,
                repeat_first,
            } => {
                let id = id.to_string();
                let worker = workers[usize::from(*worker)];
                let request = SequenceRequest {
                    request_id: id.clone(),
                    block_hashes: blocks_with_repeat(*prefix, *len, *repeat_first),
                    isl_tokens: u64::from(*len) * u64::from(BLOCK_SIZE) + 2,
                    overlap_blocks: u32::from(*overlap),
                };
                let expected = !model.requests.contains_key(&id);
                prop_assert_eq!(active.add_request(worker, request.clone(), now), expected);
                if expected {
                    let cached = u64::from(*overlap) * u64::from(BLOCK_SIZE);
                    model.requests.insert(
                        id,
                        ModelRequest {
                            worker,
                            blocks: request.block_hashes,
                            prefill_tokens: request.isl_tokens.saturating_sub(cached),
                            added_at: now,
                        },
                    );
                }
            }
            Op::PrefillDone(id) => {
                let id = id.to_string();
                let expected = model.requests.get_mut(&id).map(|r| r.prefill_tokens = 0);
                prop_assert_eq!(active.mark_prefill_completed(&id), expected.is_some());
            }
            Op::Free(id) => {
                let id = id.to_string();
                let expected = model.requests.remove(&id).is_some();
                prop_assert_eq!(active.free(&id), expected);
            }
            Op::Advance(secs) => now += Duration::from_secs(u64::from(*secs)),
            Op::RemoveWorker(worker) => {
                let worker = workers[usize::from(*worker)];
                let before = model.requests.len();
                model.requests.retain(|_, r| r.worker != worker);
                prop_assert_eq!(active.remove_worker(worker), before - model.requests.len());
                prop_assert!(active.load(worker).is_none());
                prop_assert!(active.add_worker(worker));
            }
            Op::Expire => {
                let mut expired = active.expire_stale(now);
                expired.sort();
                let cutoff = now.checked_sub(ttl);
                let expected: Vec<String> = model
                    .requests
                    .iter()
                    .filter(|(_, r)| cutoff.is_some_and(|c| r.added_at < c))
                    .map(|(id, _)| id.clone())
                    .collect();
                for id in &expected {
                    model.requests.remove(id);
                }
                prop_assert_eq!(expired, expected);
            }
        }
        for worker in &workers {
            let load = active.load(*worker).unwrap();
            let (tokens, blocks, requests) = model.load(*worker, reuse);
            prop_assert_eq!(load.active_prefill_tokens, tokens);
            prop_assert_eq!(load.active_decode_blocks, blocks);
            prop_assert_eq!(load.active_requests, requests);
        }
        prop_assert_eq!(active.len(), model.requests.len());
    }
    // Potential loads: blocks not active on a worker are the new ones.
    let probe = blocks_with_repeat(1, 5, true);
    for (worker, load) in active.potential_blocks_and_tokens(&probe) {
        let held: BTreeSet<_> = model
            .requests
            .values()
            .filter(|r| r.worker == worker)
            .flat_map(|r| r.blocks.iter().copied())
            .collect();
        let expected_new = if reuse {
            let unique: BTreeSet<_> = probe.iter().collect();
            unique.iter().filter(|h| !held.contains(h)).count() as u64
        } else {
            probe.len() as u64
        };
        prop_assert_eq!(load.new_decode_blocks, expected_new);
    }
    // Freeing everything returns every counter to zero.
    let ids: Vec<String> = model.requests.keys().cloned().collect();
    for id in ids {
        prop_assert!(active.free(&id));
    }
    prop_assert!(active.is_empty());
    for worker in &workers {
        let load = active.load(*worker).unwrap();
        prop_assert_eq!(
            (
                load.active_prefill_tokens,
                load.active_decode_blocks,
                load.active_requests
            ),
            (0, 0, 0)
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn matches_the_naive_model_with_kv_reuse(ops in prop::collection::vec(op_strategy(), 0..80)) {
        run(&ops, true)?;
    }

    #[test]
    fn matches_the_naive_model_without_kv_reuse(ops in prop::collection::vec(op_strategy(), 0..80)) {
        run(&ops, false)?;
    }
}

#[test]
fn shared_prefix_counts_once_per_worker_but_once_on_each_worker() {
    let mut active = ActiveSequencesMultiWorker::new(BLOCK_SIZE, &KvRouterConfig::default());
    let now = Instant::now();
    let (a, b) = (WorkerWithDpRank::new(1, 0), WorkerWithDpRank::new(2, 0));
    for (id, worker) in [("r1", a), ("r2", a), ("r3", b)] {
        let request = SequenceRequest {
            request_id: id.into(),
            block_hashes: blocks(0, 4),
            isl_tokens: 16,
            overlap_blocks: 0,
        };
        assert!(active.add_request(worker, request, now));
    }
    assert_eq!(active.load(a).unwrap().active_decode_blocks, 4);
    assert_eq!(active.load(b).unwrap().active_decode_blocks, 4);
    assert!(active.free("r1"));
    assert_eq!(active.load(a).unwrap().active_decode_blocks, 4);
    assert!(active.free("r2"));
    assert_eq!(active.load(a).unwrap().active_decode_blocks, 0);
}
