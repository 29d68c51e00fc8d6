//! A token sequence cut into blocks, with its local and sequence hashes kept up to date.

use crate::hash::{LocalBlockHash, SaltSeed, SequenceHash, block_hash, next_sequence_hash};

/// A token id.
pub type Token = u32;

/// Tokens of one request, with the hashes of every complete block.
///
/// Appending tokens completes blocks incrementally; only complete blocks are hashed.
#[derive(Debug, Clone)]
pub struct TokenBlockSequence {
    tokens: Vec<Token>,
    block_size: usize,
    seed: SaltSeed,
    local: Vec<LocalBlockHash>,
    sequence: Vec<SequenceHash>,
}

impl TokenBlockSequence {
    /// Start a sequence with `tokens`, cut into blocks of `block_size` (must be non-zero).
    pub fn new(tokens: &[Token], block_size: usize, seed: SaltSeed) -> Self {
        assert!(block_size > 0, "block_size must be non-zero");
        let mut seq = Self {
            tokens: Vec::with_capacity(tokens.len()),
            block_size,
            seed,
            local: Vec::new(),
            sequence: Vec::new(),
        };
        seq.extend(tokens);
        seq
    }

    /// Append tokens, hashing every block they complete.
    pub fn extend(&mut self, tokens: &[Token]) {
        for &token in tokens {
            self.push(token);
        }
    }

    /// Append one token; returns true if it completed a block.
    pub fn push(&mut self, token: Token) -> bool {
        self.tokens.push(token);
        if !self.tokens.len().is_multiple_of(self.block_size) {
            return false;
        }
        let start = self.tokens.len() - self.block_size;
        let local = block_hash(&self.tokens[start..], self.seed);
        let seq = match self.sequence.last() {
            None => SequenceHash(local.0),
            Some(&parent) => next_sequence_hash(parent, local),
        };
        self.local.push(local);
        self.sequence.push(seq);
        true
    }

    /// All tokens so far.
    pub fn tokens(&self) -> &[Token] {
        &self.tokens
    }

    /// Tokens per block.
    pub fn block_size(&self) -> usize {
        self.block_size
    }

    /// Local hashes of the complete blocks.
    pub fn local_hashes(&self) -> &[LocalBlockHash] {
        &self.local
    }

    /// Sequence hashes of the complete blocks.
    pub fn sequence_hashes(&self) -> &[SequenceHash] {
        &self.sequence
    }

    /// Number of complete blocks.
    pub fn complete_blocks(&self) -> usize {
        self.local.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::{block_hashes, sequence_hashes};
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn incremental_equals_batch(tokens in proptest::collection::vec(any::<u32>(), 0..300), split in 0usize..300, bs in 1usize..33) {
            let split = split.min(tokens.len());
            let mut seq = TokenBlockSequence::new(&tokens[..split], bs, SaltSeed::default());
            seq.extend(&tokens[split..]);
            let local = block_hashes(&tokens, bs, SaltSeed::default());
            prop_assert_eq!(seq.local_hashes(), &local[..]);
            prop_assert_eq!(seq.sequence_hashes(), &sequence_hashes(&local)[..]);
        }
    }
}
