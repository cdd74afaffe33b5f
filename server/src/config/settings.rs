//! The typed settings every part of aisci reads. Defaults live here; where a value
//! comes from (files, editor, environment, flags) is `config::load`'s business.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, PartialEq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Settings {
    pub llm: LlmSettings,
    pub ideas: IdeaSettings,
    pub run: RunSettings,
}

/// Which wire protocol and default endpoint to use.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ProviderKind {
    /// Chosen from the model name (claude-* → anthropic, deepseek-* → deepseek, ...).
    Auto,
    Openai,
    Anthropic,
    Deepseek,
    Openrouter,
    Gemini,
    Ollama,
    Vllm,
    Llamacpp,
    /// Serves a recorded conversation from `replay_file`; no network.
    Replay,
}

/// USD per million tokens.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Price {
    pub input: f64,
    #[serde(default)]
    pub cached_input: Option<f64>,
    #[serde(default)]
    pub cache_write: Option<f64>,
    pub output: f64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct LlmSettings {
    pub model: String,
    pub provider: ProviderKind,
    /// Endpoint override. Only honoured from the user's own settings or a trusted
    /// project: a cloned project must not redirect the user's key elsewhere.
    pub base_url: Option<String>,
    /// Name of the environment variable holding the key; None = the provider's usual one.
    pub api_key_env: Option<String>,
    pub temperature: f32,
    pub max_tokens: u32,
    pub stream: bool,
    pub request_timeout_secs: u64,
    pub max_retries: u32,
    pub max_retry_secs: u64,
    pub budget_usd: Option<f64>,
    pub replay_file: Option<PathBuf>,
    /// Per-model price overrides, keyed by model name.
    pub prices: BTreeMap<String, Price>,
}

impl Default for LlmSettings {
    fn default() -> Self {
        Self {
            model: "gpt-4o-2024-11-20".into(),
            provider: ProviderKind::Auto,
            base_url: None,
            api_key_env: None,
            temperature: 0.75,
            max_tokens: 4096,
            stream: true,
            request_timeout_secs: 300,
            max_retries: 6,
            max_retry_secs: 600,
            budget_usd: None,
            replay_file: None,
            prices: BTreeMap::new(),
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct IdeaSettings {
    pub num_ideas: u32,
    pub num_reflections: u32,
}

impl Default for IdeaSettings {
    fn default() -> Self {
        Self {
            num_ideas: 5,
            num_reflections: 3,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct RunSettings {
    /// The interpreter experiments run under. A command: never taken from an untrusted project.
    pub python: String,
}

impl Default for RunSettings {
    fn default() -> Self {
        Self {
            python: "python3".into(),
        }
    }
}
