//! Pooled, pipelined request connections: frames out in order, acks matched in order, inline
//! response records handed to their streams.

use std::collections::VecDeque;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::io::AsyncReadExt;
use tokio::net::TcpStream;
use tokio::net::tcp::OwnedReadHalf;
use tokio::sync::oneshot;
use tokio_util::sync::CancellationToken;

use super::inline_client::{InlineReceiver, InlineRegistry, Wakeups};
use super::writer::SharedWriter;
use crate::error::StatorError;
use crate::wire::{Ack, Frame, InlineControl, ServerRecord, StreamId, WireError};

/// How long to wait for a TCP connection to a worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One request connection to a worker.
///
/// The calling task writes its frame itself when nothing is queued ahead of it (the common
/// case: no hand-off to another task); a reader task matches acks to requests in order and
/// hands inline response records to their streams.
pub(crate) struct Connection {
    pending: Mutex<VecDeque<oneshot::Sender<Ack>>>,
    writer: Arc<SharedWriter>,
    inflight: AtomicUsize,
    closed: CancellationToken,
    inline: InlineRegistry,
    max_message_size: usize,
}

impl Connection {
    async fn open(address: &str, limits: Limits) -> Result<Arc<Self>, StatorError> {
        let stream = tokio::time::timeout(CONNECT_TIMEOUT, TcpStream::connect(address))
            .await
            .map_err(|_| {
                StatorError::connection_timeout(format!("connecting to {address} timed out"))
            })?
            .map_err(|e| {
                StatorError::cannot_connect(format!("cannot connect to {address}: {e}"))
            })?;
        stream
            .set_nodelay(true)
            .map_err(|e| StatorError::cannot_connect(format!("{address}: {e}")))?;
        let (reader, half) = stream.into_split();
        let closed = CancellationToken::new();
        let conn = Arc::new(Self {
            pending: Mutex::new(VecDeque::new()),
            writer: SharedWriter::spawn(half, closed.clone()),
            inflight: AtomicUsize::new(0),
            closed,
            inline: InlineRegistry::new(limits.inline_stream_buffer),
            max_message_size: limits.max_message_size,
        });
        tokio::spawn(read_loop(reader, Arc::clone(&conn)));
        Ok(conn)
    }

    /// Opens an inline response stream slot; its id goes into the request's header.
    pub(crate) fn open_inline(self: &Arc<Self>) -> InlineReceiver {
        self.inline.open(Arc::clone(self))
    }

    /// Sends one encoded request frame and waits for its ack.
    pub(crate) async fn send(
        &self,
        frame: &[u8],
        ack_timeout: Duration,
    ) -> Result<Ack, StatorError> {
        let rx = {
            let mut pending = self.pending.lock();
            if self.closed.is_cancelled() {
                return Err(StatorError::disconnected("request connection closed"));
            }
            let (tx, rx) = oneshot::channel();
            pending.push_back(tx);
            if let Err(e) = self.writer.write(frame) {
                drop(pending);
                self.close();
                return Err(StatorError::disconnected(format!(
                    "request connection failed: {e}"
                )));
            }
            rx
        };
        self.inflight.fetch_add(1, Ordering::Relaxed);
        let result = tokio::time::timeout(ack_timeout, rx).await;
        self.inflight.fetch_sub(1, Ordering::Relaxed);
        match result {
            Ok(Ok(ack)) => Ok(ack),
            Ok(Err(_)) => Err(StatorError::disconnected(
                "request connection closed before the ack",
            )),
            Err(_) => Err(StatorError::connection_timeout(format!(
                "no ack within {ack_timeout:?}"
            ))),
        }
    }

    /// Forgets an inline stream.
    pub(crate) fn release_inline(&self, id: StreamId) {
        self.inline.release(id);
    }

    /// Best effort: sends `stop`/`kill` for an inline stream (never acked).
    pub(crate) fn send_control(&self, control: InlineControl) {
        let mut frame = BytesMut::new();
        if control.encode(&mut frame).is_ok() && self.writer.write(&frame).is_err() {
            self.close();
        }
    }

    /// Resolves when the connection is closed (the worker went away).
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await;
    }

    pub(crate) fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    fn close(&self) {
        let mut pending = self.pending.lock();
        self.closed.cancel();
        pending.clear();
        drop(pending);
        self.inline.close();
    }
}

/// Reads acks and inline records; every complete record already buffered is handled before
/// the next read.
async fn read_loop(mut reader: OwnedReadHalf, conn: Arc<Connection>) {
    let mut buf = BytesMut::with_capacity(16 * 1024);
    let mut wake = Wakeups::new();
    let outcome: Result<(), WireError> = async {
        loop {
            let decoded = deliver_records(&conn, &mut buf, &mut wake);
            for waker in wake.drain(..) {
                waker.wake();
            }
            decoded?;
            if buf.capacity() - buf.len() < 4096 {
                buf.reserve(16 * 1024);
            }
            tokio::select! {
                () = conn.closed.cancelled() => return Ok(()),
                read = reader.read_buf(&mut buf) => if read? == 0 { return Ok(()) },
            }
        }
    }
    .await;
    if let Err(err) = outcome {
        tracing::debug!(error = %err, "request connection failed");
    }
    conn.close();
}

/// Hands every complete record in `buf` to its waiter or stream.
fn deliver_records(
    conn: &Connection,
    buf: &mut BytesMut,
    wake: &mut Wakeups,
) -> Result<(), WireError> {
    while let Some(record) = ServerRecord::decode(buf, conn.max_message_size)? {
        match record {
            ServerRecord::Ack(ack) => {
                let waiter = conn.pending.lock().pop_front();
                // A waiter that timed out is gone; its ack is still consumed to keep
                // the order.
                if let Some(waiter) = waiter {
                    let _ = waiter.send(ack);
                }
            }
            ServerRecord::Inline(frame) => conn.inline.deliver(conn, frame, wake),
        }
    }
    Ok(())
}

/// Sizes a connection is opened with.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    /// Largest frame accepted.
    pub(crate) max_message_size: usize,
    /// Bytes one inline stream may hold unread before it is killed.
    pub(crate) inline_stream_buffer: usize,
}

/// Connections per worker address.
pub(crate) struct Pool {
    hosts: DashMap<String, Arc<tokio::sync::Mutex<Vec<Arc<Connection>>>>>,
    limits: Limits,
    max_inflight_per_connection: usize,
    max_connections_per_host: usize,
}

impl Pool {
    pub(crate) fn new(limits: Limits, max_inflight: usize, max_connections: usize) -> Self {
        Self {
            hosts: DashMap::new(),
            limits,
            max_inflight_per_connection: max_inflight.max(1),
            max_connections_per_host: max_connections.max(1),
        }
    }

    /// The least busy open connection to `address`, opening one when none is open or all
    /// are at their pipelining limit.
    pub(crate) async fn get(&self, address: &str) -> Result<Arc<Connection>, StatorError> {
        let host = Arc::clone(self.hosts.entry(address.to_owned()).or_default().value());
        let mut conns = host.lock().await;
        conns.retain(|c| !c.is_closed());
        let best = conns
            .iter()
            .min_by_key(|c| c.inflight.load(Ordering::Relaxed))
            .cloned();
        match best {
            Some(conn)
                if conn.inflight.load(Ordering::Relaxed) < self.max_inflight_per_connection
                    || conns.len() >= self.max_connections_per_host =>
            {
                Ok(conn)
            }
            _ => {
                let conn = Connection::open(address, self.limits).await?;
                conns.push(Arc::clone(&conn));
                Ok(conn)
            }
        }
    }
}
