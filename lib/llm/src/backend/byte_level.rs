//! Incremental detokenization for byte-level BPE vocabularies (GPT-2, Llama 3, Qwen2) without
//! re-decoding a window per token.
//!
//! Such a tokenizer decodes ids by concatenating each token's bytes (its vocabulary string read
//! through the GPT-2 byte alphabet; added tokens as their own text) and reading the result as
//! lossy UTF-8. A token's bytes never depend on its neighbours, so the stream only has to keep
//! the bytes of an incomplete character: each step appends the token's bytes and emits them as
//! soon as they no longer end in an incomplete character, which gives exactly the pieces of
//! [`DecodeStream`](stator_tokenizers::DecodeStream) at a fraction of its cost. [`ByteLevel`]
//! is only built for a tokenizer whose `tokenizer.json` declares the byte-level decoder and
//! whose own `decode` agrees with this reading on every added token and on probes spread over
//! the vocabulary.

use std::sync::Arc;

use serde::Deserialize;
use stator_tokenizers::{TokenId, Tokenizer};

/// Byte of each byte-level alphabet character (`U+0000..U+0143`), `None` outside it.
const ALPHABET: [Option<u8>; 324] = {
    let mut table = [None; 324];
    let mut byte = 0usize;
    let mut extra = 0usize;
    while byte < 256 {
        // GPT-2 keeps printable Latin-1 bytes as themselves and maps the rest to U+0100.. in order.
        let printable = (byte >= 0x21 && byte <= 0x7e)
            || (byte >= 0xa1 && byte <= 0xac)
            || (byte >= 0xae && byte <= 0xff);
        let code = if printable {
            byte
        } else {
            extra += 1;
            255 + extra
        };
        table[code] = Some(byte as u8);
        byte += 1;
    }
    table
};

/// Ids sampled (every `PROBE_STRIDE`th) when checking the tokenizer's `decode`.
const PROBE_STRIDE: usize = 61;

/// The part of `tokenizer.json` read here (serde skips the rest).
#[derive(Deserialize)]
struct TokenizerFile {
    #[serde(default)]
    added_tokens: Vec<AddedToken>,
    decoder: Option<Decoder>,
}

#[derive(Deserialize)]
struct AddedToken {
    id: TokenId,
    #[serde(default)]
    special: bool,
}

#[derive(Deserialize)]
struct Decoder {
    #[serde(rename = "type")]
    kind: String,
}

/// A tokenizer known to decode byte-level: token bytes, concatenated, read as lossy UTF-8.
/// Holds every token's bytes (about 1.5 MB for a 150k vocabulary), so a step is a slice copy.
pub struct ByteLevel {
    /// The bytes of all token ids, in id order.
    bytes: Vec<u8>,
    /// Where the bytes of each id end in `bytes`.
    ends: Vec<u32>,
    /// Ids `skip_special_tokens` drops, sorted.
    special_ids: Vec<TokenId>,
}

impl ByteLevel {
    /// The byte-level reading of `tokenizer` (built from `tokenizer_json`), or `None` when its
    /// decoder is not byte-level or its `decode` disagrees with this reading on any probe.
    pub fn new(tokenizer: &dyn Tokenizer, tokenizer_json: &[u8]) -> Option<Self> {
        let file: TokenizerFile = serde_json::from_slice(tokenizer_json).ok()?;
        if file.decoder?.kind != "ByteLevel" {
            return None;
        }
        let mut special_ids: Vec<TokenId> = file
            .added_tokens
            .iter()
            .filter(|t| t.special)
            .map(|t| t.id)
            .collect();
        special_ids.sort_unstable();
        let added: Vec<TokenId> = file.added_tokens.iter().map(|t| t.id).collect();
        let vocab = u32::try_from(tokenizer.vocab_size()).ok()?;
        let mut bytes = Vec::new();
        let mut ends = Vec::with_capacity(tokenizer.vocab_size());
        for id in 0..vocab {
            if let Some(token) = tokenizer.id_to_token(id) {
                push_token_bytes(&token, &mut bytes);
            }
            ends.push(u32::try_from(bytes.len()).ok()?);
        }
        bytes.shrink_to_fit();
        let reading = Self {
            bytes,
            ends,
            special_ids,
        };
        reading
            .agrees_on_probes(tokenizer, &added)
            .then_some(reading)
    }

