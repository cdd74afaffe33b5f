//! The citation rounds of the writing stage: the model proposes queries, the papers
//! found are listed with the key each would get, the model picks and cites them, and
//! aisci adds the picked entries to the bibliography in the same edit.
//!
//! A round is one search. One call lists the results of up to [`QUERIES_PER_CALL`]
//! searches, and its reply, besides the picks, may propose the next queries, so most
//! calls both cite and search on: v1 spent two calls per search (query, then pick).
//! Each call runs in a fresh context (the system prompt, the current `.tex`, the
//! listing and its own fixes), so a call costs the same late as early.

use std::path::Path;

use serde_json::Value;

use crate::agent::edits::parse_reply;
use crate::agent::json_extract;
use crate::agent::prompt::fill;
use crate::latex::{paper, syntax};
use crate::literature::{LitError, Paper, PaperSearch};

use super::citations::{self, Candidate};
use crate::agent::conversation::Applied;

use super::{Fatal, Stage, EDIT_FAILED_PROMPT, NO_MORE_CITATIONS};

const CITE_QUERY_PROMPT: &str = include_str!("../prompts/cite_query.txt");
const CITE_RESULTS_PROMPT: &str = include_str!("../prompts/cite_results.txt");
const CITE_NEXT_PROMPT: &str = include_str!("../prompts/cite_next.txt");
const CITE_NONE_PROMPT: &str = include_str!("../prompts/cite_none.txt");

/// Searches listed together in one call.
pub const QUERIES_PER_CALL: usize = 3;

/// Where the rounds stand between calls.
struct Rounds {
    total: u32,
    /// Searches made (or spent on an unusable reply) so far.
    used: u32,
    /// Queries the last reply proposed, not yet searched.
    queued: Vec<String>,
    /// Said at the start of the next query prompt (why the last round found nothing).
    note: String,
    /// The model said the paper cites enough.
    finished: bool,
}

impl Rounds {
    fn left(&self) -> u32 {
        self.total.saturating_sub(self.used)
    }

    /// How many queries the next call may list.
    fn per_call(&self) -> usize {
        (self.left() as usize).min(QUERIES_PER_CALL)
    }
}

/// The queries in a reply: `"Queries": [...]` or `"Query": "..."`, in any JSON object of it.
fn queries_in(reply: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for v in json_extract::extract_all(reply) {
        let found: Vec<&str> = match (v.get("Queries"), v.get("Query")) {
            (Some(Value::Array(a)), _) => a.iter().filter_map(Value::as_str).collect(),
            (Some(Value::String(q)), _) | (_, Some(Value::String(q))) => vec![q.as_str()],
            (_, Some(Value::Array(a))) => a.iter().filter_map(Value::as_str).collect(),
            _ => Vec::new(),
        };
        for q in found.into_iter().map(str::trim).filter(|q| !q.is_empty()) {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(q)) {
                out.push(q.to_string());
            }
        }
    }
    out
}

/// `The search for "a"` / `The searches for "a", "b" and "c"`.
fn searches_text(queries: &[String]) -> String {
    let quoted: Vec<String> = queries.iter().map(|q| format!("\"{q}\"")).collect();
    match quoted.as_slice() {
        [one] => format!("The search for {one}"),
        [rest @ .., last] => format!("The searches for {} and {last}", rest.join(", ")),
        [] => String::new(),
    }
}

