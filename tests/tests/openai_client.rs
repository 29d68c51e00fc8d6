//! A real third-party client, `async-openai`, drives the frontend unmodified.

use async_openai::Client;
use async_openai::config::OpenAIConfig;
use async_openai::types::{ChatCompletionRequestUserMessageArgs, CreateChatCompletionRequestArgs};
use futures::StreamExt;
use stator_e2e::{Cluster, ClusterSpec, MODEL};

#[tokio::test]
async fn async_openai_chat_and_stream() {
    let cluster = tokio::task::spawn_blocking(|| {
        Cluster::start(&ClusterSpec::echo(
            env!("CARGO_BIN_EXE_e2e-frontend"),
            env!("CARGO_BIN_EXE_e2e-worker"),
        ))
    })
    .await
    .unwrap();
    let config = OpenAIConfig::new()
        .with_api_base(format!("http://{}/v1", cluster.addr))
        .with_api_key("unused");
    let client = Client::with_config(config);
    let request = CreateChatCompletionRequestArgs::default()
        .model(MODEL)
        .max_tokens(4_u32)
        .messages([ChatCompletionRequestUserMessageArgs::default()
            .content("Hello there")
            .build()
            .unwrap()
            .into()])
        .build()
        .unwrap();

    let response = client.chat().create(request.clone()).await.unwrap();
    assert_eq!(response.choices.len(), 1);
    assert_eq!(
        response.choices[0].message.content.as_deref(),
        Some("system\nYou")
    );
    assert_eq!(response.usage.unwrap().completion_tokens, 4);

    let mut stream = client.chat().create_stream(request).await.unwrap();
    let mut text = String::new();
    let mut finished = false;
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.unwrap();
        for choice in chunk.choices {
            text.push_str(choice.delta.content.as_deref().unwrap_or(""));
            finished |= choice.finish_reason.is_some();
        }
    }
    assert!(finished);
    assert_eq!(text, "system\nYou");
    tokio::task::spawn_blocking(move || drop(cluster))
        .await
        .unwrap();
}
