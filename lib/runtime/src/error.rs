//! The typed error that crosses the wire: class, reason, message (Dynamo 1.6.1 `DynamoError`).
//!
//! A [`StatorError`] says *what* failed ([`ErrorClass`]) and *why* ([`ErrorReason`], a closed
//! catalog). Policy derives from that identity in one place: [`StatorError::http_status`] for
//! the HTTP edge, [`StatorError::is_migratable`] for request migration and
//! [`StatorError::inhibits_instance`] for fault inhibition. The JSON form is Dynamo's: `class`,
//! `reason`, the legacy `error_type` and `message`, plus optional client-safe `public` details;
//! an unknown or mismatched class/reason pair decodes as `Internal`/`runtime.invalid_error`.

mod class;
mod wire;

pub use class::{ErrorClass, ErrorReason};

use serde::{Deserialize, Serialize};

/// Client-safe details an error may carry; everything else stays operator-only.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum PublicDetails {
    /// A fixed, client-safe message.
    Message {
        /// The message text.
        message: String,
    },
    /// A size limit was exceeded.
    SizeLimit {
        /// The limit.
        limit: u64,
        /// The observed size, when known.
        actual: Option<u64>,
    },
    /// A context-length limit was exceeded.
    ContextLength {
        /// The limit.
        limit: u64,
        /// The observed length, when known.
        actual: Option<u64>,
    },
    /// A rate limit was exceeded.
    RateLimit {
        /// The limit, when known.
        limit: Option<u64>,
        /// Remaining budget, when known.
        remaining: Option<u64>,
    },
}

/// A classified runtime error, serializable for the wire.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{class}: {message}")]
pub struct StatorError {
    class: ErrorClass,
    reason: ErrorReason,
    message: String,
    public: Option<PublicDetails>,
}

impl StatorError {
    /// An error of `class` with the class's default reason.
    pub fn new(class: ErrorClass, message: impl Into<String>) -> Self {
        Self {
            class,
            reason: class.default_reason(),
            message: message.into(),
            public: None,
        }
    }

    /// An error with an explicit reason; a reason of another class fails closed to
    /// `Internal`/`runtime.invalid_error`.
    pub fn with_reason(class: ErrorClass, reason: ErrorReason, message: impl Into<String>) -> Self {
        let message = message.into();
        if reason.class() == class.normalized() {
            Self {
                class,
                reason,
                message,
                public: None,
            }
        } else {
            Self::new(ErrorClass::Internal, message)
                .reason_unchecked(ErrorReason::RuntimeInvalidError)
        }
    }

    fn reason_unchecked(mut self, reason: ErrorReason) -> Self {
        self.reason = reason;
        self
    }

    /// Attaches a client-safe message.
    #[must_use]
    pub fn public_message(mut self, message: impl Into<String>) -> Self {
        self.public = Some(PublicDetails::Message {
            message: message.into(),
        });
        self
    }

    /// Attaches structured client-safe details.
    #[must_use]
    pub fn with_public_details(mut self, details: PublicDetails) -> Self {
        self.public = Some(details);
        self
    }

    /// Malformed or invalid request input.
    pub fn invalid_request(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::InvalidRequest, message)
    }

    /// An internal defect.
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Internal, message)
    }

    /// A connection could not be established.
    pub fn cannot_connect(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::CannotConnect, message)
    }

    /// An established connection was lost.
    pub fn disconnected(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Disconnected, message)
    }

    /// The addressed worker does not serve this endpoint (`Server unavailable:` ack).
    pub fn worker_unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::WorkerUnavailable, message)
    }

    /// The addressed worker is at capacity (`Server overloaded` ack).
    pub fn worker_overloaded(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::WorkerOverloaded, message)
    }

    /// No worker is available.
    pub fn unavailable(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Unavailable, message)
    }

    /// The request was cancelled.
    pub fn cancelled(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::Cancelled, message)
    }

    /// Connecting or the ack timed out.
    pub fn connection_timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::ConnectionTimeout, message)
    }

    /// The backend stopped responding.
    pub fn response_timeout(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::ResponseTimeout, message)
    }

    /// The stream ended before `complete_final`.
    pub fn stream_incomplete(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::StreamIncomplete, message)
    }

    /// A peer violated the wire protocol.
    pub fn backend_protocol(message: impl Into<String>) -> Self {
        Self::new(ErrorClass::BackendProtocol, message)
    }

    /// The canonical class (legacy and transport classes normalized).
    pub fn class(&self) -> ErrorClass {
        self.class.normalized()
    }

    /// The class as constructed or received, before normalization.
    pub fn specific_class(&self) -> ErrorClass {
        self.class
    }

    /// The registered reason.
    pub fn reason(&self) -> ErrorReason {
        self.reason
    }

    /// The operator-facing message (never shown to clients as is).
    pub fn message(&self) -> &str {
        &self.message
    }

    /// Client-safe details, if any.
    pub fn public_details(&self) -> Option<&PublicDetails> {
        self.public.as_ref()
    }

    /// The client-safe message, if one was attached.
    pub fn public_text(&self) -> Option<&str> {
        match &self.public {
            Some(PublicDetails::Message { message }) => Some(message),
            _ => None,
        }
    }

    /// HTTP status for this error at the frontend edge.
    pub fn http_status(&self) -> u16 {
        self.class.http_status()
    }

    /// Whether the request may be replayed on another worker.
    pub fn is_migratable(&self) -> bool {
        self.reason.is_migratable()
    }

    /// Whether the failing instance is skipped for the inhibition window.
    pub fn inhibits_instance(&self) -> bool {
        self.reason.inhibits_instance()
    }
}

#[cfg(test)]
mod tests;
