//! The map of one block position: local hash → the prefixes cached there and their owners.
//!
//! Open addressing with linear probing over 32-byte buckets (two per cache line), each bucket
//! one whole entry `(local hash, sequence hash, prefix fingerprint, owner word)`, so a probe that
//! hits costs one line and needs no second indirection. The rare slot holding several prefixes
//! (the same local hash under different prefixes at one position) is several buckets with the
//! same local hash in one probe run. The owner word holds slots `0..WIDE_SLOT` as bits; an
//! entry that also has higher slots sets [`WIDE`] and keeps those in its chunk's side map.
//! Deletion shifts the rest of the cluster back (no tombstones), so removal really frees.

use stator_tokens::{LocalBlockHash, SequenceHash};

/// Owner-word flag: the entry has owners at slots `>= WIDE_SLOT`, kept out of line.
pub(crate) const WIDE: u64 = 1 << 63;
/// First owner slot that does not fit in the owner word.
pub(crate) const WIDE_SLOT: u32 = 63;

/// Grow when `len + 1 > capacity · 1/2`: shorter clusters, so a freed entry's backward shift
/// and an insertion's probe walk fewer lines (measured faster than 2/3 once the owner side
/// stopped touching a random bucket per block; at 2/3 it was slower, round 3).
const MAX_LOAD_NUM: usize = 1;
const MAX_LOAD_DEN: usize = 2;
const MIN_CAPACITY: usize = 4;

/// One cached prefix at a position.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct Entry {
    pub(crate) local: u64,
    pub(crate) seq: u64,
    /// Prefix fingerprint, 0 when unknown (block stored without a known parent).
    pub(crate) fp: u64,
    /// Owner slots `0..WIDE_SLOT` as bits, plus [`WIDE`].
    pub(crate) owners: u64,
}

/// A vacant bucket: all zero, so that fresh bucket arrays come zeroed from the allocator.
const EMPTY: Entry = Entry {
    local: 0,
    seq: 0,
    fp: 0,
    owners: 0,
};

impl Entry {
    /// Whether the bucket is vacant: a cached entry always has an owner (it is freed with its
    /// last one), so no owner means no entry.
    #[inline]
    fn is_vacant(&self) -> bool {
        self.owners == 0
    }
}

/// `n` vacant buckets, zeroed by the allocator (memory fresh from the system needs no writes).
fn vacant_buckets(n: usize) -> Box<[Entry]> {
    // SAFETY: every field of `Entry` is a plain integer, so all-zero bytes are a valid `Entry`
    // (it is `EMPTY`).
    unsafe { Box::<[Entry]>::new_zeroed_slice(n).assume_init() }
}

/// What [`PositionSlots::add_owner`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// The owner went into the owner word (or was there already).
    Inline,
    /// The owner is wide: the caller records it in the side map.
    Wide,
}

/// The map of one position.
#[derive(Debug, Default)]
pub(crate) struct PositionSlots {
    buckets: Box<[Entry]>,
    len: usize,
    /// Length at which the next insertion grows the buckets.
    grow_at: usize,
}

