//! A local fake of the OpenAI / Anthropic HTTP APIs for hermetic tests. It replays
//! scripted replies (built from the recorded fixtures in `tests/fixtures/llm/`) in order
//! and records every request it saw, so tests can check headers and bodies.

use std::collections::{HashMap, VecDeque};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Uri};
use axum::response::Response;
use axum::Router;

use super::fake_http;

/// Read a fixture from `tests/fixtures/llm/`.
pub fn fixture(name: &str) -> String {
    fake_http::fixture("llm", name)
}

#[derive(Clone, Debug)]
pub enum Reply {
    /// A complete response.
    Full {
        status: u16,
        headers: Vec<(String, String)>,
        body: String,
    },
    /// Sends `body`, then breaks the connection instead of ending the response.
    Cut { body: String },
    /// Waits before replying (for timeouts and in-flight cancellation).
    Delay(Duration, Box<Reply>),
}

impl Reply {
    pub fn json(status: u16, body: impl Into<String>) -> Self {
        Reply::Full {
            status,
            headers: vec![("content-type".into(), "application/json".into())],
            body: body.into(),
        }
    }

    /// A 200 OpenAI-style chat completion `id` whose message is `text`, with the given
    /// token counts (model "local-model").
    pub fn chat_completion(id: &str, text: &str, prompt_tokens: u64, completion_tokens: u64) -> Self {
        let body = serde_json::json!({
            "id": id, "object": "chat.completion", "created": 1, "model": "local-model",
            "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
            "usage": { "prompt_tokens": prompt_tokens, "completion_tokens": completion_tokens,
                       "total_tokens": prompt_tokens + completion_tokens }
        });
        Self::json(200, body.to_string())
    }

    pub fn json_fixture(status: u16, name: &str) -> Self {
        Self::json(status, fixture(name))
    }

    /// A 200 `text/event-stream` whose body is the fixture, byte for byte.
    pub fn sse_fixture(name: &str) -> Self {
        Self::sse(fixture(name))
    }

    pub fn sse(body: impl Into<String>) -> Self {
        Reply::Full {
            status: 200,
            headers: vec![("content-type".into(), "text/event-stream".into())],
            body: body.into(),
        }
    }

    /// A recorded `.http` fixture: status line, headers, blank line, body.
    pub fn http_fixture(name: &str) -> Self {
        let (status, headers, body) = fake_http::parse_http(&fixture(name));
        Reply::Full {
            status,
            headers,
            body,
        }
    }

    pub fn with_header(self, name: &str, value: &str) -> Self {
        match self {
            Reply::Full {
                status,
                mut headers,
                body,
            } => {
                fake_http::set_header(&mut headers, name, value);
                Reply::Full {
                    status,
                    headers,
                    body,
                }
            }
            other => other,
        }
    }

    pub fn delayed(self, by: Duration) -> Self {
        Reply::Delay(by, Box::new(self))
    }
}

/// One request the fake received.
#[derive(Clone, Debug)]
pub struct Seen {
    pub path: String,
    pub headers: HashMap<String, String>,
    pub body: serde_json::Value,
    pub at: Instant,
}

#[derive(Default)]
struct Shared {
    script: VecDeque<Reply>,
    /// Scripts chosen by a text the request body contains (first match), for
    /// conversations that run at the same time; `script` answers the rest.
    routes: Vec<(String, VecDeque<Reply>)>,
    seen: Vec<Seen>,
}

pub struct FakeLlm {
    /// `http://127.0.0.1:PORT`, no trailing slash.
    pub url: String,
    shared: Arc<Mutex<Shared>>,
}

impl FakeLlm {
    pub async fn start(script: Vec<Reply>) -> Self {
        Self::start_routed(script, Vec::new()).await
    }

    /// Like [`FakeLlm::start`], but a request whose body contains a route's key is
    /// answered from that route's script (the first route that matches).
    pub async fn start_routed(script: Vec<Reply>, routes: Vec<(String, Vec<Reply>)>) -> Self {
        let shared = Arc::new(Mutex::new(Shared {
            script: script.into(),
            routes: routes.into_iter().map(|(k, r)| (k, r.into())).collect(),
            seen: Vec::new(),
        }));
        let app = Router::new().fallback(handle).with_state(Arc::clone(&shared));
        let url = fake_http::serve(app).await;
        FakeLlm { url, shared }
    }

    /// The OpenAI-style base URL (`…/v1`).
    pub fn v1(&self) -> String {
        format!("{}/v1", self.url)
    }

    pub fn seen(&self) -> Vec<Seen> {
        self.shared.lock().unwrap().seen.clone()
    }

    pub fn hits(&self) -> usize {
        self.shared.lock().unwrap().seen.len()
    }
}

async fn handle(
    State(shared): State<Arc<Mutex<Shared>>>,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let reply = {
        let mut s = shared.lock().unwrap();
        s.seen.push(Seen {
            path: uri.path().to_owned(),
            headers: fake_http::header_map(&headers),
            body: serde_json::from_slice(&body).unwrap_or(serde_json::Value::Null),
            at: Instant::now(),
        });
        let text = String::from_utf8_lossy(&body);
        match s.routes.iter_mut().find(|(key, _)| text.contains(key.as_str())) {
            Some((_, route)) => route.pop_front(),
            None => s.script.pop_front(),
        }
    };
    let mut reply = reply.unwrap_or_else(|| {
        Reply::json(
            500,
            r#"{"error":{"message":"fake server: no scripted reply left","type":"server_error"}}"#,
        )
    });
    while let Reply::Delay(by, inner) = reply {
        tokio::time::sleep(by).await;
        reply = *inner;
    }
    match reply {
        Reply::Full {
            status,
            headers,
            body,
        } => fake_http::full_response(status, headers, body),
        Reply::Cut { body } => {
            let chunks: Vec<Result<Bytes, std::io::Error>> = vec![
                Ok(Bytes::from(body)),
                Err(std::io::Error::other("fake server cut the connection")),
            ];
            Response::builder()
                .status(200)
                .header("content-type", "text/event-stream")
                .body(Body::from_stream(futures::stream::iter(chunks)))
                .unwrap()
        }
        Reply::Delay(..) => unreachable!("delays are unwrapped above"),
    }
}
