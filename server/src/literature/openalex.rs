//! OpenAlex `/works?search=`; abstracts from the inverted index, BibTeX from metadata.

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use super::bibtex::{self, BibEntry};
use super::http::EngineHttp;
use super::{Engine, EngineQuery, Found, Paper};
use crate::llm::ApiKey;

const MAX_LIMIT: usize = 100;

#[derive(Debug)]
pub(crate) struct OpenAlex {
    pub http: EngineHttp,
    pub key: Option<ApiKey>,
    pub mailto: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct WorksList {
    pub results: Option<Vec<Work>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
pub struct Work {
    id: Option<String>,
    doi: Option<String>,
    title: Option<String>,
    display_name: Option<String>,
    publication_year: Option<i32>,
    type_crossref: Option<String>,
    #[serde(rename = "type")]
    kind: Option<String>,
    primary_location: Option<Location>,
    locations: Option<Vec<Location>>,
    authorships: Option<Vec<Authorship>>,
    cited_by_count: Option<u64>,
    biblio: Option<Biblio>,
    abstract_inverted_index: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Location {
    landing_page_url: Option<String>,
    source: Option<Source>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Source {
    display_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Authorship {
    author: Option<AuthorRef>,
    raw_author_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct AuthorRef {
    display_name: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default)]
struct Biblio {
    volume: Option<String>,
    issue: Option<String>,
    first_page: Option<String>,
    last_page: Option<String>,
}

impl OpenAlex {
    pub async fn search(&self, q: EngineQuery<'_>, cancel: &CancellationToken) -> Found {
        let (query, limit, deadline) = (q.text, q.limit, q.deadline);
        let mut params = vec![
            ("search", query.split_whitespace().collect::<Vec<_>>().join(" ")),
            ("per-page", limit.clamp(1, MAX_LIMIT).to_string()),
        ];
        if let Some(k) = &self.key {
            params.push(("api_key", k.expose().to_owned()));
        }
        if let Some(m) = &self.mailto {
            params.push(("mailto", m.clone()));
        }
        let body = self.http.get("/works", &params, &[], deadline, cancel).await?;
        let list: WorksList = body.json(Engine::OpenAlex)?;
        let mut papers = works_to_papers(list.results.unwrap_or_default());
        papers.truncate(limit);
        Ok(papers)
    }
}

fn nonempty(s: Option<&str>) -> Option<String> {
    s.map(str::trim).filter(|s| !s.is_empty()).map(str::to_owned)
}

/// Papers with BibTeX whose keys are unique within the set.
pub fn works_to_papers(works: Vec<Work>) -> Vec<Paper> {
    let mut out: Vec<(Paper, BibEntry)> = works.iter().filter_map(work_to_paper).collect();
    bibtex::dedupe_keys(out.iter_mut().map(|(_, e)| &mut e.key));
    out.into_iter()
        .map(|(mut p, e)| {
            p.bibtex = Some(e.render());
            p
        })
        .collect()
}

/// The BibTeX of every work, keys deduplicated, entries separated by a blank line.
pub fn works_bibtex(works: Vec<Work>) -> String {
    works_to_papers(works)
        .into_iter()
        .filter_map(|p| p.bibtex)
        .collect::<Vec<_>>()
        .join("\n")
}

fn work_to_paper(w: &Work) -> Option<(Paper, BibEntry)> {
    let title = nonempty(w.title.as_deref()).or_else(|| nonempty(w.display_name.as_deref()))?;
    let id = nonempty(w.id.as_deref())?
        .trim_start_matches("https://openalex.org/")
        .to_owned();
    let authors: Vec<String> = w
        .authorships
        .iter()
        .flatten()
        .filter_map(|a| {
            nonempty(a.author.as_ref().and_then(|x| x.display_name.as_deref()))
                .or_else(|| nonempty(a.raw_author_name.as_deref()))
        })
        .collect();
    // The primary location's source, else the first location that names one (as v1 did).
    let venue = w
        .primary_location
        .iter()
        .chain(w.locations.iter().flatten())
        .find_map(|l| nonempty(l.source.as_ref().and_then(|s| s.display_name.as_deref())));
    let doi = nonempty(w.doi.as_deref()).map(|d| {
        d.trim_start_matches("https://doi.org/")
            .trim_start_matches("http://doi.org/")
            .to_owned()
    });
    let landing = w
        .primary_location
        .as_ref()
        .and_then(|l| nonempty(l.landing_page_url.as_deref()));
    let url = landing
        .clone()
        .or_else(|| doi.as_ref().map(|d| format!("https://doi.org/{d}")));
    let arxiv_id = doi
        .as_deref()
        .and_then(|d| {
            d.to_ascii_lowercase()
                .strip_prefix("10.48550/arxiv.")
                .map(str::to_owned)
        })
        .or_else(|| {
            landing
                .as_deref()
                .and_then(|u| u.split_once("arxiv.org/abs/"))
                .map(|(_, id)| id.to_owned())
        });
    let abstract_text = w.abstract_inverted_index.as_ref().and_then(invert_abstract);

    let kind = match w.type_crossref.as_deref().or(w.kind.as_deref()) {
        Some("journal-article") | Some("article") => "article",
        Some("proceedings-article") => "inproceedings",
        Some("book-chapter") => "incollection",
        Some("book") => "book",
        _ => "misc",
    };
    let key = bibtex::make_key(authors.first().map(String::as_str), w.publication_year, &title);
    let mut e = BibEntry::new(kind, key);
    e.text("title", Some(&title));
    e.raw("author", Some(&bibtex::author_list(&authors)));
    let venue_field = match kind {
        "article" => Some("journal"),
        "inproceedings" | "incollection" => Some("booktitle"),
        "book" => Some("publisher"),
        _ => None,
    };
    if let Some(f) = venue_field {
        e.text(f, venue.as_deref());
    }
    e.raw("year", w.publication_year.map(|y| y.to_string()).as_deref());
    if venue_field.is_none() {
        e.text("howpublished", venue.as_deref());
    }
    if let Some(b) = &w.biblio {
        e.text("volume", b.volume.as_deref());
        e.text("number", b.issue.as_deref());
        let pages = match (
            nonempty(b.first_page.as_deref()),
            nonempty(b.last_page.as_deref()),
        ) {
            (Some(f), Some(l)) if f != l => Some(format!("{f}--{l}")),
            (Some(f), _) => Some(f),
            _ => None,
        };
        e.raw("pages", pages.as_deref());
    }
    e.raw("doi", doi.as_deref());
    e.raw("url", url.as_deref());

    let paper = Paper {
        engine: Engine::OpenAlex,
        id,
        title,
        authors,
        venue,
        year: w.publication_year,
        abstract_text,
        citation_count: w.cited_by_count,
        doi,
        arxiv_id,
        url,
        bibtex: None,
    };
    Some((paper, e))
}

/// Rebuilds the text from `{word: [positions]}`: HTML entities unescaped (some are
/// escaped twice), JATS tags dropped, a leading "Abstract" label removed.
pub fn invert_abstract(index: &serde_json::Map<String, serde_json::Value>) -> Option<String> {
    let mut words: Vec<(u64, &str)> = Vec::new();
    for (word, positions) in index {
        for p in positions.as_array().into_iter().flatten() {
            if let Some(p) = p.as_u64() {
                words.push((p, word.as_str()));
            }
        }
    }
    words.sort_by_key(|(p, _)| *p);
    let joined = words.iter().map(|(_, w)| *w).collect::<Vec<_>>().join(" ");
    let text = strip_tags(&unescape_html(&unescape_html(&joined)));
    let text = text.split_whitespace().collect::<Vec<_>>().join(" ");
    let text = match text.split_once(' ') {
        Some((first, rest))
            if first
                .trim_end_matches([':', '.'])
                .eq_ignore_ascii_case("abstract") =>
        {
            rest.to_owned()
        }
        _ if text.eq_ignore_ascii_case("abstract") => String::new(),
        _ => text,
    };
    (!text.is_empty()).then_some(text)
}

/// Decodes the named entities that occur in abstracts and numeric ones.
pub fn unescape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('&') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let decoded = tail.find(';').filter(|&e| e <= 10).and_then(|e| {
            let name = &tail[1..e];
            let c = match name {
                "amp" => Some('&'),
                "lt" => Some('<'),
                "gt" => Some('>'),
                "quot" => Some('"'),
                "apos" => Some('\''),
                "nbsp" => Some(' '),
                _ if name.starts_with("#x") || name.starts_with("#X") => {
                    u32::from_str_radix(&name[2..], 16).ok().and_then(char::from_u32)
                }
                _ if name.starts_with('#') => name[1..].parse().ok().and_then(char::from_u32),
                _ => None,
            };
            c.map(|c| (c, e + 1))
        });
        match decoded {
            Some((c, len)) => {
                out.push(c);
                rest = &tail[len..];
            }
            None => {
                out.push('&');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

/// Removes `<jats:…>`-style markup left in abstracts (any `<tag>` that looks like one).
fn strip_tags(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut rest = s;
    while let Some(i) = rest.find('<') {
        out.push_str(&rest[..i]);
        let tail = &rest[i..];
        let is_tag = tail[1..]
            .trim_start_matches('/')
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic());
        match tail.find('>') {
            Some(e) if is_tag && (!tail[1..e].contains(' ') || tail[1..].starts_with("jats")) => {
                out.push(' ');
                rest = &tail[e + 1..];
            }
            _ => {
                out.push('<');
                rest = &tail[1..];
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn abstract_is_rebuilt_and_cleaned() {
        let idx: serde_json::Map<String, serde_json::Value> = serde_json::from_str(
            r#"{"Abstract":[0],"x":[1,4],"&amp;lt;":[2],"<jats:p>y</jats:p>":[3],"a&amp;amp;b":[5]}"#,
        )
        .unwrap();
        assert_eq!(invert_abstract(&idx).unwrap(), "x < y x a&b");
        assert_eq!(unescape_html("&#233;&#xE9; &unknown; & x"), "éé &unknown; & x");
        assert_eq!(strip_tags("a < b and c<d"), "a < b and c<d");
    }
}
