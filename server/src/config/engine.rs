//! The literature engines by name: settings name them, `literature` implements them.

use serde::{Deserialize, Serialize};

/// Which service a paper or an answer came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Engine {
    #[serde(rename = "semanticscholar")]
    SemanticScholar,
    OpenAlex,
    Arxiv,
}

impl Engine {
    /// The name used in settings, `AISCI_ENGINES` and messages.
    pub fn as_str(self) -> &'static str {
        match self {
            Engine::SemanticScholar => "semanticscholar",
            Engine::OpenAlex => "openalex",
            Engine::Arxiv => "arxiv",
        }
    }

    pub fn parse(s: &str) -> Option<Engine> {
        match s
            .trim()
            .to_ascii_lowercase()
            .replace(['-', '_', ' '], "")
            .as_str()
        {
            "semanticscholar" | "s2" => Some(Engine::SemanticScholar),
            "openalex" => Some(Engine::OpenAlex),
            "arxiv" => Some(Engine::Arxiv),
            _ => None,
        }
    }
}

impl std::fmt::Display for Engine {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
