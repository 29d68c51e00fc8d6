//! The client half: send a request to one worker instance and return its response stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio::sync::{OnceCell, oneshot};
use tokio_stream::wrappers::ReceiverStream;

use super::config::RequestPlaneConfig;
use super::connection::{Connection, Limits, Pool};
use super::inline_client::{Event, InlineItems, InlineReceiver};
use super::nats;
use super::response_reader::{self, ItemReceiver, Prologue, prologue_outcome};
use super::stream_server::{OnArrival, TcpStreamServer};
use super::target::{RequestTarget, TcpTarget};
use crate::engine::{Context, Request, ResponseStream};
use crate::error::StatorError;
use crate::wire::{
    Ack, ConnectionInfo, Frame, INLINE_RESPONSE_HEADER, RequestControlMessage, RequestFrame,
    RequestType, ResponseType, TCP_SERVER_TRANSPORT, TwoPartMessage,
};

/// Sends requests to worker instances (pooled TCP connections, or NATS request-reply) and
/// receives their response streams: inline on the request connection from Stator workers
/// (when [`RequestPlaneConfig::inline_responses`] is on), over the call-home connection
/// otherwise. One per process; cheap to share behind an `Arc`.
pub struct RequestPlaneClient {
    pool: Pool,
    nats: OnceCell<async_nats::Client>,
    streams: TcpStreamServer,
    config: RequestPlaneConfig,
}

impl RequestPlaneClient {
    /// Starts the response-stream server and an empty connection pool.
    pub async fn new(config: RequestPlaneConfig) -> Result<Arc<Self>, StatorError> {
        let streams = TcpStreamServer::bind(&config).await?;
        let pool = Pool::new(
            Limits {
                max_message_size: config.max_message_size,
                inline_stream_buffer: config.inline_stream_buffer,
            },
            config.max_inflight_per_connection,
            config.max_connections_per_host,
        );
        Ok(Arc::new(Self {
            pool,
            nats: OnceCell::new(),
            streams,
            config,
        }))
    }

    /// The response-stream server's advertised address.
    pub fn response_address(&self) -> &str {
        self.streams.address()
    }

    /// The NATS connection, opened on the first request to a NATS instance.
    async fn nats(&self) -> Result<&async_nats::Client, StatorError> {
        self.nats
            .get_or_try_init(|| nats::connect(&self.config.nats))
            .await
    }

