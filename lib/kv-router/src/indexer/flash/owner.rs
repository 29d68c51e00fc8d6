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
//! Records live in a dense per-owner arena reached through a compact reverse index, and each
//! record keeps its parent's arena index: a removal finds the parent (to update its child
//! count) without a second hash probe. Freed records are reused last-freed-first, so a run
//! stored after a tail-first eviction lands in consecutive records again.

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use stator_tokens::{LocalBlockHash, SequenceHash};

use super::Shared;
use super::fingerprint::{mix, tag};
use super::rev_index::RevIndex;
use super::table::{MAX_POSITIONS, NewBlock, PREFETCH_AHEAD};
use crate::indexer::IndexerError;
use crate::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    RouterEvent, WorkerWithDpRank,
};

/// No record (a parent index of a block stored without a cached parent).
const NO_RECORD: u32 = u32::MAX;

const LIVE: u8 = 1;
const FP_KNOWN: u8 = 2;
const HAS_PARENT: u8 = 4;

/// Where one cached block sits, and its links.
#[derive(Debug, Clone, Copy)]
struct Record {
    seq: SequenceHash,
    local: LocalBlockHash,
    /// Running fingerprint sum (meaningful with `FP_KNOWN`).
    fp_sum: u64,
    /// Parent sequence hash (meaningful with `HAS_PARENT`).
    parent: SequenceHash,
    position: u32,
    /// Cached blocks whose parent is this block.
    children: u32,
    /// Arena index of the parent when it was cached at store time; checked against `parent`
    /// before use, since the parent may have been freed (and its record reused) since.
    parent_at: u32,
    flags: u8,
}

impl Record {
    #[inline]
    fn has(&self, flag: u8) -> bool {
        self.flags & flag != 0
    }
}

/// The write-side state of one owner.
#[derive(Debug)]
pub(crate) struct OwnerState {
    owner: WorkerWithDpRank,
    slot: u32,
    index: RevIndex,
    records: Vec<Record>,
    /// Freed record indices, reused last-freed-first.
    free: Vec<u32>,
    /// Orphan count per position.
    orphans: BTreeMap<u32, u32>,
    /// Orphans per missing parent sequence hash (adopted when that parent is stored).
    waiting: FxHashMap<SequenceHash, u32>,
    /// Scratch for the blocks of one event.
    staged: Vec<NewBlock>,
}

