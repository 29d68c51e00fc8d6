//! The prefix-caching KV block manager: reference-counted cached blocks, an LRU pool of
//! inactive cached blocks, private (unregistered) blocks, and the KV events that mirror them.
//!
//! Capacity is counted, not addressed: a block is either *free*, *private* to one sequence
//! (its partial last block, or every block when prefix caching is off), *active* (a full block
//! registered under its sequence hash and referenced by at least one sequence) or *inactive*
//! (registered, referenced by nobody, kept for reuse until evicted in LRU order).
//! `free + private + active + inactive == total` always holds.

use rustc_hash::{FxHashMap, FxHashSet};
use stator_kv_router::protocols::{
    KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
};
use stator_tokens::{LocalBlockHash, SequenceHash};

use crate::lru::LruSet;

/// A snapshot of how the blocks of a [`BlockManager`] are used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct BlockUsage {
    /// Every block of the cache.
    pub total: usize,
    /// Blocks holding nothing.
    pub free: usize,
    /// Unregistered blocks owned by one sequence (partial blocks, or all blocks without caching).
    pub private: usize,
    /// Registered blocks referenced by at least one sequence.
    pub active: usize,
    /// Registered blocks referenced by nobody (the LRU pool, evictable).
    pub inactive: usize,
}

impl BlockUsage {
    /// Blocks in use by running sequences (`private + active`).
    pub fn in_use(&self) -> usize {
        self.private + self.active
    }
}

/// How much of a block-hash prefix is cached.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct PrefixMatch {
    /// Number of leading blocks that are registered (active or inactive).
    pub blocks: usize,
    /// How many of those are inactive (must be taken back out of the LRU pool to be reused).
    pub inactive: usize,
}

/// An allocation asked for more blocks than are free or evictable.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("requested {requested} KV blocks but only {available} are free or evictable")]
pub struct OutOfBlocks {
    /// Blocks asked for.
    pub requested: usize,
    /// Blocks that were free or evictable.
    pub available: usize,
}

/// The prefix-caching block manager of one simulated engine (one DP rank).
///
/// Every change to the set of registered blocks is recorded as a KV event
/// ([`take_events`](Self::take_events)): `stored` (with the parent hash) when a full block is
/// registered for the first time, `removed` when an inactive block is evicted, `cleared` on
/// [`clear`](Self::clear). With prefix caching disabled nothing is ever registered, reused or
/// reported.
#[derive(Debug, Clone)]
pub struct BlockManager {
    total: usize,
    prefix_caching: bool,
    active: FxHashMap<SequenceHash, u32>,
    inactive: LruSet,
    private: usize,
    events: Vec<KvCacheEventData>,
}

impl BlockManager {
    /// A cache of `num_blocks` blocks, all free.
    pub fn new(num_blocks: usize, prefix_caching: bool) -> Self {
        Self {
            total: num_blocks,
            prefix_caching,
            active: FxHashMap::default(),
            inactive: LruSet::default(),
            private: 0,
            events: Vec::new(),
        }
    }

    /// Whether full blocks are registered and reused.
    pub fn prefix_caching(&self) -> bool {
        self.prefix_caching
    }

    /// How the blocks are used right now.
    pub fn usage(&self) -> BlockUsage {
        let used = self.private + self.active.len() + self.inactive.len();
        BlockUsage {
            total: self.total,
            free: self.total - used,
            private: self.private,
            active: self.active.len(),
            inactive: self.inactive.len(),
        }
    }

    /// Blocks an allocation can get right now: free plus evictable (inactive).
    pub fn available(&self) -> usize {
        let usage = self.usage();
        usage.free + usage.inactive
    }

    /// Whether a block with this sequence hash is registered (active or inactive).
    pub fn is_cached(&self, hash: SequenceHash) -> bool {
        self.active.contains_key(&hash) || self.inactive.contains(hash)
    }

    /// Number of sequences referencing the registered block `hash` (0 if inactive or unknown).
    pub fn refcount(&self, hash: SequenceHash) -> u32 {
        self.active.get(&hash).copied().unwrap_or(0)
    }

    /// Every registered sequence hash (what a KV indexer should believe this cache holds).
    pub fn cached_blocks(&self) -> FxHashSet<SequenceHash> {
        self.active
            .keys()
            .copied()
            .chain(self.inactive.iter())
            .collect()
    }

