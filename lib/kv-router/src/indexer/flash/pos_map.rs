//! Open-addressing hash maps keyed by block hashes (local hash → slot for one block position,
//! sequence hash → record for an owner's reverse lookup), with linear probing.
//!
//! Keys are already uniform hashes, so the home bucket is taken from the key's high bits and
//! a hit costs one cache line (key and value share the bucket, there is no separate control
//! array). Because the home bucket is computable up front, writers prefetch the buckets of
//! the blocks ahead of the one they apply, overlapping the cache misses of a whole run.
//! Deletion shifts the following cluster back (no tombstones), so removal really frees.

use stator_tokens::{LocalBlockHash, SequenceHash};

/// A key that is already a uniform 64-bit hash.
pub(crate) trait HashKey: Copy + Eq {
    /// The key's bits.
    fn bits(self) -> u64;
    /// A placeholder for empty buckets (never compared: emptiness is the value's `None`).
    fn placeholder() -> Self;
}

impl HashKey for LocalBlockHash {
    #[inline]
    fn bits(self) -> u64 {
        self.0
    }
    fn placeholder() -> Self {
        Self(0)
    }
}

impl HashKey for SequenceHash {
    #[inline]
    fn bits(self) -> u64 {
        self.0
    }
    fn placeholder() -> Self {
        Self(0)
    }
}

/// Load factor bound: grow when `len + 1 > capacity / 2`. Buckets are most of a cache line,
/// so a low load keeps probe runs (and the cluster a removal shifts back) to about one line.
const MAX_LOAD_NUM: usize = 1;
const MAX_LOAD_DEN: usize = 2;
const MIN_CAPACITY: usize = 8;

#[derive(Debug)]
struct Bucket<K, V> {
    key: K,
    value: Option<V>,
}

/// An open-addressing map keyed by a block hash.
#[derive(Debug)]
pub(crate) struct PosMap<K, V> {
    buckets: Box<[Bucket<K, V>]>,
    len: usize,
}

impl<K, V> Default for PosMap<K, V> {
    fn default() -> Self {
        Self {
            buckets: Box::new([]),
            len: 0,
        }
    }
}

#[inline]
fn home<K: HashKey>(key: K, mask: usize) -> usize {
    (key.bits().wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 32) as usize & mask
}

impl<K: HashKey, V> PosMap<K, V> {
    fn mask(&self) -> usize {
        self.buckets.len().wrapping_sub(1)
    }

