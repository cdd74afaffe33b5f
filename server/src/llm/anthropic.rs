//! Anthropic Messages API client (`POST /v1/messages`), streaming and not.

use super::wire_client::{Answer, WireClient};
use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::LlmSettings;

use super::endpoint::{ApiKey, Endpoint};
use super::errors::{parse_error_body, redact, transport_error, truncate};
use super::sse::{SseEvent, SseParser};
use super::{ChatRequest, ChatResponse, LlmError, Message, Provider, Role, Usage};

const API_VERSION: &str = "2023-06-01";

pub struct AnthropicClient {
    wire: WireClient,
}

impl std::fmt::Debug for AnthropicClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.wire.debug(f, "AnthropicClient")
    }
}

/// A text block ending a cached prefix.
fn cached_text(text: &str) -> Value {
    json!({"type": "text", "text": text, "cache_control": {"type": "ephemeral"}})
}

/// A message's `content`. Text alone stays a plain string unless it carries a cache
/// breakpoint; with images it is blocks: each image as a base64 `image` block, then the
/// text (images before text is what Anthropic recommends). A breakpoint goes on the last
/// block, so the images are inside the cached prefix. An empty text with images is left
/// out: Anthropic refuses empty text blocks.
fn content(m: &Message, breakpoint: bool) -> Value {
    if m.images.is_empty() {
        return if breakpoint {
            json!([cached_text(&m.content)])
        } else {
            json!(m.content)
        };
    }
    let mut blocks: Vec<Value> = m
        .images
        .iter()
        .map(|img| {
            json!({
                "type": "image",
                "source": {"type": "base64", "media_type": img.media_type, "data": img.base64()},
            })
        })
        .collect();
    if !m.content.is_empty() {
        blocks.push(json!({"type": "text", "text": m.content}));
    }
    if breakpoint {
        if let Some(last) = blocks.last_mut() {
            last["cache_control"] = json!({"type": "ephemeral"});
        }
    }
    Value::Array(blocks)
}

impl AnthropicClient {
    pub fn new(http: reqwest::Client, endpoint: Endpoint, settings: &LlmSettings) -> Self {
        Self {
            wire: WireClient::new(http, endpoint, settings),
        }
    }

