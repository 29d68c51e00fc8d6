//! Event frame and envelope codecs: fixtures and property tests.

use bytes::Bytes;
use proptest::prelude::*;
use stator_runtime::event_plane::{EventEnvelope, decode_frame, encode_frame};
use stator_runtime::names::InstanceId;

fn envelope() -> impl Strategy<Value = EventEnvelope> {
    (
        any::<u64>(),
        any::<u64>(),
        any::<u64>(),
        "[a-z_-]{0,16}",
        proptest::collection::vec(any::<u8>(), 0..256),
    )
        .prop_map(|(id, seq, at, topic, payload)| EventEnvelope {
            publisher_id: InstanceId(id),
            sequence: seq,
            published_at: at,
            topic,
            payload: Bytes::from(payload),
        })
}

#[test]
fn frame_fixture() {
    let env = EventEnvelope {
        publisher_id: InstanceId(1),
        sequence: 2,
        published_at: 3,
        topic: "t".into(),
        payload: Bytes::from_static(b"\x01"),
    };
    let frame = env.to_frame().unwrap();
    let body = env.encode().unwrap();
    assert_eq!(frame[0], 1);
    assert_eq!(&frame[1..5], (body.len() as u32).to_be_bytes());
    assert_eq!(&frame[5..], body);
    // {publisher_id:1, sequence:2, published_at:3, topic:"t", payload:bin[1]}
    let mut want = vec![0x85, 0xac];
    want.extend_from_slice(b"publisher_id");
    want.push(0x01);
    want.push(0xa8);
    want.extend_from_slice(b"sequence");
    want.push(0x02);
    want.push(0xac);
    want.extend_from_slice(b"published_at");
    want.push(0x03);
    want.push(0xa5);
    want.extend_from_slice(b"topic");
    want.extend_from_slice(&[0xa1, b't', 0xa7]);
    want.extend_from_slice(b"payload");
    want.extend_from_slice(&[0xc4, 0x01, 0x01]);
    assert_eq!(body, want);
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn envelope_round_trips_through_frame_and_multipart(env in envelope()) {
        prop_assert_eq!(EventEnvelope::from_frame(&env.to_frame().unwrap()).unwrap(), env.clone());
        let parts = env.to_multipart().unwrap();
        prop_assert_eq!(EventEnvelope::from_multipart(&parts).unwrap(), env);
    }

    #[test]
    fn truncated_frames_are_errors(env in envelope(), cut in 0usize..64) {
        let frame = env.to_frame().unwrap();
        let cut = cut.min(frame.len() - 1);
        prop_assert!(decode_frame(&frame[..cut]).is_err());
        prop_assert!(EventEnvelope::from_frame(&frame[..cut]).is_err());
    }

    #[test]
    fn garbage_never_panics(bytes in proptest::collection::vec(any::<u8>(), 0..128)) {
        let _ = EventEnvelope::from_frame(&bytes);
        let _ = EventEnvelope::decode(&bytes);
        if let Ok(framed) = encode_frame(&bytes) {
            let _ = EventEnvelope::from_frame(&framed);
        }
    }
}
