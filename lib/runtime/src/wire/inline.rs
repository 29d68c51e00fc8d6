//! Stator's inline response stream: the records a Stator worker writes on the request
//! connection itself, instead of dialing back, when the client asked for it.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::two_part::{PREFIX as TWO_PART_PREFIX, message_bounds};
use super::{Ack, ControlMessage, Frame, RequestFrame, TwoPartMessage, WireError};

/// Request-frame header asking for an inline response; its value is the [`StreamId`].
pub const INLINE_RESPONSE_HEADER: &str = "x-stator-inline-response";

/// Reserved endpoint path of inline control frames (instance paths start with a hex id, so
/// no served endpoint can have it).
pub const INLINE_CONTROL_PATH: &str = "_stator/inline-control";

/// First byte of every inline record.
pub const INLINE_TAG: u8 = 0xFF;

/// Bytes before the two-part message of an inline record.
const INLINE_PREFIX: usize = 5;

/// One inline response stream on one request connection (assigned by the client).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct StreamId(pub u32);

impl StreamId {
    /// The header value carrying this id (decimal).
    pub fn header_value(self) -> String {
        self.0.to_string()
    }

    /// Parses a header value; `None` unless it is a decimal `u32`.
    pub fn parse(value: &str) -> Option<Self> {
        if value.is_empty() || !value.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        value.parse().ok().map(Self)
    }
}

/// `0xFF | u32 BE stream id | two-part message`: one response-stream message of an inline
/// stream (prologue, data frame, final frame or sentinel).
///
/// A Stator client adds [`INLINE_RESPONSE_HEADER`] (value: a [`StreamId`] unique among the
/// live streams of that connection) to a request frame and still sends a valid call-home
/// `connection_info`. A Dynamo worker ignores the unknown header and dials back as usual; a
/// Stator worker answers with [`InlineFrame`]s on the request connection instead: the same
/// prologue, data, final and sentinel two-part messages as the call-home stream, each behind
/// a 5-byte prefix (`0xFF | u32 BE stream id`). No ack can start with `0xFF` (its length would
/// exceed 4 GiB), so the client's reader tells acks and inline records apart by the first
/// byte ([`ServerRecord`]). The client sends `stop`/`kill` for an inline stream as an
/// [`InlineControl`]: a request frame on the reserved path [`INLINE_CONTROL_PATH`], which the
/// worker applies and never acks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InlineFrame {
    /// Stream the message belongs to.
    pub stream: StreamId,
    /// The message, exactly as the call-home stream would carry it.
    pub message: TwoPartMessage,
}

impl InlineFrame {
    /// Appends the record prefix of `stream`; the two-part message must follow.
    pub fn encode_prefix(stream: StreamId, dst: &mut BytesMut) {
        dst.reserve(INLINE_PREFIX + TWO_PART_PREFIX);
        dst.put_u8(INLINE_TAG);
        dst.put_u32(stream.0);
    }
}

impl Frame for InlineFrame {
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        Self::encode_prefix(self.stream, dst);
        self.message.encode(dst)
    }

    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError> {
        if src.is_empty() {
            return Ok(None);
        }
        if src[0] != INLINE_TAG {
            return Err(WireError::Malformed(format!(
                "inline record starts with {:#04x}, not {INLINE_TAG:#04x}",
                src[0]
            )));
        }
        if src.len() < INLINE_PREFIX {
            return Ok(None);
        }
        let (total, header_len) = match message_bounds(&src[INLINE_PREFIX..], max_size)? {
            Ok(bounds) => bounds,
            Err(missing) => {
                src.reserve(missing);
                return Ok(None);
            }
        };
        let mut record = src.split_to(INLINE_PREFIX + total);
        record.advance(1);
        let stream = StreamId(record.get_u32());
        record.advance(TWO_PART_PREFIX);
        let header = record.split_to(header_len).freeze();
        Ok(Some(Self {
            stream,
            message: TwoPartMessage {
                header,
                body: record.freeze(),
            },
        }))
    }
}

/// What a Stator client reads on a request connection: acks, in request order, interleaved
/// with inline records.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ServerRecord {
    /// The ack of the oldest unacknowledged request frame.
    Ack(Ack),
    /// A message of an inline response stream.
    Inline(InlineFrame),
}

impl Frame for ServerRecord {
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        match self {
            Self::Ack(ack) => ack.encode(dst),
            Self::Inline(frame) => frame.encode(dst),
        }
    }

    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError> {
        match src.first() {
            None => Ok(None),
            Some(&INLINE_TAG) => Ok(InlineFrame::decode(src, max_size)?.map(Self::Inline)),
            Some(_) => Ok(Ack::decode(src, max_size)?.map(Self::Ack)),
        }
    }
}

/// `stop` or `kill` for an inline stream, client → worker: a [`RequestFrame`] on
/// [`INLINE_CONTROL_PATH`] whose [`INLINE_RESPONSE_HEADER`] names the stream and whose payload
/// is the header-only control message of the call-home protocol. Never acked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct InlineControl {
    /// Stream the control applies to.
    pub stream: StreamId,
    /// `stop` or `kill` (a `sentinel` is accepted and ignored by workers).
    pub message: ControlMessage,
}

impl InlineControl {
    /// The request frame carrying this control.
    pub fn to_request_frame(self) -> RequestFrame {
        RequestFrame {
            path: INLINE_CONTROL_PATH.to_owned(),
            headers: [(
                INLINE_RESPONSE_HEADER.to_owned(),
                self.stream.header_value(),
            )]
            .into(),
            payload: TwoPartMessage::header_only(Bytes::from_static(self.message.header()))
                .to_bytes(),
        }
    }

    /// Reads the control out of a request frame on [`INLINE_CONTROL_PATH`].
    pub fn from_request_frame(frame: &RequestFrame, max_size: usize) -> Result<Self, WireError> {
        if frame.path != INLINE_CONTROL_PATH {
            return Err(WireError::Malformed(format!(
                "inline control on path {:?}",
                frame.path
            )));
        }
        let stream = frame
            .headers
            .get(INLINE_RESPONSE_HEADER)
            .and_then(|v| StreamId::parse(v))
            .ok_or_else(|| WireError::Malformed("inline control without a stream id".to_owned()))?;
        let msg = TwoPartMessage::from_bytes(&frame.payload, max_size)?;
        let message = serde_json::from_slice(&msg.header)
            .map_err(|e| WireError::json("inline control", e))?;
        Ok(Self { stream, message })
    }
}

impl Frame for InlineControl {
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        self.to_request_frame().encode(dst)
    }

    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError> {
        RequestFrame::decode(src, max_size)?
            .map(|frame| Self::from_request_frame(&frame, max_size))
            .transpose()
    }
}