impl OwnerState {
    pub(crate) fn new(owner: WorkerWithDpRank, slot: u32) -> Self {
        Self {
            owner,
            slot,
            index: RevIndex::default(),
            records: Vec::new(),
            free: Vec::new(),
            orphans: BTreeMap::new(),
            waiting: FxHashMap::default(),
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

    /// The live record of `parent`, through the hint `at` when it still names it.
    #[inline]
    fn parent_record(&self, at: u32, parent: SequenceHash) -> Option<u32> {
        match self.records.get(at as usize) {
            Some(r) if r.has(LIVE) && r.seq == parent => Some(at),
            _ => self.index.get(parent),
        }
    }

    /// Hint the CPU to fetch the record of `seq` (one index probe, normally a cache hit).
    #[inline]
    fn prefetch_record(&self, seq: SequenceHash) {
        if let Some(r) = self
            .index
            .get(seq)
            .and_then(|at| self.records.get(at as usize))
        {
            super::prefetch_line(std::ptr::from_ref(r).cast());
        }
    }

    fn allocate(&mut self, record: Record) -> u32 {
        if let Some(at) = self.free.pop() {
            self.records[at as usize] = record;
            at
        } else {
            self.records.push(record);
            u32::try_from(self.records.len() - 1).expect("fewer than 2^32 blocks per owner")
        }
    }

    fn store(&mut self, shared: &Shared, store: &KvCacheStoreData) -> Result<(), IndexerError> {
        if store.blocks.is_empty() {
            return Ok(());
        }
        // Where the run starts, the parent's record if cached here, and its fingerprint.
        let (start, parent_at, parent_sum) = match (store.parent_hash, store.start_position) {
            (Some(parent), explicit) => match self.index.get(parent) {
                Some(at) => {
                    let r = &self.records[at as usize];
                    (
                        explicit.unwrap_or(r.position + 1),
                        at,
                        r.has(FP_KNOWN).then_some(r.fp_sum),
                    )
                }
                None => match explicit {
                    Some(p) => (p, NO_RECORD, if p == 0 { Some(0) } else { None }),
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
                (p, NO_RECORD, if p == 0 { Some(0) } else { None })
            }
        };
        let end = u64::from(start) + store.blocks.len() as u64;
        if end > MAX_POSITIONS as u64 {
            return Err(IndexerError::PositionOutOfRange {
                position: end - 1,
                max: MAX_POSITIONS as u64,
            });
        }

        self.staged.clear();
        let blocks = &store.blocks;
        for b in blocks.iter().take(PREFETCH_AHEAD) {
            self.index.prefetch(b.block_hash);
        }
        let mut sum = parent_sum;
        let mut prev_at = parent_at;
        for (i, b) in blocks.iter().enumerate() {
            if let Some(ahead) = blocks.get(i + PREFETCH_AHEAD) {
                self.index.prefetch(ahead.block_hash);
            }
            let position = start + i as u32;
            sum = sum.map(|s| s.wrapping_add(mix(b.tokens_hash, position)));
            self.staged.push(NewBlock {
                position,
                local: b.tokens_hash,
                seq: b.block_hash,
                fp: sum.map_or(0, tag),
            });
            let vacant = match self.index.find_or_vacant(b.block_hash) {
                Ok(at) => {
                    prev_at = at;
                    continue;
                }
                Err(vacant) => vacant,
            };
            let (has_parent, parent) = if i == 0 {
                store
                    .parent_hash
                    .map_or((false, SequenceHash(0)), |p| (true, p))
            } else {
                (true, blocks[i - 1].block_hash)
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
                if prev_at == NO_RECORD {
                    self.add_orphans(position, 1);
                    if has_parent {
                        *self.waiting.entry(parent).or_insert(0) += 1;
                    }
                } else {
                    self.records[prev_at as usize].children += 1;
                }
            }
            let mut flags = LIVE;
            if sum.is_some() {
                flags |= FP_KNOWN;
            }
            if has_parent {
                flags |= HAS_PARENT;
            }
            let at = self.allocate(Record {
                seq: b.block_hash,
                local: b.tokens_hash,
                fp_sum: sum.unwrap_or(0),
                parent,
                position,
                children: adopted,
                parent_at: prev_at,
                flags,
            });
            self.index.fill(vacant, b.block_hash, at);
            prev_at = at;
        }
        shared.table.insert(&self.staged, self.slot);
        Ok(())
    }

    fn remove(&mut self, shared: &Shared, remove: &KvCacheRemoveData) -> Result<(), IndexerError> {
        // Pass 1: the reverse index and the gap bookkeeping; pass 2: the table, grouped by
        // position chunk with the buckets prefetched.
        self.staged.clear();
        let mut result = Ok(());
        let hashes = &remove.block_hashes;
        // Two-stage prefetch: index buckets `PREFETCH_AHEAD` blocks ahead, and the records of
        // the blocks half as far ahead, whose buckets have arrived by then.
        let half = PREFETCH_AHEAD / 2;
        for &seq in hashes.iter().take(PREFETCH_AHEAD) {
            self.index.prefetch(seq);
        }
        for &seq in hashes.iter().take(half) {
            self.prefetch_record(seq);
        }
        for (k, &seq) in hashes.iter().enumerate() {
            if let Some(&ahead) = hashes.get(k + PREFETCH_AHEAD) {
                self.index.prefetch(ahead);
            }
            if let Some(&ahead) = hashes.get(k + half) {
                self.prefetch_record(ahead);
            }
            let Some(at) = self.index.remove(seq) else {
                result = Err(IndexerError::BlockNotFound {
                    owner: self.owner,
                    block: seq,
                });
                break;
            };
            let r = self.records[at as usize];
            self.records[at as usize].flags = 0;
            self.free.push(at);
            self.staged.push(NewBlock {
                position: r.position,
                local: r.local,
                seq,
                fp: 0,
            });
            if r.children > 0 {
                self.add_orphans(r.position + 1, r.children);
                *self.waiting.entry(seq).or_insert(0) += r.children;
            }
            if r.position > 0 {
                let parent = if r.has(HAS_PARENT) {
                    self.parent_record(r.parent_at, r.parent)
                } else {
                    None
                };
                if let Some(p) = parent {
                    let p = &mut self.records[p as usize];
                    p.children = p.children.saturating_sub(1);
                } else {
                    self.drop_orphans(r.position, 1);
                    if r.has(HAS_PARENT)
                        && let Some(w) = self.waiting.get_mut(&r.parent)
                    {
                        *w -= 1;
                        if *w == 0 {
                            self.waiting.remove(&r.parent);
                        }
                    }
                }
            }
        }
        // No sort: the table groups consecutive blocks of one chunk under one lock, and an
        // engine's removals come in runs along a sequence (tail first), so runs are long.
        shared.table.remove(&self.staged, self.slot);
        result
    }

    /// Drop every block of this owner from the table.
    pub(crate) fn clear(&mut self, shared: &Shared) {
        self.staged.clear();
        self.staged.extend(
            self.records
                .iter()
                .filter(|r| r.has(LIVE))
                .map(|r| NewBlock {
                    position: r.position,
                    local: r.local,
                    seq: r.seq,
                    fp: 0,
                }),
        );
        self.staged.sort_unstable_by_key(|b| b.position);
        shared.table.remove(&self.staged, self.slot);
        self.staged = Vec::new();
        self.index.clear();
        self.records = Vec::new();
        self.free = Vec::new();
        self.orphans.clear();
        self.waiting.clear();
        self.waiting.shrink_to_fit();
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
        let mut blocks: Vec<&Record> = self.records.iter().filter(|r| r.has(LIVE)).collect();
        blocks.sort_by_key(|r| (r.position, r.seq));
        for r in blocks {
            let parent_held = r.has(HAS_PARENT) && self.index.get(r.parent).is_some();
            let (parent_hash, start_position) = if r.position == 0 {
                (None, None)
            } else if parent_held {
                (Some(r.parent), None)
            } else {
                (r.has(HAS_PARENT).then_some(r.parent), Some(r.position))
            };
            out.push(RouterEvent::new(
                self.owner.worker_id,
                KvCacheEvent {
                    event_id: *next_event_id,
                    data: KvCacheEventData::Stored(KvCacheStoreData {
                        parent_hash,
                        start_position,
                        blocks: vec![KvCacheStoredBlockData {
                            block_hash: r.seq,
                            tokens_hash: r.local,
                        }],
                    }),
                    dp_rank: self.owner.dp_rank,
                },
            ));
            *next_event_id += 1;
        }
    }
}
