//! `Annotated<R>`: the envelope of every response-stream item.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// `event` value that marks an error item.
pub const ERROR_EVENT: &str = "error";

/// A stream item: data, or an out-of-band annotation (`event` + `comment`), or an error.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Annotated<R> {
    /// The payload.
    #[serde(default = "none", skip_serializing_if = "Option::is_none")]
    pub data: Option<R>,
    /// Item id.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// Annotation name (`formatted_prompt`, `token_ids`, ...) or [`ERROR_EVENT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub event: Option<String>,
    /// Annotation payload lines (SSE comment lines).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<Vec<String>>,
    /// A structured error (the runtime's error object, kept opaque here; boxed to keep items
    /// small).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<Box<Value>>,
}

fn none<R>() -> Option<R> {
    None
}

impl<R> Annotated<R> {
    /// An item carrying `data`.
    pub fn from_data(data: R) -> Self {
        Self {
            data: Some(data),
            id: None,
            event: None,
            comment: None,
            error: None,
        }
    }

    /// An annotation item: `event` with `comment` lines and no data.
    pub fn from_annotation(event: impl Into<String>, comment: Vec<String>) -> Self {
        Self {
            data: None,
            id: None,
            event: Some(event.into()),
            comment: Some(comment),
            error: None,
        }
    }

    /// An error item with `error` as its payload.
    pub fn from_error(error: Value) -> Self {
        Self {
            data: None,
            id: None,
            event: Some(ERROR_EVENT.to_owned()),
            comment: None,
            error: Some(Box::new(error)),
        }
    }

    /// Whether this item reports an error.
    pub fn is_error(&self) -> bool {
        self.error.is_some() || self.event.as_deref() == Some(ERROR_EVENT)
    }

    /// Apply `f` to the payload, keeping the envelope.
    pub fn map_data<U>(self, f: impl FnOnce(R) -> U) -> Annotated<U> {
        Annotated {
            data: self.data.map(f),
            id: self.id,
            event: self.event,
            comment: self.comment,
            error: self.error,
        }
    }
}
