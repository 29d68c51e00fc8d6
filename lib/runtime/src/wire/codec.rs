//! Payload codecs: JSON, or msgpack with field names, advertised per instance.

use std::fmt;
use std::str::FromStr;

use bytes::{BufMut, Bytes, BytesMut};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

use super::WireError;

/// Initial buffer of [`Codec::encode`].
const ENCODE_CAPACITY: usize = 4096;

/// How request bodies and response items are encoded (`request_plane_codec` of an instance,
/// `payload_codec` of a request).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Codec {
    /// JSON (`serde_json`); what peers assume when nothing is advertised.
    #[default]
    Json,
    /// MessagePack maps with field names (`rmp_serde::to_vec_named`); Dynamo workers' default.
    Msgpack,
}

impl Codec {
    /// Encodes `value`.
    pub fn encode<T: Serialize + ?Sized>(self, value: &T) -> Result<Bytes, WireError> {
        // Requests carry the prompt's token ids (a few KB): start there instead of regrowing
        // from 8 bytes about ten times per request. A `Vec` rather than a `BytesMut` writer:
        // MessagePack writes each token id as two tiny slices, and `Vec`'s `write_all` costs
        // a third of `BufMut::put_slice`'s instructions per call.
        let mut buf = Vec::with_capacity(ENCODE_CAPACITY);
        match self {
            Self::Json => {
                serde_json::to_writer(&mut buf, value).map_err(|e| WireError::json("body", e))?;
            }
            Self::Msgpack => {
                let mut ser = rmp_serde::Serializer::new(&mut buf).with_struct_map();
                value.serialize(&mut ser)?;
            }
        }
        Ok(Bytes::from(buf))
    }

    /// Appends the encoding of `value` to `dst`.
    pub fn encode_into<T: Serialize + ?Sized>(
        self,
        value: &T,
        dst: &mut BytesMut,
    ) -> Result<(), WireError> {
        let writer = dst.writer();
        match self {
            Self::Json => {
                serde_json::to_writer(writer, value).map_err(|e| WireError::json("body", e))
            }
            Self::Msgpack => {
                let mut ser = rmp_serde::Serializer::new(writer).with_struct_map();
                value.serialize(&mut ser)?;
                Ok(())
            }
        }
    }

    /// Decodes a value from `bytes`.
    pub fn decode<T: DeserializeOwned>(self, bytes: &[u8]) -> Result<T, WireError> {
        match self {
            Self::Json => serde_json::from_slice(bytes).map_err(|e| WireError::json("body", e)),
            Self::Msgpack => Ok(rmp_serde::from_slice(bytes)?),
        }
    }

    /// The name used on the wire and in `DYN_REQUEST_PLANE_CODEC`.
    pub fn as_str(self) -> &'static str {
        match self {
            Self::Json => "json",
            Self::Msgpack => "msgpack",
        }
    }
}

impl fmt::Display for Codec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text was neither `json` nor `msgpack`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown codec {0:?} (expected \"json\" or \"msgpack\")")]
pub struct UnknownCodec(pub String);

impl FromStr for Codec {
    type Err = UnknownCodec;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.trim().to_ascii_lowercase().as_str() {
            "json" => Ok(Self::Json),
            "msgpack" => Ok(Self::Msgpack),
            _ => Err(UnknownCodec(s.to_owned())),
        }
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    #[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
    struct Sample {
        token_ids: Vec<u32>,
        text: Option<String>,
        max_tokens: u64,
    }

    fn sample() -> impl Strategy<Value = Sample> {
        (
            proptest::collection::vec(any::<u32>(), 0..600),
            proptest::option::of(".{0,40}"),
            any::<u64>(),
        )
            .prop_map(|(token_ids, text, max_tokens)| Sample {
                token_ids,
                text,
                max_tokens,
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn encode_matches_the_reference_encoders_and_round_trips(value in sample()) {
            let msgpack = Codec::Msgpack.encode(&value).unwrap();
            let reference = rmp_serde::to_vec_named(&value).unwrap();
            prop_assert_eq!(&msgpack[..], &reference[..]);
            prop_assert_eq!(Codec::Msgpack.decode::<Sample>(&msgpack).unwrap(), value.clone());
            let json = Codec::Json.encode(&value).unwrap();
            let reference = serde_json::to_vec(&value).unwrap();
            prop_assert_eq!(&json[..], &reference[..]);
            let mut appended = BytesMut::new();
            Codec::Msgpack.encode_into(&value, &mut appended).unwrap();
            prop_assert_eq!(&appended[..], &msgpack[..]);
        }
    }
}
