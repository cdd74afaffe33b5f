//! What every HTTP chat client holds: the connection, where it goes, and the
//! sampling defaults from the settings.

use super::endpoint::{provider_name, Endpoint};
use crate::config::LlmSettings;

pub(crate) struct WireClient {
    pub http: reqwest::Client,
    pub endpoint: Endpoint,
    pub name: &'static str,
    pub model: String,
    pub stream: bool,
    pub temperature: f32,
    pub max_tokens: u32,
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
        }
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
