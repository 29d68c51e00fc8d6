//! Body → request: JSON deserialization plus validation, with the reference frontend's error
//! messages (`Failed to deserialize the JSON body into the target type: …`, `Validation: …`).

use serde::de::DeserializeOwned;

use super::validate::{Validate, ValidationError, ValidationOptions};
use crate::error::{ErrorBody, ErrorKind};

/// Why a request body was rejected. Always a 400; `Display` is the response `message`.
#[derive(Debug, thiserror::Error)]
pub enum RequestError {
    /// The body is not JSON of the request's shape (syntax, types, missing fields, unknown
    /// `nvext` keys).
    #[error("Failed to deserialize the JSON body into the target type: {0}")]
    Json(#[from] serde_json::Error),
    /// The body parsed but a value is out of range or unsupported.
    #[error("Validation: {0}")]
    Validation(#[from] ValidationError),
}

impl RequestError {
    /// The error kind (always [`ErrorKind::InvalidRequest`]).
    pub fn kind(&self) -> ErrorKind {
        ErrorKind::InvalidRequest
    }

    /// The response body for this error.
    pub fn to_error_body(&self) -> ErrorBody {
        ErrorBody::new(self.kind(), self.to_string())
    }
}

/// Deserialize `body` as `T` and validate it.
pub fn parse_request<T>(body: &[u8], opts: &ValidationOptions) -> Result<T, RequestError>
where
    T: DeserializeOwned + Validate,
{
    let request: T = serde_json::from_slice(body)?;
    request.validate(opts)?;
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::openai::ChatCompletionRequest;

    #[test]
    fn validation_errors_are_prefixed() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],"temperature":5}"#;
        let err = parse_request::<ChatCompletionRequest>(body, &ValidationOptions::default())
            .unwrap_err();
        assert_eq!(
            err.to_error_body().to_json(),
            r#"{"message":"Validation: Temperature must be between 0 and 2, got 5","type":"Bad Request","code":400}"#
        );
    }

    #[test]
    fn unsupported_fields_can_be_ignored() {
        let body = br#"{"model":"m","messages":[{"role":"user","content":"x"}],"foo_unknown":1}"#;
        let strict = parse_request::<ChatCompletionRequest>(body, &ValidationOptions::default());
        assert_eq!(
            strict.unwrap_err().to_string(),
            "Validation: Unsupported parameter(s): `foo_unknown`"
        );
        let lenient = ValidationOptions {
            ignore_unsupported_fields: true,
        };
        assert!(parse_request::<ChatCompletionRequest>(body, &lenient).is_ok());
    }
}
