//! Prompt tokenization by segments between added tokens, with a cache of long segments.
//!
//! Hugging Face tokenizers cut the input at added tokens (`<|im_start|>`, `<|im_end|>`, …)
//! before normalizing and pre-tokenizing, so the ids of a text are the ids of each piece
//! between added tokens, joined by the added tokens' ids. A rendered chat prompt repeats the
//! same long pieces across requests (a shared system prompt, earlier turns of a conversation),
//! so [`SegmentEncoder`] encodes each piece once and reuses the ids.
//!
//! It is only built when that equivalence is certain for the model: every added token
//! matches literally (no `normalized`, `lstrip`, `rstrip` or `single_word`), and probes around
//! each added token give the same ids split and whole (this rejects, for example, a
//! Metaspace pre-tokenizer that prepends a space to the first piece only). Anything else
//! tokenizes the whole text as before.

use std::hash::BuildHasher;
use std::sync::Arc;

use parking_lot::Mutex;
use rustc_hash::{FxBuildHasher, FxHashMap, FxHashSet};
use serde::Deserialize;
use stator_tokenizers::{TokenId, Tokenizer, TokenizerError};

/// Pieces shorter than this are encoded every time (a lookup would cost about as much).
const MIN_CACHED_BYTES: usize = 64;
/// Text bytes a cache generation holds before it becomes the old generation.
const GENERATION_BYTES: usize = 1 << 20;
/// Pieces longer than this are never cached (one would fill a generation).
const MAX_CACHED_BYTES: usize = GENERATION_BYTES / 8;
/// Pieces seen once that are remembered (by hash) before the memory starts over.
const SEEN_LIMIT: usize = 4096;

/// One `added_tokens` entry of `tokenizer.json`.
#[derive(Deserialize)]
struct AddedToken {
    id: TokenId,
    content: String,
    #[serde(default)]
    single_word: bool,
    #[serde(default)]
    lstrip: bool,
    #[serde(default)]
    rstrip: bool,
    #[serde(default)]
    normalized: bool,
}

/// The part of `tokenizer.json` read here (serde skips the rest).
#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
}

/// Two generations of cached pieces: lookups promote old entries, and when the new
/// generation is full it replaces the old one (an approximate LRU without per-hit
/// bookkeeping). A piece is only admitted the second time it is seen: text that never
/// repeats (the unique part of each prompt) would otherwise fill both generations, ~4 MB
/// of resident memory that is never read, and cost a copy per request.
#[derive(Default)]
struct Generations {
    young: FxHashMap<Box<str>, Arc<[TokenId]>>,
    young_bytes: usize,
    old: FxHashMap<Box<str>, Arc<[TokenId]>>,
    /// Hashes of pieces seen once and not cached (yet).
    seen: FxHashSet<u64>,
}

impl Generations {
    fn get(&mut self, piece: &str) -> Option<Arc<[TokenId]>> {
        if let Some(ids) = self.young.get(piece) {
            return Some(Arc::clone(ids));
        }
        let (key, ids) = self.old.remove_entry(piece)?;
        self.insert(key, Arc::clone(&ids));
        Some(ids)
    }

    /// Caches `ids` for `piece` if it was seen before; otherwise remembers that it was.
    fn offer(&mut self, piece: &str, ids: &[TokenId]) {
        let hash = FxBuildHasher.hash_one(piece);
        if self.seen.remove(&hash) {
            self.insert(piece.into(), ids.into());
            return;
        }
        if self.seen.len() >= SEEN_LIMIT {
            self.seen.clear();
        }
        self.seen.insert(hash);
    }

    fn insert(&mut self, piece: Box<str>, ids: Arc<[TokenId]>) {
        if self.young_bytes + piece.len() > GENERATION_BYTES {
            self.old = std::mem::take(&mut self.young);
            self.young_bytes = 0;
        }
        self.young_bytes += piece.len();
        self.young.insert(piece, ids);
    }
}

/// Encodes text piece by piece between added tokens, caching long pieces.
pub(crate) struct SegmentEncoder {
    /// Added tokens, longest first (so the first match at a position is the longest).
    added: Vec<(Box<str>, TokenId)>,
    /// Whether some added token starts with this byte.
    starts: [bool; 256],
    /// The first character of every added token, when they all share one ASCII byte (as
    /// `<|...|>` tokens do): the scan then jumps between its occurrences.
    single_start: Option<char>,
    cache: Mutex<Generations>,
}

