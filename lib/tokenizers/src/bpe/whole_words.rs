//! The set of model tokens a word may be encoded to by a single vocabulary lookup.
//!
//! Without `ignore_merges`, BPE of a word that is itself a vocabulary token usually, but not
//! always, ends at that token. Which tokens do is decided once at load time by merging each
//! token's own bytes, so encoding can skip the merge loop for them and stay exact.

use super::byte_level;
use super::merges::{MergeScratch, Merges};
use super::vocab::Vocab;

/// A bit set over model token ids.
pub(crate) struct WholeWords {
    bits: Vec<u64>,
}

impl WholeWords {
    /// Every model token (`ignore_merges`).
    pub(crate) fn all(model_len: u32) -> Self {
        let mut set = Self::empty(model_len);
        set.bits.fill(u64::MAX);
        set.trim(model_len);
        set
    }

    /// The model tokens whose bytes merge back to exactly themselves.
    pub(crate) fn self_merging(
        vocab: &Vocab,
        model_len: u32,
        byte_ids: &[u32; 256],
        merges: &Merges,
    ) -> Self {
        let mut set = Self::empty(model_len);
        let mut bytes = Vec::new();
        let mut word = Vec::new();
        let mut scratch = MergeScratch::default();
        for id in 0..model_len {
            let Some(token) = vocab.token(id) else {
                continue;
            };
            bytes.clear();
            if !byte_level::push_byte_level_bytes(token, &mut bytes) {
                continue;
            }
            word.clear();
            word.extend(bytes.iter().map(|&b| byte_ids[usize::from(b)]));
            merges.merge(&mut word, &mut scratch);
            if word == [id] {
                set.insert(id);
            }
        }
        set
    }

    fn empty(model_len: u32) -> Self {
        Self {
            bits: vec![0; (model_len as usize).div_ceil(64)],
        }
    }

    /// Clears the bits past `model_len` in the last word.
    fn trim(&mut self, model_len: u32) {
        let used = model_len % 64;
        if used != 0
            && let Some(last) = self.bits.last_mut()
        {
            *last &= (1u64 << used) - 1;
        }
    }

    fn insert(&mut self, id: u32) {
        self.bits[(id / 64) as usize] |= 1 << (id % 64);
    }

    /// Whether `id` is in the set (ids past the model's are not).
    #[inline]
    pub(crate) fn contains(&self, id: u32) -> bool {
        self.bits
            .get((id / 64) as usize)
            .is_some_and(|word| word & (1 << (id % 64)) != 0)
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.bits.capacity() * 8
    }
}
