//! Compact slot numbers for owners, so that index entries can hold owners as bitmap bits.

use rustc_hash::FxHashMap;

use crate::protocols::WorkerWithDpRank;

/// Owner ↔ slot mapping; freed slots are reused.
#[derive(Debug, Default)]
pub(crate) struct Registry {
    owners: Vec<Option<WorkerWithDpRank>>,
    by_owner: FxHashMap<WorkerWithDpRank, u32>,
    free: Vec<u32>,
}

impl Registry {
    /// The slot of `owner`, allocating one on first sight.
    pub(crate) fn acquire(&mut self, owner: WorkerWithDpRank) -> u32 {
        if let Some(&slot) = self.by_owner.get(&owner) {
            return slot;
        }
        let slot = if let Some(slot) = self.free.pop() {
            self.owners[slot as usize] = Some(owner);
            slot
        } else {
            self.owners.push(Some(owner));
            (self.owners.len() - 1) as u32
        };
        self.by_owner.insert(owner, slot);
        slot
    }

    /// The slot of `owner`, if it has one.
    pub(crate) fn slot_of(&self, owner: WorkerWithDpRank) -> Option<u32> {
        self.by_owner.get(&owner).copied()
    }

    /// Give `owner`'s slot back; the caller has removed every entry that used it.
    pub(crate) fn release(&mut self, owner: WorkerWithDpRank) {
        if let Some(slot) = self.retire(owner) {
            self.recycle(slot);
        }
    }

    /// Forget `owner` now (readers no longer see its slot, and it gets a new slot if it comes
    /// back) but keep its slot out of use until [`Self::recycle`], once no entry uses it.
    pub(crate) fn retire(&mut self, owner: WorkerWithDpRank) -> Option<u32> {
        let slot = self.by_owner.remove(&owner)?;
        self.owners[slot as usize] = None;
        Some(slot)
    }

    /// Make a retired slot available again; the caller has removed every entry that used it.
    pub(crate) fn recycle(&mut self, slot: u32) {
        debug_assert!(
            self.owners[slot as usize].is_none(),
            "slot {slot} is in use"
        );
        self.free.push(slot);
    }

    /// The owner of `slot`.
    #[inline]
    pub(crate) fn owner(&self, slot: u32) -> Option<WorkerWithDpRank> {
        self.owners.get(slot as usize).copied().flatten()
    }

    /// Every registered owner.
    pub(crate) fn owners(&self) -> impl Iterator<Item = WorkerWithDpRank> + '_ {
        self.owners.iter().filter_map(|o| *o)
    }
}
