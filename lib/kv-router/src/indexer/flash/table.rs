//! The positional table: for every block position, a map from local hash to the owners that
//! cache that block there.
//!
//! Positions are grouped into chunks of [`POSITIONS_PER_CHUNK`], one reader-writer lock per
//! chunk: a writer storing a run of consecutive blocks takes each chunk's lock once, and a
//! reader's probe takes one uncontended read lock. Chunks are allocated on first use through a
//! fixed directory of `OnceLock`s, so readers never lock to find a chunk.
//!
//! A slot `(position, local hash)` usually holds one entry (one prefix). When the same local
//! hash is cached at the same position under different prefixes, the slot holds one entry per
//! prefix and the query's prefix identity decides which apply.

use std::sync::OnceLock;

use parking_lot::{RwLock, RwLockReadGuard};
use stator_tokens::{LocalBlockHash, SequenceHash, next_sequence_hash};

use super::fingerprint::QueryFingerprints;
use super::pos_map::PosMap;
use crate::indexer::worker_set::WorkerSet;

/// log2 of the positions sharing one lock.
const CHUNK_SHIFT: u32 = 5;
/// Positions sharing one lock.
pub(crate) const POSITIONS_PER_CHUNK: usize = 1 << CHUNK_SHIFT;
/// Deepest supported position + 1 (blocks per sequence).
pub(crate) const MAX_POSITIONS: usize = 1 << 20;
const MAX_CHUNKS: usize = MAX_POSITIONS / POSITIONS_PER_CHUNK;

/// One prefix cached at a slot.
#[derive(Debug)]
struct Entry {
    seq: SequenceHash,
    /// Prefix fingerprint tag, or 0 when unknown (block stored without a known parent).
    fp: u64,
    workers: WorkerSet,
}

/// All prefixes cached at one `(position, local hash)`.
#[derive(Debug)]
enum Slot {
    One(Entry),
    Many(Vec<Entry>),
}

type PositionMap = PosMap<LocalBlockHash, Slot>;

/// How many blocks ahead a writer prefetches.
pub(crate) const PREFETCH_AHEAD: usize = 6;

#[derive(Debug)]
struct Chunk {
    maps: RwLock<[PositionMap; POSITIONS_PER_CHUNK]>,
}

/// One block to insert: position, local hash, sequence hash and fingerprint tag (0 unknown).
#[derive(Debug, Clone, Copy)]
pub(crate) struct NewBlock {
    pub(crate) position: u32,
    pub(crate) local: LocalBlockHash,
    pub(crate) seq: SequenceHash,
    pub(crate) fp: u64,
}

/// A query being matched: its local hashes and lazily computed prefix identities.
#[derive(Debug, Default)]
pub(crate) struct QueryState {
    fps: QueryFingerprints,
    seqs: Vec<SequenceHash>,
}

impl QueryState {
    pub(crate) fn reset(&mut self) {
        self.fps.reset();
        self.seqs.clear();
    }

    /// The query's wire sequence hash at `position` (the slow path, for unknown fingerprints).
    fn seq_at(&mut self, query: &[LocalBlockHash], position: usize) -> SequenceHash {
        while self.seqs.len() <= position {
            let i = self.seqs.len();
            let next = match self.seqs.last() {
                None => SequenceHash(query[0].0),
                Some(&parent) => next_sequence_hash(parent, query[i]),
            };
            self.seqs.push(next);
        }
        self.seqs[position]
    }
}

/// The shared positional table.
#[derive(Debug)]
pub(crate) struct Table {
    chunks: Box<[OnceLock<Box<Chunk>>]>,
}

impl Default for Table {
    fn default() -> Self {
        Self {
            chunks: (0..MAX_CHUNKS).map(|_| OnceLock::new()).collect(),
        }
    }
}

impl Table {
    #[inline]
    fn chunk(&self, position: usize) -> Option<&Chunk> {
        self.chunks
            .get(position >> CHUNK_SHIFT)
            .and_then(|c| c.get())
            .map(|c| &**c)
    }

