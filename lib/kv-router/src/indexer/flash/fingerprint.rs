//! Prefix fingerprints: the flash index's cheap stand-in for the sequence hash.
//!
//! Verifying a stored block against a query needs an identity of the query's whole prefix at
//! that position. The wire's sequence hash is a serial xxh3 chain (one dependent hash per
//! block, ~4 ns each), which would make every deep lookup cost O(depth) hash latency. The
//! fingerprint is instead a running *sum* of independent per-block mixes,
//! `fp[p] = Σ_{i ≤ p} mix(local[i], i)`: the mixes pipeline (no dependency between blocks)
//! and only the 1-cycle add is serial. The index computes the same fingerprint for each block
//! it stores under a known parent, so equal prefixes give equal fingerprints; unequal ones
//! collide with probability about 2^-63.

use stator_tokens::LocalBlockHash;

const POSITION_MUL: u64 = 0x9E37_79B9_7F4A_7C15;
const MIX_MUL: u64 = 0xD6E8_FEB8_6659_FD93;

/// The running sum's contribution of the block `local` at `position`.
#[inline]
pub(crate) fn mix(local: LocalBlockHash, position: u32) -> u64 {
    mix_salted(local, position_salt(position))
}

/// The per-position constant of [`mix`]; consecutive positions differ by `POSITION_MUL`, so a
/// loop over positions keeps it with one add.
#[inline]
fn position_salt(position: u32) -> u64 {
    u64::from(position)
        .wrapping_add(1)
        .wrapping_mul(POSITION_MUL)
}

#[inline]
fn mix_salted(local: LocalBlockHash, salt: u64) -> u64 {
    let m = u128::from(local.0 ^ salt) * u128::from(MIX_MUL);
    (m as u64) ^ ((m >> 64) as u64)
}

/// The value stored in (and compared against) an index entry for a running sum; never 0,
/// which marks "fingerprint unknown".
#[inline]
pub(crate) fn tag(sum: u64) -> u64 {
    sum | 1
}

/// Lazily extended fingerprints of one query's prefixes.
#[derive(Debug, Default)]
pub(crate) struct QueryFingerprints {
    sums: Vec<u64>,
}

impl QueryFingerprints {
    /// Forget the previous query, keeping the buffer.
    pub(crate) fn reset(&mut self) {
        self.sums.clear();
    }

    /// The tag of the query's prefix `query[..=position]`.
    #[inline]
    pub(crate) fn tag_at(&mut self, query: &[LocalBlockHash], position: usize) -> u64 {
        let len = self.sums.len();
        if len <= position {
            // One exact-size extend (no per-block capacity check); positions fit in u32
            // because the index accepts at most `MAX_POSITIONS` of them.
            let mut sum = self.sums.last().copied().unwrap_or(0);
            let mut salt = position_salt(len as u32);
            self.sums.extend(query[len..=position].iter().map(|&local| {
                sum = sum.wrapping_add(mix_salted(local, salt));
                salt = salt.wrapping_add(POSITION_MUL);
                sum
            }));
        }
        tag(self.sums[position])
    }
}
