use std::path::Path;
use std::sync::LazyLock;

use serde_json::json;

use super::*;

static CARD: LazyLock<ModelDeploymentCard> = LazyLock::new(|| {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/qwen2.5-0.5b-mock");
    ModelDeploymentCard::from_local_path(dir, Some("qwen2.5-0.5b-mock")).expect("shipped model")
});

fn card(worker_type: Option<WorkerType>, needs: &[&[WorkerType]]) -> ModelDeploymentCard {
    let mut card = CARD.clone();
    card.worker_type = worker_type;
    card.needs = needs.iter().map(|clause| clause.to_vec()).collect();
    card
}

fn source(namespace: &str, endpoint: &str, instance_id: u64) -> CardSource {
    CardSource {
        namespace: namespace.into(),
        component: "backend".into(),
        endpoint: endpoint.into(),
        instance_id,
    }
}

fn added(changes: &[RegistryChange]) -> usize {
    changes
        .iter()
        .filter(|c| matches!(c, RegistryChange::SetAdded { .. }))
        .count()
}

#[test]
fn aggregated_workers_share_a_set_and_readiness_matches_dynamo() {
    let mut registry = ModelRegistry::new();
    let agg = card(Some(WorkerType::Aggregated), &[]);
    assert_eq!(
        added(&registry.add(source("dynamo", "generate", 1), agg.clone())),
        1
    );
    assert!(
        registry
            .add(source("dynamo", "generate", 2), agg.clone())
            .is_empty()
    );
    assert!(
        registry
            .add(source("dynamo", "generate", 2), agg)
            .is_empty()
    );
    assert_eq!(registry.sets().count(), 1);
    assert_eq!(registry.ready_models(), ["qwen2.5-0.5b-mock"]);
    let readiness = registry.readiness("qwen2.5-0.5b-mock").unwrap();
    assert_eq!(
        serde_json::to_value(readiness).unwrap(),
        json!({"model": "qwen2.5-0.5b-mock", "ready": true, "namespaces": {"dynamo": {
            "ready": true,
            "worker_types": {"aggregated": {"workers": 2, "needs": []}},
            "present": ["aggregated"],
            "missing_worker_types": []
        }}})
    );
    assert!(registry.readiness("nope").is_none());
}

#[test]
fn last_worker_leaving_removes_the_set_then_the_model() {
    let mut registry = ModelRegistry::new();
    let agg = card(Some(WorkerType::Aggregated), &[]);
    registry.add(source("ns", "generate", 1), agg.clone());
    registry.add(source("ns", "generate", 2), agg);
    assert!(registry.remove(&source("ns", "generate", 1)).is_empty());
    assert!(registry.remove(&source("ns", "generate", 1)).is_empty());
    let changes = registry.remove(&source("ns", "generate", 2));
    assert!(matches!(&changes[..], [
        RegistryChange::SetRemoved { .. },
        RegistryChange::ModelRemoved { model }
    ] if model == "qwen2.5-0.5b-mock"));
    assert!(registry.models().is_empty());
}

#[test]
fn disaggregated_sets_are_ready_only_together() {
    let mut registry = ModelRegistry::new();
    let prefill = card(Some(WorkerType::Prefill), &[&[WorkerType::Decode]]);
    let decode = card(Some(WorkerType::Decode), &[&[WorkerType::Prefill]]);
    registry.add(source("ns", "prefill", 1), prefill);
    let waiting = registry.readiness("qwen2.5-0.5b-mock").unwrap();
    assert!(!waiting.ready);
    assert_eq!(
        waiting.namespaces["ns"].missing_worker_types,
        [WorkerType::Decode]
    );
    assert!(registry.ready_models().is_empty());

    assert_eq!(added(&registry.add(source("ns", "generate", 2), decode)), 1);
    let ready = registry.readiness("qwen2.5-0.5b-mock").unwrap();
    assert!(ready.ready);
    assert_eq!(
        ready.namespaces["ns"].present,
        [WorkerType::Prefill, WorkerType::Decode]
    );
}

#[test]
fn a_card_without_worker_type_never_makes_the_model_ready() {
    let mut registry = ModelRegistry::new();
    registry.add(source("ns", "generate", 1), card(None, &[]));
    let readiness = registry.readiness("qwen2.5-0.5b-mock").unwrap();
    assert!(!readiness.ready);
    assert!(readiness.namespaces["ns"].present.is_empty());
}

