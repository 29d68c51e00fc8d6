//! The positional table: for every block position, a map from local hash to the owners that
//! cache that block there.
//!
//! Positions are grouped into chunks of [`POSITIONS_PER_CHUNK`], one reader-writer lock per
//! chunk: a writer storing a run of consecutive blocks takes each chunk's lock once, and a
//! reader's probe takes one uncontended read lock. Chunks are allocated on first use through a
//! fixed directory of `OnceLock`s, so readers never lock to find a chunk.
//!
//! A slot `(position, key)` is one cached prefix: the key is the prefix's fingerprint, or its
//! sequence hash where the fingerprint is unknown (see [`super::slots::table_key`]), so a
//! query looks up its own prefix's key at each position it probes.

use std::sync::OnceLock;

use parking_lot::{RwLock, RwLockReadGuard, RwLockWriteGuard};
use rustc_hash::FxHashMap;
use stator_tokens::{LocalBlockHash, SequenceHash, next_sequence_hash};

use super::fingerprint::QueryFingerprints;
use super::slots::{Added, PositionSlots, WIDE, WIDE_SLOT, table_key};
use crate::indexer::worker_set::WorkerSet;

/// log2 of the positions sharing one lock.
const CHUNK_SHIFT: u32 = 8;
/// Positions sharing one lock.
pub(crate) const POSITIONS_PER_CHUNK: usize = 1 << CHUNK_SHIFT;
/// Deepest supported position + 1 (blocks per sequence).
pub(crate) const MAX_POSITIONS: usize = 1 << 20;
const MAX_CHUNKS: usize = MAX_POSITIONS / POSITIONS_PER_CHUNK;

/// How many blocks ahead a writer prefetches.
pub(crate) const PREFETCH_AHEAD: usize = 16;

/// Owners at slots `>= WIDE_SLOT` of the entries that have any, keyed by `(position, key)`.
type WideOwners = FxHashMap<(u32, u64), WorkerSet>;

/// The positions of one chunk and their wide owners.
#[derive(Debug)]
struct ChunkData {
    maps: [PositionSlots; POSITIONS_PER_CHUNK],
    wide: WideOwners,
}

impl ChunkData {
    /// Add `slot` as an owner of `b`; returns whether it already was one (it caches
    /// another block with the same key there).
    #[inline]
    fn add(&mut self, b: &NewBlock, slot: u32) -> bool {
        let map = &mut self.maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)];
        match map.add_owner(b.key, slot) {
            Added::Inline => false,
            Added::Already => true,
            Added::Wide => {
                let set = self.wide.entry((b.position, b.key)).or_default();
                let already = set.contains(slot);
                set.insert(slot);
                already
            }
        }
    }

    #[expect(
        clippy::inline_always,
        reason = "with two callers the compiler keeps it out of line, and the call costs a \
                  removal about a tenth of its instructions (measured)"
    )]
    #[inline(always)]
    fn remove(&mut self, b: &NewBlock, slot: u32) {
        let mut wide_left = false;
        if slot >= WIDE_SLOT {
            let key = (b.position, b.key);
            if let Some(set) = self.wide.get_mut(&key) {
                set.remove(slot);
                wide_left = !set.is_empty();
                if !wide_left {
                    self.wide.remove(&key);
                }
            }
        }
        self.maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)]
            .remove_owner(b.key, slot, wide_left);
    }

    #[inline]
    fn prefetch(&self, b: &NewBlock) {
        self.maps[b.position as usize & (POSITIONS_PER_CHUNK - 1)].prefetch(b.key);
    }
}

#[derive(Debug)]
struct Chunk {
    data: RwLock<ChunkData>,
}

