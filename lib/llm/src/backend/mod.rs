//! The detokenizing backend stage: engine token deltas in, text deltas out, with hidden stop
//! tokens, user stop strings held back until resolved, and min/max token limits.

mod byte_level;
mod stop_jail;

use std::sync::Arc;

use stator_tokenizers::{DecodeStream, TokenId, Tokenizer};

pub use byte_level::ByteLevel;
use byte_level::ByteStream;
pub use stop_jail::{JailRelease, StopJail};

use crate::Error;
use crate::preprocess::StopConditions;

/// Why a sequence finished.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum FinishReason {
    /// The engine produced an end-of-sequence token it handled itself.
    Eos,
    /// `max_tokens` was reached.
    Length,
    /// A stop string or hidden stop token matched.
    Stop,
    /// The request was cancelled.
    Cancelled,
    /// The engine filtered the content.
    ContentFilter,
    /// The engine failed.
    Error(String),
}

/// What matched when the finish reason is [`FinishReason::Stop`].
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StopReason {
    /// A user stop string.
    String(String),
    /// A hidden stop token id (EOS or a request `stop_token_ids` entry).
    TokenId(TokenId),
}

/// One item of an engine's output stream, as the detokenizer needs it.
#[derive(Clone, Copy, Debug, Default)]
pub struct EngineDelta<'a> {
    /// Token ids generated since the previous item.
    pub token_ids: &'a [TokenId],
    /// Text the engine decoded itself; when set, the ids are only counted, not decoded.
    pub text: Option<&'a str>,
    /// Set on the engine's last item.
    pub finish_reason: Option<&'a FinishReason>,
}

/// What the detokenizer made of one engine item.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct BackendOutput {
    /// How many of the item's ids were consumed (ids after a stop are dropped).
    pub consumed: u32,
    /// New text to show (may be empty while text is held back).
    pub text: String,
    /// Set once, on the output that ends the sequence.
    pub finish_reason: Option<FinishReason>,
    /// What matched, for [`FinishReason::Stop`].
    pub stop_reason: Option<StopReason>,
}

/// Per-request detokenization options.
#[derive(Clone, Debug, Default)]
pub struct DetokenizeOptions {
    /// The request's stop conditions.
    pub stop: StopConditions,
    /// Whether a matched stop string is shown.
    pub include_stop_str_in_output: bool,
    /// Whether special tokens produce no text.
    pub skip_special_tokens: bool,
    /// The prompt's token ids; its last few seed the decoder so the first generated token
    /// decodes as a continuation (matters for SentencePiece-style leading spaces).
    pub prompt_token_ids: Vec<TokenId>,
}

/// The per-request detokenizer: turns engine deltas into [`BackendOutput`]s.
///
/// Rules, in order, for each generated token: a hidden stop id ends the sequence with
/// `Stop` (its text is not shown); otherwise its text goes through the [`StopJail`], and a
/// matched stop string ends the sequence with `Stop` and `stop_reason` = the string; then
/// reaching `max_tokens` ends it with `Length`. Stop ids and strings are only honored once
/// `min_tokens` tokens exist (text before that is shown as is). When the engine finishes
/// first, incomplete characters are flushed and held text released with its reason. After the
/// sequence ends, further input is ignored.
pub struct Detokenizer {
    stream: TextStream,
    jail: StopJail,
    hidden_stop_ids: Vec<TokenId>,
    min_tokens: u32,
    max_tokens: Option<u32>,
    generated: u32,
    finished: bool,
}

impl Detokenizer {
    /// A detokenizer for one sequence.
    pub fn new(tokenizer: Arc<dyn Tokenizer>, options: &DetokenizeOptions) -> Self {
        Self::with_stream(
            TextStream::Window(DecodeStream::with_prompt(
                tokenizer,
                &options.prompt_token_ids,
                options.skip_special_tokens,
            )),
            options,
        )
    }

    /// A detokenizer for one sequence of a byte-level tokenizer: the same text as
    /// [`new`](Self::new) gives, without re-decoding a window of tokens per token.
    pub fn byte_level(reading: Arc<ByteLevel>, options: &DetokenizeOptions) -> Self {
        Self::with_stream(
            TextStream::Bytes(ByteStream::new(reading, options.skip_special_tokens)),
            options,
        )
    }

    fn with_stream(stream: TextStream, options: &DetokenizeOptions) -> Self {
        Self {
            stream,
            jail: StopJail::new(&options.stop.stop, options.include_stop_str_in_output),
            hidden_stop_ids: options.stop.stop_token_ids_hidden.clone(),
            min_tokens: options.stop.min_tokens.unwrap_or(0),
            max_tokens: options.stop.max_tokens,
            generated: 0,
            finished: false,
        }
    }

