//! Building a [`BpeTokenizer`] from a parsed `tokenizer.json`, with Hugging Face's rules for
//! added-token ids and merge resolution.

use rustc_hash::FxHashSet;

use super::added::{AddedToken, AddedTokens};
use super::byte_level::BYTE_CHARS;
use super::file::{AddedTokenSpec, TokenizerFile};
use super::merges::Merges;
use super::vocab::{Vocab, VocabError};
use super::whole_words::WholeWords;
use super::{BpeTokenizer, pipeline};

/// Builds the tokenizer, or says which part of the file is not supported.
pub(super) fn build(file: &TokenizerFile) -> Result<BpeTokenizer, String> {
    if file.version.as_deref().is_some_and(|v| v != "1.0") {
        return Err(format!("tokenizer.json version {:?}", file.version));
    }
    if file.truncation.is_some() || file.padding.is_some() {
        return Err("truncation or padding is configured".to_owned());
    }
    let model = &file.model;
    if model.kind.as_deref() != Some("BPE") {
        return Err(format!("model type {:?}", model.kind));
    }
    if model.dropout.is_some_and(|p| p != 0.0) {
        return Err("BPE dropout".to_owned());
    }
    if [&model.continuing_subword_prefix, &model.end_of_word_suffix]
        .iter()
        .any(|affix| affix.as_deref().is_some_and(|a| !a.is_empty()))
    {
        return Err("subword prefix or suffix".to_owned());
    }
    let normalizer = pipeline::normalizer(file.normalizer.as_ref())?;
    let split = pipeline::pre_tokenizer(file.pre_tokenizer.as_ref())?;
    pipeline::decoder(file.decoder.as_ref())?;
    let template = pipeline::post_processor(file.post_processor.as_ref())?;

    let mut vocab = Vocab::new(model.vocab.iter()).map_err(vocab_error)?;
    let model_len = u32::try_from(vocab.len()).map_err(|_| "vocabulary too large")?;
    // One table for model and added-only tokens: added-only ids follow the model's.
    let added = added_tokens(&file.added_tokens, &mut vocab)?;

    let mut byte_ids = [0u32; 256];
    let mut chars = [0u8; 4];
    for (byte, id) in byte_ids.iter_mut().enumerate() {
        let c = BYTE_CHARS[byte].encode_utf8(&mut chars);
        *id = vocab
            .get(c.as_bytes())
            .filter(|&id| id < model_len)
            .ok_or_else(|| format!("byte-level character {c:?} missing from the vocabulary"))?;
    }

    let merges = merges(file, &vocab, model_len)?;
    let mut special_ids: Vec<u32> = added
        .iter()
        .filter(|t| t.special)
        .map(|t| t.token.id)
        .collect();
    special_ids.sort_unstable();
    let matching: Vec<AddedToken> = ordered_for_matching(&added);
    let whole_words = WholeWords::new(model_len, model.ignore_merges.unwrap_or(false));
    Ok(BpeTokenizer {
        added: AddedTokens::new(&matching, normalizer)?,
        vocab,
        merges,
        byte_ids,
        special_ids,
        normalizer,
        split,
        whole_words,
        template,
    })
}

fn vocab_error(e: VocabError) -> String {
    match e {
        VocabError::DuplicateToken(t) => format!("token {t:?} appears twice"),
        VocabError::SparseIds => "vocabulary ids are not 0..len".to_owned(),
        VocabError::TooLarge => "vocabulary too large".to_owned(),
    }
}

/// An added token with its resolved id and whether it is special.
struct Resolved {
    special: bool,
    token: AddedToken,
}

/// Hugging Face's id rule: a token that is in the model vocabulary keeps the model id, the
/// others are numbered from the model's size on, in file order (the file's own ids are only
/// advisory there too); those are appended to `vocab`.
fn added_tokens(specs: &[AddedTokenSpec], vocab: &mut Vocab) -> Result<Vec<Resolved>, String> {
    let mut seen = FxHashSet::default();
    let mut out = Vec::with_capacity(specs.len());
    for spec in specs.iter().filter(|s| !s.content.is_empty()) {
        if !seen.insert(spec.content.as_str()) {
            return Err(format!("added token {:?} appears twice", spec.content));
        }
        let id = match vocab.get(spec.content.as_bytes()) {
            Some(id) => id,
            None => vocab.push(&spec.content).map_err(vocab_error)?,
        };
        out.push(Resolved {
            special: spec.special,
            token: AddedToken {
                id,
                content: spec.content.clone(),
                single_word: spec.single_word,
                lstrip: spec.lstrip,
                rstrip: spec.rstrip,
                normalized: spec.normalized,
            },
        });
    }
    Ok(out)
}

/// Special tokens first, then the others, each in file order (Hugging Face's trie order).
fn ordered_for_matching(added: &[Resolved]) -> Vec<AddedToken> {
    let specials = added.iter().filter(|t| t.special);
    let others = added.iter().filter(|t| !t.special);
    specials.chain(others).map(|t| t.token.clone()).collect()
}

/// Resolves merge strings to ids: both parts and their concatenation must be model tokens.
fn merges(file: &TokenizerFile, vocab: &Vocab, model_len: u32) -> Result<Merges, String> {
    let model_id = |s: &str| {
        vocab
            .get(s.as_bytes())
            .filter(|&id| id < model_len)
            .ok_or_else(|| format!("merge token {s:?} is not in the vocabulary"))
    };
    let mut merges = Merges::with_capacity(file.model.merges.len());
    let mut joined = String::new();
    for (rank, (left, right)) in file.model.merges.pairs().enumerate() {
        joined.clear();
        joined.push_str(left);
        joined.push_str(right);
        let rank = u32::try_from(rank).map_err(|_| "too many merges")?;
        merges.insert(model_id(left)?, model_id(right)?, rank, model_id(&joined)?);
    }
    Ok(merges)
}