    /// The Messages API body. Prompt caching: the system prompt, the newest message and the
    /// last user message before it carry `cache_control` breakpoints (3 of the 4 allowed),
    /// so each call of a conversation reads the prefix the previous call wrote (a stage's
    /// stable inputs come first). A prefix shorter than the model's minimum is simply not
    /// cached; Anthropic ignores the marker then.
    pub fn request_body(&self, req: &ChatRequest) -> Value {
        let last = req.messages.len().checked_sub(1);
        let previous_user = last.and_then(|l| req.messages[..l].iter().rposition(|m| m.role == Role::User));
        let messages: Vec<Value> = req
            .messages
            .iter()
            .enumerate()
            .map(|(i, m)| {
                let role = match m.role {
                    Role::User => "user",
                    Role::Assistant => "assistant",
                };
                let breakpoint = Some(i) == last || Some(i) == previous_user;
                json!({"role": role, "content": content(m, breakpoint)})
            })
            .collect();
        let max_tokens = if req.max_tokens > 0 {
            req.max_tokens
        } else {
            self.wire.max_tokens
        };
        // Anthropic's range is 0..=1 where OpenAI's is 0..=2.
        let temperature = req.temperature.unwrap_or(self.wire.temperature).clamp(0.0, 1.0);
        let mut body = json!({
            "model": self.wire.model,
            "max_tokens": max_tokens,
            "messages": messages,
            "temperature": temperature,
        });
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            body["system"] = json!([cached_text(system)]);
        }
        if self.wire.stream {
            body["stream"] = json!(true);
        }
        body
    }

    fn key(&self) -> Option<&ApiKey> {
        self.wire.endpoint.api_key.as_ref()
    }

    async fn exchange(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let key = self.key();
        let mut builder = self
            .wire
            .http
            .post(format!("{}/v1/messages", self.wire.endpoint.base_url))
            .header("anthropic-version", API_VERSION)
            .json(&self.request_body(req));
        if let Some(k) = key {
            builder = builder.header("x-api-key", k.expose());
        }
        match self.wire.send(builder, key).await? {
            Answer::Stream(resp) => self.read_stream(resp).await,
            Answer::Body(body) => self.parse_body(&body),
        }
    }

    fn parse_body(&self, body: &str) -> Result<ChatResponse, LlmError> {
        let msg: WireMessage = serde_json::from_str(body).map_err(|e| LlmError::Protocol {
            provider: self.wire.name.into(),
            message: format!("{e}: {}", truncate(&redact(body, self.key()), 200)),
        })?;
        let text = msg
            .content
            .iter()
            .filter(|b| b.kind == "text")
            .filter_map(|b| b.text.as_deref())
            .collect::<String>();
        Ok(ChatResponse {
            text,
            usage: msg.usage.map(WireUsage::normalise).unwrap_or_default(),
            model: msg.model.unwrap_or_else(|| self.wire.model.clone()),
            finish_reason: msg.stop_reason,
        })
    }

    async fn read_stream(&self, resp: reqwest::Response) -> Result<ChatResponse, LlmError> {
        let mut acc = StreamAcc {
            model: self.wire.model.clone(),
            ..StreamAcc::default()
        };
        let mut parser = SseParser::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| LlmError::Stream {
                provider: self.wire.name.into(),
                message: transport_error(self.wire.name, &e, self.key()).to_string(),
            })?;
            for ev in parser.push(&chunk) {
                if self.on_event(&ev, &mut acc)? {
                    return Ok(acc.finish());
                }
            }
        }
        if let Some(ev) = parser.finish() {
            if self.on_event(&ev, &mut acc)? {
                return Ok(acc.finish());
            }
        }
        Err(LlmError::Stream {
            provider: self.wire.name.into(),
            message: "connection closed before message_stop".into(),
        })
    }

    /// Returns true at `message_stop`. Event names equal `data.type`; the data is
    /// authoritative, so an unnamed event still works.
    fn on_event(&self, ev: &SseEvent, acc: &mut StreamAcc) -> Result<bool, LlmError> {
        let value: Value = serde_json::from_str(&ev.data).map_err(|e| LlmError::Stream {
            provider: self.wire.name.into(),
            message: format!(
                "unreadable event ({e}): {}",
                truncate(&redact(&ev.data, self.key()), 200)
            ),
        })?;
        let kind = value
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or(ev.event.as_str());
        match kind {
            "message_start" => {
                if let Some(m) = value.pointer("/message/model").and_then(Value::as_str) {
                    acc.model = m.to_owned();
                }
                if let Some(u) = value.pointer("/message/usage") {
                    acc.usage.merge(u);
                }
            }
            // Thinking, signature and tool-input deltas are not part of the answer text.
            "content_block_delta"
                if value.pointer("/delta/type").and_then(Value::as_str) == Some("text_delta") =>
            {
                if let Some(t) = value.pointer("/delta/text").and_then(Value::as_str) {
                    acc.text.push_str(t);
                }
            }
            "message_delta" => {
                if let Some(r) = value.pointer("/delta/stop_reason").and_then(Value::as_str) {
                    acc.finish_reason = Some(r.to_owned());
                }
                // Cumulative counts: the last message_delta has the final output tokens.
                if let Some(u) = value.get("usage") {
                    acc.usage.merge(u);
                }
            }
            "message_stop" => return Ok(true),
            "error" => return Err(self.stream_error(&value)),
            // ping, content_block_start/stop and future event types carry nothing we keep.
            _ => {}
        }
        Ok(false)
    }

    /// `event: error` after the 200. Transient kinds become a retryable stream break.
    fn stream_error(&self, value: &Value) -> LlmError {
        let body = parse_error_body(&value.to_string());
        let message = redact(&body.message, self.key());
        let rejected_status = body.kinds.iter().find_map(|k| match k.as_str() {
            "invalid_request_error" => Some(400),
            "authentication_error" => Some(401),
            "billing_error" => Some(402),
            "permission_error" => Some(403),
            "not_found_error" => Some(404),
            "request_too_large" => Some(413),
            _ => None,
        });
        match rejected_status {
            Some(status) => LlmError::Rejected {
                provider: self.wire.name.into(),
                status,
                message,
            },
            None => LlmError::Stream {
                provider: self.wire.name.into(),
                message,
            },
        }
    }
}

