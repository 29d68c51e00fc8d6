//! `POST /v1/chat/completions` and `POST /v1/completions`.

use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use axum::body::{Body, to_bytes};
use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use futures::StreamExt;
use serde::de::DeserializeOwned;
use stator_protocols::ErrorBody;
use stator_protocols::nvext::NvExt;
use stator_protocols::openai::{ChatCompletionRequest, CompletionRequest, Validate, parse_request};
use stator_protocols::worker::RoutingHints;
use stator_runtime::Context;

use super::AppState;
use super::extra_fields::ExtraFields;
use super::metrics::{RequestTracker, UNKNOWN_MODEL};
use super::responses::{ChatShape, CompletionShape, ResponseHead, Shape, UsageTotals};
use super::sse::{record, stream_response};
use crate::model_manager::LookupError;
use crate::pipeline::{ChoiceRequest, ChoiceStream, ModelPipeline, PipelineError};

/// Header naming the worker of a request (router mode `direct`, or pinning).
const WORKER_INSTANCE_HEADER: &str = "x-dynamo-worker-instance-id";
/// Header carrying the client's request UUID (used in the response id).
const DYNAMO_REQUEST_ID_HEADER: &str = "x-dynamo-request-id";
/// Header echoed back verbatim.
const REQUEST_ID_HEADER: &str = "x-request-id";

/// What differs between the two generation APIs.
trait Api {
    type Req: DeserializeOwned + Validate + Send;
    type Out: Shape;
    /// The `endpoint` metric label.
    const ENDPOINT: &'static str;
    /// Prefix of the response id.
    const ID_PREFIX: &'static str;
    fn model(req: &Self::Req) -> &str;
    fn is_stream(req: &Self::Req) -> bool;
    fn include_usage(req: &Self::Req) -> bool;
    fn nvext(req: &Self::Req) -> Option<&NvExt>;
    fn prepare(
        pipeline: &ModelPipeline,
        req: &Self::Req,
    ) -> Result<Vec<ChoiceRequest>, PipelineError>;
    fn shape(head: ResponseHead) -> Self::Out;
}

struct Chat;

impl Api for Chat {
    type Req = ChatCompletionRequest;
    type Out = ChatShape;
    const ENDPOINT: &'static str = "chat_completions";
    const ID_PREFIX: &'static str = "chatcmpl";
    fn model(req: &Self::Req) -> &str {
        &req.inner.model
    }
    fn is_stream(req: &Self::Req) -> bool {
        req.is_stream()
    }
    fn include_usage(req: &Self::Req) -> bool {
        req.include_usage()
    }
    fn nvext(req: &Self::Req) -> Option<&NvExt> {
        req.nvext.as_ref()
    }
    fn prepare(
        pipeline: &ModelPipeline,
        req: &Self::Req,
    ) -> Result<Vec<ChoiceRequest>, PipelineError> {
        pipeline.prepare_chat(req)
    }
    fn shape(head: ResponseHead) -> Self::Out {
        ChatShape::new(head)
    }
}

struct Completions;

impl Api for Completions {
    type Req = CompletionRequest;
    type Out = CompletionShape;
    const ENDPOINT: &'static str = "completions";
    const ID_PREFIX: &'static str = "cmpl";
    fn model(req: &Self::Req) -> &str {
        &req.inner.model
    }
    fn is_stream(req: &Self::Req) -> bool {
        req.is_stream()
    }
    fn include_usage(req: &Self::Req) -> bool {
        req.include_usage()
    }
    fn nvext(req: &Self::Req) -> Option<&NvExt> {
        req.nvext.as_ref()
    }
    fn prepare(
        pipeline: &ModelPipeline,
        req: &Self::Req,
    ) -> Result<Vec<ChoiceRequest>, PipelineError> {
        pipeline.prepare_completion(req)
    }
    fn shape(head: ResponseHead) -> Self::Out {
        CompletionShape::new(head)
    }
}

/// `POST /v1/chat/completions`.
pub(crate) async fn chat(State(state): State<Arc<AppState>>, request: Request) -> Response {
    Box::pin(serve::<Chat>(state, request)).await
}

/// `POST /v1/completions`.
pub(crate) async fn completions(State(state): State<Arc<AppState>>, request: Request) -> Response {
    Box::pin(serve::<Completions>(state, request)).await
}

/// A JSON response with `status`.
pub(crate) fn json_response(status: StatusCode, body: Vec<u8>) -> Response {
    let mut response = Response::new(Body::from(body));
    *response.status_mut() = status;
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    response
}

/// The JSON error response for `body`.
pub(crate) fn error_response(body: &ErrorBody) -> Response {
    let status = StatusCode::from_u16(body.code).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    json_response(status, body.to_json().into_bytes())
}

async fn serve<A: Api>(state: Arc<AppState>, request: Request) -> Response {
    let (parts, body) = request.into_parts();
    let mut response = handle::<A>(state, &parts.headers, body).await;
    if let Some(id) = parts.headers.get(REQUEST_ID_HEADER) {
        response.headers_mut().insert(REQUEST_ID_HEADER, id.clone());
    }
    response
}

