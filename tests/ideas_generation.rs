//! Idea generation against a scripted provider: queued answers, recorded requests.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};

use aisci::jobs::{NoProgress, Progress};
use aisci::llm::{ChatRequest, ChatResponse, Llm, LlmError, Provider, Role, Usage};
use aisci::project::{Idea, PromptJson};
use aisci::stages::ideas::agent::{generate_ideas, IdeaError, IdeaInputs, IdeaOptions, IdeaReport};
use async_trait::async_trait;
use serde_json::{json, Value};
use tokio_util::sync::CancellationToken;

/// Serves queued texts in order; records every request. An empty queue is an error
/// so that a test asking for more calls than scripted fails loudly.
struct Scripted {
    answers: Mutex<VecDeque<String>>,
    requests: Mutex<Vec<ChatRequest>>,
    /// Cancel this token when the n-th call (1-based) arrives.
    cancel_on: Option<(usize, CancellationToken)>,
}

impl Scripted {
    fn new(answers: &[String]) -> Arc<Self> {
        Arc::new(Self {
            answers: Mutex::new(answers.iter().cloned().collect()),
            requests: Mutex::new(Vec::new()),
            cancel_on: None,
        })
    }
    fn requests(&self) -> Vec<ChatRequest> {
        self.requests.lock().unwrap().clone()
    }
}

#[async_trait]
impl Provider for Scripted {
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
        if let Some((at, token)) = &self.cancel_on {
            if *at == n {
                token.cancel();
                // A real client would be mid-request now; wait to be cancelled.
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
            usage: Usage {
                input_tokens: 1000,
                output_tokens: 200,
                ..Default::default()
            },
            model: "scripted-model".into(),
            finish_reason: Some("stop".into()),
        })
    }
}

fn prompt() -> PromptJson {
    serde_json::from_value(json!({"system": "You are a careful researcher.",
        "task_description": "Study a tiny MLP."}))
    .unwrap()
}

fn seeds() -> Vec<Idea> {
    vec![Idea::from_value(
        &json!({"Name": "lr_warmup", "Title": "Warmup", "Experiment": "Add warmup.",
        "Interestingness": 5, "Feasibility": 9, "Novelty": 3}),
    )
    .unwrap()]
}

fn idea_json(name: &str, title: &str) -> Value {
    json!({"Name": name, "Title": title, "Experiment": "Change the code and compare.",
           "Interestingness": 6, "Feasibility": 8, "Novelty": 5})
}

fn answer(thought: &str, idea: &Value) -> String {
    format!(
        "THOUGHT:\n{thought}\n\nNEW IDEA JSON:\n```json\n{}\n```",
        serde_json::to_string_pretty(idea).unwrap()
    )
}

fn opts(n: u32, r: u32) -> IdeaOptions {
    IdeaOptions {
        num_ideas: n,
        num_reflections: r,
        temperature: Some(0.75),
        max_tokens: 4096,
    }
}

async fn run(
    provider: Arc<Scripted>,
    o: &IdeaOptions,
    dir: &Path,
    cancel: &CancellationToken,
) -> Result<IdeaReport, IdeaError> {
    let llm = Llm::new(provider);
    let p = prompt();
    let s = seeds();
    let inputs = IdeaInputs {
        prompt: &p,
        seeds: &s,
        experiment_py: "print('train')  # {not a placeholder}\n",
    };
    generate_ideas(&llm, inputs, o, &dir.join("ideas.json"), &NoProgress, cancel).await
}

fn read_ideas(dir: &Path) -> Vec<Value> {
    serde_json::from_str(&std::fs::read_to_string(dir.join("ideas.json")).unwrap()).unwrap()
}

