//! File-backend specifics: Dynamo's exact file names and JSON, TTL expiry, keep-alive, cleanup.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use futures::StreamExt;
use proptest::prelude::*;
use stator_runtime::discovery::file::{decode_file_name, encode_file_name};
use stator_runtime::discovery::{
    Discovery, DiscoveryEvent, DiscoveryQuery, DiscoveryRecord, FileDiscovery, FileDiscoveryConfig,
    Instance, RequestPlaneCodec, TransportType,
};
use stator_runtime::names::{EndpointId, InstanceId};

const WAIT: Duration = Duration::from_secs(10);

/// An Endpoint record as the real Dynamo 1.6.1 writes it.
const DYNAMO_INSTANCE: &str = r#"{"type":"Endpoint","component":"backend","endpoint":"generate","namespace":"myexp","instance_id":17310469999969134614,"transport":{"tcp":"127.0.0.1:40117/f03b24c00b376816/myexp/backend/generate"},"device_type":"cuda","request_plane_codec":"msgpack"}"#;
const DYNAMO_INSTANCE_FILE: &str = "myexp%2Fbackend%2Fgenerate%2Ff03b24c00b376816";

fn config(dir: &Path) -> FileDiscoveryConfig {
    let mut config = FileDiscoveryConfig::new(dir);
    config.poll_interval = Duration::from_millis(50);
    config
}

fn write_dynamo_instance(root: &Path) -> PathBuf {
    let dir = root.join("v1/instances");
    fs::create_dir_all(&dir).unwrap();
    let path = dir.join(DYNAMO_INSTANCE_FILE);
    fs::write(&path, DYNAMO_INSTANCE).unwrap();
    path
}

fn set_age(path: &Path, age: Duration) {
    let file = fs::File::options().write(true).open(path).unwrap();
    file.set_modified(SystemTime::now() - age).unwrap();
}

