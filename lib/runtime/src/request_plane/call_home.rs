//! Worker side of the response stream: dial the client, handshake, prologue, items, sentinel;
//! meanwhile obey `stop`/`kill` control frames.

use std::time::Duration;

use bytes::BytesMut;
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio_util::sync::CancellationToken;

use crate::engine::{Context, ResponseStream};
use crate::error::StatorError;
use crate::wire::{
    CallHomeHandshake, Codec, ControlMessage, Frame, NetworkStreamWrapper, ResponseStreamPrologue,
    TcpStreamConnectionInfo, TwoPartMessage, WireError, read_frame,
};

/// How long the worker keeps reading after its last frame, so the client's close is seen
/// before the socket is dropped (avoids resetting data the client has not read yet).
const LINGER: Duration = Duration::from_secs(5);

/// Buffered response bytes that trigger a write even while more items are ready.
const FLUSH_AT: usize = 64 * 1024;

/// Why a request could not be served over its call-home connection.
#[derive(Debug, thiserror::Error)]
pub(crate) enum CallHomeError {
    /// The request payload was malformed.
    #[error("malformed request: {0}")]
    Control(String),
    /// A frame could not be encoded, or the socket failed.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// An open call-home connection for one request.
pub(crate) struct CallHome {
    writer: OwnedWriteHalf,
    context: Context,
    finished: CancellationToken,
    buf: BytesMut,
}

impl CallHome {
    /// Dials the client's response-stream server and sends the handshake.
    pub(crate) async fn connect(
        info: &TcpStreamConnectionInfo,
        context: Context,
        max_message_size: usize,
    ) -> Result<Self, CallHomeError> {
        let stream = TcpStream::connect(&info.address)
            .await
            .map_err(WireError::Io)?;
        stream.set_nodelay(true).map_err(WireError::Io)?;
        let (reader, writer) = stream.into_split();
        let finished = CancellationToken::new();
        tokio::spawn(read_control(
            reader,
            context.clone(),
            finished.clone(),
            max_message_size,
        ));
        let mut home = Self {
            writer,
            context,
            finished,
            buf: BytesMut::with_capacity(8192),
        };
        let handshake = CallHomeHandshake {
            subject: info.subject.clone(),
            stream_type: info.stream_type,
        };
        home.push_header(&handshake)?;
        Ok(home)
    }

    /// Sends an error prologue and closes.
    pub(crate) async fn fail(mut self, err: &StatorError) -> Result<(), CallHomeError> {
        let prologue = ResponseStreamPrologue {
            error: Some(err.to_string()),
            typed_error: Some(err.clone()),
        };
        self.push_header(&prologue)?;
        self.flush().await?;
        self.close().await;
        Ok(())
    }

    /// Sends the OK prologue, every item, the final frame and the sentinel.
    ///
    /// A kill (from the client or a broken socket) ends the stream without the final frame;
    /// items that are ready together go out in one write.
    pub(crate) async fn stream<U: Serialize>(
        mut self,
        stream: ResponseStream<U>,
        codec: Codec,
    ) -> Result<(), CallHomeError> {
        self.push_header(&ResponseStreamPrologue {
            error: None,
            typed_error: None,
        })?;
        let context = self.context.clone();
        let mut chunks = stream.ready_chunks(64);
        let completed = loop {
            if context.is_killed() {
                break false;
            }
            // Encode whatever is ready; flush (prologue included) only before waiting, so a
            // short stream leaves in one write.
            let next = if let Some(next) = chunks.next().now_or_never() {
                next
            } else {
                self.flush_or_kill().await?;
                tokio::select! {
                    biased;
                    () = context.killed() => break false,
                    next = chunks.next() => next,
                }
            };
            let Some(items) = next else { break true };
            for item in items {
                let wrapped = NetworkStreamWrapper {
                    data: Some(item),
                    complete_final: false,
                };
                let body = codec.encode(&wrapped)?;
                TwoPartMessage::body_only(body).encode(&mut self.buf)?;
            }
            if self.buf.len() >= FLUSH_AT {
                self.flush_or_kill().await?;
            }
        };
        if completed {
            let last: NetworkStreamWrapper<U> = NetworkStreamWrapper {
                data: None,
                complete_final: true,
            };
            TwoPartMessage::body_only(codec.encode(&last)?).encode(&mut self.buf)?;
            TwoPartMessage::header_only(ControlMessage::Sentinel.header()).encode(&mut self.buf)?;
            self.flush().await?;
        }
        self.close().await;
        Ok(())
    }

    /// Flushes; a failed write means the client is gone, which kills the request.
    async fn flush_or_kill(&mut self) -> Result<(), CallHomeError> {
        let flushed = self.flush().await;
        if flushed.is_err() {
            self.context.kill();
        }
        flushed
    }

    /// Sends what is buffered (the handshake) now; used when the engine is slow to start.
    pub(crate) async fn flush_handshake(&mut self) -> Result<(), CallHomeError> {
        self.flush_or_kill().await
    }

    fn push_header<T: Serialize>(&mut self, header: &T) -> Result<(), CallHomeError> {
        let json = serde_json::to_vec(header).map_err(|e| WireError::json("header", e))?;
        TwoPartMessage::header_only(json).encode(&mut self.buf)?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), CallHomeError> {
        self.writer
            .write_all(&self.buf)
            .await
            .map_err(WireError::Io)?;
        self.buf.clear();
        Ok(())
    }

    /// Half-closes; the control reader keeps the read side open until the client closes.
    async fn close(mut self) {
        self.finished.cancel();
        // Best effort: the peer may already be gone.
        let _ = self.writer.shutdown().await;
    }
}

/// Reads control frames from the client until the stream is finished and the client closed
/// (bounded by [`LINGER`]). A `stop` stops the context, a `kill` or a lost client kills it.
async fn read_control(
    mut reader: OwnedReadHalf,
    context: Context,
    finished: CancellationToken,
    max_message_size: usize,
) {
    let mut buf = BytesMut::new();
    let linger = async {
        finished.cancelled().await;
        tokio::time::sleep(LINGER).await;
    };
    tokio::pin!(linger);
    loop {
        let frame = tokio::select! {
            () = &mut linger => return,
            frame = read_frame::<TwoPartMessage, _>(&mut reader, &mut buf, max_message_size) => frame,
        };
        if let Ok(Some(msg)) = frame {
            match serde_json::from_slice::<ControlMessage>(&msg.header) {
                Ok(ControlMessage::Stop) => context.stop_generating(),
                Ok(ControlMessage::Kill) => context.kill(),
                Ok(ControlMessage::Sentinel) => {}
                Err(e) => tracing::debug!(error = %e, "ignoring malformed control frame"),
            }
        } else {
            if !finished.is_cancelled() {
                context.kill();
            }
            return;
        }
    }
}
