//! The flash indexers against the naive model when stores give explicit start positions
//! (snapshot replays), including blocks whose parent the owner does not cache.

mod indexer_support;

use indexer_support::{Naive, Paths, remove_event, store_event};
use proptest::prelude::*;
use stator_kv_router::indexer::{FlashIndexer, Indexer, ThreadPoolIndexer};
use stator_kv_router::protocols::WorkerWithDpRank;
use stator_tokens::{LocalBlockHash, SequenceHash};

#[derive(Debug, Clone)]
enum Op {
    /// Store `path[from..]` at explicit position `from`, naming the parent or not.
    StoreAt {
        owner: u64,
        path: Vec<u64>,
        from: usize,
        parent: bool,
    },
    /// Store `path[from..]` under its parent, no explicit position.
    Store {
        owner: u64,
        path: Vec<u64>,
        from: usize,
    },
    Remove {
        owner: u64,
        picks: Vec<usize>,
    },
    Query {
        path: Vec<u64>,
    },
}

fn path() -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(1u64..=3, 1..12)
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => (0u64..3, path(), any::<usize>(), any::<bool>()).prop_map(|(owner, path, from, parent)| {
            let from = from % path.len();
            Op::StoreAt { owner, path, from, parent }
        }),
        3 => (0u64..3, path(), any::<usize>()).prop_map(|(owner, path, from)| {
            let from = from % path.len();
            Op::Store { owner, path, from }
        }),
        2 => (0u64..3, prop::collection::vec(any::<usize>(), 1..4)).prop_map(|(owner, picks)| Op::Remove { owner, picks }),
        3 => path().prop_map(|path| Op::Query { path }),
    ]
}

fn query_of(path: &[u64]) -> Vec<LocalBlockHash> {
    path.iter().copied().map(LocalBlockHash).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn flash_handles_explicit_positions_and_gaps(ops in prop::collection::vec(op(), 1..50)) {
        let mut model = Naive::default();
        let mut paths = Paths::default();
        let mut flash: Vec<FlashIndexer> = [1, 2, 4].into_iter().map(FlashIndexer::with_jump_size).collect();
        let pool = ThreadPoolIndexer::with_jump_size(2, 3);
        let mut queries = Vec::new();
        for op in ops {
            let ev = match op {
                Op::StoreAt { owner, path, from, parent } => {
                    paths.learn(&path);
                    store_event(WorkerWithDpRank::new(owner, 0), &path, from, Some(from as u32), parent)
                }
                Op::Store { owner, path, from } => {
                    paths.learn(&path);
                    store_event(WorkerWithDpRank::new(owner, 0), &path, from, None, true)
                }
                Op::Remove { owner, picks } => {
                    let held = model.held(WorkerWithDpRank::new(owner, 0));
                    if held.is_empty() {
                        continue;
                    }
                    let mut hashes: Vec<SequenceHash> = picks.iter().map(|p| held[p % held.len()]).collect();
                    hashes.sort();
                    hashes.dedup();
                    remove_event(WorkerWithDpRank::new(owner, 0), hashes)
                }
                Op::Query { path } => {
                    queries.push(path);
                    continue;
                }
            };
            let ok = model.apply(&ev).is_ok();
            for f in &mut flash {
                prop_assert_eq!(f.apply_event(ev.clone()).is_ok(), ok);
            }
            prop_assert!(pool.apply_event(ev).is_ok());
            for q in &queries {
                let q = query_of(q);
                let expected = model.find_matches(&q);
                for f in &flash {
                    prop_assert_eq!(&f.find_matches(&q), &expected, "query {:?}", q);
                }
                pool.flush();
                prop_assert_eq!(&pool.find_matches(&q), &expected);
            }
        }
        let mut probes: Vec<Vec<LocalBlockHash>> = queries.iter().map(|q| query_of(q)).collect();
        probes.extend(paths.0.values().map(|p| query_of(p)));
        let mut rebuilt = FlashIndexer::with_jump_size(2);
        for ev in flash[0].dump_events() {
            prop_assert!(rebuilt.apply_event(ev).is_ok());
        }
        for q in &probes {
            prop_assert_eq!(&rebuilt.find_matches(q), &model.find_matches(q));
        }
        for w in 0..3 {
            flash[0].remove_worker(w);
        }
        prop_assert!(flash[0].is_empty());
    }
}
