//! The novelty check against a scripted model and a scripted literature search:
//! queued answers and results, every request and query recorded. Hermetic.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use aisci::jobs::{NoProgress, Progress};
use aisci::literature::{Engine, LitError, Paper, PaperSearch, SearchResult};
use aisci::llm::{ChatRequest, ChatResponse, Llm, LlmError, Provider, Role, Usage};
use aisci::project::{ideas_to_json, Idea, NoveltyEvidence, PromptJson};
use aisci::stages::novelty::agent::{
    check_archive, NoveltyError, NoveltyInputs, NoveltyOptions, NoveltyReport,
};
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

use crate::support::fs::fixtures;

type Hook = Box<dyn FnOnce() + Send>;

/// Serves queued answers in order and records every request. `hooks` run when the
/// n-th call (1-based) arrives; `cancel_on` cancels the token at the n-th call and
/// then behaves like a request in flight.
#[derive(Default)]
struct Model {
    answers: Mutex<VecDeque<String>>,
    requests: Mutex<Vec<ChatRequest>>,
    hooks: Mutex<Vec<(usize, Hook)>>,
    cancel_on: Option<(usize, CancellationToken)>,
}

impl Model {
    fn new(answers: &[String]) -> Self {
        Self {
            answers: Mutex::new(answers.iter().cloned().collect()),
            ..Default::default()
        }
    }
    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }
    /// The user message of the n-th call (1-based).
    fn prompt(&self, n: usize) -> String {
        self.requests()[n - 1].messages.last().unwrap().content.clone()
    }
}

#[async_trait]
impl Provider for Model {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "scripted-model"
    }
    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        let n = {
            let mut r = self.requests.lock().unwrap();
            r.push(req.clone());
            r.len()
        };
        let hook = {
            let mut hooks = self.hooks.lock().unwrap();
            hooks
                .iter()
                .position(|(at, _)| *at == n)
                .map(|i| hooks.remove(i).1)
        };
        if let Some(hook) = hook {
            hook();
        }
        if let Some((at, token)) = &self.cancel_on {
            if *at == n {
                token.cancel();
                cancel.cancelled().await;
                return Err(LlmError::Cancelled);
            }
        }
        let text = self
            .answers
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| LlmError::Replay("script exhausted".into()))?;
        Ok(ChatResponse {
            text,
            usage: Usage::default(),
            model: "scripted-model".into(),
            finish_reason: Some("stop".into()),
        })
    }
}

/// Serves queued search outcomes in order and records the queries and limits.
#[derive(Default)]
struct Search {
    outcomes: Mutex<VecDeque<Result<Vec<Paper>, LitError>>>,
    queries: Mutex<Vec<(String, usize)>>,
    /// Cancel this token when the n-th search arrives, then wait like a slow engine.
    cancel_on: Option<(usize, CancellationToken)>,
}

impl Search {
    fn new(outcomes: Vec<Result<Vec<Paper>, LitError>>) -> Self {
        Self {
            outcomes: Mutex::new(outcomes.into()),
            ..Default::default()
        }
    }
    fn queries(&self) -> Vec<String> {
        self.queries.lock().unwrap().iter().map(|q| q.0.clone()).collect()
    }
}

#[async_trait]
impl PaperSearch for Search {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<SearchResult, LitError> {
        let n = {
            let mut q = self.queries.lock().unwrap();
            q.push((query.to_string(), limit));
            q.len()
        };
        if let Some((at, token)) = &self.cancel_on {
            if *at == n {
                token.cancel();
                cancel.cancelled().await;
                return Err(LitError::Cancelled);
            }
        }
        let next = self
            .outcomes
            .lock()
            .unwrap()
            .pop_front()
            .expect("search script exhausted");
        next.map(|papers| SearchResult {
            papers,
            engine: Engine::SemanticScholar,
            from_cache: false,
        })
    }
}