#[inline]
fn home(local: u64, mask: usize) -> usize {
    (local.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl PositionSlots {
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Whether the map holds no entry.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hint the CPU to fetch the home bucket of `local` and the two lines after it.
    #[inline]
    pub(crate) fn prefetch(&self, local: LocalBlockHash) {
        if self.buckets.is_empty() {
            return;
        }
        // Fetch the two lines after home's too (two buckets per line): at load 1/2, a probe
        // run often continues into the next line, and a removal's backward shift walks to the
        // end of the cluster, often the line after that (measured: three lines beat two).
        let mask = self.mask();
        let at = home(local.0, mask);
        let p: *const Entry = &raw const self.buckets[at];
        super::prefetch_line(p.cast());
        let next: *const Entry = &raw const self.buckets[((at | 1) + 1) & mask];
        super::prefetch_line(next.cast());
        let third: *const Entry = &raw const self.buckets[((at | 1) + 3) & mask];
        super::prefetch_line(third.cast());
    }

    /// Every entry cached for `local` (one per prefix), in probe order.
    #[inline]
    pub(crate) fn entries(&self, local: LocalBlockHash) -> Entries<'_> {
        let (at, mask) = if self.len == 0 {
            (usize::MAX, 0)
        } else {
            let mask = self.mask();
            (home(local.0, mask), mask)
        };
        Entries {
            buckets: &self.buckets,
            at,
            mask,
            local: local.0,
        }
    }

    /// The union of the owner words of the entries cached for `local` that `keep` accepts
    /// (the read path's probe: one pass over the probe run, no iterator state).
    #[inline]
    pub(crate) fn owners_where(
        &self,
        local: LocalBlockHash,
        mut keep: impl FnMut(&Entry) -> bool,
    ) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let mask = self.mask();
        let mut i = home(local.0, mask);
        let mut out = 0;
        // The map is never full (load <= 1/2), so the run ends at a vacant bucket.
        while let Some(b) = self.buckets.get(i)
            && !b.is_vacant()
        {
            if b.local == local.0 && keep(b) {
                out |= b.owners;
            }
            i = (i + 1) & mask;
        }
        out
    }

    /// The fingerprint of the entry `(local, seq)`, 0 when unknown or absent.
    #[inline]
    pub(crate) fn fingerprint(&self, local: LocalBlockHash, seq: SequenceHash) -> u64 {
        self.entries(local)
            .find(|e| e.seq == seq.0)
            .map_or(0, |e| e.fp)
    }

    /// Add `slot` as an owner of `(local, seq)`, creating the entry with fingerprint `fp`
    /// (0 unknown); an existing entry with an unknown fingerprint learns `fp`.
    #[inline]
    pub(crate) fn add_owner(
        &mut self,
        local: LocalBlockHash,
        seq: SequenceHash,
        fp: u64,
        slot: u32,
    ) -> Added {
        if self.len >= self.grow_at {
            self.resize((self.buckets.len() * 2).max(MIN_CAPACITY));
        }
        let bit = if slot < WIDE_SLOT { 1u64 << slot } else { WIDE };
        let mask = self.mask();
        let mut i = home(local.0, mask);
        loop {
            let b = &mut self.buckets[i];
            if b.is_vacant() {
                *b = Entry {
                    local: local.0,
                    seq: seq.0,
                    fp,
                    owners: bit,
                };
                self.len += 1;
                break;
            }
            if b.local == local.0 && b.seq == seq.0 {
                b.owners |= bit;
                if b.fp == 0 {
                    b.fp = fp;
                }
                break;
            }
            i = (i + 1) & mask;
        }
        if slot < WIDE_SLOT {
            Added::Inline
        } else {
            Added::Wide
        }
    }

    /// Take `slot` out of the owners of `(local, seq)` and free the entry once it has no
    /// owner. `wide_left` tells, for a wide `slot`, whether other wide owners remain (the
    /// caller keeps those). Returns whether the entry existed.
    #[inline]
    pub(crate) fn remove_owner(
        &mut self,
        local: LocalBlockHash,
        seq: SequenceHash,
        slot: u32,
        wide_left: bool,
    ) -> bool {
        if self.len == 0 {
            return false;
        }
        let mask = self.mask();
        let mut i = home(local.0, mask);
        loop {
            let b = &mut self.buckets[i];
            if b.is_vacant() {
                return false;
            }
            if b.local == local.0 && b.seq == seq.0 {
                if slot < WIDE_SLOT {
                    b.owners &= !(1u64 << slot);
                } else if !wide_left {
                    b.owners &= !WIDE;
                }
                if b.owners == 0 {
                    self.remove_at(i);
                }
                return true;
            }
            i = (i + 1) & mask;
        }
    }

    fn remove_at(&mut self, mut hole: usize) {
        let mask = self.mask();
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.buckets[j].is_vacant() {
                break;
            }
            let h = home(self.buckets[j].local, mask);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(h) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = self.buckets[j];
                self.buckets[j] = EMPTY;
                hole = j;
            }
        }
        if self.buckets.len() > MIN_CAPACITY && self.len * 8 < self.buckets.len() {
            self.resize((self.buckets.len() / 4).max(MIN_CAPACITY));
        }
    }

    fn resize(&mut self, capacity: usize) {
        let mut old = std::mem::replace(&mut self.buckets, vacant_buckets(capacity));
        // Grow once `len + 1 > capacity · MAX_LOAD`.
        self.grow_at = capacity * MAX_LOAD_NUM / MAX_LOAD_DEN;
        let mask = self.mask();
        // Move the entries to the front of the old array first, with no branch per bucket:
        // at the load a map resizes at, "is this bucket vacant" is a coin toss.
        let mut live = 0;
        for i in 0..old.len() {
            let e = old[i];
            old[live] = e;
            live += usize::from(!e.is_vacant());
        }
        for e in &old[..live] {
            let mut i = home(e.local, mask);
            while !self.buckets[i].is_vacant() {
                i = (i + 1) & mask;
            }
            self.buckets[i] = *e;
        }
    }
}

/// Iterator over the entries of one local hash (see [`PositionSlots::entries`]).
pub(crate) struct Entries<'a> {
    buckets: &'a [Entry],
    at: usize,
    mask: usize,
    local: u64,
}

impl<'a> Iterator for Entries<'a> {
    type Item = &'a Entry;

    #[inline]
    fn next(&mut self) -> Option<&'a Entry> {
        loop {
            let b = self.buckets.get(self.at)?;
            if b.is_vacant() {
                self.at = usize::MAX;
                return None;
            }
            self.at = (self.at + 1) & self.mask;
            if b.local == self.local {
                return Some(b);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{PositionSlots, WIDE, WIDE_SLOT};
    use proptest::prelude::*;
    use stator_tokens::{LocalBlockHash, SequenceHash};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn behaves_like_a_map_of_owner_sets(
            ops in prop::collection::vec((any::<bool>(), 0u64..6, 0u64..3, 0u32..70), 1..400)
        ) {
            let mut map = PositionSlots::default();
            let mut model: HashMap<(u64, u64), u64> = HashMap::new();
            for (add, local, seq, slot) in ops {
                // Spread some keys over the high bits so that home buckets collide and differ.
                let local = local.wrapping_mul(if local % 2 == 0 { 1 } else { 0x1_0000_0001 });
                let bit = if slot < WIDE_SLOT { 1 << slot } else { WIDE };
                if add {
                    map.add_owner(LocalBlockHash(local), SequenceHash(seq), 1, slot);
                    *model.entry((local, seq)).or_insert(0) |= bit;
                } else {
                    let had = model.contains_key(&(local, seq));
                    prop_assert_eq!(
                        map.remove_owner(LocalBlockHash(local), SequenceHash(seq), slot, false),
                        had
                    );
                    if let Some(w) = model.get_mut(&(local, seq)) {
                        *w &= !bit;
                        if *w == 0 {
                            model.remove(&(local, seq));
                        }
                    }
                }
                prop_assert_eq!(map.len, model.len());
                for (&(l, s), &w) in &model {
                    let found: Vec<u64> = map
                        .entries(LocalBlockHash(l))
                        .filter(|e| e.seq == s)
                        .map(|e| e.owners)
                        .collect();
                    prop_assert_eq!(found, vec![w]);
                }
            }
        }
    }
}
