//! Every chat, completions and embeddings request captured from the reference frontend
//! (`fixtures/transcript_requests.json`: case name, route, request body, response status and
//! message, extracted from the golden HTTP transcripts) is fed to `parse_request`.
//!
//! - A 400 whose message starts with `Failed to deserialize` or `Validation:` is decided by
//!   this crate: the error body must equal the reference's, byte for byte.
//! - Everything else (200s, 404 unknown model, 415 content type, the mocker's own 400 for a
//!   missing `max_tokens`, the tokenizer's 400 for an out-of-vocabulary id) is decided
//!   elsewhere, so the body must parse and validate.

use serde::Deserialize;
use stator_protocols::ErrorBody;
use stator_protocols::openai::{
    ChatCompletionRequest, CompletionRequest, EmbeddingRequest, RequestError, ValidationOptions,
    parse_request,
};

#[derive(Deserialize)]
struct Transcript {
    case: String,
    path: String,
    status: u16,
    message: Option<String>,
    body: String,
}

impl Transcript {
    fn decided_here(&self) -> bool {
        self.status == 400
            && self.message.as_deref().is_some_and(|m| {
                m.starts_with("Failed to deserialize the JSON body")
                    || m.starts_with("Validation: ")
            })
    }
}

fn parse(case: &Transcript) -> Result<(), RequestError> {
    let opts = ValidationOptions::default();
    let body = case.body.as_bytes();
    match case.path.as_str() {
        "/v1/chat/completions" => parse_request::<ChatCompletionRequest>(body, &opts).map(drop),
        "/v1/completions" => parse_request::<CompletionRequest>(body, &opts).map(drop),
        "/v1/embeddings" => parse_request::<EmbeddingRequest>(body, &opts).map(drop),
        other => panic!("{}: unexpected route {other}", case.case),
    }
}

#[test]
fn every_reference_request_gets_the_reference_outcome() {
    let cases: Vec<Transcript> =
        serde_json::from_str(include_str!("fixtures/transcript_requests.json")).unwrap();
    assert!(cases.len() >= 60, "fixture lost cases: {}", cases.len());
    let mut failures = Vec::new();
    let mut decided = 0;
    for case in &cases {
        let outcome = parse(case);
        if case.decided_here() {
            decided += 1;
            let expected = ErrorBody::with_status(400, case.message.clone().unwrap_or_default());
            match outcome {
                Ok(()) => failures.push(format!("{}: accepted, expected 400", case.case)),
                Err(e) if e.to_error_body() != expected => failures.push(format!(
                    "{}:\n  got      {}\n  expected {}",
                    case.case,
                    e.to_error_body().message,
                    expected.message
                )),
                Err(_) => {}
            }
        } else if let Err(e) = outcome {
            failures.push(format!("{}: rejected with {e}", case.case));
        }
    }
    assert!(decided >= 20, "only {decided} cases decided here");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