fn paper(id: &str, title: &str, abstract_text: Option<&str>, cites: u64) -> Paper {
    Paper {
        engine: Engine::SemanticScholar,
        id: id.into(),
        title: title.into(),
        authors: vec!["Ada Lovelace".into(), "Alan Turing".into()],
        venue: Some("ICLR".into()),
        year: Some(2022),
        abstract_text: abstract_text.map(str::to_owned),
        citation_count: Some(cites),
        doi: None,
        arxiv_id: None,
        url: Some(format!("https://example.org/{id}")),
        bibtex: None,
    }
}

fn query(q: &str) -> String {
    format!("THOUGHT:\nI should look for prior work.\n\nRESPONSE:\n```json\n{{\"Query\": \"{q}\"}}\n```")
}

fn decide(verdict: &str, reason: &str, closest: &[u32]) -> String {
    format!(
        "THOUGHT:\nI have seen enough.\nDecision made: {verdict}.\n\nRESPONSE:\n```json\n{}\n```",
        json!({"Reason": reason, "Closest": closest})
    )
}

fn idea(name: &str) -> Value {
    json!({"Name": name, "Title": format!("Title of {name}"), "Experiment": "Change the code.",
           "Interestingness": 6, "Feasibility": 7, "Novelty": 5})
}

fn write_archive(dir: &Path, entries: &[Value]) -> PathBuf {
    let p = dir.join("ideas.json");
    std::fs::write(&p, ideas_to_json(entries)).unwrap();
    p
}

fn read(path: &Path) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn opts(max_rounds: u32) -> NoveltyOptions {
    NoveltyOptions {
        max_rounds,
        results_per_query: 10,
        evidence_papers: 5,
        temperature: Some(0.75),
        max_tokens: 4096,
    }
}

fn prompt_json() -> PromptJson {
    serde_json::from_value(json!({"system": "unused here",
        "task_description": "Study grokking on modular arithmetic."}))
    .unwrap()
}

const CODE: &str = "def train():  # {not a placeholder}\n    pass\n";

