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

use std::collections::BTreeMap;

use rustc_hash::FxHashMap;
use stator_tokens::SequenceHash;

use super::Shared;
use super::fingerprint::{mix, tag};
use super::pos_map::PosMap;
use super::table::{MAX_POSITIONS, NewBlock, PREFETCH_AHEAD};
use crate::indexer::IndexerError;
use crate::protocols::{
    KvCacheEvent, KvCacheEventData, KvCacheRemoveData, KvCacheStoreData, KvCacheStoredBlockData,
    RouterEvent, WorkerWithDpRank,
};

/// Where one cached block sits, and its links.
#[derive(Debug, Clone, Copy)]
struct BlockRecord {
    position: u32,
    /// Cached blocks whose parent is this block.
    children: u32,
    fp_known: bool,
    has_parent: bool,
    local: stator_tokens::LocalBlockHash,
    /// Running fingerprint sum (meaningful when `fp_known`).
    fp_sum: u64,
    /// Parent sequence hash (meaningful when `has_parent`).
    parent: SequenceHash,
}

/// The write-side state of one owner.
#[derive(Debug)]
pub(crate) struct OwnerState {
    owner: WorkerWithDpRank,
    slot: u32,
    blocks: PosMap<SequenceHash, BlockRecord>,
    /// Orphan count per position.
    orphans: BTreeMap<u32, u32>,
    /// Orphans per missing parent sequence hash (adopted when that parent is stored).
    waiting: FxHashMap<SequenceHash, u32>,
    /// Scratch for the blocks of one event.
    staged: Vec<NewBlock>,
    fp_sums: Vec<Option<u64>>,
}

