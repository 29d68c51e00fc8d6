//! Byte-level JSON fixtures of discovery records (Dynamo 1.6.1 shapes).

use serde_json::json;
use stator_runtime::discovery::{
    Bucket, DiscoveryQuery, DiscoveryRecord, EventChannelRecord, EventScope, EventTransport,
    RecordId, RequestPlaneCodec, TransportType,
};
use stator_runtime::names::{EndpointId, InstanceId};

/// A Model record captured from a real 1.6.1 mocker (card trimmed to a few fields).
const MDC_RECORD: &str = r#"{"type":"Model","namespace":"fakens","component":"backend","endpoint":"generate","instance_id":16263807320168698895,"card_json":{"display_name":"qwen-mock","slug":"qwen-mock","kv_cache_block_size":64,"model_type":"Chat | Completions","model_input":"Tokens","runtime_config":{"total_kv_blocks":16384}}}"#;

#[test]
fn model_record_round_trips() {
    let record: DiscoveryRecord = serde_json::from_str(MDC_RECORD).unwrap();
    let DiscoveryRecord::Model(model) = &record else {
        panic!("expected a model record");
    };
    assert_eq!(model.instance_id, InstanceId(16_263_807_320_168_698_895));
    assert_eq!(model.card_json["kv_cache_block_size"], 64);
    assert_eq!(model.model_suffix, None);
    assert_eq!(record.bucket(), Bucket::Mdc);
    assert_eq!(record.key(), "fakens/backend/generate/e1b4a6969e0d940f");
    let again: serde_json::Value = serde_json::to_value(&record).unwrap();
    assert_eq!(
        again,
        serde_json::from_str::<serde_json::Value>(MDC_RECORD).unwrap()
    );
    assert!(
        DiscoveryQuery::NamespacedModels {
            namespace: "fakens".into()
        }
        .matches(&record)
    );
    assert!(!DiscoveryQuery::AllEndpoints.matches(&record));
}

#[test]
fn event_channel_json_shape() {
    let endpoint = EndpointId::new("dynamo", "backend", "generate").unwrap();
    let record = DiscoveryRecord::EventChannel(EventChannelRecord {
        scope: EventScope::Endpoint {
            endpoint: endpoint.clone(),
        },
        topic: "kv-events".into(),
        instance_id: InstanceId(42),
        transport: EventTransport::Zmq {
            endpoint: "tcp://127.0.0.1:5555".into(),
        },
    });
    assert_eq!(
        serde_json::to_value(&record).unwrap(),
        json!({
            "type": "EventChannel",
            "scope": {"kind": "endpoint", "endpoint": {"namespace": "dynamo", "component": "backend", "name": "generate"}},
            "topic": "kv-events",
            "instance_id": 42,
            "transport": {"kind": "Zmq", "config": {"endpoint": "tcp://127.0.0.1:5555"}},
        })
    );
    assert_eq!(
        RecordId::parse(Bucket::EventChannels, &record.key()).unwrap(),
        record.id()
    );
    let ns: EventScope =
        serde_json::from_value(json!({"kind": "namespace", "name": "dynamo"})).unwrap();
    assert_eq!(
        ns,
        EventScope::Namespace {
            name: "dynamo".into()
        }
    );
    let comp: EventScope = serde_json::from_value(
        json!({"kind": "component", "namespace": "dynamo", "component": "backend"}),
    )
    .unwrap();
    assert!(matches!(comp, EventScope::Component { .. }));
}

#[test]
fn instance_optional_fields_and_nats_transport() {
    let record: DiscoveryRecord = serde_json::from_value(json!({
        "type": "Endpoint", "component": "backend", "endpoint": "generate", "namespace": "dynamo",
        "instance_id": 7, "transport": {"nats_tcp": "dynamo_backend.generate-7"}
    }))
    .unwrap();
    let DiscoveryRecord::Endpoint(inst) = &record else {
        panic!("expected an endpoint record");
    };
    assert_eq!(
        inst.codec(),
        RequestPlaneCodec::Json,
        "absent codec means JSON"
    );
    assert_eq!(inst.device_type, None);
    assert_eq!(
        inst.transport,
        TransportType::NatsTcp("dynamo_backend.generate-7".into())
    );
    let out = serde_json::to_value(&record).unwrap();
    assert!(out.get("device_type").is_none() && out.get("request_plane_codec").is_none());
}

