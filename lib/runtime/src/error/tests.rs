use proptest::prelude::*;
use serde_json::json;

use super::*;

#[test]
fn default_reasons_belong_to_their_class() {
    for class in ErrorClass::ALL {
        assert_eq!(
            class.default_reason().class(),
            class.normalized(),
            "{class}"
        );
        assert_eq!(ErrorClass::from_name(class.as_str()), Some(class));
    }
    for reason in ErrorReason::ALL {
        assert_eq!(ErrorReason::from_name(reason.as_str()), Some(*reason));
        assert_eq!(reason.class(), reason.class().normalized());
    }
}

#[test]
fn http_mapping_follows_the_table() {
    let cases = [
        (ErrorClass::InvalidRequest, 400),
        (ErrorClass::InvalidArgument, 400),
        (ErrorClass::NotFound, 404),
        (ErrorClass::PayloadTooLarge, 413),
        (ErrorClass::UnsupportedMedia, 415),
        (ErrorClass::Conflict, 409),
        (ErrorClass::Unauthenticated, 401),
        (ErrorClass::PermissionDenied, 403),
        (ErrorClass::RateLimited, 429),
        (ErrorClass::CapacityExhausted, 529),
        (ErrorClass::WorkerOverloaded, 529),
        (ErrorClass::Unavailable, 503),
        (ErrorClass::WorkerUnavailable, 503),
        (ErrorClass::CannotConnect, 503),
        (ErrorClass::Disconnected, 503),
        (ErrorClass::EngineShutdown, 503),
        (ErrorClass::StreamIncomplete, 503),
        (ErrorClass::ConnectionTimeout, 504),
        (ErrorClass::ResponseTimeout, 504),
        (ErrorClass::DeadlineExceeded, 504),
        (ErrorClass::Cancelled, 499),
        (ErrorClass::BackendProtocol, 502),
        (ErrorClass::NotImplemented, 501),
        (ErrorClass::Internal, 500),
    ];
    for (class, status) in cases {
        assert_eq!(
            StatorError::new(class, "x").http_status(),
            status,
            "{class}"
        );
    }
}

#[test]
fn migration_and_inhibition_follow_the_table() {
    let migratable = [
        ErrorClass::WorkerOverloaded,
        ErrorClass::WorkerUnavailable,
        ErrorClass::CannotConnect,
        ErrorClass::Disconnected,
        ErrorClass::EngineShutdown,
        ErrorClass::StreamIncomplete,
        ErrorClass::ConnectionTimeout,
        ErrorClass::ResponseTimeout,
    ];
    for class in ErrorClass::ALL {
        let err = StatorError::new(class, "x");
        assert_eq!(err.is_migratable(), migratable.contains(&class), "{class}");
        let inhibits = migratable.contains(&class) && class != ErrorClass::WorkerOverloaded;
        assert_eq!(err.inhibits_instance(), inhibits, "{class}");
    }
}

#[test]
fn wire_shape_matches_dynamo() {
    let err = StatorError::disconnected("Stream ended before generation completed");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({
            "error_type": "Disconnected",
            "class": "Unavailable",
            "reason": "transport.disconnected",
            "message": "Stream ended before generation completed",
        })
    );
    let err = StatorError::new(ErrorClass::EngineShutdown, "gone").public_message("try again");
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        json!({
            "error_type": {"Backend": "EngineShutdown"},
            "class": "Unavailable",
            "reason": "backend.engine_shutdown",
            "message": "gone",
            "public": {"type": "message", "message": "try again"},
        })
    );
    assert_eq!(err.to_string(), "EngineShutdown: gone");
}

#[test]
fn decodes_legacy_and_canonical_forms() {
    let legacy: StatorError =
        serde_json::from_value(json!({"error_type": "InvalidArgument", "message": "bad"})).unwrap();
    assert_eq!(legacy.class(), ErrorClass::InvalidRequest);
    assert_eq!(legacy.reason(), ErrorReason::RequestInvalidArgument);
    assert_eq!(legacy.http_status(), 400);

    let backend: StatorError =
        serde_json::from_value(json!({"error_type": {"Backend": "StreamIncomplete"}})).unwrap();
    assert_eq!(backend.specific_class(), ErrorClass::StreamIncomplete);
    assert!(backend.is_migratable());

    let canonical: StatorError = serde_json::from_value(json!({
        "class": "Unavailable", "reason": "backend.disconnected", "diagnostic": "lost"
    }))
    .unwrap();
    assert_eq!(canonical.class(), ErrorClass::Unavailable);
    assert!(canonical.inhibits_instance());
    assert_eq!(canonical.message(), "lost");
}

#[test]
fn unknown_or_mismatched_identity_fails_closed() {
    for value in [
        json!({"class": "Unavailable", "reason": "request.invalid", "public": {"type": "message", "message": "x"}}),
        json!({"class": "Unavailable", "reason": "no.such_reason"}),
        json!({"class": "Bogus", "reason": "transport.disconnected"}),
    ] {
        let err: StatorError = serde_json::from_value(value).unwrap();
        assert_eq!(err.class(), ErrorClass::Internal);
        assert_eq!(err.reason(), ErrorReason::RuntimeInvalidError);
        assert!(err.public_details().is_none());
        assert!(!err.is_migratable());
    }
    let err = StatorError::with_reason(
        ErrorClass::InvalidRequest,
        ErrorReason::TransportDisconnected,
        "m",
    );
    assert_eq!(err.reason(), ErrorReason::RuntimeInvalidError);
    let bare: StatorError = serde_json::from_value(json!({"message": "?"})).unwrap();
    assert_eq!(bare.class(), ErrorClass::Internal);
    assert_eq!(bare.reason(), ErrorReason::RuntimeUnclassified);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn round_trips_json_and_msgpack(class_idx in 0..ErrorClass::ALL.len(), msg in ".{0,40}", public in proptest::option::of(".{0,20}")) {
        let mut err = StatorError::new(ErrorClass::ALL[class_idx], msg);
        if let Some(p) = public {
            err = err.public_message(p);
        }
        let json: StatorError = serde_json::from_slice(&serde_json::to_vec(&err).unwrap()).unwrap();
        prop_assert_eq!(&json, &err);
        let packed: StatorError = rmp_serde::from_slice(&rmp_serde::to_vec_named(&err).unwrap()).unwrap();
        prop_assert_eq!(&packed, &err);
    }

    #[test]
    fn arbitrary_json_never_panics(class in ".{0,20}", reason in ".{0,30}") {
        let value = json!({"class": class, "reason": reason});
        let err: StatorError = serde_json::from_value(value).unwrap();
        prop_assert_eq!(err.reason().class(), err.class());
    }
}
