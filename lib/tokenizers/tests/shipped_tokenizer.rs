//! Tests against the shipped Qwen2.5 tokenizer (`models/qwen2.5-0.5b-mock/tokenizer.json`).

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use stator_tokenizers::{DecodeStream, HfTokenizer, TokenId, Tokenizer};

const TOKENIZER_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/qwen2.5-0.5b-mock/tokenizer.json"
);

static TOKENIZER: LazyLock<Arc<dyn Tokenizer>> = LazyLock::new(|| {
    Arc::new(HfTokenizer::from_file(TOKENIZER_JSON).expect("shipped tokenizer.json loads"))
});

fn tokenizer() -> Arc<dyn Tokenizer> {
    TOKENIZER.clone()
}

/// Streams `ids` one at a time; returns the pieces and the final flush.
fn stream(ids: &[TokenId], skip_special_tokens: bool) -> (Vec<String>, String) {
    let mut stream = DecodeStream::new(tokenizer(), skip_special_tokens);
    let pieces = ids
        .iter()
        .filter_map(|&id| stream.step(id).expect("decode succeeds"))
        .collect();
    let flushed = stream.flush().expect("decode succeeds");
    (pieces, flushed)
}

#[test]
fn known_ids_match_the_model_readme() {
    let ids = tokenizer()
        .encode("<|im_start|>user\nhi<|im_end|>", false)
        .unwrap();
    assert_eq!(ids, vec![151_644, 872, 198, 6023, 151_645]);
    assert_eq!(tokenizer().token_to_id("<|im_end|>"), Some(151_645));
    assert_eq!(
        tokenizer().id_to_token(151_643).as_deref(),
        Some("<|endoftext|>")
    );
    assert_eq!(tokenizer().vocab_size(), 151_669);
}

#[test]
fn special_tokens_are_skipped_on_request() {
    let ids = [151_644, 872, 198, 6023, 151_645];
    assert_eq!(
        tokenizer().decode(&ids, false).unwrap(),
        "<|im_start|>user\nhi<|im_end|>"
    );
    assert_eq!(tokenizer().decode(&ids, true).unwrap(), "user\nhi");
    let (pieces, flushed) = stream(&ids, true);
    assert_eq!(pieces.concat(), "user\nhi");
    assert!(flushed.is_empty());
}

#[test]
fn emoji_split_across_byte_tokens_streams_whole() {
    let text = "family: 👨‍👩‍👧‍👦, flags 🇯🇵🇫🇷, 🦀!";
    let ids = tokenizer().encode(text, false).unwrap();
    assert!(
        ids.len() > text.chars().count() / 2,
        "emoji take byte tokens"
    );
    let (pieces, flushed) = stream(&ids, false);
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    assert_eq!(pieces.concat(), text);
    assert!(flushed.is_empty());
}

#[test]
fn cjk_and_accents_stream_whole() {
    let text = "你好，世界！こんにちは 안녕하세요 — naïve café Ωμέγα";
    let ids = tokenizer().encode(text, false).unwrap();
    let (pieces, flushed) = stream(&ids, false);
    assert!(pieces.iter().all(|p| !p.contains('\u{FFFD}')), "{pieces:?}");
    assert_eq!(pieces.concat(), text);
    assert!(flushed.is_empty());
}

#[test]
fn a_lone_byte_token_is_held_then_flushed() {
    // "𠜎" (CJK extension B, F0 A0 9C 8E) is rare enough to be split into byte tokens;
    // feed all but its last token.
    let ids = tokenizer().encode("𠜎", false).unwrap();
    assert!(
        ids.len() > 1,
        "the character is split into byte tokens: {ids:?}"
    );
    let (pieces, flushed) = stream(&ids[..ids.len() - 1], false);
    assert!(pieces.is_empty());
    assert_eq!(
        flushed,
        tokenizer().decode(&ids[..ids.len() - 1], false).unwrap()
    );
    assert!(flushed.contains('\u{FFFD}'));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn streamed_text_equals_full_decode_for_real_text(
        // A literal U+FFFD at the very end is indistinguishable from an incomplete character.
        text in "\\PC{0,40}".prop_map(|t| t.replace(char::REPLACEMENT_CHARACTER, "?")),
    ) {
        let ids = tokenizer().encode(&text, false).unwrap();
        let full = tokenizer().decode(&ids, false).unwrap();
        let (pieces, flushed) = stream(&ids, false);
        prop_assert!(flushed.is_empty(), "valid UTF-8 leaves nothing to flush");
        prop_assert!(pieces.iter().all(|p| !p.contains(char::REPLACEMENT_CHARACTER)));
        prop_assert_eq!(pieces.concat(), full);
    }

    #[test]
    fn streamed_text_equals_full_decode_for_random_ids(
        ids in prop::collection::vec(0u32..151_669, 0..48),
        skip in any::<bool>(),
    ) {
        let full = tokenizer().decode(&ids, skip).unwrap();
        let (pieces, flushed) = stream(&ids, skip);
        prop_assert_eq!(pieces.concat() + &flushed, full);
    }

    #[test]
    fn streamed_text_equals_full_decode_for_spliced_encodes(
        a in "\\PC{0,16}",
        b in "\\PC{0,16}",
        cut_a in any::<prop::sample::Index>(),
        cut_b in any::<prop::sample::Index>(),
    ) {
        // Cutting two encodes mid-way and gluing them yields byte tokens of half characters.
        let ids_a = tokenizer().encode(&a, false).unwrap();
        let ids_b = tokenizer().encode(&b, false).unwrap();
        let mut ids = ids_a[..cut_a.index(ids_a.len() + 1)].to_vec();
        ids.extend_from_slice(&ids_b[cut_b.index(ids_b.len() + 1)..]);
        let full = tokenizer().decode(&ids, false).unwrap();
        let (pieces, flushed) = stream(&ids, false);
        prop_assert_eq!(pieces.concat() + &flushed, full);
    }
}
