//! Holds a registration in etcd the way a worker does: connects with the `ETCD_*`
//! environment, registers one endpoint instance under the process's primary lease, and keeps
//! it alive until SIGINT/SIGTERM (clean shutdown: the lease is revoked and the key vanishes at
//! once) or until the lease is lost (exit code 3).
//!
//! ```text
//! ETCD_ENDPOINTS=http://127.0.0.1:2379 ETCD_LEASE_TTL=5 \
//!     cargo run -p stator-runtime --example etcd_register -- --endpoint dyn://demo.echo.generate
//! etcdctl get --prefix v1/instances/
//! ```
//!
//! Prints `READY <instance id hex>` once registered (tests read this line).

use std::io::Write;

use clap::Parser;
use stator_runtime::discovery::{
    Discovery, DiscoveryRecord, EtcdDiscovery, Instance, RequestPlaneCodec, TransportType,
};
use stator_runtime::names::EndpointId;
use tokio::signal::unix::{SignalKind, signal};

#[derive(Debug, Parser)]
#[command(about = "Register an endpoint instance in etcd and hold it until stopped")]
struct Args {
    /// Endpoint to register, `dyn://namespace.component.endpoint`.
    #[arg(long, default_value = "dyn://demo.echo.generate")]
    endpoint: String,
    /// Request-plane address written into the record.
    #[arg(long, default_value = "127.0.0.1:9")]
    address: String,
}

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let endpoint = EndpointId::parse(&args.endpoint)?;
    let etcd = EtcdDiscovery::from_env().await?;
    let id = etcd.instance_id();
    etcd.register(DiscoveryRecord::Endpoint(Instance {
        component: endpoint.component.clone(),
        endpoint: endpoint.name.clone(),
        namespace: endpoint.namespace.clone(),
        instance_id: id,
        transport: TransportType::Tcp(format!("{}/{}", args.address, endpoint.instance_path(id))),
        device_type: None,
        request_plane_codec: Some(RequestPlaneCodec::Msgpack),
    }))
    .await?;
    println!("READY {id:x}");
    std::io::stdout().flush()?;

    let lease_lost = etcd.lease_lost();
    let mut terminate = signal(SignalKind::terminate())?;
    tokio::select! {
        () = lease_lost.cancelled() => {
            eprintln!("etcd lease lost: exiting");
            std::process::exit(3);
        }
        _ = tokio::signal::ctrl_c() => {}
        _ = terminate.recv() => {}
    }
    etcd.shutdown().await;
    Ok(())
}
