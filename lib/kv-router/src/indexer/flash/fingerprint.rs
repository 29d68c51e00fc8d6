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
//! The mix of a block is `2·(y ^ lo32(y)·hi32(y))` with `y = local ^ salt(position)`: the product
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
    half_mix(local, position_salt(position)) << 1
}

/// The fingerprint of the block `local` at `position` whose parent's fingerprint is
/// `parent` (0, unknown, stays unknown).
#[inline]
pub(crate) fn child(parent: u64, local: LocalBlockHash, position: u32) -> u64 {
    if parent == 0 {
        0
    } else {
        parent.wrapping_add(mix(local, position))
    }
}

/// The per-position constant of [`mix`]; consecutive positions differ by `POSITION_MUL`, so a
/// loop over positions keeps it with one add.
#[inline]
fn position_salt(position: u32) -> u64 {
    u64::from(position)
        .wrapping_add(1)
        .wrapping_mul(POSITION_MUL)
}

/// Half of [`mix`] (any `u64`): a query sums these and doubles the sum once per probe
/// (doubling distributes over wrapping sums), which keeps the per-block loop one operation
/// shorter.
#[inline]
fn half_mix(local: LocalBlockHash, salt: u64) -> u64 {
    let y = local.0 ^ salt;
    ((y & 0xFFFF_FFFF) * (y >> 32)) ^ y
}

/// Lane sums of four positions: lane `j` of group `g` is the sum of the half mixes of
/// positions `4k + j` for every `k <= g` (positions past the query's end add nothing).
type Lanes = [u64; 4];

/// Extend `out` (one entry per group, as long as `locals.div_ceil(4)`) from `prev`, the lanes
/// of the group before, the first group at salt `salt`; one block at a time.
fn fill_scalar(out: &mut [Lanes], locals: &[LocalBlockHash], mut salt: u64, mut prev: Lanes) {
    for (lanes, blocks) in out.iter_mut().zip(locals.chunks(4)) {
        for (j, &local) in blocks.iter().enumerate() {
            prev[j] = prev[j].wrapping_add(half_mix(local, salt));
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
        __m256i, _mm256_add_epi64, _mm256_loadu_si256, _mm256_mul_epu32, _mm256_set_epi64x,
        _mm256_set1_epi64x, _mm256_srli_epi64, _mm256_storeu_si256, _mm256_xor_si256,
    };

    use super::{Lanes, LocalBlockHash, POSITION_MUL, fill_scalar};

    /// The half mixes of four blocks.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "loadu takes pointers of any alignment"
    )]
    fn half_mix4(blocks: &[LocalBlockHash], salts: __m256i) -> __m256i {
        debug_assert!(blocks.len() >= 4);
        // SAFETY: `blocks` holds at least four `LocalBlockHash` (`u64` newtypes), 32 readable
        // bytes; `loadu` has no alignment requirement.
        let raw = unsafe { _mm256_loadu_si256(blocks.as_ptr().cast::<__m256i>()) };
        let salted = _mm256_xor_si256(raw, salts);
        _mm256_xor_si256(
            _mm256_mul_epu32(salted, _mm256_srli_epi64::<32>(salted)),
            salted,
        )
    }

    /// Store `acc` into `lanes`.
    #[inline]
    #[target_feature(enable = "avx2")]
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "storeu takes pointers of any alignment"
    )]
    fn store(lanes: &mut Lanes, acc: __m256i) {
        // SAFETY: `lanes` is four `u64`, 32 writable bytes; `storeu` has no alignment
        // requirement.
        unsafe { _mm256_storeu_si256(lanes.as_mut_ptr().cast::<__m256i>(), acc) };
    }

    /// [`super::fill_scalar`] four blocks (one group) per vector: the lanes are the vector's
    /// lanes, so a group costs one vertical add and no prefix sum across lanes; two groups
    /// per iteration.
    #[target_feature(enable = "avx2")]
    #[expect(
        clippy::cast_ptr_alignment,
        reason = "loadu takes pointers of any alignment"
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
        let step2 = _mm256_set1_epi64x(mul.wrapping_mul(8) as i64);
        // SAFETY: `prev` is four `u64`, 32 readable bytes; `loadu` has no alignment requirement.
        let mut acc = unsafe { _mm256_loadu_si256(prev.as_ptr().cast::<__m256i>()) };
        let pairs = whole / 2;
        for (lanes, blocks) in out[..pairs * 2]
            .chunks_exact_mut(2)
            .zip(locals[..pairs * 8].chunks_exact(8))
        {
            let low = half_mix4(&blocks[..4], salts);
            let high = half_mix4(&blocks[4..], _mm256_add_epi64(salts, step));
            acc = _mm256_add_epi64(acc, low);
            store(&mut lanes[0], acc);
            acc = _mm256_add_epi64(acc, high);
            store(&mut lanes[1], acc);
            salts = _mm256_add_epi64(salts, step2);
        }
        if whole % 2 == 1 {
            let g = whole - 1;
            acc = _mm256_add_epi64(acc, half_mix4(&locals[g * 4..], salts));
            store(&mut out[g], acc);
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
        if self.valid <= group {
            self.extend(query, group);
        }
        let here = self.groups[group];
        let before = group.checked_sub(1).map_or([0; 4], |g| self.groups[g]);
        let lane = position % 4;
        let mut half = 0u64;
        for j in 0..4 {
            half = half.wrapping_add(if j <= lane { here[j] } else { before[j] });
        }
        FP_SEED.wrapping_add(half << 1)
    }

    /// Compute the groups up to `group` (and at least 64 blocks further than before, as a
    /// probe deeper than the last goes on from there anyway), or to the query's end.
    #[inline(never)]
    fn extend(&mut self, query: &[LocalBlockHash], group: usize) {
        let valid = self.valid;
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
                let half = (0..4).fold(0u64, |s, j| {
                    let lanes = if j <= lane { scalar[g] } else if g > 0 { scalar[g - 1] } else { [0; 4] };
                    s.wrapping_add(lanes[j])
                });
                prop_assert_eq!(FP_SEED.wrapping_add(half << 1), e);
            }
        }
    }
}
