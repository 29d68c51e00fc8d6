//! `BpeTokenizer` against Hugging Face `tokenizers` (`HfTokenizer`) on the shipped Qwen2.5
//! tokenizer and on variants of it that exercise the other supported pipelines (GPT-2 split,
//! Llama 3 digit runs, `ignore_merges`, a BOS template, added-token flags).

use std::sync::LazyLock;

use proptest::prelude::*;
use serde_json::{Value, json};
use stator_tokenizers::{BpeTokenizer, HfTokenizer, TokenId, Tokenizer, TokenizerError};

const TOKENIZER_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/qwen2.5-0.5b-mock/tokenizer.json"
);

/// A fast and a reference tokenizer built from the same file.
struct Pair {
    fast: BpeTokenizer,
    hf: HfTokenizer,
}

impl Pair {
    fn from_json(json: &Value) -> Self {
        let bytes = serde_json::to_vec(json).expect("serializable");
        Self {
            fast: BpeTokenizer::from_bytes(&bytes).expect("supported tokenizer"),
            hf: HfTokenizer::from_bytes(&bytes).expect("valid tokenizer"),
        }
    }

    /// Asserts that both encode `text` (with and without special tokens) and decode the
    /// result (with and without skipping specials) identically.
    fn check(&self, text: &str) -> Result<(), TestCaseError> {
        for add_special_tokens in [false, true] {
            let ids = self.hf.encode(text, add_special_tokens).unwrap();
            prop_assert_eq!(
                &self.fast.encode(text, add_special_tokens).unwrap(),
                &ids,
                "encode {:?} add_special_tokens={}",
                text,
                add_special_tokens
            );
            self.check_decode(&ids)?;
        }
        Ok(())
    }

    fn check_decode(&self, ids: &[TokenId]) -> Result<(), TestCaseError> {
        for skip in [false, true] {
            prop_assert_eq!(
                self.fast.decode(ids, skip).unwrap(),
                self.hf.decode(ids, skip).unwrap(),
                "decode {:?} skip_special_tokens={}",
                ids,
                skip
            );
        }
        Ok(())
    }
}

fn qwen_json() -> Value {
    let text = std::fs::read_to_string(TOKENIZER_JSON).expect("shipped tokenizer.json");
    serde_json::from_str(&text).expect("valid JSON")
}

static QWEN: LazyLock<Pair> = LazyLock::new(|| Pair::from_json(&qwen_json()));

