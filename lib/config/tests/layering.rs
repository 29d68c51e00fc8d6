//! Flag > environment > default, through the real process environment.
//!
//! This binary holds a single test so no other thread reads the environment while it changes.

use std::path::PathBuf;
use std::time::Duration;

use stator_config::{
    DiscoveryBackend, EventPlaneKind, PayloadCodec, RequestPlaneKind, RuntimeConfig,
};

const VARS: [&str; 8] = [
    "DYN_DISCOVERY_BACKEND",
    "DYN_FILE_KV",
    "DYN_SYSTEM_PORT",
    "DYN_TCP_WORKER_POOL_SIZE",
    "DYN_ENGINE_REQUEST_LIMIT",
    "DYN_RUNTIME_INHIBITED_DURATION_SECS",
    "DYN_REQUEST_PLANE_CODEC",
    "DYN_TCP_RPC_HOST",
];

fn set(name: &str, value: &str) {
    // SAFETY: this test binary runs one test on one thread; nothing else reads the environment.
    unsafe { std::env::set_var(name, value) };
}

#[test]
fn flag_beats_env_beats_default() {
    for name in VARS {
        // SAFETY: as in `set`.
        unsafe { std::env::remove_var(name) };
    }
    let defaults = RuntimeConfig::from_env().unwrap();
    assert_eq!(defaults, RuntimeConfig::default());
    assert_eq!(defaults.discovery_backend, DiscoveryBackend::File);
    assert_eq!(defaults.request_plane, RequestPlaneKind::Tcp);
    assert_eq!(defaults.event_plane, EventPlaneKind::Zmq);
    assert_eq!(defaults.request_plane_codec, PayloadCodec::Msgpack);
    assert_eq!(defaults.tcp_max_message_size, 32 * 1024 * 1024);
    assert_eq!(
        (defaults.admission_pool_size, defaults.admission_queue_size),
        (10_000, 40_000)
    );
    assert_eq!(defaults.inhibited_duration, Duration::from_secs(5));
    assert_eq!(defaults.graceful_shutdown_timeout, Duration::from_secs(30));
    assert_eq!(defaults.system_port, None);
    assert!(defaults.file_kv.ends_with("dynamo_store_kv"));

    set("DYN_DISCOVERY_BACKEND", "etcd");
    set("DYN_FILE_KV", "/tmp/kv-from-env");
    set("DYN_SYSTEM_PORT", "9090");
    set("DYN_TCP_WORKER_POOL_SIZE", "7");
    set("DYN_RUNTIME_INHIBITED_DURATION_SECS", "0");
    set("DYN_REQUEST_PLANE_CODEC", "json");
    set("DYN_TCP_RPC_HOST", "");
    let env = RuntimeConfig::from_env().unwrap();
    assert_eq!(env.discovery_backend, DiscoveryBackend::Etcd);
    assert_eq!(env.file_kv, PathBuf::from("/tmp/kv-from-env"));
    assert_eq!(env.system_port, Some(9090));
    assert_eq!(env.admission_pool_size, 7);
    assert_eq!(env.inhibited_duration, Duration::ZERO);
    assert_eq!(env.request_plane_codec, PayloadCodec::Json);
    assert_eq!(env.tcp_rpc_host, None, "an empty variable counts as unset");

    let flags = RuntimeConfig::from_args([
        "--discovery-backend",
        "mem",
        "--system-port",
        "-1",
        "--file-kv",
        "/tmp/kv-from-flag",
    ])
    .unwrap();
    assert_eq!(flags.discovery_backend, DiscoveryBackend::Mem);
    assert_eq!(flags.system_port, None);
    assert_eq!(flags.file_kv, PathBuf::from("/tmp/kv-from-flag"));
    assert_eq!(
        flags.admission_pool_size, 7,
        "unflagged settings still come from the env"
    );

    set("DYN_ENGINE_REQUEST_LIMIT", "4");
    let limited = RuntimeConfig::from_env().unwrap();
    assert_eq!(
        (limited.admission_pool_size, limited.admission_queue_size),
        (4, 16)
    );

    set("DYN_DISCOVERY_BACKEND", "zookeeper");
    let err = RuntimeConfig::from_env().unwrap_err().to_string();
    assert!(err.contains("zookeeper"), "{err}");
    set("DYN_DISCOVERY_BACKEND", "file");
    set("DYN_SYSTEM_PORT", "99999");
    assert!(RuntimeConfig::from_env().is_err());
}
