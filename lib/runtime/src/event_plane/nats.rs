//! NATS mode: core-NATS publish on the scope subject, subscribers on the same subject.
//!
//! Subject: `namespace.{ns}[.component.{comp}[.endpoint.{ep}]].{topic}`, every segment
//! %-encoded like event-channel keys (so `.`, `*` and `>` never reach NATS). The message
//! payload is the same 5-byte-header frame around the msgpack envelope that ZMQ carries.
//! Publishers register an event-channel record `{"kind":"Nats","config":{"subject_prefix":…}}`
//! as Dynamo does; subscribers need no discovery, they subscribe to the subject. The
//! `async-nats` client reconnects by itself (unbounded attempts, backoff up to 4 s) and
//! re-subscribes; events published while the server is away are lost, which subscribers
//! see as sequence gaps.

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures::StreamExt;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::{EventEnvelope, EventPlaneError, FRAME_VERSION, SubscriberStats};
use crate::discovery::{EventScope, encode_event_segment};

/// NATS server URL(s), comma-separated.
pub const ENV_NATS_SERVER: &str = "NATS_SERVER";
/// User name for NATS authentication (with [`ENV_NATS_AUTH_PASSWORD`]).
pub const ENV_NATS_AUTH_USERNAME: &str = "NATS_AUTH_USERNAME";
/// Password for NATS authentication.
pub const ENV_NATS_AUTH_PASSWORD: &str = "NATS_AUTH_PASSWORD";
/// Token for NATS authentication.
pub const ENV_NATS_AUTH_TOKEN: &str = "NATS_AUTH_TOKEN";
/// Server used when `NATS_SERVER` is unset.
pub const DEFAULT_NATS_SERVER: &str = "nats://localhost:4222";
/// Default bound on establishing the first connection.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// How a NATS client authenticates.
#[derive(Clone, PartialEq, Eq)]
pub enum NatsAuth {
    /// User name and password.
    UserPassword {
        /// User name.
        username: String,
        /// Password.
        password: String,
    },
    /// A bearer token.
    Token(String),
}

impl std::fmt::Debug for NatsAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::UserPassword { username, .. } => f
                .debug_struct("UserPassword")
                .field("username", username)
                .field("password", &"<redacted>")
                .finish(),
            Self::Token(_) => f.write_str("Token(<redacted>)"),
        }
    }
}

/// Where and how to connect to NATS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NatsConfig {
    /// Server URLs, e.g. `nats://10.0.0.5:4222`.
    pub servers: Vec<String>,
    /// Optional authentication.
    pub auth: Option<NatsAuth>,
    /// Bound on establishing the first connection.
    pub connect_timeout: Duration,
}

impl Default for NatsConfig {
    fn default() -> Self {
        Self::new(DEFAULT_NATS_SERVER)
    }
}

impl NatsConfig {
    /// Settings for one server URL.
    pub fn new(server: impl Into<String>) -> Self {
        Self {
            servers: vec![server.into()],
            auth: None,
            connect_timeout: DEFAULT_CONNECT_TIMEOUT,
        }
    }

    /// Defaults overridden by `NATS_SERVER` and `NATS_AUTH_USERNAME`/`PASSWORD` or
    /// `NATS_AUTH_TOKEN`.
    pub fn from_env() -> Self {
        Self::from_lookup(|key| std::env::var(key).ok())
    }

    /// Like [`NatsConfig::from_env`] over any variable lookup.
    pub fn from_lookup(lookup: impl Fn(&str) -> Option<String>) -> Self {
        let get = |key: &str| lookup(key).filter(|v| !v.trim().is_empty());
        let mut config = Self::default();
        if let Some(list) = get(ENV_NATS_SERVER) {
            let servers: Vec<String> = list
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .map(str::to_owned)
                .collect();
            if !servers.is_empty() {
                config.servers = servers;
            }
        }
        config.auth = match (
            get(ENV_NATS_AUTH_USERNAME),
            lookup(ENV_NATS_AUTH_PASSWORD),
            get(ENV_NATS_AUTH_TOKEN),
        ) {
            (Some(username), Some(password), _) => {
                Some(NatsAuth::UserPassword { username, password })
            }
            (_, _, Some(token)) => Some(NatsAuth::Token(token)),
            _ => None,
        };
        config
    }

    /// Settings from a binary's shared runtime flags (`--nats-server` / `NATS_SERVER`);
    /// authentication from the environment.
    pub fn from_runtime(runtime: &stator_config::RuntimeConfig) -> Self {
        let mut config = Self::from_env();
        if !runtime.nats_server.is_empty() {
            config.servers.clone_from(&runtime.nats_server);
        }
        config
    }

