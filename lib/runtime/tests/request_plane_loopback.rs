//! The TCP request plane end to end inside one process, over loopback.

use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use serde::{Deserialize, Serialize};
use stator_runtime::engine::{AsyncEngine, Context, Request, ResponseStream};
use stator_runtime::error::{ErrorClass, StatorError};
use stator_runtime::request_plane::{
    EngineHandler, RequestPlaneClient, RequestPlaneConfig, RequestPlaneServer, RequestTarget,
    TcpTarget,
};
use stator_runtime::wire::Codec;
use tokio::sync::mpsc;

const PATH: &str = "1f/ns/comp/ep";
const GENEROUS: Duration = Duration::from_secs(20);

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Ask {
    text: String,
    items: u32,
    /// Delay between items, milliseconds.
    pace_ms: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
struct Item {
    text: String,
    index: u32,
}

/// Streams `items` copies of the text; refuses empty text; reports how each request ended.
struct Echo {
    ended: mpsc::UnboundedSender<(String, &'static str)>,
}

#[async_trait]
impl AsyncEngine<Request<Ask>, ResponseStream<Item>> for Echo {
    async fn generate(&self, request: Request<Ask>) -> Result<ResponseStream<Item>, StatorError> {
        let (ask, ctx) = request.into_parts();
        if ask.text.is_empty() {
            return Err(StatorError::invalid_request("text must not be empty"));
        }
        let ended = self.ended.clone();
        let stream_ctx = ctx.clone();
        let items = async_stream(ask, ctx, ended);
        Ok(ResponseStream::new(items, stream_ctx))
    }
}

fn async_stream(
    ask: Ask,
    ctx: Context,
    ended: mpsc::UnboundedSender<(String, &'static str)>,
) -> impl futures::Stream<Item = Item> + Send {
    let (tx, rx) = mpsc::channel(4);
    tokio::spawn(async move {
        for index in 0..ask.items {
            if ctx.is_stopped() {
                break;
            }
            if ask.pace_ms > 0 {
                tokio::select! {
                    () = ctx.stopped() => break,
                    () = tokio::time::sleep(Duration::from_millis(ask.pace_ms)) => {}
                }
            }
            let item = Item {
                text: ask.text.clone(),
                index,
            };
            if tx.send(item).await.is_err() {
                break;
            }
        }
        let how = if ctx.is_killed() {
            "killed"
        } else if ctx.is_stopped() {
            "stopped"
        } else {
            "done"
        };
        let _ = ended.send((ctx.id().to_owned(), how));
    });
    tokio_stream::wrappers::ReceiverStream::new(rx)
}

struct Fixture {
    server: RequestPlaneServer,
    client: Arc<RequestPlaneClient>,
    ended: mpsc::UnboundedReceiver<(String, &'static str)>,
}

async fn fixture(pool: usize, queue: usize) -> Fixture {
    let config = RequestPlaneConfig {
        rpc_host: Some("127.0.0.1".to_owned()),
        response_host: Some("127.0.0.1".to_owned()),
        worker_pool_size: pool,
        work_queue_size: queue,
        ..RequestPlaneConfig::default()
    };
    let server = RequestPlaneServer::bind(&config)
        .await
        .expect("bind server");
    let (tx, ended) = mpsc::unbounded_channel();
    let engine: Arc<dyn AsyncEngine<Request<Ask>, ResponseStream<Item>>> =
        Arc::new(Echo { ended: tx });
    server.register(
        PATH,
        Arc::new(EngineHandler::new(engine, config.max_message_size)),
    );
    let client = RequestPlaneClient::new(config).await.expect("client");
    Fixture {
        server,
        client,
        ended,
    }
}

fn target(server: &RequestPlaneServer, codec: Codec) -> RequestTarget {
    TcpTarget::parse(&format!("{}/{PATH}", server.address()), codec)
        .expect("transport")
        .into()
}

fn ask(text: &str, items: u32, pace_ms: u64) -> Ask {
    Ask {
        text: text.to_owned(),
        items,
        pace_ms,
    }
}

async fn within<T>(fut: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(GENEROUS, fut)
        .await
        .expect("finished within the generous timeout")
}

#[tokio::test]
async fn streams_all_items_with_both_codecs() {
    let fx = fixture(16, 16).await;
    for codec in [Codec::Json, Codec::Msgpack] {
        let stream = within(
            fx.client
                .generate::<_, Item>(&target(&fx.server, codec), Request::new(ask("hi", 5, 0))),
        )
        .await
        .expect("accepted");
        let items = within(stream.try_collect_items())
            .await
            .expect("complete stream");
        assert_eq!(items.len(), 5);
        assert!(
            items
                .iter()
                .enumerate()
                .all(|(i, it)| it.index == i as u32 && it.text == "hi")
        );
    }
}

#[tokio::test]
async fn many_concurrent_requests_share_the_pipelined_connection() {
    let fx = fixture(64, 1024).await;
    let target = target(&fx.server, Codec::Msgpack);
    let calls = (0..200).map(|i| {
        let client = Arc::clone(&fx.client);
        let target = target.clone();
        async move {
            let text = format!("r{i}");
            let stream = client
                .generate::<_, Item>(&target, Request::new(ask(&text, 3, 0)))
                .await?;
            let items = stream.try_collect_items().await?;
            Ok::<_, StatorError>(items.iter().all(|it| it.text == text) && items.len() == 3)
        }
    });
    let results = within(futures::future::join_all(calls)).await;
    assert!(results.into_iter().all(|r| r.expect("request succeeded")));
}

#[tokio::test]
async fn generate_errors_arrive_typed_in_the_prologue() {
    let fx = fixture(4, 4).await;
    let err = within(fx.client.generate::<_, Item>(
        &target(&fx.server, Codec::Json),
        Request::new(ask("", 1, 0)),
    ))
    .await
    .expect_err("empty text is refused");
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
    assert_eq!(err.message(), "text must not be empty");
}

#[tokio::test]
async fn undecodable_requests_are_invalid() {
    let fx = fixture(4, 4).await;
    let err = within(
        fx.client
            .generate::<_, Item>(&target(&fx.server, Codec::Json), Request::new(42u32)),
    )
    .await
    .expect_err("wrong request type");
    assert_eq!(err.class(), ErrorClass::InvalidRequest);
}

#[tokio::test]
async fn unknown_endpoints_get_an_unavailable_ack() {
    let fx = fixture(4, 4).await;
    let wrong: RequestTarget = TcpTarget::parse(
        &format!("{}/2f/ns/comp/ep", fx.server.address()),
        Codec::Json,
    )
    .expect("transport")
    .into();
    let err = within(
        fx.client
            .generate::<_, Item>(&wrong, Request::new(ask("x", 1, 0))),
    )
    .await
    .expect_err("unknown path");
    assert_eq!(err.specific_class(), ErrorClass::WorkerUnavailable);
    assert!(
        err.message()
            .starts_with("Server unavailable: unknown endpoint 2f/ns/comp/ep")
    );
}

#[tokio::test]
async fn full_pool_and_queue_answer_overloaded() {
    let fx = fixture(1, 0).await;
    let target = target(&fx.server, Codec::Json);
    let busy = within(
        fx.client
            .generate::<_, Item>(&target, Request::new(ask("slow", 1000, 20))),
    )
    .await
    .expect("first request runs");
    let err = within(
        fx.client
            .generate::<_, Item>(&target, Request::new(ask("x", 1, 0))),
    )
    .await
    .expect_err("no slot left");
    assert_eq!(err.specific_class(), ErrorClass::WorkerOverloaded);
    assert_eq!(err.message(), "Server overloaded: worker at capacity");
    drop(busy);
}

#[tokio::test]
async fn queued_requests_run_when_a_slot_frees() {
    let fx = fixture(1, 4).await;
    let target = target(&fx.server, Codec::Json);
    let first = within(
        fx.client
            .generate::<_, Item>(&target, Request::new(ask("a", 3, 5))),
    )
    .await
    .expect("runs");
    let second = fx
        .client
        .generate::<_, Item>(&target, Request::new(ask("b", 2, 0)));
    let (a, b) = within(async {
        tokio::join!(first.try_collect_items(), async {
            second.await?.try_collect_items().await
        })
    })
    .await;
    assert_eq!(a.expect("first").len(), 3);
    assert_eq!(b.expect("second").len(), 2);
}

#[tokio::test]
async fn dropping_the_stream_kills_the_worker_side() {
    let mut fx = fixture(4, 4).await;
    let ctx = Context::with_id("drop-me");
    let mut stream = within(fx.client.generate::<_, Item>(
        &target(&fx.server, Codec::Msgpack),
        Request::with_context(ask("x", 100_000, 5), ctx),
    ))
    .await
    .expect("accepted");
    within(stream.next())
        .await
        .expect("one item")
        .expect("ok item");
    drop(stream);
    let (id, how) = within(fx.ended.recv()).await.expect("engine reports");
    assert_eq!((id.as_str(), how), ("drop-me", "killed"));
}

#[tokio::test]
async fn stop_generating_ends_the_stream_gracefully() {
    let mut fx = fixture(4, 4).await;
    let ctx = Context::new();
    let mut stream = within(fx.client.generate::<_, Item>(
        &target(&fx.server, Codec::Json),
        Request::with_context(ask("x", 100_000, 5), ctx.clone()),
    ))
    .await
    .expect("accepted");
    within(stream.next())
        .await
        .expect("one item")
        .expect("ok item");
    ctx.stop_generating();
    let rest: Vec<_> = within(stream.collect()).await;
    assert!(
        rest.iter().all(Result::is_ok),
        "a stopped stream ends without an error"
    );
    let (_, how) = within(fx.ended.recv()).await.expect("engine reports");
    assert_eq!(how, "stopped");
}

#[tokio::test]
async fn unreachable_workers_are_cannot_connect() {
    let fx = fixture(1, 1).await;
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    drop(listener);
    let dead: RequestTarget = TcpTarget::parse(&format!("127.0.0.1:{port}/{PATH}"), Codec::Json)
        .expect("transport")
        .into();
    let err = within(
        fx.client
            .generate::<_, Item>(&dead, Request::new(ask("x", 1, 0))),
    )
    .await
    .expect_err("nobody listens");
    assert_eq!(err.specific_class(), ErrorClass::CannotConnect);
}

#[tokio::test]
async fn shutdown_drains_then_refuses() {
    let fx = fixture(4, 4).await;
    let target = target(&fx.server, Codec::Json);
    let stream = within(
        fx.client
            .generate::<_, Item>(&target, Request::new(ask("x", 5, 10))),
    )
    .await
    .expect("accepted");
    let (drained, items) =
        within(async { tokio::join!(fx.server.shutdown(GENEROUS), stream.try_collect_items()) })
            .await;
    assert!(drained);
    assert_eq!(items.expect("in-flight request finished").len(), 5);
    assert_eq!(fx.server.inflight(), 0);
}
