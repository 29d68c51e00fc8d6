//! The etcd backend against a real etcd: the shared discovery contract, Dynamo's key layout
//! and lease attachment, lease expiry of a dropped owner, etcd restarts (with and without
//! its data) and bounded startup retries.

#[path = "support/contract.rs"]
mod contract;
#[path = "support/servers.rs"]
mod servers;

use std::sync::Arc;
use std::time::Duration;

use contract::{
    Pair, WAIT, endpoint, event_channel_contract, instance, list_and_watch_contract, model, next,
    update_in_place,
};
use etcd_client::GetOptions;
use futures::StreamExt;
use servers::EtcdServer;
use stator_runtime::discovery::{
    Discovery, DiscoveryError, DiscoveryEvent, DiscoveryQuery, DiscoveryStream, EtcdConfig,
    EtcdDiscovery, EtcdTls, etcd::EtcdAuth,
};

fn config(server: &EtcdServer, ttl_secs: u64) -> EtcdConfig {
    let mut config = EtcdConfig::new([server.endpoint()]);
    config.lease_ttl = Duration::from_secs(ttl_secs);
    config.request_timeout = Duration::from_secs(2);
    config.startup_timeout = Duration::from_secs(10);
    config
}

async fn connect(server: &EtcdServer, ttl_secs: u64) -> EtcdDiscovery {
    EtcdDiscovery::connect(config(server, ttl_secs))
        .await
        .expect("connect to the test etcd")
}

async fn etcd_pair() -> Option<Pair> {
    let server = EtcdServer::start()?;
    Some(Pair {
        a: Arc::new(connect(&server, 30).await),
        b: Arc::new(connect(&server, 30).await),
        _keep: Some(Box::new(server)),
    })
}

/// Skips events until a `Resync`, returning it.
async fn next_resync(watch: &mut DiscoveryStream) -> Vec<stator_runtime::DiscoveryRecord> {
    loop {
        if let DiscoveryEvent::Resync(records) = next(watch).await {
            return records;
        }
    }
}

#[tokio::test]
async fn etcd_list_and_watch() {
    let Some(pair) = etcd_pair().await else {
        return;
    };
    list_and_watch_contract(pair).await;
}

#[tokio::test]
async fn etcd_event_channels() {
    let Some(pair) = etcd_pair().await else {
        return;
    };
    event_channel_contract(pair).await;
}

#[tokio::test]
async fn etcd_update_in_place() {
    let Some(pair) = etcd_pair().await else {
        return;
    };
    update_in_place(pair).await;
}

#[tokio::test]
async fn keys_values_and_lease_follow_dynamo() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let d = connect(&server, 30).await;
    assert_eq!(d.instance_id().0, d.lease_id().cast_unsigned());
    let ep = endpoint("generate");
    let record = instance(&d, &ep);
    d.register(record.clone()).await.unwrap();
    d.register(model(&d, &ep)).await.unwrap();

    let mut raw = etcd_client::Client::connect([server.endpoint()], None)
        .await
        .unwrap();
    let key = format!("v1/instances/test-ns/backend/generate/{:x}", d.lease_id());
    let got = raw.get(key.as_str(), None).await.unwrap();
    let kv = &got.kvs()[0];
    assert_eq!(kv.lease(), d.lease_id());
    let value: serde_json::Value = serde_json::from_slice(kv.value()).unwrap();
    assert_eq!(value, serde_json::to_value(&record).unwrap());
    assert_eq!(value["type"], "Endpoint");
    let mdc = raw
        .get("v1/mdc/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert_eq!(mdc.kvs().len(), 1);
    assert_eq!(mdc.kvs()[0].lease(), d.lease_id());

    d.shutdown().await;
    let after = raw
        .get("v1/", Some(GetOptions::new().with_prefix()))
        .await
        .unwrap();
    assert!(after.kvs().is_empty(), "shutdown revokes the lease");
    assert!(matches!(
        d.register(record).await,
        Err(DiscoveryError::Closed)
    ));
}