    fn chunk_or_init(&self, position: usize) -> &Chunk {
        self.chunks[position >> CHUNK_SHIFT].get_or_init(|| {
            Box::new(Chunk {
                maps: RwLock::new(std::array::from_fn(|_| PositionMap::default())),
            })
        })
    }

    /// Add `slot` as an owner of every block in `blocks` (positions ascending and below
    /// [`MAX_POSITIONS`]).
    pub(crate) fn insert(&self, blocks: &[NewBlock], slot: u32) {
        let mut rest = blocks;
        while let Some(first) = rest.first() {
            let chunk_id = first.position as usize >> CHUNK_SHIFT;
            let n = rest
                .iter()
                .position(|b| b.position as usize >> CHUNK_SHIFT != chunk_id)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(n);
            rest = tail;
            let chunk = self.chunk_or_init(first.position as usize);
            let mut maps = chunk.maps.write();
            for b in run.iter().take(PREFETCH_AHEAD) {
                maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)].prefetch(b.local);
            }
            for (k, b) in run.iter().enumerate() {
                if let Some(a) = run.get(k + PREFETCH_AHEAD) {
                    maps[a.position as usize & (POSITIONS_PER_CHUNK - 1)].prefetch(a.local);
                }
                let map = &mut maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)];
                insert_into(map, b, slot);
            }
        }
    }

    /// Remove `slot` as an owner of each block (position below [`MAX_POSITIONS`]); frees an
    /// entry and its slot when no owner is left.
    pub(crate) fn remove(&self, blocks: &[NewBlock], slot: u32) {
        let mut rest = blocks;
        while let Some(first) = rest.first() {
            let chunk_id = first.position as usize >> CHUNK_SHIFT;
            let n = rest
                .iter()
                .position(|b| b.position as usize >> CHUNK_SHIFT != chunk_id)
                .unwrap_or(rest.len());
            let (run, tail) = rest.split_at(n);
            rest = tail;
            let Some(chunk) = self.chunk(first.position as usize) else {
                continue;
            };
            let mut maps = chunk.maps.write();
            for b in run.iter().take(PREFETCH_AHEAD) {
                maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)].prefetch(b.local);
            }
            for (k, b) in run.iter().enumerate() {
                if let Some(a) = run.get(k + PREFETCH_AHEAD) {
                    maps[a.position as usize & (POSITIONS_PER_CHUNK - 1)].prefetch(a.local);
                }
                let map = &mut maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)];
                remove_from(map, b.local, b.seq, slot);
            }
        }
    }

    /// A reader that keeps the read lock of the chunk it last probed.
    pub(crate) fn reader(&self) -> Reader<'_> {
        Reader {
            table: self,
            held: None,
        }
    }

    /// Whether no position holds any entry (used by tests through the indexers).
    pub(crate) fn is_empty(&self) -> bool {
        self.chunks
            .iter()
            .filter_map(|c| c.get())
            .all(|c| c.maps.read().iter().all(PositionMap::is_empty))
    }
}

/// Probes of one query: the read lock of the last chunk probed is kept until the query moves
/// to another chunk, so a search takes one lock per chunk it visits rather than one per
/// probe (the split of a jump window stays within one or two chunks).
pub(crate) struct Reader<'a> {
    table: &'a Table,
    held: Option<(
        usize,
        RwLockReadGuard<'a, [PositionMap; POSITIONS_PER_CHUNK]>,
    )>,
}

