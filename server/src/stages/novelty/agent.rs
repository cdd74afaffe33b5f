//! The novelty check: v1's search-and-decide conversation, with evidence kept.
//!
//! One conversation per idea, at most `max_rounds` rounds. Each round the model sees
//! the idea and the results of its previous query (numbered papers with abstracts)
//! and answers `THOUGHT:` + `RESPONSE:` + a ```json block: `{"Query": ...}` to
//! search, or a decision. v1's sentinels decide, matched case-insensitively
//! anywhere in the answer, "decision made: novel" first, then "decision made: not
//! novel"; no decision within the rounds counts as not novel, as in v1.
//!
//! Beyond v1:
//! - A decision carries `{"Reason": "...", "Closest": [paper numbers]}` in its JSON
//!   block; a `REASON:` line is accepted too, and failing both the thought's last
//!   line is used. Papers are numbered once per idea (the same paper found again
//!   keeps its number), so the model can name any paper it has seen.
//! - Closest papers: those the model names (numbers, or titles it quotes); when it
//!   names none, the top results of the last search that found any, because the
//!   decision was made right after reading them. At most `evidence_papers`.
//! - An answer with neither a decision nor a query gets one repair prompt; if that
//!   fails too the round is consumed. One idea costs at most `2 * max_rounds` calls.
//! - The last round's prompt asks for a decision, so rounds are not spent on a
//!   query whose results nobody would read (and such a query is not sent).
//! - A failed search is reported to the model and the check goes on. When every
//!   engine is down (`LitError::AllFailed`, unless each engine merely rejected the
//!   query) the idea is left unchecked: it gets no `novel` key rather than a false
//!   "not novel".
//! - After each idea, `ideas.json` is re-read and only that idea is updated (by
//!   Name), atomically: `novel` plus the evidence under `"novelty"`.

use crate::agent::prompt::fill;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::agent::conversation::Conversation;
use crate::config::{LlmSettings, NoveltySettings};
use crate::jobs::Progress;
use crate::literature::{LitError, Paper, PaperSearch, SearchResult};
use crate::llm::{CallTag, Llm, LlmError};
use crate::project::{
    entry_name, read_ideas_archive, record_novelty, ArchiveError, EvidencePaper, NoveltyEvidence, PromptJson,
    NOVELTY_KEY,
};

use crate::agent::json_extract::extract_after_marker;

const SYSTEM_PROMPT: &str = include_str!("prompts/system.txt");
const ROUND_PROMPT: &str = include_str!("prompts/round.txt");
const REPAIR_PROMPT: &str = include_str!("prompts/repair.txt");

/// v1's decision sentinels (matched lowercase, as substrings).
pub const NOVEL_SENTINEL: &str = "decision made: novel";
pub const NOT_NOVEL_SENTINEL: &str = "decision made: not novel";

/// The marker before the query JSON in the protocol.
const RESPONSE_MARKER: &str = "RESPONSE:";

/// Abstracts longer than this are cut: ten of them per round, for up to ten rounds,
/// share one conversation.
const MAX_ABSTRACT_CHARS: usize = 2000;
/// Author lists longer than this end in "et al.".
const MAX_AUTHORS: usize = 8;

/// What the check reads besides the idea. The code is text so that the editor's
/// unsaved buffer can be used.
#[derive(Debug, Clone, Copy)]
pub struct NoveltyInputs<'a> {
    pub prompt: &'a PromptJson,
    pub experiment_py: &'a str,
}

#[derive(Debug, Clone, PartialEq)]
pub struct NoveltyOptions {
    /// Rounds per idea (v1: 10). 0 is treated as 1.
    pub max_rounds: u32,
    /// Papers asked for per query and shown to the model (v1: 10).
    pub results_per_query: u32,
    /// Closest papers kept as evidence.
    pub evidence_papers: u32,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
}

