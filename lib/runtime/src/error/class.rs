//! Error classes and the closed catalog of error reasons (Dynamo 1.6.1 `ErrorClass`/`ErrorReason`).

use std::fmt;

/// What kind of failure occurred.
///
/// Canonical classes plus the finer transport/backend classes Dynamo keeps for compatibility;
/// [`ErrorClass::normalized`] maps every class to its canonical one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorClass {
    /// The caller's request is malformed or fails validation (HTTP 400).
    InvalidRequest,
    /// Legacy name of [`ErrorClass::InvalidRequest`].
    InvalidArgument,
    /// A caller-visible resource does not exist (404).
    NotFound,
    /// The request conflicts with current state (409).
    Conflict,
    /// The request exceeds a size limit (413).
    PayloadTooLarge,
    /// The request uses an unsupported media type (415).
    UnsupportedMedia,
    /// Credentials are missing or invalid (401).
    Unauthenticated,
    /// The caller may not perform the operation (403).
    PermissionDenied,
    /// A caller-specific rate limit was exceeded (429).
    RateLimited,
    /// The eligible worker pool has no capacity (529).
    CapacityExhausted,
    /// Legacy name of pool-wide capacity exhaustion.
    ResourceExhausted,
    /// One selected worker is at capacity; others may have room (529, migratable).
    WorkerOverloaded,
    /// No worker or dependency is available (503).
    Unavailable,
    /// The addressed worker does not serve this endpoint instance (503, migratable).
    WorkerUnavailable,
    /// A connection to a worker could not be established (503, migratable).
    CannotConnect,
    /// An established connection was lost (503, migratable).
    Disconnected,
    /// The engine shut down or crashed (503, migratable).
    EngineShutdown,
    /// The response stream ended before completion (503, migratable).
    StreamIncomplete,
    /// Connecting timed out (504, migratable).
    ConnectionTimeout,
    /// The backend stopped responding (504, migratable).
    ResponseTimeout,
    /// A request deadline expired (504).
    DeadlineExceeded,
    /// The request was cancelled, usually by a client disconnect (499).
    Cancelled,
    /// A backend response violated the protocol (502).
    BackendProtocol,
    /// The requested capability is not implemented (501).
    NotImplemented,
    /// A defect or unclassified failure (500).
    Internal,
}

impl ErrorClass {
    /// Every class, for exhaustive tests and lookups.
    pub const ALL: [Self; 25] = [
        Self::InvalidRequest,
        Self::InvalidArgument,
        Self::NotFound,
        Self::Conflict,
        Self::PayloadTooLarge,
        Self::UnsupportedMedia,
        Self::Unauthenticated,
        Self::PermissionDenied,
        Self::RateLimited,
        Self::CapacityExhausted,
        Self::ResourceExhausted,
        Self::WorkerOverloaded,
        Self::Unavailable,
        Self::WorkerUnavailable,
        Self::CannotConnect,
        Self::Disconnected,
        Self::EngineShutdown,
        Self::StreamIncomplete,
        Self::ConnectionTimeout,
        Self::ResponseTimeout,
        Self::DeadlineExceeded,
        Self::Cancelled,
        Self::BackendProtocol,
        Self::NotImplemented,
        Self::Internal,
    ];

