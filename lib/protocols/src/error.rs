//! HTTP error bodies and the error-kind → status mapping used at the edge.
//!
//! Two shapes exist on the wire:
//! - a JSON response body `{"message", "type", "code"}` where `type` is the HTTP reason
//!   phrase (`"Bad Request"`) and `code` the status number ([`ErrorBody`]);
//! - a mid-stream SSE error event `{"error": {"message", "type", "code"}}` where `type` is the
//!   snake-case slug of the reason phrase (`"service_unavailable"`) ([`StreamErrorBody`]).

use serde::{Deserialize, Serialize};

/// The class of an error as seen by an HTTP client; decides the status code.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// 400: malformed or semantically invalid request.
    InvalidRequest,
    /// 401: missing or bad credentials.
    Unauthenticated,
    /// 403: credentials valid but not allowed.
    PermissionDenied,
    /// 404: unknown model or route.
    NotFound,
    /// 405: route exists, method does not.
    MethodNotAllowed,
    /// 409: conflicting state.
    Conflict,
    /// 413: body over the configured limit.
    PayloadTooLarge,
    /// 415: body is not JSON.
    UnsupportedMediaType,
    /// 429: client sends too fast.
    RateLimited,
    /// 499: the client went away before anything was delivered.
    Cancelled,
    /// 500: a bug or an unexpected failure.
    Internal,
    /// 501: feature not implemented.
    NotImplemented,
    /// 502: a worker answered with something that breaks the protocol.
    BackendProtocol,
    /// 503: no worker can serve the request right now.
    Unavailable,
    /// 504: the request ran past its deadline.
    DeadlineExceeded,
    /// 529: every worker is saturated (Dynamo's overload status).
    Overloaded,
}

impl ErrorKind {
    /// The HTTP status code for this kind.
    pub const fn status_code(self) -> u16 {
        match self {
            Self::InvalidRequest => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::MethodNotAllowed => 405,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMediaType => 415,
            Self::RateLimited => 429,
            Self::Cancelled => 499,
            Self::Internal => 500,
            Self::NotImplemented => 501,
            Self::BackendProtocol => 502,
            Self::Unavailable => 503,
            Self::DeadlineExceeded => 504,
            Self::Overloaded => 529,
        }
    }

    /// The kind for a status code, if the code is one this enum knows.
    pub const fn from_status_code(code: u16) -> Option<Self> {
        Some(match code {
            400 => Self::InvalidRequest,
            401 => Self::Unauthenticated,
            403 => Self::PermissionDenied,
            404 => Self::NotFound,
            405 => Self::MethodNotAllowed,
            409 => Self::Conflict,
            413 => Self::PayloadTooLarge,
            415 => Self::UnsupportedMediaType,
            429 => Self::RateLimited,
            499 => Self::Cancelled,
            500 => Self::Internal,
            501 => Self::NotImplemented,
            502 => Self::BackendProtocol,
            503 => Self::Unavailable,
            504 => Self::DeadlineExceeded,
            529 => Self::Overloaded,
            _ => return None,
        })
    }

    /// The HTTP reason phrase, used as the `type` of an [`ErrorBody`].
    pub const fn reason_phrase(self) -> &'static str {
        reason_phrase(self.status_code())
    }

    /// The snake-case slug of the reason phrase, used as the `type` of a [`StreamErrorBody`].
    pub fn slug(self) -> String {
        slug(self.reason_phrase())
    }
}

/// The reason phrase for a status code (`"Unknown Error"` for codes without one).
pub const fn reason_phrase(code: u16) -> &'static str {
    match code {
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Payload Too Large",
        415 => "Unsupported Media Type",
        422 => "Unprocessable Entity",
        429 => "Too Many Requests",
        499 => "Client Closed Request",
        500 => "Internal Server Error",
        501 => "Not Implemented",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        529 => "Site Overloaded",
        _ => "Unknown Error",
    }
}

/// Lower-case a reason phrase and join its words with `_` (`"Service Unavailable"` →
/// `"service_unavailable"`).
pub fn slug(phrase: &str) -> String {
    phrase
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_lowercase)
        .collect::<Vec<_>>()
        .join("_")
}

/// The JSON body of an error response on the OpenAI routes.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ErrorBody {
    /// Human-readable message.
    pub message: String,
    /// HTTP reason phrase of the status (`"Bad Request"`).
    #[serde(rename = "type")]
    pub error_type: String,
    /// HTTP status code.
    pub code: u16,
    /// Optional structured details (e.g. `{"backend_status": 500}`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub details: Option<serde_json::Value>,
}

