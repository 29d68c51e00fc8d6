//! An owner's reverse index: sequence hash → the owner's record of that block.
//!
//! Open addressing with linear probing over 16-byte buckets (four per cache line): the key and
//! the index of the record in the owner's record arena. Keys are already uniform hashes, so
//! the home bucket comes from the key's bits and writers can prefetch the buckets of the
//! blocks ahead of the one they apply. Deletion shifts the following cluster back (no
//! tombstones), so removal really frees.

use stator_tokens::SequenceHash;

/// Marks a vacant bucket.
const VACANT: u32 = u32::MAX;

/// Grow when `len + 1 > capacity · 2/3`.
const MAX_LOAD_NUM: usize = 2;
const MAX_LOAD_DEN: usize = 3;
const MIN_CAPACITY: usize = 8;

#[derive(Debug, Clone, Copy)]
#[repr(C, align(16))]
struct Bucket {
    seq: u64,
    record: u32,
}

const EMPTY: Bucket = Bucket {
    seq: 0,
    record: VACANT,
};

/// Sequence hash → record index.
#[derive(Debug, Default)]
pub(crate) struct RevIndex {
    buckets: Box<[Bucket]>,
    len: usize,
    /// Length at which the next insertion grows the buckets.
    grow_at: usize,
}

#[inline]
fn home(seq: SequenceHash, mask: usize) -> usize {
    (seq.0.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl RevIndex {
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
        let p: *const Bucket = &raw const self.buckets[home(seq, self.mask())];
        super::prefetch_line(p.cast());
    }

    #[inline]
    fn find(&self, seq: SequenceHash) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = home(seq, mask);
        loop {
            let b = &self.buckets[i];
            if b.record == VACANT {
                return None;
            }
            if b.seq == seq.0 {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The record of `seq`.
    #[inline]
    pub(crate) fn get(&self, seq: SequenceHash) -> Option<u32> {
        self.find(seq).map(|i| self.buckets[i].record)
    }

    /// The record of `seq` (`Ok`), or the vacant bucket where it goes (`Err`), found in one
    /// probe run; grows first if one more key would exceed the load bound, so that
    /// [`Self::fill`] may use the vacant bucket.
    #[inline]
    pub(crate) fn find_or_vacant(&mut self, seq: SequenceHash) -> Result<u32, usize> {
        if self.len >= self.grow_at {
            self.resize((self.buckets.len() * 2).max(MIN_CAPACITY));
        }
        let mask = self.mask();
        let mut i = home(seq, mask);
        loop {
            let b = &self.buckets[i];
            if b.record == VACANT {
                return Err(i);
            }
            if b.seq == seq.0 {
                return Ok(b.record);
            }
            i = (i + 1) & mask;
        }
    }

    /// Put `seq` into the vacant bucket `at` (an `Err` of [`Self::find_or_vacant`], with no
    /// change to the index since).
    #[inline]
    pub(crate) fn fill(&mut self, at: usize, seq: SequenceHash, record: u32) {
        debug_assert_eq!(self.buckets[at].record, VACANT, "bucket {at} is occupied");
        self.buckets[at] = Bucket { seq: seq.0, record };
        self.len += 1;
    }

    /// Remove `seq`, returning its record; shrinks a mostly empty index.
    #[inline]
    pub(crate) fn remove(&mut self, seq: SequenceHash) -> Option<u32> {
        let mut hole = self.find(seq)?;
        let mask = self.mask();
        let out = self.buckets[hole].record;
        self.buckets[hole] = EMPTY;
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.buckets[j].record == VACANT {
                break;
            }
            let h = home(SequenceHash(self.buckets[j].seq), mask);
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
        Some(out)
    }

    /// Forget every key and release the buckets.
    pub(crate) fn clear(&mut self) {
        *self = Self::default();
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(&mut self.buckets, vec![EMPTY; capacity].into_boxed_slice());
        // Grow once `len + 1 > capacity · MAX_LOAD`.
        self.grow_at = capacity * MAX_LOAD_NUM / MAX_LOAD_DEN;
        let mask = self.mask();
        for b in old.iter().filter(|b| b.record != VACANT) {
            let mut i = home(SequenceHash(b.seq), mask);
            while self.buckets[i].record != VACANT {
                i = (i + 1) & mask;
            }
            self.buckets[i] = *b;
        }
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::RevIndex;
    use proptest::prelude::*;
    use stator_tokens::SequenceHash;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn behaves_like_a_hash_map(ops in prop::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let mut index = RevIndex::default();
            let mut model = HashMap::new();
            for (n, (insert, k)) in ops.into_iter().enumerate() {
                // Small keys collide on home buckets a lot; spread some over the high bits too.
                let key = SequenceHash(k.wrapping_mul(if k % 2 == 0 { 1 } else { 0x1_0000_0001 }));
                if insert {
                    match index.find_or_vacant(key) {
                        Ok(r) => prop_assert_eq!(model.get(&key), Some(&r)),
                        Err(at) => {
                            prop_assert!(!model.contains_key(&key));
                            index.fill(at, key, n as u32);
                            model.insert(key, n as u32);
                        }
                    }
                } else {
                    prop_assert_eq!(index.remove(key), model.remove(&key));
                }
                prop_assert_eq!(index.len, model.len());
                for (mk, mv) in &model {
                    prop_assert_eq!(index.get(*mk), Some(*mv));
                }
            }
        }
    }
}
