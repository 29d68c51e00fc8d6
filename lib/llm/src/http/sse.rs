//! The SSE response body: choice events → chunk frames, coalescing what is ready at once.

use std::convert::Infallible;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use axum::body::Body;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::Response;
use bytes::Bytes;
use futures::{Stream, StreamExt};
use stator_protocols::sse::DONE;

use super::metrics::RequestTracker;
use super::responses::{Shape, UsageTotals};
use crate::pipeline::{ChoiceEvent, ChoiceStream};

/// Frames written before the body hands a buffer to hyper even if more events are ready.
const FLUSH_BYTES: usize = 16 * 1024;
/// Smallest buffer a poll starts with (about one chunk frame).
const MIN_BUFFER: usize = 512;

/// Records an event's tokens and usage.
pub(crate) fn record(event: &ChoiceEvent, tracker: &mut RequestTracker, usage: &mut UsageTotals) {
    match event {
        ChoiceEvent::Delta { tokens, .. } => tracker.tokens(*tokens),
        ChoiceEvent::Finish(finish) => {
            usage.add(finish);
            if let Some(cached) = finish.cached_tokens {
                tracker.cached(cached);
            }
        }
    }
}

/// The body of a streaming answer. Dropped before its end means the client went away; the
/// tracker then kills the request.
struct SseBody<S> {
    events: ChoiceStream,
    shape: S,
    tracker: RequestTracker,
    usage: UsageTotals,
    done: bool,
    /// Capacity of the next poll's buffer: the size the previous poll wrote, so a burst of
    /// chunks is written without regrowing (and recopying) the buffer.
    capacity: usize,
}

impl<S: Shape> Stream for SseBody<S> {
    type Item = Result<Bytes, Infallible>;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<Self::Item>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        let mut out = Vec::with_capacity(this.capacity);
        loop {
            match this.events.poll_next_unpin(cx) {
                Poll::Ready(Some(Ok(event))) => {
                    record(&event, &mut this.tracker, &mut this.usage);
                    this.shape.stream_event(&event, &mut out);
                    if out.len() >= FLUSH_BYTES {
                        this.capacity = out.len() + MIN_BUFFER;
                        return Poll::Ready(Some(Ok(out.into())));
                    }
                }
                Poll::Ready(Some(Err(e))) => {
                    tracing::warn!(error = %e, "request failed mid-stream");
                    this.tracker.failure(e.metric_error_type());
                    out.extend_from_slice(b"data: ");
                    out.extend_from_slice(e.to_stream_error().to_json().as_bytes());
                    out.extend_from_slice(b"\n\n");
                    out.extend_from_slice(DONE.as_bytes());
                    this.done = true;
                    return Poll::Ready(Some(Ok(out.into())));
                }
                Poll::Ready(None) => {
                    this.shape.stream_end(&this.usage, &mut out);
                    out.extend_from_slice(DONE.as_bytes());
                    this.tracker.success();
                    this.done = true;
                    return Poll::Ready(Some(Ok(out.into())));
                }
                Poll::Pending if out.is_empty() => return Poll::Pending,
                Poll::Pending => {
                    this.capacity = out.len().max(MIN_BUFFER);
                    return Poll::Ready(Some(Ok(out.into())));
                }
            }
        }
    }
}

/// A `text/event-stream` response streaming `events` in `shape`.
pub(crate) fn stream_response<S: Shape>(
    events: ChoiceStream,
    shape: S,
    tracker: RequestTracker,
) -> Response {
    let body = SseBody {
        events,
        shape,
        tracker,
        usage: UsageTotals::default(),
        done: false,
        capacity: MIN_BUFFER,
    };
    let mut response = Response::new(Body::from_stream(body));
    *response.status_mut() = StatusCode::OK;
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    response
}
