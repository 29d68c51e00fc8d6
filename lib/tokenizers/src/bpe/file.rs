//! Streaming deserialization of `tokenizer.json`: the vocabulary and merges go straight into
//! flat buffers (no `serde_json::Value` tree and no `String` per token); only the small
//! pipeline sections (normalizer, pre-tokenizer, post-processor, decoder) become values.

use std::fmt;

use serde::de::{self, DeserializeSeed, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

/// The parts of a `tokenizer.json` this crate reads.
#[derive(Deserialize)]
pub(crate) struct TokenizerFile {
    /// Format version (`"1.0"`).
    pub(crate) version: Option<String>,
    /// Truncation settings (must be null: encoding here never truncates).
    #[serde(default)]
    pub(crate) truncation: Option<IgnoredAny>,
    /// Padding settings (must be null: encoding here never pads).
    #[serde(default)]
    pub(crate) padding: Option<IgnoredAny>,
    /// Tokens matched before pre-tokenization.
    #[serde(default)]
    pub(crate) added_tokens: Vec<AddedTokenSpec>,
    /// The normalizer section.
    #[serde(default)]
    pub(crate) normalizer: Option<Value>,
    /// The pre-tokenizer section.
    #[serde(default)]
    pub(crate) pre_tokenizer: Option<Value>,
    /// The post-processor section.
    #[serde(default)]
    pub(crate) post_processor: Option<Value>,
    /// The decoder section.
    #[serde(default)]
    pub(crate) decoder: Option<Value>,
    /// The model.
    pub(crate) model: ModelSpec,
}

/// One entry of `added_tokens` (its `id` is advisory, as in Hugging Face: ids are assigned).
#[derive(Deserialize)]
pub(crate) struct AddedTokenSpec {
    /// The token text.
    pub(crate) content: String,
    /// See [`super::added::AddedToken`].
    #[serde(default)]
    pub(crate) single_word: bool,
    /// See [`super::added::AddedToken`].
    #[serde(default)]
    pub(crate) lstrip: bool,
    /// See [`super::added::AddedToken`].
    #[serde(default)]
    pub(crate) rstrip: bool,
    /// See [`super::added::AddedToken`].
    #[serde(default = "default_true")]
    pub(crate) normalized: bool,
    /// Skipped by `decode(…, skip_special_tokens = true)`.
    #[serde(default)]
    pub(crate) special: bool,
}

fn default_true() -> bool {
    true
}

/// The `model` section.
#[derive(Deserialize)]
pub(crate) struct ModelSpec {
    /// Model type (`"BPE"`).
    #[serde(rename = "type")]
    pub(crate) kind: Option<String>,
    /// BPE dropout (must be absent or 0).
    #[serde(default)]
    pub(crate) dropout: Option<f64>,
    /// Prefix of non-initial subwords (must be absent or empty).
    #[serde(default)]
    pub(crate) continuing_subword_prefix: Option<String>,
    /// Suffix of word-final subwords (must be absent or empty).
    #[serde(default)]
    pub(crate) end_of_word_suffix: Option<String>,
    /// A word that is a vocabulary token is that token, without merging.
    #[serde(default)]
    pub(crate) ignore_merges: Option<bool>,
    /// Token strings and ids.
    pub(crate) vocab: Strings,
    /// Merge rules in rank order.
    pub(crate) merges: Merges,
}

/// Strings appended to one buffer.
#[derive(Default)]
pub(crate) struct Strings {
    text: String,
    /// `(id or rank, end in text)` per string.
    entries: Vec<(u32, u32)>,
}

impl Strings {
    fn push(&mut self, s: &str, tag: u32) -> Result<(), String> {
        self.text.push_str(s);
        let end = u32::try_from(self.text.len()).map_err(|_| "tokenizer.json too large")?;
        self.entries.push((tag, end));
        Ok(())
    }

    /// `(tag, string)` in insertion order.
    pub(crate) fn iter(&self) -> impl ExactSizeIterator<Item = (u32, &str)> {
        let mut start = 0usize;
        self.entries.iter().map(move |&(tag, end)| {
            let s = &self.text[start..end as usize];
            start = end as usize;
            (tag, s)
        })
    }
}

/// A string seed that appends to a [`Strings`] (no allocation per string).
struct AppendStr<'a> {
    strings: &'a mut Strings,
    tag: u32,
}

impl<'de> DeserializeSeed<'de> for AppendStr<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_str(self)
    }
}

impl Visitor<'_> for AppendStr<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string")
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        self.strings.push(s, self.tag).map_err(E::custom)
    }
}