#[allow(clippy::too_many_arguments)]
async fn run(
    model: Arc<Model>,
    search: &Search,
    path: &Path,
    o: &NoveltyOptions,
    only: Option<&[String]>,
    force: bool,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<NoveltyReport, NoveltyError> {
    let llm = Llm::new(model);
    let p = prompt_json();
    let inputs = NoveltyInputs {
        prompt: &p,
        experiment_py: CODE,
    };
    check_archive(&llm, search, inputs, path, o, only, force, progress, cancel).await
}

async fn run_simple(model: Arc<Model>, search: &Search, path: &Path, o: &NoveltyOptions) -> NoveltyReport {
    run(
        model,
        search,
        path,
        o,
        None,
        false,
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .unwrap()
}

#[tokio::test]
async fn novelty_novel_after_two_queries_records_evidence_and_keeps_other_ideas() {
    let dir = tempfile::tempdir().unwrap();
    let mut seed = idea("seed_idea");
    seed["novel"] = json!(true);
    let mut other = idea("other_idea");
    other["Score"] = json!(6);
    let path = write_archive(dir.path(), &[seed.clone(), idea("target_idea"), other.clone()]);

    let model = Arc::new(Model::new(&[
        query("grokking weight decay"),
        query("grokking regularisation phase transition"),
        decide("novel", "No paper studies this schedule.", &[3]),
    ]));
    // While the check runs, the user edits another idea in the editor.
    let edit_path = path.clone();
    model.hooks.lock().unwrap().push((
        2,
        Box::new(move || {
            let mut entries = read(&edit_path);
            entries[2]["note"] = json!("edited meanwhile");
            std::fs::write(&edit_path, ideas_to_json(&entries)).unwrap();
        }),
    ));
    let search = Search::new(vec![
        Ok(vec![
            paper("p1", "Grokking", Some("Generalisation after overfitting."), 900),
            paper("p2", "Omnigrok", Some("Grokking beyond algorithmic data."), 200),
        ]),
        Ok(vec![
            paper("p2", "Omnigrok", Some("Grokking beyond algorithmic data."), 200),
            paper(
                "p3",
                "Weight Decay Schedules",
                Some("Schedules for weight decay."),
                12,
            ),
        ]),
    ]);
    let only = vec!["target_idea".to_string()];
    let report = run(
        model.clone(),
        &search,
        &path,
        &opts(10),
        Some(&only),
        false,
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert_eq!(report.results.len(), 1);
    let r = &report.results[0];
    assert_eq!(r.name, "target_idea");
    assert!(r.written);
    let v = &r.verdict;
    assert_eq!(v.novel, Some(true));
    assert!(v.decided);
    assert_eq!(
        v.queries,
        [
            "grokking weight decay",
            "grokking regularisation phase transition"
        ]
    );
    assert_eq!(v.rounds, 3);
    assert_eq!(v.papers_seen, 3, "p2 counted once");
    assert_eq!(v.calls, 3);
    assert_eq!(search.queries(), v.queries);
    assert_eq!(
        search.queries.lock().unwrap()[0].1,
        10,
        "results_per_query is the limit"
    );

    let after = read(&path);
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], seed, "the already-checked idea is untouched");
    let mut other_edited = other.clone();
    other_edited["note"] = json!("edited meanwhile");
    assert_eq!(after[2], other_edited, "the edit made meanwhile survives");
    assert!(after[2].get("novel").is_none());

    let t = &after[1];
    assert_eq!(t["novel"], json!(true));
    for field in [
        "Name",
        "Title",
        "Experiment",
        "Interestingness",
        "Feasibility",
        "Novelty",
    ] {
        assert_eq!(t[field], idea("target_idea")[field], "{field}");
    }
    Idea::from_value(t).expect("still a valid v1 idea");
    let keys: Vec<_> = t.as_object().unwrap().keys().cloned().collect();
    assert_eq!(&keys[6..], ["novel", "novelty"]);
    let ev = NoveltyEvidence::of(t).unwrap();
    assert_eq!(ev.queries, v.queries);
    assert_eq!(ev.reason, "No paper studies this schedule.");
    assert_eq!((ev.rounds, ev.papers_seen, ev.decided), (3, 3, true));
    assert_eq!(ev.closest.len(), 1);
    assert_eq!(
        t["novelty"]["closest"][0],
        json!({"id": "p3", "title": "Weight Decay Schedules", "year": 2022,
               "url": "https://example.org/p3", "engine": "semanticscholar"})
    );
    chrono::DateTime::parse_from_rfc3339(&ev.checked).expect("RFC 3339 timestamp");
}

#[tokio::test]
async fn novelty_not_novel_names_the_closest_paper() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("dup_idea")]);
    let model = Arc::new(Model::new(&[
        query("adaptive block size transformer"),
        decide(
            "not novel",
            "Paper 2 already grows the context during training.",
            &[2],
        ),
    ]));
    let search = Search::new(vec![Ok(vec![
        paper("a", "Unrelated", None, 5),
        paper(
            "b",
            "Growing Context Windows",
            Some("We grow the block size."),
            40,
        ),
    ])]);
    let report = run_simple(model, &search, &path, &opts(10)).await;
    let v = &report.results[0].verdict;
    assert_eq!(v.novel, Some(false));
    assert!(v.decided);
    let e = &read(&path)[0];
    assert_eq!(e["novel"], json!(false));
    assert_eq!(e["novelty"]["closest"][0]["id"], "b");
    assert_eq!(e["novelty"]["closest"].as_array().unwrap().len(), 1);
    assert_eq!(
        e["novelty"]["reason"],
        "Paper 2 already grows the context during training."
    );
}

#[tokio::test]
async fn novelty_decision_without_json_falls_back_to_reason_line_and_last_results() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("x")]);
    let model = Arc::new(Model::new(&[
        query("q"),
        "THOUGHT: Paper 1 is the same.\nREASON: Paper 1 does this already.\nDecision made: not novel.".into(),
    ]));
    let search = Search::new(vec![Ok((1..=4)
        .map(|i| paper(&format!("p{i}"), &format!("Paper {i}"), None, i))
        .collect())]);
    let mut o = opts(10);
    o.evidence_papers = 2;
    let report = run_simple(model, &search, &path, &o).await;
    let v = &report.results[0].verdict;
    assert_eq!(v.reason, "Paper 1 does this already.");
    let ids: Vec<_> = v.closest.iter().map(|p| p.id.as_str()).collect();
    assert_eq!(ids, ["p1", "p2"], "top results of the last search, capped");
}