impl OwnerState {
    pub(crate) fn new(owner: WorkerWithDpRank, slot: u32) -> Self {
        Self {
            owner,
            slot,
            blocks: PosMap::default(),
            orphans: BTreeMap::new(),
            waiting: FxHashMap::default(),
            staged: Vec::new(),
            fp_sums: Vec::new(),
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

    fn store(&mut self, shared: &Shared, store: &KvCacheStoreData) -> Result<(), IndexerError> {
        if store.blocks.is_empty() {
            return Ok(());
        }
        // Where the run starts, whether its parent is cached here, and the parent's fingerprint.
        let (start, parent_held, parent_sum) = match (store.parent_hash, store.start_position) {
            (Some(parent), explicit) => match self.blocks.get(parent) {
                Some(r) => (
                    explicit.unwrap_or(r.position + 1),
                    true,
                    r.fp_known.then_some(r.fp_sum),
                ),
                None => match explicit {
                    Some(p) => (p, false, if p == 0 { Some(0) } else { None }),
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
                (p, false, if p == 0 { Some(0) } else { None })
            }
        };
        let end = u64::from(start) + store.blocks.len() as u64;
        if end > MAX_POSITIONS as u64 {
            return Err(IndexerError::PositionOutOfRange {
                position: end - 1,
                max: MAX_POSITIONS as u64,
            });
        }

        // Forward pass: positions and fingerprints.
        self.staged.clear();
        self.fp_sums.clear();
        let mut sum = parent_sum;
        for (i, b) in store.blocks.iter().enumerate() {
            let position = start + i as u32;
            sum = sum.map(|s| s.wrapping_add(mix(b.tokens_hash, position)));
            self.fp_sums.push(sum);
            self.staged.push(NewBlock {
                position,
                local: b.tokens_hash,
                seq: b.block_hash,
                fp: sum.map_or(0, tag),
            });
        }

        // Backward pass over the reverse lookup, so that each block learns whether its child in
        // this run is new (one lookup per block).
        let mut child_is_new = false;
        let n = store.blocks.len();
        for b in &store.blocks[n.saturating_sub(PREFETCH_AHEAD)..] {
            self.blocks.prefetch(b.block_hash);
        }
        for i in (0..n).rev() {
            if let Some(ahead) = i.checked_sub(PREFETCH_AHEAD) {
                self.blocks.prefetch(store.blocks[ahead].block_hash);
            }
            let b: &KvCacheStoredBlockData = &store.blocks[i];
            let position = start + i as u32;
            let (has_parent, parent) = if i == 0 {
                store
                    .parent_hash
                    .map_or((false, SequenceHash(0)), |p| (true, p))
            } else {
                (true, store.blocks[i - 1].block_hash)
            };
            let vacant = match self.blocks.find_or_vacant(b.block_hash) {
                Ok(at) => {
                    if let Some(r) = self.blocks.value_at_mut(at) {
                        r.children += u32::from(child_is_new);
                    }
                    child_is_new = false;
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
            let fp_sum = self.fp_sums[i];
            self.blocks.fill(
                vacant,
                b.block_hash,
                BlockRecord {
                    position,
                    children: adopted + u32::from(child_is_new),
                    fp_known: fp_sum.is_some(),
                    has_parent,
                    local: b.tokens_hash,
                    fp_sum: fp_sum.unwrap_or(0),
                    parent,
                },
            );
            child_is_new = true;
            if i == 0 && position > 0 {
                if parent_held {
                    if let Some(r) = self.blocks.get_mut(parent) {
                        r.children += 1;
                    }
                } else {
                    self.add_orphans(position, 1);
                    if has_parent {
                        *self.waiting.entry(parent).or_insert(0) += 1;
                    }
                }
            }
        }
        shared.table.insert(&self.staged, self.slot);
        Ok(())
    }

    fn remove(&mut self, shared: &Shared, remove: &KvCacheRemoveData) -> Result<(), IndexerError> {
        // Pass 1: the reverse lookup and the gap bookkeeping; pass 2: the table, grouped by
        // position chunk with the buckets prefetched.
        self.staged.clear();
        let mut result = Ok(());
        let hashes = &remove.block_hashes;
        for &seq in hashes.iter().take(PREFETCH_AHEAD) {
            self.blocks.prefetch(seq);
        }
        for (k, &seq) in hashes.iter().enumerate() {
            if let Some(&ahead) = hashes.get(k + PREFETCH_AHEAD) {
                self.blocks.prefetch(ahead);
            }
            let Some(r) = self.blocks.remove(seq) else {
                result = Err(IndexerError::BlockNotFound {
                    owner: self.owner,
                    block: seq,
                });
                break;
            };
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
                let parent = if r.has_parent {
                    self.blocks.get_mut(r.parent)
                } else {
                    None
                };
                if let Some(p) = parent {
                    p.children = p.children.saturating_sub(1);
                } else {
                    self.drop_orphans(r.position, 1);
                    if r.has_parent
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
        self.staged
            .extend(self.blocks.take_all().map(|(seq, r)| NewBlock {
                position: r.position,
                local: r.local,
                seq,
                fp: 0,
            }));
        self.staged.sort_unstable_by_key(|b| b.position);
        shared.table.remove(&self.staged, self.slot);
        self.staged = Vec::new();
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
        let mut blocks: Vec<(SequenceHash, &BlockRecord)> = self.blocks.iter().collect();
        blocks.sort_by_key(|(seq, r)| (r.position, *seq));
        for (seq, r) in blocks {
            let parent_held = r.has_parent && self.blocks.get(r.parent).is_some();
            let (parent_hash, start_position) = if r.position == 0 {
                (None, None)
            } else if parent_held {
                (Some(r.parent), None)
            } else {
                (r.has_parent.then_some(r.parent), Some(r.position))
            };
            out.push(RouterEvent::new(
                self.owner.worker_id,
                KvCacheEvent {
                    event_id: *next_event_id,
                    data: KvCacheEventData::Stored(KvCacheStoreData {
                        parent_hash,
                        start_position,
                        blocks: vec![KvCacheStoredBlockData {
                            block_hash: seq,
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