    /// Sends `request` to `target` and returns the response stream once the worker's
    /// prologue arrived.
    ///
    /// Errors: `CannotConnect`/`ConnectionTimeout`/`Disconnected` for transport faults
    /// (`WorkerUnavailable` when no NATS subscriber answers), `InvalidRequest` when the
    /// request exceeds the message size (TCP) or the NATS server's `max_payload`,
    /// `WorkerUnavailable`/`WorkerOverloaded` for rejecting acks, the worker's typed error for
    /// a failed `generate()`, `Cancelled` if the context is killed first. Stream items are
    /// `Err(Disconnected)` when the stream breaks before its final frame.
    pub async fn generate<Req, Resp>(
        &self,
        target: &RequestTarget,
        request: Request<Req>,
    ) -> Result<ResponseStream<Result<Resp, StatorError>>, StatorError>
    where
        Req: Serialize,
        Resp: DeserializeOwned + Send + 'static,
    {
        let (data, context) = request.into_parts();
        let (delivery, prologue) = oneshot::channel::<Prologue<Resp>>();
        let on_arrival: OnArrival = {
            let context = context.clone();
            let codec = target.codec();
            let max = self.config.max_message_size;
            Box::new(move |stream, buf| {
                Box::pin(response_reader::run(
                    stream, buf, codec, context, delivery, max,
                ))
            })
        };
        let (info, pending) = self.streams.register(context.id(), on_arrival);
        let info = serde_json::to_string(&info)
            .map_err(|e| StatorError::internal(format!("connection info: {e}")))?;
        let send_ts = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64);
        let control = RequestControlMessage {
            id: context.id().to_owned(),
            request_type: RequestType::SingleIn,
            response_type: ResponseType::ManyOut,
            payload_codec: target.codec(),
            connection_info: ConnectionInfo {
                transport: TCP_SERVER_TRANSPORT.to_owned(),
                info,
            },
            metadata: None,
            frontend_send_ts_ns: Some(send_ts),
            request_stream_connection_info: None,
        };
        let header = serde_json::to_vec(&control)
            .map_err(|e| StatorError::internal(format!("control message: {e}")))?;
        let body = target
            .codec()
            .encode(&data)
            .map_err(|e| StatorError::invalid_request(format!("cannot encode request: {e}")))?;
        let payload = TwoPartMessage {
            header: header.into(),
            body,
        }
        .to_bytes();
        let headers = BTreeMap::from([
            ("request-id".to_owned(), context.id().to_owned()),
            ("x-endpoint-path".to_owned(), target.route().to_owned()),
            ("x-frontend-send-ts-ns".to_owned(), send_ts.to_string()),
        ]);
        let codec = target.codec();
        let (ack, closed, inline) = match target {
            RequestTarget::Tcp(tcp) => {
                let (ack, conn, inline) = self.send_tcp(tcp, headers, payload).await?;
                (ack, Some(conn), inline)
            }
            // Boxed: the NATS connect and request futures would otherwise bloat every
            // caller's future, TCP ones included.
            RequestTarget::Nats(n) => (
                Box::pin(self.send_nats(&n.subject, &headers, payload)).await?,
                None,
                None,
            ),
        };
        match ack {
            Ack::Accepted => {}
            Ack::Overloaded => return Err(StatorError::worker_overloaded(Ack::Overloaded.text())),
            Ack::Unavailable(text) | Ack::Rejected(text) => {
                return Err(StatorError::worker_unavailable(text));
            }
        }
        let accepted = first_prologue(
            prologue,
            inline,
            closed.as_deref(),
            &context,
            target.route(),
        )
        .await;
        drop(pending);
        match accepted {
            Via::Inline(outcome, mut rx) => {
                if outcome.is_err() {
                    rx.finish();
                }
                outcome?;
                let items = InlineItems::<Resp>::new(rx, codec, context.clone());
                Ok(ResponseStream::new(items, context))
            }
            Via::CallHome(outcome) => {
                Ok(ResponseStream::new(ReceiverStream::new(outcome?), context))
            }
        }
    }

    /// Sends the request to `subject` by NATS request-reply.
    async fn send_nats(
        &self,
        subject: &str,
        headers: &BTreeMap<String, String>,
        payload: bytes::Bytes,
    ) -> Result<Ack, StatorError> {
        let client = self.nats().await?;
        nats::request(client, subject, headers, payload, self.config.ack_timeout).await
    }

    /// Frames the request for `tcp.path` and sends it on a pooled connection, asking for an
    /// inline response stream when enabled.
    async fn send_tcp(
        &self,
        tcp: &TcpTarget,
        mut headers: BTreeMap<String, String>,
        payload: bytes::Bytes,
    ) -> Result<(Ack, Arc<Connection>, Option<InlineReceiver>), StatorError> {
        let conn = self.pool.get(&tcp.address).await?;
        let inline = self.config.inline_responses.then(|| conn.open_inline());
        if let Some(rx) = &inline {
            headers.insert(INLINE_RESPONSE_HEADER.to_owned(), rx.id().header_value());
        }
        let frame = RequestFrame {
            path: tcp.path.clone(),
            headers,
            payload,
        };
        let mut encoded = BytesMut::new();
        frame
            .encode(&mut encoded)
            .map_err(|e| StatorError::invalid_request(e.to_string()))?;
        if encoded.len() > self.config.max_message_size {
            return Err(StatorError::invalid_request(format!(
                "request of {} bytes exceeds the maximum message size of {} bytes",
                encoded.len(),
                self.config.max_message_size
            )));
        }
        let ack = conn.send(&encoded, self.config.ack_timeout).await?;
        Ok((ack, conn, inline))
    }
}

/// Waits for the first prologue: inline from a Stator worker, or over the call-home connection
/// from a Dynamo worker (or a Stator worker with inline responses off).
async fn first_prologue<U>(
    call_home: oneshot::Receiver<Prologue<U>>,
    inline: Option<InlineReceiver>,
    connection: Option<&Connection>,
    context: &Context,
    route: &str,
) -> Via<U> {
    // Over TCP a worker that dies before responding closes the request connection; NATS
    // has no such signal, so only the context's kill ends that wait.
    let worker_gone = async {
        match connection {
            Some(conn) => conn.closed().await,
            None => std::future::pending().await,
        }
    };
    let gone = || {
        StatorError::disconnected(format!(
            "worker {route} closed the connection before responding"
        ))
    };
    let inline_prologue = async move {
        match inline {
            Some(mut rx) => (rx.recv().await, rx),
            None => std::future::pending().await,
        }
    };
    // Biased: a prologue already delivered wins over the connection closing after it.
    tokio::select! {
        biased;
        outcome = call_home => Via::CallHome(outcome.unwrap_or_else(|_| {
            Err(StatorError::unavailable("response-stream server shut down"))
        })),
        (event, rx) = inline_prologue => Via::Inline(match event {
            Some(Event::Message(msg)) => prologue_outcome(&msg.header),
            Some(Event::Overflow(_)) | None => Err(gone()),
        }, rx),
        () = worker_gone => Via::CallHome(Err(gone())),
        () = context.killed() => Via::CallHome(Err(StatorError::cancelled(
            "request cancelled before the worker responded",
        ))),
    }
}

/// Which response stream delivered the prologue.
enum Via<U> {
    CallHome(Result<ItemReceiver<U>, StatorError>),
    Inline(Result<(), StatorError>, InlineReceiver),
}
