//! The model layer: one `Provider` trait, concrete wire clients behind it, and the
//! `Llm` front door that adds retries, the usage ledger and the budget cap.

mod anthropic;
mod client;
mod endpoint;
mod errors;
mod ledger;
mod openai;
mod pricing;
mod replay;
mod retry;
pub mod sse;
mod vision;
mod wire_client;

pub use anthropic::AnthropicClient;
pub use client::{CallTag, Llm};
pub use endpoint::{
    infer_provider, provider_name, resolve_endpoint, url_origin, ApiKey, Endpoint, Env, ProcessEnv, Wire,
};
pub use ledger::Totals;
pub use ledger::{CallRecord, LedgerSnapshot};
pub use openai::{is_reasoning_model, OpenAiClient};
pub use pricing::{CostBreakdown, PriceTable};
pub use replay::{RecordedExchange, RecordedResponse, Recording, ReplayProvider};
pub use retry::{parse_retry_after, RetryPolicy};
pub use vision::{known_vision_model, sniff_media_type, Image, MAX_IMAGE_BYTES};

use std::sync::Arc;
use std::time::Duration;

use crate::config::{LlmSettings, ProviderKind};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// Who said a message in a conversation.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    User,
    Assistant,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: Role,
    pub content: String,
    /// Images shown with the text (user messages only; the providers take no images from
    /// the assistant). Sent only to a model that accepts them ([`Provider::accepts_images`]).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub images: Vec<Image>,
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self::user_with_images(content, Vec::new())
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
            images: Vec::new(),
        }
    }
    /// A user message with images, which the wire formats put beside the text.
    pub fn user_with_images(content: impl Into<String>, images: Vec<Image>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
            images,
        }
    }
}

impl ChatRequest {
    /// How many images the request's messages carry.
    pub fn image_count(&self) -> usize {
        self.messages.iter().map(|m| m.images.len()).sum()
    }
}

/// One chat turn to send. The system prompt is separate because Anthropic wants it
/// outside `messages`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatRequest {
    pub system: Option<String>,
    pub messages: Vec<Message>,
    /// Ignored for reasoning models, which accept only their default.
    pub temperature: Option<f32>,
    pub max_tokens: u32,
}

/// Token counts of one call. `cached_input_tokens` is the part of the prompt served
/// from the provider's cache (a subset of `input_tokens` for OpenAI, reported
/// separately by Anthropic; clients normalise to "subset of input").
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct Usage {
    pub input_tokens: u64,
    pub cached_input_tokens: u64,
    pub cache_write_tokens: u64,
    pub output_tokens: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ChatResponse {
    pub text: String,
    pub usage: Usage,
    /// The model that answered, as the server names it.
    pub model: String,
    /// `stop`, `length`, `end_turn`, `max_tokens`, ...
    pub finish_reason: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum LlmError {
    #[error("missing API key: set the environment variable {var}")]
    MissingKey { var: String },
    #[error("budget exhausted: ${spent:.4} spent of the ${budget:.2} budget_usd cap; raise budget_usd to continue")]
    BudgetExceeded { spent: f64, budget: f64 },
    #[error("{provider} rejected the request ({status}): {message}")]
    Rejected {
        provider: String,
        status: u16,
        message: String,
    },
    #[error("{provider} is unavailable after {attempts} attempt(s) over {elapsed_secs:.0}s: {last}")]
    Exhausted {
        provider: String,
        attempts: u32,
        elapsed_secs: f64,
        last: String,
    },
    /// A transient HTTP failure (408/409/429/5xx/529): worth retrying, after
    /// `retry_after` when the server said how long to wait.
    #[error("{provider} is temporarily unavailable ({status}): {message}")]
    Unavailable {
        provider: String,
        status: u16,
        message: String,
        retry_after: Option<Duration>,
    },
    /// Connection refused/reset, DNS, TLS: nothing usable came back. Retryable.
    #[error("{provider}: {message}")]
    Transport { provider: String, message: String },
    /// No complete answer within `request_timeout_secs`. Retryable.
    #[error("{provider} did not answer within {secs}s (request_timeout_secs)")]
    Timeout { provider: String, secs: u64 },
    /// A 200 whose body is not the documented shape. Not retried: it would repeat.
    #[error("{provider} sent a response aisci cannot read: {message}")]
    Protocol { provider: String, message: String },
    #[error("the stream from {provider} broke off: {message}")]
    Stream { provider: String, message: String },
    #[error("replay: {0}")]
    Replay(String),
    #[error("cancelled")]
    Cancelled,
    #[error("configuration: {0}")]
    Config(String),
}

/// Whether a transport error's text says the host name could not be resolved.
fn is_name_resolution_failure(message: &str) -> bool {
    let m = message.to_ascii_lowercase();
    [
        "dns error",
        "failed to lookup address",
        "name or service not known",
        "no address associated",
    ]
    .iter()
    .any(|s| m.contains(s))
}

impl LlmError {
    /// Whether `Llm` should try the same request again. A host name that does not resolve
    /// (no network, a mistyped base_url) does not start resolving within the retry window:
    /// that is said at once rather than after minutes of retries.
    pub fn is_retryable(&self) -> bool {
        match self {
            LlmError::Transport { message, .. } => !is_name_resolution_failure(message),
            LlmError::Unavailable { .. } | LlmError::Timeout { .. } | LlmError::Stream { .. } => true,
            _ => false,
        }
    }

    /// The wait the server asked for (`retry-after-ms`, `retry-after`, Google `retryDelay`).
    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            LlmError::Unavailable { retry_after, .. } => *retry_after,
            _ => None,
        }
    }

    /// The HTTP status behind the error, when there was one.
    pub fn status(&self) -> Option<u16> {
        match self {
            LlmError::Unavailable { status, .. } | LlmError::Rejected { status, .. } => Some(*status),
            _ => None,
        }
    }
}

