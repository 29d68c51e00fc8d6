//! The acknowledgement a server writes for each request frame, in request order.

use bytes::{BufMut, BytesMut};

use super::{Frame, WireError, check_size};

/// Prefix of every rejection the client should treat as "worker unavailable" (migratable).
pub const ACK_UNAVAILABLE_PREFIX: &str = "Server unavailable: ";

/// Full text of the overload rejection (admission pool and queue both full).
pub const ACK_OVERLOADED: &str = "Server overloaded: worker at capacity";

/// `u32 BE len | bytes`: empty means accepted, anything else is a rejection message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ack {
    /// The request was admitted; the worker will dial the response stream.
    Accepted,
    /// `Server unavailable: …` (unknown endpoint, worker shutting down).
    Unavailable(String),
    /// `Server overloaded: worker at capacity`.
    Overloaded,
    /// Any other non-empty text.
    Rejected(String),
}

impl Ack {
    /// An unavailable ack with `reason` after the standard prefix.
    pub fn unavailable(reason: &str) -> Self {
        Self::Unavailable(format!("{ACK_UNAVAILABLE_PREFIX}{reason}"))
    }

    /// The text carried on the wire (empty for [`Ack::Accepted`]).
    pub fn text(&self) -> &str {
        match self {
            Self::Accepted => "",
            Self::Unavailable(text) | Self::Rejected(text) => text,
            Self::Overloaded => ACK_OVERLOADED,
        }
    }

    /// Classifies an ack text (empty = accepted), as received over NATS.
    pub fn from_text(text: String) -> Self {
        if text.is_empty() {
            Self::Accepted
        } else if text.starts_with(ACK_UNAVAILABLE_PREFIX) {
            Self::Unavailable(text)
        } else if text.starts_with("Server overloaded") {
            Self::Overloaded
        } else {
            Self::Rejected(text)
        }
    }
}

impl Frame for Ack {
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let text = self.text();
        let len = u32::try_from(text.len()).map_err(|_| WireError::FieldTooLong {
            field: "ack",
            len: text.len(),
            bits: 32,
        })?;
        dst.reserve(4 + text.len());
        dst.put_u32(len);
        dst.put_slice(text.as_bytes());
        Ok(())
    }

    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError> {
        if src.len() < 4 {
            return Ok(None);
        }
        let len = u32::from_be_bytes([src[0], src[1], src[2], src[3]]);
        let len = check_size(u64::from(len), max_size)?;
        if src.len() < 4 + len {
            return Ok(None);
        }
        let frame = src.split_to(4 + len);
        let text =
            String::from_utf8(frame[4..].to_vec()).map_err(|_| WireError::InvalidUtf8("ack"))?;
        Ok(Some(Self::from_text(text)))
    }
}
