//! Process and endpoint readiness, as reported by `/health` and `/live`.

use std::collections::BTreeMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use parking_lot::RwLock;
use serde::Serialize;

/// Readiness of the process or of one endpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Readiness {
    /// Serving.
    #[serde(rename = "ready")]
    Ready,
    /// Not (yet, or no longer) serving.
    #[serde(rename = "notready")]
    NotReady,
}

impl From<bool> for Readiness {
    fn from(ready: bool) -> Self {
        if ready { Self::Ready } else { Self::NotReady }
    }
}

/// Time since the process started, in Dynamo's `{"secs", "nanos"}` shape.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct Uptime {
    /// Whole seconds.
    pub secs: u64,
    /// Remaining nanoseconds.
    pub nanos: u32,
}

/// The body of `/health` and `/live`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct HealthReport {
    /// Overall readiness.
    pub status: Readiness,
    /// Process uptime.
    pub uptime: Uptime,
    /// Readiness per registered endpoint.
    pub endpoints: BTreeMap<String, Readiness>,
}

struct Inner {
    started: Instant,
    process_ready: AtomicBool,
    endpoints: RwLock<BTreeMap<String, bool>>,
    required_endpoints: Vec<String>,
}

/// Shared, cheaply cloned health state the runtime updates and the status server reads.
///
/// Ready means: every endpoint in `required_endpoints` is ready when that list is non-empty
/// (`DYN_SYSTEM_USE_ENDPOINT_HEALTH_STATUS`), otherwise the process status set by
/// [`HealthState::set_ready`] (initially `DYN_SYSTEM_STARTING_HEALTH_STATUS`).
#[derive(Clone)]
pub struct HealthState {
    inner: Arc<Inner>,
}

impl HealthState {
    /// A health state whose process status starts as `starting_ready`.
    pub fn new(starting_ready: bool, required_endpoints: Vec<String>) -> Self {
        Self {
            inner: Arc::new(Inner {
                started: Instant::now(),
                process_ready: AtomicBool::new(starting_ready),
                endpoints: RwLock::new(BTreeMap::new()),
                required_endpoints,
            }),
        }
    }

    /// Sets the process status (the engine marks itself ready once loaded).
    pub fn set_ready(&self, ready: bool) {
        self.inner.process_ready.store(ready, Ordering::Release);
    }

    /// Records an endpoint's readiness (registers it on first use).
    pub fn set_endpoint(&self, endpoint: &str, ready: bool) {
        self.inner
            .endpoints
            .write()
            .insert(endpoint.to_owned(), ready);
    }

    /// Forgets an endpoint (it was unregistered).
    pub fn remove_endpoint(&self, endpoint: &str) {
        self.inner.endpoints.write().remove(endpoint);
    }

    /// Whether the process counts as ready.
    pub fn is_ready(&self) -> bool {
        if self.inner.required_endpoints.is_empty() {
            return self.inner.process_ready.load(Ordering::Acquire);
        }
        let endpoints = self.inner.endpoints.read();
        self.inner
            .required_endpoints
            .iter()
            .all(|name| endpoints.get(name).copied().unwrap_or(false))
    }

    /// The current report.
    pub fn report(&self) -> HealthReport {
        let uptime = self.inner.started.elapsed();
        HealthReport {
            status: self.is_ready().into(),
            uptime: Uptime {
                secs: uptime.as_secs(),
                nanos: uptime.subsec_nanos(),
            },
            endpoints: self
                .inner
                .endpoints
                .read()
                .iter()
                .map(|(name, ready)| (name.clone(), (*ready).into()))
                .collect(),
        }
    }
}

impl Default for HealthState {
    /// Not ready until the runtime says so; no required endpoints.
    fn default() -> Self {
        Self::new(false, Vec::new())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_status_drives_readiness_by_default() {
        let h = HealthState::default();
        assert!(!h.is_ready());
        h.set_endpoint("generate", true);
        assert!(!h.is_ready());
        h.set_ready(true);
        assert!(h.is_ready());
        let json = serde_json::to_value(h.report()).unwrap();
        assert_eq!(json["status"], "ready");
        assert_eq!(json["endpoints"]["generate"], "ready");
        assert!(json["uptime"]["secs"].is_u64() && json["uptime"]["nanos"].is_u64());
    }

    #[test]
    fn required_endpoints_override_process_status() {
        let h = HealthState::new(true, vec!["generate".into()]);
        assert!(!h.is_ready(), "required endpoint not registered yet");
        h.set_endpoint("generate", true);
        assert!(h.is_ready());
        h.set_endpoint("generate", false);
        assert_eq!(h.report().status, Readiness::NotReady);
        h.remove_endpoint("generate");
        assert!(h.report().endpoints.is_empty());
    }
}
