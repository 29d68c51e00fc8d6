//! Discovery queries: which records a `list` or `watch` selects.

use super::key::{Bucket, encode_event_segment, scope_path};
use super::records::{DiscoveryRecord, EventScope};
use crate::names::EndpointId;

/// Filter over event channels or sources: an exact scope and/or a topic.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct EventQuery {
    /// Exact scope; `None` selects every scope.
    pub scope: Option<EventScope>,
    /// Topic; `None` selects every topic.
    pub topic: Option<String>,
}

impl EventQuery {
    /// Channels of `topic` in exactly `scope`.
    pub fn scoped(scope: EventScope, topic: impl Into<String>) -> Self {
        Self {
            scope: Some(scope),
            topic: Some(topic.into()),
        }
    }

    fn matches(&self, scope: &EventScope, topic: &str) -> bool {
        self.scope.as_ref().is_none_or(|s| s == scope)
            && self.topic.as_deref().is_none_or(|t| t == topic)
    }

    fn key_prefix(&self) -> String {
        match (&self.scope, &self.topic) {
            (None, _) => String::new(),
            (Some(scope), None) => format!("{}/topic/", scope_path(scope)),
            (Some(scope), Some(topic)) => format!(
                "{}/topic/{}/",
                scope_path(scope),
                encode_event_segment(topic)
            ),
        }
    }
}

/// Which records to list or watch.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DiscoveryQuery {
    /// Every endpoint instance.
    AllEndpoints,
    /// Endpoint instances in a namespace.
    NamespacedEndpoints {
        /// Namespace name.
        namespace: String,
    },
    /// Endpoint instances of a component.
    ComponentEndpoints {
        /// Namespace name.
        namespace: String,
        /// Component name.
        component: String,
    },
    /// Instances of one endpoint.
    Endpoint(EndpointId),
    /// Every model card.
    AllModels,
    /// Model cards in a namespace.
    NamespacedModels {
        /// Namespace name.
        namespace: String,
    },
    /// Model cards of a component.
    ComponentModels {
        /// Namespace name.
        namespace: String,
        /// Component name.
        component: String,
    },
    /// Model cards of one endpoint.
    EndpointModels(EndpointId),
    /// Event channels.
    EventChannels(EventQuery),
    /// Event sources.
    EventSources(EventQuery),
}

impl DiscoveryQuery {
    /// The bucket the query reads.
    pub fn bucket(&self) -> Bucket {
        match self {
            Self::AllEndpoints
            | Self::NamespacedEndpoints { .. }
            | Self::ComponentEndpoints { .. }
            | Self::Endpoint(_) => Bucket::Instances,
            Self::AllModels
            | Self::NamespacedModels { .. }
            | Self::ComponentModels { .. }
            | Self::EndpointModels(_) => Bucket::Mdc,
            Self::EventChannels(_) => Bucket::EventChannels,
            Self::EventSources(_) => Bucket::EventSources,
        }
    }

    /// The key prefix (relative to the bucket) every match starts with, for prefix scans.
    pub fn key_prefix(&self) -> String {
        match self {
            Self::AllEndpoints | Self::AllModels => String::new(),
            Self::NamespacedEndpoints { namespace } | Self::NamespacedModels { namespace } => {
                format!("{namespace}/")
            }
            Self::ComponentEndpoints {
                namespace,
                component,
            }
            | Self::ComponentModels {
                namespace,
                component,
            } => format!("{namespace}/{component}/"),
            Self::Endpoint(ep) | Self::EndpointModels(ep) => format!("{ep}/"),
            Self::EventChannels(q) | Self::EventSources(q) => q.key_prefix(),
        }
    }

    /// Whether `record` is selected by this query.
    pub fn matches(&self, record: &DiscoveryRecord) -> bool {
        let endpoint_filter = |ns: &str, comp: &str, ep: &str| match self {
            Self::AllEndpoints | Self::AllModels => true,
            Self::NamespacedEndpoints { namespace } | Self::NamespacedModels { namespace } => {
                namespace == ns
            }
            Self::ComponentEndpoints {
                namespace,
                component,
            }
            | Self::ComponentModels {
                namespace,
                component,
            } => namespace == ns && component == comp,
            Self::Endpoint(id) | Self::EndpointModels(id) => {
                id.namespace == ns && id.component == comp && id.name == ep
            }
            Self::EventChannels(_) | Self::EventSources(_) => false,
        };
        if record.bucket() != self.bucket() {
            return false;
        }
        match (self, record) {
            (_, DiscoveryRecord::Endpoint(i)) => {
                endpoint_filter(&i.namespace, &i.component, &i.endpoint)
            }
            (_, DiscoveryRecord::Model(m)) => {
                endpoint_filter(&m.namespace, &m.component, &m.endpoint)
            }
            (Self::EventChannels(q), DiscoveryRecord::EventChannel(c)) => {
                q.matches(&c.scope, &c.topic)
            }
            (Self::EventSources(q), DiscoveryRecord::EventSource(s)) => {
                q.matches(&s.scope, &s.topic)
            }
            _ => false,
        }
    }
}