    /// Number of keys.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.len
    }

    /// Whether the map has no key.
    pub(crate) fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Hint the CPU to fetch `key`'s home bucket.
    #[inline]
    pub(crate) fn prefetch(&self, key: K) {
        if self.buckets.is_empty() {
            return;
        }
        let bucket: *const Bucket<K, V> = &raw const self.buckets[home(key, self.mask())];
        prefetch_line(bucket.cast());
        // A bucket may straddle two lines; the probe run continues into the next one.
        prefetch_line(bucket.cast::<i8>().wrapping_add(64));
    }

    #[inline]
    fn find(&self, key: K) -> Option<usize> {
        if self.len == 0 {
            return None;
        }
        let mask = self.mask();
        let mut i = home(key, mask);
        loop {
            let b = &self.buckets[i];
            b.value.as_ref()?;
            if b.key == key {
                return Some(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value of `key`.
    #[inline]
    pub(crate) fn get(&self, key: K) -> Option<&V> {
        self.find(key).and_then(|i| self.buckets[i].value.as_ref())
    }

    /// The value of `key`, mutably.
    #[inline]
    pub(crate) fn get_mut(&mut self, key: K) -> Option<&mut V> {
        self.find(key).and_then(|i| self.buckets[i].value.as_mut())
    }

    /// The bucket of `key` (`Ok`), or the vacant bucket where it goes (`Err`), found in one
    /// probe run; grows the map first if one more key would exceed the load bound, so that
    /// [`Self::fill`] may use the vacant bucket.
    #[inline]
    pub(crate) fn find_or_vacant(&mut self, key: K) -> Result<usize, usize> {
        if (self.len + 1) * MAX_LOAD_DEN > self.buckets.len() * MAX_LOAD_NUM {
            self.resize((self.buckets.len() * 2).max(MIN_CAPACITY));
        }
        let mask = self.mask();
        let mut i = home(key, mask);
        loop {
            let b = &self.buckets[i];
            if b.value.is_none() {
                return Err(i);
            }
            if b.key == key {
                return Ok(i);
            }
            i = (i + 1) & mask;
        }
    }

    /// The value in bucket `i` (an `Ok` of [`Self::find_or_vacant`]).
    #[inline]
    pub(crate) fn value_at_mut(&mut self, i: usize) -> Option<&mut V> {
        self.buckets[i].value.as_mut()
    }

    /// Put `key` into the vacant bucket `i` (an `Err` of [`Self::find_or_vacant`], with no
    /// change to the map since).
    #[inline]
    pub(crate) fn fill(&mut self, i: usize, key: K, value: V) {
        debug_assert!(self.buckets[i].value.is_none(), "bucket {i} is occupied");
        self.buckets[i] = Bucket {
            key,
            value: Some(value),
        };
        self.len += 1;
    }

    /// Insert `key` (which must be absent).
    pub(crate) fn insert_new(&mut self, key: K, value: V) {
        if (self.len + 1) * MAX_LOAD_DEN > self.buckets.len() * MAX_LOAD_NUM {
            self.resize((self.buckets.len() * 2).max(MIN_CAPACITY));
        }
        let mask = self.mask();
        let mut i = home(key, mask);
        while self.buckets[i].value.is_some() {
            i = (i + 1) & mask;
        }
        self.buckets[i] = Bucket {
            key,
            value: Some(value),
        };
        self.len += 1;
    }

    /// Remove `key`, shifting its cluster back; shrinks a mostly empty map.
    pub(crate) fn remove(&mut self, key: K) -> Option<V> {
        let at = self.find(key)?;
        self.remove_at(at)
    }

    /// The bucket index of `key` and its value, mutably; pass the index to
    /// [`Self::remove_at`] to remove the key without probing again.
    #[inline]
    pub(crate) fn entry_mut(&mut self, key: K) -> Option<(usize, &mut V)> {
        let at = self.find(key)?;
        self.buckets[at].value.as_mut().map(|v| (at, v))
    }

    /// Remove the key at bucket `hole` (from [`Self::entry_mut`], with no change to the map
    /// since), shifting its cluster back; shrinks a mostly empty map.
    pub(crate) fn remove_at(&mut self, mut hole: usize) -> Option<V> {
        let mask = self.mask();
        let out = self.buckets[hole].value.take();
        self.len -= 1;
        let mut j = hole;
        loop {
            j = (j + 1) & mask;
            if self.buckets[j].value.is_none() {
                break;
            }
            let h = home(self.buckets[j].key, mask);
            // Move j into the hole unless its home lies cyclically in (hole, j].
            if (j.wrapping_sub(h) & mask) >= (j.wrapping_sub(hole) & mask) {
                self.buckets.swap(hole, j);
                hole = j;
            }
        }
        if self.buckets.len() > MIN_CAPACITY && self.len * 16 < self.buckets.len() {
            self.resize((self.buckets.len() / 4).max(MIN_CAPACITY));
        }
        out
    }

    /// Every entry.
    pub(crate) fn iter(&self) -> impl Iterator<Item = (K, &V)> {
        self.buckets
            .iter()
            .filter_map(|b| b.value.as_ref().map(|v| (b.key, v)))
    }

    /// Take every entry out, leaving the map empty and unallocated.
    pub(crate) fn take_all(&mut self) -> impl Iterator<Item = (K, V)> + use<K, V> {
        self.len = 0;
        std::mem::take(&mut self.buckets)
            .into_vec()
            .into_iter()
            .filter_map(|b| b.value.map(|v| (b.key, v)))
    }

    fn resize(&mut self, capacity: usize) {
        let old = std::mem::replace(
            &mut self.buckets,
            (0..capacity)
                .map(|_| Bucket {
                    key: K::placeholder(),
                    value: None,
                })
                .collect(),
        );
        self.len = 0;
        for b in old.into_vec() {
            if let Some(v) = b.value {
                self.insert_new(b.key, v);
            }
        }
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

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::PosMap;
    use proptest::prelude::*;
    use stator_tokens::LocalBlockHash;

    proptest! {
        #[test]
        fn behaves_like_a_hash_map(ops in prop::collection::vec((any::<bool>(), 0u64..64), 1..400)) {
            let mut map: PosMap<LocalBlockHash, u64> = PosMap::default();
            let mut model = HashMap::new();
            for (insert, k) in ops {
                // Small keys collide on home buckets a lot; spread some over the high bits too.
                let key = LocalBlockHash(k.wrapping_mul(if k % 2 == 0 { 1 } else { 0x1_0000_0001 }));
                if insert {
                    if model.insert(key, k).is_none() {
                        map.insert_new(key, k);
                    } else if let Some(v) = map.get_mut(key) {
                        *v = k;
                    }
                } else {
                    prop_assert_eq!(map.remove(key), model.remove(&key));
                }
                prop_assert_eq!(map.len(), model.len());
                for (mk, mv) in &model {
                    prop_assert_eq!(map.get(*mk), Some(mv));
                }
            }
        }
    }
}
