//! A guard in front of tower-lsp's reader. tower-lsp 0.20 ends the session on the first
//! message it cannot decode, so every frame is checked here first and only well-formed
//! JSON-RPC 2.0 reaches it:
//!
//! - headers: a frame starts at `Content-Length:`; a header block without a usable length
//!   (missing, not a number, over [`MAX_BODY`]), or one with no body, is dropped and
//!   reading resumes at the next `Content-Length:`, so one bad header costs only itself;
//! - bodies are read as they arrive (never pre-allocated from the header's claim), then
//!   checked: UTF-8, JSON (serde_json refuses lone surrogates), a JSON-RPC 2.0 object with
//!   a usable id;
//! - a bad request that has an id is answered `InvalidRequest` (-32600) by rewriting it
//!   into a call of [`INVALID_REQUEST`], which the server answers with that error; anything
//!   else bad is dropped with one log line;
//! - `workspace/executeCommand` with `"arguments": null` is read as no arguments.

use serde_json::{Map, Value};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The request a bad request with an id is turned into; the server answers it -32600.
pub const INVALID_REQUEST: &str = "aisci/invalidRequest";

/// Largest body accepted.
pub const MAX_BODY: usize = 64 << 20;

/// Longest header block read before it is given up as garbage.
const MAX_HEADER: usize = 8 << 10;

const MARKER: &[u8] = b"content-length:";

/// What became of one frame.
#[derive(Debug, PartialEq)]
pub enum Checked {
    /// Passed on (possibly normalised).
    Pass(Vec<u8>),
    /// Dropped; why.
    Drop(String),
}

pub async fn forward_messages<R, W>(mut input: R, mut output: W)
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut frames = Frames::default();
    let mut chunk = vec![0u8; 1 << 16];
    loop {
        while let Some(frame) = frames.next_frame() {
            match frame {
                Ok(body) => match check(&body) {
                    // A body that is not even JSON may have taken in the start of the next
                    // frame (its length was wrong): scan it again, as noise, so that the
                    // next header is found even where it straddles the body's end.
                    Checked::Drop(why) if serde_json::from_slice::<serde::de::IgnoredAny>(&body).is_err() => {
                        tracing::warn!("LSP message dropped: {why}");
                        frames.unread(&body[1.min(body.len())..]);
                    }
                    Checked::Pass(payload) => {
                        let header = format!("Content-Length: {}\r\n\r\n", payload.len());
                        if output.write_all(header.as_bytes()).await.is_err()
                            || output.write_all(&payload).await.is_err()
                            || output.flush().await.is_err()
                        {
                            return;
                        }
                    }
                    Checked::Drop(why) => tracing::warn!("LSP message dropped: {why}"),
                },
                Err(why) => tracing::warn!("LSP input skipped: {why}"),
            }
        }
        match input.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => frames.push(&chunk[..n]),
        }
    }
}

/// Splits a byte stream into frame bodies, resynchronising on bad headers.
#[derive(Default)]
pub struct Frames {
    buf: Vec<u8>,
    /// The body length of the frame whose header has been read.
    pending: Option<usize>,
    /// While a body is pending: how far it has been searched for a `Content-Length:`
    /// (none before there), and where the first one is, so each read searches only what
    /// is new and a large body arriving in pieces is not scanned again and again.
    scanned: usize,
    marker: Option<usize>,
    /// Whether `marker` has been checked as the end of a whole JSON value already.
    marker_checked: bool,
}

impl Frames {
    pub fn push(&mut self, bytes: &[u8]) {
        self.buf.extend_from_slice(bytes);
    }