    /// The wire name (`"InvalidRequest"`, `"Disconnected"`, …).
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::InvalidRequest => "InvalidRequest",
            Self::InvalidArgument => "InvalidArgument",
            Self::NotFound => "NotFound",
            Self::Conflict => "Conflict",
            Self::PayloadTooLarge => "PayloadTooLarge",
            Self::UnsupportedMedia => "UnsupportedMedia",
            Self::Unauthenticated => "Unauthenticated",
            Self::PermissionDenied => "PermissionDenied",
            Self::RateLimited => "RateLimited",
            Self::CapacityExhausted => "CapacityExhausted",
            Self::ResourceExhausted => "ResourceExhausted",
            Self::WorkerOverloaded => "WorkerOverloaded",
            Self::Unavailable => "Unavailable",
            Self::WorkerUnavailable => "WorkerUnavailable",
            Self::CannotConnect => "CannotConnect",
            Self::Disconnected => "Disconnected",
            Self::EngineShutdown => "EngineShutdown",
            Self::StreamIncomplete => "StreamIncomplete",
            Self::ConnectionTimeout => "ConnectionTimeout",
            Self::ResponseTimeout => "ResponseTimeout",
            Self::DeadlineExceeded => "DeadlineExceeded",
            Self::Cancelled => "Cancelled",
            Self::BackendProtocol => "BackendProtocol",
            Self::NotImplemented => "NotImplemented",
            Self::Internal => "Internal",
        }
    }

    /// Looks a class up by its wire name.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == name)
    }

    /// The canonical class this one belongs to.
    #[must_use]
    pub const fn normalized(self) -> Self {
        match self {
            Self::InvalidArgument => Self::InvalidRequest,
            Self::ResourceExhausted | Self::WorkerOverloaded => Self::CapacityExhausted,
            Self::WorkerUnavailable
            | Self::CannotConnect
            | Self::Disconnected
            | Self::EngineShutdown
            | Self::StreamIncomplete => Self::Unavailable,
            Self::ConnectionTimeout | Self::ResponseTimeout => Self::DeadlineExceeded,
            canonical => canonical,
        }
    }

    /// The HTTP status the frontend answers with for this class.
    pub const fn http_status(self) -> u16 {
        match self.normalized() {
            Self::InvalidRequest => 400,
            Self::Unauthenticated => 401,
            Self::PermissionDenied => 403,
            Self::NotFound => 404,
            Self::Conflict => 409,
            Self::PayloadTooLarge => 413,
            Self::UnsupportedMedia => 415,
            Self::RateLimited => 429,
            Self::Cancelled => 499,
            Self::NotImplemented => 501,
            Self::BackendProtocol => 502,
            Self::Unavailable => 503,
            Self::DeadlineExceeded => 504,
            Self::CapacityExhausted => 529,
            _ => 500,
        }
    }

    /// The reason a bare error of this class carries.
    pub const fn default_reason(self) -> ErrorReason {
        use ErrorReason as R;
        match self {
            Self::InvalidRequest => R::RequestInvalid,
            Self::InvalidArgument => R::RequestInvalidArgument,
            Self::NotFound => R::RequestNotFound,
            Self::Conflict => R::RequestConflict,
            Self::PayloadTooLarge => R::RequestPayloadTooLarge,
            Self::UnsupportedMedia => R::RequestUnsupportedMedia,
            Self::Unauthenticated => R::RequestUnauthenticated,
            Self::PermissionDenied => R::RequestPermissionDenied,
            Self::RateLimited => R::RequestRateLimited,
            Self::CapacityExhausted => R::CapacityExhausted,
            Self::ResourceExhausted => R::CapacityPoolExhausted,
            Self::WorkerOverloaded => R::CapacityWorkerOverloaded,
            Self::Unavailable => R::BackendUnavailable,
            Self::WorkerUnavailable => R::BackendWorkerUnavailable,
            Self::CannotConnect => R::TransportCannotConnect,
            Self::Disconnected => R::TransportDisconnected,
            Self::EngineShutdown => R::BackendEngineShutdown,
            Self::StreamIncomplete => R::BackendStreamIncomplete,
            Self::ConnectionTimeout => R::TransportConnectionTimeout,
            Self::ResponseTimeout => R::BackendResponseTimeout,
            Self::DeadlineExceeded => R::RequestDeadlineExceeded,
            Self::Cancelled => R::RequestCancelled,
            Self::BackendProtocol => R::BackendProtocol,
            Self::NotImplemented => R::RuntimeNotImplemented,
            Self::Internal => R::RuntimeInternal,
        }
    }
}

impl fmt::Display for ErrorClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