    /// Connects; the client then reconnects by itself for as long as it lives.
    pub async fn connect(&self) -> Result<async_nats::Client, EventPlaneError> {
        let mut options = async_nats::ConnectOptions::new()
            .connection_timeout(self.connect_timeout)
            .max_reconnects(None)
            .event_callback(|event| async move {
                tracing::info!(%event, "nats: connection event");
            });
        match &self.auth {
            Some(NatsAuth::UserPassword { username, password }) => {
                options = options.user_and_password(username.clone(), password.clone());
            }
            Some(NatsAuth::Token(token)) => options = options.token(token.clone()),
            None => {}
        }
        let addrs: Vec<async_nats::ServerAddr> = self
            .servers
            .iter()
            .map(|s| {
                s.parse()
                    .map_err(|e| EventPlaneError::Transport(format!("bad NATS server {s:?}: {e}")))
            })
            .collect::<Result<_, _>>()?;
        options
            .connect(addrs)
            .await
            .map_err(|e| EventPlaneError::Transport(format!("cannot connect to NATS: {e}")))
    }
}

/// The subject prefix of a scope: `namespace.{ns}[.component.{c}[.endpoint.{e}]]`.
pub fn scope_subject(scope: &EventScope) -> String {
    match scope {
        EventScope::Namespace { name } => format!("namespace.{}", encode_event_segment(name)),
        EventScope::Component {
            namespace,
            component,
        } => format!(
            "namespace.{}.component.{}",
            encode_event_segment(namespace),
            encode_event_segment(component)
        ),
        EventScope::Endpoint { endpoint } => format!(
            "namespace.{}.component.{}.endpoint.{}",
            encode_event_segment(&endpoint.namespace),
            encode_event_segment(&endpoint.component),
            encode_event_segment(&endpoint.name)
        ),
    }
}

/// The subject events of `topic` in `scope` are published on.
pub fn event_subject(scope: &EventScope, topic: &str) -> String {
    format!("{}.{}", scope_subject(scope), encode_event_segment(topic))
}

/// A publisher's NATS side: the client and its subject.
pub(crate) struct NatsSink {
    pub(crate) client: async_nats::Client,
    pub(crate) subject: String,
}

impl NatsSink {
    pub(crate) async fn send(&self, envelope: &EventEnvelope) -> Result<(), EventPlaneError> {
        let frame = Bytes::from(envelope.to_frame()?);
        self.client
            .publish(self.subject.clone(), frame)
            .await
            .map_err(|e| EventPlaneError::Transport(format!("NATS publish failed: {e}")))
    }
}

/// Decodes a NATS event message: a frame, or a bare msgpack envelope.
pub fn decode_message(payload: &[u8]) -> Result<EventEnvelope, EventPlaneError> {
    if payload.first() == Some(&FRAME_VERSION) {
        EventEnvelope::from_frame(payload)
    } else {
        EventEnvelope::decode(payload)
    }
}

/// Subscribes to `subject` and feeds decoded envelopes into `tx` until cancelled.
pub(crate) async fn follow_subject(
    client: async_nats::Client,
    subject: String,
    tx: mpsc::Sender<EventEnvelope>,
    stats: Arc<SubscriberStats>,
    cancel: CancellationToken,
) -> Result<(), EventPlaneError> {
    let mut subscription = client
        .subscribe(subject.clone())
        .await
        .map_err(|e| EventPlaneError::Transport(format!("NATS subscribe to {subject}: {e}")))?;
    tokio::spawn(async move {
        loop {
            let message = tokio::select! {
                () = cancel.cancelled() => break,
                m = subscription.next() => match m { Some(m) => m, None => break },
            };
            match decode_message(&message.payload) {
                Ok(envelope) => {
                    if tx.send(envelope).await.is_err() {
                        break;
                    }
                }
                Err(e) => {
                    stats.decode_error();
                    tracing::warn!(%subject, error = %e, "event plane: dropping undecodable NATS message");
                }
            }
        }
        // Best effort: the server forgets the interest when the client goes anyway.
        let _ = subscription.unsubscribe().await;
    });
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::collections::HashMap;

    use super::*;
    use crate::names::EndpointId;

    #[test]
    fn subjects_follow_the_scope() {
        let endpoint = EndpointId::new("dynamo", "backend", "generate").expect("valid names");
        assert_eq!(
            event_subject(&EventScope::Endpoint { endpoint }, "kv-events"),
            "namespace.dynamo.component.backend.endpoint.generate.kv-events"
        );
        let scope = EventScope::Namespace { name: "a.b".into() };
        assert_eq!(event_subject(&scope, "x>y"), "namespace.a%2Eb.x%3Ey");
    }

    #[test]
    fn reads_the_environment() {
        let vars: HashMap<&str, &str> = [
            ("NATS_SERVER", "nats://a:4222, nats://b:4222"),
            ("NATS_AUTH_TOKEN", "t0ken"),
        ]
        .into();
        let config = NatsConfig::from_lookup(|k| vars.get(k).map(|v| (*v).to_owned()));
        assert_eq!(config.servers, vec!["nats://a:4222", "nats://b:4222"]);
        assert_eq!(config.auth, Some(NatsAuth::Token("t0ken".into())));
        assert!(!format!("{config:?}").contains("t0ken"));
        assert_eq!(NatsConfig::from_lookup(|_| None), NatsConfig::default());
    }

    #[test]
    fn runtime_flags_name_the_servers() {
        let runtime = stator_config::RuntimeConfig {
            nats_server: vec!["nats://10.1.1.1:4222".to_owned()],
            ..Default::default()
        };
        assert_eq!(
            NatsConfig::from_runtime(&runtime).servers,
            runtime.nats_server
        );
    }
}