/// One block to insert or remove: its position and table key.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) struct NewBlock {
    pub(crate) position: u32,
    pub(crate) key: u64,
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
                data: RwLock::new(ChunkData {
                    maps: std::array::from_fn(|_| PositionSlots::default()),
                    wide: WideOwners::default(),
                }),
            })
        })
    }

    /// Add `slot` as an owner of every block in `blocks` (positions below
    /// [`MAX_POSITIONS`]), calling `duplicate` for each block whose key the owner already
    /// held there.
    pub(crate) fn insert(
        &self,
        blocks: &[NewBlock],
        slot: u32,
        mut duplicate: impl FnMut(NewBlock),
    ) {
        for run in chunk_runs(blocks) {
            let chunk = self.chunk_or_init(run[0].position as usize);
            let mut data = write_chunk(&chunk.data);
            prefetched(&mut data, run, |data, b| {
                if data.add(b, slot) {
                    duplicate(*b);
                }
            });
        }
    }

    /// Remove `slot` as an owner of each block (position below [`MAX_POSITIONS`]); frees an
    /// entry when no owner is left.
    pub(crate) fn remove(&self, blocks: &[NewBlock], slot: u32) {
        for run in chunk_runs(blocks) {
            let Some(chunk) = self.chunk(run[0].position as usize) else {
                continue;
            };
            let mut data = write_chunk(&chunk.data);
            prefetched(&mut data, run, |data, b| data.remove(b, slot));
        }
    }

    /// Hint the CPU to fetch the map header of `position` (`buckets == false`, no lock), or
    /// the home buckets of `key` there (`buckets == true`, skipped while a writer holds the
    /// chunk): two stages, since the bucket address is read from the header.
    #[inline]
    pub(crate) fn prefetch(&self, position: u32, key: u64, buckets: bool) {
        let Some(chunk) = self.chunk(position as usize) else {
            return;
        };
        let at = position as usize & (POSITIONS_PER_CHUNK - 1);
        if buckets {
            if let Some(data) = chunk.data.try_read() {
                data.maps[at].prefetch(key);
            }
        } else {
            let header = chunk.data.data_ptr().cast::<u8>().wrapping_add(
                std::mem::offset_of!(ChunkData, maps) + at * std::mem::size_of::<PositionSlots>(),
            );
            super::prefetch_line(header.cast_const().cast());
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
        self.chunks.iter().filter_map(|c| c.get()).all(|c| {
            let data = c.data.read();
            data.wide.is_empty() && data.maps.iter().all(PositionSlots::is_empty)
        })
    }
}

/// Run `write` on each block of `run` (one chunk's), fetching the buckets of the block
/// [`PREFETCH_AHEAD`] places further first.
#[inline]
fn prefetched(
    data: &mut ChunkData,
    run: &[NewBlock],
    mut write: impl FnMut(&mut ChunkData, &NewBlock),
) {
    for b in run.iter().take(PREFETCH_AHEAD) {
        data.prefetch(b);
    }
    for (k, b) in run.iter().enumerate() {
        if let Some(a) = run.get(k + PREFETCH_AHEAD) {
            data.prefetch(a);
        }
        write(data, b);
    }
}

/// Maximal runs of consecutive blocks in one chunk.
fn chunk_runs(blocks: &[NewBlock]) -> impl Iterator<Item = &[NewBlock]> {
    blocks.chunk_by(|a, b| a.position >> CHUNK_SHIFT == b.position >> CHUNK_SHIFT)
}

/// Attempts a thread waiting for a chunk lock makes, with a spin hint between them, before it
/// yields (a reader) or blocks (a lane).
const LOCK_SPINS: u32 = 64;

/// `try_lock` retried up to [`LOCK_SPINS`] times; `None` if the lock stayed taken.
fn spin_for<G>(mut try_lock: impl FnMut() -> Option<G>) -> Option<G> {
    for _ in 0..LOCK_SPINS {
        if let Some(guard) = try_lock() {
            return Some(guard);
        }
        std::hint::spin_loop();
    }
    None
}

