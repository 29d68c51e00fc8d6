//! NATS request plane: request-reply on the instance subject carrying the same two-part
//! message as TCP; the reply is the ack text, responses still come over the call-home stream.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use dashmap::DashMap;
use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use super::config::RequestPlaneConfig;
use super::dispatch::Dispatcher;
use super::handler::{IncomingRequest, RequestHandler};
use crate::error::StatorError;
use crate::event_plane::NatsConfig;
use crate::wire::Ack;

/// Connects to NATS; the client reconnects by itself afterwards.
pub(crate) async fn connect(config: &NatsConfig) -> Result<async_nats::Client, StatorError> {
    config
        .connect()
        .await
        .map_err(|e| StatorError::cannot_connect(e.to_string()))
}

/// A worker process's NATS side: one subscription per served endpoint instance.
pub struct NatsRequestServer {
    client: async_nats::Client,
    dispatch: Arc<Dispatcher>,
    subscriptions: DashMap<String, CancellationToken>,
}

impl NatsRequestServer {
    /// Connects to the servers of `config.nats`; admission as `config` sets it.
    pub async fn connect(config: &RequestPlaneConfig) -> Result<Self, StatorError> {
        let client = connect(&config.nats).await?;
        Ok(Self::with_client(client, config))
    }

    /// Serves over an existing connection.
    pub fn with_client(client: async_nats::Client, config: &RequestPlaneConfig) -> Self {
        Self {
            client,
            dispatch: Dispatcher::new(config.worker_pool_size, config.work_queue_size),
            subscriptions: DashMap::new(),
        }
    }

    /// Subscribes to `subject` and routes its requests to `handler`. Returns once the server
    /// knows the subscription, so a record published afterwards is immediately reachable.
    pub async fn register(
        &self,
        subject: &str,
        handler: Arc<dyn RequestHandler>,
    ) -> Result<(), StatorError> {
        let mut subscription = self
            .client
            .subscribe(subject.to_owned())
            .await
            .map_err(|e| StatorError::unavailable(format!("NATS subscribe to {subject}: {e}")))?;
        self.client
            .flush()
            .await
            .map_err(|e| StatorError::unavailable(format!("NATS flush: {e}")))?;
        self.dispatch.register(subject.to_owned(), handler);
        let stop = self.dispatch.cancelled().child_token();
        if let Some(previous) = self.subscriptions.insert(subject.to_owned(), stop.clone()) {
            previous.cancel();
        }
        let client = self.client.clone();
        let dispatch = Arc::clone(&self.dispatch);
        let subject = subject.to_owned();
        tokio::spawn(async move {
            loop {
                let message = tokio::select! {
                    () = stop.cancelled() => break,
                    m = subscription.next() => match m { Some(m) => m, None => break },
                };
                let ack = dispatch.admit(&subject, IncomingRequest::new(message.payload));
                let Some(reply) = message.reply else {
                    tracing::debug!(%subject, "NATS request without a reply subject");
                    continue;
                };
                if let Err(e) = client
                    .publish(reply, Bytes::from(ack.text().to_owned()))
                    .await
                {
                    tracing::warn!(%subject, error = %e, "cannot send the NATS ack");
                }
            }
            let _ = subscription.unsubscribe().await;
        });
        Ok(())
    }

    /// Stops serving `subject`: requests already admitted finish, new ones find no responder.
    pub fn unregister(&self, subject: &str) {
        self.dispatch.unregister(subject);
        if let Some((_, stop)) = self.subscriptions.remove(subject) {
            stop.cancel();
        }
    }

    /// Requests currently running or queued.
    pub fn inflight(&self) -> usize {
        self.dispatch.inflight()
    }

    /// Requests waiting in the overflow queue.
    pub fn queue_depth(&self) -> usize {
        self.dispatch.queue_depth()
    }

    /// Stops receiving, then waits up to `timeout` for in-flight requests to finish.
    pub async fn shutdown(&self, timeout: Duration) -> bool {
        self.dispatch.shutdown(timeout).await
    }
}

impl Drop for NatsRequestServer {
    fn drop(&mut self) {
        self.dispatch.cancelled().cancel();
    }
}

/// Sends one request (two-part `payload`) to `subject` and returns the worker's ack.
pub(crate) async fn request(
    client: &async_nats::Client,
    subject: &str,
    headers: &BTreeMap<String, String>,
    payload: Bytes,
    ack_timeout: Duration,
) -> Result<Ack, StatorError> {
    let max_payload = client.server_info().max_payload;
    if payload.len() > max_payload {
        return Err(StatorError::invalid_request(format!(
            "Request payload is too large: {} bytes exceeds the NATS server's max_payload of \
             {max_payload} bytes",
            payload.len()
        )));
    }
    let mut map = async_nats::HeaderMap::new();
    for (name, value) in headers {
        map.insert(name.as_str(), value.as_str());
    }
    let reply = tokio::time::timeout(
        ack_timeout,
        client.request_with_headers(subject.to_owned(), map, payload),
    )
    .await
    .map_err(|_| StatorError::connection_timeout(format!("no ack within {ack_timeout:?}")))?
    .map_err(|e| match e.kind() {
        async_nats::RequestErrorKind::NoResponders => {
            StatorError::worker_unavailable(format!("no NATS responder on {subject}"))
        }
        async_nats::RequestErrorKind::TimedOut => {
            StatorError::connection_timeout(format!("no ack on {subject}: {e}"))
        }
        async_nats::RequestErrorKind::MaxPayloadExceeded => StatorError::invalid_request(format!(
            "Request payload is too large for the NATS server: {e}"
        )),
        async_nats::RequestErrorKind::InvalidSubject => {
            StatorError::invalid_request(format!("invalid NATS subject {subject:?}: {e}"))
        }
        async_nats::RequestErrorKind::Other => {
            StatorError::disconnected(format!("NATS request to {subject} failed: {e}"))
        }
    })?;
    Ok(Ack::from_text(
        String::from_utf8_lossy(&reply.payload).into_owned(),
    ))
}