#[tokio::test]
async fn keep_alive_holds_the_records_past_the_ttl() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let owner = connect(&server, 2).await;
    let ep = endpoint("generate");
    let record = instance(&owner, &ep);
    owner.register(record.clone()).await.unwrap();
    // Several TTLs: only the keep-alive keeps the lease, and so the record, alive.
    tokio::time::sleep(Duration::from_secs(7)).await;
    assert!(!owner.lease_lost().is_cancelled());
    let q = DiscoveryQuery::Endpoint(ep);
    assert_eq!(owner.list(&q).await.unwrap(), vec![record]);
    owner.shutdown().await;
}

#[tokio::test]
async fn a_dropped_owner_vanishes_when_its_lease_expires() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let watcher = connect(&server, 30).await;
    let ep = endpoint("generate");
    let mut watch = watcher
        .watch(&DiscoveryQuery::Endpoint(ep.clone()))
        .await
        .unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Resync(vec![]));
    let mut models = watcher
        .watch(&DiscoveryQuery::EndpointModels(ep.clone()))
        .await
        .unwrap();
    assert_eq!(next(&mut models).await, DiscoveryEvent::Resync(vec![]));

    let owner = connect(&server, 2).await;
    let (inst, card) = (instance(&owner, &ep), model(&owner, &ep));
    owner.register(inst.clone()).await.unwrap();
    owner.register(card.clone()).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Added(inst.clone()));
    assert_eq!(next(&mut models).await, DiscoveryEvent::Added(card.clone()));

    // Like a SIGKILL: keep-alive stops, nothing is revoked.
    drop(owner);
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Removed(inst.id()));
    assert_eq!(next(&mut models).await, DiscoveryEvent::Removed(card.id()));
    assert!(!watcher.lease_lost().is_cancelled());
    watcher.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_restart_with_its_data_is_survived() {
    let Some(mut server) = EtcdServer::start() else {
        return;
    };
    let owner = connect(&server, 10).await;
    let watcher = connect(&server, 10).await;
    let ep = endpoint("generate");
    let first = instance(&owner, &ep);
    owner.register(first.clone()).await.unwrap();
    let mut watch = watcher
        .watch(&DiscoveryQuery::Endpoint(ep.clone()))
        .await
        .unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Added(first.clone()));
    assert_eq!(
        next(&mut watch).await,
        DiscoveryEvent::Resync(vec![first.clone()])
    );

    server.kill();
    // Calls fail within the request timeout instead of hanging.
    let during = tokio::time::timeout(WAIT, owner.list(&DiscoveryQuery::AllEndpoints)).await;
    assert!(matches!(during, Ok(Err(DiscoveryError::Backend(_)))));
    server.spawn();

    // The watch reconnects and resyncs; the lease survived, so the record is still there.
    assert_eq!(next_resync(&mut watch).await, vec![first.clone()]);
    let second = instance(&watcher, &ep);
    watcher.register(second.clone()).await.unwrap();
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Added(second));
    assert!(!owner.lease_lost().is_cancelled());
    owner.shutdown().await;
    assert_eq!(next(&mut watch).await, DiscoveryEvent::Removed(first.id()));
    watcher.shutdown().await;
    let end = tokio::time::timeout(WAIT, watch.next()).await;
    assert_eq!(end, Ok(None), "watches end at shutdown");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_losing_its_data_signals_lease_lost() {
    let Some(mut server) = EtcdServer::start() else {
        return;
    };
    let owner = connect(&server, 3).await;
    let ep = endpoint("generate");
    owner.register(instance(&owner, &ep)).await.unwrap();
    let lost = owner.lease_lost();

    server.kill_and_wipe();
    server.spawn();
    tokio::time::timeout(WAIT, lost.cancelled())
        .await
        .expect("lease loss is signalled");
    assert!(matches!(
        owner.register(instance(&owner, &ep)).await,
        Err(DiscoveryError::LeaseLost)
    ));
    tokio::time::timeout(WAIT, owner.shutdown())
        .await
        .expect("shutdown after lease loss does not hang");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn etcd_away_longer_than_the_ttl_signals_lease_lost() {
    let Some(mut server) = EtcdServer::start() else {
        return;
    };
    let owner = connect(&server, 2).await;
    owner
        .register(instance(&owner, &endpoint("generate")))
        .await
        .unwrap();
    server.kill();
    tokio::time::timeout(WAIT, owner.lease_lost().cancelled())
        .await
        .expect("lease loss is signalled while etcd stays away");
    assert!(matches!(
        owner.list(&DiscoveryQuery::AllEndpoints).await,
        Err(DiscoveryError::LeaseLost)
    ));
    tokio::time::timeout(WAIT, owner.shutdown())
        .await
        .expect("shutdown without etcd does not hang");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn startup_retries_until_etcd_is_up() {
    let Some(mut server) = EtcdServer::unstarted() else {
        return;
    };
    let connecting = tokio::spawn(EtcdDiscovery::connect(config(&server, 5)));
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(!connecting.is_finished());
    server.spawn();
    let d = tokio::time::timeout(WAIT, connecting)
        .await
        .expect("connects once etcd is up")
        .unwrap()
        .expect("connect succeeds");
    d.register(instance(&d, &endpoint("generate")))
        .await
        .unwrap();
    d.shutdown().await;
}

#[tokio::test]
async fn authenticates_with_user_and_password() {
    let Some(server) = EtcdServer::start() else {
        return;
    };
    let mut admin = etcd_client::Client::connect([server.endpoint()], None)
        .await
        .unwrap();
    admin.user_add("root", "rootpw", None).await.unwrap();
    admin.user_grant_role("root", "root").await.unwrap();
    admin.auth_enable().await.unwrap();

    // etcd grants leases to anyone, but writes need a user with a role.
    let anonymous = connect(&server, 5).await;
    assert!(matches!(
        anonymous
            .register(instance(&anonymous, &endpoint("generate")))
            .await,
        Err(DiscoveryError::Backend(_))
    ));

    let mut authenticated = config(&server, 5);
    authenticated.auth = Some(EtcdAuth {
        username: "root".into(),
        password: "rootpw".into(),
    });
    let d = EtcdDiscovery::connect(authenticated).await.unwrap();
    let record = instance(&d, &endpoint("generate"));
    d.register(record.clone()).await.unwrap();
    assert_eq!(
        d.list(&DiscoveryQuery::AllEndpoints).await.unwrap(),
        vec![record]
    );
    d.shutdown().await;
}

#[tokio::test]
async fn startup_gives_up_after_its_timeout() {
    let Some(server) = EtcdServer::unstarted() else {
        return;
    };
    let mut config = config(&server, 5);
    config.startup_timeout = Duration::from_secs(1);
    config.request_timeout = Duration::from_millis(300);
    let result = tokio::time::timeout(WAIT, EtcdDiscovery::connect(config))
        .await
        .expect("startup is bounded");
    assert!(matches!(result, Err(DiscoveryError::Backend(_))));
}

#[tokio::test]
async fn mutual_tls_etcd_needs_and_accepts_the_client_certificate() {
    let Some(server) = EtcdServer::start_tls() else {
        return;
    };
    let files = server.tls().expect("a TLS server");
    let mut secure = config(&server, 30);
    secure.tls = Some(EtcdTls {
        ca: files.ca.clone(),
        client: Some(files.client.clone()),
    });
    let etcd = EtcdDiscovery::connect(secure.clone())
        .await
        .expect("mutual TLS connect");
    etcd.register(instance(&etcd, &endpoint("tls")))
        .await
        .expect("register over TLS");
    let listed = etcd
        .list(&DiscoveryQuery::AllEndpoints)
        .await
        .expect("list over TLS");
    assert_eq!(listed.len(), 1);
    etcd.shutdown().await;

    // Without a client certificate the server refuses the connection.
    let mut no_identity = secure;
    no_identity.startup_timeout = Duration::from_millis(500);
    if let Some(tls) = &mut no_identity.tls {
        tls.client = None;
    }
    assert!(EtcdDiscovery::connect(no_identity).await.is_err());
}
