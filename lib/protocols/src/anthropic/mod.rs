//! Anthropic Messages API types (`/v1/messages`, `/v1/messages/count_tokens`), its streaming
//! events and its error body, plus body parsing with the reference frontend's messages.

mod request;
mod response;
mod to_chat;

pub use request::{
    CacheControl, ContentBlock, CountTokensRequest, CountTokensResponse, Message, MessageContent,
    MessageRole, MessagesRequest, SystemPrompt, Tool, ToolChoice,
};
pub use response::{
    BlockDelta, ErrorBody, ErrorDetail, MessageDelta, MessagesResponse, ResponseBlock, StopReason,
    StreamEvent, Usage, error_type,
};

use crate::error::ErrorKind;

/// Deserialize a Messages (or count-tokens) body. The error is the invalid-request body the
/// reference frontend returns, e.g. `Failed to deserialize the JSON body into the target type:
/// missing field `max_tokens` at line 1 column 82`.
pub fn parse_request<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ErrorBody> {
    serde_json::from_slice(body).map_err(|e| {
        ErrorBody::new(
            ErrorKind::InvalidRequest,
            format!("Failed to deserialize the JSON body into the target type: {e}"),
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_max_tokens_matches_the_reference() {
        let body = br#"{"model": "qwen2.5-0.5b-mock", "messages": [{"role": "user", "content": "Hello"}]}"#;
        let err = parse_request::<MessagesRequest>(body).unwrap_err();
        assert_eq!(
            serde_json::to_string(&err).unwrap(),
            r#"{"type":"error","error":{"type":"invalid_request_error","message":"Failed to deserialize the JSON body into the target type: missing field `max_tokens` at line 1 column 82"}}"#
        );
        let count: CountTokensRequest = parse_request(body).unwrap();
        assert_eq!(count.messages.len(), 1);
    }
}