impl NoveltyOptions {
    pub fn from_settings(novelty: &NoveltySettings, llm: &LlmSettings) -> Self {
        Self {
            max_rounds: novelty.max_rounds,
            results_per_query: novelty.results_per_query,
            evidence_papers: novelty.evidence_papers,
            temperature: Some(llm.temperature),
            max_tokens: llm.max_tokens,
        }
    }
}

/// The outcome of checking one idea.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// Some(true|false): checked. None: not checked (every engine down); `reason`
    /// says why and nothing is written for the idea.
    pub novel: Option<bool>,
    /// The model said so itself; false for "no decision within the rounds" (which
    /// counts as not novel) and for unchecked ideas.
    pub decided: bool,
    pub reason: String,
    pub queries: Vec<String>,
    /// Closest first; at most `evidence_papers`.
    pub closest: Vec<EvidencePaper>,
    /// Rounds used (model turns, not counting repairs).
    pub rounds: u32,
    /// Distinct papers shown to the model.
    pub papers_seen: u32,
    /// Model calls, repairs included.
    pub calls: u32,
}

impl Verdict {
    /// The evidence to store, stamped with `checked` (RFC 3339).
    pub fn evidence(&self, checked: String) -> NoveltyEvidence {
        NoveltyEvidence {
            queries: self.queries.clone(),
            closest: self.closest.clone(),
            reason: self.reason.clone(),
            checked,
            rounds: self.rounds,
            papers_seen: self.papers_seen,
            decided: self.decided,
        }
    }
}