    /// Processes one engine item.
    pub fn process(&mut self, delta: &EngineDelta<'_>) -> Result<BackendOutput, Error> {
        let mut out = BackendOutput::default();
        if self.finished {
            return Ok(out);
        }
        if let Some(text) = delta.text {
            out.consumed = u32::try_from(delta.token_ids.len()).unwrap_or(u32::MAX);
            self.generated = self.generated.saturating_add(out.consumed);
            self.show(text, &mut out);
            if self.finished {
                return Ok(out);
            }
            if self.max_tokens.is_some_and(|max| self.generated >= max) {
                return self.finish(out, FinishReason::Length);
            }
        } else {
            for &id in delta.token_ids {
                self.generated = self.generated.saturating_add(1);
                out.consumed = out.consumed.saturating_add(1);
                if self.stops_allowed() && self.hidden_stop_ids.contains(&id) {
                    out.stop_reason = Some(StopReason::TokenId(id));
                    return self.finish(out, FinishReason::Stop);
                }
                if self.jail.is_empty() {
                    // No stop string to watch: the text goes straight into the output.
                    self.stream.step_into(id, &mut out.text)?;
                } else if let Some(piece) = self.stream.step(id)? {
                    self.show(&piece, &mut out);
                    if self.finished {
                        return Ok(out);
                    }
                }
                if self.max_tokens.is_some_and(|max| self.generated >= max) {
                    return self.finish(out, FinishReason::Length);
                }
            }
        }
        match delta.finish_reason {
            Some(reason) => self.finish(out, reason.clone()),
            None => Ok(out),
        }
    }

    /// The text currently held back (a possible stop-string prefix), for migration snapshots.
    pub fn jailed_text(&self) -> &str {
        self.jail.held()
    }

    /// Tokens generated so far.
    pub fn generated_tokens(&self) -> u32 {
        self.generated
    }

    /// Whether the sequence has ended.
    pub fn is_finished(&self) -> bool {
        self.finished
    }

    fn stops_allowed(&self) -> bool {
        self.generated >= self.min_tokens
    }

    /// Routes text through the jail (or straight out before `min_tokens`, or when there is
    /// no stop string to watch for).
    fn show(&mut self, text: &str, out: &mut BackendOutput) {
        if self.jail.is_empty() || !self.stops_allowed() {
            out.text.push_str(&self.jail.release());
            out.text.push_str(text);
            return;
        }
        let release = self.jail.push(text);
        out.text.push_str(&release.text);
        if let Some(stop) = release.matched {
            out.stop_reason = Some(StopReason::String(stop));
            out.finish_reason = Some(FinishReason::Stop);
            self.finished = true;
        }
    }

    /// Ends the sequence: flushes incomplete characters, releases held text (unless it
    /// completes a stop string, which then decides the reason).
    fn finish(
        &mut self,
        mut out: BackendOutput,
        reason: FinishReason,
    ) -> Result<BackendOutput, Error> {
        let tail = self.stream.flush()?;
        if !tail.is_empty() {
            self.show(&tail, &mut out);
        }
        if !self.finished {
            out.text.push_str(&self.jail.release());
            out.finish_reason = Some(reason);
        }
        self.finished = true;
        Ok(out)
    }
}

/// Token ids to text, one way or the other.
enum TextStream {
    /// Any tokenizer: decodes a short window per token.
    Window(DecodeStream),
    /// Byte-level tokenizers: appends each token's bytes.
    Bytes(ByteStream),
}

impl TextStream {
    fn step_into(&mut self, id: TokenId, out: &mut String) -> Result<(), Error> {
        match self {
            Self::Window(stream) => {
                stream.step_into(id, out)?;
            }
            Self::Bytes(stream) => stream.step_into(id, out),
        }
        Ok(())
    }

    fn step(&mut self, id: TokenId) -> Result<Option<String>, Error> {
        let mut piece = String::new();
        self.step_into(id, &mut piece)?;
        Ok((!piece.is_empty()).then_some(piece))
    }

    fn flush(&mut self) -> Result<String, Error> {
        Ok(match self {
            Self::Window(stream) => stream.flush()?,
            Self::Bytes(stream) => stream.flush(),
        })
    }
}

impl std::fmt::Debug for Detokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Detokenizer")
            .field("jail", &self.jail)
            .field("hidden_stop_ids", &self.hidden_stop_ids)
            .field("min_tokens", &self.min_tokens)
            .field("max_tokens", &self.max_tokens)
            .field("generated", &self.generated)
            .field("finished", &self.finished)
            .finish_non_exhaustive()
    }
}
