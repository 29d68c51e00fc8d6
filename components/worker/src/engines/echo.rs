//! [`EchoEngine`]: streams the prompt's token ids back, one token per item.
//!
//! The output is a pure function of the request ([`echo_outputs`]): the prompt's tokens in
//! order, cut by `max_tokens` (default: the whole prompt) and by stop tokens once `min_tokens`
//! are out. An EOS id (unless `ignore_eos`) ends the sequence with `eos`, a hidden stop id with
//! `stop`, both without emitting the token; a visible stop id is emitted, then `stop`. Reaching
//! `max_tokens` ends with `length`; running out of prompt is the echo's natural end, `eos`. The
//! last item carries `completion_usage`.

use std::collections::HashSet;
use std::time::Duration;

use async_trait::async_trait;
use futures::StreamExt;
use stator_protocols::worker::{
    Annotated, FinishReason, LLMEngineOutput, PreprocessedRequest, StopReason,
};
use stator_runtime::{AsyncEngine, Context, Request, ResponseStream, StatorError};

use super::{EngineOutput, usage};

/// The echo engine; `delay` paces the tokens (zero streams them as fast as possible).
#[derive(Debug, Clone, Default)]
pub struct EchoEngine {
    delay: Duration,
}

impl EchoEngine {
    /// An echo engine that waits `delay` before each token.
    pub fn new(delay: Duration) -> Self {
        Self { delay }
    }
}

/// Every item the echo engine answers `request` with, when nobody stops it.
pub fn echo_outputs(request: &PreprocessedRequest) -> Vec<LLMEngineOutput> {
    let conditions = &request.stop_conditions;
    let prompt = &request.token_ids;
    let ignore_eos = conditions.ignore_eos.unwrap_or(false);
    let eos: HashSet<u32> = if ignore_eos {
        HashSet::new()
    } else {
        request.eos_token_ids.iter().copied().collect()
    };
    let hidden: HashSet<u32> = [
        &conditions.stop_token_ids_hidden,
        &conditions.stop_token_ids,
    ]
    .into_iter()
    .flatten()
    .flatten()
    .copied()
    .filter(|id| !(ignore_eos && request.eos_token_ids.contains(id)))
    .collect();
    let visible: HashSet<u32> = conditions
        .stop_token_ids_visible
        .iter()
        .flatten()
        .copied()
        .collect();
    let limit = conditions.max_tokens.map_or(prompt.len(), |m| m as usize);
    let min_tokens = conditions.min_tokens.unwrap_or(0) as usize;

    let mut items: Vec<LLMEngineOutput> = Vec::new();
    let mut finish = FinishReason::Eos;
    let mut stop_reason = None;
    let mut pending_final: Option<u32> = None;
    for &token in prompt {
        if items.len() >= limit {
            finish = FinishReason::Length;
            break;
        }
        if items.len() >= min_tokens {
            if eos.contains(&token) {
                finish = FinishReason::Eos;
                stop_reason = Some(StopReason::TokenId(token));
                break;
            }
            if hidden.contains(&token) {
                finish = FinishReason::Stop;
                stop_reason = Some(StopReason::TokenId(token));
                break;
            }
            if visible.contains(&token) {
                finish = FinishReason::Stop;
                stop_reason = Some(StopReason::TokenId(token));
                pending_final = Some(token);
                break;
            }
        }
        items.push(LLMEngineOutput::tokens(vec![token]));
    }
    if items.len() >= limit && conditions.max_tokens.is_some() && pending_final.is_none() {
        finish = FinishReason::Length;
        stop_reason = None;
    }
    // The final item carries the last token (or the visible stop token), or nothing.
    let mut last = match pending_final {
        Some(token) => LLMEngineOutput::tokens(vec![token]),
        None => items.pop().unwrap_or_default(),
    };
    let completion_tokens = items.len() + last.token_ids.len();
    last.finish_reason = Some(finish);
    last.stop_reason = stop_reason;
    last.completion_usage = Some(usage(prompt.len(), completion_tokens, None));
    items.push(last);
    items
}

/// Streams `outputs`, honouring the request context: a stop ends the sequence with
/// `cancelled` (and usage), a kill ends the stream at once.
struct Playback {
    outputs: std::vec::IntoIter<LLMEngineOutput>,
    context: Context,
    delay: Duration,
    prompt_tokens: usize,
    emitted: usize,
    done: bool,
}

impl Playback {
    async fn next(&mut self) -> Option<EngineOutput> {
        if self.done {
            return None;
        }
        if !self.delay.is_zero() {
            tokio::select! {
                () = tokio::time::sleep(self.delay) => {}
                () = self.context.stopped() => {}
            }
        }
        if self.context.is_killed() {
            self.done = true;
            return None;
        }
        if self.context.is_stopped() {
            self.done = true;
            let mut last = LLMEngineOutput::finished(Vec::new(), FinishReason::Cancelled);
            last.completion_usage = Some(usage(self.prompt_tokens, self.emitted, None));
            return Some(Annotated::from_data(last));
        }
        let item = self.outputs.next()?;
        self.emitted += item.token_ids.len();
        self.done = item.finish_reason.is_some();
        Some(Annotated::from_data(item))
    }
}