/// One idea's result in an archive run.
#[derive(Debug, Clone, PartialEq)]
pub struct IdeaVerdict {
    pub name: String,
    pub verdict: Verdict,
    /// Whether ideas.json was updated (false for unchecked ideas, and for ideas
    /// removed from the file while they were being checked).
    pub written: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct NoveltyReport {
    /// In the order checked, unchecked ones included (`verdict.novel == None`).
    pub results: Vec<IdeaVerdict>,
    /// Ideas passed over because they already have `novel` (and `force` was off).
    pub skipped: Vec<String>,
    /// Names in `only` that are not in the archive.
    pub unknown: Vec<String>,
    pub calls: u32,
    /// True when the run stopped on the cancellation token; verdicts finished before
    /// it are in `results` and on disk.
    pub cancelled: bool,
    pub ideas_path: PathBuf,
}

impl NoveltyReport {
    /// Names of the ideas judged novel.
    pub fn novel(&self) -> Vec<&str> {
        self.results
            .iter()
            .filter(|r| r.verdict.novel == Some(true))
            .map(|r| r.name.as_str())
            .collect()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum NoveltyError {
    #[error("{}: the idea archive cannot be read ({message})", path.display())]
    Archive { path: PathBuf, message: String },
    #[error("{} does not exist: there are no ideas to check yet; generate some first (`aisci ideas --template <dir>`, or the \"Generate ideas\" code action in experiment.py)", .0.display())]
    NoIdeas(PathBuf),
    /// Updating ideas.json failed; verdicts written before are in `report`.
    #[error("{source}; {} verdict(s) were saved before this", report.results.iter().filter(|r| r.written).count())]
    Update {
        source: ArchiveError,
        report: Box<NoveltyReport>,
    },
    /// A model call failed for good; verdicts finished before it are in `report` and
    /// on disk.
    #[error("the novelty check stopped after {} idea(s): {source}", report.results.len())]
    Llm {
        source: LlmError,
        report: Box<NoveltyReport>,
    },
}

/// Check the ideas of `ideas_path` and record each verdict as soon as it is known.
///
/// `only`: the Names to check (None: every idea). Ideas that already have `novel`
/// are skipped unless `force`. Progress: "Novelty i/n: name, round r/N".
#[allow(clippy::too_many_arguments)] // the stage's inputs, each distinct; a struct would only rename them
pub async fn check_archive(
    llm: &Llm,
    search: &dyn PaperSearch,
    inputs: NoveltyInputs<'_>,
    ideas_path: &Path,
    opts: &NoveltyOptions,
    only: Option<&[String]>,
    force: bool,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<NoveltyReport, NoveltyError> {
    if !ideas_path.exists() {
        return Err(NoveltyError::NoIdeas(ideas_path.to_path_buf()));
    }
    let entries = read_ideas_archive(ideas_path).map_err(|e| NoveltyError::Archive {
        path: ideas_path.to_path_buf(),
        message: match e {
            ArchiveError::Unreadable { message, .. } => message,
            other => other.to_string(),
        },
    })?;
    let mut report = NoveltyReport {
        ideas_path: ideas_path.to_path_buf(),
        ..Default::default()
    };
    if let Some(names) = only {
        report.unknown = names
            .iter()
            .filter(|n| !entries.iter().any(|e| entry_name(e) == Some(n.as_str())))
            .cloned()
            .collect();
    }

    let mut todo: Vec<(String, Value)> = Vec::new();
    for entry in &entries {
        let Some(name) = entry_name(entry) else {
            continue; // cannot be updated by Name; the diagnostics flag it
        };
        if only.is_some_and(|names| !names.iter().any(|n| n == name)) || todo.iter().any(|(n, _)| n == name) {
            continue;
        }
        if entry.get("novel").is_some() && !force {
            report.skipped.push(name.to_string());
            continue;
        }
        todo.push((name.to_string(), entry.clone()));
    }

    let n = todo.len() as u32;
    for (i, (name, entry)) in todo.iter().enumerate() {
        if cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        let i = i as u32 + 1;
        let percent = Some((i - 1) * 100 / n.max(1));
        let mut on_round = |round: u32, rounds: u32| {
            progress.report(
                &format!("Novelty {i}/{n}: {name}, round {round}/{rounds}"),
                percent,
            )
        };
        let mut check = Check::new(llm, search, opts, name, &inputs, cancel);
        let outcome = check.run(entry, &mut on_round).await;
        report.calls += check.conv.calls();
        let verdict = match outcome {
            Ok(v) => v,
            Err(LlmError::Cancelled) => {
                report.cancelled = true;
                break;
            }
            Err(source) => {
                return Err(NoveltyError::Llm {
                    source,
                    report: Box::new(report),
                })
            }
        };
        let written = match verdict.novel {
            Some(novel) => match record_novelty(ideas_path, name, novel, &verdict.evidence(now_rfc3339())) {
                Ok(w) => w,
                Err(source) => {
                    return Err(NoveltyError::Update {
                        source,
                        report: Box::new(report),
                    })
                }
            },
            None => false,
        };
        report.results.push(IdeaVerdict {
            name: name.clone(),
            verdict,
            written,
        });
    }

    let decided: Vec<_> = report
        .results
        .iter()
        .filter(|r| r.verdict.novel.is_some())
        .collect();
    progress.report(
        &format!(
            "Novelty: {} novel, {} not novel, {} not checked, {} skipped, {} model call(s)",
            decided.iter().filter(|r| r.verdict.novel == Some(true)).count(),
            decided.iter().filter(|r| r.verdict.novel == Some(false)).count(),
            report.results.len() - decided.len(),
            report.skipped.len(),
            report.calls
        ),
        Some(100),
    );
    Ok(report)
}

/// Check one idea (an archive entry) without touching any file. Cancellation is
/// `Err(LlmError::Cancelled)`.
pub async fn check_idea(
    llm: &Llm,
    search: &dyn PaperSearch,
    inputs: NoveltyInputs<'_>,
    idea: &Value,
    opts: &NoveltyOptions,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<Verdict, LlmError> {
    let name = entry_name(idea).unwrap_or("idea").to_string();
    let mut on_round =
        |round: u32, rounds: u32| progress.report(&format!("Novelty: {name}, round {round}/{rounds}"), None);
    Check::new(llm, search, opts, &name, &inputs, cancel)
        .run(idea, &mut on_round)
        .await
}

fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true)
}

/// What one answer amounts to.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Decision {
        novel: bool,
        reason: Option<String>,
        closest: Vec<Value>,
    },
    Query(String),
    /// Neither; the text says what is missing, for the repair prompt.
    Unusable(String),
}

/// Read an answer: sentinels first (v1), then the query JSON.
fn parse_answer(text: &str) -> Answer {
    let lower = text.to_lowercase();
    let novel = if lower.contains(NOVEL_SENTINEL) {
        Some(true)
    } else if lower.contains(NOT_NOVEL_SENTINEL) {
        Some(false)
    } else {
        None
    };
    let json = extract_after_marker(text, RESPONSE_MARKER);
    let field = |key: &str| -> Option<&Value> {
        json.as_ref()?
            .as_object()?
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(key))
            .map(|(_, v)| v)
    };
    if let Some(novel) = novel {
        let reason = field("Reason")
            .and_then(Value::as_str)
            .map(one_line)
            .filter(|r| !r.is_empty())
            .or_else(|| reason_line(text))
            .or_else(|| thought_tail(text));
        let closest = match field("Closest") {
            Some(Value::Array(items)) => items.clone(),
            Some(v @ (Value::Number(_) | Value::String(_))) => vec![v.clone()],
            _ => Vec::new(),
        };
        return Answer::Decision {
            novel,
            reason,
            closest,
        };
    }
    match field("Query") {
        Some(Value::String(q)) if !q.trim().is_empty() => Answer::Query(one_line(q)),
        Some(_) => Answer::Unusable(
            "the JSON block has no search terms in \"Query\" and there is no decision".into(),
        ),
        None if json.is_some() => {
            Answer::Unusable("the JSON block has no \"Query\" field and there is no decision".into())
        }
        None => Answer::Unusable("it has no JSON block with a query and no decision".into()),
    }
}

