//! Which model tokens a word may be encoded to by a single vocabulary lookup.
//!
//! Without `ignore_merges`, BPE of a word that is itself a vocabulary token usually, but not
//! always, ends at that token. Whether it does is a fact about the token alone, so it is
//! learned the first time such a word is merged and remembered in two bits per token; later
//! occurrences skip the merge loop and stay exact.

use std::sync::atomic::{AtomicU64, Ordering};

/// Two bits per model token: "known" and "merges back to itself".
pub(crate) struct WholeWords {
    bits: Vec<AtomicU64>,
    model_len: u32,
}

/// Tokens per `u64` (two bits each).
const PER_WORD: u32 = 32;

impl WholeWords {
    /// Nothing known yet; with `ignore_merges` every model token is whole (as in Hugging Face,
    /// where such a word is looked up before merging).
    pub(crate) fn new(model_len: u32, ignore_merges: bool) -> Self {
        let fill = if ignore_merges { u64::MAX } else { 0 };
        Self {
            bits: (0..model_len.div_ceil(PER_WORD))
                .map(|_| AtomicU64::new(fill))
                .collect(),
            model_len,
        }
    }

    fn slot(&self, id: u32) -> Option<(&AtomicU64, u32)> {
        (id < self.model_len).then(|| (&self.bits[(id / PER_WORD) as usize], (id % PER_WORD) * 2))
    }

    /// Whether the word spelling token `id` encodes to `[id]`: `None` when not known yet or
    /// when `id` is not a model token.
    #[inline]
    pub(crate) fn get(&self, id: u32) -> Option<bool> {
        let (word, shift) = self.slot(id)?;
        let pair = (word.load(Ordering::Relaxed) >> shift) & 0b11;
        (pair & 0b01 != 0).then_some(pair & 0b10 != 0)
    }

    /// Records what merging the word spelling model token `id` gave (no-op for other ids).
    pub(crate) fn record(&self, id: u32, whole: bool) {
        if let Some((word, shift)) = self.slot(id) {
            // Both bits in one atomic update, so a reader never sees "known" without "whole".
            word.fetch_or((0b01 | (u64::from(whole) << 1)) << shift, Ordering::Relaxed);
        }
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.capacity() * 8
    }
}

#[cfg(test)]
mod tests {
    use super::WholeWords;

    #[test]
    fn learns_per_token_and_ignores_other_ids() {
        let set = WholeWords::new(100, false);
        assert_eq!(set.get(5), None);
        set.record(5, true);
        set.record(6, false);
        assert_eq!(
            (set.get(5), set.get(6), set.get(7)),
            (Some(true), Some(false), None)
        );
        set.record(100, true);
        assert_eq!(set.get(100), None);
        let all = WholeWords::new(70, true);
        assert_eq!(
            (all.get(0), all.get(69), all.get(70)),
            (Some(true), Some(true), None)
        );
    }
}
