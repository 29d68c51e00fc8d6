//! `flush` as a read-your-writes barrier: several threads each store blocks while the others
//! do the same, and after each one's `flush` its own block must be visible. Run with one lane
//! (the lanes leave a CPU free, so `flush` polls the lanes' progress first) and with more
//! lanes than CPUs (so it sends barrier messages at once).

mod indexer_support;

use indexer_support::{chain, store_event};
use stator_kv_router::indexer::ThreadPoolIndexer;
use stator_kv_router::protocols::WorkerWithDpRank;

const SUBMITTERS: u64 = 3;
const STORES: u64 = 300;

fn each_flush_shows_the_callers_own_store(lanes: usize) {
    let pool = ThreadPoolIndexer::new(lanes);
    std::thread::scope(|scope| {
        for submitter in 0..SUBMITTERS {
            let pool = &pool;
            scope.spawn(move || {
                for i in 0..STORES {
                    // Each store is a new one-block sequence of its own owner.
                    let owner = WorkerWithDpRank::new(submitter * STORES + i, 0);
                    let path = [submitter << 32 | i];
                    pool.apply_event(store_event(owner, &path, 0, None, false))
                        .expect("lanes running");
                    pool.flush();
                    let query = [chain(&path)[0].0];
                    assert_eq!(
                        pool.find_matches(&query).scores.get(&owner),
                        Some(&1),
                        "{lanes} lanes: submitter {submitter}'s store {i} not visible after flush"
                    );
                }
            });
        }
    });
    assert_eq!(pool.error_count(), 0);
}

#[test]
fn flush_polling_one_lane_shows_the_callers_writes() {
    each_flush_shows_the_callers_own_store(1);
}

#[test]
fn flush_blocking_with_more_lanes_than_cpus_shows_the_callers_writes() {
    let cpus = std::thread::available_parallelism().map_or(1, std::num::NonZero::get);
    each_flush_shows_the_callers_own_store(cpus + 1);
}