#[tokio::test]
async fn novelty_no_decision_within_max_rounds_is_not_novel() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("undecided")]);
    let model = Arc::new(Model::new(&[query("q1"), query("q2"), query("q3")]));
    let search = Search::new(vec![Ok(vec![paper("p1", "P1", None, 1)]), Ok(vec![])]);
    let report = run_simple(model.clone(), &search, &path, &opts(3)).await;
    let v = &report.results[0].verdict;
    assert_eq!(v.novel, Some(false));
    assert!(!v.decided);
    assert_eq!(v.rounds, 3);
    assert_eq!(v.calls, 3);
    assert_eq!(
        search.queries(),
        ["q1", "q2"],
        "the last round's query is not sent"
    );
    assert!(model.prompt(3).starts_with("Round 3/3. This is the last round"));
    let e = &read(&path)[0];
    assert_eq!(e["novel"], json!(false));
    assert_eq!(e["novelty"]["decided"], json!(false));
    assert!(e["novelty"]["reason"]
        .as_str()
        .unwrap()
        .contains("no decision within 3"));
    assert_eq!(
        e["novelty"]["closest"][0]["id"], "p1",
        "last search that found papers"
    );
}

#[tokio::test]
async fn novelty_malformed_answer_gets_one_repair() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("m")]);
    let model = Arc::new(Model::new(&[
        "I would search for grokking papers.".into(),
        query("grokking"),
        decide("novel", "Nothing close.", &[]),
    ]));
    let search = Search::new(vec![Ok(vec![paper("g", "Grokking", None, 1)])]);
    let report = run_simple(model.clone(), &search, &path, &opts(10)).await;
    let v = &report.results[0].verdict;
    assert_eq!(v.novel, Some(true));
    assert_eq!((v.calls, v.rounds), (3, 2), "the repair is not a round");
    let repair = model.prompt(2);
    assert!(
        repair.starts_with("I could not use your last answer: it has no JSON block"),
        "{repair}"
    );
    assert_eq!(model.requests()[1].messages.len(), 3, "same conversation");
    assert!(model.prompt(3).contains("Results for your query \"grokking\""));
}

#[tokio::test]
async fn novelty_failed_repair_consumes_the_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("m")]);
    let model = Arc::new(Model::new(&[
        "no".into(),
        "```json\n{\"Query\": \"\"}\n```".into(),
        decide("not novel", "r", &[]),
    ]));
    let search = Search::new(vec![]);
    let report = run_simple(model.clone(), &search, &path, &opts(10)).await;
    assert_eq!(report.results[0].verdict.rounds, 2);
    assert!(model
        .prompt(3)
        .contains("held no search query, so nothing was searched"));
    assert!(search.queries().is_empty());
}

#[tokio::test]
async fn novelty_search_error_is_shown_and_the_check_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("e")]);
    let model = Arc::new(Model::new(&[
        query("first"),
        query("second"),
        decide("novel", "Checked twice.", &[1]),
    ]));
    let search = Search::new(vec![
        Err(LitError::RateLimited {
            engine: Engine::SemanticScholar,
            secs: 60.0,
        }),
        Ok(vec![paper("s", "Second", Some("abs"), 3)]),
    ]);
    let report = run_simple(model.clone(), &search, &path, &opts(10)).await;
    let v = &report.results[0].verdict;
    assert_eq!(v.novel, Some(true));
    assert_eq!(v.queries, ["first", "second"]);
    let round2 = model.prompt(2);
    assert!(
        round2.contains("The search for \"first\" failed: semanticscholar is rate limiting"),
        "{round2}"
    );
    assert_eq!(read(&path)[0]["novel"], json!(true));
}

