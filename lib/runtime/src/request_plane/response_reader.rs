//! Client side of the response stream: prologue, items, end-of-stream rules, stop/kill.

mod msgpack;

use bytes::BytesMut;
use serde::de::DeserializeOwned;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::{mpsc, oneshot};

use crate::engine::Context;
use crate::error::StatorError;
use crate::wire::{
    Codec, ControlMessage, Frame, NetworkStreamWrapper, ResponseStreamPrologue, TwoPartMessage,
    read_frame,
};

/// Items buffered between the socket and the consumer.
const STREAM_BUFFER: usize = 64;

/// Message of the error synthesized when a stream ends without its final frame.
pub(crate) const STREAM_ENDED_EARLY: &str = "Stream ended before generation completed";

/// The prologue outcome of a call-home stream: its items once the prologue accepted the
/// request, else the (typed) error. The item channel only exists once a worker dialed back.
pub(crate) type Prologue<U> = Result<ItemReceiver<U>, StatorError>;
/// Where a call-home stream delivers its prologue outcome.
pub(crate) type PrologueSender<U> = oneshot::Sender<Prologue<U>>;
/// Receiving end of the items, ending with an `Err` if the stream broke.
pub(crate) type ItemReceiver<U> = mpsc::Receiver<Result<U, StatorError>>;

/// Runs a matched call-home connection to its end: prologue, then items.
pub(crate) async fn run<U>(
    stream: TcpStream,
    mut buf: BytesMut,
    codec: Codec,
    context: Context,
    mut prologue: PrologueSender<U>,
    max_message_size: usize,
) where
    U: DeserializeOwned + Send + 'static,
{
    let (mut reader, mut writer) = stream.into_split();
    let frame = tokio::select! {
        () = context.killed() => {
            send_control(&mut writer, ControlMessage::Kill).await;
            let _ = prologue.send(Err(StatorError::cancelled("request cancelled before the stream started")));
            return;
        }
        () = prologue.closed() => {
            send_control(&mut writer, ControlMessage::Kill).await;
            return;
        }
        frame = read_frame::<TwoPartMessage, _>(&mut reader, &mut buf, max_message_size) => frame,
    };
    let outcome = match frame {
        Ok(Some(msg)) => prologue_outcome(&msg.header),
        Ok(None) => Err(StatorError::disconnected(
            "worker closed the response stream before the prologue",
        )),
        Err(e) => Err(StatorError::disconnected(format!(
            "response stream failed before the prologue: {e}"
        ))),
    };
    let (items, items_rx) = mpsc::channel(STREAM_BUFFER);
    let accepted = outcome.is_ok();
    if prologue.send(outcome.map(|()| items_rx)).is_err() {
        // The caller gave up between the prologue and now.
        context.kill();
        send_control(&mut writer, ControlMessage::Kill).await;
        return;
    }
    if accepted {
        let reader = Reader {
            socket: reader,
            writer,
            buf,
            codec,
            context,
            tx: items,
            max_message_size,
        };
        reader.run().await;
    }
}

struct Reader<U> {
    socket: OwnedReadHalf,
    writer: OwnedWriteHalf,
    buf: BytesMut,
    codec: Codec,
    context: Context,
    tx: mpsc::Sender<Result<U, StatorError>>,
    max_message_size: usize,
}

/// Whether a prologue header accepted the request (else its typed error).
pub(crate) fn prologue_outcome(header: &[u8]) -> Result<(), StatorError> {
    match serde_json::from_slice::<ResponseStreamPrologue>(header) {
        Ok(ResponseStreamPrologue {
            error: Some(message),
            typed_error,
        }) => Err(typed_error.unwrap_or_else(|| StatorError::internal(message))),
        Ok(_) => Ok(()),
        Err(e) => Err(StatorError::backend_protocol(format!(
            "malformed prologue: {e}"
        ))),
    }
}

/// What one frame meant for the stream.
pub(crate) enum Step<U> {
    /// An item; `true` when it also carried `complete_final`.
    Item(U, bool),
    /// The final frame.
    Final,
    /// The sentinel.
    End,
    /// Nothing for the consumer.
    Ignore,
}