impl ErrorBody {
    /// An error body for `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self::with_status(kind.status_code(), message)
    }

    /// An error body for an arbitrary status code.
    pub fn with_status(code: u16, message: impl Into<String>) -> Self {
        Self {
            message: message.into(),
            error_type: reason_phrase(code).to_owned(),
            code,
            details: None,
        }
    }

    /// The JSON encoding of this body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("an ErrorBody always serializes")
    }

    /// 404 `Model not found`.
    pub fn model_not_found() -> Self {
        Self::new(ErrorKind::NotFound, "Model not found")
    }

    /// 404 for the router fallback: `Route not found: POST /v1/nothing`.
    pub fn route_not_found(method: &str, path: &str) -> Self {
        Self::new(
            ErrorKind::NotFound,
            format!("Route not found: {method} {path}"),
        )
    }

    /// 503 for a model whose worker sets are not ready. The reference elides the middle of
    /// its message; the sentence between the two observed ends is Stator's.
    pub fn model_not_ready(model: &str) -> Self {
        Self::new(
            ErrorKind::Unavailable,
            format!(
                "Model `{model}` is not ready to serve requests yet. \
                 Its workers are still starting or some required worker type is missing. \
                 Please retry shortly."
            ),
        )
    }

    /// 503 `Service temporarily unavailable` (no reachable worker).
    pub fn service_unavailable() -> Self {
        Self::new(ErrorKind::Unavailable, SERVICE_UNAVAILABLE)
    }

    /// 415 `Expected request with Content-Type application/json`.
    pub fn unsupported_media_type() -> Self {
        Self::new(
            ErrorKind::UnsupportedMediaType,
            "Expected request with Content-Type application/json",
        )
    }

    /// 413 for a body over `DYN_HTTP_BODY_LIMIT_MB`.
    pub fn payload_too_large(limit_mb: u64) -> Self {
        Self::new(
            ErrorKind::PayloadTooLarge,
            format!(
                "Request body exceeds the limit of {limit_mb} MB set by DYN_HTTP_BODY_LIMIT_MB"
            ),
        )
    }
}

/// Message of a 503 when no worker can be reached, unary or mid-stream.
pub const SERVICE_UNAVAILABLE: &str = "Service temporarily unavailable";

/// The inner object of a mid-stream SSE error event.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamErrorDetail {
    /// Human-readable message.
    pub message: String,
    /// Snake-case slug of the reason phrase (`"service_unavailable"`).
    #[serde(rename = "type")]
    pub error_type: String,
    /// HTTP status code the error would have had before the stream started.
    pub code: u16,
}

/// A mid-stream SSE error event body: `{"error": {"message", "type", "code"}}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StreamErrorBody {
    /// The error.
    pub error: StreamErrorDetail,
}

impl StreamErrorBody {
    /// A stream error for `kind` with `message`.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        Self {
            error: StreamErrorDetail {
                message: message.into(),
                error_type: kind.slug(),
                code: kind.status_code(),
            },
        }
    }

    /// The JSON encoding of this body.
    pub fn to_json(&self) -> String {
        serde_json::to_string(self).expect("a StreamErrorBody always serializes")
    }

    /// The mid-stream error for a worker stream that broke off.
    pub fn service_unavailable() -> Self {
        Self::new(ErrorKind::Unavailable, SERVICE_UNAVAILABLE)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_body_matches_the_reference_shape() {
        let body = ErrorBody::new(ErrorKind::NotFound, "Model not found");
        assert_eq!(
            body.to_json(),
            r#"{"message":"Model not found","type":"Not Found","code":404}"#
        );
    }

    #[test]
    fn stream_error_uses_the_slug() {
        let body = StreamErrorBody::new(ErrorKind::Unavailable, "Service temporarily unavailable");
        assert_eq!(
            body.to_json(),
            r#"{"error":{"message":"Service temporarily unavailable","type":"service_unavailable","code":503}}"#
        );
        assert_eq!(ErrorKind::Internal.slug(), "internal_server_error");
    }

    #[test]
    fn every_kind_round_trips_through_its_status() {
        let kinds = [
            ErrorKind::InvalidRequest,
            ErrorKind::Unauthenticated,
            ErrorKind::PermissionDenied,
            ErrorKind::NotFound,
            ErrorKind::MethodNotAllowed,
            ErrorKind::Conflict,
            ErrorKind::PayloadTooLarge,
            ErrorKind::UnsupportedMediaType,
            ErrorKind::RateLimited,
            ErrorKind::Cancelled,
            ErrorKind::Internal,
            ErrorKind::NotImplemented,
            ErrorKind::BackendProtocol,
            ErrorKind::Unavailable,
            ErrorKind::DeadlineExceeded,
            ErrorKind::Overloaded,
        ];
        for kind in kinds {
            assert_eq!(ErrorKind::from_status_code(kind.status_code()), Some(kind));
            assert_ne!(kind.reason_phrase(), "Unknown Error");
        }
    }

    #[test]
    fn canned_bodies_match_the_transcripts() {
        assert_eq!(
            ErrorBody::route_not_found("GET", "/v1/does-not-exist").to_json(),
            r#"{"message":"Route not found: GET /v1/does-not-exist","type":"Not Found","code":404}"#
        );
        assert_eq!(
            ErrorBody::payload_too_large(45).to_json(),
            r#"{"message":"Request body exceeds the limit of 45 MB set by DYN_HTTP_BODY_LIMIT_MB","type":"Payload Too Large","code":413}"#
        );
        assert_eq!(
            ErrorBody::unsupported_media_type().to_json(),
            r#"{"message":"Expected request with Content-Type application/json","type":"Unsupported Media Type","code":415}"#
        );
        assert_eq!(ErrorBody::model_not_found().code, 404);
        let not_ready = ErrorBody::model_not_ready("qwen-mock");
        assert_eq!(not_ready.code, 503);
        assert!(
            not_ready
                .message
                .starts_with("Model `qwen-mock` is not ready to serve requests yet.")
        );
        assert!(not_ready.message.ends_with("Please retry shortly."));
        assert_eq!(
            StreamErrorBody::service_unavailable().to_json(),
            r#"{"error":{"message":"Service temporarily unavailable","type":"service_unavailable","code":503}}"#
        );
    }

    #[test]
    fn details_are_kept_when_present() {
        let json = r#"{"message":"Internal server error","type":"Internal Server Error","code":500,"details":{"backend_status":500}}"#;
        let body: ErrorBody = serde_json::from_str(json).unwrap();
        assert_eq!(body.code, 500);
        assert_eq!(body.to_json(), json);
    }
}