#[async_trait]
impl AsyncEngine<Request<PreprocessedRequest>, ResponseStream<EngineOutput>> for EchoEngine {
    async fn generate(
        &self,
        request: Request<PreprocessedRequest>,
    ) -> Result<ResponseStream<EngineOutput>, StatorError> {
        let (request, context) = request.into_parts();
        let playback = Playback {
            outputs: echo_outputs(&request).into_iter(),
            context: context.clone(),
            delay: self.delay,
            prompt_tokens: request.token_ids.len(),
            emitted: 0,
            done: false,
        };
        let items = futures::stream::unfold(playback, |mut playback| async move {
            playback.next().await.map(|item| (item, playback))
        })
        .boxed();
        Ok(ResponseStream::new(items, context))
    }
}

#[cfg(test)]
mod tests {
    use stator_protocols::worker::StopConditions;

    use super::*;

    fn request(tokens: &[u32], conditions: StopConditions) -> PreprocessedRequest {
        PreprocessedRequest {
            token_ids: tokens.to_vec(),
            stop_conditions: conditions,
            eos_token_ids: vec![99],
            ..PreprocessedRequest::default()
        }
    }

    fn tokens(items: &[LLMEngineOutput]) -> Vec<u32> {
        items.iter().flat_map(|i| i.token_ids.clone()).collect()
    }

    #[test]
    fn whole_prompt_by_default_one_token_per_item() {
        let items = echo_outputs(&request(&[1, 2, 3], StopConditions::default()));
        assert_eq!(items.len(), 3);
        assert!(items.iter().all(|i| i.token_ids.len() == 1));
        assert_eq!(tokens(&items), [1, 2, 3]);
        let last = items.last().unwrap();
        assert_eq!(last.finish_reason, Some(FinishReason::Eos));
        let usage = last.completion_usage.as_ref().unwrap();
        assert_eq!((usage.prompt_tokens, usage.completion_tokens), (3, 3));
        assert!(items[..2].iter().all(|i| i.finish_reason.is_none()));
    }

    #[test]
    fn max_tokens_cuts_with_length() {
        let conditions = StopConditions {
            max_tokens: Some(2),
            ..StopConditions::default()
        };
        let items = echo_outputs(&request(&[1, 2, 3], conditions));
        assert_eq!(tokens(&items), [1, 2]);
        assert_eq!(items[1].finish_reason, Some(FinishReason::Length));
        let conditions = StopConditions {
            max_tokens: Some(3),
            ..StopConditions::default()
        };
        let items = echo_outputs(&request(&[1, 2, 3], conditions));
        assert_eq!(items[2].finish_reason, Some(FinishReason::Length));
    }

    #[test]
    fn eos_and_hidden_stops_are_not_emitted() {
        let items = echo_outputs(&request(&[1, 99, 3], StopConditions::default()));
        assert_eq!(tokens(&items), [1]);
        assert_eq!(items.last().unwrap().finish_reason, Some(FinishReason::Eos));

        let conditions = StopConditions {
            stop_token_ids_hidden: Some(vec![2]),
            ..StopConditions::default()
        };
        let items = echo_outputs(&request(&[2, 5], conditions));
        assert_eq!(items.len(), 1, "only the empty final item");
        assert!(items[0].token_ids.is_empty());
        assert_eq!(items[0].finish_reason, Some(FinishReason::Stop));
        assert_eq!(items[0].stop_reason, Some(StopReason::TokenId(2)));
    }

    #[test]
    fn visible_stops_min_tokens_and_ignore_eos() {
        let conditions = StopConditions {
            stop_token_ids_visible: Some(vec![7]),
            ..StopConditions::default()
        };
        let items = echo_outputs(&request(&[1, 7, 8], conditions));
        assert_eq!(tokens(&items), [1, 7]);
        assert_eq!(items[1].finish_reason, Some(FinishReason::Stop));

        let conditions = StopConditions {
            min_tokens: Some(2),
            ..StopConditions::default()
        };
        let items = echo_outputs(&request(&[99, 1, 99, 4], conditions));
        assert_eq!(tokens(&items), [99, 1]);
        assert_eq!(items.last().unwrap().finish_reason, Some(FinishReason::Eos));

        let conditions = StopConditions {
            ignore_eos: Some(true),
            stop_token_ids_hidden: Some(vec![99]),
            ..StopConditions::default()
        };
        let items = echo_outputs(&request(&[99, 1], conditions));
        assert_eq!(tokens(&items), [99, 1]);
    }

    #[test]
    fn empty_prompt_finishes_at_once() {
        let items = echo_outputs(&request(&[], StopConditions::default()));
        assert_eq!(items.len(), 1);
        assert_eq!(items[0].finish_reason, Some(FinishReason::Eos));
    }

    #[tokio::test]
    async fn stop_and_kill_end_the_stream() {
        let engine = EchoEngine::new(Duration::from_millis(5));
        let req = request(&(0..50).collect::<Vec<_>>(), StopConditions::default());
        let mut stream = engine.generate(Request::new(req.clone())).await.unwrap();
        let first = stream.next().await.unwrap();
        assert_eq!(first.data.unwrap().token_ids, [0]);
        stream.context().stop_generating();
        let rest: Vec<EngineOutput> = stream.collect().await;
        assert_eq!(rest.len(), 1);
        let last = rest[0].data.as_ref().unwrap();
        assert_eq!(last.finish_reason, Some(FinishReason::Cancelled));

        let mut stream = engine.generate(Request::new(req)).await.unwrap();
        stream.next().await.unwrap();
        stream.context().kill();
        assert!(stream.next().await.is_none());
    }
}
