//! Pooled, pipelined request connections: frames out in order, acks matched in order.

use std::collections::VecDeque;
use std::io::ErrorKind;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Buf, BytesMut};
use dashmap::DashMap;
use parking_lot::Mutex;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{Notify, oneshot};
use tokio_util::sync::CancellationToken;

use crate::error::StatorError;
use crate::wire::{Ack, read_frame};

/// How long to wait for a TCP connection to a worker.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// One request connection to a worker.
///
/// The calling task writes its frame itself when nothing is queued ahead of it (the common
/// case: no hand-off to another task); bytes the socket does not take at once go to a
/// backlog that a writer task flushes, so frames stay in order.
pub(crate) struct Connection {
    state: Mutex<State>,
    writer: OwnedWriteHalf,
    backlog_ready: Notify,
    inflight: AtomicUsize,
    closed: CancellationToken,
}

struct State {
    pending: VecDeque<oneshot::Sender<Ack>>,
    backlog: BytesMut,
}

impl Connection {
    async fn open(address: &str, max_message_size: usize) -> Result<Arc<Self>, StatorError> {
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
        let (reader, writer) = stream.into_split();
        let conn = Arc::new(Self {
            state: Mutex::new(State {
                pending: VecDeque::new(),
                backlog: BytesMut::new(),
            }),
            writer,
            backlog_ready: Notify::new(),
            inflight: AtomicUsize::new(0),
            closed: CancellationToken::new(),
        });
        tokio::spawn(write_loop(Arc::clone(&conn)));
        tokio::spawn(read_loop(reader, Arc::clone(&conn), max_message_size));
        Ok(conn)
    }

    /// Sends one encoded request frame and waits for its ack.
    pub(crate) async fn send(
        &self,
        frame: &[u8],
        ack_timeout: Duration,
    ) -> Result<Ack, StatorError> {
        let rx = {
            let mut state = self.state.lock();
            if self.closed.is_cancelled() {
                return Err(StatorError::disconnected("request connection closed"));
            }
            let (tx, rx) = oneshot::channel();
            state.pending.push_back(tx);
            if state.backlog.is_empty() {
                let written = match self.writer.try_write(frame) {
                    Ok(n) => n,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => 0,
                    Err(e) => {
                        drop(state);
                        self.close();
                        return Err(StatorError::disconnected(format!(
                            "request connection failed: {e}"
                        )));
                    }
                };
                if written < frame.len() {
                    state.backlog.extend_from_slice(&frame[written..]);
                    self.backlog_ready.notify_one();
                }
            } else {
                state.backlog.extend_from_slice(frame);
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

    /// Resolves when the connection is closed (the worker went away).
    pub(crate) async fn closed(&self) {
        self.closed.cancelled().await;
    }

    fn is_closed(&self) -> bool {
        self.closed.is_cancelled()
    }

    fn close(&self) {
        let mut state = self.state.lock();
        self.closed.cancel();
        state.pending.clear();
        state.backlog.clear();
    }
}

/// Flushes the backlog whenever a sender leaves one.
async fn write_loop(conn: Arc<Connection>) {
    loop {
        tokio::select! {
            () = conn.closed.cancelled() => return,
            () = conn.backlog_ready.notified() => {}
        }
        loop {
            if let Err(err) = conn.writer.writable().await {
                tracing::debug!(error = %err, "request connection failed");
                conn.close();
                return;
            }
            let mut state = conn.state.lock();
            if state.backlog.is_empty() {
                break;
            }
            match conn.writer.try_write(&state.backlog) {
                Ok(n) => {
                    state.backlog.advance(n);
                    if state.backlog.is_empty() {
                        break;
                    }
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => {}
                Err(err) => {
                    drop(state);
                    tracing::debug!(error = %err, "request connection write failed");
                    conn.close();
                    return;
                }
            }
        }
    }
}

async fn read_loop(mut reader: OwnedReadHalf, conn: Arc<Connection>, max_message_size: usize) {
    let mut buf = BytesMut::with_capacity(4096);
    loop {
        let Ok(Some(ack)) = read_frame::<Ack, _>(&mut reader, &mut buf, max_message_size).await
        else {
            conn.close();
            return;
        };
        let waiter = conn.state.lock().pending.pop_front();
        // A waiter that timed out is gone; its ack is still consumed to keep the order.
        if let Some(waiter) = waiter {
            let _ = waiter.send(ack);
        }
    }
}

/// Connections per worker address.
pub(crate) struct Pool {
    hosts: DashMap<String, Arc<tokio::sync::Mutex<Vec<Arc<Connection>>>>>,
    max_message_size: usize,
    max_inflight_per_connection: usize,
    max_connections_per_host: usize,
}

impl Pool {
    pub(crate) fn new(
        max_message_size: usize,
        max_inflight: usize,
        max_connections: usize,
    ) -> Self {
        Self {
            hosts: DashMap::new(),
            max_message_size,
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
                let conn = Connection::open(address, self.max_message_size).await?;
                conns.push(Arc::clone(&conn));
                Ok(conn)
            }
        }
    }
}
