//! Errors of the per-model pipeline and their HTTP shape.

use stator_protocols::error::SERVICE_UNAVAILABLE;
use stator_protocols::{ErrorBody, ErrorKind, StreamErrorBody};
use stator_runtime::{ErrorClass, StatorError};

/// Why a request failed inside the pipeline.
#[derive(Debug, Clone, thiserror::Error)]
pub enum PipelineError {
    /// The request cannot be served as asked (context budget, template refusal, bad tokens).
    #[error("{0}")]
    InvalidRequest(String),
    /// The model is registered but no worker can take the request now.
    #[error("model {0} is not ready")]
    NotReady(String),
    /// The request plane or the worker failed.
    #[error("{0}")]
    Worker(#[from] StatorError),
    /// The worker reported an error in its stream.
    #[error("{0}")]
    Engine(String),
    /// A defect in the frontend.
    #[error("{0}")]
    Internal(String),
}

impl PipelineError {
    /// The HTTP error class.
    pub fn kind(&self) -> ErrorKind {
        match self {
            Self::InvalidRequest(_) => ErrorKind::InvalidRequest,
            Self::NotReady(_) => ErrorKind::Unavailable,
            Self::Worker(e) => {
                ErrorKind::from_status_code(e.http_status()).unwrap_or(ErrorKind::Internal)
            }
            Self::Engine(_) | Self::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The client-facing message: worker details stay in the logs unless they are public.
    fn public_message(&self) -> String {
        match self {
            Self::InvalidRequest(m) => m.clone(),
            Self::NotReady(model) => ErrorBody::model_not_ready(model).message,
            Self::Worker(e) => match self.kind() {
                ErrorKind::InvalidRequest => e.public_text().unwrap_or(e.message()).to_owned(),
                ErrorKind::Unavailable => SERVICE_UNAVAILABLE.to_owned(),
                ErrorKind::Overloaded | ErrorKind::DeadlineExceeded | ErrorKind::Cancelled => {
                    e.public_text().unwrap_or(e.message()).to_owned()
                }
                _ => e
                    .public_text()
                    .unwrap_or("Internal server error")
                    .to_owned(),
            },
            Self::Engine(_) | Self::Internal(_) => "Internal server error".to_owned(),
        }
    }

    /// The JSON body of an error answered before the response started.
    pub fn to_error_body(&self) -> ErrorBody {
        ErrorBody::new(self.kind(), self.public_message())
    }

    /// The SSE error event of an error after the stream started.
    pub fn to_stream_error(&self) -> StreamErrorBody {
        StreamErrorBody::new(self.kind(), self.public_message())
    }

    /// The `error_type` label of `requests_total`.
    pub fn metric_error_type(&self) -> &'static str {
        match self.kind() {
            ErrorKind::InvalidRequest | ErrorKind::PayloadTooLarge => "validation",
            ErrorKind::NotFound => "not_found",
            ErrorKind::Overloaded | ErrorKind::RateLimited => "overload",
            ErrorKind::Unavailable => "unavailable",
            ErrorKind::Cancelled => "cancelled",
            ErrorKind::DeadlineExceeded => "response_timeout",
            ErrorKind::NotImplemented => "not_implemented",
            _ => "internal",
        }
    }

    /// Whether the router found no instance to send to (the model is not ready).
    pub(crate) fn from_route(model: &str, err: StatorError) -> Self {
        if err.specific_class() == ErrorClass::Unavailable {
            Self::NotReady(model.to_owned())
        } else {
            Self::Worker(err)
        }
    }
}

impl From<crate::Error> for PipelineError {
    fn from(err: crate::Error) -> Self {
        use crate::Error;
        match err {
            Error::ContextLengthExceeded(m) | Error::TemplateRaised(m) => Self::InvalidRequest(m),
            Error::Tokenizer(_) => Self::InvalidRequest("Invalid request".to_owned()),
            Error::NoChatTemplate => {
                Self::InvalidRequest("The model has no chat template".to_owned())
            }
            other => Self::Internal(other.to_string()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn worker_errors_map_to_their_status_and_public_message() {
        let err = PipelineError::Worker(StatorError::disconnected("socket closed"));
        assert_eq!(
            err.to_error_body().to_json(),
            r#"{"message":"Service temporarily unavailable","type":"Service Unavailable","code":503}"#
        );
        assert_eq!(
            err.to_stream_error().to_json(),
            r#"{"error":{"message":"Service temporarily unavailable","type":"service_unavailable","code":503}}"#
        );
        let bad = PipelineError::Worker(StatorError::invalid_request("max_tokens is required"));
        assert_eq!(bad.to_error_body().code, 400);
        assert_eq!(bad.to_error_body().message, "max_tokens is required");
        assert_eq!(bad.metric_error_type(), "validation");
    }

    #[test]
    fn no_instance_means_not_ready() {
        let err = PipelineError::from_route("m", StatorError::unavailable("no instances"));
        let body = err.to_error_body();
        assert_eq!(body.code, 503);
        assert!(body.message.starts_with("Model `m` is not ready"));
        let err = PipelineError::from_route("m", StatorError::cannot_connect("refused"));
        assert_eq!(
            err.to_error_body().message,
            "Service temporarily unavailable"
        );
    }
}
