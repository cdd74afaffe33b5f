//! The model layer: one `Provider` trait, concrete wire clients behind it, and the
//! `Llm` front door that adds retries, the usage ledger and the budget cap.

mod client;
pub use client::{CallTag, Llm, Totals};

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
}

impl Message {
    pub fn user(content: impl Into<String>) -> Self {
        Self {
            role: Role::User,
            content: content.into(),
        }
    }
    pub fn assistant(content: impl Into<String>) -> Self {
        Self {
            role: Role::Assistant,
            content: content.into(),
        }
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
    #[error("{provider}: {message}")]
    Transport { provider: String, message: String },
    #[error("the stream from {provider} broke off: {message}")]
    Stream { provider: String, message: String },
    #[error("replay: {0}")]
    Replay(String),
    #[error("cancelled")]
    Cancelled,
    #[error("configuration: {0}")]
    Config(String),
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
}
