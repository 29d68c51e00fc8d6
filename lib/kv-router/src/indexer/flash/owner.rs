//! Per-owner write state of the flash index: the reverse lookup (sequence hash → where the
//! block sits) and the gap ("orphan") bookkeeping that keeps jump search exact.
//!
//! An owner's state is only ever touched by the one thread that applies its events (the
//! [`super::FlashIndexer`] itself, or the owner's lane in the thread pool), so it needs no
//! lock.
//!
//! An *orphan* is a cached block whose parent block the owner does not cache. While an owner
//! has no orphan at or below position `p`, caching the query's block at `p` implies caching the
//! query's whole prefix up to `p`, so the search may jump over positions. The owner's lowest
//! orphan position (its *floor*) is published to readers; below it, jumps are exact.
//!
//! Everything the owner knows about a block sits in one record of its [`HeldBlocks`] arena
//! (position, local hash, parent, child count, parent record). A `Stored` run fills
//! consecutive records and one index slot per block; within it the position, parent and
//! fingerprint of block `i` follow from block `i − 1`. A `Removed` event (evicted tail first)
//! names each block's parent next, which the removed record links to, so a removal walks the
//! arena and settles the parent's child count there, with no index lookup per block.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use stator_tokens::SequenceHash;

use super::Shared;
use super::fingerprint::{FP_SEED, mix};
use super::slots::table_key;
use super::held::{Held, HeldBlocks, ParentLink};
use super::table::{MAX_POSITIONS, NewBlock, PREFETCH_AHEAD};
use crate::indexer::IndexerError;
use crate::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    RouterEvent, WorkerWithDpRank,
};

/// Blocks of one event that the owner pass works out (prefetching their table buckets)
/// before the table pass writes them: enough to cover the memory latency, few enough that
/// the fetched lines are still in L1 for the writes.
const TILE: usize = 64;

/// The stages of [`OwnerState::prefetch`], in the order an event goes through them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The index lines of the named blocks.
    Index,
    /// The named block's record (read through the index).
    Record,
    /// The table's map headers at the block's position (read through the record).
    Headers,
    /// The table's buckets there (read through the headers).
    Buckets,
}

/// The write-side state of one owner.
#[derive(Debug)]
pub(crate) struct OwnerState {
    owner: WorkerWithDpRank,
    slot: u32,
    held: HeldBlocks,
    /// Orphan count per position.
    orphans: BTreeMap<u32, u32>,
    /// Orphans per missing parent sequence hash (adopted when that parent is stored).
    waiting: FxHashMap<SequenceHash, u32>,
    /// Table slots this owner holds more than one block of (blocks with equal keys at one
    /// position: the same prefix stored under different sequence hashes), with the count of
    /// the extra blocks; the owner's bit there stays until the last one goes.
    duplicates: FxHashMap<NewBlock, u32>,
    /// The table changes of one event, written a tile of [`TILE`] blocks at a time after the
    /// owner pass has worked the tile out and prefetched its buckets: each chunk's write lock
    /// is held only for the tile's table writes.
    staged: Vec<NewBlock>,
}

impl OwnerState {
    pub(crate) fn new(owner: WorkerWithDpRank, slot: u32) -> Self {
        Self {
            owner,
            slot,
            held: HeldBlocks::default(),
            orphans: BTreeMap::new(),
            waiting: FxHashMap::default(),
            duplicates: FxHashMap::default(),
            staged: Vec::new(),
        }
    }