impl SegmentEncoder {
    /// The encoder for a tokenizer built from `tokenizer_json`, or `None` when splitting at
    /// added tokens is not provably the same as encoding the whole text.
    pub(crate) fn new(tokenizer: &dyn Tokenizer, tokenizer_json: &[u8]) -> Option<Self> {
        let file: TokenizerFile = serde_json::from_slice(tokenizer_json).ok()?;
        if file.added_tokens.is_empty()
            || file
                .added_tokens
                .iter()
                .any(|t| t.normalized || t.lstrip || t.rstrip || t.single_word)
            || file.added_tokens.iter().any(|t| t.content.is_empty())
        {
            return None;
        }
        let mut added: Vec<(Box<str>, TokenId)> = file
            .added_tokens
            .into_iter()
            .map(|t| (t.content.into_boxed_str(), t.id))
            .collect();
        added.sort_by(|a, b| b.0.len().cmp(&a.0.len()).then_with(|| a.0.cmp(&b.0)));
        let mut starts = [false; 256];
        for (content, _) in &added {
            starts[usize::from(content.as_bytes()[0])] = true;
        }
        let first = added[0].0.as_bytes()[0];
        let single_start = (first.is_ascii() && starts.iter().filter(|&&s| s).count() == 1)
            .then_some(char::from(first));
        let encoder = Self {
            added,
            starts,
            single_start,
            cache: Mutex::new(Generations::default()),
        };
        encoder.agrees_with(tokenizer).then_some(encoder)
    }

    /// Whether splitting gives the tokenizer's own ids on probes around every added token.
    fn agrees_with(&self, tokenizer: &dyn Tokenizer) -> bool {
        const PROBES: [(&str, &str); 4] = [
            ("a", "b"),
            ("Hello world ", " and more\n"),
            ("\n", "\n\nx"),
            ("", " y"),
        ];
        self.added.iter().all(|(content, _)| {
            PROBES.iter().all(|(before, after)| {
                let text = format!("{before}{content}{after}");
                let whole = tokenizer.encode(&text, false);
                let split = self.encode_uncached(tokenizer, &text);
                matches!((whole, split), (Ok(w), Ok(s)) if w == s)
            })
        })
    }

    /// The ids of `text` (as `tokenizer.encode(text, false)`).
    pub(crate) fn encode(
        &self,
        tokenizer: &dyn Tokenizer,
        text: &str,
    ) -> Result<Vec<TokenId>, TokenizerError> {
        self.encode_with(tokenizer, text, true)
    }

    fn encode_uncached(
        &self,
        tokenizer: &dyn Tokenizer,
        text: &str,
    ) -> Result<Vec<TokenId>, TokenizerError> {
        self.encode_with(tokenizer, text, false)
    }

    fn encode_with(
        &self,
        tokenizer: &dyn Tokenizer,
        text: &str,
        use_cache: bool,
    ) -> Result<Vec<TokenId>, TokenizerError> {
        let mut ids = Vec::with_capacity(text.len() / 3);
        let bytes = text.as_bytes();
        let mut piece_start = 0;
        let mut i = 0;
        while i < bytes.len() {
            // `i` is always on a character boundary here when the start byte is ASCII.
            if let Some(start) = self.single_start
                && let Some(rest) = text.get(i..)
            {
                match rest.find(start) {
                    Some(offset) => i += offset,
                    None => break,
                }
            }
            if self.starts[usize::from(bytes[i])]
                && let Some((content, id)) = self
                    .added
                    .iter()
                    .find(|(content, _)| bytes[i..].starts_with(content.as_bytes()))
            {
                self.encode_piece(tokenizer, &text[piece_start..i], use_cache, &mut ids)?;
                ids.push(*id);
                i += content.len();
                piece_start = i;
            } else {
                i += 1;
            }
        }
        self.encode_piece(tokenizer, &text[piece_start..], use_cache, &mut ids)?;
        Ok(ids)
    }

    fn encode_piece(
        &self,
        tokenizer: &dyn Tokenizer,
        piece: &str,
        use_cache: bool,
        ids: &mut Vec<TokenId>,
    ) -> Result<(), TokenizerError> {
        if piece.is_empty() {
            return Ok(());
        }
        if !use_cache || !(MIN_CACHED_BYTES..=MAX_CACHED_BYTES).contains(&piece.len()) {
            ids.extend(tokenizer.encode(piece, false)?);
            return Ok(());
        }
        if let Some(cached) = self.cache.lock().get(piece) {
            ids.extend_from_slice(&cached);
            return Ok(());
        }
        let encoded = tokenizer.encode(piece, false)?;
        ids.extend_from_slice(&encoded);
        self.cache.lock().offer(piece, &encoded);
        Ok(())
    }
}

