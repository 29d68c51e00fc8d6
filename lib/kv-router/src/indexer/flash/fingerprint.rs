//! Prefix fingerprints: the flash index's cheap stand-in for the sequence hash.
//!
//! Verifying a stored block against a query needs an identity of the query's whole prefix at
//! that position. The wire's sequence hash is a serial xxh3 chain (one dependent hash per
//! block, ~4 ns each), which would make every deep lookup cost O(depth) hash latency. The
//! fingerprint is instead a running *sum* of independent per-block mixes,
//! `fp[p] = FP_SEED + Σ_{i ≤ p} mix(local[i], i)`: the mixes pipeline (no dependency between
//! blocks) and only the 1-cycle add is serial. The index computes the same fingerprint for each
//! block it stores under a known parent, so equal prefixes give equal fingerprints; unequal
//! ones collide with probability about 2^-63. Mixes are even and the seed is odd, so every
//! fingerprint is odd: an entry stores it as is, and the even values mark an unknown
//! fingerprint (0) and the table's vacant and deleted buckets. A block's children continue
//! from the fingerprint in its entry.
//!
//! The mix of a block is `(y ^ lo32(y)·hi32(y)) & !1` with `y = local ^ salt(position)`: the product
//! of the two halves makes it non-linear, and it is one unsigned 32×32→64 multiply, which
//! AVX2 does four at a time. A query's mixes are summed for every position up to its deepest
//! probe, so this loop is most of a deep lookup's arithmetic; it keeps four lane sums of
//! interleaved positions (one vertical add per four blocks with AVX2, no prefix sum across
//! lanes) and a probe adds up the lanes of its position.

use stator_tokens::LocalBlockHash;

const POSITION_MUL: u64 = 0x9E37_79B9_7F4A_7C15;

/// The fingerprint of the empty prefix (odd, so that every fingerprint is).
pub(crate) const FP_SEED: u64 = 1;

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
    let y = local.0 ^ salt;
    (((y & 0xFFFF_FFFF) * (y >> 32)) ^ y) & !1
}

/// Lane sums of four positions: lane `j` of group `g` is the sum of the mixes of positions
/// `4k + j` for every `k <= g` (positions past the query's end add nothing).
type Lanes = [u64; 4];

/// Extend `out` (one entry per group, as long as `locals.div_ceil(4)`) from `prev`, the lanes
/// of the group before, the first group at salt `salt`; one block at a time.
fn fill_scalar(out: &mut [Lanes], locals: &[LocalBlockHash], mut salt: u64, mut prev: Lanes) {
    for (lanes, blocks) in out.iter_mut().zip(locals.chunks(4)) {
        for (j, &local) in blocks.iter().enumerate() {
            prev[j] = prev[j].wrapping_add(mix_salted(local, salt));
            salt = salt.wrapping_add(POSITION_MUL);
        }
        *lanes = prev;
    }
}

/// As [`fill_scalar`], four blocks per step where the CPU has AVX2.
fn fill(out: &mut [Lanes], locals: &[LocalBlockHash], salt: u64, prev: Lanes) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available, checked just above.
        unsafe { avx2::fill(out, locals, salt, prev) };
        return;
    }
    fill_scalar(out, locals, salt, prev);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm256_add_epi64, _mm256_and_si256, _mm256_loadu_si256, _mm256_mul_epu32,
        _mm256_set_epi64x, _mm256_set1_epi64x, _mm256_srli_epi64, _mm256_storeu_si256,
        _mm256_xor_si256,
    };

    use super::{Lanes, LocalBlockHash, POSITION_MUL, fill_scalar};

    /// [`super::fill_scalar`] four blocks (one group) at a time: the lanes are the vector's
    /// lanes, so a group costs one vertical add and no prefix sum across lanes.
    #[target_feature(enable = "avx2")]
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "loadu/storeu take pointers of any alignment"
    )]
    pub(super) fn fill(out: &mut [Lanes], locals: &[LocalBlockHash], salt: u64, prev: Lanes) {
        let whole = out.len().min(locals.len() / 4);
        let mul = POSITION_MUL;
        // Lanes hold blocks 0..4 of each group; `_mm256_set_epi64x` takes the highest lane first.
        let mut salts = _mm256_set_epi64x(
            salt.wrapping_add(mul.wrapping_mul(3)) as i64,
            salt.wrapping_add(mul.wrapping_mul(2)) as i64,
            salt.wrapping_add(mul) as i64,
            salt as i64,
        );
        let step = _mm256_set1_epi64x(mul.wrapping_mul(4) as i64);
        let even = _mm256_set1_epi64x(!1);
        // SAFETY: `prev` is four `u64`, 32 readable bytes; `loadu` has no alignment requirement.
        let mut acc = unsafe { _mm256_loadu_si256(prev.as_ptr().cast::<__m256i>()) };
        for (lanes, blocks) in out[..whole]
            .iter_mut()
            .zip(locals[..whole * 4].chunks_exact(4))
        {
            // SAFETY: `blocks` is four `LocalBlockHash` (`u64` newtypes), 32 readable bytes;
            // `loadu` has no alignment requirement.
            let raw = unsafe { _mm256_loadu_si256(blocks.as_ptr().cast::<__m256i>()) };
            let salted = _mm256_xor_si256(raw, salts);
            let mixed = _mm256_and_si256(
                _mm256_xor_si256(
                    _mm256_mul_epu32(salted, _mm256_srli_epi64::<32>(salted)),
                    salted,
                ),
                even,
            );
            acc = _mm256_add_epi64(acc, mixed);
            // SAFETY: `lanes` is four `u64`, 32 writable bytes; `storeu` has no alignment
            // requirement.
            unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), acc) };
            salts = _mm256_add_epi64(salts, step);
        }
        let Some(last) = whole.checked_sub(1).map(|g| out[g]) else {
            fill_scalar(out, locals, salt, prev);
            return;
        };
        let salt = salt.wrapping_add(mul.wrapping_mul(4 * whole as u64));
        fill_scalar(&mut out[whole..], &locals[whole * 4..], salt, last);
    }
}

