//! Which endpoint and key a configuration means, resolved the way the official SDKs do
//! it: settings first, then the provider's usual environment variables, then defaults.

use std::collections::{BTreeMap, HashMap};
use std::fmt;

use crate::config::{LlmSettings, ProviderKind};

use super::LlmError;

/// Read access to environment variables, so tests can pass a map instead of mutating
/// the process environment.
pub trait Env: Send + Sync {
    fn var(&self, name: &str) -> Option<String>;
}

/// The real process environment.
#[derive(Debug, Clone, Copy, Default)]
pub struct ProcessEnv;

impl Env for ProcessEnv {
    fn var(&self, name: &str) -> Option<String> {
        std::env::var(name).ok()
    }
}

impl Env for HashMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl Env for BTreeMap<String, String> {
    fn var(&self, name: &str) -> Option<String> {
        self.get(name).cloned()
    }
}

impl<const N: usize> Env for [(&str, &str); N] {
    fn var(&self, name: &str) -> Option<String> {
        self.iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| (*v).to_owned())
    }
}

/// A secret. `Debug` and `Display` never show it; only `expose` does, for the header.
#[derive(Clone, PartialEq, Eq)]
pub struct ApiKey(String);

impl ApiKey {
    pub fn new(key: impl Into<String>) -> Self {
        Self(key.into())
    }
    pub fn expose(&self) -> &str {
        &self.0
    }
}

impl fmt::Debug for ApiKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("ApiKey([redacted])")
    }
}

/// The wire protocol an endpoint speaks.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Wire {
    OpenAi,
    Anthropic,
}

/// A resolved endpoint. `kind` is never `Auto` or `Replay`.
#[derive(Clone)]
pub struct Endpoint {
    pub kind: ProviderKind,
    pub wire: Wire,
    /// Without a trailing slash. OpenAI-style: up to `/v1`; Anthropic: the host root.
    pub base_url: String,
    pub api_key: Option<ApiKey>,
    /// The variable the key came from (for messages), if any.
    pub key_var: Option<String>,
}

/// `scheme://host[:port]` of a URL: what may be shown of an endpoint, since the rest
/// (user:password@, a key parameter) can hold credentials.
pub fn url_origin(url: &str) -> String {
    match reqwest::Url::parse(url) {
        Ok(u) => match (u.host_str(), u.port()) {
            (Some(h), Some(p)) => format!("{}://{h}:{p}", u.scheme()),
            (Some(h), None) => format!("{}://{h}", u.scheme()),
            _ => "<endpoint>".into(),
        },
        Err(_) => "<endpoint>".into(),
    }
}

impl fmt::Debug for Endpoint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Endpoint")
            .field("kind", &self.kind)
            .field("wire", &self.wire)
            .field("base_url", &url_origin(&self.base_url))
            .field("api_key", &self.api_key)
            .field("key_var", &self.key_var)
            .finish()
    }
}

/// The short name used in messages and the ledger.
pub fn provider_name(kind: ProviderKind) -> &'static str {
    match kind {
        ProviderKind::Auto => "auto",
        ProviderKind::Openai => "openai",
        ProviderKind::Anthropic => "anthropic",
        ProviderKind::Deepseek => "deepseek",
        ProviderKind::Openrouter => "openrouter",
        ProviderKind::Gemini => "gemini",
        ProviderKind::Ollama => "ollama",
        ProviderKind::Vllm => "vllm",
        ProviderKind::Llamacpp => "llamacpp",
        ProviderKind::Replay => "replay",
    }
}

/// `auto` → a concrete provider from the model name; any other kind is kept.
pub fn infer_provider(kind: ProviderKind, model: &str) -> ProviderKind {
    if kind != ProviderKind::Auto {
        return kind;
    }
    let m = model.trim().to_ascii_lowercase();
    if m == "replay" {
        ProviderKind::Replay
    } else if m.contains('/') {
        // `vendor/model` ids are OpenRouter's naming scheme.
        ProviderKind::Openrouter
    } else if m.starts_with("claude") {
        ProviderKind::Anthropic
    } else if m.starts_with("deepseek") {
        ProviderKind::Deepseek
    } else if m.starts_with("gemini") {
        ProviderKind::Gemini
    } else {
        ProviderKind::Openai
    }
}

