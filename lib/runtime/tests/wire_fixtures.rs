//! Byte-level fixtures for every request-plane frame, as the reference (and the Python
//! worker that interoperated with Dynamo 1.6.1) lays them out.

#[path = "support/wire.rs"]
mod wire_support;

use bytes::{Bytes, BytesMut};
use stator_runtime::wire::{
    Ack, CallHomeHandshake, Codec, ConnectionInfo, ControlMessage, DEFAULT_MAX_MESSAGE_SIZE, Frame,
    NetworkStreamWrapper, RequestControlMessage, RequestFrame, RequestType, ResponseStreamPrologue,
    ResponseType, StreamType, TcpStreamConnectionInfo, TwoPartMessage, WireError,
};

use wire_support::two_part_bytes;

const MAX: usize = DEFAULT_MAX_MESSAGE_SIZE;

fn encode<F: Frame>(frame: &F) -> Vec<u8> {
    let mut buf = BytesMut::new();
    frame.encode(&mut buf).expect("encodable fixture");
    buf.to_vec()
}

fn decode<F: Frame>(bytes: &[u8]) -> F {
    let mut buf = BytesMut::from(bytes);
    let frame = F::decode(&mut buf, MAX).expect("valid").expect("complete");
    assert!(buf.is_empty(), "decoder must consume exactly one frame");
    frame
}

#[test]
fn request_frame_layout() {
    let path = "abc123/fakens/backend/generate";
    let headers = r#"{"request-id":"r1","x-endpoint-path":"abc123/fakens/backend/generate"}"#;
    let payload = two_part_bytes(b"{}", b"{}");
    let mut wire = Vec::new();
    wire.extend_from_slice(&[0x00, 30]);
    wire.extend_from_slice(path.as_bytes());
    wire.extend_from_slice(&(headers.len() as u16).to_be_bytes());
    wire.extend_from_slice(headers.as_bytes());
    wire.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    wire.extend_from_slice(&payload);

    let frame = RequestFrame {
        path: path.to_owned(),
        headers: [
            ("request-id".to_owned(), "r1".to_owned()),
            ("x-endpoint-path".to_owned(), path.to_owned()),
        ]
        .into(),
        payload: Bytes::from(payload),
    };
    assert_eq!(encode(&frame), wire);
    assert_eq!(decode::<RequestFrame>(&wire), frame);
}

#[test]
fn ack_layout() {
    assert_eq!(encode(&Ack::Accepted), vec![0, 0, 0, 0]);
    assert_eq!(decode::<Ack>(&[0, 0, 0, 0]), Ack::Accepted);

    let overloaded = b"Server overloaded: worker at capacity";
    let mut wire = (overloaded.len() as u32).to_be_bytes().to_vec();
    wire.extend_from_slice(overloaded);
    assert_eq!(encode(&Ack::Overloaded), wire);
    assert_eq!(decode::<Ack>(&wire), Ack::Overloaded);

    let unavailable = Ack::unavailable("unknown endpoint 1/ns/comp/ep");
    assert_eq!(
        unavailable.text(),
        "Server unavailable: unknown endpoint 1/ns/comp/ep"
    );
    let wire = encode(&unavailable);
    assert_eq!(&wire[..4], &(unavailable.text().len() as u32).to_be_bytes());
    assert_eq!(decode::<Ack>(&wire), unavailable);
}

#[test]
fn two_part_layout_is_big_endian() {
    let msg = TwoPartMessage {
        header: Bytes::from_static(b"hdr"),
        body: Bytes::from_static(b"body!"),
    };
    let wire = encode(&msg);
    assert_eq!(
        &wire[..24],
        &[
            0, 0, 0, 0, 0, 0, 0, 3, 0, 0, 0, 0, 0, 0, 0, 5, 0, 0, 0, 0, 0, 0, 0, 0
        ]
    );
    assert_eq!(&wire[24..], b"hdrbody!");
    assert_eq!(decode::<TwoPartMessage>(&wire), msg);
}

