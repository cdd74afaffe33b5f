//! Literature search: Semantic Scholar, OpenAlex and arXiv behind one paper type,
//! with a process-wide rate limiter, an engine fallback with a circuit breaker,
//! an on-disk cache and BibTeX for every paper.

pub mod arxiv;
pub mod bibtex;
mod cache;
mod http;
pub mod limiter;
pub mod openalex;
mod search;
mod semantic_scholar;

pub use crate::config::Engine;
pub use cache::normalise_query;
pub use search::{Literature, Notice, DEFAULT_ARXIV_URL, DEFAULT_OPENALEX_URL, DEFAULT_S2_URL};

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

/// A paper as every engine reports it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Paper {
    pub engine: Engine,
    /// The engine's own id: S2 `paperId`, OpenAlex `W…`, arXiv `2401.01234v2`.
    pub id: String,
    pub title: String,
    /// Display names in order.
    pub authors: Vec<String>,
    pub venue: Option<String>,
    pub year: Option<i32>,
    #[serde(rename = "abstract")]
    pub abstract_text: Option<String>,
    pub citation_count: Option<u64>,
    pub doi: Option<String>,
    pub arxiv_id: Option<String>,
    /// A page a person can open.
    pub url: Option<String>,
    /// BibTeX as the engine gave it, or built from the metadata.
    pub bibtex: Option<String>,
}

/// What an engine's search gives.
pub type Found = Result<Vec<Paper>, LitError>;

/// One search as an engine runs it.
#[derive(Debug, Clone, Copy)]
pub struct EngineQuery<'a> {
    pub text: &'a str,
    pub limit: usize,
    /// When the search must have an answer (waits for rate limits stop there).
    pub deadline: tokio::time::Instant,
}

impl Paper {
    /// A paper known by its engine, id and title only; the rest is filled in as found.
    pub fn new(engine: Engine, id: impl Into<String>, title: impl Into<String>) -> Paper {
        Paper {
            engine,
            id: id.into(),
            title: title.into(),
            authors: Vec::new(),
            venue: None,
            year: None,
            abstract_text: None,
            citation_count: None,
            doi: None,
            arxiv_id: None,
            url: None,
            bibtex: None,
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LitError {
    #[error("{engine}: the API key was refused ({message}); check {key_var}")]
    BadKey {
        engine: Engine,
        key_var: String,
        message: String,
    },
    #[error("{engine} rejected the request: {message}")]
    BadRequest { engine: Engine, message: String },
    #[error("{engine} is rate limiting and did not recover within {secs:.0}s")]
    RateLimited { engine: Engine, secs: f64 },
    #[error("{engine} has used up its budget for today ({message})")]
    BudgetExhausted {
        engine: Engine,
        message: String,
        /// Until the budget resets, when the service said (OpenAlex: midnight UTC).
        resets_in: Option<std::time::Duration>,
    },
    #[error("{engine} is unavailable: {message}")]
    Unavailable { engine: Engine, message: String },
    #[error("{engine} answered something unreadable: {message}")]
    Malformed { engine: Engine, message: String },
    #[error("no engine could answer: {}", .0.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("; "))]
    AllFailed(Vec<LitError>),
    #[error("cancelled")]
    Cancelled,
    /// Settings that cannot work (unknown engine, no engine).
    #[error("literature settings: {0}")]
    Config(String),
}

/// What a search returned and where it came from.
#[derive(Debug, Clone, PartialEq)]
pub struct SearchResult {
    pub papers: Vec<Paper>,
    pub engine: Engine,
    pub from_cache: bool,
}

/// Searching the literature, as the stages need it. `literature::Literature`
/// implements it over real engines; tests script it.
#[async_trait]
pub trait PaperSearch: Send + Sync {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<SearchResult, LitError>;
}
