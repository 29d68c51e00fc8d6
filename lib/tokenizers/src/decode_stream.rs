//! [`DecodeStream`]: incremental detokenization that only emits complete, stable text.

use std::sync::Arc;

use crate::{TokenId, Tokenizer, TokenizerError};

/// How many trailing prompt tokens seed the decoding window (see [`DecodeStream::with_prompt`]).
pub const PROMPT_CONTEXT_TOKENS: usize = 5;

/// Tokens a decoding window may hold after emitting before it is re-anchored on the tokens of
/// the last emission (longer windows decode more tokens per step; shorter ones re-anchor more).
const MAX_WINDOW: usize = 3;

/// Turns a stream of token ids into text pieces, one piece per step that completed text.
///
/// Decoding token by token is wrong for two reasons: a character may be split across
/// tokens (byte-fallback and byte-level BPE emit UTF-8 bytes, so one emoji can take four
/// tokens), and a token's text may depend on the tokens before it (SentencePiece strips the
/// leading space of the first token it decodes). The stream therefore decodes a short window:
/// already emitted tokens that give the decoder its context (`ids[..read]`, whose text is
/// cached), then the unemitted ones. Each step decodes the window once; the text beyond the
/// cached context is the new text. Text ending in U+FFFD is an incomplete character and is
/// held back until a later token completes it. Emitted text is never revised. Once the window
/// holds more than a few emitted tokens it is re-anchored on the tokens of the last emission
/// (their text is decoded once, on the next step), so a step costs about one short decode.
///
/// Invariant: the concatenation of every piece returned by [`step`](Self::step) followed by
/// [`flush`](Self::flush) equals `tokenizer.decode(all_ids)` for prefix-stable decoders such
/// as byte-level BPE. `flush` is only non-empty when the ids end in an incomplete character,
/// which then decodes to U+FFFD exactly as a full decode would.
pub struct DecodeStream {
    tokenizer: Arc<dyn Tokenizer>,
    skip_special_tokens: bool,
    /// The window: emitted context, then unemitted ids.
    ids: Vec<TokenId>,
    /// Where the unemitted ids begin.
    read: usize,
    /// The text of `ids[..read]`, once decoded (`None` right after a re-anchor).
    context: Option<String>,
}

impl DecodeStream {
    /// A stream with no context: the first token is decoded as the start of a text.
    pub fn new(tokenizer: Arc<dyn Tokenizer>, skip_special_tokens: bool) -> Self {
        Self {
            tokenizer,
            skip_special_tokens,
            ids: Vec::with_capacity(MAX_WINDOW + 2),
            read: 0,
            context: Some(String::new()),
        }
    }

    /// A stream whose window starts with the last [`PROMPT_CONTEXT_TOKENS`] prompt tokens, so
    /// the first generated token decodes as a continuation of the prompt (no text of the
    /// prompt itself is ever emitted).
    pub fn with_prompt(
        tokenizer: Arc<dyn Tokenizer>,
        prompt: &[TokenId],
        skip_special_tokens: bool,
    ) -> Self {
        let context = &prompt[prompt.len().saturating_sub(PROMPT_CONTEXT_TOKENS)..];
        let mut ids = Vec::with_capacity(context.len().max(MAX_WINDOW) + 2);
        ids.extend_from_slice(context);
        Self {
            tokenizer,
            skip_special_tokens,
            ids,
            read: context.len(),
            context: context.is_empty().then(String::new),
        }
    }

    /// Pushes one token id; returns the text it completed, if any.
    pub fn step(&mut self, id: TokenId) -> Result<Option<String>, TokenizerError> {
        let mut piece = String::new();
        Ok(self.step_into(id, &mut piece)?.then_some(piece))
    }

    /// Pushes one token id and appends the text it completed to `out`; `true` if it
    /// completed some (the same text [`step`](Self::step) returns, without a `String` of
    /// its own).
    pub fn step_into(&mut self, id: TokenId, out: &mut String) -> Result<bool, TokenizerError> {
        self.ids.push(id);
        let context_len = self.context_len()?;
        let text = self.decode(self.ids.len())?;
        if text.len() <= context_len
            || text.ends_with(char::REPLACEMENT_CHARACTER)
            || !text.is_char_boundary(context_len)
        {
            return Ok(false);
        }
        out.push_str(&text[context_len..]);
        self.advance(text);
        Ok(true)
    }

    /// Pushes several token ids; returns all text they completed (possibly empty).
    pub fn step_many(&mut self, ids: &[TokenId]) -> Result<String, TokenizerError> {
        let mut out = String::new();
        for &id in ids {
            self.step_into(id, &mut out)?;
        }
        Ok(out)
    }

    /// Emits whatever is still held back (an incomplete character decodes to U+FFFD).
    /// Call once, when the sequence is finished.
    pub fn flush(&mut self) -> Result<String, TokenizerError> {
        if !self.has_pending() {
            return Ok(String::new());
        }
        let context_len = self.context_len()?;
        let text = self.decode(self.ids.len())?;
        let piece = text.get(context_len..).unwrap_or_default().to_owned();
        self.advance(text);
        Ok(piece)
    }

    /// Whether some pushed tokens have not produced text yet.
    pub fn has_pending(&self) -> bool {
        self.read < self.ids.len()
    }

    /// The length of the context's text, decoding it if the window was re-anchored.
    fn context_len(&mut self) -> Result<usize, TokenizerError> {
        if let Some(context) = &self.context {
            return Ok(context.len());
        }
        let context = self.decode(self.read)?;
        let len = context.len();
        self.context = Some(context);
        Ok(len)
    }

