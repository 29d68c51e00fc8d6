//! [`StopJail`]: holds back text that could still become a stop string.

/// What one push into the jail released.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct JailRelease {
    /// Text that can be shown now.
    pub text: String,
    /// The stop string that matched, if one did (nothing follows it).
    pub matched: Option<String>,
}

/// Withholds the tail of the generated text while it is a prefix of some stop string, and
/// cuts the text at the first stop string once one appears.
///
/// "First" is the match that *ends* earliest, then the one that starts earliest (the longer
/// string): that is the first moment a stop string is complete in the text, so the result does
/// not depend on how the text was split into pieces. Text released is never taken back.
#[derive(Clone, Debug)]
pub struct StopJail {
    stops: Vec<String>,
    include_stop_str: bool,
    held: String,
}

impl StopJail {
    /// A jail for `stops` (empty strings are ignored). With `include_stop_str`, the matched
    /// stop string is released with the text before it.
    pub fn new(stops: &[String], include_stop_str: bool) -> Self {
        Self {
            stops: stops.iter().filter(|s| !s.is_empty()).cloned().collect(),
            include_stop_str,
            held: String::new(),
        }
    }

    /// Adds text; returns what can be shown and whether a stop string matched.
    pub fn push(&mut self, text: &str) -> JailRelease {
        self.held.push_str(text);
        if let Some((start, stop)) = self.first_match() {
            let mut released = std::mem::take(&mut self.held);
            released.truncate(if self.include_stop_str {
                start + stop.len()
            } else {
                start
            });
            return JailRelease {
                text: released,
                matched: Some(stop),
            };
        }
        let keep = self.longest_partial_suffix();
        let rest = self.held.split_off(self.held.len() - keep);
        JailRelease {
            text: std::mem::replace(&mut self.held, rest),
            matched: None,
        }
    }

    /// Whether the jail has no stop string, so it never holds text back.
    pub fn is_empty(&self) -> bool {
        self.stops.is_empty()
    }

    /// Releases everything held (the text ended without completing a stop string).
    pub fn release(&mut self) -> String {
        std::mem::take(&mut self.held)
    }

    /// The text currently held back.
    pub fn held(&self) -> &str {
        &self.held
    }

    /// `(start, stop)` of the match that ends first, ties going to the earliest start.
    fn first_match(&self) -> Option<(usize, String)> {
        self.stops
            .iter()
            .filter_map(|stop| self.held.find(stop.as_str()).map(|start| (start, stop)))
            .min_by_key(|(start, stop)| (start + stop.len(), *start))
            .map(|(start, stop)| (start, stop.clone()))
    }

    /// Length in bytes of the longest tail of `held` that is a proper prefix of a stop string.
    fn longest_partial_suffix(&self) -> usize {
        self.stops
            .iter()
            .filter_map(|stop| {
                (1..stop.len().min(self.held.len() + 1))
                    .rev()
                    .find(|&k| stop.is_char_boundary(k) && self.held.ends_with(&stop[..k]))
            })
            .max()
            .unwrap_or(0)
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn stops(list: &[&str]) -> Vec<String> {
        list.iter().map(|s| (*s).to_owned()).collect()
    }

    #[test]
    fn partial_match_is_held_then_released() {
        let mut jail = StopJail::new(&stops(&["STOP"]), false);
        assert_eq!(jail.push("hello ST").text, "hello ");
        assert_eq!(jail.held(), "ST");
        assert_eq!(jail.push("AR").text, "STAR");
        assert_eq!(jail.push("S").text, "");
        assert_eq!(jail.release(), "S");
    }

    #[test]
    fn match_cuts_the_text_with_or_without_the_stop_string() {
        let mut jail = StopJail::new(&stops(&["STOP"]), false);
        assert_eq!(jail.push("a ST").text, "a ");
        let release = jail.push("OP and more");
        assert_eq!(release.text, "");
        assert_eq!(release.matched.as_deref(), Some("STOP"));

        let mut jail = StopJail::new(&stops(&["STOP"]), true);
        let release = jail.push("a STOP b");
        assert_eq!(release.text, "a STOP");
    }

    #[test]
    fn earliest_ending_match_wins() {
        let mut jail = StopJail::new(&stops(&["abc", "b"]), false);
        let release = jail.push("xabc");
        assert_eq!(
            (release.text.as_str(), release.matched.as_deref()),
            ("xa", Some("b"))
        );
        let mut jail = StopJail::new(&stops(&["b", "ab"]), false);
        let release = jail.push("xab");
        assert_eq!(
            (release.text.as_str(), release.matched.as_deref()),
            ("x", Some("ab"))
        );
    }

    #[test]
    fn multi_byte_stop_prefixes_respect_char_boundaries() {
        let mut jail = StopJail::new(&stops(&["é!"]), false);
        assert_eq!(jail.push("café").text, "caf");
        assert_eq!(jail.push("?").text, "é?");
    }

    /// The reference: the whole text cut at the earliest-ending stop-string occurrence.
    fn reference(text: &str, stops: &[String], include: bool) -> (String, Option<String>) {
        let found = stops
            .iter()
            .filter(|s| !s.is_empty())
            .filter_map(|s| {
                text.find(s.as_str())
                    .map(|start| (start + s.len(), start, s))
            })
            .min();
        match found {
            Some((end, start, stop)) => (
                text[..if include { end } else { start }].to_owned(),
                Some(stop.clone()),
            ),
            None => (text.to_owned(), None),
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        #[test]
        fn chunked_pushes_equal_the_reference(
            text in "[ab é😀]{0,24}",
            stop_list in prop::collection::vec("[ab é😀]{1,3}", 0..3),
            cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..6),
            include in any::<bool>(),
        ) {
            let mut bounds: Vec<usize> = cuts.iter().map(|c| c.index(text.len() + 1)).collect();
            bounds.retain(|&b| text.is_char_boundary(b));
            bounds.extend([0, text.len()]);
            bounds.sort_unstable();
            bounds.dedup();

            let mut jail = StopJail::new(&stop_list, include);
            let mut shown = String::new();
            let mut matched = None;
            for pair in bounds.windows(2) {
                let release = jail.push(&text[pair[0]..pair[1]]);
                shown.push_str(&release.text);
                if release.matched.is_some() {
                    matched = release.matched;
                    break;
                }
            }
            if matched.is_none() {
                shown.push_str(&jail.release());
            }
            let (expected, expected_stop) = reference(&text, &stop_list, include);
            prop_assert_eq!(shown, expected);
            prop_assert_eq!(matched, expected_stop);
        }
    }
}
