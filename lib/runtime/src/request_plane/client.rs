//! The client half: send a request to one worker instance and return its response stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use bytes::BytesMut;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_stream::wrappers::ReceiverStream;

use super::config::RequestPlaneConfig;
use super::connection::Pool;
use super::response_reader;
use super::stream_server::{OnArrival, TcpStreamServer};
use crate::engine::{Request, ResponseStream};
use crate::error::StatorError;
use crate::wire::{
    Ack, Codec, ConnectionInfo, Frame, RequestControlMessage, RequestFrame, RequestType,
    ResponseType, TCP_SERVER_TRANSPORT, TwoPartMessage,
};

/// Where one endpoint instance listens: `host:port` plus its instance path and codec.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TcpTarget {
    /// `host:port` of the worker's shared listener.
    pub address: String,
    /// Instance path `"{id:x}/ns/comp/ep"` the worker routes by.
    pub path: String,
    /// Codec the instance advertised for request bodies.
    pub codec: Codec,
}

impl TcpTarget {
    /// Parses an instance's `transport.tcp` value, `"host:port/{id:x}/ns/comp/ep"`.
    pub fn parse(transport: &str, codec: Codec) -> Result<Self, StatorError> {
        let (address, path) = transport.split_once('/').ok_or_else(|| {
            StatorError::invalid_request(format!("malformed tcp transport {transport:?}"))
        })?;
        if address.is_empty() || path.is_empty() {
            return Err(StatorError::invalid_request(format!(
                "malformed tcp transport {transport:?}"
            )));
        }
        Ok(Self {
            address: address.to_owned(),
            path: path.to_owned(),
            codec,
        })
    }
}

/// Sends requests to worker instances over pooled connections and receives their
/// call-home response streams. One per process; cheap to share behind an `Arc`.
pub struct RequestPlaneClient {
    pool: Pool,
    streams: TcpStreamServer,
    config: RequestPlaneConfig,
}

impl RequestPlaneClient {
    /// Starts the response-stream server and an empty connection pool.
    pub async fn new(config: RequestPlaneConfig) -> Result<Arc<Self>, StatorError> {
        let streams = TcpStreamServer::bind(&config).await?;
        let pool = Pool::new(
            config.max_message_size,
            config.max_inflight_per_connection,
            config.max_connections_per_host,
        );
        Ok(Arc::new(Self {
            pool,
            streams,
            config,
        }))
    }

    /// The response-stream server's advertised address.
    pub fn response_address(&self) -> &str {
        self.streams.address()
    }

    /// Sends `request` to `target` and returns the response stream once the worker's
    /// prologue arrived.
    ///
    /// Errors: `CannotConnect`/`ConnectionTimeout`/`Disconnected` for transport faults,
    /// `WorkerUnavailable`/`WorkerOverloaded` for rejecting acks, the worker's typed error for
    /// a failed `generate()`, `Cancelled` if the context is killed first. Stream items are
    /// `Err(Disconnected)` when the stream breaks before its final frame.
    pub async fn generate<Req, Resp>(
        &self,
        target: &TcpTarget,
        request: Request<Req>,
    ) -> Result<ResponseStream<Result<Resp, StatorError>>, StatorError>
    where
        Req: Serialize,
        Resp: DeserializeOwned + Send + 'static,
    {
        let (data, context) = request.into_parts();
        let (delivery, prologue, items) = response_reader::channels::<Resp>();
        let on_arrival: OnArrival = {
            let context = context.clone();
            let codec = target.codec;
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
            payload_codec: target.codec,
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
            .codec
            .encode(&data)
            .map_err(|e| StatorError::invalid_request(format!("cannot encode request: {e}")))?;
        let payload = TwoPartMessage {
            header: header.into(),
            body,
        }
        .to_bytes();
        let headers = BTreeMap::from([
            ("request-id".to_owned(), context.id().to_owned()),
            ("x-endpoint-path".to_owned(), target.path.clone()),
            ("x-frontend-send-ts-ns".to_owned(), send_ts.to_string()),
        ]);
        let frame = RequestFrame {
            path: target.path.clone(),
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

        let conn = self.pool.get(&target.address).await?;
        match conn.send(&encoded, self.config.ack_timeout).await? {
            Ack::Accepted => {}
            Ack::Overloaded => return Err(StatorError::worker_overloaded(Ack::Overloaded.text())),
            Ack::Unavailable(text) | Ack::Rejected(text) => {
                return Err(StatorError::worker_unavailable(text));
            }
        }

        let accepted = tokio::select! {
            outcome = prologue => outcome.unwrap_or_else(|_| {
                Err(StatorError::unavailable("response-stream server shut down"))
            }),
            () = conn.closed() => Err(StatorError::disconnected(format!(
                "worker {} closed the connection before responding", target.address
            ))),
            () = context.killed() => Err(StatorError::cancelled(
                "request cancelled before the worker responded",
            )),
        };
        drop(pending);
        accepted?;
        Ok(ResponseStream::new(ReceiverStream::new(items), context))
    }
}