    fn decode(&self, end: usize) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(&self.ids[..end], self.skip_special_tokens)
    }

    /// Everything pushed is emitted and `text` is the window's text: it becomes the context,
    /// or, once the window is long, the window shrinks to the tokens just emitted.
    fn advance(&mut self, text: String) {
        let emitted_from = self.read;
        self.read = self.ids.len();
        if self.read <= MAX_WINDOW {
            self.context = Some(text);
            return;
        }
        self.ids.drain(..emitted_from);
        self.read = self.ids.len();
        self.context = None;
    }
}

impl std::fmt::Debug for DecodeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeStream")
            .field("skip_special_tokens", &self.skip_special_tokens)
            .field("window", &self.ids)
            .field("read", &self.read)
            .finish_non_exhaustive()
    }
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;

    /// A byte-level toy tokenizer: every id is one byte, decoded lossily like HF does.
    struct Bytes;

    impl Tokenizer for Bytes {
        fn encode(&self, text: &str, _: bool) -> Result<Vec<TokenId>, TokenizerError> {
            Ok(text.bytes().map(TokenId::from).collect())
        }
        fn decode(&self, ids: &[TokenId], _: bool) -> Result<String, TokenizerError> {
            let bytes: Vec<u8> = ids.iter().map(|&id| id as u8).collect();
            Ok(String::from_utf8_lossy(&bytes).into_owned())
        }
        fn token_to_id(&self, _: &str) -> Option<TokenId> {
            None
        }
        fn id_to_token(&self, id: TokenId) -> Option<String> {
            Some(id.to_string())
        }
        fn vocab_size(&self) -> usize {
            256
        }
    }

    /// A SentencePiece-like tokenizer: words carry a leading space that is stripped at the
    /// start of a decoded text, so a token's text depends on whether something precedes it.
    struct Words(HashMap<TokenId, &'static str>);

    impl Tokenizer for Words {
        fn encode(&self, _: &str, _: bool) -> Result<Vec<TokenId>, TokenizerError> {
            Ok(Vec::new())
        }
        fn decode(&self, ids: &[TokenId], _: bool) -> Result<String, TokenizerError> {
            let text: String = ids
                .iter()
                .filter_map(|id| self.0.get(id).copied())
                .collect();
            Ok(text.strip_prefix(' ').unwrap_or(&text).to_owned())
        }
        fn token_to_id(&self, _: &str) -> Option<TokenId> {
            None
        }
        fn id_to_token(&self, id: TokenId) -> Option<String> {
            self.0.get(&id).map(|s| (*s).to_owned())
        }
        fn vocab_size(&self) -> usize {
            self.0.len()
        }
    }

    #[test]
    fn multi_byte_character_is_held_until_complete() {
        let mut stream = DecodeStream::new(Arc::new(Bytes), false);
        let ids = Bytes.encode("a😀b", false).unwrap();
        let pieces: Vec<Option<String>> = ids.iter().map(|&id| stream.step(id).unwrap()).collect();
        assert_eq!(
            pieces,
            vec![
                Some("a".to_owned()),
                None,
                None,
                None,
                Some("😀".to_owned()),
                Some("b".to_owned()),
            ]
        );
        assert!(!stream.has_pending());
        assert_eq!(stream.flush().unwrap(), "");
    }

    #[test]
    fn incomplete_tail_is_flushed_as_replacement() {
        let mut stream = DecodeStream::new(Arc::new(Bytes), false);
        assert_eq!(stream.step_many(&[b'x'.into(), 0xE4, 0xBD]).unwrap(), "x");
        assert!(stream.has_pending());
        assert_eq!(stream.flush().unwrap(), "\u{FFFD}");
    }

    #[test]
    fn leading_space_depends_on_previous_token() {
        let words = Words(HashMap::from([(1, " Hello"), (2, " world"), (3, "!")]));
        let mut stream = DecodeStream::new(Arc::new(words), false);
        assert_eq!(stream.step_many(&[1, 2, 3]).unwrap(), "Hello world!");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(128))]

        /// Streamed pieces (through window re-anchors) then the flush equal the full decode.
        #[test]
        fn streamed_bytes_equal_the_full_decode(
            bytes in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            prompt in proptest::collection::vec(0u32..128, 0..8),
        ) {
            let ids: Vec<TokenId> = bytes.iter().map(|&b| TokenId::from(b)).collect();
            let mut stream = DecodeStream::with_prompt(Arc::new(Bytes), &prompt, false);
            let mut text = String::new();
            for &id in &ids {
                if let Some(piece) = stream.step(id).unwrap() {
                    proptest::prop_assert!(!piece.ends_with(char::REPLACEMENT_CHARACTER));
                    text.push_str(&piece);
                }
            }
            text.push_str(&stream.flush().unwrap());
            proptest::prop_assert_eq!(text, Bytes.decode(&ids, false).unwrap());
        }

        /// Context-dependent decoders keep their context across re-anchors.
        #[test]
        fn streamed_words_equal_the_full_decode(ids in proptest::collection::vec(1u32..4, 1..30)) {
            let words = Words(HashMap::from([(1, " Hello"), (2, " world"), (3, "!")]));
            let full = words.decode(&ids, false).unwrap();
            let mut stream = DecodeStream::new(Arc::new(words), false);
            let mut text = String::new();
            for &id in &ids {
                proptest::prop_assert!(stream.step_into(id, &mut text).unwrap());
            }
            proptest::prop_assert_eq!(text, full);
        }
    }

    #[test]
    fn prompt_context_keeps_the_space_of_the_first_generated_token() {
        let words = Words(HashMap::from([(1, " Hello"), (2, " world")]));
        let mut stream = DecodeStream::with_prompt(Arc::new(words), &[1], false);
        assert_eq!(stream.step(2).unwrap().as_deref(), Some(" world"));
    }
}