#[test]
fn republishing_a_changed_card_moves_the_worker_without_dropping_the_model() {
    let mut registry = ModelRegistry::new();
    registry.add(
        source("ns", "generate", 1),
        card(Some(WorkerType::Aggregated), &[]),
    );
    let mut changed = card(Some(WorkerType::Aggregated), &[]);
    changed.runtime_config.tool_call_parser = Some("hermes".into());
    let changes = registry.add(source("ns", "generate", 1), changed);
    assert!(matches!(
        &changes[..],
        [
            RegistryChange::SetAdded { .. },
            RegistryChange::SetRemoved { .. }
        ]
    ));
    assert_eq!(registry.sets().count(), 1);
}

#[test]
fn resync_removes_departed_and_adds_new_sources() {
    let mut registry = ModelRegistry::new();
    let agg = card(Some(WorkerType::Aggregated), &[]);
    registry.add(source("a", "generate", 1), agg.clone());
    let changes = registry.resync([(source("b", "generate", 2), agg)]);
    assert_eq!(added(&changes), 1);
    assert!(
        changes
            .iter()
            .any(|c| matches!(c, RegistryChange::SetRemoved { key } if key.namespace == "a"))
    );
    let readiness = registry.readiness("qwen2.5-0.5b-mock").unwrap();
    assert_eq!(readiness.namespaces.keys().collect::<Vec<_>>(), ["b"]);
}

mod model_based {
    use std::collections::{BTreeMap, BTreeSet};

    use proptest::prelude::*;

    use super::*;

    /// Six card variants: two models × (aggregated, prefill, aggregated with a parser).
    static VARIANTS: LazyLock<Vec<ModelDeploymentCard>> = LazyLock::new(|| {
        let mut variants = Vec::new();
        for model in ["m0", "m1"] {
            for variant in 0..3 {
                let mut c = card(Some(WorkerType::Aggregated), &[]);
                c.display_name = model.into();
                if variant == 1 {
                    c.worker_type = Some(WorkerType::Prefill);
                    c.needs = vec![vec![WorkerType::Decode]];
                }
                if variant == 2 {
                    c.runtime_config.reasoning_parser = Some("deepseek_r1".into());
                }
                variants.push(c);
            }
        }
        variants
    });

    #[derive(Clone, Debug)]
    enum Op {
        Add(u64, usize),
        Remove(u64),
        Resync(Vec<(u64, usize)>),
    }

    fn op() -> impl Strategy<Value = Op> {
        prop_oneof![
            4 => (0..4u64, 0..6usize).prop_map(|(i, v)| Op::Add(i, v)),
            2 => (0..4u64).prop_map(Op::Remove),
            1 => prop::collection::vec((0..4u64, 0..6usize), 0..4).prop_map(Op::Resync),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        /// The registry agrees with a naive map of source → card, and replaying its change
        /// events reproduces its sets and models.
        #[test]
        fn registry_matches_a_naive_model(ops in prop::collection::vec(op(), 0..24)) {
            let mut registry = ModelRegistry::new();
            let mut naive: BTreeMap<u64, usize> = BTreeMap::new();
            let mut replayed_sets: BTreeSet<WorkerSetKey> = BTreeSet::new();
            for op in ops {
                let changes = match op {
                    Op::Add(i, v) => {
                        naive.insert(i, v);
                        registry.add(source("ns", "generate", i), VARIANTS[v].clone())
                    }
                    Op::Remove(i) => {
                        naive.remove(&i);
                        registry.remove(&source("ns", "generate", i))
                    }
                    Op::Resync(list) => {
                        naive = list.iter().copied().collect();
                        registry.resync(
                            naive.iter().map(|(&i, &v)| (source("ns", "generate", i), VARIANTS[v].clone())),
                        )
                    }
                };
                for change in changes {
                    match change {
                        RegistryChange::SetAdded { key, .. } => {
                            prop_assert!(replayed_sets.insert(key));
                        }
                        RegistryChange::SetRemoved { key } => {
                            prop_assert!(replayed_sets.remove(&key));
                        }
                        RegistryChange::ModelRemoved { model } => {
                            prop_assert!(!naive.values().any(|&v| VARIANTS[v].display_name == model));
                        }
                    }
                }
                let actual: BTreeSet<WorkerSetKey> = registry.sets().map(|(k, _)| k.clone()).collect();
                prop_assert_eq!(&actual, &replayed_sets);
                let mut expected: BTreeMap<String, BTreeSet<u64>> = BTreeMap::new();
                for (&i, &v) in &naive {
                    expected.entry(VARIANTS[v].mdc_sum()).or_default().insert(i);
                }
                let grouped: BTreeMap<String, BTreeSet<u64>> = registry
                    .sets()
                    .map(|(k, s)| (k.mdc_sum.clone(), s.instances.clone()))
                    .collect();
                prop_assert_eq!(grouped, expected);
            }
        }
    }
}
