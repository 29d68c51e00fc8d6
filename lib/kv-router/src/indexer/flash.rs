//! The positional ("flash") indexer: one hash map per block position, searched by jumps.
//!
//! Layout: a directory of position chunks (`table`), each chunk a reader-writer lock over
//! [`POSITIONS_PER_CHUNK`](table::POSITIONS_PER_CHUNK) maps `prefix key → owner word`
//! (`slots`), each entry one 16-byte bucket keyed by the prefix's fingerprint, so a hit needs no
//! verification. Owners are numbered by a registry so that an entry's owners are bits of one
//! word (up to 63 owners; higher slots are kept beside the chunk). Each owner's blocks
//! (`owner`, `held`: a record arena in chain order behind an index by sequence hash that only
//! stores write) are kept by whoever runs that owner's owner passes; an owner pass never reads
//! the table and hands its writes over as table work (`work`), so storing a block touches one
//! index slot and the next record in the owner pass and one bucket in the table pass, and
//! removing a chain walks its records.

mod fingerprint;
mod held;
mod owner;
mod search;
mod slots;
mod table;
mod work;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use parking_lot::RwLock;
use rustc_hash::FxHashMap;
use stator_tokens::LocalBlockHash;

use self::owner::OwnerState;
pub(crate) use self::owner::Stage as PrefetchStage;
pub(crate) use self::work::{TableWork, TableWriter};
use super::registry::Registry;
use super::{Indexer, IndexerError};
use crate::protocols::{OverlapScores, RouterEvent, WorkerId, WorkerWithDpRank};

/// Default jump size of the search (positions skipped per probe when no owner drops out).
pub const DEFAULT_JUMP_SIZE: usize = 64;

/// Deepest block position + 1 the flash index accepts; deeper stores are rejected with
/// [`IndexerError::PositionOutOfRange`].
pub const MAX_POSITIONS: usize = table::MAX_POSITIONS;

/// State shared by the writer(s) and every reader.
#[derive(Debug, Default)]
pub(crate) struct Shared {
    table: table::Table,
    registry: RwLock<Registry>,
    /// Lowest orphan position per slot (`u32::MAX`: no gap).
    floors: RwLock<Vec<u32>>,
    /// Number of slots with a gap; 0 lets readers skip the floor check.
    gapped: AtomicUsize,
}

impl Shared {
    fn publish_floor(&self, slot: u32, before: u32, after: u32) {
        let mut floors = self.floors.write();
        if floors.len() <= slot as usize {
            floors.resize(slot as usize + 1, u32::MAX);
        }
        floors[slot as usize] = after;
        match (before == u32::MAX, after == u32::MAX) {
            (true, false) => {
                self.gapped.fetch_add(1, Ordering::Release);
            }
            (false, true) => {
                self.gapped.fetch_sub(1, Ordering::Release);
            }
            _ => {}
        }
    }

    /// Deepest position below which jumps are exact for every owner slot in `active`.
    #[inline]
    fn jump_limit(&self, active: impl Iterator<Item = u32>) -> u32 {
        if self.gapped.load(Ordering::Acquire) == 0 {
            return u32::MAX;
        }
        let floors = self.floors.read();
        active
            .map(|slot| floors.get(slot as usize).copied().unwrap_or(u32::MAX))
            .min()
            .unwrap_or(u32::MAX)
    }

    /// Whether the table holds no block at all.
    pub(crate) fn is_empty(&self) -> bool {
        self.table.is_empty()
    }
}

/// Overlap of `query` with every owner of every shard (shards hold disjoint owners).
pub(crate) fn find_matches_in(
    shards: &[Arc<Shared>],
    query: &[LocalBlockHash],
    jump: usize,
) -> OverlapScores {
    search::search_all(shards, query, jump, |depths, ends| {
        let mut scores = OverlapScores::default();
        // Sized once: growing the map shard by shard rehashed it up to once per shard.
        scores.scores.reserve(depths.len());
        let mut start = 0;
        for (shared, &end) in shards.iter().zip(ends) {
            if end > start {
                let registry = shared.registry.read();
                for &(slot, depth) in &depths[start..end] {
                    if let Some(owner) = registry.owner(slot) {
                        scores.scores.insert(owner, depth);
                    }
                }
            }
            start = end;
        }
        scores
    })
}

/// The owner passes of a set of owners (all of them, or one lane's share): their state,
/// and the table work their events need.
#[derive(Debug, Default)]
pub(crate) struct Writer {
    owners: FxHashMap<WorkerWithDpRank, OwnerState>,
}

