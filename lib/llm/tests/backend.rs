//! The detokenizing backend on the shipped Qwen tokenizer: stop strings, hidden stop ids,
//! token limits, and the streaming invariants (property tests).

use std::path::Path;
use std::sync::{Arc, LazyLock};

use proptest::prelude::*;
use stator_llm::backend::{
    BackendOutput, DetokenizeOptions, Detokenizer, EngineDelta, FinishReason, StopReason,
};
use stator_llm::preprocess::StopConditions;
use stator_tokenizers::{HfTokenizer, TokenId, Tokenizer};

static TOKENIZER: LazyLock<Arc<dyn Tokenizer>> = LazyLock::new(|| {
    let path =
        Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock/tokenizer.json");
    Arc::new(HfTokenizer::from_file(path).expect("shipped tokenizer loads"))
});

const IM_END: TokenId = 151_645;

fn tokenizer() -> Arc<dyn Tokenizer> {
    TOKENIZER.clone()
}

fn encode(text: &str) -> Vec<TokenId> {
    tokenizer().encode(text, false).unwrap()
}

fn options(stop: &[&str], include: bool) -> DetokenizeOptions {
    DetokenizeOptions {
        stop: StopConditions {
            stop: stop.iter().map(|s| (*s).to_owned()).collect(),
            stop_token_ids_hidden: vec![IM_END, 151_643],
            ..StopConditions::default()
        },
        include_stop_str_in_output: include,
        skip_special_tokens: true,
        prompt_token_ids: Vec::new(),
    }
}

/// Feeds `ids` in the given chunks (the last one carries `Length`); collects the outputs.
fn run(detok: &mut Detokenizer, ids: &[TokenId], chunk_ends: &[usize]) -> Vec<BackendOutput> {
    let mut outputs = Vec::new();
    let mut start = 0;
    for (i, &end) in chunk_ends.iter().enumerate() {
        let last = i + 1 == chunk_ends.len();
        outputs.push(
            detok
                .process(&EngineDelta {
                    token_ids: &ids[start..end],
                    text: None,
                    finish_reason: last.then_some(&FinishReason::Length),
                })
                .unwrap(),
        );
        start = end;
    }
    outputs
}

fn text_of(outputs: &[BackendOutput]) -> String {
    outputs.iter().map(|o| o.text.as_str()).collect()
}

fn finish_of(outputs: &[BackendOutput]) -> (Option<FinishReason>, Option<StopReason>) {
    let last = outputs.iter().find(|o| o.finish_reason.is_some());
    (
        last.and_then(|o| o.finish_reason.clone()),
        last.and_then(|o| o.stop_reason.clone()),
    )
}

#[test]
fn stop_string_cuts_the_text_and_sets_the_reason() {
    let ids = encode("The answer is 42. END of story.");
    let mut detok = Detokenizer::new(tokenizer(), &options(&["END"], false));
    let outputs = run(&mut detok, &ids, &(1..=ids.len()).collect::<Vec<_>>());
    assert_eq!(text_of(&outputs), "The answer is 42. ");
    assert_eq!(
        finish_of(&outputs),
        (
            Some(FinishReason::Stop),
            Some(StopReason::String("END".into()))
        )
    );
    assert!(detok.is_finished());
    assert!(
        detok
            .process(&EngineDelta {
                token_ids: &ids,
                ..EngineDelta::default()
            })
            .unwrap()
            == BackendOutput::default()
    );
}

#[test]
fn prompt_context_does_not_leak_into_the_output() {
    let prompt = encode("<|im_start|>assistant\nSure,");
    let ids = encode(" here it is: 😀");
    let mut opts = options(&[], false);
    opts.prompt_token_ids = prompt;
    let mut detok = Detokenizer::new(tokenizer(), &opts);
    let outputs = run(&mut detok, &ids, &(1..=ids.len()).collect::<Vec<_>>());
    assert_eq!(text_of(&outputs), " here it is: 😀");
}

#[test]
fn include_stop_str_in_output_keeps_the_match() {
    let ids = encode("one, two, three");
    let mut detok = Detokenizer::new(tokenizer(), &options(&["two"], true));
    let outputs = run(&mut detok, &ids, &[ids.len()]);
    assert_eq!(text_of(&outputs), "one, two");
}

#[test]
fn hidden_stop_token_ends_without_text() {
    let mut ids = encode("Hello 世界");
    let before = ids.len();
    ids.push(IM_END);
    ids.extend(encode("never shown"));
    let mut detok = Detokenizer::new(tokenizer(), &options(&[], false));
    let outputs = run(&mut detok, &ids, &[2, ids.len()]);
    assert_eq!(text_of(&outputs), "Hello 世界");
    assert_eq!(
        finish_of(&outputs),
        (Some(FinishReason::Stop), Some(StopReason::TokenId(IM_END)))
    );
    let consumed: u32 = outputs.iter().map(|o| o.consumed).sum();
    assert_eq!(consumed as usize, before + 1);
}