#[tokio::test]
async fn happy_path_stops_early_on_i_am_done() {
    let dir = tempfile::tempdir().unwrap();
    let a = idea_json("noise_robustness", "Label Noise and a Tiny MLP");
    let provider = Scripted::new(&[answer("First draft.", &a), answer("Looks right. I am done", &a)]);
    let report = run(
        provider.clone(),
        &opts(1, 3),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.calls, 2);
    assert_eq!(report.accepted.len(), 1);
    assert_eq!(report.accepted[0].name, "noise_robustness");
    let reqs = provider.requests();
    assert_eq!(reqs.len(), 2);
    let first = &reqs[0].messages[0].content;
    assert!(first.starts_with("Study a tiny MLP."));
    assert!(first.contains("<experiment.py>\nprint('train')  # {not a placeholder}"));
    assert!(first.contains(r#""Name":"lr_warmup""#), "archive holds the seed");
    assert!(first.contains("3 rounds"));
    assert_eq!(reqs[0].system.as_deref(), Some("You are a careful researcher."));
    assert_eq!(reqs[0].temperature, Some(0.75));
    // The reflection continues the same conversation.
    assert_eq!(reqs[1].messages.len(), 3);
    assert_eq!(reqs[1].messages[1].role, Role::Assistant);
    assert!(reqs[1].messages[2].content.starts_with("Round 2/3."));
    // ideas.json: seed first, then the new idea, v1 indent.
    let text = std::fs::read_to_string(dir.path().join("ideas.json")).unwrap();
    assert!(text.starts_with("[\n    {\n        \"Name\": \"lr_warmup\""));
    let names: Vec<_> = read_ideas(dir.path()).iter().map(|v| v["Name"].clone()).collect();
    assert_eq!(names, [json!("lr_warmup"), json!("noise_robustness")]);
}

#[tokio::test]
async fn reflections_run_to_r_and_the_last_json_wins() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Scripted::new(&[
        answer("v1", &idea_json("width_sweep", "Draft")),
        answer("v2", &idea_json("width_sweep", "Better")),
        answer("v3", &idea_json("width_sweep", "Best")),
    ]);
    let report = run(
        provider.clone(),
        &opts(1, 3),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.calls, 3);
    assert_eq!(report.accepted[0].title, "Best");
    assert!(provider.requests()[2]
        .messages
        .last()
        .unwrap()
        .content
        .starts_with("Round 3/3."));
}

#[tokio::test]
async fn broken_json_then_repair_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Scripted::new(&[
        "THOUGHT: hmm\nNEW IDEA JSON:\n```json\n{\"Name\": \"x\", oops}\n```".into(),
        "THOUGHT: still thinking, no JSON this time. I am done".into(),
        answer("Fixed.", &idea_json("depth_vs_width", "Depth or Width?")),
    ]);
    let report = run(
        provider.clone(),
        &opts(1, 3),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.calls, 3);
    assert_eq!(report.accepted[0].name, "depth_vs_width");
    let last = provider.requests()[2].messages.last().unwrap().content.clone();
    assert!(last.contains("no JSON object was found"), "{last}");
}