#[test]
fn unknown_record_types_are_rejected() {
    let err = serde_json::from_value::<DiscoveryRecord>(json!({"type": "Bogus"}));
    assert!(err.is_err());
}

#[test]
fn device_type_detection() {
    use stator_runtime::discovery::DeviceType;
    assert_eq!(DeviceType::from_env_values(None, None), DeviceType::Cuda);
    assert_eq!(DeviceType::from_env_values(Some(""), None), DeviceType::Cpu);
    assert_eq!(
        DeviceType::from_env_values(Some("-1"), None),
        DeviceType::Cpu
    );
    assert_eq!(
        DeviceType::from_env_values(Some("0,1"), Some("void")),
        DeviceType::Cpu
    );
    assert_eq!(
        DeviceType::from_env_values(Some("0"), Some("all")),
        DeviceType::Cuda
    );
}

/// Event-channel and event-source files captured from a real Dynamo 1.6.1 KV-event publisher
/// (file discovery), with their file names.
const DYNAMO_CHANNEL_FILE: &str = "namespace%2Finterop%2Fcomponent%2Fbackend%2Fendpoint%2Fgenerate%2Ftopic%2Fkv%2Devents%2Ffbf1fc8290dcf";
const DYNAMO_CHANNEL: &str = r#"{"type":"EventChannel","scope":{"kind":"endpoint","endpoint":{"namespace":"interop","component":"backend","name":"generate"}},"topic":"kv-events","instance_id":4432267873684943,"transport":{"kind":"Zmq","config":{"endpoint":"tcp://127.0.0.1:46695"}}}"#;
const DYNAMO_SOURCE: &str = r#"{"type":"EventSource","scope":{"kind":"endpoint","endpoint":{"namespace":"interop","component":"backend","name":"generate"}},"topic":"kv-events","publisher_id":4432267873684943,"metadata":{"kv_state_endpoint":{"namespace":"interop","component":"backend","name":"generate"},"worker":{"worker_id":17347309449799093108,"dp_rank":0},"publisher_id":4432267873684943}}"#;

#[test]
fn captured_dynamo_event_records() {
    use stator_runtime::discovery::file::encode_file_name;

    let channel: DiscoveryRecord = serde_json::from_str(DYNAMO_CHANNEL).unwrap();
    assert_eq!(encode_file_name(&channel.key()), DYNAMO_CHANNEL_FILE);
    assert_eq!(
        serde_json::to_value(&channel).unwrap(),
        serde_json::from_str::<serde_json::Value>(DYNAMO_CHANNEL).unwrap()
    );
    let DiscoveryRecord::EventChannel(c) = &channel else {
        panic!("expected an event channel");
    };
    assert_eq!(
        c.transport,
        EventTransport::Zmq {
            endpoint: "tcp://127.0.0.1:46695".into()
        }
    );

    let source: DiscoveryRecord = serde_json::from_str(DYNAMO_SOURCE).unwrap();
    assert_eq!(source.bucket(), Bucket::EventSources);
    assert_eq!(encode_file_name(&source.key()), DYNAMO_CHANNEL_FILE);
    assert_eq!(source.instance_id(), InstanceId(4_432_267_873_684_943));
}

mod properties {
    use proptest::prelude::*;
    use stator_runtime::discovery::{
        Bucket, DiscoveryQuery, DiscoveryRecord, EventChannelRecord, EventQuery, EventScope,
        EventTransport, Instance, ModelRecord, RecordId, TransportType,
    };
    use stator_runtime::names::{EndpointId, InstanceId};