#[test]
fn max_tokens_ends_with_length() {
    let ids = encode("a b c d e f");
    let mut opts = options(&[], false);
    opts.stop.max_tokens = Some(3);
    let mut detok = Detokenizer::new(tokenizer(), &opts);
    let out = detok
        .process(&EngineDelta {
            token_ids: &ids,
            ..EngineDelta::default()
        })
        .unwrap();
    assert_eq!(out.consumed, 3);
    assert_eq!(out.text, tokenizer().decode(&ids[..3], true).unwrap());
    assert_eq!(out.finish_reason, Some(FinishReason::Length));
    assert_eq!(detok.generated_tokens(), 3);
}

#[test]
fn min_tokens_defers_stops() {
    let mut ids = encode("x STOP y");
    let n = ids.len() as u32;
    ids.push(IM_END);
    ids.extend(encode(" z STOP"));
    let mut opts = options(&["STOP"], false);
    opts.stop.min_tokens = Some(n + 2);
    let mut detok = Detokenizer::new(tokenizer(), &opts);
    let outputs = run(&mut detok, &ids, &(1..=ids.len()).collect::<Vec<_>>());
    // The first STOP and the EOS come before min_tokens and are ignored (EOS is a special
    // token, skipped in the text); the second STOP ends the sequence.
    assert_eq!(text_of(&outputs), "x STOP y z ");
    assert_eq!(
        finish_of(&outputs),
        (
            Some(FinishReason::Stop),
            Some(StopReason::String("STOP".into()))
        )
    );
}

#[test]
fn engine_finish_flushes_held_text_and_incomplete_characters() {
    let ids = encode("wait ST");
    let mut detok = Detokenizer::new(tokenizer(), &options(&["STOP"], false));
    let outputs = run(&mut detok, &ids, &[ids.len()]);
    assert_eq!(text_of(&outputs), "wait ST");
    assert_eq!(finish_of(&outputs), (Some(FinishReason::Length), None));

    // Half of a 4-byte character: the final flush shows U+FFFD like a full decode would.
    let rare = encode("𠜎");
    let partial = &rare[..rare.len() - 1];
    let mut detok = Detokenizer::new(tokenizer(), &options(&[], false));
    let outputs = run(&mut detok, partial, &[partial.len()]);
    assert_eq!(
        text_of(&outputs),
        tokenizer().decode(partial, true).unwrap()
    );
}

#[test]
fn engine_text_is_used_as_is() {
    let mut detok = Detokenizer::new(tokenizer(), &options(&["!"], false));
    let out = detok
        .process(&EngineDelta {
            token_ids: &[1, 2],
            text: Some("hi! there"),
            finish_reason: None,
        })
        .unwrap();
    assert_eq!(out.text, "hi");
    assert_eq!(out.stop_reason, Some(StopReason::String("!".into())));
}

/// The whole decode cut at the earliest-ending stop-string occurrence.
fn reference(full: &str, stops: &[String], include: bool) -> (String, Option<String>) {
    let found = stops
        .iter()
        .filter_map(|s| {
            full.find(s.as_str())
                .map(|start| (start + s.len(), start, s))
        })
        .min();
    match found {
        Some((end, start, stop)) => (
            full[..if include { end } else { start }].to_owned(),
            Some(stop.clone()),
        ),
        None => (full.to_owned(), None),
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    #[test]
    fn streamed_output_is_the_full_decode_cut_at_the_first_stop(
        text in "[ab .é世😀🦀]{0,30}",
        stops in prop::collection::vec("[ab .é世😀]{1,3}", 0..3),
        cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8),
        include in any::<bool>(),
    ) {
        let ids = encode(&text);
        let full = tokenizer().decode(&ids, true).unwrap();
        let mut ends: Vec<usize> = cuts.iter().map(|c| c.index(ids.len() + 1)).collect();
        ends.push(ids.len());
        ends.sort_unstable();
        ends.dedup();

        let stop_refs: Vec<&str> = stops.iter().map(String::as_str).collect();
        let mut detok = Detokenizer::new(tokenizer(), &options(&stop_refs, include));
        let outputs = run(&mut detok, &ids, &ends);

        let (expected, expected_stop) = reference(&full, &stops, include);
        // Never retracted: every prefix of the stream is a prefix of the final answer.
        let mut shown = String::new();
        for out in &outputs {
            shown.push_str(&out.text);
            prop_assert!(expected.starts_with(&shown), "{shown:?} vs {expected:?}");
        }
        prop_assert_eq!(&shown, &expected);
        // Exactly one finishing output, and nothing after it.
        let finishing: Vec<usize> = outputs
            .iter()
            .enumerate()
            .filter(|(_, o)| o.finish_reason.is_some())
            .map(|(i, _)| i)
            .collect();
        prop_assert_eq!(finishing.len(), 1);
        prop_assert!(outputs[finishing[0] + 1..].iter().all(|o| *o == BackendOutput::default()));
        let (reason, stop_reason) = finish_of(&outputs);
        let expected_reason = if expected_stop.is_some() {
            FinishReason::Stop
        } else {
            FinishReason::Length
        };
        prop_assert_eq!(reason, Some(expected_reason));
        prop_assert_eq!(stop_reason, expected_stop.map(StopReason::String));
    }
}
