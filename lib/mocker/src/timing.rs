//! The polynomial timing model of Dynamo's mocker (vLLM flavour).

use std::time::Duration;

/// Milliseconds of a prefill pass over `tokens` new prompt tokens (before speedup).
pub fn prefill_ms(tokens: usize) -> f64 {
    let t = tokens as f64;
    4.209_989e-7 * t * t + 1.518_344e-2 * t + 16.501_42
}

/// Milliseconds of a decode pass at KV occupancy `usage` (context tokens of the decoding
/// sequences over total KV tokens, clamped to `0..=1`), before speedup.
pub fn decode_ms(usage: f64) -> f64 {
    let u = usage.clamp(0.0, 1.0);
    (-25.74 * u * u + 54.01 * u + 5.74).max(1.0)
}

/// Duration of one forward pass: `prefill_ms(T)/s + decode_ms(u)/(s·d)`, where the prefill
/// term counts only when the pass has prefill tokens and the decode term only when it has
/// decoding sequences. A `speedup_ratio` of 0 (or anything not positive) means no delay; a
/// `decode_speedup_ratio` that is not positive counts as 1.
pub fn pass_duration(
    prefill_tokens: usize,
    decode_usage: Option<f64>,
    speedup_ratio: f64,
    decode_speedup_ratio: f64,
) -> Duration {
    if speedup_ratio <= 0.0 || !speedup_ratio.is_finite() {
        return Duration::ZERO;
    }
    let mut ms = 0.0;
    if prefill_tokens > 0 {
        ms += prefill_ms(prefill_tokens) / speedup_ratio;
    }
    if let Some(usage) = decode_usage {
        let decode_speedup = if decode_speedup_ratio > 0.0 {
            decode_speedup_ratio
        } else {
            1.0
        };
        ms += decode_ms(usage) / (speedup_ratio * decode_speedup);
    }
    Duration::from_secs_f64(ms / 1000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formulas_match_the_reference() {
        assert!((prefill_ms(0) - 16.501_42).abs() < 1e-9);
        assert!((prefill_ms(1000) - (0.420_998_9 + 15.183_44 + 16.501_42)).abs() < 1e-6);
        assert!((decode_ms(0.0) - 5.74).abs() < 1e-9);
        assert!((decode_ms(1.0) - (54.01 - 25.74 + 5.74)).abs() < 1e-9);
        assert!(
            (decode_ms(7.0) - decode_ms(1.0)).abs() < 1e-9,
            "usage is clamped"
        );
    }

    #[test]
    fn pass_combines_prefill_and_decode_and_honours_speedup() {
        let both = pass_duration(100, Some(0.5), 1.0, 1.0).as_secs_f64() * 1000.0;
        assert!((both - (prefill_ms(100) + decode_ms(0.5))).abs() < 1e-6);
        let fast = pass_duration(100, Some(0.5), 10.0, 2.0).as_secs_f64() * 1000.0;
        assert!((fast - (prefill_ms(100) / 10.0 + decode_ms(0.5) / 20.0)).abs() < 1e-6);
        assert_eq!(pass_duration(0, None, 1.0, 1.0), Duration::ZERO);
        assert_eq!(pass_duration(100, Some(0.5), 0.0, 1.0), Duration::ZERO);
    }
}
