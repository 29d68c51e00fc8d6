//! Engines and request contexts: the one trait every stage of a pipeline implements.
//!
//! An engine turns a [`Request`] (data plus its [`Context`]) into a response, usually a
//! [`ResponseStream`] that carries the same context back. The context is how a caller stops
//! (`stop_generating`, graceful) or kills (hard) a request; linked child contexts (sub-requests,
//! retries) follow their parent.

mod context;
mod stream;

pub use context::Context;
pub use stream::ResponseStream;

use std::sync::Arc;

use async_trait::async_trait;

use crate::error::StatorError;

/// A request travelling through a pipeline: the data and its context.
#[derive(Debug, Clone)]
pub struct Request<T> {
    /// The request payload.
    pub data: T,
    /// The request's context (id, stop, kill).
    pub context: Context,
}

impl<T> Request<T> {
    /// Wraps `data` in a fresh context with a random id.
    pub fn new(data: T) -> Self {
        Self {
            data,
            context: Context::new(),
        }
    }

    /// Wraps `data` in an existing context.
    pub fn with_context(data: T, context: Context) -> Self {
        Self { data, context }
    }

    /// Replaces the data, keeping the context.
    pub fn map<U>(self, f: impl FnOnce(T) -> U) -> Request<U> {
        Request {
            data: f(self.data),
            context: self.context,
        }
    }

    /// Splits into data and context.
    pub fn into_parts(self) -> (T, Context) {
        (self.data, self.context)
    }
}

/// An engine: anything that answers a request asynchronously.
#[async_trait]
pub trait AsyncEngine<Req, Resp>: Send + Sync
where
    Req: Send + 'static,
    Resp: Send + 'static,
{
    /// Starts answering `request`. An error here is a pre-stream failure (the prologue error
    /// on the wire); failures after the first item travel inside the response.
    async fn generate(&self, request: Req) -> Result<Resp, StatorError>;
}

/// A shareable, type-erased streaming engine: `Request<Req>` in, [`ResponseStream`] out.
pub type StreamingEngine<Req, Resp> = Arc<dyn AsyncEngine<Request<Req>, ResponseStream<Resp>>>;