/// A chat endpoint. Implementations do one HTTP exchange (or one replayed answer);
/// retrying, accounting and budgets live in `Llm`, above this trait.
#[async_trait]
pub trait Provider: Send + Sync {
    /// Short provider name for messages and the ledger (`openai`, `anthropic`, `replay`, ...).
    fn name(&self) -> &str;
    /// The model requests are sent to.
    fn model(&self) -> &str;
    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, LlmError>;
    /// Whether the model may be sent images ([`Message::images`]). `Llm` refuses a request
    /// with images, without sending it, where this is false.
    fn accepts_images(&self) -> bool {
        false
    }
    /// Whether one request can return several completions ([`Provider::chat_n`]).
    fn supports_n(&self) -> bool {
        false
    }
    /// `n` completions of `req` in one request, the whole call's usage on the first.
    /// Only called when [`Provider::supports_n`].
    async fn chat_n(
        &self,
        _req: &ChatRequest,
        _n: u32,
        _cancel: &CancellationToken,
    ) -> Result<Vec<ChatResponse>, LlmError> {
        Err(LlmError::Config(format!(
            "{} cannot return several completions in one request",
            self.name()
        )))
    }
}

/// Builds the provider `settings` name and wraps it in an `Llm` with the settings'
/// retry policy, price overrides and budget. `env` supplies API keys and base-URL
/// variables; a missing key fails here, before any network traffic.
pub fn from_settings(settings: &LlmSettings, env: &dyn Env) -> Result<Llm, LlmError> {
    let provider = build_provider(settings, env)?;
    Ok(Llm::with_settings(provider, settings))
}

/// `from_settings` with the real process environment.
pub fn from_process_env(settings: &LlmSettings) -> Result<Llm, LlmError> {
    from_settings(settings, &ProcessEnv)
}

/// The bare provider for `settings` (no retries, ledger or budget).
pub fn build_provider(settings: &LlmSettings, env: &dyn Env) -> Result<Arc<dyn Provider>, LlmError> {
    if infer_provider(settings.provider, &settings.model) == ProviderKind::Replay {
        let path = settings.replay_file.as_ref().ok_or_else(|| {
            LlmError::Config("provider \"replay\" needs llm.replay_file (a recording to serve)".into())
        })?;
        return Ok(Arc::new(
            ReplayProvider::from_file(path)?.with_vision(settings.vision),
        ));
    }
    let endpoint = resolve_endpoint(settings, env)?;
    let http = http_client()?;
    Ok(match endpoint.wire {
        Wire::OpenAi => Arc::new(OpenAiClient::new(http, endpoint, settings)),
        Wire::Anthropic => Arc::new(AnthropicClient::new(http, endpoint, settings)),
    })
}

/// One reqwest client per provider: rustls, bounded connect time. The whole-request
/// timeout is applied per attempt by `Llm`, so it also covers slow streams.
fn http_client() -> Result<reqwest::Client, LlmError> {
    reqwest::Client::builder()
        .connect_timeout(Duration::from_secs(15))
        .user_agent(concat!("aisci/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| LlmError::Config(format!("cannot build the HTTP client: {e}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_name_that_does_not_resolve_is_not_retried() {
        let dns = LlmError::Transport {
            provider: "openai".into(),
            message: "error sending request for url (https://api.openai.com): client error (Connect): \
                      dns error: failed to lookup address information: Temporary failure in name resolution"
                .into(),
        };
        assert!(!dns.is_retryable());
        let refused = LlmError::Transport {
            provider: "openai".into(),
            message: "client error (Connect): tcp connect error: Connection refused (os error 111)".into(),
        };
        assert!(refused.is_retryable());
    }
}
