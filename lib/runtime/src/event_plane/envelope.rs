//! The event envelope, its 5-byte frame and the ZMQ multipart message (Dynamo 1.6.1).
//!
//! Envelope: msgpack map with field names `{publisher_id, sequence, published_at, topic,
//! payload}`, `payload` as msgpack bin. Frame: `u8 version (= 1) | u32 payload_len
//! (big-endian) | envelope`. ZMQ message: `[topic, publisher_id u64 BE, sequence u64 BE, frame]`.

use std::fmt;

use bytes::Bytes;
use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::{Deserialize, Serialize, Serializer};

use super::EventPlaneError;
use crate::names::InstanceId;

/// Frame protocol version.
pub const FRAME_VERSION: u8 = 1;
/// Frame header size: version byte plus a u32 length.
pub const FRAME_HEADER_SIZE: usize = 5;

/// One published event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventEnvelope {
    /// The publisher's id (its event-channel instance id).
    pub publisher_id: InstanceId,
    /// Per-publisher sequence number, starting at 1 and increasing by one per event.
    pub sequence: u64,
    /// Publish time, milliseconds since the Unix epoch.
    pub published_at: u64,
    /// Topic, e.g. `kv-events`.
    pub topic: String,
    /// The codec-encoded event (msgpack with field names).
    #[serde(with = "payload_bytes")]
    pub payload: Bytes,
}

impl EventEnvelope {
    /// Encodes the envelope as msgpack with field names.
    pub fn encode(&self) -> Result<Vec<u8>, EventPlaneError> {
        rmp_serde::to_vec_named(self).map_err(|e| EventPlaneError::Encode(e.to_string()))
    }

    /// Decodes an envelope from msgpack.
    pub fn decode(bytes: &[u8]) -> Result<Self, EventPlaneError> {
        rmp_serde::from_slice(bytes).map_err(|e| EventPlaneError::Decode(e.to_string()))
    }

    /// The envelope wrapped in its 5-byte frame.
    pub fn to_frame(&self) -> Result<Vec<u8>, EventPlaneError> {
        encode_frame(&self.encode()?)
    }

    /// Decodes a framed envelope.
    pub fn from_frame(frame: &[u8]) -> Result<Self, EventPlaneError> {
        Self::decode(decode_frame(frame)?)
    }

    /// The four parts of the ZMQ message carrying this envelope.
    pub fn to_multipart(&self) -> Result<[Bytes; 4], EventPlaneError> {
        Ok([
            Bytes::copy_from_slice(self.topic.as_bytes()),
            Bytes::copy_from_slice(&self.publisher_id.0.to_be_bytes()),
            Bytes::copy_from_slice(&self.sequence.to_be_bytes()),
            Bytes::from(self.to_frame()?),
        ])
    }

    /// Decodes a ZMQ message; the id and sequence parts must agree with the envelope.
    pub fn from_multipart(parts: &[Bytes]) -> Result<Self, EventPlaneError> {
        let [_topic, id, seq, frame] = parts else {
            return Err(EventPlaneError::Malformed(format!(
                "expected 4 message parts, got {}",
                parts.len()
            )));
        };
        let id = u64_be(id, "publisher_id")?;
        let seq = u64_be(seq, "sequence")?;
        let envelope = Self::from_frame(frame)?;
        if envelope.publisher_id.0 != id || envelope.sequence != seq {
            return Err(EventPlaneError::Malformed(format!(
                "message header ({id:x}, {seq}) disagrees with envelope ({:x}, {})",
                envelope.publisher_id.0, envelope.sequence
            )));
        }
        Ok(envelope)
    }
}

fn u64_be(part: &[u8], what: &str) -> Result<u64, EventPlaneError> {
    let bytes: [u8; 8] = part.try_into().map_err(|_| {
        EventPlaneError::Malformed(format!("{what} part must be 8 bytes, got {}", part.len()))
    })?;
    Ok(u64::from_be_bytes(bytes))
}

/// Wraps `payload` in a frame: `u8 version | u32 BE length | payload`.
pub fn encode_frame(payload: &[u8]) -> Result<Vec<u8>, EventPlaneError> {
    let len = u32::try_from(payload.len()).map_err(|_| {
        EventPlaneError::Encode(format!("payload of {} bytes exceeds u32", payload.len()))
    })?;
    let mut out = Vec::with_capacity(FRAME_HEADER_SIZE + payload.len());
    out.push(FRAME_VERSION);
    out.extend_from_slice(&len.to_be_bytes());
    out.extend_from_slice(payload);
    Ok(out)
}

