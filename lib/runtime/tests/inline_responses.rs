//! Inline response streams (Stator client ⇄ Stator worker on one TCP connection) and their
//! fallback to the call-home protocol, in one process over loopback. Raw sockets stand in for
//! the peer where a test needs to see or control the bytes.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use bytes::BytesMut;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use stator_runtime::engine::{AsyncEngine, Context, Request, ResponseStream};
use stator_runtime::error::{ErrorClass, StatorError};
use stator_runtime::request_plane::{
    EngineHandler, RequestPlaneClient, RequestPlaneConfig, RequestPlaneServer, RequestTarget,
    TcpTarget,
};
use stator_runtime::wire::{
    Ack, Codec, ConnectionInfo, ControlMessage, DEFAULT_MAX_MESSAGE_SIZE, Frame,
    INLINE_CONTROL_PATH, INLINE_RESPONSE_HEADER, InlineFrame, NetworkStreamWrapper,
    RequestControlMessage, RequestFrame, RequestType, ResponseStreamPrologue, ResponseType,
    ServerRecord, StreamId, StreamType, TcpStreamConnectionInfo, TwoPartMessage,
};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::mpsc;

const PATH: &str = "2a/ns/comp/ep";
const MAX: usize = DEFAULT_MAX_MESSAGE_SIZE;
const GENEROUS: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ask {
    text: String,
    items: u32,
    pace_ms: u64,
    /// Delay before `generate()` returns its stream, milliseconds.
    #[serde(default)]
    start_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Item {
    text: String,
    index: u32,
}

/// Streams `items` copies of the text; reports how each request ended.
struct Echo {
    ended: mpsc::UnboundedSender<(String, &'static str)>,
}

#[async_trait]
impl AsyncEngine<Request<Ask>, ResponseStream<Item>> for Echo {
    async fn generate(&self, request: Request<Ask>) -> Result<ResponseStream<Item>, StatorError> {
        let (ask, ctx) = request.into_parts();
        if ask.start_ms > 0 {
            tokio::time::sleep(Duration::from_millis(ask.start_ms)).await;
        }
        let (tx, rx) = mpsc::channel(4);
        let ended = self.ended.clone();
        let producer = ctx.clone();
        tokio::spawn(async move {
            for index in 0..ask.items {
                if producer.is_stopped() {
                    break;
                }
                if ask.pace_ms > 0 {
                    tokio::select! {
                        () = producer.stopped() => break,
                        () = tokio::time::sleep(Duration::from_millis(ask.pace_ms)) => {}
                    }
                }
                let item = Item {
                    text: ask.text.clone(),
                    index,
                };
                if tx.send(item).await.is_err() {
                    // The stream was dropped: the kill follows.
                    let _ = tokio::time::timeout(GENEROUS, producer.killed()).await;
                    break;
                }
            }
            let how = if producer.is_killed() {
                "killed"
            } else if producer.is_stopped() {
                "stopped"
            } else {
                "done"
            };
            let _ = ended.send((producer.id().to_owned(), how));
        });
        Ok(ResponseStream::new(
            tokio_stream::wrappers::ReceiverStream::new(rx),
            ctx,
        ))
    }
}

fn config(inline: bool) -> RequestPlaneConfig {
    RequestPlaneConfig {
        rpc_host: Some("127.0.0.1".to_owned()),
        response_host: Some("127.0.0.1".to_owned()),
        inline_responses: inline,
        ..RequestPlaneConfig::default()
    }
}

struct Worker {
    server: RequestPlaneServer,
    ended: mpsc::UnboundedReceiver<(String, &'static str)>,
}

async fn worker(inline: bool) -> Worker {
    let server = RequestPlaneServer::bind(&config(inline))
        .await
        .expect("bind server");
    let (tx, ended) = mpsc::unbounded_channel();
    let engine: Arc<dyn AsyncEngine<Request<Ask>, ResponseStream<Item>>> =
        Arc::new(Echo { ended: tx });
    server.register(PATH, Arc::new(EngineHandler::new(engine, MAX)));
    Worker { server, ended }
}

async fn client(inline: bool, buffer: Option<usize>) -> Arc<RequestPlaneClient> {
    let mut cfg = config(inline);
    if let Some(buffer) = buffer {
        cfg.inline_stream_buffer = buffer;
    }
    RequestPlaneClient::new(cfg).await.expect("client")
}

fn target(address: &str, codec: Codec) -> RequestTarget {
    TcpTarget::parse(&format!("{address}/{PATH}"), codec)
        .expect("transport")
        .into()
}

fn ask(text: &str, items: u32, pace_ms: u64) -> Ask {
    Ask {
        text: text.to_owned(),
        items,
        pace_ms,
        start_ms: 0,
    }
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GENEROUS, fut)
        .await
        .expect("finished within the generous timeout")
}

/// A request frame as a Stator client sends it: JSON body, call-home info for `home`, and
/// the inline header for `stream`.
fn raw_request(id: &str, ask: &Ask, home: &str, stream: Option<u32>) -> Vec<u8> {
    let info = TcpStreamConnectionInfo {
        address: home.to_owned(),
        subject: format!("subject-{id}"),
        context: id.to_owned(),
        stream_type: StreamType::Response,
    };
    let control = RequestControlMessage {
        id: id.to_owned(),
        request_type: RequestType::SingleIn,
        response_type: ResponseType::ManyOut,
        payload_codec: Codec::Json,
        connection_info: ConnectionInfo {
            transport: "tcp_server".to_owned(),
            info: serde_json::to_string(&info).expect("info"),
        },
        metadata: None,
        frontend_send_ts_ns: None,
        request_stream_connection_info: None,
    };
    let mut headers = BTreeMap::from([("request-id".to_owned(), id.to_owned())]);
    if let Some(stream) = stream {
        headers.insert(INLINE_RESPONSE_HEADER.to_owned(), stream.to_string());
    }
    let frame = RequestFrame {
        path: PATH.to_owned(),
        headers,
        payload: TwoPartMessage {
            header: serde_json::to_vec(&control).expect("control").into(),
            body: serde_json::to_vec(ask).expect("body").into(),
        }
        .to_bytes(),
    };
    let mut wire = BytesMut::new();
    frame.encode(&mut wire).expect("frame");
    wire.to_vec()
}

/// Reads server records from a raw request connection.
struct RawConnection {
    socket: TcpStream,
    buf: BytesMut,
}

impl RawConnection {
    async fn open(address: &str) -> Self {
        Self {
            socket: TcpStream::connect(address).await.expect("connect"),
            buf: BytesMut::new(),
        }
    }

    async fn send(&mut self, bytes: &[u8]) {
        self.socket.write_all(bytes).await.expect("write");
    }

    async fn next(&mut self) -> ServerRecord {
        loop {
            if let Some(record) = ServerRecord::decode(&mut self.buf, MAX).expect("valid record") {
                return record;
            }
            let n = self.socket.read_buf(&mut self.buf).await.expect("read");
            assert!(n > 0, "the worker closed the request connection");
        }
    }

    /// Reads until `stream`'s sentinel; returns its messages (acks are collected too).
    async fn read_stream(&mut self, stream: u32, acks: &mut Vec<Ack>) -> Vec<TwoPartMessage> {
        let mut messages = Vec::new();
        loop {
            match self.next().await {
                ServerRecord::Ack(ack) => acks.push(ack),
                ServerRecord::Inline(frame) => {
                    assert_eq!(frame.stream, StreamId(stream));
                    let end = frame.message.header.as_ref() == ControlMessage::Sentinel.header();
                    messages.push(frame.message);
                    if end {
                        return messages;
                    }
                }
            }
        }
    }
}

#[tokio::test]
async fn a_stator_worker_answers_on_the_request_connection() {
    let fx = worker(true).await;
    let home = std::net::TcpListener::bind("127.0.0.1:0").expect("call-home listener");
    home.set_nonblocking(true).expect("nonblocking");
    let home_addr = home.local_addr().expect("addr").to_string();
    let mut conn = RawConnection::open(fx.server.address()).await;
    conn.send(&raw_request("r1", &ask("hi", 3, 0), &home_addr, Some(5)))
        .await;
    let mut acks = Vec::new();
    let messages = within(conn.read_stream(5, &mut acks)).await;
    while acks.is_empty() {
        match within(conn.next()).await {
            ServerRecord::Ack(ack) => acks.push(ack),
            ServerRecord::Inline(frame) => panic!("unexpected record {frame:?}"),
        }
    }
    assert_eq!(acks, vec![Ack::Accepted]);
    // Prologue, three items, final frame, sentinel: the call-home stream's messages.
    assert_eq!(messages.len(), 6);
    let prologue: ResponseStreamPrologue =
        serde_json::from_slice(&messages[0].header).expect("prologue");
    assert_eq!(prologue.error, None);
    for (i, msg) in messages[1..4].iter().enumerate() {
        let item: NetworkStreamWrapper<Item> = serde_json::from_slice(&msg.body).expect("item");
        assert_eq!(item.data.expect("data").index, i as u32);
        assert!(!item.complete_final);
    }
    let last: NetworkStreamWrapper<Item> =
        serde_json::from_slice(&messages[4].body).expect("final");
    assert!(last.complete_final && last.data.is_none());
    assert!(
        home.accept().is_err(),
        "the worker must not dial back for an inline stream"
    );
}

#[tokio::test]
async fn every_mix_of_inline_settings_streams_all_items() {
    for (client_inline, worker_inline) in [(true, true), (true, false), (false, true)] {
        let fx = worker(worker_inline).await;
        let client = client(client_inline, None).await;
        for codec in [Codec::Json, Codec::Msgpack] {
            let stream = within(client.generate::<_, Item>(
                &target(fx.server.address(), codec),
                Request::new(ask("mix", 5, 0)),
            ))
            .await
            .expect("accepted");
            let items = within(stream.try_collect_items()).await.expect("complete");
            let indices: Vec<u32> = items.iter().map(|i| i.index).collect();
            assert_eq!(
                indices,
                vec![0, 1, 2, 3, 4],
                "{client_inline}/{worker_inline}"
            );
        }
    }
}

#[tokio::test]
async fn a_worker_with_inline_off_dials_back_like_dynamo() {
    let fx = worker(false).await;
    let home = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let home_addr = home.local_addr().expect("addr").to_string();
    let mut conn = RawConnection::open(fx.server.address()).await;
    conn.send(&raw_request("r2", &ask("x", 1, 0), &home_addr, Some(1)))
        .await;
    assert_eq!(within(conn.next()).await, ServerRecord::Ack(Ack::Accepted));
    let (mut dialed, _) = within(home.accept()).await.expect("the worker dials back");
    let mut buf = BytesMut::new();
    let handshake = within(stator_runtime::wire::read_frame::<TwoPartMessage, _>(
        &mut dialed,
        &mut buf,
        MAX,
    ))
    .await
    .expect("frame")
    .expect("handshake");
    let handshake: stator_runtime::wire::CallHomeHandshake =
        serde_json::from_slice(&handshake.header).expect("handshake json");
    assert_eq!(handshake.subject, "subject-r2");
}

#[tokio::test]
async fn stop_and_kill_reach_the_engine_over_the_inline_path() {
    let mut fx = worker(true).await;
    let client = client(true, None).await;
    let target = target(fx.server.address(), Codec::Msgpack);

    let ctx = Context::with_id("stop-me");
    let mut stream = within(client.generate::<_, Item>(
        &target,
        Request::with_context(ask("s", 100_000, 5), ctx.clone()),
    ))
    .await
    .expect("accepted");
    within(stream.next()).await.expect("item").expect("ok");
    ctx.stop_generating();
    let rest: Vec<_> = within(stream.collect()).await;
    assert!(
        rest.iter().all(Result::is_ok),
        "a stopped stream ends cleanly"
    );
    assert_eq!(
        within(fx.ended.recv()).await.expect("report"),
        ("stop-me".to_owned(), "stopped")
    );

    let mut stream = within(client.generate::<_, Item>(
        &target,
        Request::with_context(ask("k", 100_000, 5), Context::with_id("drop-me")),
    ))
    .await
    .expect("accepted");
    within(stream.next()).await.expect("item").expect("ok");
    drop(stream);
    assert_eq!(
        within(fx.ended.recv()).await.expect("report"),
        ("drop-me".to_owned(), "killed")
    );

    let ctx = Context::with_id("kill-me");
    let mut stream = within(client.generate::<_, Item>(
        &target,
        Request::with_context(ask("k", 100_000, 5), ctx.clone()),
    ))
    .await
    .expect("accepted");
    within(stream.next()).await.expect("item").expect("ok");
    ctx.kill();
    assert!(
        within(stream.next()).await.is_none(),
        "a killed stream ends"
    );
    assert_eq!(
        within(fx.ended.recv()).await.expect("report"),
        ("kill-me".to_owned(), "killed")
    );
}

#[tokio::test]
async fn a_request_cancelled_before_its_prologue_is_killed_on_the_worker() {
    let mut fx = worker(true).await;
    let client = client(true, None).await;
    let ctx = Context::with_id("early");
    let slow_start = Ask {
        start_ms: 1000,
        ..ask("early", 100_000, 5)
    };
    let target = target(fx.server.address(), Codec::Msgpack);
    let call = client.generate::<_, Item>(&target, Request::with_context(slow_start, ctx.clone()));
    let cancel = async {
        tokio::time::sleep(Duration::from_millis(20)).await;
        ctx.kill();
    };
    let (outcome, ()) = within(async { tokio::join!(call, cancel) }).await;
    let err = outcome.expect_err("cancelled before the worker answered");
    assert_eq!(err.class(), ErrorClass::Cancelled);
    // The worker's stream starts later, finds no consumer, and is killed.
    assert_eq!(
        within(fx.ended.recv()).await.expect("report"),
        ("early".to_owned(), "killed")
    );
}

#[tokio::test]
async fn a_lost_worker_connection_fails_every_inline_stream() {
    let fake = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = fake.local_addr().expect("addr").to_string();
    let worker = tokio::spawn(async move {
        let (mut socket, _) = fake.accept().await.expect("accept");
        let mut input = BytesMut::new();
        let mut streams = Vec::new();
        while streams.len() < 3 {
            socket.read_buf(&mut input).await.expect("read");
            while let Some(frame) = RequestFrame::decode(&mut input, MAX).expect("frame") {
                let id = frame.headers[INLINE_RESPONSE_HEADER].clone();
                streams.push(StreamId::parse(&id).expect("stream id"));
            }
        }
        let mut out = BytesMut::new();
        for stream in streams {
            Ack::Accepted.encode(&mut out).expect("ack");
            let prologue = serde_json::to_vec(&ResponseStreamPrologue {
                error: None,
                typed_error: None,
            })
            .expect("prologue");
            InlineFrame {
                stream,
                message: TwoPartMessage::header_only(prologue),
            }
            .encode(&mut out)
            .expect("prologue");
            let item = NetworkStreamWrapper {
                data: Some(Item {
                    text: "only".to_owned(),
                    index: 0,
                }),
                complete_final: false,
            };
            InlineFrame {
                stream,
                message: TwoPartMessage::body_only(serde_json::to_vec(&item).expect("item")),
            }
            .encode(&mut out)
            .expect("item");
        }
        socket.write_all(&out).await.expect("write");
        // Dropping the socket is the worker dying mid-stream.
    });
    let client = client(true, None).await;
    let target = target(&address, Codec::Json);
    let calls = (0..3).map(|i| {
        let client = Arc::clone(&client);
        let target = target.clone();
        async move {
            let mut stream = client
                .generate::<_, Item>(&target, Request::new(ask(&format!("r{i}"), 9, 0)))
                .await
                .expect("accepted");
            let first = stream.next().await.expect("item").expect("ok item");
            let err = stream
                .next()
                .await
                .expect("an error, not a silent end")
                .expect_err("the connection is gone");
            assert!(stream.next().await.is_none());
            (first.text, err)
        }
    });
    let results = within(futures::future::join_all(calls)).await;
    within(worker).await.expect("fake worker");
    for (text, err) in results {
        assert_eq!(text, "only");
        assert_eq!(err.specific_class(), ErrorClass::Disconnected);
    }
}

#[tokio::test]
async fn a_lost_client_connection_kills_every_inline_stream() {
    let mut fx = worker(true).await;
    let home = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let home_addr = home.local_addr().expect("addr").to_string();
    let mut conn = RawConnection::open(fx.server.address()).await;
    conn.send(&raw_request(
        "a",
        &ask("a", 100_000, 5),
        &home_addr,
        Some(1),
    ))
    .await;
    conn.send(&raw_request(
        "b",
        &ask("b", 100_000, 5),
        &home_addr,
        Some(2),
    ))
    .await;
    let mut seen = HashSet::new();
    while seen.len() < 2 {
        if let ServerRecord::Inline(frame) = within(conn.next()).await
            && frame.message.header.is_empty()
        {
            seen.insert(frame.stream);
        }
    }
    drop(conn);
    let mut ended = vec![
        within(fx.ended.recv()).await.expect("report"),
        within(fx.ended.recv()).await.expect("report"),
    ];
    ended.sort_unstable();
    assert_eq!(
        ended,
        vec![("a".to_owned(), "killed"), ("b".to_owned(), "killed")]
    );
}

#[tokio::test]
async fn a_slow_consumer_does_not_stall_the_other_streams() {
    let mut fx = worker(true).await;
    let client = client(true, Some(4096)).await;
    let target = target(fx.server.address(), Codec::Msgpack);
    let mut stalled = within(client.generate::<_, Item>(
        &target,
        Request::with_context(ask("flood", 1_000_000, 0), Context::with_id("flood")),
    ))
    .await
    .expect("accepted");
    // Same pooled connection; never polled meanwhile.
    let paced = within(client.generate::<_, Item>(
        &target,
        Request::with_context(ask("paced", 20, 1), Context::with_id("paced")),
    ))
    .await
    .expect("accepted");
    let items = within(paced.try_collect_items()).await.expect("complete");
    assert_eq!(items.len(), 20);

    let err = within(async {
        loop {
            match stalled.next().await {
                Some(Ok(_)) => {}
                Some(Err(err)) => return err,
                None => panic!("the overflowing stream must end with an error"),
            }
        }
    })
    .await;
    assert_eq!(err.class(), ErrorClass::CapacityExhausted);
    let mut ended = vec![
        within(fx.ended.recv()).await.expect("report"),
        within(fx.ended.recv()).await.expect("report"),
    ];
    ended.sort_unstable();
    assert_eq!(
        ended,
        vec![("flood".to_owned(), "killed"), ("paced".to_owned(), "done")]
    );
}

#[tokio::test]
async fn garbage_controls_are_ignored_and_garbage_prologues_are_errors() {
    let fx = worker(true).await;
    let home = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let home_addr = home.local_addr().expect("addr").to_string();
    let mut conn = RawConnection::open(fx.server.address()).await;
    let bad_control = RequestFrame {
        path: INLINE_CONTROL_PATH.to_owned(),
        headers: BTreeMap::from([(INLINE_RESPONSE_HEADER.to_owned(), "nope".to_owned())]),
        payload: bytes::Bytes::from_static(b"garbage"),
    };
    let mut wire = BytesMut::new();
    bad_control.encode(&mut wire).expect("frame");
    conn.send(&wire).await;
    conn.send(&raw_request("after", &ask("ok", 1, 0), &home_addr, Some(3)))
        .await;
    let mut acks = Vec::new();
    let messages = within(conn.read_stream(3, &mut acks)).await;
    assert_eq!(messages.len(), 4, "prologue, item, final, sentinel");

    // A fake worker whose inline prologue is not JSON.
    let fake = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let address = fake.local_addr().expect("addr").to_string();
    tokio::spawn(async move {
        let (mut socket, _) = fake.accept().await.expect("accept");
        let mut input = BytesMut::new();
        let frame = loop {
            socket.read_buf(&mut input).await.expect("read");
            if let Some(frame) = RequestFrame::decode(&mut input, MAX).expect("frame") {
                break frame;
            }
        };
        let stream = StreamId::parse(&frame.headers[INLINE_RESPONSE_HEADER]).expect("id");
        let mut out = BytesMut::new();
        Ack::Accepted.encode(&mut out).expect("ack");
        InlineFrame {
            stream,
            message: TwoPartMessage::header_only(&b"{not json"[..]),
        }
        .encode(&mut out)
        .expect("record");
        socket.write_all(&out).await.expect("write");
        // Keep the connection open until the client is done.
        let _ = socket.read_buf(&mut input).await;
    });
    let client = client(true, None).await;
    let err = within(
        client.generate::<_, Item>(&target(&address, Codec::Json), Request::new(ask("x", 1, 0))),
    )
    .await
    .expect_err("malformed prologue");
    assert_eq!(err.class(), ErrorClass::BackendProtocol);
}
