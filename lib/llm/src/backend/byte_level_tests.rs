//! The byte-level stream against `DecodeStream` on the shipped Qwen2.5 tokenizer.

use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use stator_tokenizers::{DecodeStream, TokenId, Tokenizer};

use super::{ByteLevel, ByteStream};

const TOKENIZER_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/qwen2.5-0.5b-mock/tokenizer.json"
);

static SHIPPED: LazyLock<(Arc<dyn Tokenizer>, Arc<ByteLevel>)> = LazyLock::new(|| {
    let json = std::fs::read(TOKENIZER_JSON).expect("shipped tokenizer.json");
    let tokenizer = stator_tokenizers::load_bytes(&json).expect("loads");
    let reading = ByteLevel::new(&*tokenizer, &json).expect("Qwen2.5 is byte-level");
    (tokenizer, Arc::new(reading))
});

/// Per-step pieces and the flush of both streams for `ids`.
fn both(ids: &[TokenId], prompt: &[TokenId], skip: bool) -> [(Vec<String>, String); 2] {
    let (tokenizer, reading) = &*SHIPPED;
    let mut window = DecodeStream::with_prompt(Arc::clone(tokenizer), prompt, skip);
    let mut bytes = ByteStream::new(Arc::clone(reading), skip);
    let mut pieces = [Vec::new(), Vec::new()];
    for &id in ids {
        let mut a = String::new();
        window.step_into(id, &mut a).expect("decodes");
        pieces[0].push(a);
        let mut b = String::new();
        bytes.step_into(id, &mut b);
        pieces[1].push(b);
    }
    let [a, b] = pieces;
    [(a, window.flush().expect("decodes")), (b, bytes.flush())]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    /// Text split into byte tokens (multi-byte characters across tokens) and special tokens.
    #[test]
    fn pieces_equal_the_window_decoder(
        text in "[a-z é中😀\n<|>]{0,24}",
        specials in prop::collection::vec(151_643u32..151_669, 0..3),
        prompt in prop::collection::vec(0u32..151_669, 0..6),
        skip in any::<bool>(),
    ) {
        let (tokenizer, _) = &*SHIPPED;
        let mut ids = tokenizer.encode(&text, false).unwrap();
        ids.extend(specials);
        let [window, bytes] = both(&ids, &prompt, skip);
        prop_assert_eq!(window, bytes);
    }

    /// Arbitrary ids, unknown ones and lone byte tokens included.
    #[test]
    fn arbitrary_ids_decode_alike(
        ids in prop::collection::vec(prop_oneof![0u32..256, 0u32..151_700], 0..24),
        skip in any::<bool>(),
    ) {
        let [window, bytes] = both(&ids, &[], skip);
        prop_assert_eq!(window, bytes);
    }
}

#[test]
fn other_decoders_are_refused() {
    let (tokenizer, _) = &*SHIPPED;
    let json = br#"{"added_tokens": [], "decoder": {"type": "Metaspace"}}"#;
    assert!(ByteLevel::new(&**tokenizer, json).is_none());
    let none = br#"{"added_tokens": []}"#;
    assert!(ByteLevel::new(&**tokenizer, none).is_none());
}

#[test]
fn a_character_split_across_tokens_is_held_until_complete() {
    let (tokenizer, reading) = &*SHIPPED;
    let ids = tokenizer.encode("😀", false).unwrap();
    let mut stream = ByteStream::new(Arc::clone(reading), true);
    let mut out = String::new();
    for &id in &ids {
        stream.step_into(id, &mut out);
    }
    assert_eq!(out, "😀");
    assert_eq!(stream.flush(), "");
}
