//! Semantic Scholar Academic Graph: `/paper/search` and `/paper/{id}`.

use serde::Deserialize;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::http::EngineHttp;
use super::{bibtex, Engine, EngineQuery, Found, LitError, Paper};
use crate::llm::ApiKey;

/// `citationStyles` carries S2's BibTeX; `externalIds`/`url` give DOI, arXiv id and a link.
const SEARCH_FIELDS: &str = "title,authors,venue,year,abstract,citationStyles,citationCount,externalIds,url";
const DETAIL_FIELDS: &str =
    "title,authors,venue,year,citationStyles,externalIds,url,journal,publicationTypes";
/// The API's page size limit.
const MAX_LIMIT: usize = 100;

#[derive(Debug)]
pub(crate) struct SemanticScholar {
    pub http: EngineHttp,
    pub key: Option<ApiKey>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct SearchBatch {
    data: Option<Vec<S2Paper>>,
}

#[derive(Deserialize, Default)]
#[serde(default, rename_all = "camelCase")]
struct S2Paper {
    paper_id: Option<String>,
    title: Option<String>,
    #[serde(rename = "abstract")]
    abstract_text: Option<String>,
    venue: Option<String>,
    year: Option<i32>,
    citation_count: Option<u64>,
    citation_styles: Option<CitationStyles>,
    authors: Option<Vec<Author>>,
    external_ids: Option<serde_json::Map<String, serde_json::Value>>,
    url: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct CitationStyles {
    bibtex: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Author {
    name: Option<String>,
}

impl SemanticScholar {
    fn headers(&self) -> Vec<(&'static str, String)> {
        self.key
            .iter()
            .map(|k| ("x-api-key", k.expose().to_owned()))
            .collect()
    }

    pub async fn search(&self, q: EngineQuery<'_>, cancel: &CancellationToken) -> Found {
        let (query, limit, deadline) = (q.text, q.limit, q.deadline);
        // S2 matches nothing for hyphenated words ("large-scale"); spaces work.
        let query = query.replace('-', " ");
        let params = [
            ("query", query.split_whitespace().collect::<Vec<_>>().join(" ")),
            ("limit", limit.clamp(1, MAX_LIMIT).to_string()),
            ("fields", SEARCH_FIELDS.to_owned()),
        ];
        let body = self
            .http
            .get("/paper/search", &params, &self.headers(), deadline, cancel)
            .await?;
        let batch: SearchBatch = body.json(Engine::SemanticScholar)?;
        Ok(batch
            .data
            .unwrap_or_default()
            .into_iter()
            .filter_map(into_paper)
            .take(limit)
            .collect())
    }

    /// The paper's details, for its BibTeX (search rows sometimes lack `citationStyles`).
    pub async fn paper(
        &self,
        id: &str,
        deadline: Instant,
        cancel: &CancellationToken,
    ) -> Result<Paper, LitError> {
        let path = format!("/paper/{}", urlencode_path(id));
        let body = self
            .http
            .get(
                &path,
                &[("fields", DETAIL_FIELDS.to_owned())],
                &self.headers(),
                deadline,
                cancel,
            )
            .await?;
        let p: S2Paper = body.json(Engine::SemanticScholar)?;
        into_paper(p).ok_or_else(|| LitError::Malformed {
            engine: Engine::SemanticScholar,
            message: format!("paper {id} has no id or title"),
        })
    }
}

fn urlencode_path(id: &str) -> String {
    let mut out = String::new();
    for b in id.bytes() {
        if b.is_ascii_alphanumeric() || b"-_.~:".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

fn nonempty(s: Option<String>) -> Option<String> {
    s.map(|s| s.trim().to_owned()).filter(|s| !s.is_empty())
}

fn into_paper(p: S2Paper) -> Option<Paper> {
    let id = nonempty(p.paper_id)?;
    let title = nonempty(p.title)?;
    let ext = p.external_ids.unwrap_or_default();
    let ext_str = |k: &str| ext.get(k).and_then(|v| v.as_str()).map(str::to_owned);
    let bibtex = p
        .citation_styles
        .and_then(|c| c.bibtex)
        .filter(|b| !b.trim().is_empty())
        .and_then(|b| match bibtex::sanitize(&b) {
            Ok(clean) => Some(clean),
            Err(e) => {
                tracing::debug!("semanticscholar BibTeX for {id} dropped: {e}");
                None
            }
        });
    Some(Paper {
        engine: Engine::SemanticScholar,
        url: nonempty(p.url).or_else(|| Some(format!("https://www.semanticscholar.org/paper/{id}"))),
        id,
        title,
        authors: p
            .authors
            .unwrap_or_default()
            .into_iter()
            .filter_map(|a| nonempty(a.name))
            .collect(),
        venue: nonempty(p.venue),
        year: p.year,
        abstract_text: nonempty(p.abstract_text),
        citation_count: p.citation_count,
        doi: ext_str("DOI"),
        arxiv_id: ext_str("ArXiv"),
        bibtex,
    })
}