async fn wait_until(mut check: impl FnMut() -> bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while !check() {
        assert!(
            tokio::time::Instant::now() < deadline,
            "condition not reached in time"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn generate() -> EndpointId {
    EndpointId::new("myexp", "backend", "generate").unwrap()
}

#[tokio::test]
async fn reads_a_record_written_by_dynamo() {
    let dir = tempfile::tempdir().unwrap();
    write_dynamo_instance(dir.path());
    let d = FileDiscovery::open(config(dir.path())).await.unwrap();
    let q = DiscoveryQuery::Endpoint(generate());
    let records = d.list(&q).await.unwrap();
    let [DiscoveryRecord::Endpoint(inst)] = records.as_slice() else {
        panic!("expected one endpoint record, got {records:?}");
    };
    assert_eq!(inst.instance_id, InstanceId(0xf03b_24c0_0b37_6816));
    assert_eq!(inst.codec(), RequestPlaneCodec::Msgpack);
    assert_eq!(
        inst.transport,
        TransportType::Tcp("127.0.0.1:40117/f03b24c00b376816/myexp/backend/generate".into())
    );
    let mut watch = d.watch(&q).await.unwrap();
    let first = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(first, DiscoveryEvent::Added(records[0].clone()));
    d.shutdown().await;
}

#[tokio::test]
async fn writes_records_the_way_dynamo_does() {
    let dir = tempfile::tempdir().unwrap();
    let id = InstanceId(0xf03b_24c0_0b37_6816);
    let d = FileDiscovery::open_with_id(config(dir.path()), id)
        .await
        .unwrap();
    let record = DiscoveryRecord::Endpoint(Instance {
        component: "backend".into(),
        endpoint: "generate".into(),
        namespace: "myexp".into(),
        instance_id: id,
        transport: TransportType::Tcp(format!("127.0.0.1:40117/{}", generate().instance_path(id))),
        device_type: Some(stator_runtime::discovery::DeviceType::Cuda),
        request_plane_codec: Some(RequestPlaneCodec::Msgpack),
    });
    d.register(record).await.unwrap();
    let path = dir.path().join("v1/instances").join(DYNAMO_INSTANCE_FILE);
    let written: serde_json::Value = serde_json::from_slice(&fs::read(&path).unwrap()).unwrap();
    let expected: serde_json::Value = serde_json::from_str(DYNAMO_INSTANCE).unwrap();
    assert_eq!(written, expected);
    let leftovers: Vec<_> = fs::read_dir(dir.path().join("v1/instances"))
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(leftovers.len(), 1, "no temporary files left: {leftovers:?}");
    d.shutdown().await;
    assert!(!path.exists(), "clean shutdown removes owned files");
}

#[tokio::test]
async fn expired_files_disappear() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_dynamo_instance(dir.path());
    let mut cfg = config(dir.path());
    cfg.ttl = Duration::from_secs(2);
    let d = FileDiscovery::open(cfg).await.unwrap();
    let q = DiscoveryQuery::Endpoint(generate());
    let mut watch = d.watch(&q).await.unwrap();
    assert!(matches!(watch.next().await, Some(DiscoveryEvent::Added(_))));
    assert!(matches!(watch.next().await, Some(DiscoveryEvent::Resync(v)) if v.len() == 1));

    // The owner stopped touching the file: watchers drop it, the sweep deletes it.
    set_age(&path, Duration::from_mins(1));
    let removed = tokio::time::timeout(WAIT, watch.next())
        .await
        .unwrap()
        .unwrap();
    assert!(
        matches!(removed, DiscoveryEvent::Removed(id) if id.instance_id() == InstanceId(0xf03b_24c0_0b37_6816))
    );
    assert!(d.list(&q).await.unwrap().is_empty());
    wait_until(|| !path.exists()).await;
    d.shutdown().await;
}

#[tokio::test]
async fn owner_keeps_its_files_alive_and_restores_deleted_ones() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.ttl = Duration::from_secs(3);
    let d = FileDiscovery::open(cfg).await.unwrap();
    let id = d.instance_id();
    let ep = generate();
    d.register(DiscoveryRecord::Endpoint(Instance {
        component: ep.component.clone(),
        endpoint: ep.name.clone(),
        namespace: ep.namespace.clone(),
        instance_id: id,
        transport: TransportType::Tcp(format!("127.0.0.1:1/{}", ep.instance_path(id))),
        device_type: None,
        request_plane_codec: None,
    }))
    .await
    .unwrap();
    let path = dir
        .path()
        .join("v1/instances")
        .join(encode_file_name(&format!("{ep}/{id}")));
    // Make the file look old: the next keep-alive tick must refresh it, not let it expire.
    set_age(&path, Duration::from_secs(2));
    wait_until(|| {
        fs::metadata(&path)
            .and_then(|m| m.modified())
            .is_ok_and(|m| {
                SystemTime::now().duration_since(m).unwrap_or_default() < Duration::from_secs(1)
            })
    })
    .await;
    // Someone else expired it (e.g. after a stall): the owner writes it back.
    fs::remove_file(&path).unwrap();
    wait_until(|| path.exists()).await;
    drop(d);
    assert!(!path.exists(), "dropping the client removes owned files");
}

#[tokio::test]
async fn ignores_temporary_and_invalid_files() {
    let dir = tempfile::tempdir().unwrap();
    let bucket = dir.path().join("v1/instances");
    fs::create_dir_all(&bucket).unwrap();
    fs::write(bucket.join(".tmp_0123"), DYNAMO_INSTANCE).unwrap();
    fs::write(bucket.join("myexp%2Fbackend%2Fgenerate%2F1"), "{not json").unwrap();
    fs::write(bucket.join("bad%zzname"), DYNAMO_INSTANCE).unwrap();
    let d = FileDiscovery::open(config(dir.path())).await.unwrap();
    assert!(
        d.list(&DiscoveryQuery::AllEndpoints)
            .await
            .unwrap()
            .is_empty()
    );
    d.shutdown().await;
}

#[test]
fn default_root_follows_dynamo() {
    let cfg = FileDiscoveryConfig::new("/x");
    assert_eq!(cfg.ttl, Duration::from_secs(10));
    assert_eq!(cfg.keepalive_interval(), Duration::from_secs(10) / 3);
    let mut short = cfg.clone();
    short.ttl = Duration::from_secs(1);
    assert_eq!(short.keepalive_interval(), Duration::from_secs(1));
    assert!(FileDiscoveryConfig::default_root().ends_with("dynamo_store_kv"));
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    #[test]
    fn file_name_encoding_round_trips(key in ".{0,64}") {
        let name = encode_file_name(&key);
        prop_assert!(name.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'%'));
        if !key.is_empty() {
            prop_assert_eq!(decode_file_name(&name), Some(key));
        }
    }

    #[test]
    fn decoding_arbitrary_names_never_panics(name in "[%A-Za-z0-9._-]{0,32}") {
        let _ = decode_file_name(&name);
    }
}
