//! A compact set of worker slots: one inline machine word for the first 64 slots, a heap
//! bitmap beyond. Index entries hold one of these per cached block, so the common case (a
//! fleet of at most 64 (worker, dp rank) owners) costs no allocation and set operations are
//! single-word instructions.

const WORD_BITS: usize = 64;

/// A set of small integers (worker slots), stored as a bitmap.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum WorkerSet {
    /// Slots 0..64.
    Inline(u64),
    /// Any slots; trailing zero words are allowed.
    Heap(Box<[u64]>),
}

impl Default for WorkerSet {
    fn default() -> Self {
        Self::Inline(0)
    }
}

impl WorkerSet {
    /// The empty set.
    pub(crate) const fn new() -> Self {
        Self::Inline(0)
    }

    /// The set's words, in slot order.
    #[inline]
    pub(crate) fn words(&self) -> &[u64] {
        match self {
            Self::Inline(w) => std::slice::from_ref(w),
            Self::Heap(ws) => ws,
        }
    }

    #[inline]
    fn words_mut(&mut self) -> &mut [u64] {
        match self {
            Self::Inline(w) => std::slice::from_mut(w),
            Self::Heap(ws) => ws,
        }
    }

    /// Grow the bitmap so that `words` words are addressable.
    fn reserve_words(&mut self, words: usize) {
        if self.words().len() >= words {
            return;
        }
        let mut grown = vec![0u64; words].into_boxed_slice();
        grown[..self.words().len()].copy_from_slice(self.words());
        *self = Self::Heap(grown);
    }

    /// Add `slot`.
    #[inline]
    pub(crate) fn insert(&mut self, slot: u32) {
        let (word, bit) = (slot as usize / WORD_BITS, slot as usize % WORD_BITS);
        if let Self::Inline(w) = self
            && word == 0
        {
            *w |= 1 << bit;
            return;
        }
        self.reserve_words(word + 1);
        self.words_mut()[word] |= 1 << bit;
    }

    /// Remove `slot`; returns whether it was present.
    #[inline]
    pub(crate) fn remove(&mut self, slot: u32) -> bool {
        let (word, bit) = (slot as usize / WORD_BITS, slot as usize % WORD_BITS);
        match self.words_mut().get_mut(word) {
            Some(w) if *w & (1 << bit) != 0 => {
                *w &= !(1 << bit);
                true
            }
            _ => false,
        }
    }

    /// Whether `slot` is in the set.
    #[inline]
    pub(crate) fn contains(&self, slot: u32) -> bool {
        let (word, bit) = (slot as usize / WORD_BITS, slot as usize % WORD_BITS);
        self.words().get(word).is_some_and(|w| w & (1 << bit) != 0)
    }

    /// Whether the set has no slot.
    #[inline]
    pub(crate) fn is_empty(&self) -> bool {
        match self {
            Self::Inline(w) => *w == 0,
            Self::Heap(ws) => ws.iter().all(|w| *w == 0),
        }
    }

    /// Number of slots in the set.
    #[cfg(test)]
    pub(crate) fn len(&self) -> usize {
        self.words().iter().map(|w| w.count_ones() as usize).sum()
    }

    /// Empty the set, keeping its capacity.
    #[inline]
    pub(crate) fn clear(&mut self) {
        self.words_mut().fill(0);
    }

    /// `self = a ∩ b`, reusing `self`'s storage.
    #[inline]
    pub(crate) fn assign_and(&mut self, a: &Self, b: &Self) {
        if let (Self::Inline(x), Self::Inline(y)) = (a, b) {
            *self = Self::Inline(x & y);
            return;
        }
        let n = a.words().len().min(b.words().len());
        self.reserve_words(n);
        let out = self.words_mut();
        for (i, o) in out.iter_mut().enumerate() {
            *o = if i < n {
                a.words()[i] & b.words()[i]
            } else {
                0
            };
        }
    }

    /// `self |= a ∩ b` (used where several entries of one slot match a query).
    #[inline]
    pub(crate) fn or_and(&mut self, a: &Self, b: &Self) {
        if let (Self::Inline(o), Self::Inline(x), Self::Inline(y)) = (&mut *self, a, b) {
            *o |= x & y;
            return;
        }
        let n = a.words().len().min(b.words().len());
        self.reserve_words(n);
        let out = self.words_mut();
        for ((o, x), y) in out.iter_mut().zip(a.words()).zip(b.words()) {
            *o |= x & y;
        }
    }

    /// Whether the two sets hold the same slots (trailing zero words ignored).
    #[inline]
    pub(crate) fn same_as(&self, other: &Self) -> bool {
        if let (Self::Inline(x), Self::Inline(y)) = (self, other) {
            return x == y;
        }
        let (a, b) = (self.words(), other.words());
        let n = a.len().max(b.len());
        (0..n).all(|i| a.get(i).copied().unwrap_or(0) == b.get(i).copied().unwrap_or(0))
    }

    /// Slots of `self` that are not in `other`, in increasing order.
    pub(crate) fn difference<'a>(&'a self, other: &'a Self) -> impl Iterator<Item = u32> + 'a {
        let theirs = other.words();
        self.words().iter().enumerate().flat_map(move |(i, &w)| {
            let keep = w & !theirs.get(i).copied().unwrap_or(0);
            BitIter(keep).map(move |b| (i * WORD_BITS) as u32 + b)
        })
    }

    /// Every slot in the set, in increasing order.
    pub(crate) fn iter(&self) -> impl Iterator<Item = u32> + '_ {
        self.words()
            .iter()
            .enumerate()
            .flat_map(|(i, &w)| BitIter(w).map(move |b| (i * WORD_BITS) as u32 + b))
    }
}

/// Iterator over the set bits of one word.
struct BitIter(u64);

impl Iterator for BitIter {
    type Item = u32;

    #[inline]
    fn next(&mut self) -> Option<u32> {
        if self.0 == 0 {
            return None;
        }
        let bit = self.0.trailing_zeros();
        self.0 &= self.0 - 1;
        Some(bit)
    }
}

#[cfg(test)]
mod tests {
    use super::WorkerSet;

    #[test]
    fn inline_and_heap_behave_alike() {
        let mut a = WorkerSet::new();
        let mut b = WorkerSet::new();
        for s in [0, 3, 63] {
            a.insert(s);
            b.insert(s);
        }
        b.insert(200);
        assert!(b.contains(200) && !a.contains(200));
        assert_eq!(a.len(), 3);
        assert_eq!(b.len(), 4);
        assert!(!a.same_as(&b));
        assert!(b.remove(200));
        assert!(!b.remove(200));
        assert!(a.same_as(&b) && b.same_as(&a));
        let mut out = WorkerSet::new();
        b.insert(130);
        out.assign_and(&a, &b);
        assert_eq!(out.iter().collect::<Vec<_>>(), vec![0, 3, 63]);
        assert_eq!(b.difference(&a).collect::<Vec<_>>(), vec![130]);
        out.clear();
        assert!(out.is_empty());
    }
}