    fn name() -> impl Strategy<Value = String> {
        prop_oneof![
            Just("a".to_owned()),
            Just("b".to_owned()),
            "[a-z0-9_-]{1,6}"
        ]
    }

    fn endpoint() -> impl Strategy<Value = EndpointId> {
        (name(), name(), name()).prop_map(|(namespace, component, name)| EndpointId {
            namespace,
            component,
            name,
        })
    }

    fn scope() -> impl Strategy<Value = EventScope> {
        prop_oneof![
            ".{1,6}".prop_map(|name| EventScope::Namespace { name }),
            (".{1,6}", ".{1,6}").prop_map(|(namespace, component)| EventScope::Component {
                namespace,
                component
            }),
            endpoint().prop_map(|endpoint| EventScope::Endpoint { endpoint }),
        ]
    }

    fn record() -> impl Strategy<Value = DiscoveryRecord> {
        prop_oneof![
            (endpoint(), any::<u64>()).prop_map(|(ep, id)| {
                DiscoveryRecord::Endpoint(Instance {
                    component: ep.component.clone(),
                    endpoint: ep.name.clone(),
                    namespace: ep.namespace.clone(),
                    instance_id: InstanceId(id),
                    transport: TransportType::Tcp(ep.instance_path(InstanceId(id))),
                    device_type: None,
                    request_plane_codec: None,
                })
            }),
            (
                endpoint(),
                any::<u64>(),
                proptest::option::of("[a-z0-9-]{1,8}")
            )
                .prop_map(|(ep, id, model_suffix)| {
                    DiscoveryRecord::Model(ModelRecord {
                        namespace: ep.namespace,
                        component: ep.component,
                        endpoint: ep.name,
                        instance_id: InstanceId(id),
                        card_json: serde_json::Value::Null,
                        model_suffix,
                    })
                }),
            (scope(), ".{1,8}", any::<u64>()).prop_map(|(scope, topic, id)| {
                DiscoveryRecord::EventChannel(EventChannelRecord {
                    scope,
                    topic,
                    instance_id: InstanceId(id),
                    transport: EventTransport::Zmq {
                        endpoint: "tcp://h:1".into(),
                    },
                })
            }),
        ]
    }

    fn query() -> impl Strategy<Value = DiscoveryQuery> {
        prop_oneof![
            Just(DiscoveryQuery::AllEndpoints),
            Just(DiscoveryQuery::AllModels),
            name().prop_map(|namespace| DiscoveryQuery::NamespacedEndpoints { namespace }),
            (name(), name()).prop_map(|(namespace, component)| {
                DiscoveryQuery::ComponentModels {
                    namespace,
                    component,
                }
            }),
            endpoint().prop_map(DiscoveryQuery::Endpoint),
            endpoint().prop_map(DiscoveryQuery::EndpointModels),
            (
                proptest::option::of(scope()),
                proptest::option::of(".{1,8}")
            )
                .prop_map(|(scope, topic)| DiscoveryQuery::EventChannels(EventQuery {
                    scope,
                    topic
                })),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(256))]

        /// Keys parse back to the record's identity.
        #[test]
        fn keys_round_trip(record in record()) {
            let id = record.id();
            prop_assert_eq!(id.bucket(), record.bucket());
            prop_assert_eq!(RecordId::parse(record.bucket(), &record.key()).unwrap(), id);
        }

        /// A prefix scan with `key_prefix` never misses a match (what KV backends rely on).
        #[test]
        fn matches_imply_key_prefix(record in record(), query in query()) {
            if query.matches(&record) {
                prop_assert_eq!(query.bucket(), record.bucket());
                prop_assert!(record.key().starts_with(&query.key_prefix()));
            }
            if query.bucket() != record.bucket() {
                prop_assert!(!query.matches(&record));
            }
        }

        /// Parsing arbitrary keys never panics.
        #[test]
        fn parsing_garbage_keys_never_panics(key in ".{0,40}") {
            for bucket in Bucket::ALL {
                let _ = RecordId::parse(bucket, &key);
            }
        }
    }
}