/// Llama 3 / GPT-4 style: digit runs of up to three, `ignore_merges`, a BOS template, and
/// added tokens with `lstrip` / `rstrip` / `single_word` / `normalized` flags.
static LLAMA_LIKE: LazyLock<Pair> = LazyLock::new(|| {
    let mut json = qwen_json();
    json["pre_tokenizer"]["pretokenizers"][0]["pattern"]["Regex"] = json!(
        r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
    );
    json["model"]["ignore_merges"] = json!(true);
    json["post_processor"] = json!({"type": "Sequence", "processors": [
        {"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true},
        {"type": "TemplateProcessing",
         "single": [{"SpecialToken": {"id": "<|endoftext|>", "type_id": 0}},
                    {"Sequence": {"id": "A", "type_id": 0}}],
         "pair": [{"Sequence": {"id": "A", "type_id": 0}}, {"Sequence": {"id": "B", "type_id": 1}}],
         "special_tokens": {"<|endoftext|>": {"id": "<|endoftext|>", "ids": [151_643],
                                               "tokens": ["<|endoftext|>"]}}}]});
    let added = json["added_tokens"].as_array_mut().expect("added tokens");
    for (content, flags) in [
        (
            "<lstrip>",
            json!({"lstrip": true, "rstrip": false, "single_word": false}),
        ),
        (
            "<rstrip>",
            json!({"lstrip": false, "rstrip": true, "single_word": false}),
        ),
        (
            "word",
            json!({"lstrip": false, "rstrip": false, "single_word": true}),
        ),
        (
            "café",
            json!({"lstrip": false, "rstrip": false, "single_word": false}),
        ),
    ] {
        let mut token = json!({"id": 0, "content": content, "normalized": content == "café",
                               "special": content == "<lstrip>"});
        for (k, v) in flags.as_object().expect("object") {
            token[k] = v.clone();
        }
        added.push(token);
    }
    Pair::from_json(&json)
});

/// GPT-2 style: a plain `ByteLevel` pre-tokenizer with its own regex, no normalizer.
static GPT2_LIKE: LazyLock<Pair> = LazyLock::new(|| {
    let mut json = qwen_json();
    json["normalizer"] = Value::Null;
    json["pre_tokenizer"] = json!({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true});
    Pair::from_json(&json)
});

fn pairs() -> [&'static Pair; 3] {
    [&QWEN, &LLAMA_LIKE, &GPT2_LIKE]
}

/// Fragments that exercise every stage: added tokens, NFC, contractions, digit and
/// whitespace runs, CJK, emoji, combining marks.
fn fragment() -> impl Strategy<Value = String> {
    let fixed = proptest::sample::select(vec![
        "<|im_start|>",
        "<|im_end|>",
        "<|endoftext|>",
        "<tool_call>",
        "</tool_call>",
        "<|im_",
        "<lstrip>",
        "<rstrip>",
        "word",
        "words",
        "café",
        "cafe\u{301}",
        "'s",
        "'LL",
        "'Re",
        " 's",
        "'ſ",
        "12345",
        "3.14159",
        " 1,000",
        "   ",
        "\n\n",
        "\r\n",
        " \n ",
        "\t",
        "\u{a0}",
        "\u{3000}",
        "你好世界",
        "こんにちは",
        "한국어",
        "😀",
        "👨‍👩‍👧",
        "🇯🇵",
        "e\u{301}",
        "A\u{30A}",
        "\u{1100}\u{1161}\u{11A8}",
        "\u{301}",
        "Ω",
        "ﬁ",
        "hello",
        " world",
        "Hello",
        "HELLO",
        "fn main() {",
        "    return x;",
        "}",
        "!!",
        "...",
        "«»",
        "\u{200b}",
        "\u{0}",
        "\u{85}",
    ])
    .prop_map(str::to_owned);
    prop_oneof![
        3 => fixed,
        2 => "\\PC{1,6}",
        1 => any::<String>().prop_map(|s| s.chars().take(6).collect()),
        1 => "[a-zA-Z' ]{1,12}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    proptest::collection::vec(fragment(), 0..12).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(192))]

    #[test]
    fn encode_and_decode_match_hf(text in text()) {
        for pair in pairs() {
            pair.check(&text)?;
        }
    }

    #[test]
    fn decoding_any_ids_matches_hf(ids in proptest::collection::vec(
        prop_oneof![0u32..151_700, 151_640u32..151_700, 0u32..300], 0..24)
    ) {
        for pair in pairs() {
            pair.check_decode(&ids)?;
        }
    }

    #[test]
    fn vocabulary_lookups_match_hf(id in 0u32..151_700, token in "\\PC{1,4}") {
        for pair in pairs() {
            prop_assert_eq!(pair.fast.id_to_token(id), pair.hf.id_to_token(id));
            let known = pair.hf.id_to_token(id).unwrap_or_default();
            prop_assert_eq!(pair.fast.token_to_id(&known), pair.hf.token_to_id(&known));
            prop_assert_eq!(pair.fast.token_to_id(&token), pair.hf.token_to_id(&token));
        }
    }
}

#[test]
fn vocab_sizes_match_hf() {
    for pair in pairs() {
        assert_eq!(pair.fast.vocab_size(), pair.hf.vocab_size());
    }
    assert_eq!(QWEN.fast.vocab_size(), 151_669);
}

#[test]
fn fixed_corpus_matches_hf() {
    let corpus = [
        "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n<|im_start|>user\n\
         What's the weather like in Paris today? I'd like to know if it'll rain.<|im_end|>\n\
         <|im_start|>assistant\n",
        "fn main() {\n    let xs: Vec<u32> = (0..10).map(|x| x * 2).collect();\n\
         \tprintln!(\"{xs:?}\");\r\n}\n\n\n",
        "def f(a, b=1e-3):\n    return a**2 + b  # comment\n",
        "Le café coûte 3,50 € — naïve Ångström. Grüße aus Köln! ¿Qué tal? Ελληνικά Русский",
        "中文分词测试，包括标点符号。日本語のテキスト。한국어 텍스트입니다. हिन्दी पाठ. العربية",
        "emoji 😀😃😄 👩🏽‍💻 🏳️‍🌈 and numbers 1234567890 ½ ² ٣",
        "   leading spaces, trailing spaces   \n\n\n  \t  \r\n",
        "HE'S 'S 'LL 'll 'Ll 'd 'M 've 're",
        "",
    ];
    for text in corpus {
        for pair in pairs() {
            pair.check(text).unwrap();
        }
    }
}

#[test]
fn unsupported_files_are_refused_and_load_falls_back() {
    let mut json = qwen_json();
    json["normalizer"] = json!({"type": "Lowercase"});
    let bytes = serde_json::to_vec(&json).unwrap();
    assert!(matches!(
        BpeTokenizer::from_bytes(&bytes),
        Err(TokenizerError::Unsupported(_))
    ));
    let loaded = stator_tokenizers::load_bytes(&bytes).unwrap();
    let hf = HfTokenizer::from_bytes(&bytes).unwrap();
    assert_eq!(
        loaded.encode("HeLLo World", false).unwrap(),
        hf.encode("HeLLo World", false).unwrap()
    );

    let fast = stator_tokenizers::load(TOKENIZER_JSON).unwrap();
    assert_eq!(
        fast.encode("<|im_start|>user\nhi<|im_end|>", false)
            .unwrap(),
        vec![151_644, 872, 198, 6023, 151_645]
    );
    assert!(matches!(
        stator_tokenizers::load("/nonexistent/tokenizer.json"),
        Err(TokenizerError::Load { .. })
    ));
}