/// A `REASON: ...` line, anywhere in the answer.
fn reason_line(text: &str) -> Option<String> {
    text.lines().find_map(|l| {
        let l = l.trim().trim_start_matches(['*', '-', ' ']);
        let head = l.get(..7)?;
        head.eq_ignore_ascii_case("reason:")
            .then(|| one_line(&l[7..]))
            .filter(|r| !r.is_empty())
    })
}

/// The last line of the thought that is not the sentinel: models usually state
/// their reason right before deciding.
fn thought_tail(text: &str) -> Option<String> {
    let thought = text.split(RESPONSE_MARKER).next().unwrap_or(text);
    thought
        .lines()
        .map(str::trim)
        .rfind(|l| {
            !l.is_empty()
                && !l.to_lowercase().contains("decision made:")
                && !l.eq_ignore_ascii_case("THOUGHT:")
        })
        .map(|l| one_line(l.trim_start_matches("THOUGHT:")))
        .filter(|l| !l.is_empty())
}

/// Whitespace collapsed to single spaces, cut at 500 characters.
fn one_line(s: &str) -> String {
    let joined = s.split_whitespace().collect::<Vec<_>>().join(" ");
    cut(&joined, 500)
}

fn cut(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        Some((at, _)) => format!("{}…", &s[..at]),
        None => s.to_string(),
    }
}

/// The papers shown in one idea's conversation, numbered from 1 in order of first
/// appearance.
#[derive(Default)]
struct Seen {
    papers: Vec<Paper>,
    index: HashMap<String, usize>,
}

impl Seen {
    /// The number of `p`, adding it if new. The same work found by another engine
    /// (after a fallback) is recognised by DOI or arXiv id.
    fn number(&mut self, p: &Paper) -> usize {
        let keys = paper_keys(p);
        if let Some(&i) = keys.iter().find_map(|k| self.index.get(k)) {
            return i + 1;
        }
        let i = self.papers.len();
        self.papers.push(p.clone());
        for k in keys {
            self.index.insert(k, i);
        }
        i + 1
    }

    fn get(&self, number: usize) -> Option<&Paper> {
        number.checked_sub(1).and_then(|i| self.papers.get(i))
    }

    fn by_title(&self, title: &str) -> Option<&Paper> {
        let want = norm_title(title);
        (!want.is_empty())
            .then(|| self.papers.iter().find(|p| norm_title(&p.title) == want))
            .flatten()
    }
}

