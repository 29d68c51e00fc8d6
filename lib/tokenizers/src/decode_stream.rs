//! [`DecodeStream`]: incremental detokenization that only emits complete, stable text.

use std::sync::Arc;

use crate::{TokenId, Tokenizer, TokenizerError};

/// How many trailing prompt tokens seed the decoding window (see [`DecodeStream::with_prompt`]).
pub const PROMPT_CONTEXT_TOKENS: usize = 5;

/// Turns a stream of token ids into text pieces, one piece per step that completed text.
///
/// Decoding token by token is wrong for two reasons: a character may be split across
/// tokens (byte-fallback and byte-level BPE emit UTF-8 bytes, so one emoji can take four
/// tokens), and a token's text may depend on the tokens before it (SentencePiece strips the
/// leading space of the first token it decodes). The stream therefore keeps two offsets into
/// the ids it has seen: `prefix_offset` starts a short window of already emitted tokens that
/// gives the decoder its context, and `read_offset` marks where unemitted tokens begin. On
/// each step it decodes `ids[prefix..read]` and `ids[prefix..]`; the difference is the new
/// text. Text ending in U+FFFD is an incomplete character and is held back until a later
/// token completes it. Emitted text is never revised.
///
/// Invariant: the concatenation of every piece returned by [`step`](Self::step) followed by
/// [`flush`](Self::flush) equals `tokenizer.decode(all_ids)` for prefix-stable decoders such
/// as byte-level BPE. `flush` is only non-empty when the ids end in an incomplete character,
/// which then decodes to U+FFFD exactly as a full decode would.
pub struct DecodeStream {
    tokenizer: Arc<dyn Tokenizer>,
    skip_special_tokens: bool,
    ids: Vec<TokenId>,
    prefix_offset: usize,
    read_offset: usize,
}

impl DecodeStream {
    /// A stream with no context: the first token is decoded as the start of a text.
    pub fn new(tokenizer: Arc<dyn Tokenizer>, skip_special_tokens: bool) -> Self {
        Self {
            tokenizer,
            skip_special_tokens,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
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
        Self {
            tokenizer,
            skip_special_tokens,
            ids: context.to_vec(),
            prefix_offset: 0,
            read_offset: context.len(),
        }
    }

    /// Pushes one token id; returns the text it completed, if any.
    pub fn step(&mut self, id: TokenId) -> Result<Option<String>, TokenizerError> {
        self.ids.push(id);
        let prefix_text = self.decode(self.prefix_offset, self.read_offset)?;
        let new_text = self.decode(self.prefix_offset, self.ids.len())?;
        if new_text.len() <= prefix_text.len() || new_text.ends_with(char::REPLACEMENT_CHARACTER) {
            return Ok(None);
        }
        let Some(piece) = new_text.get(prefix_text.len()..) else {
            return Ok(None);
        };
        let piece = piece.to_owned();
        self.advance();
        Ok(Some(piece))
    }

    /// Pushes several token ids; returns all text they completed (possibly empty).
    pub fn step_many(&mut self, ids: &[TokenId]) -> Result<String, TokenizerError> {
        let mut out = String::new();
        for &id in ids {
            if let Some(piece) = self.step(id)? {
                out.push_str(&piece);
            }
        }
        Ok(out)
    }

    /// Emits whatever is still held back (an incomplete character decodes to U+FFFD).
    /// Call once, when the sequence is finished.
    pub fn flush(&mut self) -> Result<String, TokenizerError> {
        let prefix_text = self.decode(self.prefix_offset, self.read_offset)?;
        let new_text = self.decode(self.prefix_offset, self.ids.len())?;
        let piece = new_text
            .get(prefix_text.len()..)
            .unwrap_or_default()
            .to_owned();
        self.advance();
        Ok(piece)
    }

    /// Whether some pushed tokens have not produced text yet.
    pub fn has_pending(&self) -> bool {
        self.read_offset < self.ids.len()
    }

    fn decode(&self, start: usize, end: usize) -> Result<String, TokenizerError> {
        self.tokenizer
            .decode(&self.ids[start..end], self.skip_special_tokens)
    }

    /// Moves the window forward after emitting, dropping ids no window will need again.
    fn advance(&mut self) {
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        self.ids.drain(..self.prefix_offset);
        self.read_offset -= self.prefix_offset;
        self.prefix_offset = 0;
    }
}

impl std::fmt::Debug for DecodeStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DecodeStream")
            .field("skip_special_tokens", &self.skip_special_tokens)
            .field("window", &self.ids)
            .field("prefix_offset", &self.prefix_offset)
            .field("read_offset", &self.read_offset)
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

    #[test]
    fn prompt_context_keeps_the_space_of_the_first_generated_token() {
        let words = Words(HashMap::from([(1, " Hello"), (2, " world")]));
        let mut stream = DecodeStream::with_prompt(Arc::new(words), &[1], false);
        assert_eq!(stream.step(2).unwrap().as_deref(), Some(" world"));
    }
}
