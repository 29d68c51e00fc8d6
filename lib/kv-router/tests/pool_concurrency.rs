//! The thread pool under concurrent readers: several threads query while the lanes apply a
//! stream of stores and removals that share chunks (every sequence starts at position 0).
//! Nobody may deadlock or starve, every answer must be well formed while the writes run,
//! and once flushed the pool must answer exactly like the naive model.

mod indexer_support;

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};

use indexer_support::{Naive, chain, remove_event, store_event};
use stator_kv_router::indexer::ThreadPoolIndexer;
use stator_kv_router::protocols::{RouterEvent, WorkerWithDpRank};
use stator_tokens::LocalBlockHash;

const OWNERS: u64 = 12;
const READERS: usize = 3;
const ROUNDS: u64 = 400;

/// Sequence `s` of `owner`: a prefix shared by every owner, then a few owner-specific blocks.
fn path(owner: u64, s: u64) -> Vec<u64> {
    let shared = 1 + (s % 5) * 3;
    let mut p: Vec<u64> = (0..shared).map(|i| 1_000 + i).collect();
    p.extend((0..=(s % 7)).map(|i| (owner + 1) * 1_000_000 + s * 100 + i));
    p
}

/// One round of events: every owner stores a sequence and evicts the tail of an older one.
fn round(r: u64) -> Vec<RouterEvent> {
    let mut out = Vec::new();
    for owner in 0..OWNERS {
        let who = WorkerWithDpRank::new(owner, 0);
        out.push(store_event(who, &path(owner, r), 0, None, true));
        if r >= 3 {
            let old = chain(&path(owner, r - 3));
            let tail = old.len() - 1;
            out.push(remove_event(who, vec![old[tail].1]));
        }
    }
    out
}

#[test]
fn concurrent_readers_see_well_formed_answers_and_the_flushed_pool_is_exact() {
    let pool = ThreadPoolIndexer::with_jump_size(2, 2);
    let mut model = Naive::default();
    let done = AtomicBool::new(false);
    let answers = AtomicU64::new(0);
    let queries: Vec<Vec<LocalBlockHash>> = (0..20)
        .map(|s| {
            chain(&path(s % OWNERS, s))
                .into_iter()
                .map(|b| b.0)
                .collect()
        })
        .collect();

    std::thread::scope(|scope| {
        for reader in 0..READERS {
            let (pool, done, answers, queries) = (&pool, &done, &answers, &queries);
            scope.spawn(move || {
                let mut i = reader;
                while !done.load(Ordering::Relaxed) {
                    let query = &queries[i % queries.len()];
                    let scores = pool.find_matches(query);
                    for (owner, &depth) in &scores.scores {
                        assert!(owner.worker_id < OWNERS, "unknown owner {owner:?}");
                        assert!(
                            depth as usize <= query.len(),
                            "depth {depth} beyond a {}-block query",
                            query.len()
                        );
                    }
                    answers.fetch_add(1, Ordering::Relaxed);
                    i += 1;
                }
            });
        }
        for r in 0..ROUNDS {
            for event in round(r) {
                model.apply(&event).expect("the model accepts every event");
                pool.apply_event(event).expect("lanes running");
            }
        }
        pool.flush();
        while answers.load(Ordering::Relaxed) < READERS as u64 {
            std::thread::yield_now();
        }
        done.store(true, Ordering::Relaxed);
    });

    assert_eq!(pool.error_count(), 0);
    for query in &queries {
        assert_eq!(
            pool.find_matches(query).scores,
            model.find_matches(query).scores,
            "query {query:?}"
        );
    }
}
