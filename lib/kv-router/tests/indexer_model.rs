//! Every indexer against the naive model on random event and query streams.

mod indexer_support;

use indexer_support::{Naive, Paths, chain, clear_event, remove_event, store_event};
use proptest::prelude::*;
use stator_kv_router::indexer::{
    ConcurrentRadixTree, FlashIndexer, Indexer, OwnerPasses, RadixTree, ThreadPoolIndexer,
};
use stator_kv_router::protocols::{OverlapScores, RouterEvent, WorkerWithDpRank};
use stator_tokens::{LocalBlockHash, SequenceHash};

#[derive(Debug, Clone)]
enum Op {
    /// Store `path[from..]` under the parent `path[..from]` (may name an unknown parent).
    Store {
        owner: (u64, u32),
        path: Vec<u64>,
        from: usize,
    },
    /// Continue one of the owner's held chains with `extra`.
    Extend {
        owner: (u64, u32),
        pick: usize,
        extra: Vec<u64>,
    },
    /// Remove some held blocks (and maybe one unknown hash, which aborts the rest).
    Remove {
        owner: (u64, u32),
        picks: Vec<usize>,
        bogus: bool,
    },
    /// Evict the last `count` blocks of one of the owner's chains, tail first (an engine's
    /// order: each hash's parent is the next one), starting `skip` blocks above the tail, so
    /// that a cut in the middle of a chain leaves orphans behind.
    Evict {
        owner: (u64, u32),
        pick: usize,
        skip: usize,
        count: usize,
    },
    Clear {
        owner: (u64, u32),
    },
    RemoveWorker {
        worker: u64,
    },
    Query {
        path: Vec<u64>,
    },
}

/// A small alphabet of local hashes: collisions at different positions and under different
/// prefixes are common.
fn path(max: usize) -> impl Strategy<Value = Vec<u64>> {
    prop::collection::vec(1u64..=4, 1..max)
}

fn owner() -> impl Strategy<Value = (u64, u32)> {
    (0u64..4, 0u32..2)
}

fn op() -> impl Strategy<Value = Op> {
    op_up_to(12)
}

/// Ops whose stores, extensions and evictions name up to `blocks` blocks.
fn op_up_to(blocks: usize) -> impl Strategy<Value = Op> {
    prop_oneof![
        4 => (owner(), path(blocks), 0usize..12).prop_map(|(owner, path, from)| {
            let from = from % path.len();
            Op::Store { owner, path, from }
        }),
        4 => (owner(), any::<usize>(), path(blocks)).prop_map(|(owner, pick, extra)| Op::Extend { owner, pick, extra }),
        3 => (owner(), prop::collection::vec(any::<usize>(), 1..4), prop::bool::weighted(0.1))
            .prop_map(|(owner, picks, bogus)| Op::Remove { owner, picks, bogus }),
        3 => (owner(), any::<usize>(), 0usize..3, 1usize..blocks)
            .prop_map(|(owner, pick, skip, count)| Op::Evict { owner, pick, skip, count }),
        1 => owner().prop_map(|owner| Op::Clear { owner }),
        1 => (0u64..4).prop_map(|worker| Op::RemoveWorker { worker }),
        5 => path(14).prop_map(|path| Op::Query { path }),
    ]
}

fn ow((w, d): (u64, u32)) -> WorkerWithDpRank {
    WorkerWithDpRank::new(w, d)
}

fn query_of(path: &[u64]) -> Vec<LocalBlockHash> {
    path.iter().copied().map(LocalBlockHash).collect()
}

/// All indexers under test, driven in lockstep.
struct Subjects {
    radix: RadixTree,
    concurrent: ConcurrentRadixTree,
    flash: Vec<FlashIndexer>,
    /// The thread pool with its owner passes on the lanes and on the submitting thread.
    pools: [ThreadPoolIndexer; 2],
}

impl Subjects {
    fn new() -> Self {
        Self {
            radix: RadixTree::new(),
            concurrent: ConcurrentRadixTree::new(),
            flash: [1, 2, 3, 5, 32]
                .into_iter()
                .map(FlashIndexer::with_jump_size)
                .collect(),
            pools: [OwnerPasses::Lane, OwnerPasses::Submitter]
                .map(|passes| ThreadPoolIndexer::with_owner_passes(2, 2, passes)),
        }
    }