#[tokio::test]
async fn novelty_all_engines_down_leaves_the_idea_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("down"), idea("also_down")]);
    let before = std::fs::read_to_string(&path).unwrap();
    let model = Arc::new(Model::new(&[query("q"), query("q2")]));
    let down = || {
        Err(LitError::AllFailed(vec![
            LitError::Unavailable {
                engine: Engine::SemanticScholar,
                message: "503".into(),
            },
            LitError::RateLimited {
                engine: Engine::OpenAlex,
                secs: 30.0,
            },
        ]))
    };
    let search = Search::new(vec![down(), down()]);
    let report = run_simple(model, &search, &path, &opts(10)).await;
    assert_eq!(report.results.len(), 2);
    for r in &report.results {
        assert_eq!(r.verdict.novel, None);
        assert!(!r.written);
        assert!(
            r.verdict.reason.starts_with("not checked"),
            "{}",
            r.verdict.reason
        );
        assert!(r.verdict.reason.contains("503"));
        assert_eq!(r.verdict.calls, 1);
    }
    assert_eq!(
        std::fs::read_to_string(&path).unwrap(),
        before,
        "no novel key written"
    );
}

#[tokio::test]
async fn novelty_checked_ideas_are_skipped_unless_forced() {
    let dir = tempfile::tempdir().unwrap();
    let mut done = idea("done");
    done["novel"] = json!(false);
    done["Score"] = json!(3);
    let path = write_archive(dir.path(), &[done.clone()]);

    let model = Arc::new(Model::new(&[]));
    let report = run_simple(model.clone(), &Search::new(vec![]), &path, &opts(10)).await;
    assert_eq!(report.skipped, ["done"]);
    assert!(report.results.is_empty());
    assert!(model.requests().is_empty());

    let model = Arc::new(Model::new(&[decide("novel", "Fresh look.", &[])]));
    let report = run(
        model.clone(),
        &Search::new(vec![]),
        &path,
        &opts(10),
        None,
        true,
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.results[0].verdict.novel, Some(true));
    let e = &read(&path)[0];
    assert_eq!(e["novel"], json!(true));
    let keys: Vec<_> = e.as_object().unwrap().keys().cloned().collect();
    assert_eq!(&keys[6..], ["novel", "Score", "novelty"], "novel keeps its place");
    // The recheck's prompt does not show the old verdict.
    assert!(!model.prompt(1).contains("\"novel\""));
}

#[tokio::test]
async fn novelty_unknown_names_in_only_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("a")]);
    let only = vec!["nope".to_string()];
    let report = run(
        Arc::new(Model::new(&[])),
        &Search::new(vec![]),
        &path,
        &opts(10),
        Some(&only),
        false,
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.unknown, ["nope"]);
    assert!(report.results.is_empty());
}

fn assert_no_temp_files(dir: &Path) {
    // `.aisci/` holds the archive's lock file, not a temporary one.
    let names: Vec<_> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .filter(|n| n != ".aisci")
        .collect();
    assert_eq!(names, ["ideas.json"]);
}

#[tokio::test]
async fn novelty_cancellation_mid_idea_keeps_earlier_verdicts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("first"), idea("second"), idea("third")]);
    let cancel = CancellationToken::new();
    let mut model = Model::new(&[decide("novel", "r", &[]), query("q")]);
    model.cancel_on = Some((3, cancel.clone()));
    let model = Arc::new(model);
    let search = Search::new(vec![Ok(vec![paper("p", "P", None, 1)])]);
    let report = run(
        model.clone(),
        &search,
        &path,
        &opts(10),
        None,
        false,
        &NoProgress,
        &cancel,
    )
    .await
    .unwrap();
    assert!(report.cancelled);
    assert_eq!(report.results.len(), 1);
    assert_eq!(model.requests().len(), 3, "no call after cancellation");
    let after = read(&path);
    assert_eq!(after[0]["novel"], json!(true));
    assert_eq!(after[1], idea("second"), "nothing half-recorded");
    assert_eq!(after[2], idea("third"));
    assert_no_temp_files(dir.path());
}

