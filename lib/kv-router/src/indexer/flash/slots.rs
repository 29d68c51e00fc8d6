//! The map of one block position: prefix key → the owners caching that prefix's block there.
//!
//! A block is keyed by the identity of its whole prefix, its fingerprint (see
//! [`super::fingerprint`]), so a slot `(position, key)` names one cached prefix and a probe
//! that hits needs no verification. A block whose fingerprint is unknown (stored without a
//! known parent chain) is keyed by its sequence hash instead, with the low bit cleared:
//! fingerprints are odd and these keys even, so the two never meet, and a map counts its
//! even keys so that a reader looks for the query's sequence hash only where some exist.
//!
//! Open addressing with linear probing over 16-byte buckets `(key, owner word)`, four per
//! cache line, at most half full: a probe, and a removal's backward shift, stay within the
//! home line or reach the next one. The owner word holds slots `0..WIDE_SLOT` as bits; an
//! entry that also has higher slots sets [`WIDE`] and keeps those in its chunk's side map.
//! Deletion shifts the rest of the cluster back (no tombstones), so removal really frees.

/// Owner-word flag: the entry has owners at slots `>= WIDE_SLOT`, kept out of line.
pub(crate) const WIDE: u64 = 1 << 63;
/// First owner slot that does not fit in the owner word.
pub(crate) const WIDE_SLOT: u32 = 63;

/// Grow when `len + 1 > capacity · 1/2`: short clusters, so a probe and a freed entry's
/// backward shift stay within a line or two.
const MAX_LOAD_NUM: usize = 1;
const MAX_LOAD_DEN: usize = 2;
const MIN_CAPACITY: usize = 4;
/// Buckets per cache line.
const LINE_BUCKETS: usize = 4;

/// The table key of a block: its prefix fingerprint (odd) when known, otherwise its sequence
/// hash with the low bit cleared (even).
#[inline]
pub(crate) fn table_key(fp: u64, seq: u64) -> u64 {
    if fp == 0 { seq & !1 } else { fp }
}

/// Whether `key` is a sequence-hash key (the block's fingerprint was unknown).
#[inline]
fn is_seq_key(key: u64) -> bool {
    key & 1 == 0
}

/// One cached prefix at a position.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
pub(crate) struct Entry {
    key: u64,
    /// Owner slots `0..WIDE_SLOT` as bits, plus [`WIDE`].
    owners: u64,
}

impl Entry {
    /// Whether the bucket is vacant: a cached entry always has an owner (it is freed with its
    /// last one), so no owner means no entry, and all-zero memory is a vacant bucket.
    #[inline]
    fn is_vacant(&self) -> bool {
        self.owners == 0
    }
}

/// A vacant bucket.
const EMPTY: Entry = Entry { key: 0, owners: 0 };

/// `n` vacant buckets, written here rather than taken zeroed from the allocator: the resize
/// that asks for them reads a bucket before writing it, and a page of fresh zeroed memory read
/// first is mapped to the shared zero page, so its first write faults again and flushes the
/// TLBs of every CPU running the process (measured: 6% of the events replay in those flushes).
fn vacant_buckets(n: usize) -> Box<[Entry]> {
    vec![EMPTY; n].into_boxed_slice()
}

/// What [`PositionSlots::add_owner`] found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Added {
    /// The owner went into the owner word.
    Inline,
    /// The owner already had the key in its owner word (it caches a second block with the
    /// same key).
    Already,
    /// The owner is wide: the caller records it in the side map.
    Wide,
}

/// The map of one position.
#[derive(Debug, Default)]
pub(crate) struct PositionSlots {
    buckets: Box<[Entry]>,
    len: u32,
    /// Length at which the next insertion grows the buckets.
    grow_at: u32,
    /// Entries with a sequence-hash key.
    seq_keys: u32,
}