    /// While a body is incomplete, whether what has come already shows its length to be
    /// wrong: a body that cannot be a JSON-RPC object, or one whole JSON value followed by
    /// the next header. Then the frame ends where the evidence says (rather than wait for
    /// bytes that may never come while the client waits for an answer).
    fn length_lied(&mut self, len: usize) -> Option<Result<Vec<u8>, String>> {
        let first = self.buf.iter().position(|b| !b.is_ascii_whitespace())?;
        if self.buf[first] != b'{' {
            self.end_pending();
            return Some(Err(format!(
                "a body of {len} byte(s) that cannot be JSON-RPC; reading on at the next header"
            )));
        }
        let next = self.marker.filter(|&m| m >= first && !self.marker_checked)?;
        self.marker_checked = true;
        let mut values =
            serde_json::Deserializer::from_slice(&self.buf[..next]).into_iter::<serde::de::IgnoredAny>();
        if !matches!(values.next(), Some(Ok(_))) {
            return None;
        }
        let end = values.byte_offset();
        if !self.buf[end..next].iter().all(u8::is_ascii_whitespace) {
            return None;
        }
        self.end_pending();
        Some(Ok(self.buf.drain(..end).collect()))
    }

    fn end_pending(&mut self) {
        self.pending = None;
        self.scanned = 0;
        self.marker = None;
        self.marker_checked = false;
    }

    /// Puts bytes back in front of what is still unread (a dropped body that held the
    /// start of the next frame).
    pub fn unread(&mut self, bytes: &[u8]) {
        let rest = std::mem::take(&mut self.buf);
        self.buf = bytes.to_vec();
        self.buf.extend(rest);
    }

    /// The next complete frame (Ok: its body; Err: what was skipped and why), or None
    /// when more input is needed.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, String>> {
        if let Some(len) = self.pending {
            if self.marker.is_none() {
                let from = self.scanned.saturating_sub(MARKER.len() - 1);
                self.marker = find_marker(&self.buf, from);
                self.scanned = self.buf.len();
            }
            // A header with no body: the next frame starts where its body should be.
            if let Some(n) = self.marker {
                if n < len && self.buf[..n].iter().all(u8::is_ascii_whitespace) {
                    self.end_pending();
                    self.buf.drain(..n);
                    return Some(Err("a header without its body".into()));
                }
            }
            if self.buf.len() < len {
                return self.length_lied(len);
            }
            self.end_pending();
            return Some(Ok(self.buf.drain(..len).collect()));
        }
        // Headers start at a Content-Length line; anything before one is noise.
        let Some(start) = find_marker(&self.buf, 0) else {
            // Keep a tail that may be the start of a marker split across reads.
            let dropped = self.buf.len().saturating_sub(MARKER.len() - 1);
            let noise = self.buf.drain(..dropped).any(|b| !b.is_ascii_whitespace());
            return noise.then(|| Err(format!("{dropped} byte(s) outside any frame")));
        };
        if start > 0 {
            let before: Vec<u8> = self.buf.drain(..start).collect();
            // Other headers may come first (Content-Type); only real noise is said.
            let header_lines = String::from_utf8_lossy(&before)
                .lines()
                .all(|l| l.trim().is_empty() || l.contains(':'));
            if !header_lines {
                return Some(Err(format!("{start} byte(s) outside any frame")));
            }
        }
        let Some((end, body_at)) = header_end(&self.buf) else {
            if self.buf.len() > MAX_HEADER {
                // No end of the headers in sight: skip this marker, look for the next.
                self.buf.drain(..MARKER.len());
                return Some(Err("a header block without an end".into()));
            }
            return None;
        };
        let header = String::from_utf8_lossy(&self.buf[..end]).into_owned();
        self.buf.drain(..body_at);
        match content_length(&header) {
            Ok(len) => {
                self.pending = Some(len);
                self.next_frame()
            }
            Err(why) => Some(Err(why)),
        }
    }
}

/// Where a (case-insensitive) `Content-Length:` starts at or after `from`. Not only at a
/// line start: after noise or a dropped body the next header follows without a newline.
fn find_marker(buf: &[u8], from: usize) -> Option<usize> {
    (from..=buf.len().checked_sub(MARKER.len())?)
        .find(|&i| buf[i..i + MARKER.len()].eq_ignore_ascii_case(MARKER))
}