#[tokio::test]
async fn novelty_cancellation_during_a_search_stops_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("only")]);
    let before = std::fs::read_to_string(&path).unwrap();
    let cancel = CancellationToken::new();
    let model = Arc::new(Model::new(&[query("q")]));
    let mut search = Search::new(vec![]);
    search.cancel_on = Some((1, cancel.clone()));
    let report = tokio::time::timeout(
        std::time::Duration::from_secs(5),
        run(
            model.clone(),
            &search,
            &path,
            &opts(10),
            None,
            false,
            &NoProgress,
            &cancel,
        ),
    )
    .await
    .expect("returns promptly")
    .unwrap();
    assert!(report.cancelled && report.results.is_empty());
    assert_eq!(model.requests().len(), 1);
    assert_eq!(std::fs::read_to_string(&path).unwrap(), before);
    assert_no_temp_files(dir.path());
}

#[tokio::test]
async fn novelty_prompts_show_the_previous_results_with_abstracts() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("shown")]);
    let model = Arc::new(Model::new(&[
        query("first query"),
        query("second query"),
        query("third query"),
        decide("novel", "r", &[]),
    ]));
    let mut long_authors = paper("p3", "Many Hands", Some("A {braced} abstract."), 7);
    long_authors.authors = (1..=12).map(|i| format!("Author {i}")).collect();
    long_authors.venue = None;
    long_authors.year = None;
    let search = Search::new(vec![
        Ok(vec![
            paper(
                "p1",
                "Grokking",
                Some("Networks generalise long after overfitting."),
                900,
            ),
            paper("p2", "No Abstract Here", None, 0),
        ]),
        Ok(vec![]),
        Ok(vec![long_authors, paper("p1", "Grokking", Some("again"), 900)]),
    ]);
    run_simple(model.clone(), &search, &path, &opts(10)).await;
    let reqs = model.requests();

    let system = reqs[0].system.clone().unwrap();
    assert!(system.contains("Study grokking on modular arithmetic."));
    assert!(system.contains("<experiment.py>\ndef train():  # {not a placeholder}"));
    assert!(system.contains("top 10 papers"));
    assert!(system.contains("You get 10 rounds per idea"));

    let r1 = model.prompt(1);
    assert!(r1.starts_with("Round 1/10.\n"), "{r1}");
    assert!(r1.contains("\"Name\": \"shown\""));
    assert!(r1.contains("You have not searched yet."));
    assert!(r1.contains("{\"Query\": \"<search terms>\"}"));

    let r2 = model.prompt(2);
    assert!(r2.starts_with("Round 2/10.\n"));
    assert!(
        r2.contains(
            "Results for your query \"first query\":\n\n\
         [1] Grokking. Ada Lovelace, Alan Turing. ICLR, 2022.\n\
         Citations: 900\n\
         Abstract: Networks generalise long after overfitting.\n\n\
         [2] No Abstract Here. Ada Lovelace, Alan Turing. ICLR, 2022.\n\
         Citations: 0\n\
         Abstract: (no abstract)"
        ),
        "{r2}"
    );
    assert!(!r2.contains("You have not searched yet."));

    let r3 = model.prompt(3);
    assert!(
        r3.contains("Results for your query \"second query\":\nNo papers found."),
        "{r3}"
    );

    let r4 = model.prompt(4);
    assert!(
        r4.contains(
            "[3] Many Hands. Author 1, Author 2, Author 3, Author 4, Author 5, Author 6, Author 7, \
             Author 8 et al. Venue unknown, year unknown.\nCitations: 7\nAbstract: A {braced} abstract."
        ),
        "{r4}"
    );
    assert!(
        r4.contains("[1] Grokking."),
        "a paper seen before keeps its number"
    );
    // One running conversation.
    assert_eq!(reqs[3].messages.len(), 7);
    assert_eq!(reqs[3].messages[1].role, Role::Assistant);
}