impl Stage<'_> {
    /// The citation rounds: queries → results with their keys → picks and `\cite` edits
    /// (and the next queries).
    pub(super) async fn cite(&mut self) -> Result<(), Fatal> {
        let total = self.ctx.settings.citation_rounds;
        if total == 0 {
            return Ok(());
        }
        let Some(search) = self.ctx.search else {
            self.report
                .warnings
                .push("no literature search configured: no citations were added".into());
            return Ok(());
        };
        let mut rounds = Rounds {
            total,
            used: 0,
            queued: Vec::new(),
            note: String::new(),
            finished: false,
        };
        while rounds.left() > 0 && !rounds.finished {
            // Each call in a fresh context: what was picked lives on in the .tex.
            let phase = self.conv.fresh_phase();
            let outcome = self.cite_call(&mut rounds, search).await;
            self.conv.end_phase(phase);
            outcome?;
        }
        Ok(())
    }

    fn cite_progress(&mut self, rounds: &Rounds) {
        let round = (rounds.used + 1).min(rounds.total);
        self.progress(
            &format!("Writing: citations, round {round}/{}", rounds.total),
            60 + (round - 1) * 15 / rounds.total,
        );
    }

    /// One call of the rounds: asks for queries when none are queued, searches up to
    /// [`QUERIES_PER_CALL`] of them, and has the model pick and cite from the results.
    async fn cite_call(&mut self, rounds: &mut Rounds, search: &dyn PaperSearch) -> Result<(), Fatal> {
        self.cite_progress(rounds);
        if rounds.queued.is_empty() {
            let mut prompt = fill(
                CITE_QUERY_PROMPT,
                &[
                    ("round", &(rounds.used + 1).to_string()),
                    ("rounds", &rounds.total.to_string()),
                    ("count", &rounds.per_call().to_string()),
                ],
            );
            if !rounds.note.is_empty() {
                prompt = format!("{}\n\n{prompt}", rounds.note);
            }
            let reply = self.ask(prompt).await?;
            if reply.contains(NO_MORE_CITATIONS) {
                rounds.finished = true;
                return Ok(());
            }
            rounds.queued = queries_in(&reply);
            if rounds.queued.is_empty() {
                // An unusable reply uses a round, so that a model that never sends a
                // query cannot keep the rounds going.
                rounds.used += 1;
                self.report.citation_rounds = rounds.used;
                rounds.note = fill(
                    CITE_NONE_PROMPT,
                    &[("reason", "Your reply held no JSON with \"Queries\".")],
                );
                return Ok(());
            }
        }
        let take = rounds.per_call().min(rounds.queued.len());
        let queries: Vec<String> = rounds.queued.drain(..take).collect();
        rounds.queued.clear();
        rounds.used += queries.len() as u32;
        self.report.citation_rounds = rounds.used;
        let papers = self.search_all(&queries, search).await?;
        if papers.is_empty() {
            let reason = if queries.len() == 1 {
                format!("The search for \"{}\" found nothing.", queries[0])
            } else {
                format!("{} found nothing.", searches_text(&queries))
            };
            rounds.note = fill(CITE_NONE_PROMPT, &[("reason", &reason)]);
            return Ok(());
        }
        rounds.note.clear();
        let src = self.read().await?.text;
        let facts = syntax::facts(&syntax::parse(&src), &src);
        let read_disk = |p: &Path| std::fs::read_to_string(p).ok();
        let existing = paper::bib_items(self.ctx.tex, &src, &facts, &read_disk);
        let cands = citations::candidates(&papers, &existing);
        let next = match rounds.per_call() {
            0 => String::new(),
            count => fill(
                CITE_NEXT_PROMPT,
                &[
                    ("count", &count.to_string()),
                    ("left", &rounds.left().to_string()),
                ],
            ),
        };
        let mut prompt = fill(
            CITE_RESULTS_PROMPT,
            &[
                ("searches", &searches_text(&queries)),
                ("results", &citations::describe(&cands)),
                ("next", &next),
            ],
        );
        let attempts = self.ctx.settings.max_attempts_per_section.max(1);
        for _ in 0..attempts {
            let reply = self.ask(prompt).await?;
            // The next queries count whatever happens to the edits (a repair reply
            // need not repeat them).
            let next = queries_in(&reply);
            if rounds.per_call() > 0 && !next.is_empty() {
                rounds.queued = next;
            }
            if reply.contains(NO_MORE_CITATIONS) {
                rounds.finished = true;
            }
            let picked: Vec<&Candidate> = json_extract::extract_all(&reply)
                .into_iter()
                .find_map(|v| v.get("Selected").and_then(|s| s.as_array()).cloned())
                .unwrap_or_default()
                .iter()
                .filter_map(|i| i.as_u64())
                .filter_map(|i| cands.get((i as usize).checked_sub(1)?))
                .collect();
            let mut keys: Vec<String> = Vec::new();
            let mut entries: Vec<String> = Vec::new();
            for c in &picked {
                if let Some(e) = &c.entry {
                    if !keys.contains(&c.key) {
                        keys.push(c.key.clone());
                        entries.push(e.clone());
                    }
                }
            }
            if picked.is_empty() && parse_reply(&reply).blocks.is_empty() {
                break;
            }
            let why = match self.apply(&reply, &entries, &keys).await? {
                Applied::Done(_) => {
                    self.report.citations_added.extend(keys);
                    break;
                }
                Applied::Failed(why) => why,
                Applied::NoBlocks(problems) => problems.join("\n"),
            };
            prompt = fill(EDIT_FAILED_PROMPT, &[("problems", &why)]);
        }
        Ok(())
    }

    /// The papers the queries found, each once (by engine id, else by title), in order.
    async fn search_all(
        &mut self,
        queries: &[String],
        search: &dyn PaperSearch,
    ) -> Result<Vec<Paper>, Fatal> {
        let limit = self.ctx.settings.results_per_query.max(1) as usize;
        let mut papers: Vec<Paper> = Vec::new();
        for query in queries {
            let found = tokio::select! {
                biased;
                _ = self.ctx.cancel.cancelled() => return Err(Fatal::Cancelled),
                r = search.search(query, limit, self.ctx.cancel) => r,
            };
            match found {
                Ok(r) => {
                    for p in r.papers {
                        let same = |q: &Paper| {
                            (!p.id.is_empty() && q.id == p.id) || q.title.eq_ignore_ascii_case(&p.title)
                        };
                        if !papers.iter().any(same) {
                            papers.push(p);
                        }
                    }
                }
                Err(LitError::Cancelled) => return Err(Fatal::Cancelled),
                Err(e) => self
                    .report
                    .warnings
                    .push(format!("citation search \"{query}\" failed: {e}")),
            }
        }
        Ok(papers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_come_from_either_field_once_each() {
        let reply = "```json\n{\"Selected\": [1], \"Queries\": [\"lazy training\", \" \", \"Lazy Training\", \"mup\"]}\n```";
        assert_eq!(queries_in(reply), ["lazy training", "mup"]);
        assert_eq!(queries_in("```json\n{\"Query\": \"width\"}\n```"), ["width"]);
        assert!(queries_in("```json\n{\"Selected\": []}\n```").is_empty());
        assert!(queries_in("no json at all").is_empty());
    }

    #[test]
    fn searches_are_named_in_a_sentence() {
        let q = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert_eq!(searches_text(&q(&["a"])), "The search for \"a\"");
        assert_eq!(
            searches_text(&q(&["a", "b", "c"])),
            "The searches for \"a\", \"b\" and \"c\""
        );
    }
}
