//! What every HTTP chat client holds: the connection, where it goes, and the
//! sampling defaults from the settings.

use super::endpoint::{provider_name, ApiKey, Endpoint};
use super::errors::{classify_http, transport_error};
use super::LlmError;
use crate::config::{LlmSettings, Vision};

/// A successful answer: an SSE stream to read, or a whole JSON body.
pub(crate) enum Answer {
    Stream(reqwest::Response),
    Body(String),
}

pub(crate) struct WireClient {
    pub http: reqwest::Client,
    pub endpoint: Endpoint,
    pub name: &'static str,
    pub model: String,
    pub stream: bool,
    pub temperature: f32,
    pub max_tokens: u32,
    pub vision: Vision,
}

impl WireClient {
    pub fn new(http: reqwest::Client, endpoint: Endpoint, settings: &LlmSettings) -> Self {
        Self {
            http,
            name: provider_name(endpoint.kind),
            endpoint,
            model: settings.model.clone(),
            stream: settings.stream,
            temperature: settings.temperature,
            max_tokens: settings.max_tokens,
            vision: settings.vision,
        }
    }

    /// `llm.vision`: `yes`/`no` as said, `auto` by the model's name.
    pub fn accepts_images(&self) -> bool {
        self.vision
            .forced()
            .unwrap_or_else(|| super::known_vision_model(&self.model))
    }

    /// Sends a prepared request: HTTP errors classified (retryable or not, key
    /// redacted), and the answer as a stream only when one was asked for and the
    /// server sent one (servers fall back to plain JSON when they ignore `stream`).
    pub async fn send(
        &self,
        mut builder: reqwest::RequestBuilder,
        key: Option<&ApiKey>,
    ) -> Result<Answer, LlmError> {
        if self.stream {
            builder = builder.header(reqwest::header::ACCEPT, "text/event-stream");
        }
        let resp = builder
            .send()
            .await
            .map_err(|e| transport_error(self.name, &e, key))?;
        let status = resp.status();
        if !status.is_success() {
            let headers = resp.headers().clone();
            let body = resp.text().await.unwrap_or_default();
            return Err(classify_http(self.name, status.as_u16(), &headers, &body, key));
        }
        let is_sse = resp
            .headers()
            .get(reqwest::header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|ct| ct.starts_with("text/event-stream"));
        if self.stream && is_sse {
            return Ok(Answer::Stream(resp));
        }
        let body = resp
            .text()
            .await
            .map_err(|e| transport_error(self.name, &e, key))?;
        Ok(Answer::Body(body))
    }

    /// Debug output without the key (the endpoint's own Debug redacts it).
    pub fn debug(&self, f: &mut std::fmt::Formatter<'_>, type_name: &str) -> std::fmt::Result {
        f.debug_struct(type_name)
            .field("endpoint", &self.endpoint)
            .field("model", &self.model)
            .field("stream", &self.stream)
            .finish_non_exhaustive()
    }
}