    /// How many leading blocks of `hashes` are cached (always none without prefix caching).
    pub fn match_prefix(&self, hashes: &[SequenceHash]) -> PrefixMatch {
        let mut found = PrefixMatch::default();
        if !self.prefix_caching {
            return found;
        }
        for &hash in hashes {
            if self.active.contains_key(&hash) {
                found.blocks += 1;
            } else if self.inactive.contains(hash) {
                found.blocks += 1;
                found.inactive += 1;
            } else {
                break;
            }
        }
        found
    }

    /// Take one more reference to the registered block `hash` (a prefix-cache hit).
    ///
    /// # Panics
    /// If `hash` is not registered: callers acquire only what [`match_prefix`](Self::match_prefix)
    /// just reported.
    pub fn acquire(&mut self, hash: SequenceHash) {
        if let Some(refs) = self.active.get_mut(&hash) {
            *refs += 1;
            return;
        }
        assert!(
            self.inactive.remove(hash),
            "acquire of a block that is not cached"
        );
        self.active.insert(hash, 1);
    }

    /// Allocate `count` private blocks, evicting least recently used inactive blocks when no
    /// free block is left (each eviction emits `removed`). Nothing changes on error.
    pub fn allocate(&mut self, count: usize) -> Result<(), OutOfBlocks> {
        let available = self.available();
        if count > available {
            return Err(OutOfBlocks {
                requested: count,
                available,
            });
        }
        let free = self.usage().free;
        for _ in free..count {
            let victim = self
                .inactive
                .pop_oldest()
                .expect("capacity check guarantees an evictable block");
            self.record_removed(victim);
        }
        self.private += count;
        Ok(())
    }

    /// Turn one private block that just became full into the registered block `hash`.
    ///
    /// If `hash` is already registered the private block is freed and the caller gets a
    /// reference to the existing one (no event); otherwise the block is registered with one
    /// reference and `stored` is emitted with `parent` as its parent hash.
    ///
    /// # Panics
    /// If prefix caching is off or the caller owns no private block.
    pub fn register(
        &mut self,
        parent: Option<SequenceHash>,
        hash: SequenceHash,
        tokens_hash: LocalBlockHash,
    ) {
        assert!(self.prefix_caching, "register needs prefix caching");
        self.release_private(1);
        if self.is_cached(hash) {
            self.acquire(hash);
            return;
        }
        self.active.insert(hash, 1);
        self.record_stored(parent, hash, tokens_hash);
    }

    /// Drop one reference to the registered block `hash`; at zero it joins the LRU pool as
    /// the most recently used inactive block.
    ///
    /// # Panics
    /// If `hash` has no reference (a double free).
    pub fn release(&mut self, hash: SequenceHash) {
        let refs = self
            .active
            .get_mut(&hash)
            .expect("release of a block without references (double free)");
        *refs -= 1;
        if *refs == 0 {
            self.active.remove(&hash);
            self.inactive.push_newest(hash);
        }
    }

    /// Free `count` private blocks.
    ///
    /// # Panics
    /// If fewer than `count` private blocks are allocated.
    pub fn release_private(&mut self, count: usize) {
        self.private = self
            .private
            .checked_sub(count)
            .expect("release of more private blocks than allocated");
    }

    /// Drop every cached block and emit `cleared` (prefix caching only).
    ///
    /// # Panics
    /// If any block is still in use: release every sequence first.
    pub fn clear(&mut self) {
        assert!(
            self.active.is_empty() && self.private == 0,
            "clear with blocks in use"
        );
        self.inactive.clear();
        if self.prefix_caching {
            self.events.push(KvCacheEventData::Cleared);
        }
    }

    /// Take the KV events recorded since the last call, oldest first.
    pub fn take_events(&mut self) -> Vec<KvCacheEventData> {
        std::mem::take(&mut self.events)
    }

    /// Append a stored block, extending the previous `stored` run when it continues it.
    fn record_stored(
        &mut self,
        parent: Option<SequenceHash>,
        hash: SequenceHash,
        tokens_hash: LocalBlockHash,
    ) {
        let block = KvCacheStoredBlockData {
            block_hash: hash,
            tokens_hash,
        };
        if let Some(KvCacheEventData::Stored(run)) = self.events.last_mut()
            && parent.is_some()
            && run.blocks.last().map(|b| b.block_hash) == parent
        {
            run.blocks.push(block);
            return;
        }
        self.events.push(KvCacheEventData::Stored(KvCacheStoreData {
            parent_hash: parent,
            start_position: None,
            blocks: vec![block],
        }));
    }