#[inline]
fn home(key: u64, mask: usize) -> usize {
    (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl PositionSlots {
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Whether the map holds no entry.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether some entry is keyed by a sequence hash (see [`table_key`]).
    #[inline]
    pub(crate) fn has_seq_keys(&self) -> bool {
        self.seq_keys != 0
    }

    /// Hint the CPU to fetch the home line of `key` and the line after it (a probe run or a
    /// backward shift that starts near a line's end continues into the next).
    #[inline]
    pub(crate) fn prefetch(&self, key: u64) {
        if self.buckets.is_empty() {
            return;
        }
        let mask = self.mask();
        let at = home(key, mask);
        let p: *const Entry = &raw const self.buckets[at];
        super::prefetch_line(p.cast());
        let next: *const Entry = &raw const self.buckets[((at | (LINE_BUCKETS - 1)) + 1) & mask];
        super::prefetch_line(next.cast());
    }

    /// The owner word of `key` (0 when absent).
    #[inline]
    pub(crate) fn owners(&self, key: u64) -> u64 {
        if self.len == 0 {
            return 0;
        }
        let mask = self.mask();
        let mut i = home(key, mask);
        // The map is never full (load <= 1/2), so the run ends at a vacant bucket.
        loop {
            let b = &self.buckets[i];
            if b.is_vacant() || b.key == key {
                return b.owners;
            }
            i = (i + 1) & mask;
        }
    }

    /// Add `slot` as an owner of `key`, creating the entry if needed.
    #[inline]
    pub(crate) fn add_owner(&mut self, key: u64, slot: u32) -> Added {
        if self.len >= self.grow_at {
            self.resize((self.buckets.len() * 2).max(MIN_CAPACITY));
        }
        let bit = if slot < WIDE_SLOT { 1u64 << slot } else { WIDE };
        let mask = self.mask();
        let mut i = home(key, mask);
        loop {
            let b = &mut self.buckets[i];
            if b.is_vacant() {
                *b = Entry { key, owners: bit };
                self.len += 1;
                self.seq_keys += u32::from(is_seq_key(key));
                break;
            }
            if b.key == key {
                if b.owners & bit != 0 && slot < WIDE_SLOT {
                    return Added::Already;
                }
                b.owners |= bit;
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

    /// Take `slot` out of the owners of `key` and free the entry once it has no owner.
    /// `wide_left` tells, for a wide `slot`, whether other wide owners remain (the caller
    /// keeps those). Returns whether the entry existed.
    #[inline]
    pub(crate) fn remove_owner(&mut self, key: u64, slot: u32, wide_left: bool) -> bool {
        if self.len == 0 {
            return false;
        }
        let mask = self.mask();
        let mut i = home(key, mask);
        loop {
            let b = &mut self.buckets[i];
            if b.is_vacant() {
                return false;
            }
            if b.key == key {
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
        self.seq_keys -= u32::from(is_seq_key(self.buckets[hole].key));
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.buckets[j].is_vacant() {
                break;
            }
            let h = home(self.buckets[j].key, mask);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(h) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets[hole] = self.buckets[j];
                self.buckets[j] = EMPTY;
                hole = j;
            }
        }
        if self.buckets.len() > MIN_CAPACITY && (self.len as usize) * 8 < self.buckets.len() {
            self.resize((self.buckets.len() / 4).max(MIN_CAPACITY));
        }
    }

    fn resize(&mut self, capacity: usize) {
        let mut old = std::mem::replace(&mut self.buckets, vacant_buckets(capacity));
        // Grow once `len + 1 > capacity · MAX_LOAD`.
        self.grow_at = u32::try_from(capacity * MAX_LOAD_NUM / MAX_LOAD_DEN)
            .expect("fewer than 2^32 entries per position");
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
            let mut i = home(e.key, mask);
            while !self.buckets[i].is_vacant() {
                i = (i + 1) & mask;
            }
            self.buckets[i] = *e;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Added, PositionSlots, WIDE, WIDE_SLOT, is_seq_key};
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn behaves_like_a_map_of_owner_sets(
            ops in prop::collection::vec((any::<bool>(), 0u64..12, 0u32..70), 1..400)
        ) {
            let mut map = PositionSlots::default();
            let mut model: HashMap<u64, u64> = HashMap::new();
            for (add, key, slot) in ops {
                // Odd (fingerprint) and even (sequence hash) keys, some spread over the high
                // bits so that home buckets both collide and differ.
                let key = key.wrapping_mul(if key % 3 == 0 { 1 } else { 0x1_0000_0001 });
                let bit = if slot < WIDE_SLOT { 1 << slot } else { WIDE };
                if add {
                    let had = model.get(&key).is_some_and(|w| w & bit != 0);
                    let added = map.add_owner(key, slot);
                    let expected = match (slot < WIDE_SLOT, had) {
                        (false, _) => Added::Wide,
                        (true, true) => Added::Already,
                        (true, false) => Added::Inline,
                    };
                    prop_assert_eq!(added, expected);
                    *model.entry(key).or_insert(0) |= bit;
                } else {
                    let had = model.contains_key(&key);
                    prop_assert_eq!(map.remove_owner(key, slot, false), had);
                    if let Some(w) = model.get_mut(&key) {
                        *w &= !bit;
                        if *w == 0 {
                            model.remove(&key);
                        }
                    }
                }
                prop_assert_eq!(map.len as usize, model.len());
                let seq_keys = model.keys().filter(|&&k| is_seq_key(k)).count();
                prop_assert_eq!(map.seq_keys as usize, seq_keys);
                prop_assert_eq!(map.has_seq_keys(), seq_keys > 0);
                for key in 0..12u64 {
                    let key = key.wrapping_mul(if key % 3 == 0 { 1 } else { 0x1_0000_0001 });
                    prop_assert_eq!(map.owners(key), model.get(&key).copied().unwrap_or(0));
                }
            }
        }
    }
}