#[test]
fn two_part_accepts_a_nonzero_checksum() {
    let mut wire = two_part_bytes(b"h", b"b");
    wire[16..24].copy_from_slice(&0xdead_beef_u64.to_be_bytes());
    let msg: TwoPartMessage = decode(&wire);
    assert_eq!((&msg.header[..], &msg.body[..]), (&b"h"[..], &b"b"[..]));
}

#[test]
fn request_control_message_fields() {
    let info = TcpStreamConnectionInfo {
        address: "127.0.0.1:4000".to_owned(),
        subject: "5f0e".to_owned(),
        context: "req-1".to_owned(),
        stream_type: StreamType::Response,
    };
    let info_json = serde_json::to_string(&info).expect("serializable");
    assert_eq!(
        info_json,
        r#"{"address":"127.0.0.1:4000","subject":"5f0e","context":"req-1","stream_type":"response"}"#
    );
    let ctrl = RequestControlMessage {
        id: "req-1".to_owned(),
        request_type: RequestType::SingleIn,
        response_type: ResponseType::ManyOut,
        payload_codec: Codec::Msgpack,
        connection_info: ConnectionInfo {
            transport: "tcp_server".to_owned(),
            info: info_json.clone(),
        },
        metadata: None,
        frontend_send_ts_ns: None,
        request_stream_connection_info: None,
    };
    let json = serde_json::to_value(&ctrl).expect("serializable");
    assert_eq!(
        json,
        serde_json::json!({
            "id": "req-1", "request_type": "single_in", "response_type": "many_out",
            "payload_codec": "msgpack",
            "connection_info": {"transport": "tcp_server", "info": info_json},
        })
    );
    // What the Python worker reads: connection_info.info is itself JSON.
    let parsed: TcpStreamConnectionInfo =
        serde_json::from_str(&ctrl.connection_info.info).expect("nested json");
    assert_eq!(parsed, info);
    // An older peer that omits payload_codec means JSON.
    let legacy = r#"{"id":"x","request_type":"single_in","response_type":"many_out",
        "connection_info":{"transport":"tcp_server","info":"{}"},"frontend_send_ts_ns":12}"#;
    let legacy: RequestControlMessage = serde_json::from_str(legacy).expect("legacy");
    assert_eq!(legacy.payload_codec, Codec::Json);
    assert_eq!(legacy.frontend_send_ts_ns, Some(12));
}