impl Writer {
    /// Work out one event against `shared` (whose registry numbers a new owner), putting
    /// the table writes it needs into `work`.
    pub(crate) fn plan(
        &mut self,
        shared: &Shared,
        event: &RouterEvent,
        work: &mut TableWork,
    ) -> Result<(), IndexerError> {
        let owner = event.owner();
        let state = self.owners.entry(owner).or_insert_with(|| {
            let slot = shared.registry.write().acquire(owner);
            OwnerState::new(owner, slot)
        });
        state.plan(&event.event.data, work)
    }

    /// Hint the CPU to fetch, in `stage`, what planning `event` will read first (see
    /// [`OwnerState::prefetch`]); a no-op for an owner not seen yet.
    pub(crate) fn prefetch(&self, shared: &Shared, event: &RouterEvent, stage: PrefetchStage) {
        if let Some(state) = self.owners.get(&event.owner()) {
            state.prefetch(shared, &event.event.data, stage);
        }
    }

    /// Forget every dp rank of `worker_id` that this writer owns: their registry slots are
    /// retired at once (readers stop seeing them), and the returned table work drops their
    /// blocks and then recycles the slots.
    pub(crate) fn remove_worker(&mut self, shared: &Shared, worker_id: WorkerId) -> Vec<TableWork> {
        let gone: Vec<WorkerWithDpRank> = self
            .owners
            .keys()
            .filter(|o| o.worker_id == worker_id)
            .copied()
            .collect();
        let mut works = Vec::with_capacity(gone.len());
        for owner in gone {
            if let Some(mut state) = self.owners.remove(&owner) {
                let retired = shared.registry.write().retire(owner);
                debug_assert_eq!(retired, Some(state.slot()));
                works.push(state.retire_work());
            }
        }
        works
    }

    /// Append this writer's owners' blocks as `Stored` events.
    pub(crate) fn dump(&self, next_event_id: &mut u64, out: &mut Vec<RouterEvent>) {
        let mut owners: Vec<&WorkerWithDpRank> = self.owners.keys().collect();
        owners.sort();
        for owner in owners {
            self.owners[owner].dump(next_event_id, out);
        }
    }
}

/// The positional flash indexer, written and read from one thread (`&mut self` writes).
///
/// For concurrent reads during writes use [`super::ThreadPoolIndexer`], which wraps the same
/// index.
#[derive(Debug)]
pub struct FlashIndexer {
    shared: Arc<Shared>,
    writer: Writer,
    table: TableWriter,
    /// The work of the event being applied (its buffer reused).
    work: TableWork,
    jump: usize,
}

impl Default for FlashIndexer {
    fn default() -> Self {
        Self::new()
    }
}

impl FlashIndexer {
    /// An empty index with the default jump size.
    pub fn new() -> Self {
        Self::with_jump_size(DEFAULT_JUMP_SIZE)
    }

    /// An empty index probing `jump` positions ahead (at least 1).
    pub fn with_jump_size(jump: usize) -> Self {
        Self {
            shared: Arc::new(Shared::default()),
            writer: Writer::default(),
            table: TableWriter::default(),
            work: TableWork::default(),
            jump: jump.max(1),
        }
    }

    /// Whether the index holds no block (every removed entry is freed).
    pub fn is_empty(&self) -> bool {
        self.shared.is_empty()
    }

    /// Owners currently registered (those that sent an event and were not removed).
    pub fn owners(&self) -> Vec<WorkerWithDpRank> {
        self.shared.registry.read().owners().collect()
    }
}

impl Indexer for FlashIndexer {
    fn apply_event(&mut self, event: RouterEvent) -> Result<(), IndexerError> {
        let result = self.writer.plan(&self.shared, &event, &mut self.work);
        self.table.apply(&self.shared, &self.work);
        result
    }

    fn find_matches(&self, query: &[LocalBlockHash]) -> OverlapScores {
        find_matches_in(std::slice::from_ref(&self.shared), query, self.jump)
    }

    fn remove_worker(&mut self, worker_id: WorkerId) {
        for work in self.writer.remove_worker(&self.shared, worker_id) {
            self.table.apply(&self.shared, &work);
        }
    }

    fn dump_events(&self) -> Vec<RouterEvent> {
        let mut out = Vec::new();
        self.writer.dump(&mut 0, &mut out);
        out
    }
}

/// Prefetch one cache line into all cache levels.
#[inline]
fn prefetch_line(p: *const i8) {
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `prefetcht0` is a hint: it never faults, whatever the address, and SSE is part
    // of the x86_64 baseline.
    unsafe {
        std::arch::x86_64::_mm_prefetch::<{ std::arch::x86_64::_MM_HINT_T0 }>(p);
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = p;
}
