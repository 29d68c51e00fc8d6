//! Byte fixtures, round trips and garbage handling of Stator's inline response frames.

#[path = "support/wire.rs"]
mod wire_support;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use stator_runtime::wire::{
    Ack, ControlMessage, DEFAULT_MAX_MESSAGE_SIZE, Frame, INLINE_CONTROL_PATH,
    INLINE_RESPONSE_HEADER, INLINE_TAG, InlineControl, InlineFrame, RequestFrame, ServerRecord,
    StreamId, TwoPartMessage, WireError,
};

use wire_support::{stream_roundtrip, two_part_bytes};

const MAX: usize = DEFAULT_MAX_MESSAGE_SIZE;

fn encode<F: Frame>(frame: &F) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf).expect("encodable fixture");
    buf.to_vec()
}

#[test]
fn inline_frame_layout() {
    let mut wire = vec![0xff, 0x00, 0x00, 0x01, 0x02];
    wire.extend_from_slice(&two_part_bytes(
        b"",
        br#"{"data":1,"complete_final":false}"#,
    ));
    let frame = InlineFrame {
        stream: StreamId(0x0102),
        message: TwoPartMessage::body_only(&br#"{"data":1,"complete_final":false}"#[..]),
    };
    assert_eq!(encode(&frame), wire);
    let mut buf = BytesMut::from(&wire[..]);
    let decoded = InlineFrame::decode(&mut buf, MAX)
        .expect("valid")
        .expect("complete");
    assert_eq!(decoded, frame);
    assert!(buf.is_empty());
}

#[test]
fn acks_and_inline_records_are_told_apart_by_the_first_byte() {
    let mut wire = BytesMut::new();
    Ack::Accepted.encode(&mut wire).expect("ack");
    let sentinel = InlineFrame {
        stream: StreamId(7),
        message: TwoPartMessage::header_only(ControlMessage::Sentinel.header()),
    };
    sentinel.encode(&mut wire).expect("inline");
    Ack::Overloaded.encode(&mut wire).expect("ack");
    assert_eq!(wire[0], 0, "an ack starts with its length's high byte");
    assert_eq!(wire[4], INLINE_TAG);
    let mut records = Vec::new();
    while let Some(record) = ServerRecord::decode(&mut wire, MAX).expect("valid") {
        records.push(record);
    }
    assert_eq!(
        records,
        vec![
            ServerRecord::Ack(Ack::Accepted),
            ServerRecord::Inline(sentinel),
            ServerRecord::Ack(Ack::Overloaded),
        ]
    );
}

#[test]
fn inline_control_is_a_request_frame_on_the_reserved_path() {
    let control = InlineControl {
        stream: StreamId(42),
        message: ControlMessage::Kill,
    };
    let headers = format!(r#"{{"{INLINE_RESPONSE_HEADER}":"42"}}"#);
    let payload = two_part_bytes(b"\"kill\"", b"");
    let mut wire = Vec::new();
    wire.extend_from_slice(&(INLINE_CONTROL_PATH.len() as u16).to_be_bytes());
    wire.extend_from_slice(INLINE_CONTROL_PATH.as_bytes());
    wire.extend_from_slice(&(headers.len() as u16).to_be_bytes());
    wire.extend_from_slice(headers.as_bytes());
    wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    wire.extend_from_slice(&payload);
    assert_eq!(encode(&control), wire);
    let mut buf = BytesMut::from(&wire[..]);
    assert_eq!(
        InlineControl::decode(&mut buf, MAX).expect("valid"),
        Some(control)
    );
    assert_eq!(INLINE_CONTROL_PATH, "_stator/inline-control");
    assert_eq!(INLINE_RESPONSE_HEADER, "x-stator-inline-response");
}

#[test]
fn stream_ids_parse_only_decimal_u32() {
    assert_eq!(StreamId::parse("0"), Some(StreamId(0)));
    assert_eq!(StreamId::parse("4294967295"), Some(StreamId(u32::MAX)));
    for bad in ["", "-1", "+1", "4294967296", "0x10", " 1", "1 "] {
        assert_eq!(StreamId::parse(bad), None, "{bad:?}");
    }
    assert_eq!(StreamId(9).header_value(), "9");
}

#[test]
fn malformed_inline_frames_are_errors() {
    let mut untagged = BytesMut::from(&[0x01, 0, 0, 0, 1][..]);
    assert!(matches!(
        InlineFrame::decode(&mut untagged, MAX),
        Err(WireError::Malformed(_))
    ));
    let mut huge = BytesMut::from(&[0xff, 0, 0, 0, 1][..]);
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&[0; 16]);
    assert!(matches!(
        ServerRecord::decode(&mut huge, MAX),
        Err(WireError::TooLarge { .. })
    ));
    let wrong_path = RequestFrame {
        path: "1f/ns/c/e".to_owned(),
        headers: [(INLINE_RESPONSE_HEADER.to_owned(), "1".to_owned())].into(),
        payload: TwoPartMessage::header_only(&b"\"kill\""[..]).to_bytes(),
    };
    assert!(InlineControl::from_request_frame(&wrong_path, MAX).is_err());
    let no_id = RequestFrame {
        path: INLINE_CONTROL_PATH.to_owned(),
        headers: std::collections::BTreeMap::default(),
        payload: TwoPartMessage::header_only(&b"\"kill\""[..]).to_bytes(),
    };
    assert!(InlineControl::from_request_frame(&no_id, MAX).is_err());
    let bad_control = RequestFrame {
        path: INLINE_CONTROL_PATH.to_owned(),
        headers: [(INLINE_RESPONSE_HEADER.to_owned(), "1".to_owned())].into(),
        payload: TwoPartMessage::header_only(&b"\"Kill\""[..]).to_bytes(),
    };
    assert!(InlineControl::from_request_frame(&bad_control, MAX).is_err());
    let not_two_part = RequestFrame {
        payload: Bytes::from_static(b"kill"),
        ..bad_control
    };
    assert!(InlineControl::from_request_frame(&not_two_part, MAX).is_err());
}

fn two_part() -> impl Strategy<Value = TwoPartMessage> {
    (
        proptest::collection::vec(any::<u8>(), 0..64),
        proptest::collection::vec(any::<u8>(), 0..256),
    )
        .prop_map(|(h, b)| TwoPartMessage {
            header: Bytes::from(h),
            body: Bytes::from(b),
        })
}

fn server_record() -> impl Strategy<Value = ServerRecord> {
    prop_oneof![
        Just(ServerRecord::Ack(Ack::Accepted)),
        Just(ServerRecord::Ack(Ack::Overloaded)),
        "[a-z ]{0,24}".prop_map(|r| ServerRecord::Ack(Ack::unavailable(&r))),
        (any::<u32>(), two_part()).prop_map(|(id, message)| ServerRecord::Inline(InlineFrame {
            stream: StreamId(id),
            message,
        })),
    ]
}

fn control() -> impl Strategy<Value = InlineControl> {
    (
        any::<u32>(),
        prop_oneof![
            Just(ControlMessage::Stop),
            Just(ControlMessage::Kill),
            Just(ControlMessage::Sentinel)
        ],
    )
        .prop_map(|(id, message)| InlineControl {
            stream: StreamId(id),
            message,
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn server_records_roundtrip(records in proptest::collection::vec(server_record(), 1..8), chunk in 1usize..64) {
        stream_roundtrip(&records, chunk, MAX);
    }

    #[test]
    fn inline_controls_roundtrip(controls in proptest::collection::vec(control(), 1..6), chunk in 1usize..64) {
        stream_roundtrip(&controls, chunk, MAX);
    }

    #[test]
    fn inline_garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = ServerRecord::decode(&mut BytesMut::from(&bytes[..]), MAX);
        let _ = InlineFrame::decode(&mut BytesMut::from(&bytes[..]), MAX);
        let _ = InlineControl::decode(&mut BytesMut::from(&bytes[..]), MAX);
        let mut tagged = BytesMut::from(&[INLINE_TAG][..]);
        tagged.extend_from_slice(&bytes);
        let _ = ServerRecord::decode(&mut tagged, MAX);
    }

    #[test]
    fn truncated_inline_frames_wait_for_more(id: u32, message in two_part(), cut in 0usize..1000) {
        let mut wire = BytesMut::new();
        InlineFrame { stream: StreamId(id), message }.encode(&mut wire).expect("encodable");
        let cut = cut % wire.len();
        let mut partial = BytesMut::from(&wire[..cut]);
        prop_assert!(ServerRecord::decode(&mut partial, MAX).expect("prefix is valid").is_none());
        prop_assert_eq!(partial.len(), cut);
    }
}
