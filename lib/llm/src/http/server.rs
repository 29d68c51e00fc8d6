//! The HTTP/1 accept loop: one task per connection, each polled through
//! [`RepollSelfWakes`], with graceful shutdown.
//!
//! `axum::serve` would do the same minus the wrapper, which needs to sit around the
//! connection future inside its task; see [`super::self_wake`] for why it matters.

use std::future::Future;
use std::io;
use std::time::Duration;

use hyper::server::conn::http1;
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::GracefulShutdown;
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;

use super::self_wake::RepollSelfWakes;

/// Pause after an accept error that is not about one connection (e.g. out of file
/// descriptors), so the loop does not spin while the condition lasts.
const ACCEPT_ERROR_PAUSE: Duration = Duration::from_millis(100);

/// Serves `router` on `listener` until `shutdown` resolves, then stops accepting and waits
/// for the open connections to finish their in-flight requests.
pub(crate) async fn serve(
    listener: TcpListener,
    router: axum::Router,
    shutdown: impl Future<Output = ()> + Send + 'static,
) {
    let graceful = GracefulShutdown::new();
    let mut shutdown = std::pin::pin!(shutdown);
    loop {
        let accepted = tokio::select! {
            accepted = listener.accept() => accepted,
            () = &mut shutdown => break,
        };
        let tcp = match accepted {
            Ok((tcp, _peer)) => tcp,
            Err(e) if is_connection_error(&e) => continue,
            Err(e) => {
                tracing::warn!(error = %e, "accepting an HTTP connection failed");
                tokio::time::sleep(ACCEPT_ERROR_PAUSE).await;
                continue;
            }
        };
        // Without TCP_NODELAY the first SSE chunk waits behind the response head for the
        // client's delayed ACK (a 40 ms TTFT stall at low concurrency).
        if let Err(e) = tcp.set_nodelay(true) {
            tracing::debug!(error = %e, "cannot set TCP_NODELAY");
        }
        let service = TowerToHyperService::new(router.clone());
        let connection = http1::Builder::new().serve_connection(TokioIo::new(tcp), service);
        let connection = graceful.watch(connection);
        tokio::spawn(RepollSelfWakes::new(async move {
            if let Err(e) = connection.await {
                tracing::trace!(error = %e, "HTTP connection ended with an error");
            }
        }));
    }
    drop(listener);
    graceful.shutdown().await;
}

/// Errors that concern only the connection being accepted.
fn is_connection_error(e: &io::Error) -> bool {
    matches!(
        e.kind(),
        io::ErrorKind::ConnectionRefused
            | io::ErrorKind::ConnectionAborted
            | io::ErrorKind::ConnectionReset
    )
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use axum::routing::get;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use super::*;

    const REQUEST: &[u8] = b"GET /slow HTTP/1.1\r\nhost: test\r\nconnection: close\r\n\r\n";

    async fn slow() -> &'static str {
        tokio::time::sleep(Duration::from_millis(300)).await;
        "done"
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn shutdown_lets_the_request_in_flight_finish_and_stops_accepting() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let router = axum::Router::new().route("/slow", get(slow));
        let server = tokio::spawn(serve(listener, router, async {
            let _ = stopped.await;
        }));

        let mut client = TcpStream::connect(address).await.expect("connect");
        client.write_all(REQUEST).await.expect("send");
        tokio::time::sleep(Duration::from_millis(100)).await;
        stop.send(()).expect("server running");

        let mut answer = String::new();
        tokio::time::timeout(Duration::from_secs(10), client.read_to_string(&mut answer))
            .await
            .expect("answered in time")
            .expect("read");
        assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
        assert!(answer.ends_with("done"), "{answer}");

        tokio::time::timeout(Duration::from_secs(10), server)
            .await
            .expect("server stopped")
            .expect("server task");
        assert!(TcpStream::connect(address).await.is_err());
    }

    #[tokio::test]
    async fn keep_alive_connections_serve_several_requests() {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let address = listener.local_addr().expect("address");
        let router = axum::Router::new().route("/", get(|| async { "hi" }));
        tokio::spawn(serve(listener, router, std::future::pending()));
        let mut client = TcpStream::connect(address).await.expect("connect");
        for _ in 0..3 {
            client
                .write_all(b"GET / HTTP/1.1\r\nhost: test\r\n\r\n")
                .await
                .expect("send");
            let mut answer = String::new();
            while !answer.ends_with("\r\n\r\nhi") {
                let mut buf = [0_u8; 1024];
                let n = tokio::time::timeout(Duration::from_secs(10), client.read(&mut buf))
                    .await
                    .expect("answered in time")
                    .expect("read");
                assert!(n > 0, "connection closed after {answer:?}");
                answer.push_str(&String::from_utf8_lossy(&buf[..n]));
            }
            assert!(answer.starts_with("HTTP/1.1 200 OK"), "{answer}");
            assert!(answer.ends_with("hi"), "{answer}");
        }
    }
}
