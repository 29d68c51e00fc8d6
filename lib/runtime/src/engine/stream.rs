//! Response streams that carry their request's context.

use std::fmt;
use std::pin::Pin;
use std::task::{Context as TaskContext, Poll};

use futures::Stream;
use futures::stream::BoxStream;

use super::Context;
use crate::error::StatorError;

/// A stream of response items plus the context of the request that produced it.
pub struct ResponseStream<U> {
    items: BoxStream<'static, U>,
    context: Context,
}

impl<U> ResponseStream<U> {
    /// Wraps `items` with `context`.
    pub fn new(items: impl Stream<Item = U> + Send + 'static, context: Context) -> Self {
        Self {
            items: Box::pin(items),
            context,
        }
    }

    /// The request's context.
    pub fn context(&self) -> &Context {
        &self.context
    }

    /// Maps every item, keeping the context.
    pub fn map<V>(self, f: impl FnMut(U) -> V + Send + 'static) -> ResponseStream<V>
    where
        U: 'static,
    {
        use futures::StreamExt;
        ResponseStream {
            items: self.items.map(f).boxed(),
            context: self.context,
        }
    }
}

impl<U> ResponseStream<Result<U, StatorError>> {
    /// Collects every item, stopping at the first error.
    pub async fn try_collect_items(self) -> Result<Vec<U>, StatorError> {
        use futures::TryStreamExt;
        self.items.try_collect().await
    }
}

impl<U> Stream for ResponseStream<U> {
    type Item = U;

    fn poll_next(mut self: Pin<&mut Self>, cx: &mut TaskContext<'_>) -> Poll<Option<U>> {
        self.items.as_mut().poll_next(cx)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        self.items.size_hint()
    }
}

impl<U> fmt::Debug for ResponseStream<U> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseStream")
            .field("context", &self.context)
            .finish_non_exhaustive()
    }
}