impl<'de> Deserialize<'de> for Strings {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct VocabVisitor;
        impl<'de> Visitor<'de> for VocabVisitor {
            type Value = Strings;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of token strings to ids")
            }

            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Strings, A::Error> {
                let mut strings = Strings::default();
                while map
                    .next_key_seed(AppendStr {
                        strings: &mut strings,
                        tag: 0,
                    })?
                    .is_some()
                {
                    let id: u32 = map.next_value()?;
                    if let Some(last) = strings.entries.last_mut() {
                        last.0 = id;
                    }
                }
                Ok(strings)
            }
        }
        deserializer.deserialize_map(VocabVisitor)
    }
}

/// Merge rules as `left right` string pairs (rank = position).
#[derive(Default)]
pub(crate) struct Merges {
    /// Left and right parts interleaved: entry `2r` and `2r + 1` are merge `r`.
    pub(crate) parts: Strings,
}

/// One merge entry: `["a", "b"]` or the legacy `"a b"`.
struct MergeEntry<'a> {
    parts: &'a mut Strings,
    legacy: &'a mut Option<bool>,
}

impl<'de> DeserializeSeed<'de> for MergeEntry<'_> {
    type Value = ();

    fn deserialize<D: Deserializer<'de>>(self, deserializer: D) -> Result<(), D::Error> {
        deserializer.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for MergeEntry<'_> {
    type Value = ();

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(r#"a merge: ["left", "right"] or "left right""#)
    }

    fn visit_str<E: de::Error>(self, s: &str) -> Result<(), E> {
        if !*self.legacy.get_or_insert(true) {
            return Err(E::custom("merges mix strings and pairs"));
        }
        // Hugging Face skips `#version` lines of legacy merges files.
        if s.starts_with("#version") {
            return Ok(());
        }
        let mut halves = s.split(' ');
        match (halves.next(), halves.next(), halves.next()) {
            (Some(left), Some(right), None) => {
                self.parts.push(left, 0).map_err(E::custom)?;
                self.parts.push(right, 0).map_err(E::custom)
            }
            _ => Err(E::custom(format!("bad merge {s:?}"))),
        }
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        if *self.legacy.get_or_insert(false) {
            return Err(de::Error::custom("merges mix strings and pairs"));
        }
        for _ in 0..2 {
            seq.next_element_seed(AppendStr {
                strings: self.parts,
                tag: 0,
            })?
            .ok_or_else(|| de::Error::custom("a merge pair needs two strings"))?;
        }
        if seq.next_element::<IgnoredAny>()?.is_some() {
            return Err(de::Error::custom("a merge pair has exactly two strings"));
        }
        Ok(())
    }
}

impl<'de> Deserialize<'de> for Merges {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct MergesVisitor;
        impl<'de> Visitor<'de> for MergesVisitor {
            type Value = Merges;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a list of merges")
            }

            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Merges, A::Error> {
                let mut merges = Merges::default();
                let mut legacy = None;
                while seq
                    .next_element_seed(MergeEntry {
                        parts: &mut merges.parts,
                        legacy: &mut legacy,
                    })?
                    .is_some()
                {}
                Ok(merges)
            }
        }
        deserializer.deserialize_seq(MergesVisitor)
    }
}

impl Merges {
    /// `(left, right)` per merge, in rank order.
    pub(crate) fn pairs(&self) -> impl Iterator<Item = (&str, &str)> {
        let mut parts = self.parts.iter().map(|(_, s)| s);
        std::iter::from_fn(move || Some((parts.next()?, parts.next()?)))
    }

    /// Number of merges.
    pub(crate) fn len(&self) -> usize {
        self.parts.entries.len() / 2
    }
}

#[cfg(test)]
mod tests {
    use super::TokenizerFile;

    #[test]
    fn reads_both_merge_forms_and_escaped_strings() {
        let json = r#"{"model": {"type": "BPE", "vocab": {"a": 0, "b": 1, "a\"b": 2},
            "merges": [["a", "b"], ["a\"", "b"]]}, "extra": [1, 2]}"#;
        let file: TokenizerFile = serde_json::from_str(json).unwrap();
        let vocab: Vec<_> = file.model.vocab.iter().collect();
        assert_eq!(vocab, [(0, "a"), (1, "b"), (2, "a\"b")]);
        assert_eq!(
            file.model.merges.pairs().collect::<Vec<_>>(),
            [("a", "b"), ("a\"", "b")]
        );

        let json = r##"{"model": {"vocab": {}, "merges": ["#version: 0.2", "a b", "ab c"]}}"##;
        let file: TokenizerFile = serde_json::from_str(json).unwrap();
        assert_eq!(
            file.model.merges.pairs().collect::<Vec<_>>(),
            [("a", "b"), ("ab", "c")]
        );
        assert_eq!(file.model.merges.len(), 2);

        let mixed = r#"{"model": {"vocab": {}, "merges": ["a b", ["a", "b"]]}}"#;
        assert!(serde_json::from_str::<TokenizerFile>(mixed).is_err());
    }
}
