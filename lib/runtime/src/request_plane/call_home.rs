//! Worker side of the call-home response stream: dial the client and handshake; the messages
//! themselves are written by [`super::respond`]; meanwhile obey `stop`/`kill` control frames
//! arriving on the same socket.

use std::io::ErrorKind;

use bytes::BytesMut;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use super::respond::ReplyError;
use crate::engine::Context;
use crate::wire::{
    CallHomeHandshake, ControlMessage, Frame, TcpStreamConnectionInfo, TwoPartMessage, WireError,
};

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
    ) -> Result<Self, ReplyError> {
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
        let json = serde_json::to_vec(&handshake).map_err(|e| WireError::json("header", e))?;
        TwoPartMessage::header_only(json).encode(&mut home.out)?;
        Ok(home)
    }

    /// The buffer the next message is appended to.
    pub(crate) fn out(&mut self) -> &mut BytesMut {
        &mut self.out
    }

    /// The request's context.
    pub(crate) fn context(&self) -> &Context {
        &self.context
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

    /// Writes what is buffered.
    pub(crate) async fn flush(&mut self) -> Result<(), ReplyError> {
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
    pub(crate) async fn close(mut self) {
        // Best effort: the client may already be gone.
        let _ = self.socket.shutdown().await;
        if !self.peer_closed {
            let mut sink = [0u8; 256];
            while matches!(self.socket.try_read(&mut sink), Ok(n) if n > 0) {}
        }
    }
}