    /// Append an evicted block, extending the previous `removed` event when there is one.
    fn record_removed(&mut self, hash: SequenceHash) {
        if let Some(KvCacheEventData::Removed(removed)) = self.events.last_mut() {
            removed.block_hashes.push(hash);
            return;
        }
        self.events
            .push(KvCacheEventData::Removed(KvCacheRemoveData {
                block_hashes: vec![hash],
            }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn h(x: u64) -> SequenceHash {
        SequenceHash(x)
    }

    fn l(x: u64) -> LocalBlockHash {
        LocalBlockHash(x)
    }

    /// Allocate one block and register it as `hash` under `parent`.
    fn store(kv: &mut BlockManager, parent: Option<u64>, hash: u64) {
        kv.allocate(1).unwrap();
        kv.register(parent.map(h), h(hash), l(hash));
    }

    #[test]
    fn register_emits_one_contiguous_stored_run() {
        let mut kv = BlockManager::new(8, true);
        store(&mut kv, None, 1);
        store(&mut kv, Some(1), 2);
        store(&mut kv, Some(2), 3);
        let events = kv.take_events();
        assert_eq!(events.len(), 1);
        let KvCacheEventData::Stored(run) = &events[0] else {
            panic!("expected stored, got {events:?}");
        };
        assert_eq!(run.parent_hash, None);
        let hashes: Vec<u64> = run.blocks.iter().map(|b| b.block_hash.0).collect();
        assert_eq!(hashes, [1, 2, 3]);
        assert_eq!(kv.usage().active, 3);
        assert_eq!(kv.usage().free, 5);
    }

    #[test]
    fn released_blocks_stay_cached_and_are_reused() {
        let mut kv = BlockManager::new(4, true);
        store(&mut kv, None, 1);
        store(&mut kv, Some(1), 2);
        kv.release(h(2));
        kv.release(h(1));
        assert_eq!(kv.usage().inactive, 2);
        assert_eq!(
            kv.match_prefix(&[h(1), h(2), h(3)]),
            PrefixMatch {
                blocks: 2,
                inactive: 2
            }
        );
        kv.acquire(h(1));
        assert_eq!(kv.refcount(h(1)), 1);
        assert_eq!(
            kv.match_prefix(&[h(1), h(2)]),
            PrefixMatch {
                blocks: 2,
                inactive: 1
            }
        );
    }

    #[test]
    fn eviction_takes_least_recently_released_and_emits_removed() {
        let mut kv = BlockManager::new(2, true);
        store(&mut kv, None, 1);
        store(&mut kv, Some(1), 2);
        kv.take_events();
        // Released tail first, as a finishing sequence does: the tail is evicted first.
        kv.release(h(2));
        kv.release(h(1));
        kv.allocate(1).unwrap();
        assert_eq!(
            kv.take_events(),
            vec![KvCacheEventData::Removed(KvCacheRemoveData {
                block_hashes: vec![h(2)]
            })]
        );
        assert!(kv.is_cached(h(1)));
        assert!(!kv.is_cached(h(2)));
        let err = kv.allocate(2).unwrap_err();
        assert_eq!(
            err,
            OutOfBlocks {
                requested: 2,
                available: 1
            }
        );
        assert_eq!(kv.usage().private, 1, "a failed allocation changes nothing");
    }

    #[test]
    fn duplicate_registration_shares_the_existing_block() {
        let mut kv = BlockManager::new(4, true);
        store(&mut kv, None, 1);
        kv.take_events();
        store(&mut kv, None, 1);
        assert!(kv.take_events().is_empty(), "no second stored for one hash");
        assert_eq!(kv.refcount(h(1)), 2);
        assert_eq!(kv.usage().private, 0);
        assert_eq!(kv.usage().free, 3);
    }

    #[test]
    fn no_prefix_caching_means_no_reuse_and_no_events() {
        let mut kv = BlockManager::new(4, false);
        kv.allocate(3).unwrap();
        assert_eq!(kv.match_prefix(&[h(1)]), PrefixMatch::default());
        kv.release_private(3);
        kv.clear();
        assert!(kv.take_events().is_empty());
        assert_eq!(kv.usage().free, 4);
    }

    #[test]
    fn clear_drops_the_pool_and_emits_cleared() {
        let mut kv = BlockManager::new(4, true);
        store(&mut kv, None, 1);
        kv.release(h(1));
        kv.take_events();
        kv.clear();
        assert_eq!(kv.take_events(), vec![KvCacheEventData::Cleared]);
        assert!(kv.cached_blocks().is_empty());
        assert_eq!(kv.usage().free, 4);
    }

    #[test]
    #[should_panic(expected = "double free")]
    fn double_release_is_caught() {
        let mut kv = BlockManager::new(2, true);
        store(&mut kv, None, 1);
        kv.release(h(1));
        kv.release(h(1));
    }
}
