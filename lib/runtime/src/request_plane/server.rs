//! The worker's shared request listener: routes frames by endpoint path, admits, acks.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

use super::config::{RequestPlaneConfig, bind_and_advertise, host_port};
use super::dispatch::Dispatcher;
use super::handler::RequestHandler;
use crate::error::StatorError;
use crate::wire::{Frame, RequestFrame};

/// One TCP listener per process serving every registered endpoint.
pub struct RequestPlaneServer {
    address: String,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    dispatch: Arc<Dispatcher>,
    max_message_size: usize,
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
            dispatch: Dispatcher::new(config.worker_pool_size, config.work_queue_size),
            max_message_size: config.max_message_size,
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
        self.shared.dispatch.register(path.into(), handler);
    }

    /// Stops routing `path`; later requests for it get a `Server unavailable` ack.
    pub fn unregister(&self, path: &str) {
        self.shared.dispatch.unregister(path);
    }

    /// Requests currently running or queued.
    pub fn inflight(&self) -> usize {
        self.shared.dispatch.inflight()
    }

    /// Requests waiting in the overflow queue.
    pub fn queue_depth(&self) -> usize {
        self.shared.dispatch.queue_depth()
    }

    /// Stops accepting, then waits up to `timeout` for in-flight requests to finish.
    /// Returns whether every request finished in time.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.shared.dispatch.shutdown(timeout).await
    }
}

impl Drop for RequestPlaneServer {
    fn drop(&mut self) {
        self.shared.dispatch.cancelled().cancel();
    }
}

async fn accept_loop(listener: TcpListener, shared: Arc<Shared>) {
    loop {
        let accepted = tokio::select! {
            () = shared.dispatch.cancelled().cancelled() => return,
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
            () = shared.dispatch.cancelled().cancelled() => return Ok(()),
            read = stream.read_buf(&mut input) => read?,
        };
        if read == 0 {
            return Ok(());
        }
        while let Some(frame) = RequestFrame::decode(&mut input, shared.max_message_size)? {
            shared
                .dispatch
                .admit(&frame.path, frame.payload)
                .encode(&mut acks)?;
        }
        if !acks.is_empty() {
            stream.write_all(&acks).await?;
            acks.clear();
        }
    }
}