/// Resolve base URL and key for `settings`. Fails with `MissingKey` (naming the variable)
/// when a provider that needs a key has none, and with `Config` when a self-hosted
/// server has no `base_url`.
pub fn resolve_endpoint(settings: &LlmSettings, env: &dyn Env) -> Result<Endpoint, LlmError> {
    let kind = infer_provider(settings.provider, &settings.model);
    let nonempty = |name: &str| env.var(name).filter(|v| !v.trim().is_empty());
    let explicit_base = settings
        .base_url
        .as_deref()
        .map(str::trim)
        .filter(|b| !b.is_empty())
        .map(str::to_owned);

    // (default key variables in order, key required, base URL)
    let (key_vars, key_required, base): (&[&str], bool, String) = match kind {
        ProviderKind::Auto | ProviderKind::Replay => {
            return Err(LlmError::Config(
                "the replay provider has no network endpoint".into(),
            ))
        }
        ProviderKind::Openai => (
            &["OPENAI_API_KEY"],
            true,
            explicit_base
                .or_else(|| nonempty("OPENAI_BASE_URL"))
                .unwrap_or_else(|| "https://api.openai.com/v1".into()),
        ),
        ProviderKind::Anthropic => (
            &["ANTHROPIC_API_KEY"],
            true,
            explicit_base
                .or_else(|| nonempty("ANTHROPIC_BASE_URL"))
                .unwrap_or_else(|| "https://api.anthropic.com".into()),
        ),
        ProviderKind::Deepseek => (
            &["DEEPSEEK_API_KEY"],
            true,
            explicit_base.unwrap_or_else(|| "https://api.deepseek.com".into()),
        ),
        ProviderKind::Openrouter => (
            &["OPENROUTER_API_KEY"],
            true,
            explicit_base.unwrap_or_else(|| "https://openrouter.ai/api/v1".into()),
        ),
        ProviderKind::Gemini => (
            &["GEMINI_API_KEY", "GOOGLE_API_KEY"],
            true,
            explicit_base.unwrap_or_else(|| "https://generativelanguage.googleapis.com/v1beta/openai".into()),
        ),
        ProviderKind::Ollama => (
            &[],
            false,
            explicit_base.unwrap_or_else(|| ollama_base(nonempty("OLLAMA_HOST").as_deref())),
        ),
        ProviderKind::Vllm => (
            &["VLLM_API_KEY"],
            false,
            explicit_base.ok_or_else(|| {
                LlmError::Config("provider \"vllm\" needs llm.base_url, e.g. http://localhost:8000/v1".into())
            })?,
        ),
        ProviderKind::Llamacpp => (
            &["LLAMA_API_KEY"],
            false,
            explicit_base.ok_or_else(|| {
                LlmError::Config(
                    "provider \"llamacpp\" needs llm.base_url, e.g. http://localhost:8080/v1".into(),
                )
            })?,
        ),
    };

    // An explicitly named variable is a promise that the key is there: missing is an error
    // even for servers that would work without one.
    let (api_key, key_var) = match settings.api_key_env.as_deref().map(str::trim) {
        Some(var) if !var.is_empty() => match nonempty(var) {
            Some(k) => (Some(ApiKey::new(k.trim())), Some(var.to_owned())),
            None => return Err(LlmError::MissingKey { var: var.to_owned() }),
        },
        _ => {
            let found = key_vars
                .iter()
                .find_map(|v| nonempty(v).map(|k| (ApiKey::new(k.trim()), (*v).to_owned())));
            match found {
                Some((k, v)) => (Some(k), Some(v)),
                None if key_required => {
                    return Err(LlmError::MissingKey {
                        var: key_vars[0].to_owned(),
                    })
                }
                None => (None, None),
            }
        }
    };

    Ok(Endpoint {
        kind,
        wire: if kind == ProviderKind::Anthropic {
            Wire::Anthropic
        } else {
            Wire::OpenAi
        },
        base_url: base.trim_end_matches('/').to_owned(),
        api_key,
        key_var,
    })
}

