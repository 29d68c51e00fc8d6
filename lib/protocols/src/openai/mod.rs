//! OpenAI-compatible API types: chat completions, completions, embeddings and models, with
//! Dynamo's root-level extensions, validation and body parsing.

mod aggregate;
mod chat;
mod chat_response;
mod common;
mod completions;
mod completions_response;
mod embeddings;
mod ext;
mod messages;
mod models;
mod parse;
mod to_worker;
mod tools;
mod validate;

pub use aggregate::{ChatAggregator, CompletionAggregator};
pub use chat::{ChatCompletionParams, ChatCompletionRequest};
pub use chat_response::{
    CHAT_COMPLETION_CHUNK_OBJECT, CHAT_COMPLETION_OBJECT, ChatChoice, ChatChunkChoice,
    ChatCompletionChunk, ChatCompletionResponse, ChatDelta, ChatResponseMessage, Role,
};
pub use common::{
    ChatLogprobs, CompletionTokensDetails, FinishReason, PromptTokensDetails, Stop, StreamOptions,
    TokenLogprob, TopLogprob, Usage,
};
pub use completions::{CompletionParams, CompletionRequest, Prompt, PromptItem};
pub use completions_response::{
    CompletionChoice, CompletionChunk, CompletionLogprobs, CompletionPromptTokensDetails,
    CompletionResponse, CompletionUsage, TEXT_COMPLETION_OBJECT,
};
pub use embeddings::{
    Embedding, EmbeddingInput, EmbeddingRequest, EmbeddingResponse, EmbeddingUsage, EmbeddingVector,
};
pub use ext::{CommonExt, PassthroughExt};
pub use messages::{
    AssistantMessage, ChatMessage, ContentPart, FunctionMessage, ImageUrl, InputAudio,
    MessageContent, SystemMessage, ToolMessage, UserMessage, VideoUrl,
};
pub use models::{DEFAULT_OWNER, LIST_OBJECT, MODEL_OBJECT, ModelList, ModelObject};
pub use parse::{RequestError, parse_request};
pub use tools::{
    FunctionCall, FunctionCallDelta, FunctionDefinition, FunctionName, JsonSchemaFormat,
    NamedToolChoice, ResponseFormat, Tool, ToolCall, ToolCallDelta, ToolChoice, ToolChoiceMode,
    ToolType,
};
pub use validate::{
    MAX_FUNCTION_NAME_LEN, MAX_STOP_SEQUENCES, MAX_TOKENS_LIMIT, MAX_TOOLS, Validate,
    ValidationError, ValidationOptions,
};