impl std::fmt::Debug for SegmentEncoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SegmentEncoder")
            .field("added_tokens", &self.added.len())
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::LazyLock;

    use proptest::prelude::*;

    use super::*;

    /// The shipped tokenizer.json, its fast tokenizer and an encoder (loaded once).
    static QWEN: LazyLock<(Vec<u8>, Arc<dyn Tokenizer>, SegmentEncoder)> = LazyLock::new(|| {
        let path = concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/../../models/qwen2.5-0.5b-mock/tokenizer.json"
        );
        let bytes = std::fs::read(path).expect("shipped tokenizer");
        let tokenizer = stator_tokenizers::load_bytes(&bytes).expect("loads");
        let encoder = SegmentEncoder::new(&*tokenizer, &bytes).expect("qwen qualifies");
        (bytes, tokenizer, encoder)
    });

    fn qwen() -> (Arc<dyn Tokenizer>, &'static [u8]) {
        (Arc::clone(&QWEN.1), &QWEN.0)
    }

    fn hf_qwen() -> (Arc<dyn Tokenizer>, &'static [u8]) {
        let tokenizer =
            Arc::new(stator_tokenizers::HfTokenizer::from_bytes(&QWEN.0).expect("loads"));
        (tokenizer, &QWEN.0)
    }

    #[test]
    fn chat_prompt_ids_match_whole_encoding_cold_and_warm() {
        for (tokenizer, bytes) in [qwen(), hf_qwen()] {
            let encoder = SegmentEncoder::new(&*tokenizer, bytes).expect("qwen qualifies");
            let system = "You are a helpful assistant. ".repeat(20);
            let prompt = format!(
                "<|im_start|>system\n{system}<|im_end|>\n<|im_start|>user\nhi <tool_call>x</tool_call>\
                 <|im_end|>\n<|im_start|>assistant\n"
            );
            let whole = tokenizer.encode(&prompt, false).expect("encodes");
            for _ in 0..3 {
                assert_eq!(
                    encoder.encode(&*tokenizer, &prompt).expect("encodes"),
                    whole
                );
            }
        }
    }

    #[test]
    fn tokenizers_with_context_dependent_flags_are_refused() {
        let (tokenizer, bytes) = qwen();
        let mut json: serde_json::Value = serde_json::from_slice(bytes).expect("json");
        json["added_tokens"][1]["lstrip"] = serde_json::Value::Bool(true);
        let changed = serde_json::to_vec(&json).expect("serializes");
        assert!(SegmentEncoder::new(&*tokenizer, &changed).is_none());
    }

    #[test]
    fn generations_keep_recent_pieces_within_budget() {
        let mut cache = Generations::default();
        let piece = "p".repeat(GENERATION_BYTES / 4);
        for i in 0..16u32 {
            cache.insert(format!("{i}{piece}").into(), Arc::from([i].as_slice()));
            assert!(cache.young_bytes <= GENERATION_BYTES);
        }
        assert!(cache.young.len() + cache.old.len() <= 8);
        assert_eq!(
            cache.get(&format!("15{piece}")).as_deref(),
            Some([15].as_slice())
        );
        assert!(cache.get(&format!("0{piece}")).is_none());
    }

    #[test]
    fn pieces_are_cached_on_their_second_sighting() {
        let mut cache = Generations::default();
        let piece = "a shared system prompt that every request of a deployment repeats";
        cache.offer(piece, &[1, 2]);
        assert!(cache.get(piece).is_none());
        cache.offer(piece, &[1, 2]);
        assert_eq!(cache.get(piece).as_deref(), Some([1, 2].as_slice()));
        for i in 0..SEEN_LIMIT * 2 {
            cache.offer(&format!("unique {i}"), &[3]);
        }
        assert!(cache.young.len() + cache.old.len() == 1);
        assert!(cache.seen.len() <= SEEN_LIMIT);
    }

    fn piece() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z ,.\n'é日0-9]{0,120}",
            Just("<|im_start|>".to_owned()),
            Just("<|im_end|>".to_owned()),
            Just("<tool_call>".to_owned()),
            Just("<|im_".to_owned()),
            Just("  \n".to_owned()),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn segmented_encoding_equals_whole_encoding(
            pieces in proptest::collection::vec(piece(), 0..12),
            repeats in 1usize..3,
        ) {
            let (_, tokenizer, encoder) = &*QWEN;
            let text = pieces.concat();
            let whole = tokenizer.encode(&text, false).expect("encodes");
            for _ in 0..repeats {
                prop_assert_eq!(&encoder.encode(&**tokenizer, &text).expect("encodes"), &whole);
            }
        }
    }
}
