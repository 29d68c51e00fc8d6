//! Per-owner write state of the flash index: the reverse lookup (sequence hash → where the
//! block sits) and the gap ("orphan") bookkeeping that keeps jump search exact.
//!
//! An owner's state is touched by one owner pass at a time (the [`super::FlashIndexer`]
//! itself, or in the thread pool whoever holds the owner's lane's owner lock), and an owner
//! pass only plans table writes (`TableWork`), never reads the table, so the table pass can
//! run on another thread.
//!
//! An *orphan* is a cached block whose parent block the owner does not cache. While an owner
//! has no orphan at or below position `p`, caching the query's block at `p` implies caching the
//! query's whole prefix up to `p`, so the search may jump over positions. The owner's lowest
//! orphan position (its *floor*) is published to readers; below it, jumps are exact.
//!
//! Everything the owner knows about a block sits in one record of its [`HeldBlocks`] arena
//! (position, local hash, parent, prefix fingerprint, child count, parent record). A `Stored`
//! run fills consecutive records and one index slot per block; within it the position,
//! parent and fingerprint of block `i` follow from block `i − 1`. A `Removed` event (evicted tail first)
//! names each block's parent next, which the removed record links to, so a removal walks the
//! arena and settles the parent's child count there, with no index lookup per block.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use stator_tokens::SequenceHash;

use super::Shared;
use super::fingerprint::{self, FP_SEED};
use super::held::{Held, HeldBlocks, ParentLink};
use super::slots::table_key;
use super::table::{MAX_POSITIONS, NewBlock, PREFETCH_AHEAD};
use super::work::{Change, TableWork};
use crate::indexer::IndexerError;
use crate::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    RouterEvent, WorkerWithDpRank,
};

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
}

impl OwnerState {
    pub(crate) fn new(owner: WorkerWithDpRank, slot: u32) -> Self {
        Self {
            owner,
            slot,
            held: HeldBlocks::default(),
            orphans: BTreeMap::new(),
            waiting: FxHashMap::default(),
        }
    }

    /// The owner's registry slot.
    pub(crate) fn slot(&self) -> u32 {
        self.slot
    }

    /// Work out one event of this owner: update the owner's state and put the table writes
    /// it needs, in order, into `work` (whose slot is this owner's). An event rejected part
    /// way (a removal naming a block the owner does not hold) keeps the writes planned
    /// before the rejected block.
    pub(crate) fn plan(
        &mut self,
        data: &KvCacheEventData,
        work: &mut TableWork,
    ) -> Result<(), IndexerError> {
        work.reset(self.slot);
        let floor_before = self.floor();
        let result = match data {
            KvCacheEventData::Stored(store) => {
                work.change = Change::Store;
                self.store(store, &mut work.blocks)
            }
            KvCacheEventData::Removed(remove) => {
                work.change = Change::Remove;
                self.remove(remove, &mut work.blocks)
            }
            KvCacheEventData::Cleared => {
                work.change = Change::Clear;
                self.clear(&mut work.blocks);
                Ok(())
            }
        };
        let floor_after = self.floor();
        if floor_after != floor_before {
            work.floor = Some((floor_before, floor_after));
        }
        result
    }

    /// Hint the CPU to fetch, in `stage`, what applying `data` reads first: the block an
    /// event names by sequence hash (a `Stored` run's parent, a removal's first block), its
    /// parent's record, the table entries at its position and, for a store, the next one.
    /// Called by a lane for queued events ahead of the one it applies, one stage per event
    /// step, so that the misses of a short event overlap with the work of the ones before it.
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
                let fp = fingerprint::child(h.fp, b.tokens_hash, position);
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

    fn store(
        &mut self,
        store: &KvCacheStoreData,
        out: &mut Vec<NewBlock>,
    ) -> Result<(), IndexerError> {
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

        for b in blocks.iter().take(PREFETCH_AHEAD) {
            self.held.prefetch(b.block_hash);
        }
        let mut fp = parent_fp;
        let mut prev_at = parent_at;
        let mut parent = store.parent_hash;
        for (i, b) in blocks.iter().enumerate() {
            if let Some(ahead) = blocks.get(i + PREFETCH_AHEAD) {
                self.held.prefetch(ahead.block_hash);
            }
            let position = start + i as u32;
            fp = fingerprint::child(fp, b.tokens_hash, position);
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
                Held::new(
                    b.block_hash,
                    b.tokens_hash,
                    this_parent,
                    fp,
                    position,
                    adopted,
                ),
                prev_at,
            );
            out.push(NewBlock {
                position,
                key: table_key(fp, b.block_hash.0),
            });
            prev_at = Some(at);
        }
        Ok(())
    }

    fn remove(
        &mut self,
        remove: &KvCacheRemoveData,
        out: &mut Vec<NewBlock>,
    ) -> Result<(), IndexerError> {
        let hashes = &remove.block_hashes;
        // The block removed last, whose parent link is settled with the next hash: an engine
        // evicts tail first, so the parent is usually the next hash, reached through the
        // removed block's parent link without an index lookup.
        let mut unlinked: Option<ParentLink> = None;
        let mut result = Ok(());
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
            out.push(NewBlock {
                position,
                key: h.table_key(),
            });
        }
        if let Some(u) = unlinked {
            self.unlink(&u);
        }
        // No sort: the table groups consecutive blocks of one chunk under one lock, and an
        // engine's removals come in runs along a sequence (tail first), so runs are long.
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

    /// Forget every block of this owner, putting them into `out` in position order.
    fn clear(&mut self, out: &mut Vec<NewBlock>) {
        out.extend(self.held.iter().map(|h| NewBlock {
            position: h.position(),
            key: h.table_key(),
        }));
        out.sort_unstable_by_key(|b| b.position);
        self.held.clear();
        self.orphans.clear();
        self.waiting.clear();
        self.waiting.shrink_to_fit();
    }

    /// Forget every block of this owner, whose registry slot is being retired: the table
    /// work that drops them and then recycles the slot.
    pub(crate) fn retire_work(&mut self) -> TableWork {
        let mut work = TableWork::default();
        // Clearing rejects nothing.
        let _ = self.plan(&KvCacheEventData::Cleared, &mut work);
        work.change = Change::Retire;
        work
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