fn paper_keys(p: &Paper) -> Vec<String> {
    let mut keys = vec![format!("{}:{}", p.engine, p.id)];
    if let Some(doi) = p.doi.as_deref().filter(|d| !d.is_empty()) {
        keys.push(format!("doi:{}", doi.to_lowercase()));
    }
    if let Some(ax) = p.arxiv_id.as_deref().filter(|a| !a.is_empty()) {
        // Versions are the same work.
        let base = ax
            .rsplit_once('v')
            .filter(|(_, v)| v.chars().all(|c| c.is_ascii_digit()));
        keys.push(format!("arxiv:{}", base.map_or(ax, |(b, _)| b)));
    }
    keys
}

fn norm_title(t: &str) -> String {
    t.chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

fn evidence_paper(p: &Paper) -> EvidencePaper {
    EvidencePaper {
        id: p.id.clone(),
        title: p.title.clone(),
        year: p.year,
        url: p.url.clone(),
        engine: p.engine.as_str().to_string(),
    }
}

/// One paper as the model sees it.
fn format_paper(number: usize, p: &Paper) -> String {
    let authors = match p.authors.len() {
        0 => "Authors unknown".to_string(),
        n if n > MAX_AUTHORS => format!("{} et al.", p.authors[..MAX_AUTHORS].join(", ")),
        _ => p.authors.join(", "),
    };
    let venue = p
        .venue
        .as_deref()
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .unwrap_or("Venue unknown");
    let year = p.year.map_or("year unknown".to_string(), |y| y.to_string());
    let cites = p.citation_count.map_or("unknown".to_string(), |c| c.to_string());
    let abstract_text = p
        .abstract_text
        .as_deref()
        .map(str::trim)
        .filter(|a| !a.is_empty())
        .map_or("(no abstract)".to_string(), |a| cut(a, MAX_ABSTRACT_CHARS));
    format!(
        "[{number}] {}. {}. {venue}, {year}.\nCitations: {cites}\nAbstract: {abstract_text}",
        p.title.trim().trim_end_matches('.'),
        authors.trim_end_matches('.')
    )
}

/// How the previous round's search went, for the next prompt.
enum LastSearch {
    None,
    /// The model sent no usable query.
    NoQuery,
    Results {
        query: String,
        numbered: Vec<(usize, Paper)>,
    },
    Failed {
        query: String,
        error: String,
    },
}

impl LastSearch {
    fn render(&self) -> String {
        match self {
            LastSearch::None => "You have not searched yet.".into(),
            LastSearch::NoQuery => "Your previous answer held no search query, so nothing was searched.".into(),
            LastSearch::Results { query, numbered } if numbered.is_empty() => {
                format!("Results for your query \"{query}\":\nNo papers found.")
            }
            LastSearch::Results { query, numbered } => {
                let papers = numbered
                    .iter()
                    .map(|(n, p)| format_paper(*n, p))
                    .collect::<Vec<_>>()
                    .join("\n\n");
                format!("Results for your query \"{query}\":\n\n{papers}")
            }
            LastSearch::Failed { query, error } => format!(
                "The search for \"{query}\" failed: {error}\nThat round is used up. You may send the query again, rephrase it, or decide on what you have seen."
            ),
        }
    }
}

/// Whether an `AllFailed` means the engines are down rather than that this query
/// was refused by each of them.
fn engines_down(e: &LitError) -> bool {
    match e {
        LitError::AllFailed(errs) => {
            errs.is_empty()
                || !errs
                    .iter()
                    .all(|e| matches!(e, LitError::BadRequest { .. } | LitError::Malformed { .. }))
        }
        _ => false,
    }
}

/// What one idea's check has gathered so far.
#[derive(Default)]
struct State {
    seen: Seen,
    queries: Vec<String>,
    /// Numbers of the top results of the latest search that found any.
    last_found: Vec<usize>,
}

impl State {
    /// The verdict; `named` are the papers the model called closest. When it named
    /// none, the last search's top results stand in: the model decided right after
    /// reading them. Unchecked ideas get no evidence papers.
    fn verdict(
        self,
        novel: Option<bool>,
        decided: bool,
        reason: String,
        named: Vec<EvidencePaper>,
        rounds: u32,
        check: &Check<'_>,
    ) -> Verdict {
        let mut closest = named;
        if closest.is_empty() && novel.is_some() {
            closest = self
                .last_found
                .iter()
                .filter_map(|&n| self.seen.get(n))
                .map(evidence_paper)
                .collect();
        }
        closest.truncate(check.opts.evidence_papers as usize);
        Verdict {
            novel,
            decided,
            reason,
            queries: self.queries,
            closest,
            rounds,
            papers_seen: self.seen.papers.len() as u32,
            calls: check.conv.calls(),
        }
    }
}

/// One idea's conversation.
struct Check<'a> {
    conv: Conversation<'a>,
    search: &'a dyn PaperSearch,
    opts: &'a NoveltyOptions,
    cancel: &'a CancellationToken,
}

