//! Worker side of inline response streams: the inline streams of one request connection, and
//! the reply handle a request's handler writes its response records through.

use std::collections::HashMap;
use std::sync::Arc;

use bytes::BytesMut;
use parking_lot::Mutex;
use tokio::sync::Notify;

use super::writer::SharedWriter;
use crate::engine::Context;
use crate::wire::{
    ControlMessage, Frame, InlineControl, InlineFrame, StreamId, TwoPartMessage, WireError,
};

/// Queued bytes on a connection above which a streaming handler waits for the socket.
const BACKLOG_HIGH_WATER: usize = 4 * 1024 * 1024;

/// A stream's control state: controls that arrive before the handler created the request's
/// context are kept and applied when it binds.
enum Slot {
    Waiting { stop: bool, kill: bool },
    Bound(Context),
}

#[derive(Default)]
struct Slots {
    map: HashMap<u32, Slot>,
    lost: bool,
}

/// The inline streams of one request connection (worker side).
pub(crate) struct InlineStreams {
    writer: Arc<SharedWriter>,
    slots: Mutex<Slots>,
    idle: Notify,
}

impl InlineStreams {
    pub(crate) fn new(writer: Arc<SharedWriter>) -> Arc<Self> {
        Arc::new(Self {
            writer,
            slots: Mutex::new(Slots::default()),
            idle: Notify::new(),
        })
    }

    /// The reply handle for a request that asked for inline stream `id`.
    pub(crate) fn reply(self: &Arc<Self>, id: StreamId) -> InlineReply {
        self.slots.lock().map.insert(
            id.0,
            Slot::Waiting {
                stop: false,
                kill: false,
            },
        );
        InlineReply {
            streams: Arc::clone(self),
            id,
            out: BytesMut::new(),
            context: None,
            ended: false,
        }
    }

    /// Applies a client's `stop`/`kill`; controls for unknown streams (already finished) are
    /// dropped.
    pub(crate) fn control(&self, control: InlineControl) {
        let mut slots = self.slots.lock();
        let Some(slot) = slots.map.get_mut(&control.stream.0) else {
            return;
        };
        match (slot, control.message) {
            (Slot::Bound(context), ControlMessage::Stop) => context.stop_generating(),
            (Slot::Bound(context), ControlMessage::Kill) => context.kill(),
            (Slot::Waiting { stop, .. }, ControlMessage::Stop) => *stop = true,
            (Slot::Waiting { kill, .. }, ControlMessage::Kill) => *kill = true,
            (_, ControlMessage::Sentinel) => {}
        }
    }

    /// The client is gone: kill every request streaming on this connection.
    pub(crate) fn connection_lost(&self) {
        let mut slots = self.slots.lock();
        slots.lost = true;
        for slot in slots.map.values() {
            if let Slot::Bound(context) = slot {
                context.kill();
            }
        }
    }

    fn bind(&self, id: StreamId, context: &Context) {
        let mut slots = self.slots.lock();
        if slots.lost {
            context.kill();
        }
        let Some(slot) = slots.map.get_mut(&id.0) else {
            return;
        };
        if let Slot::Waiting { stop, kill } = *slot {
            if kill {
                context.kill();
            } else if stop {
                context.stop_generating();
            }
        }
        *slot = Slot::Bound(context.clone());
    }

    /// Resolves once no inline stream is open on the connection.
    pub(crate) async fn idle(&self) {
        loop {
            let mut idle = std::pin::pin!(self.idle.notified());
            idle.as_mut().enable();
            if self.slots.lock().map.is_empty() {
                return;
            }
            idle.await;
        }
    }

    fn release(&self, id: StreamId) {
        let mut slots = self.slots.lock();
        slots.map.remove(&id.0);
        if slots.map.is_empty() {
            self.idle.notify_waiters();
        }
    }
}

/// Where a handler writes an inline response stream: records for one stream id on the
/// request connection. Dropping it before the stream ended sends a bare sentinel, which the
/// client reads as a stream that ended early (as it reads a closed call-home connection).
pub(crate) struct InlineReply {
    streams: Arc<InlineStreams>,
    id: StreamId,
    out: BytesMut,
    context: Option<Context>,
    ended: bool,
}

impl InlineReply {
    /// Ties the request's context to the stream: client controls reach it from now on
    /// (including those that arrived earlier).
    pub(crate) fn bind(&mut self, context: &Context) {
        self.streams.bind(self.id, context);
        self.context = Some(context.clone());
    }

    /// The request was refused at admission: the client learns it from the ack alone.
    pub(crate) fn reject(mut self) {
        self.ended = true;
    }

    /// Starts the next message: appends the record prefix and returns the buffer for the
    /// two-part message.
    pub(crate) fn begin_frame(&mut self) -> &mut BytesMut {
        InlineFrame::encode_prefix(self.id, &mut self.out);
        &mut self.out
    }

    /// Bytes buffered and not yet written.
    pub(crate) fn buffered(&self) -> usize {
        self.out.len()
    }

    /// The stream's last record has been buffered (sentinel or error prologue).
    pub(crate) fn mark_ended(&mut self) {
        self.ended = true;
    }

    /// Writes what is buffered; waits while the connection has a large backlog.
    pub(crate) async fn flush(&mut self) -> Result<(), WireError> {
        if self.out.is_empty() {
            return Ok(());
        }
        let written = self.streams.writer.write(&self.out);
        self.out.clear();
        written?;
        if self.streams.writer.backlog_len() > BACKLOG_HIGH_WATER {
            self.streams
                .writer
                .wait_backlog_below(BACKLOG_HIGH_WATER / 2)
                .await;
        }
        if self.streams.writer.is_closed() {
            return Err(WireError::Io(std::io::Error::new(
                std::io::ErrorKind::NotConnected,
                "request connection closed",
            )));
        }
        Ok(())
    }

    /// Resolves once the request is killed (by the client, or because the connection is
    /// gone); controls are applied by the connection's reader.
    pub(crate) async fn killed(&self) {
        match &self.context {
            Some(context) => context.killed().await,
            None => std::future::pending().await,
        }
    }
}

impl Drop for InlineReply {
    fn drop(&mut self) {
        self.streams.release(self.id);
        if self.ended {
            return;
        }
        self.out.clear();
        InlineFrame::encode_prefix(self.id, &mut self.out);
        if TwoPartMessage::header_only(ControlMessage::Sentinel.header())
            .encode(&mut self.out)
            .is_ok()
        {
            // Best effort: the connection may already be gone.
            let _ = self.streams.writer.write(&self.out);
        }
    }
}