#[test]
fn call_home_frames_match_the_python_worker() {
    let hs = CallHomeHandshake {
        subject: "s-1".to_owned(),
        stream_type: StreamType::Response,
    };
    let header = serde_json::to_vec(&hs).expect("serializable");
    assert_eq!(header, br#"{"subject":"s-1","stream_type":"response"}"#);
    assert_eq!(
        encode(&TwoPartMessage::header_only(header.clone())),
        two_part_bytes(&header, b"")
    );

    let ok = ResponseStreamPrologue {
        error: None,
        typed_error: None,
    };
    assert_eq!(
        serde_json::to_string(&ok).expect("json"),
        r#"{"error":null}"#
    );
    let failed: ResponseStreamPrologue =
        serde_json::from_str(r#"{"error": "boom: prologue failure"}"#).expect("json");
    assert_eq!(failed.error.as_deref(), Some("boom: prologue failure"));

    let item = NetworkStreamWrapper {
        data: Some(serde_json::json!({"data": {"token_ids": [9707]}})),
        complete_final: false,
    };
    assert_eq!(
        serde_json::to_string(&item).expect("json"),
        r#"{"data":{"data":{"token_ids":[9707]}},"complete_final":false}"#
    );
    let last: NetworkStreamWrapper<serde_json::Value> = NetworkStreamWrapper {
        data: None,
        complete_final: true,
    };
    assert_eq!(
        serde_json::to_string(&last).expect("json"),
        r#"{"complete_final":true}"#
    );
    let parsed: NetworkStreamWrapper<serde_json::Value> =
        serde_json::from_str(r#"{"complete_final":true}"#).expect("json");
    assert_eq!(parsed, last);
}

#[test]
fn stream_wrapper_msgpack_uses_field_names() {
    let item = NetworkStreamWrapper {
        data: Some(7u8),
        complete_final: false,
    };
    let bytes = Codec::Msgpack.encode(&item).expect("msgpack");
    // fixmap(2) "data" 7 "complete_final" false
    let mut expected = vec![0x82, 0xa4];
    expected.extend_from_slice(b"data");
    expected.push(0x07);
    expected.push(0xae);
    expected.extend_from_slice(b"complete_final");
    expected.push(0xc2);
    assert_eq!(&bytes[..], &expected[..]);
    let back: NetworkStreamWrapper<u8> = Codec::Msgpack.decode(&bytes).expect("decodes");
    assert_eq!(back, item);
}

#[test]
fn control_messages_are_snake_case_json_strings() {
    for (msg, text) in [
        (ControlMessage::Stop, "\"stop\""),
        (ControlMessage::Kill, "\"kill\""),
        (ControlMessage::Sentinel, "\"sentinel\""),
    ] {
        assert_eq!(serde_json::to_string(&msg).expect("json"), text);
        assert_eq!(msg.header(), text.as_bytes());
        assert_eq!(
            serde_json::from_str::<ControlMessage>(text).expect("json"),
            msg
        );
    }
    assert!(serde_json::from_str::<ControlMessage>("\"Sentinel\"").is_err());
}

#[test]
fn oversized_frames_are_rejected_before_allocation() {
    let mut huge = BytesMut::new();
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&u64::MAX.to_be_bytes());
    huge.extend_from_slice(&[0; 8]);
    assert!(matches!(
        TwoPartMessage::decode(&mut huge, MAX),
        Err(WireError::TooLarge { .. })
    ));

    let mut ack = BytesMut::from(&[0xff, 0xff, 0xff, 0xff][..]);
    assert!(matches!(
        Ack::decode(&mut ack, 1024),
        Err(WireError::TooLarge { .. })
    ));

    let mut req = BytesMut::new();
    req.extend_from_slice(&[0, 1, b'p', 0, 0, 0xff, 0xff, 0xff, 0xff]);
    assert!(matches!(
        RequestFrame::decode(&mut req, MAX),
        Err(WireError::TooLarge { .. })
    ));
}

#[test]
fn garbage_headers_are_errors() {
    let mut wire = vec![0, 1, b'p', 0, 3];
    wire.extend_from_slice(b"{{{");
    wire.extend_from_slice(&[0, 0, 0, 0]);
    let mut buf = BytesMut::from(&wire[..]);
    assert!(RequestFrame::decode(&mut buf, MAX).is_err());

    let mut bad_path = BytesMut::from(&[0, 1, 0xff, 0, 0, 0, 0, 0, 0][..]);
    assert!(matches!(
        RequestFrame::decode(&mut bad_path, MAX),
        Err(WireError::InvalidUtf8(_))
    ));
}

#[test]
fn whole_payload_decoding_rejects_truncation_and_trailing_bytes() {
    let wire = two_part_bytes(b"head", b"body");
    assert!(matches!(
        TwoPartMessage::from_bytes(&wire[..wire.len() - 1], MAX),
        Err(WireError::Truncated { .. })
    ));
    let mut longer = wire.clone();
    longer.push(0);
    assert!(matches!(
        TwoPartMessage::from_bytes(&longer, MAX),
        Err(WireError::TrailingBytes { extra: 1 })
    ));
    assert_eq!(
        TwoPartMessage::from_bytes(&wire, MAX).expect("valid").body,
        "body"
    );
}

#[tokio::test]
async fn read_frame_reports_truncation_and_clean_eof() {
    use stator_runtime::wire::read_frame;
    let wire = two_part_bytes(b"h", b"b");
    let mut buf = BytesMut::new();
    let mut cut = &wire[..wire.len() - 1];
    let res = read_frame::<TwoPartMessage, _>(&mut cut, &mut buf, MAX).await;
    assert!(matches!(res, Err(WireError::Truncated { .. })));

    let mut buf = BytesMut::new();
    let mut whole = &wire[..];
    let first = read_frame::<TwoPartMessage, _>(&mut whole, &mut buf, MAX).await;
    assert!(matches!(first, Ok(Some(_))));
    let eof = read_frame::<TwoPartMessage, _>(&mut whole, &mut buf, MAX).await;
    assert!(matches!(eof, Ok(None)));
}