    /// The bytes of token `id`; `None` for ids outside the vocabulary.
    fn token(&self, id: TokenId) -> Option<&[u8]> {
        let index = usize::try_from(id).ok()?;
        let end = *self.ends.get(index)? as usize;
        let start = index
            .checked_sub(1)
            .map_or(0, |prev| self.ends[prev] as usize);
        self.bytes.get(start..end)
    }

    /// Whether the tokenizer's `decode` equals this reading on every added token, a spread of
    /// the vocabulary, and runs of neighbouring ids (split characters included).
    fn agrees_on_probes(&self, tokenizer: &dyn Tokenizer, added: &[TokenId]) -> bool {
        let vocab = u32::try_from(self.ends.len()).unwrap_or(u32::MAX);
        let sampled = (0..vocab).step_by(PROBE_STRIDE);
        let singles = added.iter().copied().chain(sampled);
        let runs = (0..vocab.saturating_sub(8))
            .step_by(PROBE_STRIDE * 97)
            .map(|start| (start..start + 8).collect::<Vec<_>>());
        let probes = singles.map(|id| vec![id]).chain(runs).chain([vec![vocab]]);
        probes.into_iter().all(|ids| {
            [false, true].into_iter().all(|skip| {
                let mut bytes = Vec::new();
                for &id in &ids {
                    self.push_bytes(id, skip, &mut bytes);
                }
                matches!(tokenizer.decode(&ids, skip),
                    Ok(text) if text == String::from_utf8_lossy(&bytes))
            })
        })
    }

    /// Appends the bytes of token `id` (nothing for unknown ids, or special ones when skipped).
    fn push_bytes(&self, id: TokenId, skip_special_tokens: bool, out: &mut Vec<u8>) {
        if skip_special_tokens && self.special_ids.binary_search(&id).is_ok() {
            return;
        }
        if let Some(token) = self.token(id) {
            out.extend_from_slice(token);
        }
    }
}

/// Appends the bytes a vocabulary string stands for: read through the byte-level alphabet, or
/// its own UTF-8 when some character is outside it (added tokens such as `<|im_end|>`).
fn push_token_bytes(token: &str, out: &mut Vec<u8>) {
    let start = out.len();
    for c in token.chars() {
        let Some(byte) = ALPHABET.get(c as usize).copied().flatten() else {
            out.truncate(start);
            out.extend_from_slice(token.as_bytes());
            return;
        };
        out.push(byte);
    }
}

impl std::fmt::Debug for ByteLevel {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ByteLevel")
            .field("tokens", &self.ends.len())
            .field("bytes", &self.bytes.len())
            .field("special_ids", &self.special_ids.len())
            .finish_non_exhaustive()
    }
}

/// One sequence's byte-level detokenizer: the bytes of an unfinished character are held.
#[derive(Debug)]
pub(crate) struct ByteStream {
    reading: Arc<ByteLevel>,
    skip_special_tokens: bool,
    /// Bytes not emitted yet (they end in an incomplete character).
    pending: Vec<u8>,
}

impl ByteStream {
    pub(crate) fn new(reading: Arc<ByteLevel>, skip_special_tokens: bool) -> Self {
        Self {
            reading,
            skip_special_tokens,
            pending: Vec::new(),
        }
    }

    /// Pushes one id; appends the text it completed to `out`.
    pub(crate) fn step_into(&mut self, id: TokenId, out: &mut String) {
        self.reading
            .push_bytes(id, self.skip_special_tokens, &mut self.pending);
        if self.pending.is_empty() {
            return;
        }
        let text = String::from_utf8_lossy(&self.pending);
        if !text.ends_with(char::REPLACEMENT_CHARACTER) {
            out.push_str(&text);
            self.pending.clear();
        }
    }

    /// Emits whatever is held (an incomplete character reads as U+FFFD).
    pub(crate) fn flush(&mut self) -> String {
        let text = String::from_utf8_lossy(&self.pending).into_owned();
        self.pending.clear();
        text
    }
}

#[cfg(test)]
#[path = "byte_level_tests.rs"]
mod tests;
