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
//! AVX2 does four at a time. A query's fingerprints are computed for every position up to
//! its deepest probe, so this loop is most of a deep lookup's arithmetic; with AVX2 it runs
//! four blocks per iteration (prefix sum in registers), otherwise one.

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

/// Write the running sums of `locals` (the first at salt `salt`, continuing from `sum`) into
/// `out` (as long as `locals`), one block at a time.
fn fill_scalar(out: &mut [u64], locals: &[LocalBlockHash], mut salt: u64, mut sum: u64) {
    for (o, &local) in out.iter_mut().zip(locals) {
        sum = sum.wrapping_add(mix_salted(local, salt));
        salt = salt.wrapping_add(POSITION_MUL);
        *o = sum;
    }
}

/// As [`fill_scalar`], four blocks per step where the CPU has AVX2.
fn fill(out: &mut [u64], locals: &[LocalBlockHash], salt: u64, sum: u64) {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx2") {
        // SAFETY: AVX2 is available, checked just above.
        unsafe { avx2::fill(out, locals, salt, sum) };
        return;
    }
    fill_scalar(out, locals, salt, sum);
}

#[cfg(target_arch = "x86_64")]
mod avx2 {
    use std::arch::x86_64::{
        __m256i, _mm_cvtsi128_si64, _mm256_add_epi64, _mm256_and_si256, _mm256_blend_epi32,
        _mm256_castsi256_si128, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_permute2x128_si256,
        _mm256_permute4x64_epi64, _mm256_set_epi64x, _mm256_set1_epi64x, _mm256_setzero_si256,
        _mm256_srli_epi64, _mm256_storeu_si256, _mm256_xor_si256,
    };

    use super::{LocalBlockHash, POSITION_MUL, fill_scalar};

    /// [`super::fill_scalar`] four blocks at a time.
    #[target_feature(enable = "avx2")]
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "loadu/storeu take pointers of any alignment"
    )]
    pub(super) fn fill(out: &mut [u64], locals: &[LocalBlockHash], salt: u64, sum: u64) {
        let whole = out.len().min(locals.len()) / 4 * 4;
        let mul = POSITION_MUL;
        // Lanes hold blocks 0..4 of each step; `_mm256_set_epi64x` takes the highest lane first.
        let mut salts = _mm256_set_epi64x(
            salt.wrapping_add(mul.wrapping_mul(3)) as i64,
            salt.wrapping_add(mul.wrapping_mul(2)) as i64,
            salt.wrapping_add(mul) as i64,
            salt as i64,
        );
        let step = _mm256_set1_epi64x(mul.wrapping_mul(4) as i64);
        let zero = _mm256_setzero_si256();
        let even = _mm256_set1_epi64x(!1);
        let mut running = _mm256_set1_epi64x(sum as i64);
        for (sums, blocks) in out[..whole]
            .chunks_exact_mut(4)
            .zip(locals[..whole].chunks_exact(4))
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
            // Inclusive prefix sum over the four lanes: add the lanes shifted up by one, then
            // by two.
            let up1 = _mm256_blend_epi32::<0b0000_0011>(
                _mm256_permute4x64_epi64::<0b10_01_00_00>(mixed),
                zero,
            );
            let once = _mm256_add_epi64(mixed, up1);
            let prefix = _mm256_add_epi64(once, _mm256_permute2x128_si256::<0x08>(once, once));
            // SAFETY: `sums` is four `u64`, 32 writable bytes; `storeu` has no alignment
            // requirement.
            unsafe {
                _mm256_storeu_si256(
                    sums.as_mut_ptr().cast::<__m256i>(),
                    _mm256_add_epi64(prefix, running),
                );
            }
            // Carry the step's total (its last lane, broadcast) rather than the stored sums'
            // last lane, so the loop-carried chain is one add, not an add and a lane-crossing
            // permute.
            running = _mm256_add_epi64(running, _mm256_permute4x64_epi64::<0b11_11_11_11>(prefix));
            salts = _mm256_add_epi64(salts, step);
        }
        let sum = _mm_cvtsi128_si64(_mm256_castsi256_si128(running)) as u64;
        let salt = salt.wrapping_add(mul.wrapping_mul(whole as u64));
        fill_scalar(&mut out[whole..], &locals[whole..], salt, sum);
    }
}

/// Lazily extended fingerprints of one query's prefixes.
#[derive(Debug, Default)]
pub(crate) struct QueryFingerprints {
    /// Running sums; only `..valid` belong to the current query. The buffer only grows, so a
    /// query writes its sums without zero-filling them first.
    sums: Vec<u64>,
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
        let valid = self.valid;
        if valid <= position {
            if self.sums.len() <= position {
                self.sums.resize(position + 1, 0);
            }
            let sum = valid.checked_sub(1).map_or(FP_SEED, |last| self.sums[last]);
            // Positions fit in u32 because the index accepts at most `MAX_POSITIONS` of them.
            fill(
                &mut self.sums[valid..=position],
                &query[valid..=position],
                position_salt(valid as u32),
                sum,
            );
            self.valid = position + 1;
        }
        self.sums[position]
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
            locals in prop::collection::vec(any::<u64>(), 1..80),
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
            let mut scalar = vec![0; query.len()];
            fill_scalar(&mut scalar, &query, super::position_salt(0), FP_SEED);
            prop_assert_eq!(scalar, expected);
        }
    }
}
