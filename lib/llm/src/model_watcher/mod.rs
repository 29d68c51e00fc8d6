//! The frontend's view of published models: cards grouped into worker sets, readiness by
//! worker type and `needs`, and the changes a discovery watch implies. Pure state; the
//! runtime glue feeds it discovery events and acts on the returned [`RegistryChange`]s.

mod readiness;

use std::collections::{BTreeMap, BTreeSet};

use crate::model_card::{ModelDeploymentCard, WorkerType};

pub use readiness::{ModelReadiness, NamespaceReadiness, WorkerTypeReadiness};

/// Where a card was published: the endpoint and the publishing instance.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CardSource {
    /// Namespace of the endpoint.
    pub namespace: String,
    /// Component of the endpoint.
    pub component: String,
    /// Endpoint name.
    pub endpoint: String,
    /// The publishing process's instance id.
    pub instance_id: u64,
}

/// Identifies a worker set: workers of one model on one endpoint with one role and one card.
#[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct WorkerSetKey {
    /// The served model name.
    pub model: String,
    /// Namespace of the endpoint.
    pub namespace: String,
    /// Component of the endpoint.
    pub component: String,
    /// Endpoint name.
    pub endpoint: String,
    /// The workers' role (`None`: misconfigured card, never ready).
    pub worker_type: Option<WorkerType>,
    /// The card checksum ([`ModelDeploymentCard::mdc_sum`]).
    pub mdc_sum: String,
}

/// A worker set: the card its workers share and the instances publishing it.
#[derive(Clone, Debug)]
pub struct WorkerSet {
    /// The card (from the first instance that published it).
    pub card: ModelDeploymentCard,
    /// The instance ids publishing this card.
    pub instances: BTreeSet<u64>,
}

/// What changed after an update, for the frontend to act on.
#[derive(Clone, Debug, PartialEq)]
pub enum RegistryChange {
    /// A new worker set appeared: build its pipeline from the card.
    SetAdded {
        /// The set.
        key: WorkerSetKey,
        /// Its card.
        card: Box<ModelDeploymentCard>,
    },
    /// The last instance of a worker set left: retire its pipeline.
    SetRemoved {
        /// The set.
        key: WorkerSetKey,
    },
    /// The model has no worker set left: stop listing it.
    ModelRemoved {
        /// The model name.
        model: String,
    },
}

/// All published cards, grouped into worker sets.
#[derive(Clone, Debug, Default)]
pub struct ModelRegistry {
    sets: BTreeMap<WorkerSetKey, WorkerSet>,
    by_source: BTreeMap<CardSource, WorkerSetKey>,
}

impl ModelRegistry {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// Records a card published (or republished) by `source`.
    pub fn add(&mut self, source: CardSource, card: ModelDeploymentCard) -> Vec<RegistryChange> {
        let instance_id = source.instance_id;
        let (mut changes, previous) = self.join(source, card);
        // Leave the old set only after joining the new one, so a worker that republishes a
        // changed card never makes its model disappear in between.
        if let Some(previous) = previous {
            changes.extend(self.detach(previous, instance_id));
        }
        changes
    }

    /// Puts `source` into the set of `card`; returns the changes and the set it left behind
    /// (still holding it, for the caller to [`detach`](Self::detach) from).
    fn join(
        &mut self,
        source: CardSource,
        card: ModelDeploymentCard,
    ) -> (Vec<RegistryChange>, Option<WorkerSetKey>) {
        let key = WorkerSetKey {
            model: card.display_name.clone(),
            namespace: source.namespace.clone(),
            component: source.component.clone(),
            endpoint: source.endpoint.clone(),
            worker_type: card.worker_type,
            mdc_sum: card.mdc_sum(),
        };
        let instance_id = source.instance_id;
        let previous = self.by_source.insert(source, key.clone());
        if previous.as_ref() == Some(&key) {
            return (Vec::new(), None);
        }
        let mut changes = Vec::new();
        let set = self.sets.entry(key.clone()).or_insert_with(|| {
            changes.push(RegistryChange::SetAdded {
                key,
                card: Box::new(card.clone()),
            });
            WorkerSet {
                card,
                instances: BTreeSet::new(),
            }
        });
        set.instances.insert(instance_id);
        (changes, previous)
    }

    /// Forgets the card `source` published, if any.
    pub fn remove(&mut self, source: &CardSource) -> Vec<RegistryChange> {
        match self.by_source.remove(source) {
            Some(key) => self.detach(key, source.instance_id),
            None => Vec::new(),
        }
    }

    /// Takes `instance_id` out of the set `key`, retiring the set and model when emptied.
    fn detach(&mut self, key: WorkerSetKey, instance_id: u64) -> Vec<RegistryChange> {
        let emptied = self.sets.get_mut(&key).is_some_and(|set| {
            set.instances.remove(&instance_id);
            set.instances.is_empty()
        });
        if !emptied {
            return Vec::new();
        }
        self.sets.remove(&key);
        let model_gone = !self.sets.keys().any(|k| k.model == key.model);
        let model = key.model.clone();
        let mut changes = vec![RegistryChange::SetRemoved { key }];
        if model_gone {
            changes.push(RegistryChange::ModelRemoved { model });
        }
        changes
    }

    /// Replaces the state with a full listing (a discovery resync): new or changed sources
    /// are added, sources missing from `cards` removed.
    pub fn resync(
        &mut self,
        cards: impl IntoIterator<Item = (CardSource, ModelDeploymentCard)>,
    ) -> Vec<RegistryChange> {
        let cards: BTreeMap<CardSource, ModelDeploymentCard> = cards.into_iter().collect();
        let gone: Vec<CardSource> = self
            .by_source
            .keys()
            .filter(|source| !cards.contains_key(*source))
            .cloned()
            .collect();
        // Join every new set before leaving any old one, so a model present before and after
        // never looks removed in between.
        let mut changes = Vec::new();
        let mut leave = Vec::new();
        for (source, card) in cards {
            let instance_id = source.instance_id;
            let (joined, previous) = self.join(source, card);
            changes.extend(joined);
            leave.extend(previous.map(|key| (key, instance_id)));
        }
        for source in &gone {
            if let Some(key) = self.by_source.remove(source) {
                leave.push((key, source.instance_id));
            }
        }
        for (key, instance_id) in leave {
            changes.extend(self.detach(key, instance_id));
        }
        changes
    }

    /// The worker sets, in key order.
    pub fn sets(&self) -> impl Iterator<Item = (&WorkerSetKey, &WorkerSet)> {
        self.sets.iter()
    }

    /// The worker sets of one model.
    pub fn sets_of<'a>(
        &'a self,
        model: &'a str,
    ) -> impl Iterator<Item = (&'a WorkerSetKey, &'a WorkerSet)> + 'a {
        self.sets.iter().filter(move |(key, _)| key.model == model)
    }

    /// Every model with at least one worker set, sorted.
    pub fn models(&self) -> Vec<&str> {
        let names: BTreeSet<&str> = self.sets.keys().map(|k| k.model.as_str()).collect();
        names.into_iter().collect()
    }

    /// Models that can serve now (see [`readiness`](Self::readiness)), sorted.
    pub fn ready_models(&self) -> Vec<&str> {
        self.models()
            .into_iter()
            .filter(|model| self.readiness(model).is_some_and(|r| r.ready))
            .collect()
    }
}

#[cfg(test)]
mod tests;
