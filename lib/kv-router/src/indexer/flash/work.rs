//! Table work: what an owner pass asks of the positional table, and the writer that does it.
//!
//! Applying an event has two halves. The owner pass ([`super::owner::OwnerState::plan`])
//! reads and updates the owner's own state (its held blocks and gaps) and works out which
//! table slots change; the table pass ([`TableWriter::apply`]) writes those slots. The owner
//! pass never reads the table, so the two halves can run on different threads: the thread
//! pool runs owner passes on the thread that submits the event and table passes on the lane
//! that owns the table, in submission order.

use rustc_hash::FxHashMap;

use super::Shared;
use super::table::NewBlock;

/// How the table changes for the blocks of one [`TableWork`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum Change {
    /// The owner now caches the blocks.
    #[default]
    Store,
    /// The owner no longer caches the blocks.
    Remove,
    /// The owner caches nothing any more; the blocks are all it cached.
    Clear,
    /// As [`Change::Clear`], for an owner whose registry slot was retired: the slot is
    /// recycled once its blocks are gone.
    Retire,
}

/// The table writes of one event of one owner, in order, and the owner's new floor.
#[derive(Debug, Default)]
pub(crate) struct TableWork {
    /// The owner's registry slot.
    pub(crate) slot: u32,
    pub(crate) change: Change,
    pub(crate) blocks: Vec<NewBlock>,
    /// The owner's lowest orphan position `(before, after)`, when the event moved it.
    pub(crate) floor: Option<(u32, u32)>,
}

impl TableWork {
    /// Empty work for the owner at `slot`, keeping the block buffer.
    pub(crate) fn reset(&mut self, slot: u32) {
        self.slot = slot;
        self.change = Change::Store;
        self.blocks.clear();
        self.floor = None;
    }

    /// Whether applying the work would change nothing.
    pub(crate) fn is_empty(&self) -> bool {
        self.blocks.is_empty() && self.floor.is_none()
    }
}

/// Applies [`TableWork`] to one table; keeps what the table's owner words cannot: owners
/// caching two blocks with one key at one position.
#[derive(Debug, Default)]
pub(crate) struct TableWriter {
    /// `(slot, block)` slots whose owner caches more than one block with that key there (the
    /// same prefix stored under different sequence hashes), with the count of the extra
    /// blocks: the owner's bit stays until the last of them goes.
    duplicates: FxHashMap<(u32, NewBlock), u32>,
    /// Blocks of a removal left after the duplicates are taken out.
    kept: Vec<NewBlock>,
}

impl TableWriter {
    /// Write `work` into `shared`'s table, then publish the owner's new floor.
    pub(crate) fn apply(&mut self, shared: &Shared, work: &TableWork) {
        let slot = work.slot;
        match work.change {
            Change::Store => shared.table.insert(&work.blocks, slot, |b| {
                *self.duplicates.entry((slot, b)).or_insert(0) += 1;
            }),
            Change::Remove if self.duplicates.is_empty() => {
                shared.table.remove(&work.blocks, slot);
            }
            Change::Remove => {
                self.kept.clear();
                for &b in &work.blocks {
                    if !self.keeps_duplicate(slot, b) {
                        self.kept.push(b);
                    }
                }
                shared.table.remove(&self.kept, slot);
            }
            Change::Clear | Change::Retire => {
                if !self.duplicates.is_empty() {
                    self.duplicates.retain(|&(s, _), _| s != slot);
                }
                shared.table.remove(&work.blocks, slot);
            }
        }
        if let Some((before, after)) = work.floor {
            shared.publish_floor(slot, before, after);
        }
        if work.change == Change::Retire {
            shared.registry.write().recycle(slot);
        }
    }

    /// Whether `slot`'s bit at `b` must stay when one of its blocks there goes: true, and one
    /// extra block fewer, when it caches another block with the same key there.
    fn keeps_duplicate(&mut self, slot: u32, b: NewBlock) -> bool {
        let Some(extra) = self.duplicates.get_mut(&(slot, b)) else {
            return false;
        };
        *extra -= 1;
        if *extra == 0 {
            self.duplicates.remove(&(slot, b));
        }
        true
    }

    /// Hint the CPU to fetch the table lines `work` writes first: the map headers of its
    /// first blocks' positions (`buckets == false`) or their home buckets (`true`, read
    /// through the headers). Called for queued work ahead of the work being applied.
    pub(crate) fn prefetch(shared: &Shared, work: &TableWork, buckets: bool) {
        for b in work.blocks.iter().take(PREFETCH_FIRST) {
            shared.table.prefetch(b.position, b.key, buckets);
        }
    }
}

/// Blocks of a queued work whose lines [`TableWriter::prefetch`] fetches (the table pass
/// prefetches the rest itself, a fixed distance ahead).
const PREFETCH_FIRST: usize = 4;
