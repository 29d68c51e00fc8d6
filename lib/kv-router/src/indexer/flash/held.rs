//! An owner's held blocks: sequence hash → everything the owner knows about that block.
//!
//! One open-addressing table with linear probing over 32-byte buckets (two per cache line):
//! a bucket is the whole record of a block (position, local hash, parent, child count), so
//! looking a block up, storing it or removing it touches one line of the owner's state, with
//! no second indirection into a record array. (A block's fingerprint is in its table entry;
//! only the parent of a `Stored` run needs it, once per event.) Keys are already uniform
//! hashes, so the home bucket comes from the key's bits and writers can prefetch the buckets
//! of the blocks ahead of the one they apply. Deletion leaves a tombstone (one store: shifting
//! the cluster back would walk into lines that were never prefetched) unless the next bucket
//! is vacant, in which case the bucket and the tombstones before it become vacant at once;
//! insertion reuses the first tombstone of its probe run and a rehash drops the rest, so
//! removal really frees.

use stator_tokens::{LocalBlockHash, SequenceHash};

/// The block is cached (a vacant bucket has no flag).
const LIVE: u32 = 1 << FLAGS_SHIFT;
/// `parent` names the block's parent.
const HAS_PARENT: u32 = 2 << FLAGS_SHIFT;
/// Flags sit above the position (positions are below 2^20).
const FLAGS_SHIFT: u32 = 24;
/// `position_flags` of a deleted bucket that still continues a probe run (no [`LIVE`] flag).
const TOMBSTONE: u32 = 1 << 31;
const POSITION_MASK: u32 = (1 << FLAGS_SHIFT) - 1;

/// Rehash when blocks and tombstones would exceed two thirds of the buckets.
const MAX_LOAD_NUM: usize = 2;
const MAX_LOAD_DEN: usize = 3;
const MIN_CAPACITY: usize = 8;

/// One cached block of the owner.
#[derive(Debug, Clone, Copy)]
#[repr(C, align(32))]
pub(crate) struct Held {
    pub(crate) seq: SequenceHash,
    pub(crate) local: LocalBlockHash,
    /// Parent sequence hash (meaningful with [`HAS_PARENT`]).
    pub(crate) parent: SequenceHash,
    /// Position, and the flags above it (0: vacant bucket).
    position_flags: u32,
    /// Cached blocks of this owner whose parent is this block.
    pub(crate) children: u32,
}

impl Held {
    /// A block at `position` (below 2^20) with `flags` ([`LIVE`] is implied).
    #[inline]
    pub(crate) fn new(
        seq: SequenceHash,
        local: LocalBlockHash,
        parent: Option<SequenceHash>,
        position: u32,
        children: u32,
    ) -> Self {
        debug_assert!(position <= POSITION_MASK, "position {position} too deep");
        let flags = if parent.is_some() {
            LIVE | HAS_PARENT
        } else {
            LIVE
        };
        Self {
            seq,
            local,
            parent: parent.unwrap_or(SequenceHash(0)),
            position_flags: position | flags,
            children,
        }
    }

    #[inline]
    pub(crate) fn position(&self) -> u32 {
        self.position_flags & POSITION_MASK
    }

    /// The parent, if the block was stored under one.
    #[inline]
    pub(crate) fn parent(&self) -> Option<SequenceHash> {
        (self.position_flags & HAS_PARENT != 0).then_some(self.parent)
    }

    #[inline]
    fn is_vacant(&self) -> bool {
        self.position_flags == 0
    }

    #[inline]
    fn is_live(&self) -> bool {
        self.position_flags & LIVE != 0
    }
}

const EMPTY: Held = Held {
    seq: SequenceHash(0),
    local: LocalBlockHash(0),
    parent: SequenceHash(0),
    position_flags: 0,
    children: 0,
};

/// Sequence hash → held block.
#[derive(Debug, Default)]
pub(crate) struct HeldBlocks {
    buckets: Box<[Held]>,
    len: usize,
    tombstones: usize,
    /// Used buckets (blocks and tombstones) at which the next insertion needs a rehash.
    grow_at: usize,
}