impl<'a> Check<'a> {
    fn new(
        llm: &'a Llm,
        search: &'a dyn PaperSearch,
        opts: &'a NoveltyOptions,
        name: &str,
        inputs: &NoveltyInputs<'_>,
        cancel: &'a CancellationToken,
    ) -> Self {
        let system = fill(
            SYSTEM_PROMPT,
            &[
                ("results_per_query", &opts.results_per_query.to_string()),
                ("num_rounds", &opts.max_rounds.max(1).to_string()),
                ("task_description", &inputs.prompt.task_description),
                ("code", inputs.experiment_py),
            ],
        );
        Self {
            conv: Conversation::new(
                llm,
                cancel,
                CallTag::new("novelty", Some(name)),
                system,
                opts.temperature,
                opts.max_tokens,
            ),
            search,
            opts,
            cancel,
        }
    }

    async fn run(
        &mut self,
        entry: &Value,
        on_round: &mut (dyn FnMut(u32, u32) + Send),
    ) -> Result<Verdict, LlmError> {
        let rounds = self.opts.max_rounds.max(1);
        let idea_text = idea_for_prompt(entry);
        let mut st = State::default();
        let mut last = LastSearch::None;

        for round in 1..=rounds {
            on_round(round, rounds);
            let last_round = if round == rounds {
                " This is the last round: decide now, on the evidence you have."
            } else {
                ""
            };
            let prompt = fill(
                ROUND_PROMPT,
                &[
                    ("round", &round.to_string()),
                    ("num_rounds", &rounds.to_string()),
                    ("last_round", last_round),
                    ("idea", &idea_text),
                    ("results", &last.render()),
                ],
            );
            // One repair prompt for an answer with neither a decision nor a query.
            let usable = |text: &str| match parse_answer(text) {
                Answer::Unusable(problem) => Err(problem),
                answer => Ok(answer),
            };
            let repair = |problem: &String| fill(REPAIR_PROMPT, &[("problem", problem)]);
            let answer = self
                .conv
                .ask_until(prompt, 2, usable, repair)
                .await?
                .unwrap_or_else(Answer::Unusable);
            match answer {
                Answer::Decision {
                    novel,
                    reason,
                    closest,
                } => {
                    let named = resolve_closest(&closest, &st.seen);
                    let reason = reason.unwrap_or_else(|| "the model gave no reason".into());
                    return Ok(st.verdict(Some(novel), true, reason, named, round, self));
                }
                Answer::Unusable(_) => last = LastSearch::NoQuery,
                // Its results would never be read.
                Answer::Query(_) if round == rounds => {}
                Answer::Query(query) => {
                    st.queries.push(query.clone());
                    last = match self.run_search(&query).await? {
                        Ok(result) => {
                            let numbered: Vec<(usize, Paper)> = result
                                .papers
                                .into_iter()
                                .take(self.opts.results_per_query as usize)
                                .map(|p| (st.seen.number(&p), p))
                                .collect();
                            if !numbered.is_empty() {
                                st.last_found = numbered.iter().map(|(n, _)| *n).collect();
                            }
                            LastSearch::Results { query, numbered }
                        }
                        Err(e) if engines_down(&e) => {
                            let reason = format!("not checked: the literature search is unavailable ({e})");
                            return Ok(st.verdict(None, false, reason, Vec::new(), round, self));
                        }
                        Err(e) => LastSearch::Failed {
                            query,
                            error: e.to_string(),
                        },
                    };
                }
            }
        }
        let reason = format!("no decision within {rounds} round(s); counted as not novel, as in v1");
        Ok(st.verdict(Some(false), false, reason, Vec::new(), rounds, self))
    }

