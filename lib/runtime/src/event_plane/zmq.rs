//! ZMQ direct mode: a PUB socket per publisher, SUB sockets that follow discovery.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use zeromq::{PubSocket, Socket, SocketRecv, SocketSend, SubSocket, ZmqMessage};

use super::{EventEnvelope, EventPlaneError, SubscriberStats};
use crate::discovery::{
    Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, EventTransport, RecordId,
};

/// Environment variable naming the host advertised in event-channel records.
pub const ENV_EVENT_PLANE_HOST: &str = "DYN_EVENT_PLANE_HOST";
/// Messages a publisher queues before `publish` waits.
const PUBLISH_QUEUE: usize = 1024;
/// Delay between attempts to connect to a publisher that is not reachable yet.
const CONNECT_RETRY: Duration = Duration::from_millis(500);

/// Where ZMQ publishers bind and what address they advertise.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZmqConfig {
    /// Interface the PUB socket binds (port is always OS-assigned).
    pub bind_host: String,
    /// Host written into the event-channel record.
    pub advertise_host: String,
}

impl ZmqConfig {
    /// Binds and advertises `127.0.0.1` (tests, single machine).
    pub fn loopback() -> Self {
        Self {
            bind_host: "127.0.0.1".into(),
            advertise_host: "127.0.0.1".into(),
        }
    }

    /// Dynamo's behaviour: bind `0.0.0.0`, advertise `DYN_EVENT_PLANE_HOST`, else this
    /// machine's outbound IP, else `127.0.0.1`.
    pub fn from_env() -> Self {
        let advertise_host = std::env::var(ENV_EVENT_PLANE_HOST)
            .ok()
            .filter(|h| !h.is_empty())
            .or_else(|| crate::net::outbound_ip().map(|ip| ip.to_string()))
            .unwrap_or_else(|| "127.0.0.1".into());
        Self {
            bind_host: "0.0.0.0".into(),
            advertise_host,
        }
    }
}

/// A bound PUB socket, owned by a task that sends what it is given.
pub(crate) struct ZmqSink {
    pub(crate) tx: mpsc::Sender<[Bytes; 4]>,
    pub(crate) endpoint: String,
    cancel: CancellationToken,
}

impl Drop for ZmqSink {
    fn drop(&mut self) {
        self.cancel.cancel();
    }
}

/// Binds a PUB socket on an ephemeral port and starts its sender task.
pub(crate) async fn bind_publisher(config: &ZmqConfig) -> Result<ZmqSink, EventPlaneError> {
    let mut socket = PubSocket::new();
    let bound = socket
        .bind(&format!("tcp://{}:0", config.bind_host))
        .await
        .map_err(|e| EventPlaneError::Transport(format!("cannot bind ZMQ PUB socket: {e}")))?;
    let zeromq::Endpoint::Tcp(_, port) = bound else {
        return Err(EventPlaneError::Transport(format!(
            "unexpected bound endpoint {bound}"
        )));
    };
    let endpoint = format!("tcp://{}:{port}", config.advertise_host);
    let (tx, mut rx) = mpsc::channel::<[Bytes; 4]>(PUBLISH_QUEUE);
    let cancel = CancellationToken::new();
    let stop = cancel.clone();
    tokio::spawn(async move {
        loop {
            let parts = tokio::select! {
                () = stop.cancelled() => break,
                parts = rx.recv() => match parts { Some(p) => p, None => break },
            };
            let message = match ZmqMessage::try_from(Vec::from(parts)) {
                Ok(m) => m,
                Err(e) => {
                    tracing::warn!(error = %e, "event plane: cannot build ZMQ message");
                    continue;
                }
            };
            if let Err(e) = socket.send(message).await {
                tracing::warn!(error = %e, "event plane: ZMQ send failed");
            }
        }
    });
    Ok(ZmqSink {
        tx,
        endpoint,
        cancel,
    })
}

/// Follows the event channels matching `query` and feeds their events into `tx`.
pub(crate) async fn follow_channels(
    discovery: Arc<dyn Discovery>,
    query: DiscoveryQuery,
    tx: mpsc::Sender<EventEnvelope>,
    stats: Arc<SubscriberStats>,
    cancel: CancellationToken,
) -> Result<(), EventPlaneError> {
    let mut watch = discovery.watch(&query).await?;
    tokio::spawn(async move {
        let mut connections: HashMap<RecordId, (String, CancellationToken)> = HashMap::new();
        let connect = |connections: &mut HashMap<RecordId, (String, CancellationToken)>,
                       record: &DiscoveryRecord| {
            let DiscoveryRecord::EventChannel(channel) = record else {
                return;
            };
            let EventTransport::Zmq { endpoint } = &channel.transport else {
                tracing::debug!(?channel.transport, "event plane: skipping non-ZMQ channel");
                return;
            };
            let id = record.id();
            if connections.get(&id).is_some_and(|(ep, _)| ep == endpoint) {
                return;
            }
            let token = cancel.child_token();
            if let Some((_, old)) = connections.insert(id, (endpoint.clone(), token.clone())) {
                old.cancel();
            }
            tokio::spawn(pump(endpoint.clone(), tx.clone(), stats.clone(), token));
        };
        loop {
            let event = tokio::select! {
                () = cancel.cancelled() => break,
                event = watch.next() => match event { Some(e) => e, None => break },
            };
            match event {
                DiscoveryEvent::Added(record) => connect(&mut connections, &record),
                DiscoveryEvent::Removed(id) => {
                    if let Some((_, token)) = connections.remove(&id) {
                        token.cancel();
                    }
                }
                DiscoveryEvent::Resync(records) => {
                    let live: HashSet<RecordId> = records.iter().map(DiscoveryRecord::id).collect();
                    connections.retain(|id, (_, token)| {
                        let keep = live.contains(id);
                        if !keep {
                            token.cancel();
                        }
                        keep
                    });
                    for record in &records {
                        connect(&mut connections, record);
                    }
                }
            }
        }
        for (_, token) in connections.into_values() {
            token.cancel();
        }
    });
    Ok(())
}

/// Receives from one publisher until cancelled or the consumer goes away.
async fn pump(
    endpoint: String,
    tx: mpsc::Sender<EventEnvelope>,
    stats: Arc<SubscriberStats>,
    cancel: CancellationToken,
) {
    let mut socket = SubSocket::new();
    loop {
        let connected = tokio::select! {
            () = cancel.cancelled() => return,
            r = socket.connect(&endpoint) => r,
        };
        match connected {
            Ok(()) => break,
            Err(e) => {
                tracing::debug!(%endpoint, error = %e, "event plane: publisher not reachable yet");
                tokio::select! {
                    () = cancel.cancelled() => return,
                    () = tokio::time::sleep(CONNECT_RETRY) => {}
                }
            }
        }
    }
    if let Err(e) = socket.subscribe("").await {
        tracing::warn!(%endpoint, error = %e, "event plane: cannot subscribe");
        return;
    }
    tracing::debug!(%endpoint, "event plane: subscribed");
    loop {
        let message = tokio::select! {
            () = cancel.cancelled() => return,
            m = socket.recv() => m,
        };
        let message = match message {
            Ok(m) => m,
            Err(e) => {
                tracing::warn!(%endpoint, error = %e, "event plane: receive failed");
                return;
            }
        };
        match EventEnvelope::from_multipart(&message.into_vec()) {
            Ok(envelope) => {
                if tx.send(envelope).await.is_err() {
                    return;
                }
            }
            Err(e) => {
                stats.decode_error();
                tracing::warn!(%endpoint, error = %e, "event plane: dropping undecodable message");
            }
        }
    }
}
