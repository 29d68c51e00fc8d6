//! Several threads submitting events of the same owners at once: whatever order their owner
//! passes run in, the lanes must write the table in that order, so that once flushed the table
//! answers exactly like an index rebuilt from the owners' state (`dump_events`).

mod indexer_support;

use indexer_support::{chain, remove_event, store_event};
use stator_kv_router::indexer::{FlashIndexer, Indexer, OwnerPasses, ThreadPoolIndexer};
use stator_kv_router::protocols::WorkerWithDpRank;
use stator_tokens::LocalBlockHash;

const SUBMITTERS: u64 = 4;
const ROUNDS: u64 = 3000;
const OWNERS: u64 = 3;

/// Chains shared by every submitter: both store and remove them, racing each other.
fn paths() -> Vec<Vec<u64>> {
    (0..4u64)
        .map(|p| (0..6).map(|i| 100 * (p % 2) + i + 10 * (p / 2)).collect())
        .collect()
}

fn table_matches_owner_state(passes: OwnerPasses) {
    let pool = ThreadPoolIndexer::with_owner_passes(2, 2, passes);
    let paths = paths();
    let start = std::sync::Barrier::new(SUBMITTERS as usize);
    std::thread::scope(|scope| {
        for submitter in 0..SUBMITTERS {
            let (pool, paths, start) = (&pool, &paths, &start);
            scope.spawn(move || {
                start.wait();
                for round in 0..ROUNDS {
                    let owner = WorkerWithDpRank::new((submitter + round) % OWNERS, 0);
                    let path = &paths[((submitter * 7 + round) % 4) as usize];
                    let event = if (round / 2) % 2 == 0 {
                        let tail = chain(path).into_iter().rev().map(|(_, seq)| seq);
                        remove_event(owner, tail.take(2 + (round % 3) as usize).collect())
                    } else {
                        store_event(owner, path, 0, None, false)
                    };
                    pool.apply_event(event).expect("lanes running");
                }
            });
        }
    });
    pool.flush();
    let mut rebuilt = FlashIndexer::with_jump_size(2);
    for event in pool.dump_events() {
        rebuilt.apply_event(event).expect("a dump replays cleanly");
    }
    for path in &paths {
        let blocks: Vec<LocalBlockHash> = chain(path).into_iter().map(|(l, _)| l).collect();
        for end in 1..=blocks.len() {
            let query = &blocks[..end];
            assert_eq!(
                pool.find_matches(query),
                rebuilt.find_matches(query),
                "{passes:?}, query {query:?}"
            );
        }
    }
}

#[test]
fn concurrent_submitters_of_one_owner_keep_table_and_owner_state_in_step() {
    for passes in [OwnerPasses::Submitter, OwnerPasses::Lane] {
        table_matches_owner_state(passes);
    }
}
