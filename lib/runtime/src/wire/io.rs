//! Reading and writing frames on async byte streams.

use bytes::BytesMut;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

use super::{Frame, WireError};

/// Reads the next frame, buffering partial input in `buf`.
///
/// Returns `Ok(None)` on a clean end of stream at a frame boundary and
/// [`WireError::Truncated`] when the stream ends inside a frame.
pub async fn read_frame<F, R>(
    reader: &mut R,
    buf: &mut BytesMut,
    max_size: usize,
) -> Result<Option<F>, WireError>
where
    F: Frame,
    R: AsyncRead + Unpin + ?Sized,
{
    loop {
        if let Some(frame) = F::decode(buf, max_size)? {
            return Ok(Some(frame));
        }
        if buf.capacity() - buf.len() < 4096 {
            buf.reserve(8192);
        }
        if reader.read_buf(buf).await? == 0 {
            return if buf.is_empty() {
                Ok(None)
            } else {
                Err(WireError::Truncated {
                    buffered: buf.len(),
                })
            };
        }
    }
}

/// Encodes one frame and writes it.
pub async fn write_frame<F, W>(writer: &mut W, frame: &F) -> Result<(), WireError>
where
    F: Frame,
    W: AsyncWrite + Unpin + ?Sized,
{
    let mut buf = BytesMut::new();
    frame.encode(&mut buf)?;
    writer.write_all(&buf).await?;
    Ok(())
}
