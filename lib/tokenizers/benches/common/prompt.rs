//! The benchmark prompt: a rendered Qwen chat prompt shaped like `benches/loadgen`'s workload
//! (a ~400-word system prompt and a ~100-word user message, ~520 tokens).

const WORDS: &str = "time year people way day man thing woman life child world school state \
    family student group country problem hand part place case week company system program \
    question work number night point home water room mother area money story fact month lot \
    right study book eye job word business issue side kind head house service friend father \
    power hour game line end member law car city name team minute idea kid body back parent \
    face level office door health art war history party result change morning reason research";

/// The rendered chat prompt.
pub fn chat_prompt() -> String {
    let words: Vec<&str> = WORDS.split_whitespace().collect();
    let pick = |seed: usize, count: usize| {
        (0..count)
            .map(|i| words[(i * 7 + seed * 13 + i * i) % words.len()])
            .collect::<Vec<_>>()
            .join(" ")
    };
    format!(
        "<|im_start|>system\nYou are assistant number 0. {}.<|im_end|>\n<|im_start|>user\n\
         Request 7: {}.<|im_end|>\n<|im_start|>assistant\n",
        pick(1, 400),
        pick(2, 100)
    )
}

/// The shipped Qwen2.5 tokenizer.
pub const TOKENIZER_JSON: &str = concat!(
    env!("CARGO_MANIFEST_DIR"),
    "/../../models/qwen2.5-0.5b-mock/tokenizer.json"
);
