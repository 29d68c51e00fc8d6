//! [`BpeTokenizer`]: a compact, fast byte-level BPE tokenizer for the `tokenizer.json` family
//! of GPT-2, GPT-4-style, Llama 3 and Qwen2 models, equal to Hugging Face `tokenizers` on the
//! files it accepts (and refusing the rest with [`TokenizerError::Unsupported`]).

mod added;
mod build;
mod byte_level;
mod file;
mod merges;
mod normalize;
mod pipeline;
mod split;
mod unicode_class;
mod unicode_tables;
mod vocab;
mod whole_words;

use std::path::Path;

use crate::{TokenId, Tokenizer, TokenizerError};
use added::{AddedTokens, Piece};
use merges::{MergeScratch, Merges};
use normalize::Normalizer;
use pipeline::TemplatePart;
use split::SplitPattern;
use vocab::Vocab;
use whole_words::WholeWords;

/// A byte-level BPE tokenizer loaded from a `tokenizer.json`.
///
/// Token strings live in one buffer, ids by string in one open-addressing table and merges in
/// one hash map of id pairs, so the Qwen2.5 vocabulary (151k tokens and merges) takes about a
/// tenth of the memory of the general-purpose implementation; encoding uses a hand-written
/// equivalent of the file's split pattern instead of a regular-expression engine.
///
/// ```
/// use stator_tokenizers::{BpeTokenizer, Tokenizer};
///
/// let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/qwen2.5-0.5b-mock/tokenizer.json");
/// let tokenizer = BpeTokenizer::from_file(path)?;
/// let ids = tokenizer.encode("<|im_start|>user\nhi<|im_end|>", false)?;
/// assert_eq!(ids, [151_644, 872, 198, 6023, 151_645]);
/// assert_eq!(tokenizer.decode(&ids, true)?, "user\nhi");
/// # Ok::<(), stator_tokenizers::TokenizerError>(())
/// ```
pub struct BpeTokenizer {
    /// Model tokens, then the added tokens that are not model tokens.
    vocab: Vocab,
    merges: Merges,
    /// The model id of each byte's byte-level character.
    byte_ids: [u32; 256],
    added: AddedTokens,
    /// Ids of special added tokens, sorted.
    special_ids: Vec<u32>,
    normalizer: Normalizer,
    split: SplitPattern,
    /// Model tokens that a word equal to their text encodes to directly: all of them with
    /// `ignore_merges`, else those whose own bytes merge back to exactly themselves (learned).
    whole_words: WholeWords,
    template: Option<Vec<TemplatePart>>,
}

/// Per-call buffers of [`BpeTokenizer::encode`].
#[derive(Default)]
struct Scratch {
    word: Vec<u32>,
    merge: MergeScratch,
    chars: Vec<u8>,
}

impl BpeTokenizer {
    /// Loads a `tokenizer.json` file; [`TokenizerError::Unsupported`] if it needs a feature
    /// this implementation does not reproduce exactly.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|e| TokenizerError::Load {
            path: path.to_path_buf(),
            message: e.to_string(),
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            TokenizerError::Load { message, .. } => TokenizerError::Load {
                path: path.to_path_buf(),
                message,
            },
            other => other,
        })
    }

    /// Parses the contents of a `tokenizer.json` file (see [`BpeTokenizer::from_file`]).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenizerError> {
        let file: file::TokenizerFile =
            serde_json::from_slice(bytes).map_err(|e| TokenizerError::Load {
                path: "<memory>".into(),
                message: e.to_string(),
            })?;
        build::build(&file).map_err(TokenizerError::Unsupported)
    }

    /// Approximate heap bytes held by the vocabulary and merge tables.
    pub fn heap_bytes(&self) -> usize {
        self.vocab.heap_bytes() + self.merges.heap_bytes() + self.whole_words.heap_bytes()
    }

    fn is_special(&self, id: TokenId) -> bool {
        self.special_ids.binary_search(&id).is_ok()
    }

    /// Appends the ids of one pre-tokenized word.
    fn encode_word(&self, word: &str, ids: &mut Vec<TokenId>, scratch: &mut Scratch) {
        if let [byte] = word.as_bytes() {
            ids.push(self.byte_ids[usize::from(*byte)]);
            return;
        }
        // Most words of real text are one token: look the word up before merging.
        scratch.chars.clear();
        byte_level::push_byte_chars(word.as_bytes(), &mut scratch.chars);
        let token = self.vocab.get(&scratch.chars);
        if let Some(id) = token
            && self.whole_words.get(id) == Some(true)
        {
            ids.push(id);
            return;
        }
        scratch.word.clear();
        scratch
            .word
            .extend(word.bytes().map(|b| self.byte_ids[usize::from(b)]));
        self.merges.merge(&mut scratch.word, &mut scratch.merge);
        if let Some(id) = token {
            self.whole_words.record(id, scratch.word == [id]);
        }
        ids.extend_from_slice(&scratch.word);
    }

    /// Appends the ids of `text` (added tokens, normalization, split, BPE).
    fn encode_text(&self, text: &str, ids: &mut Vec<TokenId>) {
        let mut scratch = Scratch::default();
        self.added.split_raw(text, &mut |piece| match piece {
            Piece::Token(id) => ids.push(id),
            Piece::Text(raw) => {
                let normalized = self.normalizer.apply(raw);
                self.added
                    .split_normalized(&normalized, &mut |piece| match piece {
                        Piece::Token(id) => ids.push(id),
                        Piece::Text(text) => self
                            .split
                            .split(text, |word| self.encode_word(word, ids, &mut scratch)),
                    });
            }
        });
    }
}

impl std::fmt::Debug for BpeTokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("BpeTokenizer")
            .field("vocab_size", &self.vocab.len())
            .field("split", &self.split)
            .field("normalizer", &self.normalizer)
            .finish_non_exhaustive()
    }
}

impl Tokenizer for BpeTokenizer {
    fn encode(&self, text: &str, add_special_tokens: bool) -> Result<Vec<TokenId>, TokenizerError> {
        // Most words are one or two tokens of four bytes or more.
        let mut ids = Vec::with_capacity(text.len() / 4 + 8);
        match self.template.as_deref().filter(|_| add_special_tokens) {
            None => self.encode_text(text, &mut ids),
            Some(template) => {
                for part in template {
                    match part {
                        TemplatePart::Sequence => self.encode_text(text, &mut ids),
                        TemplatePart::Ids(special) => ids.extend_from_slice(special),
                    }
                }
            }
        }
        Ok(ids)
    }

    fn decode(&self, ids: &[TokenId], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        let mut bytes = Vec::with_capacity(ids.len() * 4);
        for &id in ids {
            // Unknown ids are dropped, as in Hugging Face.
            let Some(token) = self.vocab.bytes(id) else {
                continue;
            };
            if skip_special_tokens && self.is_special(id) {
                continue;
            }
            byte_level::push_token_bytes(token, &mut bytes);
        }
        Ok(match String::from_utf8(bytes) {
            Ok(text) => text,
            Err(e) => String::from_utf8_lossy(e.as_bytes()).into_owned(),
        })
    }

    fn token_to_id(&self, token: &str) -> Option<TokenId> {
        self.vocab.get(token.as_bytes())
    }

    fn id_to_token(&self, id: TokenId) -> Option<String> {
        self.vocab.token(id).map(str::to_owned)
    }

    fn vocab_size(&self) -> usize {
        self.vocab.len()
    }
}