fn is_json(headers: &HeaderMap) -> bool {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .is_some_and(|mime| {
            let mime = mime.trim();
            mime.eq_ignore_ascii_case("application/json")
                || (mime.starts_with("application/") && mime.ends_with("+json"))
        })
}

async fn handle<A: Api>(state: Arc<AppState>, headers: &HeaderMap, body: Body) -> Response {
    if !is_json(headers) {
        return error_response(&ErrorBody::unsupported_media_type());
    }
    let limit =
        usize::try_from(state.body_limit_mb.saturating_mul(1024 * 1024)).unwrap_or(usize::MAX);
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|len| len > limit as u64) {
        return error_response(&ErrorBody::payload_too_large(state.body_limit_mb));
    }
    let Ok(bytes) = to_bytes(body, limit).await else {
        return error_response(&ErrorBody::payload_too_large(state.body_limit_mb));
    };
    let req: A::Req = match parse_request(&bytes, &state.validation) {
        Ok(req) => req,
        Err(e) => return error_response(&e.to_error_body()),
    };
    drop(bytes);
    let model = A::model(&req).to_owned();
    let stream = A::is_stream(&req);
    let pipeline = match state.manager.pipeline(&model) {
        Ok(pipeline) => pipeline,
        Err(LookupError::NotFound) => {
            let mut tracker =
                RequestTracker::start(Arc::clone(&state), UNKNOWN_MODEL, A::ENDPOINT, stream);
            tracker.failure("not_found");
            return error_response(&ErrorBody::model_not_found());
        }
        Err(LookupError::NotReady) => {
            let mut tracker =
                RequestTracker::start(Arc::clone(&state), &model, A::ENDPOINT, stream);
            tracker.failure("unavailable");
            return error_response(&ErrorBody::model_not_ready(&model));
        }
    };
    let mut tracker = RequestTracker::start(Arc::clone(&state), &model, A::ENDPOINT, stream);
    let mut choices = match A::prepare(&pipeline, &req) {
        Ok(choices) => choices,
        Err(e) => {
            tracker.failure(e.metric_error_type());
            return error_response(&e.to_error_body());
        }
    };
    apply_worker_header(headers, &mut choices);
    let prompt_tokens: usize = choices
        .iter()
        .filter(|c| c.counts_prompt)
        .map(|c| c.request.token_ids.len())
        .sum();
    tracker.prompt(prompt_tokens as u32);
    let uuid = headers
        .get(DYNAMO_REQUEST_ID_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| uuid::Uuid::parse_str(v).ok())
        // A thread-local generator: `Uuid::new_v4` costs a `getrandom` system call each.
        .unwrap_or_else(|| uuid::Builder::from_random_bytes(rand::random()).into_uuid());
    let context = Context::with_id(uuid.to_string());
    tracker.attach(context.clone());
    let head = ResponseHead {
        id: format!("{}-{uuid}", A::ID_PREFIX),
        model,
        created: unix_now(),
        include_usage: A::include_usage(&req),
        extra: ExtraFields::of(A::nvext(&req)),
    };
    drop(req);
    let events = match Box::pin(pipeline.generate(choices, &context)).await {
        Ok(events) => events,
        Err(e) => {
            tracker.failure(e.metric_error_type());
            return error_response(&e.to_error_body());
        }
    };
    if stream {
        stream_response(events, A::shape(head), tracker)
    } else {
        unary(events, A::shape(head), tracker).await
    }
}

/// Folds the whole event stream into one JSON answer.
async fn unary<S: Shape>(
    mut events: ChoiceStream,
    mut shape: S,
    mut tracker: RequestTracker,
) -> Response {
    let mut usage = UsageTotals::default();
    while let Some(event) = events.next().await {
        match event {
            Ok(event) => {
                record(&event, &mut tracker, &mut usage);
                shape.fold(event);
            }
            Err(e) => {
                tracing::warn!(error = %e, "request failed");
                tracker.failure(e.metric_error_type());
                return error_response(&e.to_error_body());
            }
        }
    }
    tracker.success();
    json_response(StatusCode::OK, shape.unary_body(&usage))
}

/// `x-dynamo-worker-instance-id` pins every choice to one worker (decimal or hex id).
fn apply_worker_header(headers: &HeaderMap, choices: &mut [ChoiceRequest]) {
    let Some(id) = headers
        .get(WORKER_INSTANCE_HEADER)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            let v = v.trim();
            v.parse::<u64>()
                .ok()
                .or_else(|| u64::from_str_radix(v, 16).ok())
        })
    else {
        return;
    };
    for choice in choices {
        choice
            .request
            .routing
            .get_or_insert_with(RoutingHints::default)
            .backend_instance_id = Some(id);
    }
}

fn unix_now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs())
}
