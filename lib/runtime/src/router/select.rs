//! Instance selection policies, as pure functions of the candidates and their load.

use std::str::FromStr;

use crate::names::InstanceId;

/// How a [`PushRouter`](super::PushRouter) picks an instance.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RouterMode {
    /// Cycle through the available instances.
    #[default]
    RoundRobin,
    /// Uniformly at random.
    Random,
    /// Two random candidates; the one with fewer requests in flight.
    PowerOfTwo,
    /// The instance with the fewest requests in flight (lowest id on ties).
    LeastLoaded,
    /// Always this instance.
    Direct(InstanceId),
}

/// The text was not a router mode name.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown router mode {0:?} (expected round-robin, random, power-of-two or least-loaded)")]
pub struct UnknownRouterMode(pub String);

impl FromStr for RouterMode {
    type Err = UnknownRouterMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().replace('_', "-").as_str() {
            "round-robin" => Ok(Self::RoundRobin),
            "random" => Ok(Self::Random),
            "power-of-two" | "p2c" => Ok(Self::PowerOfTwo),
            "least-loaded" => Ok(Self::LeastLoaded),
            _ => Err(UnknownRouterMode(s.to_owned())),
        }
    }
}

/// Picks the index of one candidate.
///
/// `load(i)` is candidate `i`'s in-flight count, `counter` the round-robin position and
/// `random(n)` a uniform draw from `0..n`. Returns `None` when there is no candidate (or the
/// direct target is not among them).
pub(crate) fn pick(
    mode: RouterMode,
    ids: &[InstanceId],
    load: impl Fn(usize) -> usize,
    counter: usize,
    mut random: impl FnMut(usize) -> usize,
) -> Option<usize> {
    let n = ids.len();
    if n == 0 {
        return None;
    }
    match mode {
        RouterMode::RoundRobin => Some(counter % n),
        RouterMode::Random => Some(random(n)),
        RouterMode::PowerOfTwo => {
            if n == 1 {
                return Some(0);
            }
            let a = random(n);
            let b = (a + 1 + random(n - 1)) % n;
            Some(if load(b) < load(a) { b } else { a })
        }
        RouterMode::LeastLoaded => (0..n).min_by_key(|&i| (load(i), ids[i])),
        RouterMode::Direct(id) => ids.iter().position(|&x| x == id),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn ids(n: usize) -> Vec<InstanceId> {
        (0..n as u64).map(InstanceId).collect()
    }

    #[test]
    fn round_robin_cycles() {
        let ids = ids(3);
        let picks: Vec<_> = (0..6)
            .map(|c| pick(RouterMode::RoundRobin, &ids, |_| 0, c, |_| 0))
            .collect();
        assert_eq!(picks, [0, 1, 2, 0, 1, 2].map(Some));
    }

    #[test]
    fn direct_finds_or_misses() {
        let ids = ids(3);
        assert_eq!(
            pick(RouterMode::Direct(InstanceId(2)), &ids, |_| 0, 0, |_| 0),
            Some(2)
        );
        assert_eq!(
            pick(RouterMode::Direct(InstanceId(9)), &ids, |_| 0, 0, |_| 0),
            None
        );
        assert_eq!(pick(RouterMode::Random, &[], |_| 0, 0, |_| 0), None);
    }

    #[test]
    fn modes_parse() {
        assert_eq!("power_of_two".parse(), Ok(RouterMode::PowerOfTwo));
        assert_eq!("least-loaded".parse(), Ok(RouterMode::LeastLoaded));
        assert!("kv".parse::<RouterMode>().is_err());
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn least_loaded_is_a_minimum(loads in proptest::collection::vec(0usize..10, 1..16)) {
            let ids = ids(loads.len());
            let i = pick(RouterMode::LeastLoaded, &ids, |i| loads[i], 0, |_| 0).expect("non-empty");
            prop_assert_eq!(loads[i], *loads.iter().min().expect("non-empty"));
        }

        #[test]
        fn power_of_two_never_picks_the_busier_of_its_pair(
            loads in proptest::collection::vec(0usize..10, 2..16),
            draws in proptest::collection::vec(any::<usize>(), 2),
        ) {
            let ids = ids(loads.len());
            let mut d = draws.iter().copied();
            let mut seen = Vec::new();
            let i = pick(RouterMode::PowerOfTwo, &ids, |i| loads[i], 0, |n| {
                let v = d.next().unwrap_or(0) % n;
                seen.push(v);
                v
            }).expect("non-empty");
            let a = seen[0];
            let b = (a + 1 + seen[1]) % loads.len();
            prop_assert_ne!(a, b);
            prop_assert!(i == a || i == b);
            prop_assert_eq!(loads[i], loads[a].min(loads[b]));
        }

        #[test]
        fn every_pick_is_in_range(n in 1usize..32, counter: usize, r in any::<usize>()) {
            let ids = ids(n);
            for mode in [RouterMode::RoundRobin, RouterMode::Random, RouterMode::PowerOfTwo, RouterMode::LeastLoaded] {
                let i = pick(mode, &ids, |i| i, counter, |m| r % m).expect("non-empty");
                prop_assert!(i < n);
            }
        }
    }
}
