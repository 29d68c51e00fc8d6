//! Token strings by id and ids by string, in two flat arrays and one open-addressing table.
//!
//! All token strings live in one byte buffer; `ends[id]` is where token `id` ends, so a
//! vocabulary of 150k tokens costs its text plus 4 bytes per id, and the string → id table
//! costs 4 bytes per slot (it stores ids, comparing against the buffer on lookup).

use std::hash::Hasher;

use rustc_hash::FxHasher;

/// An empty slot of the lookup table.
const EMPTY: u32 = u32::MAX;

/// Dense token ids ⇄ strings.
pub(crate) struct Vocab {
    text: Vec<u8>,
    /// `ends[id]`: end of token `id` in `text` (its start is `ends[id - 1]`, or 0).
    ends: Vec<u32>,
    /// Ids by string hash, linear probing; a power-of-two length at most three quarters full.
    slots: Vec<u32>,
}

/// Why a vocabulary could not be built.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum VocabError {
    /// The same string was given twice.
    DuplicateToken(String),
    /// Ids are not exactly `0..len` (holes or repeats).
    SparseIds,
    /// The text does not fit 32-bit offsets.
    TooLarge,
}

fn hash(bytes: &[u8]) -> usize {
    let mut hasher = FxHasher::default();
    hasher.write(bytes);
    // Truncation is fine: only the low bits pick a slot.
    hasher.finish() as usize
}

impl Vocab {
    /// Builds a vocabulary from `(id, string)` pairs whose ids must be exactly `0..len`.
    pub(crate) fn new<'a>(
        tokens: impl IntoIterator<Item = (u32, &'a str)>,
    ) -> Result<Self, VocabError> {
        let mut by_id: Vec<(u32, &str)> = tokens.into_iter().collect();
        by_id.sort_unstable_by_key(|&(id, _)| id);
        if by_id
            .iter()
            .enumerate()
            .any(|(index, &(id, _))| usize::try_from(id).ok() != Some(index))
        {
            return Err(VocabError::SparseIds);
        }
        let total: usize = by_id.iter().map(|(_, s)| s.len()).sum();
        if u32::try_from(total).is_err() {
            return Err(VocabError::TooLarge);
        }
        let mut text = Vec::with_capacity(total);
        let mut ends = Vec::with_capacity(by_id.len());
        for (_, token) in &by_id {
            text.extend_from_slice(token.as_bytes());
            ends.push(u32::try_from(text.len()).map_err(|_| VocabError::TooLarge)?);
        }
        let mut vocab = Self {
            text,
            ends,
            slots: vec![EMPTY; (by_id.len() + by_id.len() / 2).next_power_of_two().max(16)],
        };
        for (id, token) in by_id {
            if vocab.get(token.as_bytes()).is_some() {
                return Err(VocabError::DuplicateToken(token.to_owned()));
            }
            let slot = vocab.free_slot(token.as_bytes());
            vocab.slots[slot] = id;
        }
        Ok(vocab)
    }

    /// Appends a token with the next id (`len()`), which it returns.
    pub(crate) fn push(&mut self, token: &str) -> Result<u32, VocabError> {
        if self.get(token.as_bytes()).is_some() {
            return Err(VocabError::DuplicateToken(token.to_owned()));
        }
        let id = u32::try_from(self.ends.len()).map_err(|_| VocabError::TooLarge)?;
        self.text.extend_from_slice(token.as_bytes());
        self.ends
            .push(u32::try_from(self.text.len()).map_err(|_| VocabError::TooLarge)?);
        if self.ends.len() * 4 > self.slots.len() * 3 {
            self.slots = vec![EMPTY; self.slots.len() * 2];
            for old in 0..id {
                let slot = self.free_slot(self.bytes(old).expect("ids below len exist"));
                self.slots[slot] = old;
            }
        }
        let slot = self.free_slot(token.as_bytes());
        self.slots[slot] = id;
        Ok(id)
    }

    /// Number of ids.
    pub(crate) fn len(&self) -> usize {
        self.ends.len()
    }

    /// The bytes of token `id`.
    pub(crate) fn bytes(&self, id: u32) -> Option<&[u8]> {
        let index = usize::try_from(id).ok()?;
        let end = *self.ends.get(index)? as usize;
        let start = index
            .checked_sub(1)
            .map_or(0, |prev| self.ends[prev] as usize);
        Some(&self.text[start..end])
    }

    /// The string of token `id`.
    pub(crate) fn token(&self, id: u32) -> Option<&str> {
        // Built from `&str`s only, so every token is valid UTF-8.
        self.bytes(id)
            .map(|b| std::str::from_utf8(b).expect("tokens are UTF-8"))
    }

    /// The id of the token whose string is `bytes`.
    pub(crate) fn get(&self, bytes: &[u8]) -> Option<u32> {
        let mask = self.slots.len() - 1;
        let mut slot = hash(bytes) & mask;
        loop {
            let id = self.slots[slot];
            if id == EMPTY {
                return None;
            }
            if self.bytes(id) == Some(bytes) {
                return Some(id);
            }
            slot = (slot + 1) & mask;
        }
    }

    fn free_slot(&self, bytes: &[u8]) -> usize {
        let mask = self.slots.len() - 1;
        let mut slot = hash(bytes) & mask;
        while self.slots[slot] != EMPTY {
            slot = (slot + 1) & mask;
        }
        slot
    }

    /// Heap bytes held.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.text.capacity() + 4 * (self.ends.capacity() + self.slots.capacity())
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use proptest::prelude::*;

    use super::{Vocab, VocabError};

    #[test]
    fn ids_must_be_dense_and_strings_unique() {
        let sparse = [(0, "a"), (2, "b")];
        assert!(matches!(
            Vocab::new(sparse.into_iter()),
            Err(VocabError::SparseIds)
        ));
        let dup = [(0, "a"), (1, "a")];
        assert!(matches!(
            Vocab::new(dup.into_iter()),
            Err(VocabError::DuplicateToken(t)) if t == "a"
        ));
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// Lookups agree with a `HashMap` both ways, absent strings included.
        #[test]
        fn matches_a_hash_map(
            strings in proptest::collection::hash_set("\\PC{1,8}", 0..300),
            probes in proptest::collection::vec("\\PC{1,8}", 0..50),
        ) {
            let strings: Vec<String> = strings.into_iter().collect();
            let model: HashMap<&str, u32> =
                strings.iter().enumerate().map(|(i, s)| (s.as_str(), i as u32)).collect();
            // The first half through `new` (in any order), the rest through `push` (growing).
            let half = strings.len() / 2;
            let mut vocab = Vocab::new(
                strings[..half].iter().enumerate().rev().map(|(i, s)| (i as u32, s.as_str())),
            ).unwrap();
            for (i, s) in strings.iter().enumerate().skip(half) {
                prop_assert_eq!(vocab.push(s), Ok(i as u32));
            }
            prop_assert!(strings.is_empty() || vocab.push(&strings[0]).is_err());
            prop_assert_eq!(vocab.len(), strings.len());
            for (i, s) in strings.iter().enumerate() {
                prop_assert_eq!(vocab.get(s.as_bytes()), Some(i as u32));
                prop_assert_eq!(vocab.token(i as u32), Some(s.as_str()));
            }
            for probe in &probes {
                prop_assert_eq!(vocab.get(probe.as_bytes()), model.get(probe.as_str()).copied());
            }
            prop_assert_eq!(vocab.token(strings.len() as u32), None);
        }
    }
}
