//! Byte-exact frame codecs of the TCP request plane (Dynamo 1.6.1 compatible).
//!
//! Two connections carry one request: the pooled *request connection* (client → worker's shared
//! listener) carries [`RequestFrame`]s answered by [`Ack`]s in request order; the *response
//! stream* the worker dials back to the client ("call-home") carries [`TwoPartMessage`]s:
//! a [`CallHomeHandshake`], a [`ResponseStreamPrologue`], data frames holding
//! [`NetworkStreamWrapper`]s and a final [`ControlMessage::Sentinel`]. The client answers on the
//! same socket with `stop`/`kill` [`ControlMessage`]s.
//!
//! Between two Stator processes the response stream can instead travel on the request
//! connection itself ([`InlineFrame`], which explains the scheme); Dynamo peers never see
//! those frames.
//!
//! Every decoder is incremental (`Ok(None)` = need more bytes), enforces a maximum message size,
//! and returns an error (never panics) on garbage.

mod ack;
mod codec;
mod inline;
mod io;
mod messages;
mod request_frame;
mod two_part;

pub use ack::{ACK_OVERLOADED, ACK_UNAVAILABLE_PREFIX, Ack};
pub use codec::{Codec, UnknownCodec};
pub use inline::{
    INLINE_CONTROL_PATH, INLINE_RESPONSE_HEADER, INLINE_TAG, InlineControl, InlineFrame,
    ServerRecord, StreamId,
};
pub use io::{read_frame, write_frame};
pub use messages::{
    CallHomeHandshake, ConnectionInfo, ControlMessage, NetworkStreamWrapper, RequestControlMessage,
    RequestType, ResponseStreamPrologue, ResponseType, StreamType, TCP_SERVER_TRANSPORT,
    TcpStreamConnectionInfo,
};
pub use request_frame::RequestFrame;
pub use two_part::TwoPartMessage;

use bytes::BytesMut;

/// Default cap on one frame (`DYN_TCP_MAX_MESSAGE_SIZE`): 32 MiB.
pub const DEFAULT_MAX_MESSAGE_SIZE: usize = 32 * 1024 * 1024;

/// A frame that can be written to and read from a byte stream.
pub trait Frame: Sized {
    /// Appends the encoded frame to `dst`.
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError>;

    /// Decodes one frame from the front of `src`, consuming its bytes.
    ///
    /// Returns `Ok(None)` (consuming nothing) while `src` holds only part of a frame, and an
    /// error when the frame is malformed or larger than `max_size` bytes.
    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError>;
}

/// Why a frame could not be encoded or decoded.
#[derive(Debug, thiserror::Error)]
pub enum WireError {
    /// The frame (or one of its parts) is larger than the configured maximum.
    #[error("frame of {len} bytes exceeds the maximum message size of {max} bytes")]
    TooLarge {
        /// Size announced or required.
        len: u64,
        /// Configured maximum.
        max: usize,
    },
    /// A length-prefixed field does not fit its length prefix.
    #[error("{field} of {len} bytes does not fit its {bits}-bit length prefix")]
    FieldTooLong {
        /// Which field.
        field: &'static str,
        /// Actual length.
        len: usize,
        /// Width of the prefix.
        bits: u32,
    },
    /// The stream ended in the middle of a frame.
    #[error("connection closed in the middle of a frame ({buffered} bytes buffered)")]
    Truncated {
        /// Bytes of the partial frame received.
        buffered: usize,
    },
    /// A buffer held more bytes than the one message it should contain.
    #[error("{extra} unexpected bytes after the message")]
    TrailingBytes {
        /// Bytes left over.
        extra: usize,
    },
    /// A frame's fields are inconsistent (e.g. an inline record without its tag).
    #[error("malformed frame: {0}")]
    Malformed(String),
    /// A text field was not UTF-8.
    #[error("{0} is not valid UTF-8")]
    InvalidUtf8(&'static str),
    /// A JSON part could not be encoded or decoded.
    #[error("invalid JSON in {what}: {source}")]
    Json {
        /// Which part.
        what: &'static str,
        /// Underlying error.
        source: serde_json::Error,
    },
    /// A msgpack body could not be decoded.
    #[error("invalid msgpack body: {0}")]
    MsgpackDecode(#[from] rmp_serde::decode::Error),
    /// A msgpack body could not be encoded.
    #[error("cannot encode msgpack body: {0}")]
    MsgpackEncode(#[from] rmp_serde::encode::Error),
    /// Reading or writing the socket failed.
    #[error("i/o error: {0}")]
    Io(#[from] std::io::Error),
}

impl WireError {
    pub(crate) fn json(what: &'static str, source: serde_json::Error) -> Self {
        Self::Json { what, source }
    }
}

/// Checks an announced length against the cap before any allocation happens.
pub(crate) fn check_size(len: u64, max: usize) -> Result<usize, WireError> {
    match usize::try_from(len) {
        Ok(n) if n <= max => Ok(n),
        _ => Err(WireError::TooLarge { len, max }),
    }
}
