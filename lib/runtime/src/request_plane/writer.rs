//! A socket write half shared by several tasks: whole frames leave in call order, written by
//! the calling task when nothing is queued ahead (no hand-off); bytes the socket does not take
//! at once wait in a backlog that a flusher task writes when the socket is writable.

use std::io::{self, ErrorKind};
use std::pin::pin;
use std::sync::Arc;

use bytes::{Buf, BytesMut};
use parking_lot::Mutex;
use tokio::net::tcp::OwnedWriteHalf;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

/// The write side of one connection, shared by its request/ack path and its inline streams.
pub(crate) struct SharedWriter {
    half: OwnedWriteHalf,
    backlog: Mutex<Backlog>,
    backlog_ready: Notify,
    drained: Notify,
    closed: CancellationToken,
}

impl SharedWriter {
    /// Wraps `half` and starts its flusher; `closed` is cancelled when a write fails (and
    /// stops the flusher when cancelled by the owner).
    pub(crate) fn spawn(half: OwnedWriteHalf, closed: CancellationToken) -> Arc<Self> {
        let writer = Arc::new(Self {
            half,
            backlog: Mutex::new(Backlog::default()),
            backlog_ready: Notify::new(),
            drained: Notify::new(),
            closed,
        });
        tokio::spawn(flush_loop(Arc::clone(&writer)));
        writer
    }

    /// Queues `bytes` after everything written before, writing at once what the socket takes
    /// (unless corked).
    pub(crate) fn write(&self, bytes: &[u8]) -> io::Result<()> {
        let mut backlog = self.backlog.lock();
        if self.closed.is_cancelled() {
            return Err(io::Error::new(ErrorKind::NotConnected, "connection closed"));
        }
        if backlog.corked || !backlog.bytes.is_empty() {
            backlog.bytes.extend_from_slice(bytes);
            return Ok(());
        }
        self.write_now(&mut backlog, bytes)
    }

    /// Holds writes back until [`SharedWriter::uncork`], so that what several writers produce
    /// while one task handles a batch leaves in one system call.
    pub(crate) fn cork(&self) {
        self.backlog.lock().corked = true;
    }

    /// Writes what accumulated while corked.
    pub(crate) fn uncork(&self) -> io::Result<()> {
        let mut backlog = self.backlog.lock();
        backlog.corked = false;
        if backlog.bytes.is_empty() || self.closed.is_cancelled() {
            return Ok(());
        }
        match self.half.try_write(&backlog.bytes) {
            Ok(n) => backlog.bytes.advance(n),
            Err(e) if e.kind() == ErrorKind::WouldBlock => {}
            Err(e) => {
                self.closed.cancel();
                return Err(e);
            }
        }
        if !backlog.bytes.is_empty() {
            self.backlog_ready.notify_one();
        }
        Ok(())
    }

    /// Writes `bytes` with an empty backlog; queues the rest for the flusher.
    fn write_now(&self, backlog: &mut Backlog, bytes: &[u8]) -> io::Result<()> {
        let written = match self.half.try_write(bytes) {
            Ok(n) => n,
            Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
            Err(e) => {
                self.closed.cancel();
                return Err(e);
            }
        };
        if written < bytes.len() {
            backlog.bytes.extend_from_slice(&bytes[written..]);
            self.backlog_ready.notify_one();
        }
        Ok(())
    }

    /// Waits until at most `limit` bytes are queued (or the connection closed): how producers
    /// that write a lot yield to a reader that is slower than them.
    pub(crate) async fn wait_backlog_below(&self, limit: usize) {
        loop {
            let mut drained = pin!(self.drained.notified());
            drained.as_mut().enable();
            if self.backlog.lock().bytes.len() <= limit || self.closed.is_cancelled() {
                return;
            }
            tokio::select! {
                () = drained => {}
                () = self.closed.cancelled() => return,
            }
        }
    }

    /// Bytes waiting for the socket.
    pub(crate) fn backlog_len(&self) -> usize {
        self.backlog.lock().bytes.len()
    }

    /// Whether the connection is closed.
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }
}

/// Bytes waiting for the socket; while `corked`, writes only queue (see
/// [`SharedWriter::cork`]).
#[derive(Default)]
struct Backlog {
    bytes: BytesMut,
    corked: bool,
}

/// Flushes the backlog whenever a writer leaves one.
async fn flush_loop(writer: Arc<SharedWriter>) {
    loop {
        tokio::select! {
            () = writer.closed.cancelled() => break,
            () = writer.backlog_ready.notified() => {}
        }
        loop {
            if let Err(err) = writer.half.writable().await {
                tracing::debug!(error = %err, "connection failed");
                writer.closed.cancel();
                break;
            }
            let mut backlog = writer.backlog.lock();
            if backlog.bytes.is_empty() || backlog.corked {
                break;
            }
            match writer.half.try_write(&backlog.bytes) {
                Ok(n) => {
                    backlog.bytes.advance(n);
                    writer.drained.notify_waiters();
                    if backlog.bytes.is_empty() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(err) => {
                    drop(backlog);
                    tracing::debug!(error = %err, "connection write failed");
                    writer.closed.cancel();
                    break;
                }
            }
        }
    }
    writer.backlog.lock().bytes.clear();
    writer.drained.notify_waiters();
}
