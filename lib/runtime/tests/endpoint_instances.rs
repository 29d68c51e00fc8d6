//! `EndpointInstances::changed`: resolves for a change the handle has not listed yet, even
//! one made before the call, and does not resolve without one.

#[path = "support/contract.rs"]
mod contract;

use std::time::Duration;

use contract::{endpoint, instance};
use stator_runtime::discovery::{Discovery, MemStore};
use stator_runtime::router::EndpointInstances;

const QUIET: Duration = Duration::from_millis(200);

async fn within<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(contract::WAIT, f)
        .await
        .expect("within the patience bound")
}

#[tokio::test]
async fn changed_tracks_what_each_handle_has_listed() {
    let store = MemStore::new();
    let watcher = store.client();
    let ep = endpoint("generate");
    let instances = EndpointInstances::watch(&watcher, ep.clone())
        .await
        .expect("watch");
    assert!(instances.list().is_empty());

    // A change made before `changed()` is called is not missed.
    let worker = store.client();
    worker
        .register(instance(&worker, &ep))
        .await
        .expect("register");
    let other_handle = instances.clone();
    within(async {
        while instances.list().is_empty() {
            assert!(instances.changed().await);
        }
    })
    .await;
    assert_eq!(instances.list().len(), 1);

    // Nothing changed since this handle listed: no wake-up.
    assert!(
        tokio::time::timeout(QUIET, instances.changed())
            .await
            .is_err(),
        "changed() woke without a change"
    );
    // Another handle has not listed the new set yet: it wakes at once.
    assert!(within(other_handle.changed()).await);
    assert_eq!(other_handle.list().len(), 1);

    // A removal wakes both.
    worker.shutdown().await;
    assert!(within(instances.changed()).await);
    assert!(instances.list().is_empty());
    assert!(within(other_handle.changed()).await);
}