/// `OLLAMA_HOST` may be `host`, `host:port` or a URL; the OpenAI-compatible API lives
/// under `/v1`. A bind-all address is reached through loopback.
fn ollama_base(host: Option<&str>) -> String {
    let host = host.map(str::trim).unwrap_or("").trim_end_matches('/');
    if host.is_empty() {
        return "http://localhost:11434/v1".into();
    }
    let (scheme, rest) = match host.split_once("://") {
        Some((s, r)) => (s, r),
        None => ("http", host),
    };
    let (hostport, path) = match rest.find('/') {
        Some(i) => (&rest[..i], &rest[i..]),
        None => (rest, ""),
    };
    let has_port = hostport
        .rsplit_once(':')
        .is_some_and(|(_, p)| !p.is_empty() && p.bytes().all(|b| b.is_ascii_digit()))
        && !hostport.ends_with(']');
    // Like the ollama client: https without a port means 443, anything else 11434.
    let hostport = if has_port || scheme == "https" {
        hostport.to_owned()
    } else {
        format!("{hostport}:11434")
    };
    let hostport = hostport.replacen("0.0.0.0", "127.0.0.1", 1);
    format!("{scheme}://{hostport}{path}/v1")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(model: &str, provider: ProviderKind) -> LlmSettings {
        LlmSettings {
            model: model.into(),
            provider,
            ..LlmSettings::default()
        }
    }

    #[test]
    fn debug_shows_only_the_origin_of_the_endpoint() {
        let ep = Endpoint {
            kind: ProviderKind::Openai,
            wire: Wire::OpenAi,
            base_url: "https://user:pw@proxy.example:8443/v1?key=abc".into(),
            api_key: None,
            key_var: None,
        };
        let shown = format!("{ep:?}");
        assert!(shown.contains("https://proxy.example:8443"), "{shown}");
        assert!(!shown.contains("pw") && !shown.contains("abc"), "{shown}");
    }

    #[test]
    fn infers_provider_from_model_name() {
        use ProviderKind::*;
        let cases = [
            ("claude-sonnet-4-5-20250929", Anthropic),
            ("deepseek-reasoner", Deepseek),
            ("gemini-2.5-flash", Gemini),
            ("meta-llama/llama-3.1-405b-instruct", Openrouter),
            ("gpt-4o-2024-11-20", Openai),
            ("o3-mini", Openai),
            ("replay", Replay),
        ];
        for (model, want) in cases {
            assert_eq!(infer_provider(Auto, model), want, "{model}");
        }
        assert_eq!(infer_provider(Ollama, "claude-x"), Ollama);
    }

    #[test]
    fn openai_defaults_and_env_base_url() {
        let env = &[("OPENAI_API_KEY", "sk-test")];
        let ep = resolve_endpoint(&settings("gpt-4o", ProviderKind::Auto), env).unwrap();
        assert_eq!(ep.base_url, "https://api.openai.com/v1");
        assert_eq!(ep.api_key.as_ref().unwrap().expose(), "sk-test");
        assert_eq!(ep.wire, Wire::OpenAi);

        let env = &[
            ("OPENAI_API_KEY", "sk-test"),
            ("OPENAI_BASE_URL", "http://proxy.local/v1/"),
        ];
        let ep = resolve_endpoint(&settings("gpt-4o", ProviderKind::Auto), env).unwrap();
        assert_eq!(ep.base_url, "http://proxy.local/v1");

        // Settings beat the environment.
        let mut s = settings("gpt-4o", ProviderKind::Openai);
        s.base_url = Some("http://mine/v1".into());
        assert_eq!(resolve_endpoint(&s, env).unwrap().base_url, "http://mine/v1");
    }

    #[test]
    fn provider_defaults() {
        let env = &[
            ("ANTHROPIC_API_KEY", "a"),
            ("DEEPSEEK_API_KEY", "d"),
            ("OPENROUTER_API_KEY", "o"),
            ("GOOGLE_API_KEY", "g"),
        ];
        let base = |m: &str| {
            resolve_endpoint(&settings(m, ProviderKind::Auto), env)
                .unwrap()
                .base_url
        };
        assert_eq!(base("claude-haiku-4-5"), "https://api.anthropic.com");
        assert_eq!(base("deepseek-chat"), "https://api.deepseek.com");
        assert_eq!(base("deepseek/deepseek-r1"), "https://openrouter.ai/api/v1");
        assert_eq!(
            base("gemini-2.5-flash"),
            "https://generativelanguage.googleapis.com/v1beta/openai"
        );
        let ep = resolve_endpoint(&settings("claude-haiku-4-5", ProviderKind::Auto), env).unwrap();
        assert_eq!(ep.wire, Wire::Anthropic);
    }

    #[test]
    fn gemini_prefers_gemini_key_then_google() {
        let env = &[("GEMINI_API_KEY", "gem"), ("GOOGLE_API_KEY", "goo")];
        let ep = resolve_endpoint(&settings("gemini-2.5-pro", ProviderKind::Auto), env).unwrap();
        assert_eq!(ep.api_key.unwrap().expose(), "gem");
        assert_eq!(ep.key_var.as_deref(), Some("GEMINI_API_KEY"));
    }

    #[test]
    fn missing_key_names_the_variable() {
        let env = &[("OPENAI_API_KEY", "  ")];
        let err = resolve_endpoint(&settings("gpt-4o", ProviderKind::Auto), env).unwrap_err();
        assert!(matches!(&err, LlmError::MissingKey { var } if var == "OPENAI_API_KEY"));
        assert_eq!(
            err.to_string(),
            "missing API key: set the environment variable OPENAI_API_KEY"
        );

        let mut s = settings("claude-sonnet-4-5", ProviderKind::Auto);
        s.api_key_env = Some("MY_CLAUDE_KEY".into());
        let env = &[("ANTHROPIC_API_KEY", "present-but-not-asked-for")];
        let err = resolve_endpoint(&s, env).unwrap_err();
        assert!(err.to_string().contains("MY_CLAUDE_KEY"));
    }

    #[test]
    fn api_key_env_overrides_variable() {
        let mut s = settings("gpt-4o", ProviderKind::Auto);
        s.api_key_env = Some("WORK_OPENAI_KEY".into());
        let env = &[("OPENAI_API_KEY", "personal"), ("WORK_OPENAI_KEY", "work")];
        let ep = resolve_endpoint(&s, env).unwrap();
        assert_eq!(ep.api_key.unwrap().expose(), "work");
    }

    #[test]
    fn local_servers() {
        let none: &[(&str, &str); 0] = &[];
        let ep = resolve_endpoint(&settings("llama3.1", ProviderKind::Ollama), none).unwrap();
        assert_eq!(ep.base_url, "http://localhost:11434/v1");
        assert!(ep.api_key.is_none());
        assert_eq!(ollama_base(Some("0.0.0.0")), "http://127.0.0.1:11434/v1");
        assert_eq!(ollama_base(Some("gpu-box:9999")), "http://gpu-box:9999/v1");
        assert_eq!(
            ollama_base(Some("https://ollama.example.com/")),
            "https://ollama.example.com/v1"
        );

        let err = resolve_endpoint(&settings("m", ProviderKind::Vllm), none).unwrap_err();
        assert!(matches!(err, LlmError::Config(ref m) if m.contains("base_url")));
        let mut s = settings("m", ProviderKind::Llamacpp);
        s.base_url = Some("http://127.0.0.1:8080/v1".into());
        let ep = resolve_endpoint(&s, none).unwrap();
        assert!(ep.api_key.is_none());
        let env = &[("LLAMA_API_KEY", "local")];
        assert!(resolve_endpoint(&s, env).unwrap().api_key.is_some());
    }

    #[test]
    fn debug_output_redacts_key() {
        let env = &[("OPENAI_API_KEY", "sk-very-secret-123")];
        let ep = resolve_endpoint(&settings("gpt-4o", ProviderKind::Auto), env).unwrap();
        let dbg = format!("{ep:?}");
        assert!(!dbg.contains("sk-very-secret-123"), "{dbg}");
        assert!(dbg.contains("redacted"));
    }
}
