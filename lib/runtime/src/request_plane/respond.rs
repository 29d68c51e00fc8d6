//! Writing one response stream (prologue, items, final frame, sentinel) to either place it can
//! go: a call-home connection, or inline records on the request connection.

use bytes::BytesMut;
use futures::{FutureExt, StreamExt};
use serde::Serialize;

use super::call_home::CallHome;
use super::inline_server::InlineReply;
use crate::engine::{Context, ResponseStream};
use crate::error::StatorError;
use crate::wire::{
    Codec, ControlMessage, Frame, NetworkStreamWrapper, ResponseStreamPrologue, TwoPartMessage,
    WireError,
};

/// Buffered response bytes that trigger a write even while more items are ready.
const FLUSH_AT: usize = 64 * 1024;

/// Why a request could not be served over its response stream.
#[derive(Debug, thiserror::Error)]
pub(crate) enum ReplyError {
    /// The request payload was malformed.
    #[error("malformed request: {0}")]
    Control(String),
    /// A frame could not be encoded, or the socket failed.
    #[error(transparent)]
    Wire(#[from] WireError),
}

/// Where one request's response stream goes.
pub(crate) enum Sink {
    /// A connection the worker dialed to the client (Dynamo's protocol).
    CallHome(CallHome),
    /// Records on the request connection, for Stator clients that asked for it.
    Inline(InlineReply, Context),
}

impl Sink {
    fn context(&self) -> &Context {
        match self {
            Self::CallHome(home) => home.context(),
            Self::Inline(_, context) => context,
        }
    }

    /// The buffer the next two-part message is appended to.
    fn frame_buf(&mut self) -> &mut BytesMut {
        match self {
            Self::CallHome(home) => home.out(),
            Self::Inline(reply, _) => reply.begin_frame(),
        }
    }

    fn push_header<T: Serialize>(&mut self, header: &T) -> Result<(), ReplyError> {
        let json = serde_json::to_vec(header).map_err(|e| WireError::json("header", e))?;
        TwoPartMessage::header_only(json).encode(self.frame_buf())?;
        Ok(())
    }

    async fn flush(&mut self) -> Result<(), ReplyError> {
        match self {
            Self::CallHome(home) => home.flush().await,
            Self::Inline(reply, _) => reply.flush().await.map_err(ReplyError::from),
        }
    }

    /// Flushes; a failed write means the client is gone, which kills the request.
    async fn flush_or_kill(&mut self) -> Result<(), ReplyError> {
        let flushed = self.flush().await;
        if flushed.is_err() {
            self.context().kill();
        }
        flushed
    }

    /// Sends what is buffered (the call-home handshake) now; used when the engine is slow to
    /// start.
    pub(crate) async fn flush_handshake(&mut self) -> Result<(), ReplyError> {
        self.flush_or_kill().await
    }

    /// Resolves once the client killed the request or went away (a `stop` is applied and
    /// watching goes on).
    pub(crate) async fn watch_control(&mut self) {
        match self {
            Self::CallHome(home) => home.watch_control().await,
            Self::Inline(reply, _) => reply.killed().await,
        }
    }

    async fn close(self) {
        match self {
            Self::CallHome(home) => home.close().await,
            Self::Inline(reply, _) => drop(reply),
        }
    }

    fn mark_ended(&mut self) {
        if let Self::Inline(reply, _) = self {
            reply.mark_ended();
        }
    }

    /// Sends an error prologue and closes.
    pub(crate) async fn fail(mut self, err: &StatorError) -> Result<(), ReplyError> {
        let prologue = ResponseStreamPrologue {
            error: Some(err.to_string()),
            typed_error: Some(err.clone()),
        };
        self.push_header(&prologue)?;
        self.mark_ended();
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
    ) -> Result<(), ReplyError> {
        self.push_header(&ResponseStreamPrologue {
            error: None,
            typed_error: None,
        })?;
        let context = self.context().clone();
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
                TwoPartMessage::encode_body_with(self.frame_buf(), |buf| {
                    codec.encode_into(&wrapped, buf)
                })?;
            }
            if self.out_len() >= FLUSH_AT {
                self.flush_or_kill().await?;
            }
        };
        if completed {
            let last: NetworkStreamWrapper<U> = NetworkStreamWrapper {
                data: None,
                complete_final: true,
            };
            let last = codec.encode(&last)?;
            TwoPartMessage::body_only(last).encode(self.frame_buf())?;
            TwoPartMessage::header_only(ControlMessage::Sentinel.header())
                .encode(self.frame_buf())?;
            self.mark_ended();
            self.flush().await?;
        }
        self.close().await;
        Ok(())
    }

    fn out_len(&mut self) -> usize {
        match self {
            Self::CallHome(home) => home.out().len(),
            Self::Inline(reply, _) => reply.buffered(),
        }
    }
}
