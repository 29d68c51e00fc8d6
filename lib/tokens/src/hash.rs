//! The two hashes of a KV block: the local (tokens-only) hash and the chained sequence hash.

use serde::{Deserialize, Serialize};
use xxhash_rust::xxh3::xxh3_64_with_seed;

/// The seed of every block hash and of the sequence chain (Dynamo's `XXH3_SEED`).
pub const BLOCK_HASH_SEED: u64 = 1337;

/// Hash of one block's tokens alone (Dynamo's `LocalBlockHash`, wire name `tokens_hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct LocalBlockHash(pub u64);

/// Hash of a block together with its whole prefix (Dynamo's `ExternalSequenceBlockHash`,
/// wire name `block_hash`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(transparent)]
pub struct SequenceHash(pub u64);

/// The seed used for local block hashes: 1337, shifted by an optional LoRA name and cache salt.
///
/// Rule (Dynamo 1.6.1 `compute_salt_hash`): start from 1337; a non-empty LoRA name adds
/// `xxh3_64(name, seed 0)`; a non-empty cache salt adds `xxh3_64(salt, seed 1)`; additions wrap.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct SaltSeed(pub u64);

impl Default for SaltSeed {
    fn default() -> Self {
        Self(BLOCK_HASH_SEED)
    }
}

impl SaltSeed {
    /// Build the seed for a request with an optional cache salt and LoRA adapter name.
    pub fn new(cache_salt: Option<&str>, lora_name: Option<&str>) -> Self {
        let mut seed = BLOCK_HASH_SEED;
        if let Some(lora) = lora_name.filter(|s| !s.is_empty()) {
            seed = seed.wrapping_add(xxh3_64_with_seed(lora.as_bytes(), 0));
        }
        if let Some(salt) = cache_salt.filter(|s| !s.is_empty()) {
            seed = seed.wrapping_add(xxh3_64_with_seed(salt.as_bytes(), 1));
        }
        Self(seed)
    }
}

/// Hash one block of tokens (`u32` little-endian bytes) with the given seed.
pub fn block_hash(tokens: &[u32], seed: SaltSeed) -> LocalBlockHash {
    let mut bytes = Vec::with_capacity(tokens.len() * 4);
    for token in tokens {
        bytes.extend_from_slice(&token.to_le_bytes());
    }
    LocalBlockHash(xxh3_64_with_seed(&bytes, seed.0))
}

/// Local hashes of every complete block of `tokens`; a trailing partial block is skipped.
///
/// A `block_size` of 0 yields no blocks.
pub fn block_hashes(tokens: &[u32], block_size: usize, seed: SaltSeed) -> Vec<LocalBlockHash> {
    if block_size == 0 {
        return Vec::new();
    }
    tokens
        .chunks_exact(block_size)
        .map(|block| block_hash(block, seed))
        .collect()
}

/// The sequence hash of the block after `parent` whose local hash is `local`.
pub fn next_sequence_hash(parent: SequenceHash, local: LocalBlockHash) -> SequenceHash {
    let mut bytes = [0u8; 16];
    bytes[..8].copy_from_slice(&parent.0.to_le_bytes());
    bytes[8..].copy_from_slice(&local.0.to_le_bytes());
    SequenceHash(xxh3_64_with_seed(&bytes, BLOCK_HASH_SEED))
}

/// Chain local hashes into sequence hashes: `seq[0] = local[0]`, then [`next_sequence_hash`].
pub fn sequence_hashes(local: &[LocalBlockHash]) -> Vec<SequenceHash> {
    let mut out = Vec::with_capacity(local.len());
    let mut parent: Option<SequenceHash> = None;
    for &hash in local {
        let seq = match parent {
            None => SequenceHash(hash.0),
            Some(p) => next_sequence_hash(p, hash),
        };
        out.push(seq);
        parent = Some(seq);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn golden_block_hash_matches_raw_xxh3_over_le_bytes() {
        // Four tokens 1,2,3,4 as u32 LE: the definition of Dynamo's tokens_hash.
        let bytes: Vec<u8> = [1u32, 2, 3, 4]
            .iter()
            .flat_map(|t| t.to_le_bytes())
            .collect();
        let expected = xxh3_64_with_seed(&bytes, 1337);
        assert_eq!(block_hash(&[1, 2, 3, 4], SaltSeed::default()).0, expected);
        // Frozen value so a change of hashing crate or byte order is caught.
        assert_eq!(expected, GOLDEN_1234);
    }

    // Independently computed with the Python `xxhash` package:
    // xxh3_64_intdigest(struct.pack('<4I', 1, 2, 3, 4), seed=1337).
    const GOLDEN_1234: u64 = 14_643_705_804_678_351_452;

    #[test]
    fn golden_chain() {
        let local = [LocalBlockHash(1), LocalBlockHash(2)];
        let seq = sequence_hashes(&local);
        assert_eq!(seq[0], SequenceHash(1));
        let mut bytes = Vec::new();
        bytes.extend_from_slice(&1u64.to_le_bytes());
        bytes.extend_from_slice(&2u64.to_le_bytes());
        assert_eq!(seq[1].0, xxh3_64_with_seed(&bytes, 1337));
        // Python: xxh3_64_intdigest(struct.pack('<QQ', 1, 2), seed=1337).
        assert_eq!(seq[1].0, 16_740_963_408_272_063_728);
    }

    #[test]
    fn empty_salt_and_lora_count_as_absent() {
        assert_eq!(SaltSeed::new(Some(""), Some("")), SaltSeed::default());
        assert_ne!(SaltSeed::new(Some("tenant-a"), None), SaltSeed::default());
        assert_ne!(
            SaltSeed::new(Some("x"), None),
            SaltSeed::new(None, Some("x")),
            "salt and LoRA use different seeds"
        );
    }

    proptest! {
        #[test]
        fn partial_block_is_never_hashed(tokens in proptest::collection::vec(any::<u32>(), 0..200), bs in 1usize..40) {
            prop_assert_eq!(block_hashes(&tokens, bs, SaltSeed::default()).len(), tokens.len() / bs);
        }

        #[test]
        fn chain_is_prefix_stable(tokens in proptest::collection::vec(any::<u32>(), 0..200), cut in 0usize..200) {
            let local = block_hashes(&tokens, 8, SaltSeed::default());
            let full = sequence_hashes(&local);
            let cut = cut.min(local.len());
            prop_assert_eq!(&sequence_hashes(&local[..cut])[..], &full[..cut]);
        }
    }
}