    /// Outer Err: cancelled. Inner: the search's own failure.
    async fn run_search(&self, query: &str) -> Result<Result<SearchResult, LitError>, LlmError> {
        let limit = self.opts.results_per_query as usize;
        let r = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(LlmError::Cancelled),
            r = self.search.search(query, limit, self.cancel) => r,
        };
        match r {
            Err(LitError::Cancelled) => Err(LlmError::Cancelled),
            other => Ok(other),
        }
    }
}

/// The papers the model named: numbers (`3`, `"[3]"`, `"P3"`) or quoted titles.
/// Unknown references are ignored; duplicates collapse.
fn resolve_closest(refs: &[Value], seen: &Seen) -> Vec<EvidencePaper> {
    let mut out: Vec<EvidencePaper> = Vec::new();
    for r in refs {
        let paper = match r {
            Value::Number(n) => n.as_u64().and_then(|n| seen.get(n as usize)),
            Value::String(s) => {
                let digits = s.trim().trim_matches(['[', ']', '#', 'P', 'p', ' ']);
                match digits.parse::<usize>() {
                    Ok(n) => seen.get(n),
                    Err(_) => seen.by_title(s),
                }
            }
            Value::Object(o) => o
                .iter()
                .find(|(k, _)| k.eq_ignore_ascii_case("title"))
                .and_then(|(_, v)| v.as_str())
                .and_then(|t| seen.by_title(t)),
            _ => None,
        };
        if let Some(p) = paper {
            let e = evidence_paper(p);
            if !out.contains(&e) {
                out.push(e);
            }
        }
    }
    out
}

