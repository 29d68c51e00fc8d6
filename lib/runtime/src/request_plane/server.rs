//! The worker's shared request listener: routes frames by endpoint path, admits, acks; for
//! Stator clients that ask for it, the response streams come back on the same connection.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use bytes::BytesMut;
use tokio::io::AsyncReadExt;
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::config::{RequestPlaneConfig, bind_and_advertise};
use super::dispatch::Dispatcher;
use super::handler::{IncomingRequest, RequestHandler};
use super::inline_server::InlineStreams;
use super::writer::SharedWriter;
use crate::error::StatorError;
use crate::net::authority;
use crate::wire::{
    Frame, INLINE_CONTROL_PATH, INLINE_RESPONSE_HEADER, InlineControl, RequestFrame, StreamId,
    WireError,
};

/// One TCP listener per process serving every registered endpoint.
pub struct RequestPlaneServer {
    address: String,
    local_addr: SocketAddr,
    shared: Arc<Shared>,
}

struct Shared {
    dispatch: Arc<Dispatcher>,
    max_message_size: usize,
    inline_responses: bool,
}

impl RequestPlaneServer {
    /// Binds the listener (`rpc_host`/`rpc_port` of `config`) and starts accepting.
    pub async fn bind(config: &RequestPlaneConfig) -> Result<Self, StatorError> {
        let (bind_host, advertise_host) = bind_and_advertise(config.rpc_host.as_deref());
        let listener = TcpListener::bind(authority(&bind_host, config.rpc_port))
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
            inline_responses: config.inline_responses,
        });
        tokio::spawn(accept_loop(listener, Arc::clone(&shared)));
        Ok(Self {
            address: authority(&advertise_host, local_addr.port()),
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

/// Reads request frames, acks each one in order (acks of frames that arrived together go out
/// in one write), applies inline control frames; when the connection ends, every inline
/// stream on it is killed.
async fn serve_connection(stream: TcpStream, shared: &Shared) -> Result<(), WireError> {
    stream.set_nodelay(true)?;
    let (mut reader, half) = stream.into_split();
    let closed = CancellationToken::new();
    let writer = SharedWriter::spawn(half, closed.clone());
    let inline = InlineStreams::new(Arc::clone(&writer));
    let served = read_requests(&mut reader, shared, &writer, &inline).await;
    inline.connection_lost();
    closed.cancel();
    served
}

async fn read_requests(
    reader: &mut tokio::net::tcp::OwnedReadHalf,
    shared: &Shared,
    writer: &SharedWriter,
    inline: &Arc<InlineStreams>,
) -> Result<(), WireError> {
    let mut input = BytesMut::with_capacity(16 * 1024);
    let mut acks = BytesMut::with_capacity(256);
    loop {
        // On shutdown, keep the connection (and its control frames) until its inline streams
        // are done; new requests get `Server unavailable` acks meanwhile.
        let shut_down = async {
            shared.dispatch.cancelled().cancelled().await;
            inline.idle().await;
        };
        let read = tokio::select! {
            () = shut_down => return Ok(()),
            read = reader.read_buf(&mut input) => read?,
        };
        if read == 0 {
            return Ok(());
        }
        // Corked: responses that admitted requests produce at once leave with the acks, in
        // one write.
        writer.cork();
        let handled = handle_frames(&mut input, shared, &mut acks, inline).await;
        if handled.is_ok() && !acks.is_empty() {
            writer.write(&acks)?;
            acks.clear();
        }
        writer.uncork()?;
        handled?;
    }
}

/// Admits every complete request frame in `input` (acks appended to `acks`) and applies the
/// inline control frames.
async fn handle_frames(
    input: &mut BytesMut,
    shared: &Shared,
    acks: &mut BytesMut,
    inline: &Arc<InlineStreams>,
) -> Result<(), WireError> {
    while let Some(frame) = RequestFrame::decode(input, shared.max_message_size)? {
        if frame.path == INLINE_CONTROL_PATH {
            match InlineControl::from_request_frame(&frame, shared.max_message_size) {
                Ok(control) => inline.control(control),
                Err(err) => tracing::debug!(error = %err, "ignoring a bad inline control"),
            }
            continue;
        }
        let reply = if shared.inline_responses {
            frame
                .headers
                .get(INLINE_RESPONSE_HEADER)
                .and_then(|v| StreamId::parse(v))
                .map(|id| inline.reply(id))
        } else {
            None
        };
        let request = IncomingRequest::with_inline(frame.payload, reply);
        shared
            .dispatch
            .admit_polled(&frame.path, request)
            .await
            .encode(acks)?;
    }
    Ok(())
}
