//! Server-sent events: the encoders the frontend writes with, and an incremental parser for
//! clients and tests.
//!
//! Framing as used by the reference frontend:
//! - a JSON chunk: `data: <json>\n\n`;
//! - an annotation: `event: <name>\n: <comment>\n\n` (comment lines, no data);
//! - a named event (Responses / Anthropic APIs): `event: <name>\ndata: <json>\n\n`;
//! - the terminator: `data: [DONE]\n\n`.

use serde::Serialize;

/// The stream terminator.
pub const DONE: &str = "data: [DONE]\n\n";
/// The `data` of the terminator event.
pub const DONE_DATA: &str = "[DONE]";

/// `data: <payload>\n\n`, one `data:` line per line of `payload`.
pub fn data(payload: &str) -> String {
    let mut out = String::with_capacity(payload.len() + 8);
    push_field(&mut out, "data", payload);
    out.push('\n');
    out
}

/// `data: <json of value>\n\n`.
pub fn json<T: Serialize>(value: &T) -> Result<String, serde_json::Error> {
    let payload = serde_json::to_string(value)?;
    let mut out = String::with_capacity(payload.len() + 8);
    out.push_str("data: ");
    out.push_str(&payload);
    out.push_str("\n\n");
    Ok(out)
}

/// `event: <name>\ndata: <payload>\n\n`.
pub fn event(name: &str, payload: &str) -> String {
    let mut out = String::with_capacity(name.len() + payload.len() + 16);
    push_field(&mut out, "event", name);
    push_field(&mut out, "data", payload);
    out.push('\n');
    out
}

/// `: <text>\n\n`, a comment-only event (keep-alive).
pub fn comment(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 4);
    push_comment(&mut out, text);
    out.push('\n');
    out
}

fn lines(value: &str) -> impl Iterator<Item = &str> {
    value.split("\r\n").flat_map(|l| l.split(['\r', '\n']))
}

fn push_field(out: &mut String, field: &str, value: &str) {
    for line in lines(value) {
        out.push_str(field);
        out.push_str(": ");
        out.push_str(line);
        out.push('\n');
    }
}

fn push_comment(out: &mut String, text: &str) {
    for line in lines(text) {
        out.push_str(": ");
        out.push_str(line);
        out.push('\n');
    }
}

/// One server-sent event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// `event:` name.
    pub event: Option<String>,
    /// `id:`.
    pub id: Option<String>,
    /// Comment lines (`: …`), in order.
    pub comments: Vec<String>,
    /// `data:` lines joined with `\n`.
    pub data: Option<String>,
}

impl SseEvent {
    /// A data-only event.
    pub fn data(payload: impl Into<String>) -> Self {
        Self {
            data: Some(payload.into()),
            ..Self::default()
        }
    }

    /// Whether this is the `[DONE]` terminator.
    pub fn is_done(&self) -> bool {
        self.data.as_deref() == Some(DONE_DATA)
    }

    /// Whether no field is set (such an event is never dispatched).
    pub fn is_empty(&self) -> bool {
        self.event.is_none() && self.id.is_none() && self.comments.is_empty() && self.data.is_none()
    }

    /// The wire form: `event`, `id`, comments, `data` lines, then a blank line.
    pub fn encode(&self) -> String {
        let mut out = String::new();
        if let Some(name) = &self.event {
            push_field(&mut out, "event", name);
        }
        if let Some(id) = &self.id {
            push_field(&mut out, "id", id);
        }
        for c in &self.comments {
            push_comment(&mut out, c);
        }
        if let Some(d) = &self.data {
            push_field(&mut out, "data", d);
        }
        out.push('\n');
        out
    }
}

/// Incremental SSE parser: feed it bytes as they arrive, get complete events back.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    after_cr: bool,
    current: SseEvent,
}

impl SseParser {
    /// An empty parser.
    pub fn new() -> Self {
        Self::default()
    }

    /// Consume `bytes` and return the events they complete.
    pub fn feed(&mut self, bytes: &[u8]) -> Vec<SseEvent> {
        let mut out = Vec::new();
        for &b in bytes {
            if self.after_cr {
                self.after_cr = false;
                if b == b'\n' {
                    continue;
                }
            }
            match b {
                b'\n' => self.end_line(&mut out),
                b'\r' => {
                    self.after_cr = true;
                    self.end_line(&mut out);
                }
                _ => self.line.push(b),
            }
        }
        out
    }

    /// End of input: the pending event, if the stream stopped without a blank line.
    pub fn finish(mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.line.is_empty() {
            self.end_line(&mut out);
        }
        self.end_line(&mut out);
        out.pop()
    }

