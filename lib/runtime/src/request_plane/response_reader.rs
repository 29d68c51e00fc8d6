//! Client side of the response stream: prologue, items, end-of-stream rules, stop/kill.

use bytes::BytesMut;
use serde::de::DeserializeOwned;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;
use tokio::net::tcp::{OwnedReadHalf, OwnedWriteHalf};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;

use crate::engine::{Context, ResponseStream};
use crate::error::StatorError;
use crate::wire::{
    Codec, ControlMessage, Frame, NetworkStreamWrapper, ResponseStreamPrologue, TwoPartMessage,
    read_frame,
};

/// Items buffered between the socket and the consumer.
const STREAM_BUFFER: usize = 64;

/// Message of the error synthesized when a stream ends without its final frame.
pub(crate) const STREAM_ENDED_EARLY: &str = "Stream ended before generation completed";

/// Reads the prologue, then hands the rest of the stream to a reader task.
pub(crate) async fn open<U>(
    stream: TcpStream,
    mut buf: BytesMut,
    codec: Codec,
    context: Context,
    max_message_size: usize,
) -> Result<ResponseStream<Result<U, StatorError>>, StatorError>
where
    U: DeserializeOwned + Send + 'static,
{
    let (mut reader, mut writer) = stream.into_split();
    let prologue = tokio::select! {
        () = context.killed() => {
            send_control(&mut writer, ControlMessage::Kill).await;
            return Err(StatorError::cancelled("request cancelled before the stream started"));
        }
        frame = read_frame::<TwoPartMessage, _>(&mut reader, &mut buf, max_message_size) => frame,
    };
    let prologue = prologue
        .map_err(|e| {
            StatorError::disconnected(format!("response stream failed before the prologue: {e}"))
        })?
        .ok_or_else(|| {
            StatorError::disconnected("worker closed the response stream before the prologue")
        })?;
    let prologue: ResponseStreamPrologue = serde_json::from_slice(&prologue.header)
        .map_err(|e| StatorError::backend_protocol(format!("malformed prologue: {e}")))?;
    if let Some(message) = prologue.error {
        return Err(prologue
            .typed_error
            .unwrap_or_else(|| StatorError::internal(message)));
    }
    let (tx, rx) = mpsc::channel(STREAM_BUFFER);
    let reader = Reader {
        socket: reader,
        writer,
        buf,
        codec,
        context: context.clone(),
        tx,
        max_message_size,
    };
    tokio::spawn(reader.run());
    Ok(ResponseStream::new(ReceiverStream::new(rx), context))
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

/// What one frame meant for the stream.
enum Step<U> {
    /// An item; `true` when it also carried `complete_final`.
    Item(U, bool),
    Final,
    End,
    Ignore,
}

impl<U: DeserializeOwned + Send + 'static> Reader<U> {
    async fn run(mut self) {
        let mut complete = false;
        let mut stop_sent = false;
        let context = self.context.clone();
        loop {
            let frame = tokio::select! {
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
                frame = read_frame::<TwoPartMessage, _>(&mut self.socket, &mut self.buf, self.max_message_size) => frame,
            };
            let step = match frame {
                Ok(Some(msg)) => self.interpret(&msg, complete),
                Ok(None) => Ok(Step::End),
                Err(e) => Err(StatorError::disconnected(format!(
                    "response stream failed: {e}"
                ))),
            };
            match step {
                Ok(Step::Item(item, last)) => {
                    complete |= last;
                    if self.tx.send(Ok(item)).await.is_err() {
                        context.kill();
                        self.control(ControlMessage::Kill).await;
                        return;
                    }
                }
                Ok(Step::Final) => complete = true,
                Ok(Step::Ignore) => {}
                Ok(Step::End) => {
                    if !complete && !context.is_stopped() {
                        let _ = self
                            .tx
                            .send(Err(StatorError::disconnected(STREAM_ENDED_EARLY)))
                            .await;
                    }
                    return;
                }
                Err(err) => {
                    let _ = self.tx.send(Err(err)).await;
                    self.control(ControlMessage::Kill).await;
                    return;
                }
            }
        }
    }

    fn interpret(&self, msg: &TwoPartMessage, complete: bool) -> Result<Step<U>, StatorError> {
        if !msg.header.is_empty() {
            return match serde_json::from_slice::<ControlMessage>(&msg.header) {
                Ok(ControlMessage::Sentinel) => Ok(Step::End),
                Ok(_) => Ok(Step::Ignore),
                Err(e) => Err(StatorError::backend_protocol(format!(
                    "malformed control frame: {e}"
                ))),
            };
        }
        let wrapper: NetworkStreamWrapper<U> = self
            .codec
            .decode(&msg.body)
            .map_err(|e| StatorError::backend_protocol(format!("malformed stream item: {e}")))?;
        match (wrapper.data, wrapper.complete_final) {
            (Some(_), _) if complete => Err(StatorError::backend_protocol(
                "data received after complete_final",
            )),
            (Some(item), last) => Ok(Step::Item(item, last)),
            (None, true) => Ok(Step::Final),
            (None, false) => Ok(Step::Ignore),
        }
    }

    async fn control(&mut self, msg: ControlMessage) {
        send_control(&mut self.writer, msg).await;
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
