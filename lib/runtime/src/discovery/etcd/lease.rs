//! The primary lease: granted at startup with bounded retry, kept alive, revoked at shutdown.
//!
//! Keep-alive renews every third of the TTL etcd last granted. A failed renewal is retried
//! (reconnecting the keep-alive stream) until the lease's local deadline passes; etcd
//! answering with a TTL of zero or "lease not found" (expired, revoked, or etcd restarted
//! without its data) or the deadline passing without a renewal means the lease — and with
//! it every key of this process — is gone, and the backend cancels its lease-lost token.

use std::time::Duration;

use etcd_client::{
    Certificate, Client, ConnectOptions, Identity, LeaseKeepAliveStream, LeaseKeeper, TlsOptions,
};
use tokio::time::{Instant, sleep, timeout};
use tokio_util::sync::CancellationToken;

use super::{EtcdConfig, EtcdTls};
use crate::discovery::DiscoveryError;

/// First delay between startup attempts; doubles up to [`MAX_BACKOFF`].
const FIRST_BACKOFF: Duration = Duration::from_millis(100);
/// Longest delay between startup attempts or watch reconnects.
pub(super) const MAX_BACKOFF: Duration = Duration::from_secs(2);
/// HTTP/2 keep-alive pings detect a dead etcd connection within about this long.
const HTTP2_KEEPALIVE: Duration = Duration::from_secs(5);

/// Maps an etcd client error (or a timeout) to a discovery error.
pub(super) fn backend(what: &str, e: impl std::fmt::Display) -> DiscoveryError {
    DiscoveryError::Backend(format!("etcd {what}: {e}"))
}

/// Runs one etcd call with the request timeout.
pub(super) async fn bounded<T>(
    limit: Duration,
    what: &str,
    call: impl Future<Output = Result<T, etcd_client::Error>>,
) -> Result<T, DiscoveryError> {
    match timeout(limit, call).await {
        Ok(Ok(value)) => Ok(value),
        Ok(Err(e)) => Err(backend(what, e)),
        Err(_) => Err(backend(what, format!("no answer within {limit:?}"))),
    }
}

fn connect_options(config: &EtcdConfig) -> Result<ConnectOptions, DiscoveryError> {
    let mut options = ConnectOptions::new()
        .with_connect_timeout(config.request_timeout)
        .with_keep_alive(HTTP2_KEEPALIVE, config.request_timeout)
        .with_keep_alive_while_idle(true);
    if let Some(auth) = &config.auth {
        options = options
            .with_user(auth.username.clone(), auth.password.clone())
            .with_auto_token_refresh(true);
    }
    if let Some(tls) = &config.tls {
        options = options.with_tls(tls_options(tls)?);
    }
    Ok(options)
}

/// Reads the PEM files of `tls` into the client's TLS settings.
fn tls_options(tls: &EtcdTls) -> Result<TlsOptions, DiscoveryError> {
    let read = |path: &std::path::Path| {
        std::fs::read(path).map_err(|source| DiscoveryError::Io {
            path: path.to_owned(),
            source,
        })
    };
    let mut options = TlsOptions::new().ca_certificate(Certificate::from_pem(read(&tls.ca)?));
    if let Some((cert, key)) = &tls.client {
        options = options.identity(Identity::from_pem(read(cert)?, read(key)?));
    }
    Ok(options)
}

/// One attempt: connect and grant the primary lease.
async fn try_start(config: &EtcdConfig) -> Result<(Client, i64), DiscoveryError> {
    let urls = config.endpoint_urls();
    let mut client = bounded(
        config.request_timeout,
        "connect",
        Client::connect(&urls, Some(connect_options(config)?)),
    )
    .await?;
    let granted = bounded(
        config.request_timeout,
        "lease grant",
        client.lease_grant(config.lease_ttl_secs(), None),
    )
    .await?;
    Ok((client, granted.id()))
}