#[inline]
fn home(seq: SequenceHash, mask: usize) -> usize {
    (seq.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl HeldBlocks {
    #[inline]
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Hint the CPU to fetch `seq`'s home bucket.
    #[inline]
    pub(crate) fn prefetch(&self, seq: SequenceHash) {
        if self.buckets.is_empty() {
            return;
        }
        // A probe run often continues into the next line (two buckets per line): fetch it too.
        let mask = self.mask();
        let at = home(seq, mask);
        let p: *const Held = &raw const self.buckets[at];
        super::prefetch_line(p.cast());
        let next: *const Held = &raw const self.buckets[((at | 1) + 1) & mask];
        super::prefetch_line(next.cast());
    }

    /// The bucket of `seq`.
    #[inline]
    pub(crate) fn find(&self, seq: SequenceHash) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = home(seq, mask);
        loop {
            let b = &self.buckets[i];
            if b.is_vacant() {
                return None;
            }
            if b.seq == seq && b.is_live() {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The block in bucket `at` (a result of [`Self::find`] or [`Self::find_or_vacant`]).
    #[inline]
    pub(crate) fn at(&self, at: usize) -> &Held {
        &self.buckets[at]
    }

    /// The block in bucket `at`, to update in place.
    #[inline]
    pub(crate) fn at_mut(&mut self, at: usize) -> &mut Held {
        &mut self.buckets[at]
    }

    /// Make room for `n` more blocks, so that the next `n` insertions move no bucket.
    pub(crate) fn reserve(&mut self, n: usize) {
        if self.len + self.tombstones + n > self.grow_at {
            // Rehash at the same size while the blocks fill at most a third of the buckets
            // (leaving room for tombstones up to the load bound), else grow.
            let mut capacity = self.buckets.len().max(MIN_CAPACITY);
            while (self.len + n) * 3 > capacity {
                capacity *= 2;
            }
            self.resize(capacity);
        }
    }

    /// The bucket of `seq` (`Ok`), or the vacant bucket where it goes (`Err`), found in one
    /// probe run. Needs room for one more block (see [`Self::reserve`]).
    #[inline]
    pub(crate) fn find_or_vacant(&self, seq: SequenceHash) -> Result<usize, usize> {
        debug_assert!(
            self.len + self.tombstones < self.grow_at,
            "no room reserved"
        );
        let mask = self.mask();
        let mut i = home(seq, mask);
        let mut reuse = None;
        loop {
            let b = &self.buckets[i];
            if b.is_vacant() {
                return Err(reuse.unwrap_or(i));
            }
            if b.is_live() {
                if b.seq == seq {
                    return Ok(i);
                }
            } else if reuse.is_none() {
                reuse = Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// Put `held` into the free bucket `at` (an `Err` of [`Self::find_or_vacant`], with no
    /// change to the table since).
    #[inline]
    pub(crate) fn fill(&mut self, at: usize, held: Held) {
        debug_assert!(!self.buckets[at].is_live(), "bucket {at} is occupied");
        debug_assert!(held.is_live(), "a held block is live");
        if !self.buckets[at].is_vacant() {
            self.tombstones -= 1;
        }
        self.buckets[at] = held;
        self.len += 1;
    }

    /// Remove the block in bucket `at`, returning it; shrinks a mostly empty table (indices
    /// found before are stale afterwards).
    #[inline]
    pub(crate) fn remove_at(&mut self, at: usize) -> Held {
        let mask = self.mask();
        let out = self.buckets[at];
        self.len -= 1;
        if self.buckets[(at + 1) & mask].is_vacant() {
            // The probe run ends here: vacate this bucket and the tombstones before it.
            self.buckets[at] = EMPTY;
            let mut i = at.wrapping_sub(1) & mask;
            while self.buckets[i].position_flags == TOMBSTONE {
                self.buckets[i] = EMPTY;
                self.tombstones -= 1;
                i = i.wrapping_sub(1) & mask;
            }
        } else {
            self.buckets[at].position_flags = TOMBSTONE;
            self.tombstones += 1;
        }
        if self.buckets.len() > MIN_CAPACITY && self.len * 8 < self.buckets.len() {
            self.resize((self.buckets.len() / 4).max(MIN_CAPACITY));
        }
        out
    }

    /// Every held block, in no particular order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = &Held> {
        self.buckets.iter().filter(|b| b.is_live())
    }

    /// Forget every block and release the buckets.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; capacity].into_boxed_slice());
        self.grow_at = capacity * MAX_LOAD_NUM / MAX_LOAD_DEN;
        self.tombstones = 0;
        let mask = self.mask();
        for b in old.iter().filter(|b| b.is_live()) {
            let mut i = home(b.seq, mask);
            while !self.buckets[i].is_vacant() {
                i = (i + 1) & mask;
            }
            self.buckets[i] = *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::{Held, HeldBlocks};
    use proptest::prelude::*;
    use stator_tokens::{LocalBlockHash, SequenceHash};

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn behaves_like_a_hash_map(ops in prop::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let mut table = HeldBlocks::default();
            let mut model = HashMap::new();
            for (n, (insert, k)) in ops.into_iter().enumerate() {
                // Small keys collide on home buckets a lot; spread some over the high bits too.
                let key = SequenceHash(k.wrapping_mul(if k % 2 == 0 { 1 } else { 0x1_0000_0001 }));
                let n = n as u32;
                if insert {
                    table.reserve(1);
                    match table.find_or_vacant(key) {
                        Ok(at) => prop_assert_eq!(model.get(&key), Some(&table.at(at).position())),
                        Err(at) => {
                            prop_assert!(!model.contains_key(&key));
                            let parent = n.is_multiple_of(2).then_some(key);
                            table.fill(at, Held::new(key, LocalBlockHash(k), parent, n, 0));
                            model.insert(key, n);
                        }
                    }
                } else {
                    let removed = table.find(key).map(|at| table.remove_at(at).position());
                    prop_assert_eq!(removed, model.remove(&key));
                }
                prop_assert_eq!(table.len, model.len());
                let used = table.buckets.iter().filter(|b| !b.is_vacant()).count();
                prop_assert_eq!(used, table.len + table.tombstones);
                prop_assert_eq!(table.iter().count(), model.len());
                for (mk, mv) in &model {
                    let at = table.find(*mk);
                    prop_assert_eq!(at.map(|at| table.at(at).position()), Some(*mv));
                    let parent = at.and_then(|at| table.at(at).parent());
                    prop_assert_eq!(parent, mv.is_multiple_of(2).then_some(*mk));
                }
            }
        }
    }
}
