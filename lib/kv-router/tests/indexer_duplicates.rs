//! One owner caching the same token prefix twice, under two sets of block (sequence) hashes, as
//! an engine whose block hashes cover more than the tokens can: a query of those tokens matches
//! while either copy is cached, and stops matching only when both are gone.

mod indexer_support;

use indexer_support::{chain, remove_event};
use stator_kv_router::indexer::{FlashIndexer, Indexer, OwnerPasses, ThreadPoolIndexer};
use stator_kv_router::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheStoreData, KvCacheStoredBlockData, RouterEvent,
    WorkerWithDpRank,
};
use stator_tokens::{LocalBlockHash, SequenceHash};

const PATH: [u64; 3] = [11, 12, 13];

/// The blocks of `PATH` with their sequence hashes offset by `salt` (0: the wire chain).
fn copy(salt: u64) -> Vec<(LocalBlockHash, SequenceHash)> {
    chain(&PATH)
        .into_iter()
        .map(|(local, seq)| (local, SequenceHash(seq.0.wrapping_add(salt))))
        .collect()
}

fn store(owner: WorkerWithDpRank, blocks: &[(LocalBlockHash, SequenceHash)]) -> RouterEvent {
    RouterEvent::new(
        owner.worker_id,
        KvCacheEvent {
            event_id: 0,
            data: KvCacheEventData::Stored(KvCacheStoreData {
                parent_hash: None,
                start_position: None,
                blocks: blocks
                    .iter()
                    .map(|&(tokens_hash, block_hash)| KvCacheStoredBlockData {
                        block_hash,
                        tokens_hash,
                    })
                    .collect(),
            }),
            dp_rank: owner.dp_rank,
        },
    )
}

fn remove(owner: WorkerWithDpRank, blocks: &[(LocalBlockHash, SequenceHash)]) -> RouterEvent {
    remove_event(owner, blocks.iter().rev().map(|&(_, seq)| seq).collect())
}

/// Store both copies, drop them one after the other, and check the depth matched by
/// `PATH`'s tokens after each step: `apply` applies an event, `depth` answers the query.
fn check(mut apply: impl FnMut(RouterEvent), depth: impl Fn(&[LocalBlockHash]) -> u32) {
    let owner = WorkerWithDpRank::new(7, 0);
    let (first, second) = (copy(0), copy(1 << 40));
    let query: Vec<LocalBlockHash> = first.iter().map(|&(local, _)| local).collect();
    apply(store(owner, &first));
    apply(store(owner, &second));
    assert_eq!(depth(&query), 3, "both copies cached");
    apply(remove(owner, &first));
    assert_eq!(depth(&query), 3, "the second copy is still cached");
    apply(store(owner, &first));
    apply(remove(owner, &second));
    assert_eq!(depth(&query), 3, "the first copy is cached again");
    apply(remove(owner, &first[1..]));
    assert_eq!(depth(&query), 1, "one block of the first copy left");
    apply(remove(owner, &first[..1]));
    assert_eq!(depth(&query), 0, "nothing cached");
}

#[test]
fn the_flash_indexer_keeps_an_owner_until_its_last_copy_goes() {
    let index = std::cell::RefCell::new(FlashIndexer::new());
    check(
        |ev| index.borrow_mut().apply_event(ev).expect("a valid event"),
        |q| {
            let scores = index.borrow().find_matches(q).scores;
            scores.values().copied().max().unwrap_or(0)
        },
    );
    assert!(index.borrow().is_empty());
}

#[test]
fn the_pool_keeps_an_owner_until_its_last_copy_goes() {
    for passes in [OwnerPasses::Lane, OwnerPasses::Submitter] {
        let pool = ThreadPoolIndexer::with_owner_passes(1, 64, passes);
        check(
            |ev| pool.apply_event(ev).expect("lanes running"),
            |q| {
                pool.flush();
                let scores = pool.find_matches(q).scores;
                scores.values().copied().max().unwrap_or(0)
            },
        );
        assert_eq!(pool.error_count(), 0, "{passes:?}");
        pool.flush();
        assert!(pool.is_empty(), "{passes:?}");
    }
}
