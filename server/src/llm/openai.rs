//! OpenAI Chat Completions client, also used for every server that copies its wire
//! format (DeepSeek, OpenRouter, Gemini's compatibility endpoint, Ollama, vLLM,
//! llama.cpp). One HTTP exchange per `chat`; retries live in `Llm`.

use super::wire_client::{Answer, WireClient};
use async_trait::async_trait;
use futures::StreamExt;
use serde::Deserialize;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::config::{LlmSettings, ProviderKind};

use super::endpoint::Endpoint;
use super::errors::{classify_http, redact, transport_error, truncate};
use super::sse::{SseEvent, SseParser};
use super::{ChatRequest, ChatResponse, LlmError, Message, Provider, Role, Usage};

/// OpenAI's reasoning families (o1, o3, o4, gpt-5…) reject `max_tokens` and any
/// non-default temperature. A `vendor/` prefix (OpenRouter) is ignored.
pub fn is_reasoning_model(model: &str) -> bool {
    let m = model.rsplit('/').next().unwrap_or(model).to_ascii_lowercase();
    let family = |p: &str| {
        m.strip_prefix(p)
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('-'))
    };
    family("o1") || family("o3") || family("o4") || m.starts_with("gpt-5")
}

pub struct OpenAiClient {
    wire: WireClient,
}

impl std::fmt::Debug for OpenAiClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.wire.debug(f, "OpenAiClient")
    }
}

impl OpenAiClient {
    pub fn new(http: reqwest::Client, endpoint: Endpoint, settings: &LlmSettings) -> Self {
        Self {
            wire: WireClient::new(http, endpoint, settings),
        }
    }

    /// The JSON body for `req`, with the reasoning-model rules applied.
    pub fn request_body(&self, req: &ChatRequest) -> Value {
        let mut messages = Vec::with_capacity(req.messages.len() + 1);
        if let Some(system) = req.system.as_deref().filter(|s| !s.is_empty()) {
            messages.push(json!({"role": "system", "content": system}));
        }
        for m in &req.messages {
            let role = match m.role {
                Role::User => "user",
                Role::Assistant => "assistant",
            };
            messages.push(json!({"role": role, "content": content(m)}));
        }
        let max_tokens = if req.max_tokens > 0 {
            req.max_tokens
        } else {
            self.wire.max_tokens
        };
        let mut body = json!({"model": self.wire.model, "messages": messages});
        let reasoning = is_reasoning_model(&self.wire.model)
            && matches!(
                self.wire.endpoint.kind,
                ProviderKind::Openai | ProviderKind::Openrouter
            );
        if reasoning && self.wire.endpoint.kind == ProviderKind::Openai {
            body["max_completion_tokens"] = json!(max_tokens);
        } else {
            body["max_tokens"] = json!(max_tokens);
        }
        if !reasoning {
            body["temperature"] = json!(req.temperature.unwrap_or(self.wire.temperature));
        }
        if self.wire.stream {
            body["stream"] = json!(true);
            body["stream_options"] = json!({"include_usage": true});
        }
        body
    }

    fn url(&self) -> String {
        format!("{}/chat/completions", self.wire.endpoint.base_url)
    }

    async fn exchange(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let body = self.request_body(req);
        match self.post(&body).await? {
            Answer::Stream(resp) => self.read_stream(resp).await,
            Answer::Body(body) => self.parse_body(&body),
        }
    }

    /// `n` completions in one non-streamed request.
    async fn exchange_n(&self, req: &ChatRequest, n: u32) -> Result<Vec<ChatResponse>, LlmError> {
        let mut body = self.request_body(req);
        if let Some(o) = body.as_object_mut() {
            o.remove("stream");
            o.remove("stream_options");
            o.insert("n".into(), json!(n));
        }
        match self.post(&body).await? {
            Answer::Stream(resp) => self.read_stream(resp).await.map(|r| vec![r]),
            Answer::Body(body) => self.parse_choices(&body),
        }
    }

    async fn post(&self, body: &Value) -> Result<Answer, LlmError> {
        let key = self.wire.endpoint.api_key.as_ref();
        let mut builder = self.wire.http.post(self.url()).json(body);
        if let Some(k) = key {
            builder = builder.bearer_auth(k.expose());
        }
        if self.wire.endpoint.kind == ProviderKind::Openrouter {
            builder = builder.header("X-Title", "aisci");
        }
        self.wire.send(builder, key).await
    }

