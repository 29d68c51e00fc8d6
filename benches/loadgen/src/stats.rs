//! Percentiles over raw samples.
//!
//! Every sample is kept (a run has at most tens of thousands of requests), so percentiles are
//! exact. The interpolation is numpy's default (`linear`): rank `p/100 · (n − 1)`, linear between
//! the two neighbouring order statistics, which is what the peer's Python tooling reports.

/// Exact percentile `p` (0–100) of `samples` with linear interpolation; `None` when empty.
///
/// `samples` need not be sorted; NaNs are not expected (durations never are).
pub fn percentile(samples: &[f64], p: f64) -> Option<f64> {
    let mut sorted = samples.to_vec();
    sorted.sort_by(f64::total_cmp);
    percentile_sorted(&sorted, p)
}

/// Like [`percentile`] for an already sorted slice (ascending).
pub fn percentile_sorted(sorted: &[f64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let rank = (p.clamp(0.0, 100.0) / 100.0) * last as f64;
    let lower = rank.floor() as usize;
    let upper = rank.ceil() as usize;
    let frac = rank - lower as f64;
    Some(sorted[lower] + (sorted[upper] - sorted[lower]) * frac)
}

/// p50 and p99 of a sample set, in the samples' unit.
#[derive(Debug, Clone, Copy, Default, PartialEq, serde::Serialize)]
pub struct Quantiles {
    /// Median.
    pub p50: f64,
    /// 99th percentile.
    pub p99: f64,
    /// Arithmetic mean.
    pub mean: f64,
}

impl Quantiles {
    /// Quantiles of `samples`; `None` when empty.
    pub fn of(samples: &[f64]) -> Option<Self> {
        let mut sorted = samples.to_vec();
        sorted.sort_by(f64::total_cmp);
        Some(Self {
            p50: percentile_sorted(&sorted, 50.0)?,
            p99: percentile_sorted(&sorted, 99.0)?,
            mean: sorted.iter().sum::<f64>() / sorted.len() as f64,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::{Quantiles, percentile};
    use proptest::prelude::*;

    #[test]
    fn matches_numpy_linear() {
        let s = [1.0, 2.0, 3.0, 4.0];
        assert_eq!(percentile(&s, 50.0), Some(2.5));
        assert_eq!(percentile(&s, 0.0), Some(1.0));
        assert_eq!(percentile(&s, 100.0), Some(4.0));
        // numpy.percentile([1,2,3,4], 99) == 3.97
        assert!((percentile(&s, 99.0).unwrap_or(0.0) - 3.97).abs() < 1e-12);
        let hundred: Vec<f64> = (1..=100).map(f64::from).collect();
        // numpy.percentile(range(1,101), 99) == 99.01
        assert!((percentile(&hundred, 99.0).unwrap_or(0.0) - 99.01).abs() < 1e-9);
        assert_eq!(percentile(&[], 50.0), None);
        assert_eq!(percentile(&[5.0], 99.0), Some(5.0));
    }

    #[test]
    fn quantiles_unsorted_input() {
        let q = Quantiles::of(&[3.0, 1.0, 2.0]).unwrap_or_default();
        assert!((q.p50 - 2.0).abs() < 1e-12);
        assert!((q.mean - 2.0).abs() < 1e-12);
        assert_eq!(Quantiles::of(&[]), None);
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn percentile_is_bounded_and_monotonic(
            samples in proptest::collection::vec(0.0f64..1e6, 1..50),
            a in 0.0f64..100.0,
            b in 0.0f64..100.0,
        ) {
            let (lo, hi) = if a <= b { (a, b) } else { (b, a) };
            let min = samples.iter().copied().fold(f64::INFINITY, f64::min);
            let max = samples.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let plo = percentile(&samples, lo).unwrap_or(f64::NAN);
            let phi = percentile(&samples, hi).unwrap_or(f64::NAN);
            prop_assert!(plo >= min && phi <= max);
            prop_assert!(plo <= phi);
        }
    }
}
