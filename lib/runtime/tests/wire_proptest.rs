//! Round-trip and robustness properties of the frame codecs.

#[path = "support/wire.rs"]
mod wire_support;

use bytes::{Bytes, BytesMut};
use proptest::prelude::*;
use stator_runtime::wire::{Ack, Codec, Frame, NetworkStreamWrapper, RequestFrame, TwoPartMessage};

use wire_support::stream_roundtrip;

const MAX: usize = 1 << 20;

fn request_frame() -> impl Strategy<Value = RequestFrame> {
    (
        "[a-z0-9/_%-]{0,64}",
        proptest::collection::btree_map("[a-z-]{1,12}", "\\PC{0,16}", 0..4),
        proptest::collection::vec(any::<u8>(), 0..256),
    )
        .prop_map(|(path, headers, payload)| RequestFrame {
            path,
            headers,
            payload: Bytes::from(payload),
        })
}

fn ack() -> impl Strategy<Value = Ack> {
    prop_oneof![
        Just(Ack::Accepted),
        Just(Ack::Overloaded),
        "[a-z ]{0,32}".prop_map(|r| Ack::unavailable(&r)),
        "[a-z][a-z ]{0,32}".prop_map(Ack::Rejected),
    ]
}

fn two_part() -> impl Strategy<Value = TwoPartMessage> {
    (
        proptest::collection::vec(any::<u8>(), 0..128),
        proptest::collection::vec(any::<u8>(), 0..512),
    )
        .prop_map(|(h, b)| TwoPartMessage {
            header: Bytes::from(h),
            body: Bytes::from(b),
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(128))]

    #[test]
    fn request_frames_roundtrip(frames in proptest::collection::vec(request_frame(), 1..6), chunk in 1usize..64) {
        stream_roundtrip(&frames, chunk, MAX);
    }

    #[test]
    fn acks_roundtrip(acks in proptest::collection::vec(ack(), 1..8), chunk in 1usize..16) {
        stream_roundtrip(&acks, chunk, MAX);
    }

    #[test]
    fn two_part_roundtrip(msgs in proptest::collection::vec(two_part(), 1..6), chunk in 1usize..64) {
        stream_roundtrip(&msgs, chunk, MAX);
    }

    #[test]
    fn stream_wrapper_roundtrips_in_both_codecs(data in proptest::option::of(any::<(String, i64, bool)>()), done: bool) {
        let item = NetworkStreamWrapper { data, complete_final: done };
        for codec in [Codec::Json, Codec::Msgpack] {
            let bytes = codec.encode(&item).expect("encodable");
            let back: NetworkStreamWrapper<(String, i64, bool)> = codec.decode(&bytes).expect("decodable");
            prop_assert_eq!(&back, &item);
        }
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = RequestFrame::decode(&mut BytesMut::from(&bytes[..]), MAX);
        let _ = Ack::decode(&mut BytesMut::from(&bytes[..]), MAX);
        let _ = TwoPartMessage::decode(&mut BytesMut::from(&bytes[..]), MAX);
        let _ = TwoPartMessage::from_bytes(&bytes, MAX);
        let _ = Codec::Json.decode::<NetworkStreamWrapper<serde_json::Value>>(&bytes);
        let _ = Codec::Msgpack.decode::<NetworkStreamWrapper<serde_json::Value>>(&bytes);
    }

    #[test]
    fn truncated_frames_wait_for_more(frame in request_frame(), cut in 0usize..1000) {
        let mut wire = BytesMut::new();
        frame.encode(&mut wire).expect("encodable");
        let cut = cut % wire.len();
        let mut partial = BytesMut::from(&wire[..cut]);
        prop_assert!(RequestFrame::decode(&mut partial, MAX).expect("prefix is valid").is_none());
        prop_assert_eq!(partial.len(), cut);
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn in_place_encoding_matches_the_owned_path(
        items in proptest::collection::vec(proptest::option::of(any::<(String, u32)>()), 1..8),
    ) {
        for codec in [Codec::Json, Codec::Msgpack] {
            let mut direct = BytesMut::new();
            let mut owned = BytesMut::new();
            for data in &items {
                let item = NetworkStreamWrapper { data: data.clone(), complete_final: data.is_none() };
                TwoPartMessage::encode_body_with(&mut direct, |buf| codec.encode_into(&item, buf))
                    .expect("encodable");
                TwoPartMessage::body_only(codec.encode(&item).expect("encodable"))
                    .encode(&mut owned)
                    .expect("encodable");
            }
            prop_assert_eq!(&direct, &owned);
            let mut decoded = Vec::new();
            while let Some(item) = TwoPartMessage::decode_with(&mut direct, MAX, |h, b| {
                assert!(h.is_empty());
                codec.decode::<NetworkStreamWrapper<(String, u32)>>(b).expect("decodable").data
            }).expect("valid") {
                decoded.push(item);
            }
            prop_assert_eq!(decoded, items.clone());
        }
    }
}