    fn end_line(&mut self, out: &mut Vec<SseEvent>) {
        let line = String::from_utf8_lossy(&self.line).into_owned();
        self.line.clear();
        if line.is_empty() {
            let event = std::mem::take(&mut self.current);
            if !event.is_empty() {
                out.push(event);
            }
            return;
        }
        let (field, value) = match line.split_once(':') {
            Some((f, v)) => (f, v.strip_prefix(' ').unwrap_or(v)),
            None => (line.as_str(), ""),
        };
        match field {
            "" => self.current.comments.push(value.to_owned()),
            "data" => match &mut self.current.data {
                Some(d) => {
                    d.push('\n');
                    d.push_str(value);
                }
                None => self.current.data = Some(value.to_owned()),
            },
            "event" => self.current.event = Some(value.to_owned()),
            "id" => self.current.id = Some(value.to_owned()),
            _ => {}
        }
    }
}

/// Parse a complete SSE body.
pub fn parse_all(body: &str) -> Vec<SseEvent> {
    let mut parser = SseParser::new();
    let mut events = parser.feed(body.as_bytes());
    events.extend(parser.finish());
    events
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn encoders_match_the_reference_framing() {
        assert_eq!(data("{}"), "data: {}\n\n");
        assert_eq!(
            json(&serde_json::json!({"a":1})).unwrap(),
            "data: {\"a\":1}\n\n"
        );
        assert_eq!(
            event("response.created", "{}"),
            "event: response.created\ndata: {}\n\n"
        );
        assert_eq!(comment("keep-alive"), ": keep-alive\n\n");
        let annotation = SseEvent {
            event: Some("request_id".into()),
            comments: vec!["\"6fbf\"".into()],
            ..SseEvent::default()
        };
        assert_eq!(annotation.encode(), "event: request_id\n: \"6fbf\"\n\n");
        assert_eq!(SseEvent::data(DONE_DATA).encode(), DONE);
    }

    #[test]
    fn parses_a_reference_stream() {
        let body = "event: token_ids\n: \"[1,2]\"\n\ndata: {\"x\":1}\n\ndata: [DONE]\n\n";
        let events = parse_all(body);
        assert_eq!(events.len(), 3);
        assert_eq!(events[0].event.as_deref(), Some("token_ids"));
        assert_eq!(events[0].comments, vec!["\"[1,2]\""]);
        assert_eq!(events[1].data.as_deref(), Some("{\"x\":1}"));
        assert!(events[2].is_done());
    }

    #[test]
    fn handles_crlf_split_across_chunks() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: a\r").is_empty());
        assert!(parser.feed(b"\ndata: b\r\n").is_empty());
        let events = parser.feed(b"\r\n");
        assert_eq!(events, vec![SseEvent::data("a\nb")]);
    }

    #[test]
    fn finish_flushes_an_unterminated_event() {
        let mut parser = SseParser::new();
        assert!(parser.feed(b"data: tail").is_empty());
        assert_eq!(parser.finish(), Some(SseEvent::data("tail")));
    }

    fn line_text() -> impl Strategy<Value = String> {
        "[^\r\n]{0,12}"
    }

    fn sse_event() -> impl Strategy<Value = SseEvent> {
        (
            proptest::option::of(line_text()),
            proptest::option::of(line_text()),
            proptest::collection::vec(line_text(), 0..3),
            proptest::option::of("[^\r]{0,24}"),
        )
            .prop_map(|(event, id, comments, data)| SseEvent {
                event,
                id,
                comments,
                data,
            })
            .prop_filter("an empty event is never dispatched", |e| !e.is_empty())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]

        #[test]
        fn encode_then_parse_in_any_chunking_round_trips(
            events in proptest::collection::vec(sse_event(), 0..6),
            cuts in proptest::collection::vec(any::<usize>(), 0..8),
        ) {
            let wire: String = events.iter().map(SseEvent::encode).collect();
            let bytes = wire.as_bytes();
            let mut points: Vec<usize> = cuts.iter().map(|c| c % (bytes.len() + 1)).collect();
            points.sort_unstable();
            let mut parser = SseParser::new();
            let mut parsed = Vec::new();
            let mut start = 0;
            for p in points.into_iter().chain(std::iter::once(bytes.len())) {
                parsed.extend(parser.feed(&bytes[start..p]));
                start = p;
            }
            prop_assert_eq!(parser.finish(), None);
            prop_assert_eq!(parsed, events);
        }
    }
}
