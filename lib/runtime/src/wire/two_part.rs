//! The two-part message: request payloads and every response-stream frame.

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Frame, WireError, check_size};

pub(crate) const PREFIX: usize = 24;

/// `u64 BE header_len | u64 BE body_len | u64 BE checksum | header | body`.
///
/// Dynamo writes an xxh3 checksum only in debug builds and 0 in release builds; Stator writes 0
/// and does not verify the field, so both kinds of peer interoperate.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct TwoPartMessage {
    /// Header part (control message, handshake, prologue or control frame JSON).
    pub header: Bytes,
    /// Body part (request body or a codec-encoded stream item).
    pub body: Bytes,
}

impl TwoPartMessage {
    /// A message with only a header.
    pub fn header_only(header: impl Into<Bytes>) -> Self {
        Self {
            header: header.into(),
            body: Bytes::new(),
        }
    }

    /// A message with only a body.
    pub fn body_only(body: impl Into<Bytes>) -> Self {
        Self {
            header: Bytes::new(),
            body: body.into(),
        }
    }

    /// Decodes a complete buffer holding exactly one message (a request payload).
    pub fn from_bytes(bytes: &[u8], max_size: usize) -> Result<Self, WireError> {
        let mut buf = BytesMut::from(bytes);
        match Self::decode(&mut buf, max_size)? {
            Some(msg) if buf.is_empty() => Ok(msg),
            Some(_) => Err(WireError::TrailingBytes { extra: buf.len() }),
            None => Err(WireError::Truncated {
                buffered: bytes.len(),
            }),
        }
    }

    /// Decodes one message from the front of `src` and hands `(header, body)` to `f` without
    /// copying them out, then consumes the message. `Ok(None)` while incomplete.
    pub fn decode_with<T>(
        src: &mut BytesMut,
        max_size: usize,
        f: impl FnOnce(&[u8], &[u8]) -> T,
    ) -> Result<Option<T>, WireError> {
        let Some((total, header_len)) = frame_bounds(src, max_size)? else {
            return Ok(None);
        };
        let header_end = PREFIX + header_len;
        let out = f(&src[PREFIX..header_end], &src[header_end..total]);
        src.advance(total);
        Ok(Some(out))
    }

    /// Appends a body-only message whose body `write_body` serializes straight into `dst`.
    pub fn encode_body_with(
        dst: &mut BytesMut,
        write_body: impl FnOnce(&mut BytesMut) -> Result<(), WireError>,
    ) -> Result<(), WireError> {
        let start = dst.len();
        dst.put_bytes(0, PREFIX);
        if let Err(e) = write_body(dst) {
            dst.truncate(start);
            return Err(e);
        }
        let body_len = (dst.len() - start - PREFIX) as u64;
        dst[start + 8..start + 16].copy_from_slice(&body_len.to_be_bytes());
        Ok(())
    }

    /// Encodes into a fresh buffer.
    pub fn to_bytes(&self) -> Bytes {
        let mut buf = BytesMut::with_capacity(PREFIX + self.header.len() + self.body.len());
        self.encode(&mut buf)
            .expect("two-part encoding has no failure mode");
        buf.freeze()
    }
}

impl Frame for TwoPartMessage {
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        dst.reserve(PREFIX + self.header.len() + self.body.len());
        dst.put_u64(self.header.len() as u64);
        dst.put_u64(self.body.len() as u64);
        dst.put_u64(0);
        dst.put_slice(&self.header);
        dst.put_slice(&self.body);
        Ok(())
    }

    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError> {
        let Some((total, header_len)) = frame_bounds(src, max_size)? else {
            return Ok(None);
        };
        let mut frame = src.split_to(total);
        let _prefix = frame.split_to(PREFIX);
        let header = frame.split_to(header_len).freeze();
        Ok(Some(Self {
            header,
            body: frame.freeze(),
        }))
    }
}

/// `(total length, header length)` of the complete message at the front of `src`, `None`
/// while incomplete (reserving room for the rest).
fn frame_bounds(src: &mut BytesMut, max_size: usize) -> Result<Option<(usize, usize)>, WireError> {
    let bounds = message_bounds(src, max_size)?;
    if let Err(missing) = bounds {
        src.reserve(missing);
        return Ok(None);
    }
    Ok(bounds.ok())
}

/// `Ok((total length, header length))` of the complete message at the front of `src`, or
/// `Err(bytes still missing)` (0 while the prefix itself is incomplete).
pub(crate) fn message_bounds(
    src: &[u8],
    max_size: usize,
) -> Result<Result<(usize, usize), usize>, WireError> {
    if src.len() < PREFIX {
        return Ok(Err(0));
    }
    let header_len = u64::from_be_bytes(src[0..8].try_into().expect("8-byte slice"));
    let body_len = u64::from_be_bytes(src[8..16].try_into().expect("8-byte slice"));
    let total = header_len
        .checked_add(body_len)
        .and_then(|n| n.checked_add(PREFIX as u64))
        .ok_or(WireError::TooLarge {
            len: u64::MAX,
            max: max_size,
        })?;
    let total = check_size(total, max_size)?;
    if src.len() < total {
        return Ok(Err(total - src.len()));
    }
    let header_len = usize::try_from(header_len).expect("bounded by max_size");
    Ok(Ok((total, header_len)))
}