/// The idea as the model sees it: the entry without the verdict and evidence of an
/// earlier check, which would only bias a recheck.
fn idea_for_prompt(entry: &Value) -> String {
    let shown: Map<String, Value> = entry
        .as_object()
        .map(|o| {
            o.iter()
                .filter(|(k, _)| k.as_str() != "novel" && k.as_str() != NOVELTY_KEY)
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    serde_json::to_string_pretty(&shown).expect("JSON values serialise")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::literature::Engine;
    use serde_json::json;

    fn paper(id: &str, title: &str) -> Paper {
        Paper {
            authors: vec!["A. Author".into()],
            year: Some(2020),
            ..Paper::new(Engine::SemanticScholar, id, title)
        }
    }

    #[test]
    fn sentinels_decide_as_in_v1() {
        let a =
            parse_answer("THOUGHT: x\nDECISION MADE: NOVEL.\nRESPONSE:\n```json\n{\"Query\": \"q\"}\n```");
        assert!(matches!(a, Answer::Decision { novel: true, .. }));
        let a = parse_answer("Decision made: not novel.");
        assert!(matches!(a, Answer::Decision { novel: false, .. }));
        // "novel" is checked first, whatever the order in the text.
        let a = parse_answer("Decision made: not novel. ... Decision made: novel.");
        assert!(matches!(a, Answer::Decision { novel: true, .. }));
    }

    #[test]
    fn reason_from_json_then_line_then_thought() {
        let a = parse_answer(
            "THOUGHT: hm\nDecision made: not novel.\nRESPONSE:\n```json\n{\"reason\": \"Same as [2].\", \"Closest\": [2, \"P1\"]}\n```",
        );
        assert_eq!(
            a,
            Answer::Decision {
                novel: false,
                reason: Some("Same as [2].".into()),
                closest: vec![json!(2), json!("P1")]
            }
        );
        let a = parse_answer("THOUGHT: x\nREASON: nothing  close.\nDecision made: novel.");
        assert!(matches!(a, Answer::Decision { reason: Some(ref r), .. } if r == "nothing close."));
        let a = parse_answer(
            "THOUGHT:\nPaper 3 does exactly this.\nDecision made: not novel.\n\nRESPONSE:\n```json\n{}\n```",
        );
        assert!(
            matches!(a, Answer::Decision { reason: Some(ref r), .. } if r == "Paper 3 does exactly this.")
        );
    }

    #[test]
    fn queries_and_unusable_answers() {
        let a = parse_answer(
            "THOUGHT: {a set}\nRESPONSE:\n```json\n{\"Query\": \"grokking\n weight decay\"}\n```",
        );
        assert_eq!(a, Answer::Query("grokking weight decay".into()));
        assert!(matches!(parse_answer("I think so."), Answer::Unusable(_)));
        assert!(matches!(
            parse_answer("```json\n{\"Query\": \"  \"}\n```"),
            Answer::Unusable(_)
        ));
        assert!(matches!(
            parse_answer("```json\n{\"q\": 1}\n```"),
            Answer::Unusable(_)
        ));
    }

    #[test]
    fn papers_keep_their_number_and_resolve() {
        let mut seen = Seen::default();
        let mut a = paper("s2a", "Grokking: Generalization Beyond Overfitting");
        a.doi = Some("10.1/X".into());
        assert_eq!(seen.number(&a), 1);
        assert_eq!(seen.number(&paper("s2b", "Other")), 2);
        let mut again = paper("W1", "Grokking");
        again.engine = Engine::OpenAlex;
        again.doi = Some("10.1/x".into());
        assert_eq!(seen.number(&again), 1, "same DOI, other engine");
        let got = resolve_closest(
            &[
                json!("[2]"),
                json!(9),
                json!("grokking: generalization beyond overfitting."),
                json!(2),
            ],
            &seen,
        );
        let ids: Vec<_> = got.iter().map(|p| p.id.as_str()).collect();
        assert_eq!(ids, ["s2b", "s2a"]);
    }

    #[test]
    fn paper_format_has_every_field() {
        let mut p = paper("x", "A Title.");
        p.venue = Some("NeurIPS".into());
        p.citation_count = Some(42);
        assert_eq!(
            format_paper(3, &p),
            "[3] A Title. A. Author. NeurIPS, 2020.\nCitations: 42\nAbstract: (no abstract)"
        );
    }

    #[test]
    fn all_failed_counts_as_down_unless_every_engine_refused_the_query() {
        let bad = |e| LitError::BadRequest {
            engine: e,
            message: "bad".into(),
        };
        assert!(!engines_down(&LitError::AllFailed(vec![bad(Engine::Arxiv)])));
        assert!(engines_down(&LitError::AllFailed(vec![
            bad(Engine::Arxiv),
            LitError::Unavailable {
                engine: Engine::OpenAlex,
                message: "503".into()
            }
        ])));
        assert!(!engines_down(&LitError::Unavailable {
            engine: Engine::OpenAlex,
            message: "503".into()
        }));
    }

    #[test]
    fn prompts_keep_the_protocol() {
        assert!(ROUND_PROMPT.starts_with("Round {round}/{num_rounds}."));
        for p in [ROUND_PROMPT, REPAIR_PROMPT] {
            assert!(p.contains("THOUGHT:") && p.contains("RESPONSE:") && p.contains("```json"));
            assert!(p.contains("\"Decision made: novel.\"") && p.contains("\"Decision made: not novel.\""));
            assert!(p.contains("{\"Query\": "));
        }
        for key in [
            "{num_rounds}",
            "{results_per_query}",
            "{task_description}",
            "{code}",
        ] {
            assert!(SYSTEM_PROMPT.contains(key), "{key}");
        }
    }
}