    /// The owner's registry slot.
    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }

    /// Apply one event of this owner.
    pub(crate) fn apply(
        &mut self,
        shared: &Shared,
        data: &KvCacheEventData,
    ) -> Result<(), IndexerError> {
        let floor_before = self.floor();
        let result = match data {
            KvCacheEventData::Stored(store) => self.store(shared, store),
            KvCacheEventData::Removed(remove) => self.remove(shared, remove),
            KvCacheEventData::Cleared => {
                self.clear(shared);
                Ok(())
            }
        };
        let floor_after = self.floor();
        if floor_after != floor_before {
            shared.publish_floor(self.slot, floor_before, floor_after);
        }
        result
    }

    /// Hint the CPU to fetch, in `stage`, what applying `data` reads first: the block an
    /// event names by sequence hash (a `Stored` run's parent, a removal's first block), its
    /// parent's record, the table entries at its position and, for a store, the next one.
    /// Called for queued events ahead of the one being applied, one stage per event step,
    /// so that the misses of a short event overlap with the work of the ones before it.
    pub(crate) fn prefetch(&self, shared: &Shared, data: &KvCacheEventData, stage: Stage) {
        let (seq, next) = match data {
            KvCacheEventData::Stored(store) => match (store.parent_hash, store.blocks.first()) {
                (Some(parent), Some(first)) => (parent, Some(first)),
                _ => return,
            },
            KvCacheEventData::Removed(remove) => match remove.block_hashes.first() {
                Some(&first) => (first, None),
                None => return,
            },
            KvCacheEventData::Cleared => return,
        };
        if stage == Stage::Index {
            self.held.prefetch(seq);
            if let Some(b) = next {
                self.held.prefetch(b.block_hash);
            }
            return;
        }
        let Some(at) = self.held.record_hint(seq) else {
            return;
        };
        if stage == Stage::Record {
            self.held.prefetch_record(at);
            return;
        }
        let Some(h) = self.held.get_if(at, seq) else {
            return;
        };
        let buckets = stage == Stage::Buckets;
        shared.table.prefetch(h.position(), h.table_key(), buckets);
        match next {
            Some(b) => {
                let position = h.position() + 1;
                let fp = if h.fp == 0 {
                    0
                } else {
                    h.fp.wrapping_add(mix(b.tokens_hash, position))
                };
                shared
                    .table
                    .prefetch(position, table_key(fp, b.block_hash.0), buckets);
            }
            None if !buckets => self.held.prefetch_record(h.parent_record()),
            None => {}
        }
    }

    /// The lowest orphan position, `u32::MAX` when the owner has no gap.
    fn floor(&self) -> u32 {
        self.orphans.keys().next().copied().unwrap_or(u32::MAX)
    }

    fn add_orphans(&mut self, position: u32, n: u32) {
        *self.orphans.entry(position).or_insert(0) += n;
    }

    fn drop_orphans(&mut self, position: u32, n: u32) {
        if let Some(c) = self.orphans.get_mut(&position) {
            *c = c.saturating_sub(n);
            if *c == 0 {
                self.orphans.remove(&position);
            }
        }
    }

    fn store(&mut self, shared: &Shared, store: &KvCacheStoreData) -> Result<(), IndexerError> {
        let blocks = &store.blocks;
        if blocks.is_empty() {
            return Ok(());
        }
        // Room first, so that no bucket moves while the run is applied: a block's parent is
        // then always the bucket found or filled for the block before it.
        self.held.reserve(blocks.len());
        // Where the run starts, the parent's bucket if cached here, and its fingerprint (0:
        // unknown).
        let (start, parent_at, parent_fp) = match (store.parent_hash, store.start_position) {
            (Some(parent), explicit) => match self.held.find(parent) {
                Some(at) => {
                    let p = self.held.at(at);
                    (explicit.unwrap_or(p.position() + 1), Some(at), p.fp)
                }
                None => match explicit {
                    Some(p) => (p, None, if p == 0 { FP_SEED } else { 0 }),
                    None => {
                        return Err(IndexerError::ParentBlockNotFound {
                            owner: self.owner,
                            parent,
                        });
                    }
                },
            },
            (None, explicit) => {
                let p = explicit.unwrap_or(0);
                (p, None, if p == 0 { FP_SEED } else { 0 })
            }
        };
        let end = u64::from(start) + blocks.len() as u64;
        if end > MAX_POSITIONS as u64 {
            return Err(IndexerError::PositionOutOfRange {
                position: end - 1,
                max: MAX_POSITIONS as u64,
            });
        }

        self.staged.clear();
        for b in blocks.iter().take(PREFETCH_AHEAD) {
            self.held.prefetch(b.block_hash);
        }
        // The table pass's buckets, fetched while this pass works out the blocks.
        let mut ahead = shared.table.reader();
        let mut fp = parent_fp;
        let mut prev_at = parent_at;
        let mut parent = store.parent_hash;
        for (i, b) in blocks.iter().enumerate() {
            if let Some(ahead) = blocks.get(i + PREFETCH_AHEAD) {
                self.held.prefetch(ahead.block_hash);
            }
            let position = start + i as u32;
            if fp != 0 {
                fp = fp.wrapping_add(mix(b.tokens_hash, position));
            }
            let this_parent = parent;
            parent = Some(b.block_hash);
            let vacant = match self.held.find_or_vacant(b.block_hash) {
                Ok(at) => {
                    // Already cached: it keeps its place, parent and fingerprint.
                    prev_at = Some(at);
                    continue;
                }
                Err(vacant) => vacant,
            };
            let adopted = if self.waiting.is_empty() {
                0
            } else {
                self.waiting.remove(&b.block_hash).unwrap_or(0)
            };
            if adopted > 0 {
                self.drop_orphans(position + 1, adopted);
            }
            if position > 0 {
                if let Some(at) = prev_at {
                    self.held.at_mut(at).children += 1;
                } else {
                    self.add_orphans(position, 1);
                    if let Some(p) = this_parent {
                        *self.waiting.entry(p).or_insert(0) += 1;
                    }
                }
            }
            let at = self.held.fill(
                vacant,
                Held::new(b.block_hash, b.tokens_hash, this_parent, fp, position, adopted),
                prev_at,
            );
            let key = table_key(fp, b.block_hash.0);
            ahead.prefetch(position, key);
            self.staged.push(NewBlock { position, key });
            prev_at = Some(at);
            if self.staged.len() == TILE {
                drop(ahead);
                self.insert_staged(shared);
                ahead = shared.table.reader();
            }
        }
        drop(ahead);
        self.insert_staged(shared);
        Ok(())
    }

    /// Write the staged blocks into the table, counting the ones whose slot the owner
    /// already held.
    fn insert_staged(&mut self, shared: &Shared) {
        shared.table.insert(&self.staged, self.slot, |b| {
            *self.duplicates.entry(b).or_insert(0) += 1;
        });
        self.staged.clear();
    }

    /// Whether the owner's bit at `b` must stay after one of its blocks there goes: true, and
    /// one extra block fewer, when it holds another block with the same key there.
    fn keeps_duplicate(&mut self, b: NewBlock) -> bool {
        if self.duplicates.is_empty() {
            return false;
        }
        let Some(extra) = self.duplicates.get_mut(&b) else {
            return false;
        };
        *extra -= 1;
        if *extra == 0 {
            self.duplicates.remove(&b);
        }
        true
    }

    fn remove(&mut self, shared: &Shared, remove: &KvCacheRemoveData) -> Result<(), IndexerError> {
        self.staged.clear();
        let hashes = &remove.block_hashes;
        // The block removed last, whose parent link is settled with the next hash: an engine
        // evicts tail first, so the parent is usually the next hash, reached through the
        // removed block's parent link without an index lookup.
        let mut unlinked: Option<ParentLink> = None;
        let mut result = Ok(());
        // The table pass's buckets, fetched while this pass walks the records.
        let mut ahead = shared.table.reader();
        for &seq in hashes {
            let found = match &unlinked {
                Some(u) => self.held.find_parent_of(u, seq),
                None => self.held.find(seq),
            };
            if let Some(u) = unlinked.take() {
                match found {
                    Some(at) if u.parent() == Some(seq) => {
                        let p = self.held.at_mut(at);
                        p.children = p.children.saturating_sub(1);
                    }
                    _ => self.unlink(&u),
                }
            }
            let Some(at) = found else {
                result = Err(IndexerError::BlockNotFound {
                    owner: self.owner,
                    block: seq,
                });
                break;
            };
            let h = self.held.remove_at(at);
            let position = h.position();
            if h.children > 0 {
                self.add_orphans(position + 1, h.children);
                *self.waiting.entry(seq).or_insert(0) += h.children;
            }
            if position > 0 {
                unlinked = Some(h.link());
            }
            let b = NewBlock {
                position,
                key: h.table_key(),
            };
            if self.keeps_duplicate(b) {
                continue;
            }
            ahead.prefetch(position, b.key);
            self.staged.push(b);
            if self.staged.len() == TILE {
                drop(ahead);
                shared.table.remove_prefetched(&self.staged, self.slot);
                self.staged.clear();
                ahead = shared.table.reader();
            }
        }
        drop(ahead);
        if let Some(u) = unlinked {
            self.unlink(&u);
        }
        // No sort: the table groups consecutive blocks of one chunk under one lock, and an
        // engine's removals come in runs along a sequence (tail first), so runs are long.
        shared.table.remove_prefetched(&self.staged, self.slot);
        result
    }

    /// Settle the parent link of a removed block (not at position 0): one child less for a
    /// cached parent, one orphan less otherwise.
    fn unlink(&mut self, removed: &ParentLink) {
        let parent = removed.parent();
        if let Some(at) = parent.and_then(|p| self.held.find_parent_of(removed, p)) {
            let p = self.held.at_mut(at);
            p.children = p.children.saturating_sub(1);
            return;
        }
        self.drop_orphans(removed.position(), 1);
        if let Some(parent) = parent
            && let Some(w) = self.waiting.get_mut(&parent)
        {
            *w -= 1;
            if *w == 0 {
                self.waiting.remove(&parent);
            }
        }
    }

    /// Drop every block of this owner from the table.
    pub(crate) fn clear(&mut self, shared: &Shared) {
        let mut blocks: Vec<NewBlock> = self
            .held
            .iter()
            .map(|h| NewBlock {
                position: h.position(),
                key: h.table_key(),
            })
            .collect();
        blocks.sort_unstable_by_key(|b| b.position);
        shared.table.remove(&blocks, self.slot);
        self.held.clear();
        self.orphans.clear();
        self.waiting.clear();
        self.waiting.shrink_to_fit();
        self.duplicates.clear();
    }

    /// Drop everything and publish that the owner has no gap left.
    pub(crate) fn clear_and_publish(&mut self, shared: &Shared) {
        let floor_before = self.floor();
        self.clear(shared);
        if floor_before != u32::MAX {
            shared.publish_floor(self.slot, floor_before, u32::MAX);
        }
    }

    /// Append this owner's blocks as single-block `Stored` events, parents first.
    pub(crate) fn dump(&self, next_event_id: &mut u64, out: &mut Vec<RouterEvent>) {
        let mut blocks: Vec<&Held> = self.held.iter().collect();
        blocks.sort_by_key(|h| (h.position(), h.seq));
        for h in blocks {
            let parent = h.parent();
            let parent_held = parent.is_some_and(|p| self.held.find(p).is_some());
            let (parent_hash, start_position) = if h.position() == 0 {
                (None, None)
            } else if parent_held {
                (parent, None)
            } else {
                (parent, Some(h.position()))
            };
            out.push(RouterEvent::new(
                self.owner.worker_id,
                KvCacheEvent {
                    event_id: *next_event_id,
                    data: KvCacheEventData::Stored(KvCacheStoreData {
                        parent_hash,
                        start_position,
                        blocks: vec![KvCacheStoredBlockData {
                            block_hash: h.seq,
                            tokens_hash: h.local,
                        }],
                    }),
                    dp_rank: self.owner.dp_rank,
                },
            ));
            *next_event_id += 1;
        }
    }
}
