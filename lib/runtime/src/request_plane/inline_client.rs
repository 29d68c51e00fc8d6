//! Client side of inline response streams: per-connection demultiplexing of inline records
//! into per-stream queues, and the typed item stream built on one.
//!
//! Back-pressure policy: the connection's reader never waits for a consumer (that would stall
//! every other stream on the connection). Each stream queues what arrives; once a stream holds
//! more than `inline_stream_buffer` unread bytes, the client kills that request (a `kill` to
//! the worker) and its consumer gets a `CapacityExhausted` error after the items it already
//! has. Consumers that keep up are never affected; memory per connection stays bounded.

use std::collections::{HashMap, VecDeque};
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, Ordering};
use std::task::{Context as TaskContext, Poll, Waker};

use futures::{FutureExt, Stream};
use parking_lot::Mutex;
use serde::de::DeserializeOwned;

use super::connection::Connection;
use super::response_reader::{STREAM_ENDED_EARLY, Step, interpret};
use crate::engine::Context;
use crate::error::{ErrorClass, StatorError};
use crate::wire::{Codec, ControlMessage, InlineControl, InlineFrame, StreamId, TwoPartMessage};

/// Stream ids the reader remembers having killed, so a stream that keeps sending after its
/// consumer left gets one `kill`, not one per record.
const KILLED_MEMORY: usize = 256;

/// Events a stream's queue holds before it first grows (a burst of generated tokens).
const QUEUE_CAPACITY: usize = 32;

/// What a stream's queue carries.
pub(crate) enum Event {
    /// A response-stream message (prologue, data, final or sentinel).
    Message(TwoPartMessage),
    /// The consumer fell more than the buffer limit behind; the request was killed.
    Overflow(usize),
}

/// One stream's queue, filled by the connection's reader and drained by the consumer. The
/// reader wakes the consumer once per read (not once per record), so a burst of items costs
/// one wake-up.
#[derive(Default)]
struct Queue {
    events: VecDeque<Event>,
    bytes: usize,
    waker: Option<Waker>,
    closed: bool,
}

type SharedQueue = Arc<Mutex<Queue>>;

/// Consumers to wake once the reader has handled everything it read.
pub(crate) type Wakeups = Vec<Waker>;

/// The inline streams of one connection.
pub(crate) struct InlineRegistry {
    slots: Mutex<Slots>,
    next_id: AtomicU32,
    buffer_limit: usize,
}

#[derive(Default)]
struct Slots {
    open: HashMap<u32, SharedQueue>,
    killed: VecDeque<u32>,
    closed: bool,
}

impl Slots {
    /// Remembers that `id` was killed; `false` if it already was.
    fn remember_killed(&mut self, id: u32) -> bool {
        if self.killed.contains(&id) {
            return false;
        }
        if self.killed.len() == KILLED_MEMORY {
            self.killed.pop_front();
        }
        self.killed.push_back(id);
        true
    }
}

impl InlineRegistry {
    pub(crate) fn new(buffer_limit: usize) -> Self {
        Self {
            slots: Mutex::new(Slots::default()),
            next_id: AtomicU32::new(0),
            buffer_limit: buffer_limit.max(1),
        }
    }

    /// A fresh stream slot on `conn` (which owns this registry).
    pub(crate) fn open(&self, conn: Arc<Connection>) -> InlineReceiver {
        let queue = SharedQueue::new(Mutex::new(Queue {
            events: VecDeque::with_capacity(QUEUE_CAPACITY),
            ..Queue::default()
        }));
        let mut slots = self.slots.lock();
        let id = loop {
            let id = self.next_id.fetch_add(1, Ordering::Relaxed);
            if !slots.open.contains_key(&id) {
                break id;
            }
        };
        if slots.closed {
            queue.lock().closed = true;
        } else {
            slots.open.insert(id, Arc::clone(&queue));
        }
        InlineReceiver {
            id: StreamId(id),
            queue,
            conn,
            started: false,
            finished: false,
        }
    }

    /// Queues one record for its stream (called by the connection's reader only); the
    /// consumer's waker goes to `wake`.
    pub(crate) fn deliver(&self, conn: &Connection, frame: InlineFrame, wake: &mut Wakeups) {
        let InlineFrame { stream, message } = frame;
        let size = message.header.len() + message.body.len();
        let mut slots = self.slots.lock();
        let Some(queue) = slots.open.get(&stream.0) else {
            // The consumer left before this stream ended: stop the worker, once.
            let is_sentinel = message.header.as_ref() == ControlMessage::Sentinel.header();
            if !is_sentinel && slots.remember_killed(stream.0) {
                drop(slots);
                conn.send_control(InlineControl {
                    stream,
                    message: ControlMessage::Kill,
                });
            }
            return;
        };
        let mut queue = queue.lock();
        wake.extend(queue.waker.take());
        if queue.bytes + size <= self.buffer_limit {
            queue.bytes += size;
            queue.events.push_back(Event::Message(message));
            return;
        }
        queue.events.push_back(Event::Overflow(self.buffer_limit));
        queue.closed = true;
        drop(queue);
        slots.open.remove(&stream.0);
        slots.remember_killed(stream.0);
        drop(slots);
        conn.send_control(InlineControl {
            stream,
            message: ControlMessage::Kill,
        });
    }

    /// The connection is gone: every open stream ends (its consumer sees the queue close).
    pub(crate) fn close(&self) {
        let mut slots = self.slots.lock();
        slots.closed = true;
        for (_, queue) in slots.open.drain() {
            let waker = {
                let mut queue = queue.lock();
                queue.closed = true;
                queue.waker.take()
            };
            if let Some(waker) = waker {
                waker.wake();
            }
        }
    }

