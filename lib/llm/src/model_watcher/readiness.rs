//! Serving readiness: a model is ready when some namespace holds every worker type that the
//! `needs` of its present worker types require (the `/v1/models/{id}/ready` body).

use std::collections::BTreeMap;

use serde::Serialize;

use super::ModelRegistry;
use crate::model_card::WorkerType;

/// The readiness of one model, serialized as Dynamo's `/v1/models/{id}/ready` body.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct ModelReadiness {
    /// The model name.
    pub model: String,
    /// Whether some namespace is ready.
    pub ready: bool,
    /// Per-namespace detail.
    pub namespaces: BTreeMap<String, NamespaceReadiness>,
}

/// The readiness of a model within one namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct NamespaceReadiness {
    /// Whether every present worker type has its needs met (and one is present).
    pub ready: bool,
    /// Present worker types with their worker counts and needs.
    pub worker_types: BTreeMap<WorkerType, WorkerTypeReadiness>,
    /// The present worker types.
    pub present: Vec<WorkerType>,
    /// Worker types some present type needs but that are absent.
    pub missing_worker_types: Vec<WorkerType>,
}

/// The workers of one type in a namespace.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct WorkerTypeReadiness {
    /// Number of worker instances.
    pub workers: usize,
    /// Their needs, in disjunctive normal form.
    pub needs: Vec<Vec<WorkerType>>,
}

impl ModelRegistry {
    /// The readiness of `model`, or `None` if no worker set serves it.
    ///
    /// A namespace is ready when it has at least one typed worker and, for every present
    /// worker type, one clause of its `needs` is fully present. Cards without a worker type
    /// count for nothing (misconfigured workers never make a model ready).
    pub fn readiness(&self, model: &str) -> Option<ModelReadiness> {
        let mut namespaces: BTreeMap<String, NamespaceReadiness> = BTreeMap::new();
        for (key, set) in self.sets_of(model) {
            let namespace =
                namespaces
                    .entry(key.namespace.clone())
                    .or_insert_with(|| NamespaceReadiness {
                        ready: false,
                        worker_types: BTreeMap::new(),
                        present: Vec::new(),
                        missing_worker_types: Vec::new(),
                    });
            let Some(worker_type) = key.worker_type else {
                continue;
            };
            let entry = namespace
                .worker_types
                .entry(worker_type)
                .or_insert_with(|| WorkerTypeReadiness {
                    workers: 0,
                    needs: set.card.needs.clone(),
                });
            entry.workers += set.instances.len();
        }
        if namespaces.is_empty() {
            return None;
        }
        for namespace in namespaces.values_mut() {
            namespace.present = namespace.worker_types.keys().copied().collect();
            let mut missing = Vec::new();
            for readiness in namespace.worker_types.values() {
                missing.extend(missing_for(&readiness.needs, &namespace.present));
            }
            missing.sort_unstable();
            missing.dedup();
            namespace.ready = !namespace.present.is_empty() && missing.is_empty();
            namespace.missing_worker_types = missing;
        }
        Some(ModelReadiness {
            model: model.to_owned(),
            ready: namespaces.values().any(|n| n.ready),
            namespaces,
        })
    }
}

/// The types absent for `needs` (empty when a clause is satisfied): those of the clause
/// closest to being met.
fn missing_for(needs: &[Vec<WorkerType>], present: &[WorkerType]) -> Vec<WorkerType> {
    if needs.is_empty() {
        return Vec::new();
    }
    needs
        .iter()
        .map(|clause| {
            clause
                .iter()
                .filter(|t| !present.contains(t))
                .copied()
                .collect::<Vec<_>>()
        })
        .min_by_key(Vec::len)
        .unwrap_or_default()
}