#[derive(Default)]
struct StreamAcc {
    text: String,
    model: String,
    finish_reason: Option<String>,
    usage: WireUsage,
}

impl StreamAcc {
    fn finish(self) -> ChatResponse {
        ChatResponse {
            text: self.text,
            usage: self.usage.normalise(),
            model: self.model,
            finish_reason: self.finish_reason,
        }
    }
}

#[derive(Deserialize)]
struct WireMessage {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    content: Vec<Block>,
    #[serde(default)]
    stop_reason: Option<String>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Block {
    #[serde(rename = "type")]
    kind: String,
    #[serde(default)]
    text: Option<String>,
}

#[derive(Deserialize, Default, Clone, Copy)]
struct WireUsage {
    #[serde(default)]
    input_tokens: Option<u64>,
    #[serde(default)]
    cache_creation_input_tokens: Option<u64>,
    #[serde(default)]
    cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    output_tokens: Option<u64>,
}

impl WireUsage {
    /// Later events repeat or update counts; a field present in `v` replaces ours.
    fn merge(&mut self, v: &Value) {
        let field = |name: &str| v.get(name).and_then(Value::as_u64);
        self.input_tokens = field("input_tokens").or(self.input_tokens);
        self.cache_creation_input_tokens =
            field("cache_creation_input_tokens").or(self.cache_creation_input_tokens);
        self.cache_read_input_tokens = field("cache_read_input_tokens").or(self.cache_read_input_tokens);
        self.output_tokens = field("output_tokens").or(self.output_tokens);
    }

    /// Anthropic's `input_tokens` excludes cache reads and writes; ours includes them, so
    /// every provider's `input_tokens` means "the whole prompt".
    fn normalise(self) -> Usage {
        let read = self.cache_read_input_tokens.unwrap_or(0);
        let write = self.cache_creation_input_tokens.unwrap_or(0);
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0) + read + write,
            cached_input_tokens: read,
            cache_write_tokens: write,
            output_tokens: self.output_tokens.unwrap_or(0),
        }
    }
}

#[async_trait]
impl Provider for AnthropicClient {
    fn name(&self) -> &str {
        self.wire.name
    }

