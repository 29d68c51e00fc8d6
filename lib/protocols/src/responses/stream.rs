//! Responses API streaming events: `event: <type>\ndata: {"type":<type>,"sequence_number":n,…}`.

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::response::{OutputContent, OutputItem, ResponseObject};

/// One streaming event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type")]
pub enum ResponseStreamEvent {
    /// The response exists.
    #[serde(rename = "response.created")]
    Created {
        /// Event counter.
        sequence_number: u64,
        /// The response so far.
        response: Box<ResponseObject>,
    },
    /// Generation started.
    #[serde(rename = "response.in_progress")]
    InProgress {
        /// Event counter.
        sequence_number: u64,
        /// The response so far.
        response: Box<ResponseObject>,
    },
    /// An output item opens.
    #[serde(rename = "response.output_item.added")]
    OutputItemAdded {
        /// Event counter.
        sequence_number: u64,
        /// Position in `output`.
        output_index: u32,
        /// The empty item.
        item: OutputItem,
    },
    /// A content part opens.
    #[serde(rename = "response.content_part.added")]
    ContentPartAdded {
        /// Event counter.
        sequence_number: u64,
        /// Owning item.
        item_id: String,
        /// Position in `output`.
        output_index: u32,
        /// Position in the item's content.
        content_index: u32,
        /// The empty part.
        part: OutputContent,
    },
    /// More text.
    #[serde(rename = "response.output_text.delta")]
    OutputTextDelta {
        /// Event counter.
        sequence_number: u64,
        /// Owning item.
        item_id: String,
        /// Position in `output`.
        output_index: u32,
        /// Position in the item's content.
        content_index: u32,
        /// New text.
        delta: String,
        /// Log-probabilities of the new tokens.
        #[serde(default)]
        logprobs: Vec<Value>,
    },
    /// The text is complete.
    #[serde(rename = "response.output_text.done")]
    OutputTextDone {
        /// Event counter.
        sequence_number: u64,
        /// Owning item.
        item_id: String,
        /// Position in `output`.
        output_index: u32,
        /// Position in the item's content.
        content_index: u32,
        /// The whole text.
        text: String,
        /// Log-probabilities.
        #[serde(default)]
        logprobs: Vec<Value>,
    },
    /// A content part is complete.
    #[serde(rename = "response.content_part.done")]
    ContentPartDone {
        /// Event counter.
        sequence_number: u64,
        /// Owning item.
        item_id: String,
        /// Position in `output`.
        output_index: u32,
        /// Position in the item's content.
        content_index: u32,
        /// The complete part.
        part: OutputContent,
    },
    /// More function-call arguments.
    #[serde(rename = "response.function_call_arguments.delta")]
    FunctionCallArgumentsDelta {
        /// Event counter.
        sequence_number: u64,
        /// Owning item.
        item_id: String,
        /// Position in `output`.
        output_index: u32,
        /// A JSON fragment.
        delta: String,
    },
    /// The function-call arguments are complete.
    #[serde(rename = "response.function_call_arguments.done")]
    FunctionCallArgumentsDone {
        /// Event counter.
        sequence_number: u64,
        /// Owning item.
        item_id: String,
        /// Position in `output`.
        output_index: u32,
        /// The whole arguments string.
        arguments: String,
    },
    /// An output item is complete.
    #[serde(rename = "response.output_item.done")]
    OutputItemDone {
        /// Event counter.
        sequence_number: u64,
        /// Position in `output`.
        output_index: u32,
        /// The complete item.
        item: OutputItem,
    },
    /// Finished normally.
    #[serde(rename = "response.completed")]
    Completed {
        /// Event counter.
        sequence_number: u64,
        /// The final response.
        response: Box<ResponseObject>,
    },
    /// Stopped early.
    #[serde(rename = "response.incomplete")]
    Incomplete {
        /// Event counter.
        sequence_number: u64,
        /// The final response.
        response: Box<ResponseObject>,
    },
    /// Failed.
    #[serde(rename = "response.failed")]
    Failed {
        /// Event counter.
        sequence_number: u64,
        /// The final response.
        response: Box<ResponseObject>,
    },
    /// A stream error.
    #[serde(rename = "error")]
    Error {
        /// Event counter.
        sequence_number: u64,
        /// Error code.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        code: Option<String>,
        /// Message.
        message: String,
        /// Offending parameter.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        param: Option<String>,
    },
}

impl ResponseStreamEvent {
    /// The SSE `event:` name (the `type`).
    pub fn event_name(&self) -> &'static str {
        match self {
            Self::Created { .. } => "response.created",
            Self::InProgress { .. } => "response.in_progress",
            Self::OutputItemAdded { .. } => "response.output_item.added",
            Self::ContentPartAdded { .. } => "response.content_part.added",
            Self::OutputTextDelta { .. } => "response.output_text.delta",
            Self::OutputTextDone { .. } => "response.output_text.done",
            Self::ContentPartDone { .. } => "response.content_part.done",
            Self::FunctionCallArgumentsDelta { .. } => "response.function_call_arguments.delta",
            Self::FunctionCallArgumentsDone { .. } => "response.function_call_arguments.done",
            Self::OutputItemDone { .. } => "response.output_item.done",
            Self::Completed { .. } => "response.completed",
            Self::Incomplete { .. } => "response.incomplete",
            Self::Failed { .. } => "response.failed",
            Self::Error { .. } => "error",
        }
    }

    /// The SSE frame `event: <type>\ndata: <json>\n\n`.
    pub fn to_sse(&self) -> String {
        let json = serde_json::to_string(self).expect("a ResponseStreamEvent always serializes");
        crate::sse::event(self.event_name(), &json)
    }
}