    fn parse_body(&self, body: &str) -> Result<ChatResponse, LlmError> {
        Ok(self.parse_choices(body)?.remove(0))
    }

    /// Every choice of a non-streamed body, in index order (never empty).
    fn parse_choices(&self, body: &str) -> Result<Vec<ChatResponse>, LlmError> {
        let key = self.wire.endpoint.api_key.as_ref();
        if body.trim().is_empty() {
            // DeepSeek holds the connection with blank lines and may close without a body.
            return Err(LlmError::Transport {
                provider: self.wire.name.into(),
                message: "empty response body".into(),
            });
        }
        let value: Value = serde_json::from_str(body).map_err(|e| LlmError::Protocol {
            provider: self.wire.name.into(),
            message: format!("{e}: {}", truncate(&redact(body, key), 200)),
        })?;
        if value.get("error").is_some_and(|e| !e.is_null()) {
            // OpenRouter reports failures after generation started inside a 200.
            return Err(body_error(self.wire.name, &value, key));
        }
        let parsed: Completion = serde_json::from_value(value).map_err(|e| LlmError::Protocol {
            provider: self.wire.name.into(),
            message: e.to_string(),
        })?;
        let mut choices = parsed.choices;
        if choices.is_empty() {
            return Err(LlmError::Protocol {
                provider: self.wire.name.into(),
                message: "response has no choices".into(),
            });
        }
        choices.sort_by_key(|c| c.index);
        let model = parsed.model.unwrap_or_else(|| self.wire.model.clone());
        // The usage is the whole request's: it goes on the first answer only.
        let mut usage = parsed.usage.map(WireUsage::normalise).unwrap_or_default();
        Ok(choices
            .into_iter()
            .map(|c| ChatResponse {
                text: c.message.content.unwrap_or_default(),
                usage: std::mem::take(&mut usage),
                model: model.clone(),
                finish_reason: c.finish_reason,
            })
            .collect())
    }

