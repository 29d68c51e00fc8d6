//! Serde for [`StatorError`] in Dynamo's `DynamoError` JSON shape.
//!
//! Written: `{"error_type": <legacy>, "class": <canonical>, "reason": "...", "message": "...",
//! "public"?: {...}}`. The legacy `error_type` is a name, or `{"Backend": "<sub>"}` for
//! engine-originated classes. Read: `class` or `error_type` (either form), optional `reason`,
//! `message` or `diagnostic`, `public` or `public_details`; anything inconsistent fails closed.

use serde::de::Deserializer;
use serde::ser::{SerializeMap, Serializer};
use serde::{Deserialize, Serialize};

use super::{ErrorClass, ErrorReason, PublicDetails, StatorError};

/// The legacy `error_type` value Dynamo 1.6.1 peers read.
enum LegacyType {
    Named(&'static str),
    Backend(&'static str),
}

fn legacy_type(class: ErrorClass) -> LegacyType {
    use ErrorClass as C;
    LegacyType::Named(match class {
        C::Internal
        | C::Unauthenticated
        | C::PermissionDenied
        | C::NotFound
        | C::Conflict
        | C::BackendProtocol
        | C::NotImplemented => "Unknown",
        C::InvalidArgument | C::InvalidRequest | C::PayloadTooLarge | C::UnsupportedMedia => {
            "InvalidArgument"
        }
        C::CannotConnect => "CannotConnect",
        C::Disconnected => "Disconnected",
        C::ConnectionTimeout => "ConnectionTimeout",
        C::ResponseTimeout | C::DeadlineExceeded => "ResponseTimeout",
        C::Cancelled => "Cancelled",
        C::ResourceExhausted | C::WorkerOverloaded | C::CapacityExhausted | C::RateLimited => {
            "ResourceExhausted"
        }
        C::Unavailable => "Unavailable",
        C::WorkerUnavailable => "WorkerUnavailable",
        C::EngineShutdown => return LegacyType::Backend("EngineShutdown"),
        C::StreamIncomplete => return LegacyType::Backend("StreamIncomplete"),
    })
}

struct BackendTag(&'static str);

impl Serialize for BackendTag {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut map = serializer.serialize_map(Some(1))?;
        map.serialize_entry("Backend", self.0)?;
        map.end()
    }
}

impl Serialize for StatorError {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let len = 4 + usize::from(self.public.is_some());
        let mut map = serializer.serialize_map(Some(len))?;
        match legacy_type(self.class) {
            LegacyType::Named(name) => map.serialize_entry("error_type", name)?,
            LegacyType::Backend(sub) => map.serialize_entry("error_type", &BackendTag(sub))?,
        }
        map.serialize_entry("class", self.class().as_str())?;
        map.serialize_entry("reason", self.reason.as_str())?;
        map.serialize_entry("message", &self.message)?;
        if let Some(public) = &self.public {
            map.serialize_entry("public", public)?;
        }
        map.end()
    }
}

/// A class as it appears on the wire: a name or `{"Backend": "<sub>"}`.
#[derive(Deserialize)]
#[serde(untagged)]
enum WireClass {
    Named(String),
    Backend {
        #[serde(rename = "Backend")]
        backend: String,
    },
}

impl WireClass {
    /// The class it names; `None` for unknown names (which decode as internal).
    fn resolve(&self) -> Option<ErrorClass> {
        match self {
            Self::Named(name) => ErrorClass::from_name(name),
            Self::Backend { backend } => match backend.as_str() {
                "InvalidArgument" => Some(ErrorClass::InvalidArgument),
                "CannotConnect" => Some(ErrorClass::CannotConnect),
                "Disconnected" => Some(ErrorClass::Disconnected),
                "ConnectionTimeout" => Some(ErrorClass::ConnectionTimeout),
                "ResponseTimeout" => Some(ErrorClass::ResponseTimeout),
                "Cancelled" => Some(ErrorClass::Cancelled),
                "EngineShutdown" => Some(ErrorClass::EngineShutdown),
                "StreamIncomplete" => Some(ErrorClass::StreamIncomplete),
                _ => None,
            },
        }
    }
}

#[derive(Deserialize)]
struct Representation {
    #[serde(default)]
    class: Option<WireClass>,
    #[serde(default)]
    error_type: Option<WireClass>,
    #[serde(default)]
    reason: Option<String>,
    #[serde(default)]
    message: Option<String>,
    #[serde(default)]
    diagnostic: Option<String>,
    #[serde(default, alias = "public_details")]
    public: Option<serde_json::Value>,
}

impl<'de> Deserialize<'de> for StatorError {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let rep = Representation::deserialize(deserializer)?;
        Ok(from_representation(rep))
    }
}

fn from_representation(rep: Representation) -> StatorError {
    let declared = rep.class.as_ref().map(WireClass::resolve);
    let legacy = rep.error_type.as_ref().map(WireClass::resolve);
    let source = declared.or(legacy).flatten();
    let canonical = source.map_or(ErrorClass::Internal, ErrorClass::normalized);
    let reason = match rep.reason.as_deref() {
        Some(name) => ErrorReason::from_name(name),
        None => Some(
            legacy
                .flatten()
                .or(source)
                .map_or(ErrorReason::RuntimeUnclassified, ErrorClass::default_reason),
        ),
    };
    let message = rep.diagnostic.or(rep.message).unwrap_or_default();
    match reason {
        Some(reason) if reason.class() == canonical => {
            // Prefer the specific class whose default reason this is, so errors built with
            // `StatorError::new` round-trip exactly; then the legacy type; then the canonical.
            let consistent = |c: &ErrorClass| c.normalized() == canonical;
            let class = ErrorClass::ALL
                .into_iter()
                .find(|c| c.default_reason() == reason)
                .or(legacy.flatten().filter(consistent))
                .unwrap_or(canonical);
            let public = rep
                .public
                .and_then(|value| serde_json::from_value::<PublicDetails>(value).ok());
            StatorError {
                class,
                reason,
                message,
                public,
            }
        }
        _ => StatorError {
            class: ErrorClass::Internal,
            reason: ErrorReason::RuntimeInvalidError,
            message,
            public: None,
        },
    }
}