#[tokio::test]
async fn never_valid_json_is_dropped_after_r_plus_one_calls() {
    let dir = tempfile::tempdir().unwrap();
    let r = 3;
    let junk: Vec<String> = (0..10)
        .map(|i| format!("THOUGHT: idea {i} {{ not json"))
        .collect();
    let provider = Scripted::new(&junk);
    let report = run(
        provider.clone(),
        &opts(2, r),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    // R rounds (the first + R-1 reflections) and one repair, per idea.
    assert_eq!(report.dropped.len(), 2);
    assert!(
        report.dropped.iter().all(|d| d.calls == r + 1),
        "{:?}",
        report.dropped
    );
    assert_eq!(report.calls, 2 * (r + 1));
    assert_eq!(provider.requests().len(), 2 * (r as usize + 1));
    assert!(report.dropped[0].reason.contains("no valid idea JSON"));
    assert!(report.accepted.is_empty());
    assert!(
        !dir.path().join("ideas.json").exists(),
        "nothing accepted, nothing written"
    );
}

#[tokio::test]
async fn bad_name_and_score_get_one_repair() {
    let dir = tempfile::tempdir().unwrap();
    let mut bad = idea_json("Fancy/Idea!", "T");
    bad["Novelty"] = json!(12);
    let provider = Scripted::new(&[
        answer("Draft. I am done", &bad),
        answer("Fixed both.", &idea_json("fancy_idea", "T")),
    ]);
    let report = run(
        provider.clone(),
        &opts(1, 3),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.calls, 2);
    assert_eq!(report.accepted[0].name, "fancy_idea");
    let repair = provider.requests()[1].messages.last().unwrap().content.clone();
    assert!(repair.contains("\"Name\" is \"Fancy/Idea!\""), "{repair}");
    assert!(repair.contains("\"Novelty\" is 12"), "{repair}");
}

#[tokio::test]
async fn obvious_name_slips_are_normalised_without_a_call() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Scripted::new(&[answer("I am done", &idea_json("Batch Size-Schedule", "T"))]);
    let report = run(provider, &opts(1, 3), dir.path(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(report.calls, 1);
    assert_eq!(report.accepted[0].name, "batch_size_schedule");
}

#[tokio::test]
async fn duplicate_name_is_repaired_then_dropped_if_it_persists() {
    let dir = tempfile::tempdir().unwrap();
    let dup = idea_json("lr_warmup", "Same as the seed");
    let provider = Scripted::new(&[answer("I am done", &dup), answer("Still.", &dup)]);
    let report = run(
        provider.clone(),
        &opts(1, 3),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.calls, 2);
    assert_eq!(report.dropped.len(), 1);
    assert!(
        report.dropped[0].reason.contains("already used"),
        "{:?}",
        report.dropped
    );
    assert_eq!(report.dropped[0].name.as_deref(), Some("lr_warmup"));
}

#[tokio::test]
async fn cancellation_keeps_finished_ideas() {
    let dir = tempfile::tempdir().unwrap();
    let cancel = CancellationToken::new();
    let provider = Arc::new(Scripted {
        answers: Mutex::new(
            [answer("I am done", &idea_json("first_idea", "One"))]
                .into_iter()
                .collect(),
        ),
        requests: Mutex::new(Vec::new()),
        cancel_on: Some((2, cancel.clone())),
    });
    let report = run(provider.clone(), &opts(5, 3), dir.path(), &cancel)
        .await
        .unwrap();
    assert!(report.cancelled);
    assert_eq!(report.accepted.len(), 1);
    assert_eq!(provider.requests().len(), 2, "no call after cancellation");
    let names: Vec<_> = read_ideas(dir.path()).iter().map(|v| v["Name"].clone()).collect();
    assert_eq!(names, [json!("lr_warmup"), json!("first_idea")]);
}

#[tokio::test]
async fn existing_ideas_json_is_kept_with_extra_keys() {
    let dir = tempfile::tempdir().unwrap();
    let existing = json!([
        {"Name": "lr_warmup", "Title": "Warmup", "Experiment": "Add warmup.",
         "Interestingness": 5, "Feasibility": 9, "Novelty": 3, "novel": true},
        {"Name": "users_own", "Title": "Mine", "Experiment": "By hand.",
         "Interestingness": 7, "Feasibility": 7, "Novelty": 7, "novel": false, "Score": 6,
         "note": {"by": "me"}}
    ]);
    std::fs::write(
        dir.path().join("ideas.json"),
        serde_json::to_string(&existing).unwrap(),
    )
    .unwrap();
    let provider = Scripted::new(&[answer("I am done", &idea_json("new_one", "New"))]);
    let report = run(
        provider.clone(),
        &opts(1, 3),
        dir.path(),
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(report.accepted.len(), 1);
    let after = read_ideas(dir.path());
    assert_eq!(after.len(), 3);
    assert_eq!(after[0], existing[0]);
    assert_eq!(after[1], existing[1], "extra keys survive");
    assert_eq!(after[2]["Name"], "new_one");
    // The user's idea was in the archive the model saw.
    assert!(provider.requests()[0].messages[0].content.contains("users_own"));
}

#[tokio::test]
async fn invalid_existing_ideas_json_is_not_overwritten() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("ideas.json"), "[{broken").unwrap();
    let provider = Scripted::new(&[]);
    let err = run(provider, &opts(1, 3), dir.path(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, IdeaError::ExistingArchive { .. }), "{err}");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("ideas.json")).unwrap(),
        "[{broken"
    );
}

#[tokio::test]
async fn model_failure_returns_the_partial_report() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Scripted::new(&[answer("I am done", &idea_json("only_one", "One"))]);
    let err = run(provider, &opts(3, 3), dir.path(), &CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        IdeaError::Llm { report, .. } => assert_eq!(report.accepted.len(), 1),
        other => panic!("{other}"),
    }
    assert_eq!(read_ideas(dir.path()).len(), 2);
}

struct Recorder(Mutex<Vec<String>>);
impl Progress for Recorder {
    fn report(&self, message: &str, _percent: Option<u32>) {
        self.0.lock().unwrap().push(message.to_string());
    }
}

#[tokio::test]
async fn progress_names_idea_and_round() {
    let dir = tempfile::tempdir().unwrap();
    let provider = Scripted::new(&[
        answer("a", &idea_json("aa", "A")),
        answer("I am done", &idea_json("aa", "A")),
        answer("I am done", &idea_json("bb", "B")),
    ]);
    let llm = Llm::new(provider);
    let (p, s) = (prompt(), seeds());
    let rec = Recorder(Mutex::new(Vec::new()));
    let inputs = IdeaInputs {
        prompt: &p,
        seeds: &s,
        experiment_py: "",
    };
    generate_ideas(
        &llm,
        inputs,
        &opts(2, 3),
        &dir.path().join("ideas.json"),
        &rec,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let msgs = rec.0.into_inner().unwrap();
    assert_eq!(
        &msgs[..3],
        [
            "Idea 1/2: round 1/3",
            "Idea 1/2: round 2/3",
            "Idea 2/2: round 1/3"
        ]
    );
    assert_eq!(llm.totals().calls, 3);
}
