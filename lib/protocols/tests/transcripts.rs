//! Every chat, completions, embeddings, Responses and Anthropic Messages request captured from the
//! reference frontend (`fixtures/transcript_requests.json`: case name, route, request body,
//! response status and error message, extracted from the golden HTTP transcripts) is fed to
//! this crate's body parsing.
//!
//! - A 400 whose message starts with `Failed to deserialize` or `Validation:` is decided by
//!   this crate: our message must equal the reference's, byte for byte.
//! - A 400 without a JSON body (`messages_malformed_json`, answered as text/plain by the
//!   reference) must be rejected; we answer it with a JSON error body instead.
//! - Everything else (200s, 404 unknown model, 415 content type, the mocker's own 400 for a
//!   missing `max_tokens`, the tokenizer's 400 for an out-of-vocabulary id) is decided
//!   elsewhere, so the body must parse and validate.

use serde::Deserialize;
use stator_protocols::anthropic::{self, CountTokensRequest, MessagesRequest};
use stator_protocols::openai::{
    ChatCompletionRequest, CompletionRequest, EmbeddingRequest, ValidationOptions, parse_request,
};
use stator_protocols::responses::ResponsesRequest;

#[derive(Deserialize)]
struct Transcript {
    case: String,
    path: String,
    status: u16,
    message: Option<String>,
    body: String,
}

enum Expect<'a> {
    Message(&'a str),
    Rejected,
    Accepted,
}

impl Transcript {
    fn expectation(&self) -> Expect<'_> {
        match (self.status, self.message.as_deref()) {
            (400, Some(m))
                if m.starts_with("Failed to deserialize the JSON body")
                    || m.starts_with("Validation: ") =>
            {
                Expect::Message(m)
            }
            (400, None) => Expect::Rejected,
            _ => Expect::Accepted,
        }
    }

    /// The error message our parsing produces, or `None` when the body is accepted.
    fn parse(&self) -> Option<String> {
        let opts = ValidationOptions::default();
        let body = self.body.as_bytes();
        let openai = |r: Result<(), stator_protocols::openai::RequestError>| {
            r.err().map(|e| e.to_error_body().message)
        };
        let messages = |r: Result<(), anthropic::ErrorBody>| r.err().map(|e| e.error.message);
        match self.path.as_str() {
            "/v1/chat/completions" => {
                openai(parse_request::<ChatCompletionRequest>(body, &opts).map(drop))
            }
            "/v1/completions" => openai(parse_request::<CompletionRequest>(body, &opts).map(drop)),
            "/v1/embeddings" => openai(parse_request::<EmbeddingRequest>(body, &opts).map(drop)),
            "/v1/responses" | "/v1/responses/input_tokens" => {
                openai(parse_request::<ResponsesRequest>(body, &opts).map(drop))
            }
            "/v1/messages" => messages(anthropic::parse_request::<MessagesRequest>(body).map(drop)),
            "/v1/messages/count_tokens" => {
                messages(anthropic::parse_request::<CountTokensRequest>(body).map(drop))
            }
            other => panic!("{}: unexpected route {other}", self.case),
        }
    }
}

#[test]
fn every_reference_request_gets_the_reference_outcome() {
    let cases: Vec<Transcript> =
        serde_json::from_str(include_str!("fixtures/transcript_requests.json")).unwrap();
    assert!(cases.len() >= 80, "fixture lost cases: {}", cases.len());
    let mut failures = Vec::new();
    let mut decided = 0;
    for case in &cases {
        let got = case.parse();
        match (case.expectation(), got) {
            (Expect::Message(expected), Some(got)) => {
                decided += 1;
                if got != expected {
                    failures.push(format!(
                        "{}:\n  got      {got}\n  expected {expected}",
                        case.case
                    ));
                }
            }
            (Expect::Message(_) | Expect::Rejected, None) => {
                failures.push(format!("{}: accepted, expected 400", case.case));
            }
            (Expect::Accepted, Some(got)) => {
                failures.push(format!("{}: rejected with {got}", case.case));
            }
            (Expect::Rejected, Some(_)) | (Expect::Accepted, None) => {}
        }
    }
    assert!(decided >= 20, "only {decided} cases decided here");
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}
