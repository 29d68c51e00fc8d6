//! The client's response-stream server: workers dial it back and are matched by subject;
//! the accepting task then reads the whole response stream.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use bytes::BytesMut;
use dashmap::DashMap;
use futures::future::BoxFuture;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::config::{RequestPlaneConfig, bind_and_advertise};
use crate::error::StatorError;
use crate::net::authority;
use crate::wire::{
    CallHomeHandshake, StreamType, TcpStreamConnectionInfo, TwoPartMessage, read_frame,
};

/// How long a dialing worker has to send its handshake.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);

/// What runs a matched call-home connection (socket and bytes already buffered), in the task
/// that accepted it.
pub(crate) type OnArrival =
    Box<dyn FnOnce(TcpStream, BytesMut) -> BoxFuture<'static, ()> + Send + Sync>;

type Waiters = DashMap<String, OnArrival>;

/// Accepts call-home connections and hands each to the request waiting for its subject.
pub struct TcpStreamServer {
    address: String,
    subject_prefix: String,
    next_subject: AtomicU64,
    waiters: Arc<Waiters>,
    cancel: CancellationToken,
}

/// A registered subject. Dropping it forgets the subject (a late call-home is refused).
pub(crate) struct PendingStream {
    subject: String,
    waiters: Arc<Waiters>,
}

impl TcpStreamServer {
    /// Binds (`response_host`/`response_port` of `config`) and starts accepting.
    pub async fn bind(config: &RequestPlaneConfig) -> Result<Self, StatorError> {
        let (bind_host, advertise_host) = bind_and_advertise(config.response_host.as_deref());
        let listener = TcpListener::bind(authority(&bind_host, config.response_port))
            .await
            .map_err(|e| {
                StatorError::internal(format!("cannot bind the response-stream server: {e}"))
            })?;
        let port = listener
            .local_addr()
            .map_err(|e| StatorError::internal(format!("response-stream server address: {e}")))?
            .port();
        let waiters = Arc::new(Waiters::new());
        let cancel = CancellationToken::new();
        tokio::spawn(accept_loop(
            listener,
            Arc::clone(&waiters),
            cancel.clone(),
            config.max_message_size,
        ));
        Ok(Self {
            address: authority(&advertise_host, port),
            // Subjects only need to be unique per server: a random prefix plus a counter.
            subject_prefix: uuid::Builder::from_random_bytes(rand::random())
                .into_uuid()
                .simple()
                .to_string(),
            next_subject: AtomicU64::new(0),
            waiters,
            cancel,
        })
    }

    /// The advertised `host:port`.
    pub fn address(&self) -> &str {
        &self.address
    }

    /// Registers a fresh subject for request `context_id`; `on_arrival` runs the connection
    /// once the worker dials back and sends the handshake.
    pub(crate) fn register(
        &self,
        context_id: &str,
        on_arrival: OnArrival,
    ) -> (TcpStreamConnectionInfo, PendingStream) {
        let n = self.next_subject.fetch_add(1, Ordering::Relaxed);
        let subject = format!("{}-{n:x}", self.subject_prefix);
        self.waiters.insert(subject.clone(), on_arrival);
        let info = TcpStreamConnectionInfo {
            address: self.address.clone(),
            subject: subject.clone(),
            context: context_id.to_owned(),
            stream_type: StreamType::Response,
        };
        let pending = PendingStream {
            subject,
            waiters: Arc::clone(&self.waiters),
        };
        (info, pending)
    }
}

impl Drop for TcpStreamServer {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

impl Drop for PendingStream {
    fn drop(&mut self) {
        self.waiters.remove(&self.subject);
    }
}

async fn accept_loop(
    listener: TcpListener,
    waiters: Arc<Waiters>,
    cancel: CancellationToken,
    max_message_size: usize,
) {
    loop {
        let accepted = tokio::select! {
            () = cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let waiters = Arc::clone(&waiters);
                tokio::spawn(async move {
                    if let Err(reason) = match_subject(stream, &waiters, max_message_size).await {
                        tracing::debug!(%peer, %reason, "call-home connection refused");
                    }
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "response-stream accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

async fn match_subject(
    mut stream: TcpStream,
    waiters: &Waiters,
    max_message_size: usize,
) -> Result<(), String> {
    stream.set_nodelay(true).map_err(|e| e.to_string())?;
    let mut buf = BytesMut::with_capacity(8192);
    let first = tokio::time::timeout(
        HANDSHAKE_TIMEOUT,
        read_frame::<TwoPartMessage, _>(&mut stream, &mut buf, max_message_size),
    )
    .await
    .map_err(|_| "no handshake".to_owned())?
    .map_err(|e| e.to_string())?
    .ok_or_else(|| "closed before the handshake".to_owned())?;
    let handshake: CallHomeHandshake =
        serde_json::from_slice(&first.header).map_err(|e| format!("bad handshake: {e}"))?;
    let (_, on_arrival) = waiters
        .remove(&handshake.subject)
        .ok_or_else(|| format!("unknown subject {}", handshake.subject))?;
    on_arrival(stream, buf).await;
    Ok(())
}