    fn apply(&mut self, ev: &RouterEvent, expected_ok: bool) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            self.radix.apply_event(ev.clone()).is_ok(),
            expected_ok,
            "radix on {:?}",
            ev
        );
        prop_assert_eq!(self.concurrent.apply_event(ev.clone()).is_ok(), expected_ok);
        for f in &mut self.flash {
            prop_assert_eq!(
                f.apply_event(ev.clone()).is_ok(),
                expected_ok,
                "flash on {:?}",
                ev
            );
        }
        for pool in &self.pools {
            prop_assert!(pool.apply_event(ev.clone()).is_ok());
        }
        Ok(())
    }

    fn remove_worker(&mut self, worker: u64) {
        self.radix.remove_worker(worker);
        self.concurrent.remove_worker(worker);
        for f in &mut self.flash {
            f.remove_worker(worker);
        }
        for pool in &self.pools {
            pool.remove_worker(worker);
        }
    }

    fn check(
        &self,
        query: &[LocalBlockHash],
        expected: &OverlapScores,
    ) -> Result<(), TestCaseError> {
        prop_assert_eq!(
            &self.radix.find_matches(query),
            expected,
            "radix, query {:?}",
            query
        );
        prop_assert_eq!(&self.concurrent.find_matches(query), expected);
        for (i, f) in self.flash.iter().enumerate() {
            prop_assert_eq!(
                &f.find_matches(query),
                expected,
                "flash #{}, query {:?}",
                i,
                query
            );
        }
        for pool in &self.pools {
            pool.flush();
            prop_assert_eq!(
                &pool.find_matches(query),
                expected,
                "pool ({:?}), query {:?}",
                pool.owner_passes(),
                query
            );
        }
        Ok(())
    }
}

/// Queries covering every held chain and every prefix of it.
fn probe_queries(model: &Naive, paths: &Paths, extra: &[Vec<u64>]) -> Vec<Vec<LocalBlockHash>> {
    let mut out: Vec<Vec<LocalBlockHash>> = extra.iter().map(|p| query_of(p)).collect();
    for held in model.owners.values() {
        for seq in held.keys() {
            if let Some(p) = paths.0.get(seq) {
                let mut longer = p.clone();
                longer.extend_from_slice(&[1, 2, 3]);
                out.push(query_of(p));
                out.push(query_of(&longer));
            }
        }
    }
    out
}

fn rebuild<I: Indexer + Default>(events: Vec<RouterEvent>) -> Result<I, TestCaseError> {
    let mut fresh = I::default();
    for ev in events {
        prop_assert!(
            fresh.apply_event(ev.clone()).is_ok(),
            "dump event rejected: {:?}",
            ev
        );
    }
    Ok(fresh)
}

/// First worker id of the padding owners of [`run`].
const PADDING_WORKER: u64 = 100;

