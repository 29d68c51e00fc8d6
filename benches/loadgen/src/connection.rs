//! One keep-alive HTTP/1.1 connection per closed-loop task.
//!
//! A pooled client gets a connection back only once the connection task has processed the
//! end of the previous response. A closed-loop task that sends its next request at once then
//! finds no idle connection, and hyper-util's pool races a fresh connect against the return:
//! at c = 1 about one request in four arrived on a new connection (464 `accept4` per 2000
//! requests in the frontend), so the server paid an accept, a connection task and a teardown
//! the benchmark never meant to measure. A task that owns its connection waits until it is
//! ready instead, as `wrk` does; it reconnects only when the server closed it.

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::Full;
use hyper::body::Incoming;
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::HOST;
use hyper::{Request, Response, Uri};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;

use crate::request::RequestError;

/// A keep-alive connection to the benchmark's server, opened on first use.
#[derive(Default)]
pub struct Connection {
    sender: Option<SendRequest<Full<Bytes>>>,
}

impl Connection {
    /// Sends `request` (origin-form target and `Host` are set from `uri`) once the connection
    /// is ready for it, connecting first when there is no open connection.
    pub async fn send(
        &mut self,
        uri: &Uri,
        mut request: Request<Full<Bytes>>,
    ) -> Result<Response<Incoming>, RequestError> {
        if let Some(sender) = self.sender.as_mut()
            && sender.ready().await.is_err()
        {
            self.sender = None;
        }
        let mut sender = match self.sender.take() {
            Some(sender) => sender,
            None => connect(uri).await?,
        };
        *request.uri_mut() = uri
            .path_and_query()
            .map_or("/", |p| p.as_str())
            .parse()
            .map_err(|e| RequestError::Transport(format!("{e}")))?;
        if let Some(authority) = uri.authority() {
            let host = authority
                .as_str()
                .parse()
                .map_err(|e| RequestError::Transport(format!("{e}")))?;
            request.headers_mut().insert(HOST, host);
        }
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| RequestError::Transport(format!("{e:?}")))?;
        self.sender = Some(sender);
        Ok(response)
    }
}

async fn connect(uri: &Uri) -> Result<SendRequest<Full<Bytes>>, RequestError> {
    let host = uri
        .host()
        .ok_or_else(|| RequestError::Transport(format!("no host in {uri}")))?;
    let port = uri.port_u16().unwrap_or(80);
    let stream = TcpStream::connect((host, port))
        .await
        .map_err(|e| RequestError::Transport(format!("connect {host}:{port}: {e}")))?;
    stream
        .set_nodelay(true)
        .map_err(|e| RequestError::Transport(e.to_string()))?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|e| RequestError::Transport(format!("{e:?}")))?;
    tokio::spawn(async move {
        // The connection ends when the server closes it or the sender is dropped; either way
        // the next request reconnects.
        let _ = connection.await;
    });
    Ok(sender)
}

/// Connections kept between rows (and from warm-up to the measured phase), lent to one task
/// at a time.
#[derive(Clone, Default)]
pub struct Connections {
    idle: Arc<Mutex<Vec<Connection>>>,
}

impl Connections {
    /// An idle connection, or a new (not yet opened) one.
    pub fn take(&self) -> Connection {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .pop()
            .unwrap_or_default()
    }

    /// Keeps `connection` for a later task.
    pub fn give_back(&self, connection: Connection) {
        self.idle
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .push(connection);
    }
}
