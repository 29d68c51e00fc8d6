//! The discovery contract, run against both the mem and the file backend.

#[path = "support/contract.rs"]
mod contract;

use std::sync::Arc;
use std::time::Duration;

use contract::{Pair, event_channel_contract, list_and_watch_contract, update_in_place};
use stator_runtime::discovery::{FileDiscovery, FileDiscoveryConfig, MemStore};

fn mem_pair() -> Pair {
    let store = MemStore::new();
    Pair {
        a: Arc::new(store.client()),
        b: Arc::new(store.client()),
        _keep: None,
    }
}

async fn file_pair() -> Pair {
    let dir = tempfile::tempdir().unwrap();
    let mut config = FileDiscoveryConfig::new(dir.path());
    config.poll_interval = Duration::from_millis(50);
    Pair {
        a: Arc::new(FileDiscovery::open(config.clone()).await.unwrap()),
        b: Arc::new(FileDiscovery::open(config).await.unwrap()),
        _keep: Some(Box::new(dir)),
    }
}

#[tokio::test]
async fn mem_list_and_watch() {
    list_and_watch_contract(mem_pair()).await;
}

#[tokio::test]
async fn file_list_and_watch() {
    list_and_watch_contract(file_pair().await).await;
}

#[tokio::test]
async fn mem_event_channels() {
    event_channel_contract(mem_pair()).await;
}

#[tokio::test]
async fn file_event_channels() {
    event_channel_contract(file_pair().await).await;
}

#[tokio::test]
async fn mem_update_in_place() {
    update_in_place(mem_pair()).await;
}

#[tokio::test]
async fn file_update_in_place() {
    update_in_place(file_pair().await).await;
}

#[tokio::test]
async fn instance_ids_are_distinct_per_client() {
    let p = mem_pair();
    assert_ne!(p.a.instance_id(), p.b.instance_id());
    let f = file_pair().await;
    assert_ne!(f.a.instance_id(), f.b.instance_id());
}
