//! Worker side of the response stream: dial the client, handshake, prologue, items, sentinel;
//! meanwhile obey `stop`/`kill` control frames arriving on the same socket.

use std::io::ErrorKind;

use bytes::BytesMut;
use futures::{FutureExt, StreamExt};
use serde::Serialize;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::engine::{Context, ResponseStream};
use crate::error::StatorError;
use crate::wire::{
    CallHomeHandshake, Codec, ControlMessage, Frame, NetworkStreamWrapper, ResponseStreamPrologue,
    TcpStreamConnectionInfo, TwoPartMessage, WireError,
};

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
///
/// One task drives it: writes go out when the engine has nothing more ready, and control
/// frames are read whenever the task waits, so no second task per request is needed.
pub(crate) struct CallHome {
    socket: TcpStream,
    context: Context,
    out: BytesMut,
    input: BytesMut,
    max_message_size: usize,
    peer_closed: bool,
}

impl CallHome {
    /// Dials the client's response-stream server and buffers the handshake (it leaves with
    /// the prologue, or earlier through [`CallHome::flush_handshake`]).
    pub(crate) async fn connect(
        info: &TcpStreamConnectionInfo,
        context: Context,
        max_message_size: usize,
    ) -> Result<Self, CallHomeError> {
        let socket = TcpStream::connect(&info.address)
            .await
            .map_err(WireError::Io)?;
        socket.set_nodelay(true).map_err(WireError::Io)?;
        let mut home = Self {
            socket,
            context,
            out: BytesMut::with_capacity(8192),
            input: BytesMut::new(),
            max_message_size,
            peer_closed: false,
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
    /// A kill (from the client, or a lost client) ends the stream without the final frame;
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
            // Encode whatever is ready; write (prologue included) only before waiting, so a
            // short stream leaves in one write.
            let next = if let Some(next) = chunks.next().now_or_never() {
                next
            } else {
                self.flush_or_kill().await?;
                tokio::select! {
                    biased;
                    () = self.watch_control() => continue,
                    next = chunks.next() => next,
                }
            };
            let Some(items) = next else { break true };
            for item in items {
                let wrapped = NetworkStreamWrapper {
                    data: Some(item),
                    complete_final: false,
                };
                TwoPartMessage::encode_body_with(&mut self.out, |buf| {
                    codec.encode_into(&wrapped, buf)
                })?;
            }
            if self.out.len() >= FLUSH_AT {
                self.flush_or_kill().await?;
            }
        };
        if completed {
            let last: NetworkStreamWrapper<U> = NetworkStreamWrapper {
                data: None,
                complete_final: true,
            };
            TwoPartMessage::body_only(codec.encode(&last)?).encode(&mut self.out)?;
            TwoPartMessage::header_only(ControlMessage::Sentinel.header()).encode(&mut self.out)?;
            self.flush().await?;
        }
        self.close().await;
        Ok(())
    }

    /// Sends what is buffered (the handshake) now; used when the engine is slow to start.
    pub(crate) async fn flush_handshake(&mut self) -> Result<(), CallHomeError> {
        self.flush_or_kill().await
    }

    /// Reads control frames until one kills the request or the client goes away (a `stop`
    /// is applied and reading goes on). Never resolves once the client has closed.
    pub(crate) async fn watch_control(&mut self) {
        while !self.peer_closed {
            if self.socket.readable().await.is_err() {
                self.lost_client();
                return;
            }
            self.read_control();
            if self.context.is_killed() {
                return;
            }
        }
        std::future::pending::<()>().await;
    }

    /// Applies every control frame that can be read without waiting.
    fn read_control(&mut self) {
        loop {
            self.input.reserve(1024);
            match self.socket.try_read_buf(&mut self.input) {
                Ok(0) => {
                    self.lost_client();
                    break;
                }
                Ok(_) => {}
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(_) => {
                    self.lost_client();
                    break;
                }
            }
        }
        loop {
            match TwoPartMessage::decode(&mut self.input, self.max_message_size) {
                Ok(Some(msg)) => match serde_json::from_slice::<ControlMessage>(&msg.header) {
                    Ok(ControlMessage::Stop) => self.context.stop_generating(),
                    Ok(ControlMessage::Kill) => self.context.kill(),
                    Ok(ControlMessage::Sentinel) => {}
                    Err(e) => tracing::debug!(error = %e, "ignoring malformed control frame"),
                },
                Ok(None) => return,
                Err(e) => {
                    tracing::debug!(error = %e, "garbage on the response stream");
                    self.lost_client();
                    return;
                }
            }
        }
    }

    fn lost_client(&mut self) {
        self.peer_closed = true;
        self.context.kill();
    }

    /// Flushes; a failed write means the client is gone, which kills the request.
    async fn flush_or_kill(&mut self) -> Result<(), CallHomeError> {
        let flushed = self.flush().await;
        if flushed.is_err() {
            self.context.kill();
        }
        flushed
    }

    fn push_header<T: Serialize>(&mut self, header: &T) -> Result<(), CallHomeError> {
        let json = serde_json::to_vec(header).map_err(|e| WireError::json("header", e))?;
        TwoPartMessage::header_only(json).encode(&mut self.out)?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), CallHomeError> {
        if !self.out.is_empty() {
            self.socket
                .write_all(&self.out)
                .await
                .map_err(WireError::Io)?;
            self.out.clear();
        }
        Ok(())
    }

    /// Half-closes, then consumes what the client already sent so that closing does not
    /// reset the connection under data the client has yet to read.
    async fn close(mut self) {
        // Best effort: the client may already be gone.
        let _ = self.socket.shutdown().await;
        if !self.peer_closed {
            let mut sink = [0u8; 256];
            while matches!(self.socket.try_read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}