/// Connects and grants the primary lease, retrying with backoff for up to
/// `config.startup_timeout`.
pub(super) async fn start(config: &EtcdConfig) -> Result<(Client, i64), DiscoveryError> {
    let give_up = Instant::now() + config.startup_timeout;
    let mut backoff = FIRST_BACKOFF;
    loop {
        // Boxed: the etcd client's connect future is large (~19 KB).
        match Box::pin(try_start(config)).await {
            Ok(started) => return Ok(started),
            Err(e) if Instant::now() + backoff >= give_up => return Err(e),
            Err(e) => {
                tracing::info!(error = %e, ?backoff, "etcd discovery: not reachable yet, retrying");
                sleep(backoff).await;
                backoff = (backoff * 2).min(MAX_BACKOFF);
            }
        }
    }
}

/// The open keep-alive stream, if any.
type KeepAliveStream = Option<(LeaseKeeper, LeaseKeepAliveStream)>;

/// One renewal: the TTL etcd granted (zero when the lease no longer exists).
async fn renew(
    client: &Client,
    lease: i64,
    stream: &mut KeepAliveStream,
) -> Result<i64, etcd_client::Error> {
    let open = match stream.take() {
        Some(open) => open,
        None => client.lease_client().keep_alive(lease).await?,
    };
    let (keeper, responses) = stream.insert(open);
    // The request sent when the stream opens goes unanswered by etcd 3.4, so every round
    // sends its own request and waits for one answer.
    keeper.keep_alive().await?;
    match responses.message().await? {
        Some(response) => Ok(response.ttl()),
        None => Err(etcd_client::Error::LeaseKeepAliveError(
            "keep-alive stream closed".to_owned(),
        )),
    }
}

/// Whether etcd answered that the lease does not exist (it expired, was revoked, or etcd
/// came back without its data): retrying cannot bring it back.
fn lease_is_gone(error: &etcd_client::Error) -> bool {
    match error {
        etcd_client::Error::GRpcStatus(status) => status.message().contains("lease not found"),
        etcd_client::Error::LeaseKeepAliveError(message) => message.contains("lease not found"),
        _ => false,
    }
}

/// Keeps `lease` alive until `shutdown` is cancelled; cancels `lost` if the lease is lost.
pub(super) async fn keep_alive(
    client: Client,
    lease: i64,
    config: EtcdConfig,
    shutdown: CancellationToken,
    lost: CancellationToken,
) {
    let ttl = Duration::from_secs(config.lease_ttl.as_secs().max(1));
    let retry = (ttl / 10).clamp(Duration::from_millis(100), Duration::from_secs(1));
    let mut deadline = Instant::now() + ttl;
    let mut stream: KeepAliveStream = None;
    loop {
        let limit = config
            .request_timeout
            .min(deadline.saturating_duration_since(Instant::now()))
            .max(Duration::from_millis(50));
        let renewed = tokio::select! {
            () = shutdown.cancelled() => return,
            r = timeout(limit, renew(&client, lease, &mut stream)) => r,
        };
        let pause = match renewed {
            Ok(Ok(granted)) if granted > 0 => {
                let granted = Duration::from_secs(granted.unsigned_abs());
                deadline = Instant::now() + granted;
                granted / 3
            }
            Ok(Ok(_)) => {
                tracing::error!(
                    lease = format_args!("{lease:x}"),
                    "etcd discovery: primary lease expired or revoked"
                );
                lost.cancel();
                return;
            }
            Ok(Err(e)) if lease_is_gone(&e) => {
                tracing::error!(
                    lease = format_args!("{lease:x}"),
                    error = %e,
                    "etcd discovery: etcd no longer knows the primary lease"
                );
                lost.cancel();
                return;
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "etcd discovery: lease keep-alive failed, retrying");
                stream = None;
                retry
            }
            Err(_) => {
                tracing::warn!("etcd discovery: lease keep-alive timed out, retrying");
                stream = None;
                retry
            }
        };
        if Instant::now() >= deadline {
            tracing::error!(
                lease = format_args!("{lease:x}"),
                "etcd discovery: primary lease not renewed before its TTL ran out"
            );
            lost.cancel();
            return;
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = sleep(pause) => {}
        }
    }
}