/// The payload of a frame; errors on short, oversized, versioned-differently or padded input.
pub fn decode_frame(frame: &[u8]) -> Result<&[u8], EventPlaneError> {
    let Some((header, body)) = frame.split_first_chunk::<FRAME_HEADER_SIZE>() else {
        return Err(EventPlaneError::Malformed(format!(
            "frame of {} bytes is shorter than its {FRAME_HEADER_SIZE}-byte header",
            frame.len()
        )));
    };
    if header[0] != FRAME_VERSION {
        return Err(EventPlaneError::Malformed(format!(
            "unsupported frame version {}",
            header[0]
        )));
    }
    let len = u32::from_be_bytes([header[1], header[2], header[3], header[4]]) as usize;
    if len != body.len() {
        return Err(EventPlaneError::Malformed(format!(
            "frame declares {len} payload bytes but carries {}",
            body.len()
        )));
    }
    Ok(body)
}

/// Payload as msgpack bin; accepts bin or an array of integers when reading.
mod payload_bytes {
    use super::{Bytes, Deserializer, SeqAccess, Serializer, Visitor, de, fmt};

    pub fn serialize<S: Serializer>(bytes: &Bytes, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_bytes(bytes)
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Bytes, D::Error> {
        deserializer.deserialize_byte_buf(BytesVisitor)
    }

    struct BytesVisitor;

    impl<'de> Visitor<'de> for BytesVisitor {
        type Value = Bytes;

        fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
            f.write_str("a byte string")
        }

        fn visit_bytes<E: de::Error>(self, v: &[u8]) -> Result<Bytes, E> {
            Ok(Bytes::copy_from_slice(v))
        }

        fn visit_byte_buf<E: de::Error>(self, v: Vec<u8>) -> Result<Bytes, E> {
            Ok(Bytes::from(v))
        }

        fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Bytes, A::Error> {
            let mut out = Vec::with_capacity(seq.size_hint().unwrap_or(0).min(1 << 16));
            while let Some(b) = seq.next_element::<u8>()? {
                out.push(b);
            }
            Ok(Bytes::from(out))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample() -> EventEnvelope {
        EventEnvelope {
            publisher_id: InstanceId(0x0102_0304_0506_0708),
            sequence: 7,
            published_at: 1_700_000_000_000,
            topic: "kv-events".into(),
            payload: Bytes::from_static(&[0xc0]),
        }
    }

    #[test]
    fn frame_bytes_fixture() {
        assert_eq!(
            encode_frame(b"abc").unwrap(),
            [1, 0, 0, 0, 3, b'a', b'b', b'c']
        );
        assert_eq!(decode_frame(&[1, 0, 0, 0, 2, 9, 9]).unwrap(), [9, 9]);
        assert!(decode_frame(&[1, 0, 0]).is_err());
        assert!(decode_frame(&[2, 0, 0, 0, 0]).is_err());
        assert!(decode_frame(&[1, 0, 0, 0, 3, 9]).is_err());
        assert!(decode_frame(&[1, 0, 0, 0, 0, 9]).is_err());
    }

    #[test]
    fn envelope_is_a_named_msgpack_map_with_bin_payload() {
        let bytes = sample().encode().unwrap();
        // fixmap of 5 entries, first key "publisher_id".
        assert_eq!(bytes[0], 0x85);
        assert_eq!(&bytes[1..14], b"\xacpublisher_id");
        // The payload is a bin 8 of length 1 at the very end.
        assert_eq!(&bytes[bytes.len() - 3..], [0xc4, 0x01, 0xc0]);
        assert_eq!(EventEnvelope::decode(&bytes).unwrap(), sample());
    }

    #[test]
    fn multipart_round_trip_and_consistency() {
        let parts = sample().to_multipart().unwrap();
        assert_eq!(&parts[0][..], b"kv-events");
        assert_eq!(&parts[1][..], [1, 2, 3, 4, 5, 6, 7, 8]);
        assert_eq!(&parts[2][..], 7u64.to_be_bytes());
        assert_eq!(parts[3][0], FRAME_VERSION);
        assert_eq!(EventEnvelope::from_multipart(&parts).unwrap(), sample());
        let mut wrong = parts.clone();
        wrong[2] = Bytes::copy_from_slice(&8u64.to_be_bytes());
        assert!(EventEnvelope::from_multipart(&wrong).is_err());
        assert!(EventEnvelope::from_multipart(&parts[..3]).is_err());
        let mut short = parts;
        short[1] = Bytes::from_static(&[1, 2]);
        assert!(EventEnvelope::from_multipart(&short).is_err());
    }

    #[test]
    fn payload_may_arrive_as_an_integer_array() {
        #[derive(Serialize)]
        struct Loose<'a> {
            publisher_id: u64,
            sequence: u64,
            published_at: u64,
            topic: &'a str,
            payload: Vec<u8>,
        }
        let bytes = rmp_serde::to_vec_named(&Loose {
            publisher_id: 1,
            sequence: 2,
            published_at: 3,
            topic: "t",
            payload: vec![1, 2, 3],
        })
        .unwrap();
        let env = EventEnvelope::decode(&bytes).unwrap();
        assert_eq!(&env.payload[..], [1, 2, 3]);
    }
}