/// The end of the header block (before the blank line) and where the body starts.
fn header_end(buf: &[u8]) -> Option<(usize, usize)> {
    let crlf = buf.windows(4).position(|w| w == b"\r\n\r\n").map(|i| (i, i + 4));
    let lf = buf.windows(2).position(|w| w == b"\n\n").map(|i| (i, i + 2));
    match (crlf, lf) {
        (Some(a), Some(b)) => Some(if a.0 <= b.0 { a } else { b }),
        (a, b) => a.or(b),
    }
}

fn content_length(header: &str) -> Result<usize, String> {
    let value = header
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(name, _)| name.trim().eq_ignore_ascii_case("content-length"))
        .map(|(_, v)| v.trim().to_string())
        .ok_or("a header block without Content-Length")?;
    let len: usize = value
        .parse()
        .map_err(|_| format!("Content-Length {value:?} is not a length"))?;
    if len > MAX_BODY {
        return Err(format!("Content-Length {len} is over the {MAX_BODY}-byte limit"));
    }
    Ok(len)
}

/// Checks one body; see the module documentation.
pub fn check(body: &[u8]) -> Checked {
    let Ok(text) = std::str::from_utf8(body) else {
        return Checked::Drop(format!("{} bytes that are not UTF-8", body.len()));
    };
    let value: Value = match serde_json::from_str(text) {
        Ok(v) => v,
        Err(e) => return Checked::Drop(format!("not JSON ({e}), {} bytes", body.len())),
    };
    let Value::Object(mut msg) = value else {
        return Checked::Drop("not a JSON-RPC object (a batch, or a bare value)".into());
    };
    let id = msg.get("id").cloned();
    let usable_id = matches!(id, Some(Value::Number(_) | Value::String(_)));
    let invalid = |why: &str| match (&id, usable_id) {
        (Some(id), true) => {
            let mut call = Map::new();
            call.insert("jsonrpc".into(), "2.0".into());
            call.insert("id".into(), id.clone());
            call.insert("method".into(), INVALID_REQUEST.into());
            call.insert("params".into(), serde_json::json!({ "reason": why }));
            Checked::Pass(serde_json::to_vec(&Value::Object(call)).expect("serialises"))
        }
        _ => Checked::Drop(why.to_string()),
    };
    if msg.get("jsonrpc") != Some(&Value::String("2.0".into())) {
        return invalid("not JSON-RPC 2.0 (\"jsonrpc\" must be \"2.0\")");
    }
    match (msg.get("method"), id.as_ref()) {
        (Some(Value::String(_)), None) => {}
        (Some(Value::String(_)), Some(_)) if usable_id => {}
        (Some(Value::String(_)), Some(_)) => {
            return Checked::Drop("a request whose id is not a number or a string".into())
        }
        (Some(_), _) => return invalid("\"method\" is not a string"),
        // A response from the client (to one of our requests).
        (None, Some(Value::Number(_) | Value::String(_) | Value::Null))
            if msg.contains_key("result") || msg.contains_key("error") => {}
        (None, _) => return invalid("neither a request nor a response"),
    }
    if let Some(p) = msg.get("params") {
        if !(p.is_object() || p.is_array() || p.is_null()) {
            return invalid("\"params\" must be an object or an array");
        }
    }
    // `"arguments": null` is no arguments (lsp-types wants a list).
    if msg.get("method").and_then(Value::as_str) == Some("workspace/executeCommand") {
        if let Some(Value::Object(params)) = msg.get_mut("params") {
            if params.get("arguments") == Some(&Value::Null) {
                params.remove("arguments");
                return Checked::Pass(serde_json::to_vec(&Value::Object(msg)).expect("serialises"));
            }
        }
    }
    Checked::Pass(body.to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};

    fn frame(body: &str) -> Vec<u8> {
        format!("Content-Length: {}\r\n\r\n{body}", body.len()).into_bytes()
    }

    fn bodies(input: &[u8]) -> Vec<Vec<u8>> {
        let mut f = Frames::default();
        f.push(input);
        let mut out = Vec::new();
        while let Some(r) = f.next_frame() {
            if let Ok(b) = r {
                out.push(b);
            }
        }
        out
    }

    const PING: &str = r#"{"jsonrpc":"2.0","id":7,"method":"shutdown"}"#;

    #[test]
    fn bad_headers_resynchronise_on_the_next_frame() {
        for bad in [
            "Content-Length: abc\r\n\r\n{}".to_string(),
            "Content-Length: -5\r\n\r\n".to_string(),
            "Content-Type: x\r\n\r\n{}".to_string(),
            format!("Content-Length: {}\r\n\r\n", 300usize << 20),
            // A header with no body, straight followed by the next frame.
            "Content-Length: 40\r\n\r\n".to_string(),
            "garbage before any header\r\n".to_string(),
        ] {
            let mut input = bad.clone().into_bytes();
            input.extend(frame(PING));
            assert_eq!(bodies(&input), vec![PING.as_bytes().to_vec()], "after {bad:?}");
        }
    }

    #[test]
    fn other_headers_may_come_first() {
        let input = format!(
            "Content-Type: application/vscode-jsonrpc; charset=utf-8\r\nContent-Length: {}\r\n\r\n{PING}",
            PING.len()
        );
        let mut f = Frames::default();
        f.push(input.as_bytes());
        assert_eq!(f.next_frame(), Some(Ok(PING.as_bytes().to_vec())));
    }

    #[test]
    fn a_body_is_never_preallocated_from_its_header() {
        let mut f = Frames::default();
        f.push(format!("Content-Length: {}\r\n\r\n{{", MAX_BODY).as_bytes());
        assert!(f.next_frame().is_none());
        assert!(f.buf.capacity() < 1 << 20);
    }

    #[test]
    fn a_body_that_mentions_content_length_is_kept_whole() {
        let body = r#"{"jsonrpc":"2.0","method":"x","params":{"t":"a\nContent-Length: 3\n"}}"#;
        assert_eq!(bodies(&frame(body)), vec![body.as_bytes().to_vec()]);
    }

    #[test]
    fn frames_split_across_reads_are_joined() {
        let input = frame(PING);
        let mut f = Frames::default();
        let mut got = Vec::new();
        for b in input.chunks(3) {
            f.push(b);
            while let Some(Ok(body)) = f.next_frame() {
                got.push(body);
            }
        }
        assert_eq!(got, vec![PING.as_bytes().to_vec()]);
    }

    #[test]
    fn bodies_that_are_not_json_rpc() {
        for bad in [
            r#"{"foo":1}"#,
            "[1,2,3]",
            "42",
            "null",
            r#"[{"jsonrpc":"2.0","method":"x"}]"#,
            r#"{"jsonrpc":"1.0","method":"x"}"#,
            r#"{"jsonrpc":"2.0","method":"x","params":"\ud800"}"#,
            r#"{"jsonrpc":"2.0","id":{"a":1},"method":"x"}"#,
        ] {
            assert!(matches!(check(bad.as_bytes()), Checked::Drop(_)), "{bad}");
        }
        assert!(matches!(check(&[0xff, 0xfe, b'{', b'}']), Checked::Drop(_)));
    }

    #[test]
    fn a_bad_request_with_an_id_is_answered_invalid_request() {
        for bad in [
            r#"{"jsonrpc":"1.0","id":3,"method":"x"}"#,
            r#"{"id":3,"method":"x"}"#,
            r#"{"jsonrpc":"2.0","id":"q","method":5}"#,
            r#"{"jsonrpc":"2.0","id":3,"method":"x","params":"s"}"#,
        ] {
            let Checked::Pass(out) = check(bad.as_bytes()) else {
                panic!("{bad}")
            };
            let v: Value = serde_json::from_slice(&out).unwrap();
            assert_eq!(v["method"], INVALID_REQUEST, "{bad}");
            assert_eq!(v["id"], serde_json::from_str::<Value>(bad).unwrap()["id"]);
        }
    }

    #[test]
    fn null_arguments_are_no_arguments() {
        let body = json!({"jsonrpc":"2.0","id":1,"method":"workspace/executeCommand",
            "params":{"command":"aisci.listJobs","arguments":null}})
        .to_string();
        let Checked::Pass(out) = check(body.as_bytes()) else {
            panic!()
        };
        let v: Value = serde_json::from_slice(&out).unwrap();
        assert!(v["params"].get("arguments").is_none());
        assert_eq!(v["params"]["command"], "aisci.listJobs");
    }

    #[test]
    fn good_messages_pass_unchanged() {
        for good in [
            PING,
            r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#,
            r#"{"jsonrpc":"2.0","id":1,"result":null}"#,
            r#"{"jsonrpc":"2.0","id":"x","error":{"code":1,"message":"m"}}"#,
        ] {
            assert_eq!(check(good.as_bytes()), Checked::Pass(good.as_bytes().to_vec()));
        }
    }

    /// Runs the guard over `input` followed by one valid request; what tower-lsp would get.
    fn guarded(input: Vec<u8>) -> Vec<Value> {
        let rt = tokio::runtime::Builder::new_current_thread().build().unwrap();
        rt.block_on(async move {
            let (mut client, server_in) = tokio::io::duplex(1 << 20);
            let (guarded_out, mut guarded_in) = tokio::io::duplex(1 << 20);
            let task = tokio::spawn(forward_messages(server_in, guarded_out));
            let mut all = input;
            all.extend(frame(PING));
            client.write_all(&all).await.unwrap();
            drop(client);
            task.await.unwrap();
            let mut out = Vec::new();
            guarded_in.read_to_end(&mut out).await.unwrap();
            // What came out must itself be clean frames of JSON-RPC.
            let mut f = Frames::default();
            f.push(&out);
            let mut msgs = Vec::new();
            while let Some(r) = f.next_frame() {
                let body = r.expect("the guard writes only whole frames");
                msgs.push(serde_json::from_slice::<Value>(&body).expect("and only JSON"));
            }
            msgs
        })
    }

    use proptest::prelude::*;

    /// Frames a client could send, mangled: good ones, cut ones, wrong lengths, bad bodies.
    fn mangled() -> impl Strategy<Value = Vec<u8>> {
        let body = prop_oneof![
            Just(r#"{"jsonrpc":"2.0","method":"initialized","params":{}}"#.to_string()),
            Just(r#"{"jsonrpc":"1.0","id":1,"method":"x"}"#.to_string()),
            Just("[1,2,3]".to_string()),
            Just(r#"{"jsonrpc":"2.0","method":"x","params":"\ud800"}"#.to_string()),
            "[ -~]{0,40}",
        ];
        let header = prop_oneof![
            Just(None),
            Just(Some("abc".to_string())),
            Just(Some("-5".to_string())),
            (0usize..80).prop_map(|n| Some(n.to_string())),
            Just(Some((300usize << 20).to_string())),
        ];
        (
            body,
            header,
            proptest::collection::vec(any::<u8>(), 0..12),
            any::<bool>(),
        )
            .prop_map(|(body, header, junk, honest)| {
                let len = match header {
                    Some(h) if !honest => h,
                    _ => body.len().to_string(),
                };
                let mut out = junk;
                out.extend(format!("Content-Length: {len}\r\n\r\n{body}").into_bytes());
                out
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

        /// Whatever came before, the valid request that follows reaches the server intact,
        /// and nothing that is not JSON-RPC gets through.
        #[test]
        fn the_next_valid_request_always_gets_through(frames in proptest::collection::vec(mangled(), 0..6)) {
            let msgs = guarded(frames.concat());
            let ping: Value = serde_json::from_str(PING).unwrap();
            prop_assert_eq!(msgs.last(), Some(&ping));
            for m in &msgs {
                prop_assert_eq!(&m["jsonrpc"], "2.0");
            }
        }

        #[test]
        fn random_bytes_never_hide_the_next_request(junk in proptest::collection::vec(any::<u8>(), 0..300)) {
            let msgs = guarded(junk);
            let ping: Value = serde_json::from_str(PING).unwrap();
            prop_assert_eq!(msgs.last(), Some(&ping));
        }
    }
}