macro_rules! reasons {
    ($( $(#[$doc:meta])* $variant:ident = $name:literal => $class:ident, )*) => {
        /// A registered cause key; each belongs to exactly one canonical [`ErrorClass`].
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum ErrorReason {
            $( $(#[$doc])* $variant, )*
        }

        impl ErrorReason {
            /// Every registered reason.
            pub const ALL: &'static [Self] = &[$(Self::$variant,)*];

            /// The wire key, e.g. `"backend.worker_unavailable"`.
            pub const fn as_str(self) -> &'static str {
                match self { $(Self::$variant => $name,)* }
            }

            /// The canonical class this reason belongs to.
            pub const fn class(self) -> ErrorClass {
                match self { $(Self::$variant => ErrorClass::$class,)* }
            }
        }
    };
}

reasons! {
    /// `runtime.unclassified`: converted from an unclassified error.
    RuntimeUnclassified = "runtime.unclassified" => Internal,
    /// `runtime.invalid_error`: an error whose identity failed validation.
    RuntimeInvalidError = "runtime.invalid_error" => Internal,
    /// `runtime.internal`: an internal defect.
    RuntimeInternal = "runtime.internal" => Internal,
    /// `runtime.not_implemented`.
    RuntimeNotImplemented = "runtime.not_implemented" => NotImplemented,
    /// `request.invalid_argument` (legacy InvalidArgument).
    RequestInvalidArgument = "request.invalid_argument" => InvalidRequest,
    /// `request.invalid`.
    RequestInvalid = "request.invalid" => InvalidRequest,
    /// `request.deadline_exceeded`.
    RequestDeadlineExceeded = "request.deadline_exceeded" => DeadlineExceeded,
    /// `request.cancelled`.
    RequestCancelled = "request.cancelled" => Cancelled,
    /// `request.unauthenticated`.
    RequestUnauthenticated = "request.unauthenticated" => Unauthenticated,
    /// `request.permission_denied`.
    RequestPermissionDenied = "request.permission_denied" => PermissionDenied,
    /// `request.not_found`.
    RequestNotFound = "request.not_found" => NotFound,
    /// `request.conflict`.
    RequestConflict = "request.conflict" => Conflict,
    /// `request.payload_too_large`.
    RequestPayloadTooLarge = "request.payload_too_large" => PayloadTooLarge,
    /// `request.unsupported_media`.
    RequestUnsupportedMedia = "request.unsupported_media" => UnsupportedMedia,
    /// `request.rate_limited`.
    RequestRateLimited = "request.rate_limited" => RateLimited,
    /// `transport.cannot_connect`.
    TransportCannotConnect = "transport.cannot_connect" => Unavailable,
    /// `transport.disconnected`.
    TransportDisconnected = "transport.disconnected" => Unavailable,
    /// `transport.connection_timeout`.
    TransportConnectionTimeout = "transport.connection_timeout" => DeadlineExceeded,
    /// `backend.unavailable`: no worker available.
    BackendUnavailable = "backend.unavailable" => Unavailable,
    /// `backend.worker_unavailable`: the addressed worker rejected the endpoint.
    BackendWorkerUnavailable = "backend.worker_unavailable" => Unavailable,
    /// `backend.cannot_connect`.
    BackendCannotConnect = "backend.cannot_connect" => Unavailable,
    /// `backend.disconnected`.
    BackendDisconnected = "backend.disconnected" => Unavailable,
    /// `backend.engine_shutdown`.
    BackendEngineShutdown = "backend.engine_shutdown" => Unavailable,
    /// `backend.stream_incomplete`.
    BackendStreamIncomplete = "backend.stream_incomplete" => Unavailable,
    /// `backend.connection_timeout`.
    BackendConnectionTimeout = "backend.connection_timeout" => DeadlineExceeded,
    /// `backend.response_timeout`.
    BackendResponseTimeout = "backend.response_timeout" => DeadlineExceeded,
    /// `backend.invalid_argument`.
    BackendInvalidArgument = "backend.invalid_argument" => InvalidRequest,
    /// `backend.cancelled`.
    BackendCancelled = "backend.cancelled" => Cancelled,
    /// `backend.unknown`.
    BackendUnknown = "backend.unknown" => Internal,
    /// `backend.protocol`.
    BackendProtocol = "backend.protocol" => BackendProtocol,
    /// `capacity.pool_exhausted`.
    CapacityPoolExhausted = "capacity.pool_exhausted" => CapacityExhausted,
    /// `capacity.worker_overloaded`: one worker is full, another may not be.
    CapacityWorkerOverloaded = "capacity.worker_overloaded" => CapacityExhausted,
    /// `capacity.exhausted`.
    CapacityExhausted = "capacity.exhausted" => CapacityExhausted,
}

impl ErrorReason {
    /// Looks a reason up by its wire key.
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.iter().copied().find(|r| r.as_str() == name)
    }

    /// Whether a request that failed for this reason may be replayed on another worker.
    pub const fn is_migratable(self) -> bool {
        matches!(
            self,
            Self::CapacityWorkerOverloaded
                | Self::BackendWorkerUnavailable
                | Self::TransportCannotConnect
                | Self::TransportDisconnected
                | Self::TransportConnectionTimeout
                | Self::BackendCannotConnect
                | Self::BackendDisconnected
                | Self::BackendEngineShutdown
                | Self::BackendStreamIncomplete
                | Self::BackendConnectionTimeout
                | Self::BackendResponseTimeout
        )
    }

    /// Whether this failure marks the instance down for the inhibition window.
    pub const fn inhibits_instance(self) -> bool {
        self.is_migratable() && !matches!(self, Self::CapacityWorkerOverloaded)
    }
}

impl fmt::Display for ErrorReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}
