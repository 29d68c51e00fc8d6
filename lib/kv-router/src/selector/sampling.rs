//! Picking one index from a list of costs: argmin with a random tie-break, or a temperature
//! softmax over min-max normalized costs.

use rand::Rng;

/// Pick an index of `costs` (lower is better).
///
/// - `temperature <= 0`: the minimum; among equal minima each is equally likely.
/// - `temperature > 0`: `p(i) ∝ exp(-(c_i - c_min) / ((c_max - c_min) · temperature))`;
///   when every cost is equal the choice is uniform.
///
/// Returns `None` only when `costs` is empty.
///
/// ```
/// use rand::{SeedableRng, rngs::StdRng};
/// use stator_kv_router::selector::sample_index;
///
/// let mut rng = StdRng::seed_from_u64(7);
/// assert_eq!(sample_index(&[3.0, 1.0, 2.0], 0.0, &mut rng), Some(1));
/// assert!(sample_index(&[3.0, 1.0, 2.0], 1.0, &mut rng).is_some());
/// ```
pub fn sample_index<R: Rng + ?Sized>(
    costs: &[f64],
    temperature: f64,
    rng: &mut R,
) -> Option<usize> {
    if costs.is_empty() {
        return None;
    }
    if temperature > 0.0 {
        Some(softmax_index(costs, temperature, rng))
    } else {
        Some(argmin_index(costs, rng))
    }
}

/// The minimum, ties broken uniformly by reservoir sampling (one pass, no allocation).
fn argmin_index<R: Rng + ?Sized>(costs: &[f64], rng: &mut R) -> usize {
    let mut best = 0;
    let mut ties = 1u32;
    for (i, &cost) in costs.iter().enumerate().skip(1) {
        match cost.total_cmp(&costs[best]) {
            std::cmp::Ordering::Less => {
                best = i;
                ties = 1;
            }
            std::cmp::Ordering::Equal => {
                ties += 1;
                if rng.random_range(0..ties) == 0 {
                    best = i;
                }
            }
            std::cmp::Ordering::Greater => {}
        }
    }
    best
}

fn softmax_index<R: Rng + ?Sized>(costs: &[f64], temperature: f64, rng: &mut R) -> usize {
    let (min, max) = costs
        .iter()
        .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &c| {
            (lo.min(c), hi.max(c))
        });
    let range = max - min;
    if !(range.is_finite() && range > 0.0) {
        return rng.random_range(0..costs.len());
    }
    let scale = range * temperature;
    // Shifting by the minimum keeps every exponent <= 0, so the largest weight is exactly 1
    // and nothing overflows.
    let weights: Vec<f64> = costs.iter().map(|&c| (-(c - min) / scale).exp()).collect();
    let total: f64 = weights.iter().sum();
    let mut point = rng.random::<f64>() * total;
    for (i, &w) in weights.iter().enumerate() {
        if point < w {
            return i;
        }
        point -= w;
    }
    // Rounding can leave `point` a hair above the last weight: fall back to a minimum.
    weights
        .iter()
        .rposition(|&w| w >= 1.0)
        .unwrap_or(costs.len() - 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::{SeedableRng, rngs::StdRng};

    #[test]
    fn empty_has_no_choice() {
        let mut rng = StdRng::seed_from_u64(1);
        assert_eq!(sample_index(&[], 0.0, &mut rng), None);
        assert_eq!(sample_index(&[], 1.0, &mut rng), None);
    }

    #[test]
    fn argmin_ties_are_spread() {
        let mut rng = StdRng::seed_from_u64(2);
        let mut seen = [0u32; 4];
        for _ in 0..400 {
            let i = sample_index(&[2.0, 1.0, 5.0, 1.0], 0.0, &mut rng).unwrap();
            seen[i] += 1;
        }
        assert_eq!(seen[0] + seen[2], 0);
        assert!(seen[1] > 100 && seen[3] > 100, "{seen:?}");
    }

    #[test]
    fn softmax_prefers_cheaper_and_uniform_when_equal() {
        let mut rng = StdRng::seed_from_u64(3);
        let mut seen = [0u32; 2];
        for _ in 0..1000 {
            seen[sample_index(&[0.0, 10.0], 0.5, &mut rng).unwrap()] += 1;
        }
        // p(1) = e^-2 / (1 + e^-2) ≈ 0.12
        assert!(seen[0] > 800 && seen[1] > 50, "{seen:?}");
        let mut equal = [0u32; 3];
        for _ in 0..900 {
            equal[sample_index(&[4.0, 4.0, 4.0], 1.0, &mut rng).unwrap()] += 1;
        }
        assert!(equal.iter().all(|&n| n > 200), "{equal:?}");
    }
}
