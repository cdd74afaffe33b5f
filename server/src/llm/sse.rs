//! Incremental Server-Sent Events parser shared by the OpenAI and Anthropic clients.
//!
//! Follows the WHATWG framing rules the providers rely on: lines end in `\n`, `\r\n` or a
//! lone `\r`; a blank line dispatches the event; `:` lines are comments (DeepSeek's
//! `: keep-alive`, OpenRouter's `: OPENROUTER PROCESSING`); several `data:` lines join
//! with `\n`. Bytes are buffered until a full line arrives, so a UTF-8 character split
//! across network chunks is decoded intact.

/// One dispatched event. `event` is empty when the server sent no `event:` field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SseEvent {
    pub event: String,
    pub data: String,
}

#[derive(Debug, Default)]
pub struct SseParser {
    buf: Vec<u8>,
    event: String,
    data: String,
    has_data: bool,
}

impl SseParser {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feed a network chunk; returns the events it completed.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<SseEvent> {
        self.buf.extend_from_slice(chunk);
        let mut out = Vec::new();
        let mut start = 0;
        let mut i = 0;
        while i < self.buf.len() {
            match self.buf[i] {
                b'\n' => {
                    let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                    self.line(&line, &mut out);
                    i += 1;
                    start = i;
                }
                b'\r' => {
                    // A trailing `\r` may be the first half of `\r\n`: wait for more bytes.
                    if i + 1 == self.buf.len() {
                        break;
                    }
                    let line = String::from_utf8_lossy(&self.buf[start..i]).into_owned();
                    self.line(&line, &mut out);
                    i += if self.buf[i + 1] == b'\n' { 2 } else { 1 };
                    start = i;
                }
                _ => i += 1,
            }
        }
        self.buf.drain(..start);
        out
    }

    /// End of stream: an unterminated last line and a pending event are delivered
    /// rather than dropped, since some servers close without the final blank line.
    pub fn finish(&mut self) -> Option<SseEvent> {
        let mut out = Vec::new();
        if !self.buf.is_empty() {
            let rest = std::mem::take(&mut self.buf);
            let text = String::from_utf8_lossy(&rest);
            let text = text.trim_end_matches(['\r', '\n']).to_owned();
            self.line(&text, &mut out);
        }
        self.line("", &mut out);
        out.pop()
    }

    fn line(&mut self, line: &str, out: &mut Vec<SseEvent>) {
        if line.is_empty() {
            if self.has_data {
                out.push(SseEvent {
                    event: std::mem::take(&mut self.event),
                    data: std::mem::take(&mut self.data),
                });
            }
            self.event.clear();
            self.data.clear();
            self.has_data = false;
            return;
        }
        if line.starts_with(':') {
            return;
        }
        let (field, value) = match line.find(':') {
            Some(pos) => {
                let value = &line[pos + 1..];
                (&line[..pos], value.strip_prefix(' ').unwrap_or(value))
            }
            None => (line, ""),
        };
        match field {
            "event" => self.event = value.to_owned(),
            "data" => {
                if self.has_data {
                    self.data.push('\n');
                }
                self.data.push_str(value);
                self.has_data = true;
            }
            // `id` and `retry` matter for browser reconnection only.
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_all(input: &str) -> Vec<SseEvent> {
        let mut p = SseParser::new();
        let mut evs = p.push(input.as_bytes());
        evs.extend(p.finish());
        evs
    }

    #[test]
    fn data_only_events() {
        let evs = parse_all("data: {\"a\":1}\n\ndata: [DONE]\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[0].data, "{\"a\":1}");
        assert_eq!(evs[0].event, "");
        assert_eq!(evs[1].data, "[DONE]");
    }

    #[test]
    fn named_events_crlf_and_comments() {
        let evs = parse_all(
            ": keep-alive\r\n\r\nevent: ping\r\ndata: {\"type\": \"ping\"}\r\n\r\n: OPENROUTER PROCESSING\r\n\r\n",
        );
        assert_eq!(
            evs,
            vec![SseEvent {
                event: "ping".into(),
                data: "{\"type\": \"ping\"}".into()
            }]
        );
    }

    #[test]
    fn multi_line_data_joins_with_newline() {
        let evs = parse_all("data: one\ndata:two\n\n");
        assert_eq!(evs[0].data, "one\ntwo");
    }

    #[test]
    fn leading_blank_lines_and_lone_cr() {
        let evs = parse_all("\n\n\ndata: x\r\rdata: y\n\n");
        assert_eq!(evs.len(), 2);
        assert_eq!(evs[1].data, "y");
    }

    #[test]
    fn chunks_split_anywhere_including_utf8_and_crlf() {
        let input = "event: a\r\ndata: h\u{e9}llo \u{1F600}\r\n\r\ndata: b\n\n";
        let bytes = input.as_bytes();
        for split in 0..bytes.len() {
            let mut p = SseParser::new();
            let mut evs = p.push(&bytes[..split]);
            evs.extend(p.push(&bytes[split..]));
            evs.extend(p.finish());
            assert_eq!(evs.len(), 2, "split at {split}");
            assert_eq!(evs[0].event, "a");
            assert_eq!(evs[0].data, "h\u{e9}llo \u{1F600}");
            assert_eq!(evs[1].data, "b");
        }
    }

    #[test]
    fn unterminated_final_event_is_delivered() {
        let evs = parse_all("data: last");
        assert_eq!(evs[0].data, "last");
    }

    #[test]
    fn field_without_colon_and_empty_data() {
        let evs = parse_all("data\n\nevent: only-name\n\n");
        // `data` alone is an empty data line: dispatched; an event with no data is not.
        assert_eq!(evs.len(), 1);
        assert_eq!(evs[0].data, "");
    }
}
