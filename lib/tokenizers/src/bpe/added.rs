//! Added tokens (`added_tokens` of tokenizer.json): matched in the text before
//! pre-tokenization, with their `single_word`, `lstrip`, `rstrip` and `normalized` flags, the
//! way Hugging Face's `AddedVocabulary` does it.

use std::sync::LazyLock;

use aho_corasick::{AhoCorasick, MatchKind};
use regex::Regex;

use super::normalize::Normalizer;

/// One added token's matching flags.
#[derive(Debug, Clone)]
pub(crate) struct AddedToken {
    /// Its id.
    pub(crate) id: u32,
    /// Its text.
    pub(crate) content: String,
    /// Only matches when not inside a word.
    pub(crate) single_word: bool,
    /// Swallows the whitespace on its left.
    pub(crate) lstrip: bool,
    /// Swallows the whitespace on its right.
    pub(crate) rstrip: bool,
    /// Matched against the normalized text (otherwise against the raw text).
    pub(crate) normalized: bool,
}

/// A piece of text after added-token matching.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Piece<'t> {
    /// Text for the normalizer / pre-tokenizer.
    Text(&'t str),
    /// An added token.
    Token(u32),
}

/// The tokens of one matching pass (raw or normalized) and their automaton.
struct Matcher {
    automaton: AhoCorasick,
    tokens: Vec<AddedToken>,
}

static STARTS_WITH_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\w").expect("valid pattern"));
static ENDS_WITH_WORD: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\w$").expect("valid pattern"));
static SPACES_AT_START: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"^\s*").expect("valid pattern"));
static SPACES_AT_END: LazyLock<Regex> =
    LazyLock::new(|| Regex::new(r"\s*$").expect("valid pattern"));

impl Matcher {
    fn new(tokens: Vec<AddedToken>, patterns: &[String]) -> Result<Self, String> {
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(patterns)
            .map_err(|e| format!("added tokens: {e}"))?;
        Ok(Self { automaton, tokens })
    }

    /// Cuts `sentence` into text and added tokens.
    fn split<'t>(&self, sentence: &'t str, out: &mut impl FnMut(Piece<'t>)) {
        if self.tokens.is_empty() {
            out(Piece::Text(sentence));
            return;
        }
        let mut start_offset = 0;
        for found in self.automaton.find_iter(sentence) {
            let (mut start, mut stop) = (found.start(), found.end());
            let token = &self.tokens[found.pattern().as_usize()];
            if token.single_word {
                let start_space = start == 0 || !ENDS_WITH_WORD.is_match(&sentence[..start]);
                let stop_space =
                    stop == sentence.len() || !STARTS_WITH_WORD.is_match(&sentence[stop..]);
                if !start_space || !stop_space {
                    continue;
                }
            }
            if token.lstrip {
                let spaces = SPACES_AT_END
                    .find(&sentence[..start])
                    .map_or(start, |m| m.start());
                start = spaces.max(start_offset);
            }
            if token.rstrip {
                stop += SPACES_AT_START
                    .find(&sentence[stop..])
                    .map_or(0, |m| m.end());
            }
            if start_offset < start {
                out(Piece::Text(&sentence[start_offset..start]));
            }
            out(Piece::Token(token.id));
            start_offset = stop;
        }
        if start_offset != sentence.len() {
            out(Piece::Text(&sentence[start_offset..]));
        }
    }
}

/// All added tokens of a tokenizer, split into the raw and the normalized matching pass.
pub(crate) struct AddedTokens {
    raw: Matcher,
    normalized: Matcher,
}

impl AddedTokens {
    /// Builds both passes; normalized tokens are matched by their normalized text.
    pub(crate) fn new(tokens: &[AddedToken], normalizer: Normalizer) -> Result<Self, String> {
        let (normalized, raw): (Vec<_>, Vec<_>) = tokens
            .iter()
            .filter(|t| !t.content.is_empty())
            .cloned()
            .partition(|t| t.normalized);
        let raw_patterns: Vec<String> = raw.iter().map(|t| t.content.clone()).collect();
        let normalized_patterns: Vec<String> = normalized
            .iter()
            .map(|t| normalizer.apply(&t.content).into_owned())
            .collect();
        Ok(Self {
            raw: Matcher::new(raw, &raw_patterns)?,
            normalized: Matcher::new(normalized, &normalized_patterns)?,
        })
    }

    /// Cuts raw `text` at the raw-matched added tokens.
    pub(crate) fn split_raw<'t>(&self, text: &'t str, out: &mut impl FnMut(Piece<'t>)) {
        self.raw.split(text, out);
    }

    /// Cuts normalized `text` at the normalized-matched added tokens.
    pub(crate) fn split_normalized<'t>(&self, text: &'t str, out: &mut impl FnMut(Piece<'t>)) {
        self.normalized.split(text, out);
    }
}

#[cfg(test)]
mod tests {
    use super::{AddedToken, AddedTokens, Piece};
    use crate::bpe::normalize::Normalizer;

    fn token(id: u32, content: &str) -> AddedToken {
        AddedToken {
            id,
            content: content.to_owned(),
            single_word: false,
            lstrip: false,
            rstrip: false,
            normalized: false,
        }
    }

    fn pieces(tokens: &[AddedToken], text: &str) -> Vec<String> {
        let added = AddedTokens::new(tokens, Normalizer::None).unwrap();
        let mut out = Vec::new();
        added.split_raw(text, &mut |p| {
            out.push(match p {
                Piece::Text(t) => t.to_owned(),
                Piece::Token(id) => format!("#{id}"),
            });
        });
        out
    }

    #[test]
    fn longest_match_wins_and_flags_apply() {
        let tokens = [token(1, "<a>"), token(2, "<a><b>")];
        assert_eq!(pieces(&tokens, "x<a><b>y<a>"), ["x", "#2", "y", "#1"]);
        let strip = AddedToken {
            lstrip: true,
            rstrip: true,
            ..token(3, "<s>")
        };
        assert_eq!(pieces(&[strip], "a  <s>  b"), ["a", "#3", "b"]);
        let word = AddedToken {
            single_word: true,
            ..token(4, "cat")
        };
        assert_eq!(
            pieces(&[word], "cat concat cat."),
            ["#4", " concat ", "#4", "."]
        );
    }
}
