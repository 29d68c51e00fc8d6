//! The request frame a client sends on the pooled request connection.

use std::collections::BTreeMap;

use bytes::{Buf, BufMut, Bytes, BytesMut};

use super::{Frame, WireError, check_size};

/// `u16 BE path_len | path | u16 BE headers_len | headers (JSON map) | u32 BE payload_len | payload`.
///
/// `path` is the instance path `"{instance_id:x}/ns/comp/ep"`; `payload` is a
/// [`TwoPartMessage`](super::TwoPartMessage) holding the control message and the request body.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct RequestFrame {
    /// Endpoint path the server routes by.
    pub path: String,
    /// Headers (`request-id`, `x-endpoint-path`, trace context, …).
    pub headers: BTreeMap<String, String>,
    /// Encoded two-part message.
    pub payload: Bytes,
}

const FIXED: usize = 2 + 2 + 4;

impl Frame for RequestFrame {
    fn encode(&self, dst: &mut BytesMut) -> Result<(), WireError> {
        let headers = if self.headers.is_empty() {
            Vec::new()
        } else {
            serde_json::to_vec(&self.headers).map_err(|e| WireError::json("headers", e))?
        };
        let path_len = u16::try_from(self.path.len()).map_err(|_| WireError::FieldTooLong {
            field: "endpoint path",
            len: self.path.len(),
            bits: 16,
        })?;
        let headers_len = u16::try_from(headers.len()).map_err(|_| WireError::FieldTooLong {
            field: "headers",
            len: headers.len(),
            bits: 16,
        })?;
        let payload_len =
            u32::try_from(self.payload.len()).map_err(|_| WireError::FieldTooLong {
                field: "payload",
                len: self.payload.len(),
                bits: 32,
            })?;
        dst.reserve(FIXED + self.path.len() + headers.len() + self.payload.len());
        dst.put_u16(path_len);
        dst.put_slice(self.path.as_bytes());
        dst.put_u16(headers_len);
        dst.put_slice(&headers);
        dst.put_u32(payload_len);
        dst.put_slice(&self.payload);
        Ok(())
    }

    fn decode(src: &mut BytesMut, max_size: usize) -> Result<Option<Self>, WireError> {
        let avail = src.len();
        if avail < 2 {
            return Ok(None);
        }
        let path_len = usize::from(u16::from_be_bytes([src[0], src[1]]));
        let headers_at = 2 + path_len;
        if avail < headers_at + 2 {
            return Ok(None);
        }
        let headers_len = usize::from(u16::from_be_bytes([src[headers_at], src[headers_at + 1]]));
        let payload_at = headers_at + 2 + headers_len;
        if avail < payload_at + 4 {
            return Ok(None);
        }
        let payload_len = u32::from_be_bytes([
            src[payload_at],
            src[payload_at + 1],
            src[payload_at + 2],
            src[payload_at + 3],
        ]);
        let total = (payload_at + 4) as u64 + u64::from(payload_len);
        let total = check_size(total, max_size)?;
        if avail < total {
            src.reserve(total - avail);
            return Ok(None);
        }
        let mut frame = src.split_to(total);
        frame.advance(2);
        let path = frame.split_to(path_len);
        let path = std::str::from_utf8(&path)
            .map_err(|_| WireError::InvalidUtf8("endpoint path"))?
            .to_owned();
        frame.advance(2);
        let headers_raw = frame.split_to(headers_len);
        let headers = if headers_raw.is_empty() {
            BTreeMap::new()
        } else {
            serde_json::from_slice(&headers_raw).map_err(|e| WireError::json("headers", e))?
        };
        frame.advance(4);
        Ok(Some(Self {
            path,
            headers,
            payload: frame.freeze(),
        }))
    }
}
