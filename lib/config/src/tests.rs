use std::num::NonZeroUsize;

use clap::Parser;

use super::*;

#[derive(Parser)]
struct Cli {
    #[command(flatten)]
    runtime: RuntimeArgs,
}

#[test]
fn flags_parse_into_config() {
    let cli = Cli::try_parse_from([
        "worker",
        "--request-plane",
        "nats",
        "--event-plane",
        "nats",
        "--etcd-endpoints",
        "http://a:2379,http://b:2379",
        "--nats-server",
        "nats://n1:4222,nats://n2:4222",
        "--tcp-max-message-size",
        "1024",
        "--engine-request-limit",
        "8",
        "--request-queue-limit",
        "2",
    ])
    .unwrap();
    let config = cli.runtime.to_config();
    assert_eq!(config.request_plane, RequestPlaneKind::Nats);
    assert_eq!(config.event_plane, EventPlaneKind::Nats);
    assert_eq!(config.etcd_endpoints, ["http://a:2379", "http://b:2379"]);
    assert_eq!(config.nats_server, ["nats://n1:4222", "nats://n2:4222"]);
    assert_eq!(config.tcp_max_message_size, 1024);
    assert_eq!(
        (config.admission_pool_size, config.admission_queue_size),
        (8, 2)
    );
}

#[test]
fn bad_values_are_rejected_with_the_flag_name() {
    let err = Cli::try_parse_from(["worker", "--discovery-backend", "zookeeper"])
        .err()
        .expect("invalid backend");
    assert!(err.to_string().contains("--discovery-backend"), "{err}");
    assert!(Cli::try_parse_from(["worker", "--system-port", "x"]).is_err());
}

#[test]
fn thread_counts_default_to_tokio_and_reject_zero() {
    let defaults = Cli::try_parse_from(["worker"]).unwrap().runtime.threads();
    assert_eq!(defaults, RuntimeThreads::default());
    assert_eq!(defaults.worker_threads, None);
    assert_eq!(
        defaults.max_blocking_threads.get(),
        DEFAULT_MAX_BLOCKING_THREADS
    );
    let set = Cli::try_parse_from([
        "worker",
        "--num-worker-threads",
        "1",
        "--max-blocking-threads",
        "16",
    ])
    .unwrap()
    .runtime
    .threads();
    assert_eq!(set.worker_threads.map(NonZeroUsize::get), Some(1));
    assert_eq!(set.max_blocking_threads.get(), 16);
    let err = Cli::try_parse_from(["worker", "--num-worker-threads", "0"])
        .err()
        .expect("zero threads");
    assert!(err.to_string().contains("--num-worker-threads"), "{err}");
}
