//! Incremental Server-Sent Events parser.
//!
//! Bytes arrive in whatever pieces the socket hands us, so a line (or a multi-byte character)
//! may be split anywhere. The parser buffers the unfinished line and yields complete events.
//! Only the fields the load generator needs are kept: `event` and `data` (comment lines and
//! `id`/`retry` are skipped).

/// One dispatched SSE event.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SseEvent {
    /// The `event:` field, if the event had one.
    pub event: Option<String>,
    /// The `data:` lines joined with `\n`.
    pub data: String,
}

/// Feeds raw bytes in and returns complete events.
#[derive(Debug, Default)]
pub struct SseParser {
    line: Vec<u8>,
    event: Option<String>,
    data: Option<String>,
    /// The previous chunk ended on `\r`, so a leading `\n` in the next one belongs to it.
    after_cr: bool,
}

impl SseParser {
    /// A parser with nothing buffered.
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds `bytes` and appends every event completed by them to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut Vec<SseEvent>) {
        let mut rest = bytes;
        if self.after_cr && !rest.is_empty() {
            self.after_cr = false;
            if let Some(stripped) = rest.strip_prefix(b"\n") {
                rest = stripped;
            }
        }
        while let Some(pos) = rest.iter().position(|&b| b == b'\n' || b == b'\r') {
            if self.line.is_empty() {
                // Common case: the whole line is in this piece; no copy.
                self.finish_line(&rest[..pos], out);
            } else {
                self.line.extend_from_slice(&rest[..pos]);
                let mut line = std::mem::take(&mut self.line);
                self.finish_line(&line, out);
                line.clear();
                self.line = line;
            }
            if rest[pos] == b'\r' {
                match rest.get(pos + 1) {
                    Some(b'\n') => rest = &rest[pos + 2..],
                    Some(_) => rest = &rest[pos + 1..],
                    None => {
                        self.after_cr = true;
                        rest = &[];
                    }
                }
            } else {
                rest = &rest[pos + 1..];
            }
        }
        self.line.extend_from_slice(rest);
    }

    /// Dispatches a final event that was not followed by a blank line (the stream ended).
    pub fn finish(&mut self, out: &mut Vec<SseEvent>) {
        if !self.line.is_empty() {
            let mut line = std::mem::take(&mut self.line);
            self.finish_line(&line, out);
            line.clear();
            self.line = line;
        }
        self.dispatch(out);
    }

    fn finish_line(&mut self, line: &[u8], out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            self.dispatch(out);
            return;
        }
        if line[0] == b':' {
            return;
        }
        let (name, value) = match line.iter().position(|&b| b == b':') {
            Some(colon) => {
                let value = &line[colon + 1..];
                (&line[..colon], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        // Strict decoding first: it is much faster than the lossy path on valid UTF-8.
        let value = std::str::from_utf8(value).map_or_else(
            |_| String::from_utf8_lossy(value),
            std::borrow::Cow::Borrowed,
        );
        match name {
            b"data" => match &mut self.data {
                Some(data) => {
                    data.push('\n');
                    data.push_str(&value);
                }
                None => self.data = Some(value.into_owned()),
            },
            b"event" => self.event = Some(value.into_owned()),
            _ => {}
        }
    }

    fn dispatch(&mut self, out: &mut Vec<SseEvent>) {
        let event = self.event.take();
        // Per the SSE spec an event without data is not dispatched.
        if let Some(data) = self.data.take() {
            out.push(SseEvent { event, data });
        }
    }
}

#[cfg(test)]
mod tests {
    use super::{SseEvent, SseParser};
    use proptest::prelude::*;

    fn parse_in_pieces(input: &[u8], cuts: &[usize]) -> Vec<SseEvent> {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        let mut start = 0;
        let mut cuts: Vec<usize> = cuts.iter().map(|c| c % (input.len() + 1)).collect();
        cuts.sort_unstable();
        for cut in cuts {
            parser.push(&input[start..cut], &mut out);
            start = cut;
        }
        parser.push(&input[start..], &mut out);
        parser.finish(&mut out);
        out
    }

    fn data(text: &str) -> SseEvent {
        SseEvent {
            event: None,
            data: text.to_owned(),
        }
    }

    #[test]
    fn parses_openai_stream_with_comments_and_events() {
        let input = b"data: {\"a\":1}\n\n: keep-alive\n\nevent: error\ndata: {\"error\":{}}\n\ndata: [DONE]\n\n";
        let events = parse_in_pieces(input, &[]);
        assert_eq!(
            events,
            vec![
                data("{\"a\":1}"),
                SseEvent {
                    event: Some("error".into()),
                    data: "{\"error\":{}}".into()
                },
                data("[DONE]"),
            ]
        );
    }

    #[test]
    fn joins_multiline_data_and_handles_crlf_and_missing_space() {
        let input = b"data:first\r\ndata: second\r\n\r\ndata: x\rdata: y\r\r";
        assert_eq!(
            parse_in_pieces(input, &[]),
            vec![data("first\nsecond"), data("x\ny")]
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched_and_tail_is_flushed() {
        let input = b"event: ping\n\ndata: tail";
        assert_eq!(parse_in_pieces(input, &[]), vec![data("tail")]);
    }

    #[test]
    fn empty_push_between_cr_and_lf_keeps_the_pair() {
        let mut parser = SseParser::new();
        let mut out = Vec::new();
        for piece in [&b"event: a\r"[..], b"", b"\ndata: x\r", b"\n\r\n"] {
            parser.push(piece, &mut out);
        }
        assert_eq!(
            out,
            vec![SseEvent {
                event: Some("a".into()),
                data: "x".into()
            }]
        );
    }

    fn arb_event() -> impl Strategy<Value = (Option<String>, Vec<String>)> {
        (
            proptest::option::of("[a-z_]{1,8}"),
            proptest::collection::vec("[ -~é€😀]{0,12}", 1..3),
        )
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(128))]
        #[test]
        fn split_points_do_not_change_events(
            events in proptest::collection::vec(arb_event(), 0..6),
            crlf in any::<bool>(),
            cuts in proptest::collection::vec(any::<usize>(), 0..12),
        ) {
            let eol = if crlf { "\r\n" } else { "\n" };
            let mut text = String::new();
            let mut expected = Vec::new();
            for (event, lines) in &events {
                if let Some(name) = event {
                    text.push_str("event: ");
                    text.push_str(name);
                    text.push_str(eol);
                }
                for line in lines {
                    text.push_str("data: ");
                    text.push_str(line);
                    text.push_str(eol);
                }
                text.push_str(eol);
                expected.push(SseEvent { event: event.clone(), data: lines.join("\n") });
            }
            prop_assert_eq!(parse_in_pieces(text.as_bytes(), &cuts), expected);
        }
    }
}
