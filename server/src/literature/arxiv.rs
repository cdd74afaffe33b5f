//! arXiv's Atom API (`/api/query`), parsed by namespace so that both the classic and
//! the 2026 serializer read the same.

use tokio_util::sync::CancellationToken;

use super::bibtex::{self, BibEntry};
use super::http::{describe, EngineHttp};
use super::{Engine, EngineQuery, Found, LitError, Paper};

const ATOM: &str = "http://www.w3.org/2005/Atom";
const ARXIV: &str = "http://arxiv.org/schemas/atom";
const MAX_LIMIT: usize = 200;

#[derive(Debug)]
pub(crate) struct Arxiv {
    pub http: EngineHttp,
}

impl Arxiv {
    pub async fn search(&self, q: EngineQuery<'_>, cancel: &CancellationToken) -> Found {
        let (query, limit, deadline) = (q.text, q.limit, q.deadline);
        let params = [
            ("search_query", search_query(query)),
            ("start", "0".to_owned()),
            ("max_results", limit.clamp(1, MAX_LIMIT).to_string()),
            ("sortBy", "relevance".to_owned()),
            ("sortOrder", "descending".to_owned()),
        ];
        let body = self.http.get("/query", &params, &[], deadline, cancel).await?;
        if body.is_html() || body.is_json() {
            return Err(LitError::Malformed {
                engine: Engine::Arxiv,
                message: format!(
                    "expected an Atom feed, got {}",
                    describe(&body.content_type, &body.text)
                ),
            });
        }
        let mut papers = parse_feed(&body.text)?;
        papers.truncate(limit);
        Ok(papers)
    }
}

/// `all:` on every word, ANDed: arXiv's query syntax has no plain-text mode, and its
/// operators and field prefixes must not leak in from the user's words.
pub fn search_query(query: &str) -> String {
    let words: Vec<String> = query
        .split(|c: char| c.is_whitespace() || "-:()\"[]".contains(c))
        .map(|w| w.trim_matches(|c: char| !c.is_alphanumeric()))
        .filter(|w| !w.is_empty() && !matches!(*w, "AND" | "OR" | "ANDNOT"))
        .map(|w| format!("all:{w}"))
        .collect();
    words.join(" AND ")
}

fn collapse(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// Papers from an Atom feed; an error entry (`…/api/errors#…`) becomes BadRequest.
pub fn parse_feed(xml: &str) -> Result<Vec<Paper>, LitError> {
    let malformed = |m: String| LitError::Malformed {
        engine: Engine::Arxiv,
        message: m,
    };
    let doc = roxmltree::Document::parse(xml).map_err(|e| malformed(format!("invalid XML ({e})")))?;
    let feed = doc.root_element();
    if !feed.has_tag_name((ATOM, "feed")) {
        return Err(malformed(format!(
            "expected an Atom feed, got <{}>",
            feed.tag_name().name()
        )));
    }
    let mut out: Vec<(Paper, BibEntry)> = Vec::new();
    for entry in feed.children().filter(|n| n.has_tag_name((ATOM, "entry"))) {
        let child_text = |ns: &str, name: &str| {
            entry
                .children()
                .find(|n| n.has_tag_name((ns, name)))
                .and_then(|n| n.text())
                .map(collapse)
                .filter(|s| !s.is_empty())
        };
        let Some(id_url) = child_text(ATOM, "id") else {
            continue;
        };
        if id_url.contains("arxiv.org/api/errors") {
            return Err(LitError::BadRequest {
                engine: Engine::Arxiv,
                message: child_text(ATOM, "summary").unwrap_or(id_url),
            });
        }
        let Some(title) = child_text(ATOM, "title") else {
            continue;
        };
        let id = id_url
            .rsplit_once("/abs/")
            .map_or(id_url.as_str(), |(_, id)| id)
            .to_owned();
        let bare_id = strip_version(&id).to_owned();
        let authors: Vec<String> = entry
            .children()
            .filter(|n| n.has_tag_name((ATOM, "author")))
            .filter_map(|a| {
                a.children()
                    .find(|n| n.has_tag_name((ATOM, "name")))
                    .and_then(|n| n.text())
                    .map(collapse)
            })
            .filter(|s| !s.is_empty())
            .collect();
        let year = child_text(ATOM, "published").and_then(|p| p.get(..4)?.parse().ok());
        let doi = child_text(ARXIV, "doi");
        let journal_ref = child_text(ARXIV, "journal_ref");
        let primary = entry
            .children()
            .find(|n| n.has_tag_name((ARXIV, "primary_category")))
            .and_then(|n| n.attribute("term"))
            .map(str::to_owned);
        let url = format!("https://arxiv.org/abs/{bare_id}");

        let kind = if journal_ref.is_some() { "article" } else { "misc" };
        let key = bibtex::make_key(authors.first().map(String::as_str), year, &title);
        let mut e = BibEntry::new(kind, key);
        e.text("title", Some(&title));
        e.raw("author", Some(&bibtex::author_list(&authors)));
        e.text("journal", journal_ref.as_deref());
        e.raw("year", year.map(|y: i32| y.to_string()).as_deref());
        e.raw("eprint", Some(&bare_id));
        e.raw("archiveprefix", Some("arXiv"));
        e.raw("primaryclass", primary.as_deref());
        e.raw("doi", doi.as_deref());
        e.raw("url", Some(&url));

        let paper = Paper {
            engine: Engine::Arxiv,
            id,
            title,
            authors,
            venue: journal_ref.or_else(|| Some("arXiv".to_owned())),
            year,
            abstract_text: child_text(ATOM, "summary"),
            citation_count: None,
            doi,
            arxiv_id: Some(bare_id),
            url: Some(url),
            bibtex: None,
        };
        out.push((paper, e));
    }
    bibtex::dedupe_keys(out.iter_mut().map(|(_, e)| &mut e.key));
    Ok(out
        .into_iter()
        .map(|(mut p, e)| {
            p.bibtex = Some(e.render());
            p
        })
        .collect())
}

/// `2304.05376v5` → `2304.05376`.
fn strip_version(id: &str) -> &str {
    match id.rfind('v') {
        Some(i) if i + 1 < id.len() && id[i + 1..].bytes().all(|b| b.is_ascii_digit()) => &id[..i],
        _ => id,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn query_and_ids() {
        assert_eq!(
            search_query("large-scale (AND) ti:x \"y\""),
            "all:large AND all:scale AND all:ti AND all:x AND all:y"
        );
        assert_eq!(strip_version("2304.05376v5"), "2304.05376");
        assert_eq!(strip_version("hep-th/9901001"), "hep-th/9901001");
    }
}