/// Replay `ops` after `padding` extra owners (workers `PADDING_WORKER..`) have each stored a
/// one-block chain, so that the ops' owners get slots past the first `padding`.
fn run(ops: Vec<Op>, padding: u64) -> Result<(), TestCaseError> {
    let mut model = Naive::default();
    let mut paths = Paths::default();
    let mut s = Subjects::new();
    let mut queries = Vec::new();
    for w in PADDING_WORKER..PADDING_WORKER + padding {
        let path = [1 + w % 2];
        paths.learn(&path);
        let ev = store_event(ow((w, 0)), &path, 0, None, true);
        let ok = model.apply(&ev).is_ok();
        s.apply(&ev, ok)?;
    }
    for op in ops {
        let ev = match op {
            Op::Store { owner, path, from } => {
                paths.learn(&path);
                Some(store_event(ow(owner), &path, from, None, true))
            }
            Op::Extend { owner, pick, extra } => {
                let held = model.held(ow(owner));
                let base = if held.is_empty() {
                    Vec::new()
                } else {
                    paths.0[&held[pick % held.len()]].clone()
                };
                let from = base.len();
                let mut full = base;
                full.extend_from_slice(&extra);
                paths.learn(&full);
                Some(store_event(ow(owner), &full, from, None, true))
            }
            Op::Remove {
                owner,
                picks,
                bogus,
            } => {
                let held = model.held(ow(owner));
                let mut hashes: Vec<SequenceHash> = if held.is_empty() {
                    Vec::new()
                } else {
                    picks.iter().map(|p| held[p % held.len()]).collect()
                };
                hashes.dedup();
                if bogus || hashes.is_empty() {
                    hashes.insert(hashes.len() / 2, SequenceHash(0xdead_beef));
                }
                Some(remove_event(ow(owner), hashes))
            }
            Op::Evict {
                owner,
                pick,
                skip,
                count,
            } => {
                let held = model.held(ow(owner));
                if held.is_empty() {
                    None
                } else {
                    let tail = &paths.0[&held[pick % held.len()]];
                    let chain = chain(tail);
                    let end = chain.len().saturating_sub(skip);
                    let start = end.saturating_sub(count);
                    let hashes: Vec<SequenceHash> = chain[start..end]
                        .iter()
                        .rev()
                        .map(|&(_, seq)| seq)
                        .filter(|seq| held.binary_search(seq).is_ok())
                        .collect();
                    (!hashes.is_empty()).then(|| remove_event(ow(owner), hashes))
                }
            }
            Op::Clear { owner } => Some(clear_event(ow(owner))),
            Op::RemoveWorker { worker } => {
                model.remove_worker(worker);
                s.remove_worker(worker);
                None
            }
            Op::Query { path } => {
                let q = query_of(&path);
                s.check(&q, &model.find_matches(&q))?;
                queries.push(path);
                None
            }
        };
        if let Some(ev) = ev {
            let ok = model.apply(&ev).is_ok();
            s.apply(&ev, ok)?;
        }
    }
    let probes = probe_queries(&model, &paths, &queries);
    for q in &probes {
        s.check(q, &model.find_matches(q))?;
    }
    // Dump → rebuild gives the same answers.
    let radix: RadixTree = rebuild(s.radix.dump_events())?;
    let flash: FlashIndexer = rebuild(s.flash[2].dump_events())?;
    let pool = ThreadPoolIndexer::with_owner_passes(3, 2, OwnerPasses::Submitter);
    for ev in s.pools[0].dump_events() {
        prop_assert!(pool.apply_event(ev).is_ok());
    }
    pool.flush();
    prop_assert_eq!(pool.error_count(), 0);
    for q in &probes {
        let expected = model.find_matches(q);
        prop_assert_eq!(&radix.find_matches(q), &expected, "rebuilt radix");
        prop_assert_eq!(&flash.find_matches(q), &expected, "rebuilt flash");
        prop_assert_eq!(&pool.find_matches(q), &expected, "rebuilt pool");
    }
    // Removing every worker frees everything.
    for w in (0..4).chain(PADDING_WORKER..PADDING_WORKER + padding) {
        s.remove_worker(w);
    }
    for pool in &s.pools {
        pool.flush();
        prop_assert!(pool.is_empty());
    }
    prop_assert!(s.radix.is_empty());
    prop_assert!(s.concurrent.is_empty());
    prop_assert!(s.flash.iter().all(FlashIndexer::is_empty));
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    /// The same with more than 64 owners: the ops' owners get slots that do not fit in an
    /// entry's inline owner word.
    #[test]
    fn indexers_agree_with_naive_model_beyond_64_owners(ops in prop::collection::vec(op(), 1..40)) {
        run(ops, 66)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// Events of hundreds of blocks: the flash writer applies an event in tiles of 64 blocks,
    /// and positions cross the table's 256-position chunks.
    #[test]
    fn indexers_agree_with_naive_model_on_long_events(ops in prop::collection::vec(op_up_to(320), 1..24)) {
        run(ops, 0)?;
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn indexers_agree_with_naive_model(ops in prop::collection::vec(op(), 1..60)) {
        run(ops, 0)?;
    }
}

#[test]
fn same_local_hash_under_different_prefixes_is_not_a_match() {
    // Worker 0 caches [1, 2] and [3, 4, 2]; the query [1, 2, 2]'s third block has local hash 2
    // at position 2 only under the prefix [3, 4], so the match stops at 2 blocks.
    let owner = WorkerWithDpRank::new(0, 0);
    let mut model = Naive::default();
    let mut s = Subjects::new();
    for ev in [
        store_event(owner, &[1, 2], 0, None, true),
        store_event(owner, &[3, 4, 2], 0, None, true),
    ] {
        model.apply(&ev).unwrap();
        s.apply(&ev, true).unwrap();
    }
    let q = query_of(&[1, 2, 2]);
    assert_eq!(model.find_matches(&q).depth(owner), 2);
    s.check(&q, &model.find_matches(&q)).unwrap();
}

#[test]
fn a_gap_ends_the_match_even_when_later_blocks_are_cached() {
    let owner = WorkerWithDpRank::new(1, 0);
    let path: Vec<u64> = (1..=40).collect();
    let blocks = chain(&path);
    let mut model = Naive::default();
    let mut s = Subjects::new();
    for ev in [
        store_event(owner, &path, 0, None, true),
        remove_event(owner, vec![blocks[17].1]),
    ] {
        model.apply(&ev).unwrap();
        s.apply(&ev, true).unwrap();
    }
    let q = query_of(&path);
    assert_eq!(model.find_matches(&q).depth(owner), 17);
    s.check(&q, &model.find_matches(&q)).unwrap();
}