impl<U: DeserializeOwned + Send + 'static> Reader<U> {
    /// Delivers every complete frame already buffered, and only then waits (for bytes, a
    /// stop, a kill or the consumer leaving), so a burst of items costs one wait.
    async fn run(mut self) {
        let mut complete = false;
        let mut stop_sent = false;
        let context = self.context.clone();
        loop {
            loop {
                let codec = self.codec;
                let step =
                    TwoPartMessage::decode_with(&mut self.buf, self.max_message_size, |h, b| {
                        interpret(codec, h, b, complete)
                    });
                let step = match step {
                    Ok(Some(step)) => step,
                    Ok(None) => break,
                    Err(e) => Err(StatorError::backend_protocol(format!(
                        "bad response frame: {e}"
                    ))),
                };
                match step {
                    Ok(Step::Item(item, last)) => {
                        complete |= last;
                        if !self.deliver(Ok(item)).await {
                            context.kill();
                            self.control(ControlMessage::Kill).await;
                            return;
                        }
                    }
                    Ok(Step::Final) => complete = true,
                    Ok(Step::Ignore) => {}
                    Ok(Step::End) => {
                        if !complete && !context.is_stopped() {
                            self.deliver(Err(StatorError::disconnected(STREAM_ENDED_EARLY)))
                                .await;
                        }
                        return;
                    }
                    Err(err) => {
                        self.deliver(Err(err)).await;
                        self.control(ControlMessage::Kill).await;
                        return;
                    }
                }
            }
            let read = tokio::select! {
                biased;
                () = self.tx.closed() => {
                    // The consumer dropped the stream: the worker must stop working for nobody.
                    context.kill();
                    self.control(ControlMessage::Kill).await;
                    return;
                }
                () = context.killed() => {
                    self.control(ControlMessage::Kill).await;
                    return;
                }
                () = context.stopped(), if !stop_sent => {
                    stop_sent = true;
                    self.control(ControlMessage::Stop).await;
                    continue;
                }
                read = self.socket.read_buf(&mut self.buf) => read,
            };
            match read {
                Ok(0) if self.buf.is_empty() => {
                    if !complete && !context.is_stopped() {
                        self.deliver(Err(StatorError::disconnected(STREAM_ENDED_EARLY)))
                            .await;
                    }
                    return;
                }
                Ok(0) | Err(_) => {
                    if !context.is_stopped() {
                        let detail = match read {
                            Err(e) => format!("{STREAM_ENDED_EARLY}: {e}"),
                            Ok(_) => format!("{STREAM_ENDED_EARLY}: connection closed mid-frame"),
                        };
                        self.deliver(Err(StatorError::disconnected(detail))).await;
                    }
                    return;
                }
                Ok(_) => {}
            }
        }
    }

    /// Hands one item to the consumer; `false` if it is gone.
    async fn deliver(&self, item: Result<U, StatorError>) -> bool {
        match self.tx.try_send(item) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(item)) => self.tx.send(item).await.is_ok(),
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    async fn control(&mut self, msg: ControlMessage) {
        send_control(&mut self.writer, msg).await;
    }
}

/// What one received frame means, given whether `complete_final` was already seen.
pub(crate) fn interpret<U: DeserializeOwned>(
    codec: Codec,
    header: &[u8],
    body: &[u8],
    complete: bool,
) -> Result<Step<U>, StatorError> {
    if !header.is_empty() {
        return match serde_json::from_slice::<ControlMessage>(header) {
            Ok(ControlMessage::Sentinel) => Ok(Step::End),
            Ok(_) => Ok(Step::Ignore),
            Err(e) => Err(StatorError::backend_protocol(format!(
                "malformed control frame: {e}"
            ))),
        };
    }
    let fast = match codec {
        Codec::Msgpack => msgpack::from_slice(body).ok(),
        Codec::Json => None,
    };
    let wrapper: NetworkStreamWrapper<U> = match fast {
        Some(wrapper) => wrapper,
        None => codec
            .decode(body)
            .map_err(|e| StatorError::backend_protocol(format!("malformed stream item: {e}")))?,
    };
    match (wrapper.data, wrapper.complete_final) {
        (Some(_), _) if complete => Err(StatorError::backend_protocol(
            "data received after complete_final",
        )),
        (Some(item), last) => Ok(Step::Item(item, last)),
        (None, true) => Ok(Step::Final),
        (None, false) => Ok(Step::Ignore),
    }
}

/// Best-effort control frame (the worker may already be gone).
async fn send_control(writer: &mut OwnedWriteHalf, msg: ControlMessage) {
    let mut frame = BytesMut::new();
    if TwoPartMessage::header_only(msg.header())
        .encode(&mut frame)
        .is_ok()
    {
        let _ = writer.write_all(&frame).await;
    }
}
