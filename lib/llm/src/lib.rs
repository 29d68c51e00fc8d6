//! The LLM serving layer of Stator.
//!
//! - [`model_card`]: the model deployment card a worker publishes (Dynamo's JSON shape,
//!   blake3-checked files, the `mdc_sum` worker-set checksum).
//! - [`template`]: Hugging Face chat templates rendered with minijinja like transformers does.
//! - [`preprocess`]: prompt formatting, tokenization, stop conditions, the context budget.
//! - [`backend`]: incremental detokenization with hidden stop ids, held-back stop strings and
//!   token limits.
//!
//! ```
//! use stator_llm::model_card::{ModelDeploymentCard, ModelType};
//!
//! let dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../../models/qwen2.5-0.5b-mock");
//! let card = ModelDeploymentCard::from_local_path(dir, Some("qwen-mock"))?;
//! assert_eq!(card.architectural_max_context_length, 32768);
//! assert!(card.model_type.contains(ModelType::CHAT));
//! assert_eq!(card.eos_token_ids()?, vec![151645, 151643]);
//! let json = serde_json::to_value(&card).unwrap();
//! assert_eq!(json["model_type"], "Chat | Completions");
//! # Ok::<(), stator_llm::Error>(())
//! ```

pub mod backend;
mod error;
pub mod model_card;
pub mod preprocess;
pub mod template;

pub use error::Error;
