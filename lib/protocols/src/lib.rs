//! Wire types of the Stator serving path, compatible with NVIDIA Dynamo 1.6.1.
//!
//! - [`openai`]: OpenAI chat completions, completions, embeddings and models types with
//!   Dynamo's root-level extensions, semantic validation and body parsing that produce the
//!   reference frontend's exact 400 messages;
//! - [`responses`]: OpenAI Responses API request, response object and streaming events;
//! - [`anthropic`]: Anthropic Messages request, response, streaming events and error body;
//! - [`nvext`]: the `nvext` request extension (unknown keys rejected) and response object;
//! - [`error`]: the `{message, type, code}` error body, the mid-stream SSE error and the
//!   error-kind → HTTP status mapping;
//! - [`service`]: bodies of the frontend's own routes (`/health`, `/live`, model readiness,
//!   busy thresholds);
//! - [`sse`]: server-sent-event encoding and an incremental parser;
//! - [`worker`]: what the frontend sends a worker (`PreprocessedRequest`) and what the worker
//!   streams back (`Annotated<LLMEngineOutput>`).
//!
//! The crate is pure serde: no async runtime, no HTTP stack.
//!
//! ```
//! use stator_protocols::openai::{parse_request, ChatCompletionRequest, ValidationOptions};
//! use stator_protocols::sse;
//!
//! let body = br#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"max_tokens":0}"#;
//! let err = parse_request::<ChatCompletionRequest>(body, &ValidationOptions::default())
//!     .unwrap_err();
//! assert_eq!(err.to_string(), "Validation: Max tokens must be greater than 0, got 0");
//! assert_eq!(err.to_error_body().code, 400);
//!
//! let body = br#"{"model":"m","messages":[{"role":"user","content":"Hi"}],"stream":true}"#;
//! let req: ChatCompletionRequest = parse_request(body, &ValidationOptions::default()).unwrap();
//! assert!(req.is_stream());
//! assert_eq!(sse::DONE, "data: [DONE]\n\n");
//! ```

pub mod anthropic;
pub mod error;
pub mod nvext;
pub mod openai;
pub mod responses;
pub mod service;
pub mod sse;
pub mod worker;

pub use error::{ErrorBody, ErrorKind, StreamErrorBody};