impl Reader<'_> {
    #[inline]
    fn maps(&mut self, position: usize) -> Option<&[PositionMap; POSITIONS_PER_CHUNK]> {
        let id = position >> CHUNK_SHIFT;
        if self.held.as_ref().is_none_or(|(h, _)| *h != id) {
            // Release before taking the next lock: a reader holds at most one chunk lock.
            self.held = None;
            let chunk = self.table.chunk(position)?;
            self.held = Some((id, chunk.maps.read()));
        }
        self.held.as_ref().map(|(_, guard)| &**guard)
    }

    /// `out = active ∩ {owners caching query[position] under the query's prefix}`; with
    /// `active = None`, all such owners.
    #[inline]
    pub(crate) fn holders(
        &mut self,
        query: &[LocalBlockHash],
        position: usize,
        state: &mut QueryState,
        active: Option<&WorkerSet>,
        out: &mut WorkerSet,
    ) {
        out.clear();
        let Some(maps) = self.maps(position) else {
            return;
        };
        let fp = state.fps.tag_at(query, position);
        let map = &maps[position & (POSITIONS_PER_CHUNK - 1)];
        match map.get(query[position]) {
            Some(Slot::One(e)) if entry_matches(e, fp, query, position, state) => match active {
                Some(a) => out.assign_and(a, &e.workers),
                None => out.clone_from(&e.workers),
            },
            None | Some(Slot::One(_)) => {}
            Some(Slot::Many(es)) => {
                for e in es {
                    if entry_matches(e, fp, query, position, state) {
                        match active {
                            Some(a) => out.or_and(a, &e.workers),
                            None => out.or_and(&e.workers, &e.workers),
                        }
                    }
                }
            }
        }
    }
}

#[inline]
fn entry_matches(
    e: &Entry,
    fp: u64,
    query: &[LocalBlockHash],
    position: usize,
    state: &mut QueryState,
) -> bool {
    if e.fp != 0 {
        e.fp == fp
    } else {
        e.seq == state.seq_at(query, position)
    }
}

#[inline]
fn remove_from(map: &mut PositionMap, local: LocalBlockHash, seq: SequenceHash, slot: u32) {
    let Some((at, found)) = map.entry_mut(local) else {
        return;
    };
    let now_empty = match found {
        Slot::One(e) => {
            if e.seq == seq {
                e.workers.remove(slot);
            }
            e.workers.is_empty()
        }
        s @ Slot::Many(_) => {
            if let Slot::Many(es) = s {
                if let Some(i) = es.iter().position(|e| e.seq == seq) {
                    es[i].workers.remove(slot);
                    if es[i].workers.is_empty() {
                        es.swap_remove(i);
                    }
                }
                if es.len() == 1
                    && let Some(only) = es.pop()
                {
                    *s = Slot::One(only);
                }
            }
            false
        }
    };
    if now_empty {
        map.remove_at(at);
    }
}

#[inline]
fn insert_into(map: &mut PositionMap, b: &NewBlock, slot: u32) {
    let at = match map.find_or_vacant(b.local) {
        Ok(at) => at,
        Err(vacant) => {
            let mut workers = WorkerSet::new();
            workers.insert(slot);
            map.fill(
                vacant,
                b.local,
                Slot::One(Entry {
                    seq: b.seq,
                    fp: b.fp,
                    workers,
                }),
            );
            return;
        }
    };
    match map.value_at_mut(at) {
        None => unreachable!("find_or_vacant returned an occupied bucket"),
        Some(Slot::One(e)) if e.seq == b.seq => {
            e.workers.insert(slot);
            if e.fp == 0 {
                e.fp = b.fp;
            }
        }
        Some(s @ Slot::One(_)) => {
            let Slot::One(first) = std::mem::replace(s, Slot::Many(Vec::with_capacity(2))) else {
                unreachable!("matched Slot::One above");
            };
            let mut workers = WorkerSet::new();
            workers.insert(slot);
            if let Slot::Many(es) = s {
                es.push(first);
                es.push(Entry {
                    seq: b.seq,
                    fp: b.fp,
                    workers,
                });
            }
        }
        Some(Slot::Many(es)) => {
            if let Some(e) = es.iter_mut().find(|e| e.seq == b.seq) {
                e.workers.insert(slot);
                if e.fp == 0 {
                    e.fp = b.fp;
                }
            } else {
                let mut workers = WorkerSet::new();
                workers.insert(slot);
                es.push(Entry {
                    seq: b.seq,
                    fp: b.fp,
                    workers,
                });
            }
        }
    }
}
