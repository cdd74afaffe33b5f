//! The environment an experiment runs with: aisci's own minus anything that looks like a
//! credential. Experiments are model-written code; a key they can read is a key that can
//! leak (printed into a log the model sees, sent over the network, written into a paper).
//!
//! The rule, applied to each variable name (compared in upper case):
//! - the provider key and endpoint variables aisci itself reads: `OPENAI_API_KEY`,
//!   `ANTHROPIC_API_KEY`, `DEEPSEEK_API_KEY`, `OPENROUTER_API_KEY`, `GEMINI_API_KEY`,
//!   `GOOGLE_API_KEY`, `VLLM_API_KEY`, `LLAMA_API_KEY`, `S2_API_KEY`, `OPENALEX_API_KEY`
//!   and the `*_BASE_URL` of those providers (a private proxy URL can embed a key);
//! - any name ending in `_KEY`, `_TOKEN` or `_PAT`, or containing `APIKEY`, `SECRET`,
//!   `PASSWORD`, `PASSWD` or `CREDENTIAL`;
//! - any name starting with `AWS_` or `AISCI_` (aisci's own configuration is not the
//!   experiment's business);
//! - `SSH_AUTH_SOCK` (a live handle to the user's SSH keys);
//! - names the configuration adds (e.g. a custom `llm.api_key_env`).
//!
//! Everything else is kept (`PATH`, `HOME`, `LANG`, `CUDA_VISIBLE_DEVICES`, `PYTHON*`,
//! `TOKENIZERS_PARALLELISM`, …), then the run's own variables are added on top.

use std::ffi::OsString;

/// Provider variables removed by name (their shapes are not all caught by the patterns).
const NAMED: &[&str] = &[
    "OPENAI_API_KEY",
    "ANTHROPIC_API_KEY",
    "DEEPSEEK_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "VLLM_API_KEY",
    "LLAMA_API_KEY",
    "S2_API_KEY",
    "OPENALEX_API_KEY",
    "OPENAI_BASE_URL",
    "ANTHROPIC_BASE_URL",
    "DEEPSEEK_BASE_URL",
    "OPENROUTER_BASE_URL",
    "GEMINI_BASE_URL",
    "GOOGLE_BASE_URL",
    "VLLM_BASE_URL",
    "LLAMA_BASE_URL",
    "SSH_AUTH_SOCK",
];

const SUFFIXES: &[&str] = &["_KEY", "_TOKEN", "_PAT"];
const INFIXES: &[&str] = &["APIKEY", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL"];
const PREFIXES: &[&str] = &["AWS_", "AISCI_"];

/// Whether a variable of this name is kept out of an experiment's environment.
pub fn is_secret(name: &str) -> bool {
    let up = name.to_ascii_uppercase();
    NAMED.contains(&up.as_str())
        || SUFFIXES.iter().any(|s| up.ends_with(s))
        || INFIXES.iter().any(|s| up.contains(s))
        || PREFIXES.iter().any(|s| up.starts_with(s))
}

/// The environment a run gets: `base` (aisci's own when None) without secrets, then
/// `extra` in order, each replacing a variable of the same name.
pub fn compose(
    base: Option<&[(OsString, OsString)]>,
    secret_names: &[String],
    extra: impl IntoIterator<Item = (OsString, OsString)>,
) -> Vec<(OsString, OsString)> {
    let base: Vec<(OsString, OsString)> = match base {
        Some(b) => b.to_vec(),
        None => std::env::vars_os().collect(),
    };
    let mut vars = scrub(base, secret_names);
    for (k, v) in extra {
        vars.retain(|(name, _)| *name != k);
        vars.push((k, v));
    }
    vars
}

/// `base` without secrets (by [`is_secret`] or, case-insensitively, any of `extra`).
pub fn scrub(
    base: impl IntoIterator<Item = (OsString, OsString)>,
    extra: &[String],
) -> Vec<(OsString, OsString)> {
    base.into_iter()
        .filter(|(name, _)| {
            let name = name.to_string_lossy();
            !is_secret(&name) && !extra.iter().any(|e| e.eq_ignore_ascii_case(&name))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_and_keepers() {
        for s in [
            "OPENAI_API_KEY",
            "openai_api_key",
            "OPENAI_BASE_URL",
            "HF_TOKEN",
            "GITHUB_TOKEN",
            "WANDB_API_KEY",
            "AWS_SECRET_ACCESS_KEY",
            "AWS_PROFILE",
            "DB_PASSWORD",
            "MY_SECRET_THING",
            "GOOGLE_APPLICATION_CREDENTIALS",
            "AISCI_CONFIG",
            "SSH_AUTH_SOCK",
            "S2_API_KEY",
        ] {
            assert!(is_secret(s), "{s} should be removed");
        }
        for k in [
            "PATH",
            "HOME",
            "LANG",
            "CUDA_VISIBLE_DEVICES",
            "PYTHONPATH",
            "PYTHONHASHSEED",
            "TOKENIZERS_PARALLELISM",
            "OLLAMA_HOST",
            "KEYTIMEOUT",
        ] {
            assert!(!is_secret(k), "{k} should be kept");
        }
    }

    #[test]
    fn extra_names_removed() {
        let base = [("WORK_LLM".into(), "k".into()), ("PATH".into(), "/bin".into())];
        let kept = scrub(base, &["work_llm".into()]);
        assert_eq!(kept, vec![("PATH".into(), "/bin".into())]);
    }
}