#[tokio::test]
async fn novelty_calls_per_idea_are_bounded_by_rounds_and_repairs() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("junk_a"), idea("junk_b")]);
    let junk: Vec<String> = (0..16).map(|i| format!("THOUGHT: hmm {i} {{ not json")).collect();
    let model = Arc::new(Model::new(&junk));
    let search = Search::new(vec![]);
    let report = run_simple(model.clone(), &search, &path, &opts(4)).await;
    for r in &report.results {
        assert_eq!(r.verdict.calls, 8, "4 rounds + 4 repairs");
        assert_eq!(r.verdict.novel, Some(false));
        assert!(!r.verdict.decided);
    }
    assert_eq!(report.calls, 16);
    assert_eq!(model.requests().len(), 16);
    assert!(search.queries().is_empty());
}

struct Recorder(Mutex<Vec<String>>);
impl Progress for Recorder {
    fn report(&self, message: &str, _percent: Option<u32>) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

#[tokio::test]
async fn novelty_progress_names_idea_and_round() {
    let dir = tempfile::tempdir().unwrap();
    let path = write_archive(dir.path(), &[idea("a"), idea("b")]);
    let model = Arc::new(Model::new(&[
        query("q"),
        decide("novel", "r", &[]),
        decide("not novel", "r", &[]),
    ]));
    let search = Search::new(vec![Ok(vec![])]);
    let rec = Recorder(Mutex::new(Vec::new()));
    run(
        model,
        &search,
        &path,
        &opts(10),
        None,
        false,
        &rec,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let msgs = rec.0.into_inner().unwrap();
    assert_eq!(
        &msgs[..3],
        [
            "Novelty 1/2: a, round 1/10",
            "Novelty 1/2: a, round 2/10",
            "Novelty 2/2: b, round 1/10"
        ]
    );
    assert!(
        msgs[3].starts_with("Novelty: 1 novel, 1 not novel"),
        "{}",
        msgs[3]
    );
}

#[tokio::test]
async fn novelty_v1_corpus_archive_round_trips_with_the_new_key() {
    let src = fixtures().join("v1/templates/nanoGPT/ideas.json");
    let original_text = std::fs::read_to_string(&src).unwrap();
    let original: Vec<Value> = serde_json::from_str(&original_text).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("ideas.json");
    std::fs::write(&path, &original_text).unwrap();

    // Every v1 idea already has `novel`: nothing is done without force.
    let report = run_simple(Arc::new(Model::new(&[])), &Search::new(vec![]), &path, &opts(10)).await;
    assert_eq!(report.skipped.len(), original.len());
    assert_eq!(std::fs::read_to_string(&path).unwrap(), original_text);

    let target = original[1]["Name"].as_str().unwrap().to_string();
    let model = Arc::new(Model::new(&[
        query("layer-wise learning rates transformers"),
        decide("not novel", "LARS and layer-wise LR decay exist.", &[1]),
    ]));
    let search = Search::new(vec![Ok(vec![paper(
        "lars",
        "Large Batch Training",
        Some("LARS."),
        3000,
    )])]);
    let only = vec![target.clone()];
    run(
        model,
        &search,
        &path,
        &opts(10),
        Some(&only),
        true,
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    let after_text = std::fs::read_to_string(&path).unwrap();
    let after: Vec<Value> = serde_json::from_str(&after_text).unwrap();
    assert_eq!(after.len(), original.len());
    // What v1 needs: a list of dicts with its fields; extra keys are ignored there.
    for e in &after {
        Idea::from_value(e).expect("loads as a v1 idea");
    }
    for (i, (a, o)) in after.iter().zip(&original).enumerate() {
        if i != 1 {
            assert_eq!(a, o, "idea {i} untouched");
        }
    }
    assert_eq!(after[1]["novel"], json!(false));
    assert_eq!(after[1]["novelty"]["closest"][0]["id"], "lars");
    // Removing the new key gives back v1's file byte for byte (apart from the flag
    // we changed, which v1 had as true).
    let mut stripped = after.clone();
    stripped[1].as_object_mut().unwrap().remove("novelty");
    stripped[1]["novel"] = original[1]["novel"].clone();
    assert_eq!(ideas_to_json(&stripped), original_text.trim_end());
}
