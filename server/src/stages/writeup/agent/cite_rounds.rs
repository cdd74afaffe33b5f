//! The citation rounds of the writing stage: the model proposes a query, the papers
//! found are listed with the key each would get, the model picks and cites them, and
//! aisci adds the picked entries to the bibliography in the same edit.

use std::path::Path;

use crate::agent::edits::parse_reply;
use crate::agent::json_extract;
use crate::agent::prompt::fill;
use crate::latex::{paper, syntax};
use crate::literature::PaperSearch;

use super::citations::{self, Candidate};
use crate::agent::conversation::Applied;

use super::{
    Fatal, Stage, CITE_NONE_PROMPT, CITE_QUERY_PROMPT, CITE_RESULTS_PROMPT, EDIT_FAILED_PROMPT,
    NO_MORE_CITATIONS,
};

impl Stage<'_> {
    /// The citation rounds: query → results with their keys → picks and `\cite` edits.
    pub(super) async fn cite(&mut self) -> Result<(), Fatal> {
        let rounds = self.ctx.settings.citation_rounds;
        if rounds == 0 {
            return Ok(());
        }
        let Some(search) = self.ctx.search else {
            self.report
                .warnings
                .push("no literature search configured: no citations were added".into());
            return Ok(());
        };
        let mut note = String::new();
        for round in 1..=rounds {
            // Each round in a fresh context: the system prompt, the current .tex (sent with
            // every turn) and the round's own query, listing and fixes; not the inputs, the
            // sections' history or earlier rounds, so a round costs the same at round 20 as
            // at round 1. What was picked lives on in the .tex.
            let phase = self.conv.fresh_phase();
            let outcome = self.cite_round(round, rounds, search, &mut note).await;
            self.conv.end_phase(phase);
            if !outcome? {
                break;
            }
        }
        Ok(())
    }

    /// One citation round; false when the model has no more citations to add.
    async fn cite_round(
        &mut self,
        round: u32,
        rounds: u32,
        search: &dyn PaperSearch,
        note: &mut String,
    ) -> Result<bool, Fatal> {
        {
            self.progress(
                &format!("Writing: citations, round {round}/{rounds}"),
                60 + (round - 1) * 15 / rounds,
            );
            self.report.citation_rounds = round;
            let mut prompt = fill(
                CITE_QUERY_PROMPT,
                &[("round", &round.to_string()), ("rounds", &rounds.to_string())],
            );
            if !note.is_empty() {
                prompt = format!("{note}\n\n{prompt}");
            }
            let reply = self.ask(prompt).await?;
            if reply.contains(NO_MORE_CITATIONS) {
                return Ok(false);
            }
            let query = json_extract::extract_all(&reply)
                .into_iter()
                .find_map(|v| v.get("Query").and_then(|q| q.as_str()).map(str::to_owned))
                .filter(|q| !q.trim().is_empty());
            let Some(query) = query else {
                *note = fill(
                    CITE_NONE_PROMPT,
                    &[("reason", "Your reply held no JSON with a \"Query\".")],
                );
                return Ok(true);
            };
            let limit = self.ctx.settings.results_per_query.max(1) as usize;
            let found = tokio::select! {
                biased;
                _ = self.ctx.cancel.cancelled() => return Err(Fatal::Cancelled),
                r = search.search(&query, limit, self.ctx.cancel) => r,
            };
            let papers = match found {
                Ok(r) => r.papers,
                Err(crate::literature::LitError::Cancelled) => return Err(Fatal::Cancelled),
                Err(e) => {
                    self.report
                        .warnings
                        .push(format!("citation search \"{query}\" failed: {e}"));
                    *note = fill(
                        CITE_NONE_PROMPT,
                        &[("reason", &format!("The search failed ({e})."))],
                    );
                    return Ok(true);
                }
            };
            if papers.is_empty() {
                *note = fill(
                    CITE_NONE_PROMPT,
                    &[("reason", &format!("The search for \"{query}\" found nothing."))],
                );
                return Ok(true);
            }
            note.clear();
            let src = self.read().await?.text;
            let facts = syntax::facts(&syntax::parse(&src), &src);
            let read_disk = |p: &Path| std::fs::read_to_string(p).ok();
            let existing = paper::bib_items(self.ctx.tex, &src, &facts, &read_disk);
            let cands = citations::candidates(&papers, &existing);
            let mut prompt = fill(
                CITE_RESULTS_PROMPT,
                &[("query", &query), ("results", &citations::describe(&cands))],
            );
            let attempts = self.ctx.settings.max_attempts_per_section.max(1);
            for _ in 0..attempts {
                let reply = self.ask(prompt).await?;
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
        }
        Ok(true)
    }
}