/// A chunk's read lock, waited for by spinning and yielding, never by parking.
///
/// A lane holds a chunk for one run of an event's blocks: microseconds. A parked reader is
/// woken by a futex only after that and then waits for a CPU, which the lanes keep busy:
/// with one table per lane, parked reads took 40 µs on average and over 1 ms at p99 in the
/// mixed replay on two cores, spinning ones 1.2 µs at p50 and under 15 µs at p99. A lane
/// releases its chunks between events, so a yielding reader gets in.
fn read_chunk(lock: &RwLock<ChunkData>) -> RwLockReadGuard<'_, ChunkData> {
    loop {
        if let Some(guard) = spin_for(|| lock.try_read()) {
            return guard;
        }
        std::thread::yield_now();
    }
}

/// A chunk's write lock: spin first (a reader holds a chunk for the probes of one query in it,
/// less than a park and wake-up cost), then block, which also bars new readers until the
/// current ones leave, so a stream of readers cannot starve the lane.
fn write_chunk(lock: &RwLock<ChunkData>) -> RwLockWriteGuard<'_, ChunkData> {
    spin_for(|| lock.try_write()).unwrap_or_else(|| lock.write())
}

/// Probes of one query: the read lock of the last chunk probed is kept until the query moves
/// to another chunk, so a search takes one lock per chunk it visits rather than one per
/// probe (the split of a jump window stays within one or two chunks).
pub(crate) struct Reader<'a> {
    table: &'a Table,
    held: Option<(usize, RwLockReadGuard<'a, ChunkData>)>,
}

impl Reader<'_> {
    #[inline]
    fn data(&mut self, position: usize) -> Option<&ChunkData> {
        let id = position >> CHUNK_SHIFT;
        if self.held.as_ref().is_none_or(|(h, _)| *h != id) {
            // Release before taking the next lock: a reader holds at most one chunk lock.
            self.held = None;
            let chunk = self.table.chunk(position)?;
            self.held = Some((id, read_chunk(&chunk.data)));
        }
        self.held.as_ref().map(|(_, guard)| &**guard)
    }

    /// The keys of the query's prefix at `position` that `map` may hold: its fingerprint, and
    /// its sequence hash where the map keys some entries by sequence hash.
    #[inline]
    fn keys(
        map: &PositionSlots,
        query: &[LocalBlockHash],
        position: usize,
        state: &mut QueryState,
    ) -> (u64, Option<u64>) {
        let fp = state.fps.at(query, position);
        let seq = map
            .has_seq_keys()
            .then(|| table_key(0, state.seq_at(query, position).0));
        (fp, seq)
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
        let Some(data) = self.data(position) else {
            return;
        };
        let map = &data.maps[position & (POSITIONS_PER_CHUNK - 1)];
        if map.is_empty() {
            return;
        }
        let (fp, seq) = Self::keys(map, query, position, state);
        for key in std::iter::once(fp).chain(seq) {
            let owners = map.owners(key);
            let inline = WorkerSet::Inline(owners & !WIDE);
            match active {
                Some(a) => out.or_and(a, &inline),
                None => out.or_and(&inline, &inline),
            }
            if owners & WIDE != 0
                && let Some(wide) = data.wide.get(&(position as u32, key))
            {
                match active {
                    Some(a) => out.or_and(a, wide),
                    None => out.or_and(wide, wide),
                }
            }
        }
    }

    /// The owners caching `query[position]` under the query's prefix as one word of slot
    /// bits `0..WIDE_SLOT`, with [`WIDE`] set when some have higher slots: the word form of
    /// [`Self::holders`] for a search whose owners all fit in one word.
    #[inline]
    pub(crate) fn holders_word(
        &mut self,
        query: &[LocalBlockHash],
        position: usize,
        state: &mut QueryState,
    ) -> u64 {
        let Some(data) = self.data(position) else {
            return 0;
        };
        let map = &data.maps[position & (POSITIONS_PER_CHUNK - 1)];
        if map.is_empty() {
            return 0;
        }
        let (fp, seq) = Self::keys(map, query, position, state);
        map.owners(fp) | seq.map_or(0, |key| map.owners(key))
    }
}
