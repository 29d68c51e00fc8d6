//! OpenAI Responses API types (`/v1/responses`, `/v1/responses/input_tokens`): request, the
//! response object with its output items, and the named streaming events.

mod request;
mod response;
mod stream;
mod to_chat;

pub use request::{
    InputContent, InputContentPart, InputItem, InputMessage, InputTokensResponse, ResponseInput,
    ResponseTool, ResponsesRequest, TypedInputItem,
};
pub use response::{
    IncompleteDetails, InputTokensDetails, OutputContent, OutputItem, OutputTokensDetails,
    ResponseObject, ResponseStatus, ResponseUsage,
};
pub use stream::ResponseStreamEvent;