    async fn read_stream(&self, resp: reqwest::Response) -> Result<ChatResponse, LlmError> {
        let key = self.wire.endpoint.api_key.as_ref();
        let mut acc = StreamAcc {
            model: self.wire.model.clone(),
            ..StreamAcc::default()
        };
        let mut parser = SseParser::new();
        let mut body = resp.bytes_stream();
        while let Some(chunk) = body.next().await {
            let chunk = chunk.map_err(|e| LlmError::Stream {
                provider: self.wire.name.into(),
                message: transport_error(self.wire.name, &e, key).to_string(),
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
        // No `[DONE]`: complete only if the model had finished its answer.
        if acc.finish_reason.is_some() {
            Ok(acc.finish())
        } else {
            Err(LlmError::Stream {
                provider: self.wire.name.into(),
                message: "connection closed before the answer was complete".into(),
            })
        }
    }

    /// Returns true at `[DONE]`.
    fn on_event(&self, ev: &SseEvent, acc: &mut StreamAcc) -> Result<bool, LlmError> {
        let data = ev.data.trim();
        if data == "[DONE]" {
            return Ok(true);
        }
        if data.is_empty() {
            return Ok(false);
        }
        let key = self.wire.endpoint.api_key.as_ref();
        let value: Value = serde_json::from_str(data).map_err(|e| LlmError::Stream {
            provider: self.wire.name.into(),
            message: format!("unreadable chunk ({e}): {}", truncate(&redact(data, key), 200)),
        })?;
        if value.get("error").is_some_and(|e| !e.is_null()) {
            return Err(match body_error(self.wire.name, &value, key) {
                // An error object after a 200 is the server giving up mid-answer: the
                // SDKs raise; retrying the whole request is the useful reaction.
                LlmError::Rejected { message, .. } | LlmError::Unavailable { message, .. } => {
                    LlmError::Stream {
                        provider: self.wire.name.into(),
                        message,
                    }
                }
                other => other,
            });
        }
        let chunk: Chunk = serde_json::from_value(value).map_err(|e| LlmError::Stream {
            provider: self.wire.name.into(),
            message: format!("unexpected chunk shape: {e}"),
        })?;
        if let Some(m) = chunk.model.filter(|m| !m.is_empty()) {
            acc.model = m;
        }
        for c in chunk.choices.iter().filter(|c| c.index == 0) {
            if let Some(t) = c.delta.as_ref().and_then(|d| d.content.as_deref()) {
                acc.text.push_str(t);
            }
            if let Some(f) = &c.finish_reason {
                acc.finish_reason = Some(f.clone());
            }
        }
        if let Some(u) = chunk.usage {
            acc.usage = Some(u.normalise());
        }
        Ok(false)
    }
}

/// A message's `content`: the plain string it always was, or, with images, an array of
/// parts: the text, then one `image_url` part per image with the bytes inline as a
/// `data:` URL (OpenAI, vLLM, Ollama, llama.cpp, OpenRouter and Gemini all read these).
fn content(m: &Message) -> Value {
    if m.images.is_empty() {
        return json!(m.content);
    }
    let text = (!m.content.is_empty()).then(|| json!({"type": "text", "text": m.content}));
    let images = m
        .images
        .iter()
        .map(|img| json!({"type": "image_url", "image_url": {"url": img.data_url()}}));
    Value::Array(text.into_iter().chain(images).collect())
}

/// An `{"error": ...}` object that arrived with a 200.
fn body_error(provider: &str, value: &Value, key: Option<&super::endpoint::ApiKey>) -> LlmError {
    // OpenRouter puts the real status in `error.code`; otherwise treat as a server error.
    let status = value
        .pointer("/error/code")
        .and_then(Value::as_u64)
        .and_then(|c| u16::try_from(c).ok())
        .filter(|c| (400..600).contains(c))
        .unwrap_or(500);
    classify_http(
        provider,
        status,
        &reqwest::header::HeaderMap::new(),
        &value.to_string(),
        key,
    )
}

#[derive(Default)]
struct StreamAcc {
    text: String,
    model: String,
    finish_reason: Option<String>,
    usage: Option<Usage>,
}

impl StreamAcc {
    fn finish(self) -> ChatResponse {
        ChatResponse {
            text: self.text,
            usage: self.usage.unwrap_or_default(),
            model: self.model,
            finish_reason: self.finish_reason,
        }
    }
}

#[derive(Deserialize)]
struct Completion {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<Choice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct Choice {
    #[serde(default)]
    index: u32,
    message: ChoiceMessage,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct ChoiceMessage {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize)]
struct Chunk {
    #[serde(default)]
    model: Option<String>,
    #[serde(default)]
    choices: Vec<ChunkChoice>,
    #[serde(default)]
    usage: Option<WireUsage>,
}

#[derive(Deserialize)]
struct ChunkChoice {
    #[serde(default)]
    index: u32,
    #[serde(default)]
    delta: Option<Delta>,
    #[serde(default)]
    finish_reason: Option<String>,
}

#[derive(Deserialize)]
struct Delta {
    #[serde(default)]
    content: Option<String>,
}

#[derive(Deserialize, Default)]
struct WireUsage {
    #[serde(default)]
    prompt_tokens: Option<u64>,
    #[serde(default)]
    completion_tokens: Option<u64>,
    #[serde(default)]
    prompt_tokens_details: Option<PromptDetails>,
    /// DeepSeek's own name for cached prompt tokens.
    #[serde(default)]
    prompt_cache_hit_tokens: Option<u64>,
}

#[derive(Deserialize, Default)]
struct PromptDetails {
    #[serde(default)]
    cached_tokens: Option<u64>,
}

impl WireUsage {
    /// OpenAI already reports cached tokens as a subset of `prompt_tokens`.
    fn normalise(self) -> Usage {
        let input = self.prompt_tokens.unwrap_or(0);
        let cached = self
            .prompt_tokens_details
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0)
            .min(input);
        Usage {
            input_tokens: input,
            cached_input_tokens: cached,
            cache_write_tokens: 0,
            output_tokens: self.completion_tokens.unwrap_or(0),
        }
    }
}

#[async_trait]
impl Provider for OpenAiClient {
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

    /// OpenAI's own API and vLLM honour `n`; the other OpenAI-style servers ignore it
    /// or refuse it (DeepSeek, Ollama, llama.cpp, OpenRouter's routing), and OpenAI's
    /// reasoning models are kept to one completion.
    fn supports_n(&self) -> bool {
        match self.wire.endpoint.kind {
            ProviderKind::Openai => !is_reasoning_model(&self.wire.model),
            ProviderKind::Vllm => true,
            _ => false,
        }
    }

    async fn chat_n(
        &self,
        req: &ChatRequest,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<Vec<ChatResponse>, LlmError> {
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(LlmError::Cancelled),
            r = self.exchange_n(req, n) => r,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::endpoint::ApiKey;
    use crate::llm::{Image, Wire};

    fn client(kind: ProviderKind, model: &str, stream: bool) -> OpenAiClient {
        let settings = LlmSettings {
            model: model.into(),
            stream,
            ..LlmSettings::default()
        };
        let endpoint = Endpoint {
            kind,
            wire: Wire::OpenAi,
            base_url: "http://127.0.0.1:9/v1".into(),
            api_key: Some(ApiKey::new("k")),
            key_var: None,
        };
        OpenAiClient::new(reqwest::Client::new(), endpoint, &settings)
    }

    fn req() -> ChatRequest {
        ChatRequest {
            system: Some("sys".into()),
            messages: vec![Message::user("hi")],
            temperature: Some(0.5),
            max_tokens: 100,
        }
    }

    #[test]
    fn reasoning_family_detection() {
        for m in [
            "o1",
            "o1-mini",
            "o3-mini-2025-01-31",
            "o4-mini",
            "gpt-5",
            "gpt-5-mini",
            "gpt-5.2",
            "openai/o3",
        ] {
            assert!(is_reasoning_model(m), "{m}");
        }
        for m in [
            "gpt-4o",
            "gpt-4.1-mini",
            "o10x",
            "claude-opus-4",
            "deepseek-reasoner",
            "llama3",
        ] {
            assert!(!is_reasoning_model(m), "{m}");
        }
    }

    #[test]
    fn several_completions_only_where_the_server_honours_n() {
        assert!(client(ProviderKind::Openai, "gpt-4o", true).supports_n());
        assert!(client(ProviderKind::Vllm, "local", true).supports_n());
        assert!(!client(ProviderKind::Openai, "o3-mini", false).supports_n());
        for kind in [
            ProviderKind::Deepseek,
            ProviderKind::Ollama,
            ProviderKind::Openrouter,
        ] {
            assert!(!client(kind, "m", false).supports_n());
        }
        let c = client(ProviderKind::Openai, "gpt-4o", false);
        let body = r#"{"model":"gpt-4o-2024-08-06","choices":[
            {"index":1,"message":{"role":"assistant","content":"second"},"finish_reason":"stop"},
            {"index":0,"message":{"role":"assistant","content":"first"},"finish_reason":"length"}],
            "usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":64}}}"#;
        let r = c.parse_choices(body).unwrap();
        assert_eq!(
            r.iter().map(|x| x.text.as_str()).collect::<Vec<_>>(),
            ["first", "second"]
        );
        assert_eq!(
            (r[0].usage.input_tokens, r[0].usage.cached_input_tokens),
            (100, 64)
        );
        assert_eq!(
            r[1].usage,
            Usage::default(),
            "the request's usage is counted once"
        );
        assert_eq!(r[0].finish_reason.as_deref(), Some("length"));
    }

    #[test]
    fn body_for_reasoning_and_classic_models() {
        let b = client(ProviderKind::Openai, "o3-mini", false).request_body(&req());
        assert_eq!(b["max_completion_tokens"], 100);
        assert!(b.get("max_tokens").is_none());
        assert!(b.get("temperature").is_none());
        assert!(b.get("stream").is_none());

        let b = client(ProviderKind::Openai, "gpt-4o", true).request_body(&req());
        assert_eq!(b["max_tokens"], 100);
        assert_eq!(b["temperature"], 0.5);
        assert_eq!(b["stream"], true);
        assert_eq!(b["stream_options"]["include_usage"], true);
        assert_eq!(b["messages"][0]["role"], "system");
        assert_eq!(b["messages"][1]["content"], "hi");

        // Only OpenAI itself gets the reasoning rules' token field; local servers keep max_tokens.
        let b = client(ProviderKind::Ollama, "o3-local", false).request_body(&req());
        assert_eq!(b["max_tokens"], 100);
        assert_eq!(b["temperature"], 0.5);
    }

    fn png_header() -> Image {
        Image {
            media_type: "image/png".into(),
            data: b"\x89PNG\r\n\x1a\n".to_vec(),
        }
    }

    #[test]
    fn body_with_images_has_content_parts() {
        let jpeg = Image {
            media_type: "image/jpeg".into(),
            data: vec![0xff, 0xd8, 0xff, 0xe0],
        };
        let r = ChatRequest {
            system: Some("sys".into()),
            messages: vec![
                Message::user("first"),
                Message::assistant("ok"),
                Message::user_with_images("Describe the plots.", vec![png_header(), jpeg]),
            ],
            temperature: Some(0.5),
            max_tokens: 100,
        };
        let b = client(ProviderKind::Openai, "gpt-4o", false).request_body(&r);
        assert_eq!(
            b,
            json!({
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "first"},
                    {"role": "assistant", "content": "ok"},
                    {"role": "user", "content": [
                        {"type": "text", "text": "Describe the plots."},
                        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                        {"type": "image_url", "image_url": {"url": "data:image/jpeg;base64,/9j/4A=="}},
                    ]},
                ],
                "max_tokens": 100,
                "temperature": 0.5,
            })
        );
        // The same parts for the OpenAI-compatible servers, vLLM among them.
        let b = client(ProviderKind::Vllm, "Qwen/Qwen2.5-VL-7B-Instruct", false).request_body(&r);
        assert_eq!(b["messages"][3]["content"][1]["type"], "image_url");
        // No text: only the images.
        let only = ChatRequest {
            messages: vec![Message::user_with_images("", vec![png_header()])],
            ..r
        };
        let b = client(ProviderKind::Openai, "gpt-4o", false).request_body(&only);
        assert_eq!(
            b["messages"][1]["content"],
            json!([{"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}}])
        );
    }

    #[test]
    fn text_only_body_is_unchanged() {
        let b = client(ProviderKind::Openai, "gpt-4o", true).request_body(&req());
        assert_eq!(
            b,
            json!({
                "model": "gpt-4o",
                "messages": [
                    {"role": "system", "content": "sys"},
                    {"role": "user", "content": "hi"},
                ],
                "max_tokens": 100,
                "temperature": 0.5,
                "stream": true,
                "stream_options": {"include_usage": true},
            })
        );
    }

    #[test]
    fn vision_follows_the_setting_then_the_model_name() {
        use crate::config::Vision;
        assert!(client(ProviderKind::Openai, "gpt-4o", false).accepts_images());
        assert!(!client(ProviderKind::Openai, "o3-mini", false).accepts_images());
        assert!(!client(ProviderKind::Vllm, "local-model", false).accepts_images());
        let with = |model: &str, vision: Vision| {
            let settings = LlmSettings {
                model: model.into(),
                vision,
                ..LlmSettings::default()
            };
            let endpoint = client(ProviderKind::Vllm, model, false).wire.endpoint;
            OpenAiClient::new(reqwest::Client::new(), endpoint, &settings).accepts_images()
        };
        assert!(with("local-model", Vision::Yes));
        assert!(!with("gpt-4o", Vision::No));
        assert!(with("gpt-4o", Vision::Auto));
    }

    #[test]
    fn parses_lenient_bodies() {
        let c = client(ProviderKind::Deepseek, "deepseek-reasoner", false);
        let body = "\n\n\n{\"model\":\"deepseek-reasoner\",\"choices\":[{\"index\":0,\"message\":{\"role\":\"assistant\",\"content\":\"hi\",\"reasoning_content\":\"r\"},\"finish_reason\":\"stop\"}],\"usage\":{\"prompt_tokens\":10,\"completion_tokens\":5,\"prompt_cache_hit_tokens\":4}}";
        let r = c.parse_body(body).unwrap();
        assert_eq!(r.text, "hi");
        assert_eq!(r.usage.cached_input_tokens, 4);
        assert!(matches!(c.parse_body("   \n"), Err(LlmError::Transport { .. })));
        assert!(matches!(c.parse_body("<html>"), Err(LlmError::Protocol { .. })));
        let err = c
            .parse_body(r#"{"error":{"code":502,"message":"upstream down"}}"#)
            .unwrap_err();
        assert!(err.is_retryable());
    }
}
