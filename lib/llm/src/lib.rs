//! The LLM serving layer of Stator: what a frontend needs to serve a model a worker publishes.
//!
//! - [`model_card`]: the model deployment card (Dynamo 1.6.1's JSON shape, blake3-checked
//!   files, the `mdc_sum` worker-set checksum), built from a model directory, self-hosted by a
//!   worker and fetched into a verified local cache by a frontend.
//! - [`model_watcher`]: published cards grouped into worker sets, readiness by worker type
//!   and `needs`, and the set/model additions and removals a discovery watch implies.
//! - [`template`]: Hugging Face chat templates rendered with minijinja like transformers does.
//! - [`preprocess`]: prompt formatting, tokenization, stop conditions, the context budget.
//! - [`backend`]: incremental detokenization with hidden stop ids, held-back stop strings and
//!   token limits.
//!
//! The API takes plain inputs (JSON messages, token ids, strings), so the protocol layer maps
//! OpenAI requests onto it and the wire types out of it.
//!
//! ```
//! use serde_json::json;
//! use stator_llm::backend::{DetokenizeOptions, Detokenizer, EngineDelta, FinishReason};
//! use stator_llm::model_card::ModelDeploymentCard;
//! use stator_llm::preprocess::{ModelPreprocessor, StopRequest};
//!
//! // Worker side: describe the model.
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/qwen2.5-0.5b-mock");
//! let card = ModelDeploymentCard::from_local_path(dir, Some("qwen-mock"))?;
//! assert_eq!(serde_json::to_value(&card).unwrap()["model_type"], "Chat | Completions");
//!
//! // Frontend side: preprocess a chat request.
//! let pre = ModelPreprocessor::from_card(&card)?;
//! let messages = json!([{"role": "user", "content": "Hi"}]);
//! let prompt = pre.render_chat(&messages, None, true, None)?;
//! assert!(prompt.ends_with("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n"));
//! let token_ids = pre.tokenize(&prompt, false)?;
//! let stop = vec!["!".to_owned()];
//! let request = StopRequest { max_tokens: Some(16), stop: &stop, ..StopRequest::default() };
//! let conditions = pre.stop_conditions(&request, token_ids.len())?;
//! assert_eq!(conditions.stop_token_ids_hidden, vec![151645, 151643]);
//!
//! // Backward path: detokenize what the engine generates.
//! let options = DetokenizeOptions { stop: conditions, skip_special_tokens: true, ..Default::default() };
//! let mut detokenizer = Detokenizer::new(pre.tokenizer().clone(), &options);
//! let generated = pre.tokenize("Hello there! More", false)?;
//! let out = detokenizer.process(&EngineDelta { token_ids: &generated, ..Default::default() })?;
//! assert_eq!(out.text, "Hello there");
//! assert_eq!(out.finish_reason, Some(FinishReason::Stop));
//! # Ok::<(), stator_llm::Error>(())
//! ```

pub mod backend;
mod error;
pub mod http;
pub mod kv_routing;
pub mod model_card;
pub mod model_manager;
pub mod model_watcher;
pub mod pipeline;
pub mod preprocess;
pub mod template;

pub use error::Error;