/// Lazily extended fingerprints of one query's prefixes.
///
/// Kept as per-lane sums of four interleaved positions (see [`Lanes`]), extended a group at a
/// time up to the deepest probe; a probe adds up its position's lanes. This keeps the loop
/// over every block of the query (most of a deep lookup's arithmetic) free of any dependency
/// across lanes.
#[derive(Debug, Default)]
pub(crate) struct QueryFingerprints {
    /// Lane sums per group; only `..valid` belong to the current query. The buffer only
    /// grows, so a query writes its groups without zero-filling them first.
    groups: Vec<Lanes>,
    valid: usize,
}

impl QueryFingerprints {
    /// Forget the previous query, keeping the buffer.
    pub(crate) fn reset(&mut self) {
        self.valid = 0;
    }

    /// The fingerprint of the query's prefix `query[..=position]`.
    #[inline]
    pub(crate) fn at(&mut self, query: &[LocalBlockHash], position: usize) -> u64 {
        let group = position / 4;
        let valid = self.valid;
        if valid <= group {
            // Extend to a whole group or to the query's end, and at least 64 blocks at a time
            // (a probe deeper than the last goes on from there anyway).
            let end_group = (group + 1).max(valid + 16).min(query.len().div_ceil(4));
            if self.groups.len() < end_group {
                self.groups.resize(end_group, [0; 4]);
            }
            let prev = valid.checked_sub(1).map_or([0; 4], |g| self.groups[g]);
            let first = valid * 4;
            // Positions fit in u32 because the index accepts at most `MAX_POSITIONS` of them.
            fill(
                &mut self.groups[valid..end_group],
                &query[first..(end_group * 4).min(query.len())],
                position_salt(first as u32),
                prev,
            );
            self.valid = end_group;
        }
        let here = self.groups[group];
        let before = group.checked_sub(1).map_or([0; 4], |g| self.groups[g]);
        let lane = position % 4;
        let mut sum = FP_SEED;
        for j in 0..4 {
            sum = sum.wrapping_add(if j <= lane { here[j] } else { before[j] });
        }
        sum
    }
}

#[cfg(test)]
mod tests {
    use super::{FP_SEED, QueryFingerprints, fill_scalar, mix};
    use proptest::prelude::*;
    use stator_tokens::LocalBlockHash;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        /// Whatever path computes them, the query's fingerprints are the running sums of
        /// [`mix`], extended in any order of probes.
        #[test]
        fn query_fingerprints_are_running_sums_of_mix(
            locals in prop::collection::vec(any::<u64>(), 1..200),
            probes in prop::collection::vec(any::<usize>(), 1..8),
        ) {
            let query: Vec<LocalBlockHash> = locals.into_iter().map(LocalBlockHash).collect();
            let mut expected = Vec::new();
            let mut sum = FP_SEED;
            for (p, &l) in query.iter().enumerate() {
                sum = sum.wrapping_add(mix(l, p as u32));
                expected.push(sum);
            }
            let mut fps = QueryFingerprints::default();
            // A longer query first, so that this one reuses a buffer holding stale sums.
            let longer: Vec<LocalBlockHash> =
                query.iter().chain(query.iter()).copied().rev().collect();
            fps.at(&longer, longer.len() - 1);
            fps.reset();
            for probe in probes {
                let p = probe % query.len();
                prop_assert_eq!(fps.at(&query, p), expected[p]);
                prop_assert_eq!(expected[p] % 2, 1);
            }
            let mut scalar = vec![[0; 4]; query.len().div_ceil(4)];
            fill_scalar(&mut scalar, &query, super::position_salt(0), [0; 4]);
            for (p, &e) in expected.iter().enumerate() {
                let (g, lane) = (p / 4, p % 4);
                let sum = (0..4).fold(FP_SEED, |s, j| {
                    let lanes = if j <= lane { scalar[g] } else if g > 0 { scalar[g - 1] } else { [0; 4] };
                    s.wrapping_add(lanes[j])
                });
                prop_assert_eq!(sum, e);
            }
        }
    }
}
