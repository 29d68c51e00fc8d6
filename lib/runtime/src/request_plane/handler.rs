//! Worker-side handling of one admitted request: decode it, run the engine, stream back.

use std::marker::PhantomData;
use std::sync::Arc;
use std::task::Poll;
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::future::BoxFuture;
use serde::Serialize;
use serde::de::DeserializeOwned;
use tokio_util::task::TaskTracker;

use super::call_home::CallHome;
use super::inline_server::InlineReply;
use super::metrics::EndpointMetrics;
use super::respond::{ReplyError, Sink};
use crate::engine::{Context, Request, StreamingEngine};
use crate::error::{ErrorClass, StatorError};
use crate::wire::{
    Codec, RequestControlMessage, StreamType, TCP_SERVER_TRANSPORT, TcpStreamConnectionInfo,
    TwoPartMessage,
};

/// What the request-plane server calls for every admitted request of one endpoint.
pub trait RequestHandler: Send + Sync + 'static {
    /// Handles one admitted request; resolves when the response stream is finished.
    fn handle(self: Arc<Self>, request: IncomingRequest) -> BoxFuture<'static, ()>;
}

/// A request admitted by a request-plane server: its payload (a two-part message) and, when
/// a Stator client asked for it on a TCP connection, the inline reply handle that replaces the
/// call-home connection.
pub struct IncomingRequest {
    /// The two-part message: `RequestControlMessage` header and encoded request body.
    pub payload: Bytes,
    inline: Option<InlineReply>,
}

impl IncomingRequest {
    /// A request whose response goes over the call-home connection its header names.
    pub fn new(payload: Bytes) -> Self {
        Self {
            payload,
            inline: None,
        }
    }

    pub(crate) fn with_inline(payload: Bytes, inline: Option<InlineReply>) -> Self {
        Self { payload, inline }
    }

    /// Refused at admission: nothing is sent besides the ack.
    pub(crate) fn reject(self) {
        if let Some(inline) = self.inline {
            inline.reject();
        }
    }
}

/// Serves a [`StreamingEngine`]: decodes `Req` with the codec the client chose, calls the
/// engine and sends every item of its stream back over the call-home connection.
pub struct EngineHandler<Req, Resp> {
    engine: StreamingEngine<Req, Resp>,
    max_message_size: usize,
    inflight: TaskTracker,
    metrics: Option<EndpointMetrics>,
    _types: PhantomData<fn(Req) -> Resp>,
}

impl<Req, Resp> EngineHandler<Req, Resp> {
    /// Wraps `engine`.
    pub fn new(engine: StreamingEngine<Req, Resp>, max_message_size: usize) -> Self {
        Self {
            engine,
            max_message_size,
            inflight: TaskTracker::new(),
            metrics: None,
            _types: PhantomData,
        }
    }

    /// Records `dynamo_component_*` metrics for every request.
    #[must_use]
    pub fn with_metrics(mut self, metrics: EndpointMetrics) -> Self {
        self.metrics = Some(metrics);
        self
    }

    /// Requests of this endpoint currently being served.
    pub fn inflight(&self) -> usize {
        self.inflight.len()
    }

    /// Waits up to `timeout` for the requests being served to finish; returns whether they
    /// all did. Call after the endpoint stopped receiving requests.
    pub async fn drain(&self, timeout: Duration) -> bool {
        self.inflight.close();
        let drained = tokio::time::timeout(timeout, self.inflight.wait())
            .await
            .is_ok();
        self.inflight.reopen();
        drained
    }
}

impl<Req, Resp> RequestHandler for EngineHandler<Req, Resp>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    fn handle(self: Arc<Self>, request: IncomingRequest) -> BoxFuture<'static, ()> {
        let token = self.inflight.token();
        Box::pin(async move {
            let _counted = token;
            let started = Instant::now();
            if let Some(m) = &self.metrics {
                m.requests_total.inc();
                m.inflight_requests.inc();
            }
            let outcome = self.run(request).await;
            if let Some(m) = &self.metrics {
                m.inflight_requests.dec();
                m.request_duration_seconds
                    .observe(started.elapsed().as_secs_f64());
                match &outcome {
                    Ok(Some(class)) => m.error(class),
                    Ok(None) => {}
                    Err(_) => m.error("transport"),
                }
            }
            if let Err(err) = outcome {
                tracing::warn!(error = %err, "request could not be served");
            }
        })
    }
}

impl<Req, Resp> EngineHandler<Req, Resp>
where
    Req: DeserializeOwned + Send + 'static,
    Resp: Serialize + Send + 'static,
{
    /// Serves one request; `Ok(Some(class))` when it was refused with an error of `class`.
    async fn run(&self, request: IncomingRequest) -> Result<Option<&'static str>, ReplyError> {
        let IncomingRequest { payload, inline } = request;
        let msg = TwoPartMessage::from_bytes(&payload, self.max_message_size)?;
        let control: RequestControlMessage = serde_json::from_slice(&msg.header)
            .map_err(|e| ReplyError::Control(format!("control message: {e}")))?;
        let context = Context::with_id(control.id.clone());
        let sink = if let Some(mut reply) = inline {
            reply.bind(&context);
            Sink::Inline(reply, context.clone())
        } else {
            let info = call_home_info(&control)?;
            Sink::CallHome(CallHome::connect(&info, context.clone(), self.max_message_size).await?)
        };
        self.respond(sink, &msg.body, control.payload_codec, context)
            .await
    }

    /// Decodes the body, runs the engine and streams its answer to `sink`.
    async fn respond(
        &self,
        mut sink: Sink,
        body: &[u8],
        codec: Codec,
        context: Context,
    ) -> Result<Option<&'static str>, ReplyError> {
        let request = match codec.decode::<Req>(body) {
            Ok(req) => req,
            Err(e) => {
                let err = StatorError::invalid_request(format!("cannot decode request: {e}"));
                sink.fail(&err).await?;
                return Ok(Some(err.class().as_str()));
            }
        };
        // The handshake goes out with the prologue unless the engine is slow to answer, so a
        // fast request costs one write and a slow one still lets the client match it early.
        let mut generating = self
            .engine
            .generate(Request::with_context(request, context));
        let result = match futures::poll!(&mut generating) {
            Poll::Ready(result) => result,
            Poll::Pending => {
                sink.flush_handshake().await?;
                tokio::select! {
                    result = &mut generating => result,
                    () = sink.watch_control() => return Ok(Some(ErrorClass::Cancelled.as_str())),
                }
            }
        };
        match result {
            Ok(stream) => sink.stream(stream, codec).await.map(|()| None),
            Err(err) => {
                sink.fail(&err).await?;
                Ok(Some(err.class().as_str()))
            }
        }
    }
}

/// Where a call-home response stream goes, from the request's control message.
fn call_home_info(control: &RequestControlMessage) -> Result<TcpStreamConnectionInfo, ReplyError> {
    if control.connection_info.transport != TCP_SERVER_TRANSPORT {
        return Err(ReplyError::Control(format!(
            "unsupported response transport {:?}",
            control.connection_info.transport
        )));
    }
    let info: TcpStreamConnectionInfo = serde_json::from_str(&control.connection_info.info)
        .map_err(|e| ReplyError::Control(format!("connection info: {e}")))?;
    if info.stream_type != StreamType::Response {
        return Err(ReplyError::Control("expected a response stream".to_owned()));
    }
    Ok(info)
}
