//! The worker's shared request listener: routes frames by endpoint path, admits, acks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use dashmap::DashMap;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::admission::{Admission, Admit};
use super::config::{RequestPlaneConfig, bind_and_advertise, host_port};
use super::handler::RequestHandler;
use crate::error::StatorError;
use crate::wire::{Ack, Frame, RequestFrame};

/// One TCP listener per process serving every registered endpoint.
pub struct RequestPlaneServer {
    address: String,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    endpoints: DashMap<String, Arc<dyn RequestHandler>>,
    admission: Arc<Admission>,
    max_message_size: usize,
    cancel: CancellationToken,
    inflight: TaskTracker,
}

impl RequestPlaneServer {
    /// Binds the listener (`rpc_host`/`rpc_port` of `config`) and starts accepting.
    pub async fn bind(config: &RequestPlaneConfig) -> Result<Self, StatorError> {
        let (bind_host, advertise_host) = bind_and_advertise(config.rpc_host.as_deref());
        let listener = TcpListener::bind(host_port(&bind_host, config.rpc_port))
            .await
            .map_err(|e| {
                StatorError::internal(format!(
                    "cannot bind the request plane on {bind_host}:{}: {e}",
                    config.rpc_port
                ))
            })?;
        let local_addr = listener
            .local_addr()
            .map_err(|e| StatorError::internal(format!("request plane address: {e}")))?;
        let shared = Arc::new(Shared {
            endpoints: DashMap::new(),
            admission: Admission::new(config.worker_pool_size, config.work_queue_size),
            max_message_size: config.max_message_size,
            cancel: CancellationToken::new(),
            inflight: TaskTracker::new(),
        });
        tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            address: host_port(&advertise_host, local_addr.port()),
            local_addr,
            shared,
        })
    }

    /// The advertised `host:port` peers dial (goes into the instance's transport).
    pub fn address(&self) -> &str {
        &self.address
    }

    /// The socket address actually bound.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Routes requests for `path` (the instance path) to `handler`.
    pub fn register(&self, path: impl Into<String>, handler: Arc<dyn RequestHandler>) {
        self.shared.endpoints.insert(path.into(), handler);
    }

    /// Stops routing `path`; later requests for it get a `Server unavailable` ack.
    pub fn unregister(&self, path: &str) {
        self.shared.endpoints.remove(path);
    }

    /// Requests currently running or queued.
    pub fn inflight(&self) -> usize {
        self.shared.inflight.len()
    }

    /// Requests waiting in the overflow queue.
    pub fn queue_depth(&self) -> usize {
        self.shared.admission.queue_depth()
    }

    /// Stops accepting, then waits up to `timeout` for in-flight requests to finish.
    /// Returns whether every request finished in time.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.shared.cancel.cancel();
        self.shared.inflight.close();
        tokio::time::timeout(timeout, self.shared.inflight.wait())
            .await
            .is_ok()
    }
}

impl Drop for RequestPlaneServer {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.cancel.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, peer)) => {
                let shared = Arc::clone(&shared);
                tokio::spawn(async move {
                    if let Err(err) = serve_connection(stream, &shared).await {
                        tracing::debug!(%peer, error = %err, "request connection closed");
                    }
                });
            }
            Err(err) => {
                tracing::warn!(error = %err, "accept failed");
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    }
}

/// Reads request frames, acks each one in order; acks of frames that arrived together go
/// out in one write.
async fn serve_connection(
    mut stream: TcpStream,
    shared: &Shared,
) -> Result<(), crate::wire::WireError> {
    stream.set_nodelay(true)?;
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut acks = BytesMut::with_capacity(256);
    loop {
        let read = tokio::select! {
            () = shared.cancel.cancelled() => return Ok(()),
            read = stream.read_buf(&mut input) => read?,
        };
        if read == 0 {
            return Ok(());
        }
        while let Some(frame) = RequestFrame::decode(&mut input, shared.max_message_size)? {
            admit(frame, shared).encode(&mut acks)?;
        }
        if !acks.is_empty() {
            stream.write_all(&acks).await?;
            acks.clear();
        }
    }
}

fn admit(frame: RequestFrame, shared: &Shared) -> Ack {
    if shared.cancel.is_cancelled() {
        return Ack::unavailable("worker shutting down");
    }
    let Some(handler) = shared
        .endpoints
        .get(&frame.path)
        .map(|h| Arc::clone(h.value()))
    else {
        return Ack::unavailable(&format!("unknown endpoint {}", frame.path));
    };
    let payload = frame.payload;
    match shared.admission.try_admit() {
        Admit::Now(permit) => {
            shared.inflight.spawn(async move {
                handler.handle(payload).await;
                drop(permit);
            });
        }
        Admit::Queued(queued) => {
            shared.inflight.spawn(async move {
                let permit = queued.wait().await;
                handler.handle(payload).await;
                drop(permit);
            });
        }
        Admit::Full => return Ack::Overloaded,
    }
    Ack::Accepted
}