    fn model(&self) -> &str {
        &self.wire.model
    }

    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(LlmError::Cancelled),
            r = self.exchange(req) => r,
        }
    }

    fn accepts_images(&self) -> bool {
        self.wire.accepts_images()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::ProviderKind;
    use crate::llm::{Image, Wire};

    fn client() -> AnthropicClient {
        let settings = LlmSettings {
            model: "claude-sonnet-4-5".into(),
            temperature: 1.5,
            ..LlmSettings::default()
        };
        let endpoint = Endpoint {
            kind: ProviderKind::Anthropic,
            wire: Wire::Anthropic,
            base_url: "http://127.0.0.1:9".into(),
            api_key: Some(ApiKey::new("k")),
            key_var: None,
        };
        AnthropicClient::new(reqwest::Client::new(), endpoint, &settings)
    }

    #[test]
    fn system_goes_outside_messages_and_temperature_is_clamped() {
        let b = client().request_body(&ChatRequest {
            system: Some("be brief".into()),
            messages: vec![Message::user("hi"), Message::assistant("yo"), Message::user("?")],
            temperature: None,
            max_tokens: 0,
        });
        assert_eq!(b["system"][0]["text"], "be brief");
        assert_eq!(b["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(b["messages"].as_array().unwrap().len(), 3);
        // Breakpoints: the newest message and the user message before it; not the reply.
        assert_eq!(b["messages"][0]["content"][0]["text"], "hi");
        assert_eq!(
            b["messages"][0]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert_eq!(b["messages"][1]["content"], "yo");
        assert_eq!(
            b["messages"][2]["content"][0]["cache_control"]["type"],
            "ephemeral"
        );
        assert_eq!(b["messages"][1]["role"], "assistant");
        assert_eq!(b["temperature"], 1.0);
        assert_eq!(b["max_tokens"], 4096);
        assert_eq!(b["stream"], true);
    }

    #[test]
    fn images_come_before_the_text_and_the_breakpoint_is_on_the_last_block() {
        let png = Image {
            media_type: "image/png".into(),
            data: b"\x89PNG\r\n\x1a\n".to_vec(),
        };
        let b = client().request_body(&ChatRequest {
            system: None,
            messages: vec![
                Message::user_with_images("old figure", vec![png.clone()]),
                Message::assistant("seen"),
                Message::user_with_images("the middle one", vec![png.clone()]),
                Message::assistant("yes"),
                Message::user_with_images("Compare these.", vec![png.clone(), png.clone()]),
            ],
            temperature: Some(0.2),
            max_tokens: 64,
        });
        let image = json!({"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}});
        let eph = json!({"type": "ephemeral"});
        assert_eq!(
            b["messages"],
            json!([
                // Not a breakpoint: blocks without cache_control.
                {"role": "user", "content": [image, {"type": "text", "text": "old figure"}]},
                {"role": "assistant", "content": "seen"},
                // The user message before the newest: a breakpoint on its last block.
                {"role": "user", "content": [image, {"type": "text", "text": "the middle one", "cache_control": eph}]},
                {"role": "assistant", "content": "yes"},
                {"role": "user", "content": [image, image, {"type": "text", "text": "Compare these.", "cache_control": eph}]},
            ])
        );
        assert!(b.get("system").is_none());

        // Images alone: no empty text block, and the breakpoint is on the last image.
        let b = client().request_body(&ChatRequest {
            system: None,
            messages: vec![Message::user_with_images("", vec![png])],
            temperature: None,
            max_tokens: 0,
        });
        assert_eq!(
            b["messages"][0]["content"],
            json!([{"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}, "cache_control": eph}])
        );
    }

    #[test]
    fn text_only_body_is_unchanged() {
        let b = client().request_body(&ChatRequest {
            system: Some("be brief".into()),
            messages: vec![Message::user("hi"), Message::assistant("yo"), Message::user("?")],
            temperature: Some(0.5),
            max_tokens: 10,
        });
        let eph = json!({"type": "ephemeral"});
        assert_eq!(
            b,
            json!({
                "model": "claude-sonnet-4-5",
                "max_tokens": 10,
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "hi", "cache_control": eph}]},
                    {"role": "assistant", "content": "yo"},
                    {"role": "user", "content": [{"type": "text", "text": "?", "cache_control": eph}]},
                ],
                "temperature": 0.5,
                "system": [{"type": "text", "text": "be brief", "cache_control": eph}],
                "stream": true,
            })
        );
        assert!(client().accepts_images(), "claude-sonnet-4-5 takes images");
    }

    #[test]
    fn usage_normalisation_counts_cache_inside_input() {
        let u: WireUsage = serde_json::from_str(
            r#"{"input_tokens":21,"cache_creation_input_tokens":1834,"cache_read_input_tokens":0,"output_tokens":61}"#,
        )
        .unwrap();
        assert_eq!(
            u.normalise(),
            Usage {
                input_tokens: 1855,
                cached_input_tokens: 0,
                cache_write_tokens: 1834,
                output_tokens: 61
            }
        );
    }

    #[test]
    fn non_stream_body_concatenates_text_blocks() {
        let body = r#"{"model":"claude-x","content":[{"type":"thinking","thinking":"hm"},{"type":"text","text":"a"},{"type":"text","text":"b"}],"stop_reason":"max_tokens","usage":{"input_tokens":3,"output_tokens":2}}"#;
        let r = client().parse_body(body).unwrap();
        assert_eq!(r.text, "ab");
        assert_eq!(r.finish_reason.as_deref(), Some("max_tokens"));
        assert_eq!(r.usage.input_tokens, 3);
    }
}
