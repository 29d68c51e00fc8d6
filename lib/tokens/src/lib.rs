//! Token blocks and KV-cache block hashing, bit-compatible with NVIDIA Dynamo 1.6.1.
//!
//! A prompt is cut into blocks of `block_size` tokens. Each *complete* block gets a
//! [`LocalBlockHash`]: xxh3-64 over the block's token ids as `u32` little-endian bytes,
//! seeded with 1337 (or a salted seed, see [`SaltSeed`]). Blocks are chained into
//! [`SequenceHash`]es so that a block's identity also covers everything before it:
//! `seq[0] = local[0]`, `seq[i] = xxh3_64(le(seq[i-1]) ++ le(local[i]), 1337)`.
//! The seed and the chaining rule are facts of the Dynamo wire format (see
//! `docs/decisions.md`), so hashes computed here match the ones Dynamo workers publish.
//!
//! ```
//! use stator_tokens::{block_hashes, sequence_hashes, SaltSeed};
//!
//! let tokens: Vec<u32> = (0..10).collect();
//! let local = block_hashes(&tokens, 4, SaltSeed::default());
//! assert_eq!(local.len(), 2); // the trailing partial block is never hashed
//! let chain = sequence_hashes(&local);
//! assert_eq!(chain[0].0, local[0].0);
//! ```

mod hash;
mod sequence;

pub use hash::{
    BLOCK_HASH_SEED, LocalBlockHash, SaltSeed, SequenceHash, block_hash, block_hashes,
    next_sequence_hash, sequence_hashes,
};
pub use sequence::{Token, TokenBlockSequence};