    /// Forgets stream `id` (its consumer is gone); later records for it are answered with
    /// a `kill`.
    pub(crate) fn release(&self, id: StreamId) {
        self.slots.lock().open.remove(&id.0);
    }
}

/// One inline stream's queue. Dropping it forgets the stream, sending a `kill` when the
/// worker had started it and not finished it.
pub(crate) struct InlineReceiver {
    id: StreamId,
    queue: SharedQueue,
    conn: Arc<Connection>,
    started: bool,
    finished: bool,
}

impl InlineReceiver {
    /// The id the request header carries.
    pub(crate) fn id(&self) -> StreamId {
        self.id
    }

    /// The next event; `None` once the connection closed.
    pub(crate) async fn recv(&mut self) -> Option<Event> {
        std::future::poll_fn(|cx| self.poll_recv(cx)).await
    }

    fn poll_recv(&mut self, cx: &mut TaskContext<'_>) -> Poll<Option<Event>> {
        let mut queue = self.queue.lock();
        match queue.events.pop_front() {
            Some(Event::Message(msg)) => {
                queue.bytes -= msg.header.len() + msg.body.len();
                self.started = true;
                Poll::Ready(Some(Event::Message(msg)))
            }
            Some(overflow) => {
                self.finished = true;
                Poll::Ready(Some(overflow))
            }
            None if queue.closed => {
                self.finished = true;
                Poll::Ready(None)
            }
            None => {
                match &queue.waker {
                    Some(waker) if waker.will_wake(cx.waker()) => {}
                    _ => queue.waker = Some(cx.waker().clone()),
                }
                Poll::Pending
            }
        }
    }

    /// The worker will send nothing more (sentinel or error prologue received).
    pub(crate) fn finish(&mut self) {
        self.finished = true;
    }

    /// Sends a control message for this stream; a `kill` also finishes it.
    fn control(&mut self, message: ControlMessage) {
        if self.finished {
            return;
        }
        if message == ControlMessage::Kill {
            self.finished = true;
        }
        self.conn.send_control(InlineControl {
            stream: self.id,
            message,
        });
    }
}

impl Drop for InlineReceiver {
    fn drop(&mut self) {
        self.conn.release_inline(self.id);
        if self.started {
            self.control(ControlMessage::Kill);
        }
    }
}

type Watch = Pin<Box<dyn Future<Output = ()> + Send>>;

/// The typed items of an inline stream whose prologue accepted the request; applies the same
/// end-of-stream rules as the call-home reader, and turns the context's stop/kill into
/// control frames whenever it is polled (and a kill when dropped early).
pub(crate) struct InlineItems<U> {
    rx: InlineReceiver,
    codec: Codec,
    context: Context,
    watch: Option<Watch>,
    complete: bool,
    ended: bool,
    _item: PhantomData<fn() -> U>,
}

impl<U> InlineItems<U> {
    pub(crate) fn new(rx: InlineReceiver, codec: Codec, context: Context) -> Self {
        let watched = context.clone();
        Self {
            rx,
            codec,
            context,
            watch: Some(Box::pin(async move { watched.stopped().await })),
            complete: false,
            ended: false,
            _item: PhantomData,
        }
    }

    /// Applies a stop or kill of the context; `true` when the stream must end (killed).
    fn poll_context(&mut self, cx: &mut TaskContext<'_>) -> bool {
        let Some(watch) = self.watch.as_mut() else {
            return false;
        };
        if watch.poll_unpin(cx).is_pending() {
            return false;
        }
        if self.context.is_killed() {
            self.watch = None;
            self.rx.control(ControlMessage::Kill);
            return true;
        }
        self.rx.control(ControlMessage::Stop);
        let watched = self.context.clone();
        let mut killed: Watch = Box::pin(async move { watched.killed().await });
        if killed.poll_unpin(cx).is_ready() {
            self.watch = None;
            self.rx.control(ControlMessage::Kill);
            return true;
        }
        self.watch = Some(killed);
        false
    }

    /// The end of the stream: an error unless it completed or was stopped.
    fn end(&mut self, detail: Option<&str>) -> Option<Result<U, StatorError>> {
        self.ended = true;
        if self.complete || self.context.is_stopped() {
            return None;
        }
        let message = detail.map_or_else(
            || STREAM_ENDED_EARLY.to_owned(),
            |d| format!("{STREAM_ENDED_EARLY}: {d}"),
        );
        Some(Err(StatorError::disconnected(message)))
    }
}

impl<U: DeserializeOwned> Stream for InlineItems<U> {
    type Item = Result<U, StatorError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.ended {
            return Poll::Ready(None);
        }
        if this.poll_context(cx) {
            this.ended = true;
            return Poll::Ready(None);
        }
        loop {
            let message = match std::task::ready!(this.rx.poll_recv(cx)) {
                Some(Event::Message(message)) => message,
                Some(Event::Overflow(limit)) => {
                    this.ended = true;
                    return Poll::Ready(Some(Err(StatorError::new(
                        ErrorClass::CapacityExhausted,
                        format!(
                            "response stream killed: its consumer fell more than {limit} bytes \
                             behind"
                        ),
                    ))));
                }
                None => {
                    return Poll::Ready(this.end(Some("connection closed")));
                }
            };
            match interpret::<U>(this.codec, &message.header, &message.body, this.complete) {
                Ok(Step::Item(item, last)) => {
                    this.complete |= last;
                    return Poll::Ready(Some(Ok(item)));
                }
                Ok(Step::Final) => this.complete = true,
                Ok(Step::Ignore) => {}
                Ok(Step::End) => {
                    this.rx.finish();
                    return Poll::Ready(this.end(None));
                }
                Err(err) => {
                    this.ended = true;
                    this.rx.control(ControlMessage::Kill);
                    return Poll::Ready(Some(Err(err)));
                }
            }
        }
    }
}
