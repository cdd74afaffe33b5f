//! The experiment stage end to end on the stdlib template `templates/tiny_mlp`
//! (copied to a temp dir): a scripted model whose replies carry real
//! SEARCH/REPLACE blocks, the real `LocalRunner` and `python3`. Hermetic.

use std::collections::VecDeque;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisci::agent::edit_sink::{DiskSink, EditSink, SinkError, Snapshot};
use aisci::config::ExperimentSettings;
use aisci::jobs::NoProgress;
use aisci::llm::{ChatRequest, ChatResponse, Llm, LlmError, Provider, Usage};
use aisci::project::{create_idea_folder, Idea, IdeaFolder, RunExit, RunRecord, Template};
use aisci::runner::LocalRunner;
use aisci::stages::experiment::agent::{
    run_baseline, run_experiments, BaselineError, ExperimentCtx, ExperimentEvents, ExperimentReport,
    NoEvents, RunsEnd,
};
use async_trait::async_trait;
use serde_json::json;
use tokio_util::sync::CancellationToken;

use crate::support::fs::copy_tiny_mlp;

/// Serves queued replies in order and records every request.
#[derive(Default)]
struct Model {
    replies: Mutex<VecDeque<String>>,
    requests: Mutex<Vec<ChatRequest>>,
    /// Takes images (a vision model).
    vision: bool,
}

impl Model {
    fn new(replies: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies.iter().map(|s| s.to_string()).collect()),
            ..Default::default()
        })
    }
    fn seeing(replies: &[&str]) -> Arc<Self> {
        Arc::new(Self {
            replies: Mutex::new(replies.iter().map(|s| s.to_string()).collect()),
            vision: true,
            ..Default::default()
        })
    }
    /// The n-th request (1-based).
    fn request(&self, n: usize) -> ChatRequest {
        self.requests.lock().unwrap()[n - 1].clone()
    }
    /// The user message of the n-th call (1-based).
    fn prompt(&self, n: usize) -> String {
        self.requests.lock().unwrap()[n - 1]
            .messages
            .last()
            .unwrap()
            .content
            .clone()
    }
    fn calls(&self) -> usize {
        self.requests.lock().unwrap().len()
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
    fn accepts_images(&self) -> bool {
        self.vision
    }
    async fn chat(&self, req: &ChatRequest, _cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        self.requests.lock().unwrap().push(req.clone());
        let text = self
            .replies
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| LlmError::Replay("no more scripted replies".into()))?;
        Ok(ChatResponse {
            text,
            usage: Usage::default(),
            model: "scripted-model".into(),
            finish_reason: Some("stop".into()),
        })
    }
}

/// Writes through `DiskSink`, recording each write. With `typist`, the first write
/// to experiment.py finds that "the user" added a line since it was read.
#[derive(Default)]
struct RecordingSink {
    writes: Mutex<Vec<(String, String)>>,
    typist: Mutex<bool>,
}

#[async_trait]
impl EditSink for RecordingSink {
    async fn read(&self, path: &Path) -> Result<Snapshot, SinkError> {
        DiskSink.read(path).await
    }
    async fn write(&self, path: &Path, base: &Snapshot, after: &str) -> Result<(), SinkError> {
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        if name == "experiment.py" && std::mem::take(&mut *self.typist.lock().unwrap()) {
            let text = std::fs::read_to_string(path).unwrap();
            std::fs::write(path, format!("# typed by the user\n{text}")).unwrap();
        }
        DiskSink.write(path, base, after).await?;
        self.writes.lock().unwrap().push((name, after.to_string()));
        Ok(())
    }
}

#[derive(Default)]
struct Events {
    log: Mutex<Vec<String>>,
    cancel_on_start: Option<CancellationToken>,
}

impl ExperimentEvents for Events {
    fn run_started(&self, run: u32, attempt: u32) {
        self.log.lock().unwrap().push(format!("start {run}.{attempt}"));
        if let Some(token) = self.cancel_on_start.clone() {
            tokio::spawn(async move {
                tokio::time::sleep(Duration::from_millis(300)).await;
                token.cancel();
            });
        }
    }
    fn run_finished(&self, r: &RunRecord) {
        self.log
            .lock()
            .unwrap()
            .push(format!("end {}.{} {}", r.run, r.attempt, r.completed));
    }
    fn edits_applied(&self, files: &[String]) {
        self.log.lock().unwrap().push(format!("edit {}", files.join(",")));
    }
}

fn idea() -> Idea {
    Idea::from_value(&json!({"Name": "wider_faster", "Title": "Wider and Faster MLPs",
        "Experiment": "Try a wider hidden layer, then a larger learning rate.",
        "Interestingness": 4, "Feasibility": 10, "Novelty": 2}))
    .unwrap()
}

/// tiny_mlp copied to `<tmp>/templates/tiny_mlp`, and an idea folder made from it.
fn setup(tmp: &Path) -> IdeaFolder {
    let t = tmp.join("templates/tiny_mlp");
    copy_tiny_mlp(&t);
    let template = Template::open(&t).unwrap();
    let now = chrono::NaiveDateTime::parse_from_str("20240802_090035", "%Y%m%d_%H%M%S").unwrap();
    create_idea_folder(&template, &tmp.join("results"), &idea(), now).unwrap()
}

fn settings() -> ExperimentSettings {
    ExperimentSettings {
        timeout_secs: 30,
        ..Default::default()
    }
}

async fn run(
    folder: &IdeaFolder,
    model: &Arc<Model>,
    sink: &dyn EditSink,
    events: &dyn ExperimentEvents,
    settings: &ExperimentSettings,
    cancel: &CancellationToken,
) -> ExperimentReport {
    let llm = Llm::new(model.clone());
    let runner = LocalRunner::from_settings(settings);
    let idea = idea();
    let ctx = ExperimentCtx {
        llm: &llm,
        sink,
        runner: &runner,
        folder,
        idea: &idea,
        settings,
        python: "python3",
        temperature: Some(0.0),
        max_tokens: 4096,
        progress: &NoProgress,
        events,
        cancel,
    };
    run_experiments(&ctx).await.unwrap()
}

fn block(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")
}

const CFG: &str =
    "    cfg = {\"n_train\": 200, \"n_val\": 200, \"hidden\": 8, \"lr\": 0.01, \"epochs\": 40}\n";
const SEEDS: &str = "    seeds = [0, 1, 2]\n";

fn wider() -> String {
    format!(
        "Plan: run 1 doubles the width, run 2 raises the learning rate.\n\n{}",
        block(
            "experiment.py",
            CFG,
            &CFG.replace("\"hidden\": 8", "\"hidden\": 16")
        )
    )
}

fn failing_edit() -> String {
    format!(
        "Run 2: a learning-rate schedule.\n\n{}",
        block(
            "experiment.py",
            SEEDS,
            &format!("{SEEDS}    raise RuntimeError(\"lr schedule not implemented\")\n")
        )
    )
}

fn no_blocks() -> &'static str {
    "I believe the code is fine as it is."
}

#[tokio::test]
async fn runs_are_fed_back_failures_fixed_and_results_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let root = folder.root.clone();
    let notes = std::fs::read_to_string(root.join("notes.txt")).unwrap();
    assert!(notes.starts_with(
        "# Title: Wider and Faster MLPs\n# Experiment description: Try a wider hidden layer, then a larger learning rate.\n## Run 0: Baseline\nResults: {'blobs': {'final_train_loss_mean': "
    ), "{notes}");
    assert!(notes.ends_with("}}\nDescription: Baseline results.\n"), "{notes}");

    let fix = block(
        "experiment.py",
        &format!("{SEEDS}    raise RuntimeError(\"lr schedule not implemented\")\n"),
        &format!("{SEEDS}    cfg[\"lr\"] = 0.02\n"),
    );
    let done = format!(
        "ALL_COMPLETED\n\n{}",
        block(
            "notes.txt",
            "Description: Baseline results.\n",
            "Description: Baseline results.\n## Run 1: hidden 16\n## Run 2: lr 0.02\n"
        )
    );
    let plot = format!(
        "{}{}",
        block(
            "plot.py",
            "    \"run_0\": \"Baseline\",\n",
            "    \"run_0\": \"Baseline\",\n    \"run_1\": \"Hidden 16\",\n    \"run_2\": \"LR 0.02\",\n"
        ),
        block(
            "plot.py",
            "    runs = load_runs()\n",
            "    runs = load_runs()\n    open(\"summary.png\", \"wb\").write(b\"png\")\n"
        )
    );
    let notes_reply = block(
        "notes.txt",
        "## Run 2: lr 0.02\n",
        "## Run 2: lr 0.02\nFigure summary.png: a summary.\n",
    );
    let model = Model::new(&[&wider(), &failing_edit(), &fix, &done, &plot, &notes_reply]);
    let sink = RecordingSink::default();
    let events = Events::default();
    let report = run(
        &folder,
        &model,
        &sink,
        &events,
        &settings(),
        &CancellationToken::new(),
    )
    .await;

    assert_eq!(report.end, RunsEnd::AllCompleted);
    assert_eq!(report.completed.iter().map(|r| r.run).collect::<Vec<_>>(), [1, 2]);
    assert_eq!(report.completed[1].attempt, 2);
    assert!(!report.partial());
    assert_eq!(report.failed.len(), 1);
    let failed = &report.failed[0];
    assert_eq!(failed.exit, Some(RunExit::Failed { code: 1 }));
    assert_eq!(
        failed.error.as_deref(),
        Some("RuntimeError: lr schedule not implemented")
    );
    assert!(
        failed.frames.iter().any(|f| f.file.ends_with("experiment.py")),
        "{failed:?}"
    );
    assert_eq!(report.calls, 6);
    assert_eq!(model.calls(), 6);

    // The model saw the traceback, then run 2's results before plotting.
    assert!(model.prompt(1).contains("up to 5 runs"));
    assert!(model.prompt(1).contains("python experiment.py --out_dir=run_i"));
    assert!(model.prompt(1).contains("{'blobs': {'final_train_loss_mean': "));
    assert!(model.prompt(2).contains("Run 1 completed"));
    let p3 = model.prompt(3);
    assert!(
        p3.contains("Run 2 failed") && p3.contains("RuntimeError: lr schedule not implemented"),
        "{p3}"
    );
    assert!(
        p3.contains("experiment.py\n```python\n"),
        "the files come first: {p3}"
    );
    let p4 = model.prompt(4);
    assert!(
        p4.contains("Run 2 completed") && p4.contains("'final_val_acc_mean': "),
        "{p4}"
    );
    assert!(model.prompt(5).contains("run_0 (the baseline), run_1, run_2"));
    assert!(model.prompt(6).contains("summary.png"));

    // On disk: completed runs with records and code snapshots; the failed attempt aside.
    for i in [1, 2] {
        assert!(root.join(format!("run_{i}/final_info.json")).is_file());
        assert!(root.join(format!("run_{i}.py")).is_file());
        let rec = RunRecord::load(&root.join(format!("run_{i}"))).unwrap();
        assert!(rec.completed && rec.means.is_some());
    }
    assert!(std::fs::read_to_string(root.join("run_1.py"))
        .unwrap()
        .contains("\"hidden\": 16"));
    assert!(std::fs::read_to_string(root.join("run_2.py"))
        .unwrap()
        .contains("cfg[\"lr\"] = 0.02"));
    let attempt = root.join(".aisci/attempts/run_2/attempt_1");
    assert!(std::fs::read_to_string(attempt.join("stderr.txt"))
        .unwrap()
        .contains("RuntimeError"));
    assert!(std::fs::read_to_string(attempt.join("experiment.py"))
        .unwrap()
        .contains("raise RuntimeError"));
    assert_eq!(RunRecord::load(&attempt).unwrap(), *failed);
    let plot = report.plot.as_ref().unwrap();
    assert!(plot.succeeded);
    assert_eq!(plot.figures, ["summary.png"]);
    assert!(report.notes_updated);
    let notes = std::fs::read_to_string(root.join("notes.txt")).unwrap();
    assert!(notes.contains("## Run 2: lr 0.02\nFigure summary.png"), "{notes}");

    // Every edit went through the sink, and the editor heard about runs and edits.
    let writes: Vec<String> = sink.writes.lock().unwrap().iter().map(|w| w.0.clone()).collect();
    assert_eq!(
        writes,
        [
            "experiment.py",
            "experiment.py",
            "experiment.py",
            "notes.txt",
            "plot.py",
            "notes.txt"
        ]
    );
    let log = events.log.lock().unwrap().clone();
    assert_eq!(
        &log[..7],
        [
            "edit experiment.py",
            "start 1.1",
            "end 1.1 true",
            "edit experiment.py",
            "start 2.1",
            "end 2.1 false",
            "edit experiment.py"
        ]
    );
}

#[tokio::test]
async fn a_timed_out_run_is_reported_and_killed() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let sleepy = block("experiment.py", SEEDS, &format!("{SEEDS}    time.sleep(30)\n"));
    let model = Model::new(&[&sleepy, no_blocks()]);
    let settings = ExperimentSettings {
        timeout_secs: 1,
        max_attempts: 2,
        ..Default::default()
    };
    let started = Instant::now();
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings,
        &CancellationToken::new(),
    )
    .await;
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "{:?}",
        started.elapsed()
    );
    assert_eq!(report.end, RunsEnd::AttemptsExhausted { run: 1 });
    assert_eq!(report.failed[0].exit, Some(RunExit::TimedOut));
    assert!(
        model.prompt(2).contains("Run timed out after 1 seconds"),
        "{}",
        model.prompt(2)
    );
    assert!(model.prompt(2).contains("attempt 1 of 2"));
    assert!(!folder.root.join("run_1").exists());
    assert!(report.plot.is_none(), "no run completed: nothing to plot");
}

#[tokio::test]
async fn missing_results_and_bad_blocks_are_fed_back_and_counted() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let no_results = block(
        "experiment.py",
        "    with open(os.path.join(args.out_dir, \"final_info.json\"), \"w\") as f:\n        json.dump(final_info, f)\n",
        "    pass\n",
    );
    let stale = block("experiment.py", "    hidden_size = 8\n", "    hidden_size = 32\n");
    let model = Model::new(&[&no_results, &stale, no_blocks()]);
    let settings = ExperimentSettings {
        max_attempts: 3,
        ..settings()
    };
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(report.end, RunsEnd::AttemptsExhausted { run: 1 });
    assert_eq!(model.calls(), 3);
    let p2 = model.prompt(2);
    assert!(p2.contains("wrote no run_1/final_info.json"), "{p2}");
    assert!(
        p2.contains("\"blobs\": {\"means\": {\"final_train_loss_mean\": ..."),
        "{p2}"
    );
    let p3 = model.prompt(3);
    assert!(
        p3.contains("None of your changes were applied (attempt 2 of 3 for run 1)"),
        "{p3}"
    );
    assert!(p3.contains("block 1 (experiment.py)"), "{p3}");
    // Only one attempt ran; it exited 0 but is not a completed run.
    assert_eq!(report.failed.len(), 1);
    assert_eq!(report.failed[0].exit, Some(RunExit::Success));
    assert!(!report.failed[0].completed);
    assert!(!folder.root.join("run_1").exists() && !folder.root.join("run_1.py").exists());
    assert!(folder
        .root
        .join(".aisci/attempts/run_1/attempt_1/aisci_run.json")
        .is_file());
}

#[tokio::test]
async fn an_exhausted_budget_keeps_earlier_runs() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let model = Model::new(&[&wider(), &failing_edit(), no_blocks(), no_blocks(), no_blocks()]);
    let settings = ExperimentSettings {
        max_attempts: 2,
        ..settings()
    };
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(report.end, RunsEnd::AttemptsExhausted { run: 2 });
    assert!(report.partial());
    assert_eq!(report.completed.len(), 1);
    assert!(folder.root.join("run_1/final_info.json").is_file());
    assert!(!folder.root.join("run_2").exists());
    // The kept run is still plotted (plot.py ran, unchanged) and noted.
    assert!(report.plot.as_ref().unwrap().succeeded);
    assert!(model.prompt(4).contains("run_0 (the baseline), run_1"));
    assert!(!report.notes_updated);
}

#[tokio::test]
async fn cancelling_kills_the_run_promptly() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let sleepy = block("experiment.py", SEEDS, &format!("{SEEDS}    time.sleep(60)\n"));
    let model = Model::new(&[&sleepy]);
    let cancel = CancellationToken::new();
    let events = Events {
        cancel_on_start: Some(cancel.clone()),
        ..Default::default()
    };
    let started = Instant::now();
    let report = run(&folder, &model, &DiskSink, &events, &settings(), &cancel).await;
    assert!(
        started.elapsed() < Duration::from_secs(6),
        "{:?}",
        started.elapsed()
    );
    assert!(report.cancelled());
    assert_eq!(report.failed[0].exit, Some(RunExit::Cancelled));
    assert!(!folder.root.join("run_1").exists());
}

#[tokio::test]
async fn an_edit_racing_the_user_is_redone_and_the_last_run_is_shown() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let model = Model::new(&[&wider(), "Recorded.", no_blocks(), no_blocks()]);
    let sink = RecordingSink {
        typist: Mutex::new(true),
        ..Default::default()
    };
    let settings = ExperimentSettings {
        max_runs: 1,
        ..settings()
    };
    let report = run(
        &folder,
        &model,
        &sink,
        &NoEvents,
        &settings,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(report.end, RunsEnd::MaxRuns);
    let code = std::fs::read_to_string(folder.root.join("run_1.py")).unwrap();
    assert!(
        code.starts_with("# typed by the user\n") && code.contains("\"hidden\": 16"),
        "{code}"
    );
    // v1 never sends the last run's results; here they come before plotting.
    let p2 = model.prompt(2);
    assert!(p2.contains("Run 1 completed; it was the last run"), "{p2}");
    assert!(model.prompt(3).contains("edit plot.py"));
}

#[tokio::test]
async fn the_baseline_runs_in_the_template() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path().join("tiny_mlp");
    copy_tiny_mlp(&t);
    std::fs::remove_dir_all(t.join("run_0")).unwrap();
    let template = Template::open(&t).unwrap();
    let s = settings();
    let runner = LocalRunner::from_settings(&s);
    let cancel = CancellationToken::new();
    let rec = run_baseline(&template, &runner, &s, "python3", &cancel)
        .await
        .unwrap();
    assert!(rec.completed && rec.run == 0);
    assert!(t.join("run_0/final_info.json").is_file());
    // Floats are compared loosely: serde_json's parser need not round-trip every f64.
    let saved = RunRecord::load(&t.join("run_0")).unwrap();
    assert_eq!((saved.run, saved.completed, &saved.dir), (0, true, &rec.dir));
    assert_eq!(saved.means.as_ref().map(|m| m.to_string().len() > 20), Some(true));

    std::fs::remove_dir_all(t.join("run_0")).unwrap();
    std::fs::write(t.join("experiment.py"), "import sys\nsys.exit('no data')\n").unwrap();
    match run_baseline(&template, &runner, &s, "python3", &cancel).await {
        Err(BaselineError::Failed { message, record }) => {
            assert!(message.contains("no data"), "{message}");
            assert!(!t.join("run_0").exists());
            assert_eq!(record.dir, Path::new(".aisci/attempts/run_0/attempt_1"));
        }
        other => panic!("{other:?}"),
    }
}

/// Always reports that the user typed: the edit is redone once, then the stage stops.
struct BusyTypist;

#[async_trait]
impl EditSink for BusyTypist {
    async fn read(&self, path: &Path) -> Result<Snapshot, SinkError> {
        DiskSink.read(path).await
    }
    async fn write(&self, path: &Path, _base: &Snapshot, _after: &str) -> Result<(), SinkError> {
        Err(SinkError::Changed(path.display().to_string()))
    }
}

#[tokio::test]
async fn all_completed_at_once_and_a_sink_that_never_settles() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    // v1: ALL_COMPLETED before any run goes straight to plotting.
    let model = Model::new(&["Nothing to add. ALL_COMPLETED", no_blocks(), no_blocks()]);
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings(),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(report.end, RunsEnd::AllCompleted);
    assert!(report.completed.is_empty() && report.failed.is_empty());
    assert!(report.plot.as_ref().unwrap().succeeded);
    assert_eq!(model.calls(), 3);

    let model = Model::new(&[&wider()]);
    let llm = Llm::new(model.clone());
    let s = settings();
    let runner = LocalRunner::from_settings(&s);
    let idea = idea();
    let cancel = CancellationToken::new();
    let ctx = ExperimentCtx {
        llm: &llm,
        sink: &BusyTypist,
        runner: &runner,
        folder: &folder,
        idea: &idea,
        settings: &s,
        python: "python3",
        temperature: None,
        max_tokens: 4096,
        progress: &NoProgress,
        events: &NoEvents,
        cancel: &cancel,
    };
    match run_experiments(&ctx).await {
        Err(aisci::stages::experiment::agent::ExperimentError::Edit { source, .. }) => {
            assert!(matches!(source, SinkError::Changed(_)))
        }
        other => panic!("{other:?}"),
    }
}

/// `run_experiments` as a session would, without unwrapping its error.
async fn session(
    folder: &IdeaFolder,
    model: &Arc<Model>,
) -> Result<ExperimentReport, aisci::stages::experiment::agent::ExperimentError> {
    let llm = Llm::new(model.clone());
    let settings = settings();
    let runner = LocalRunner::from_settings(&settings);
    let idea = idea();
    let cancel = CancellationToken::new();
    let ctx = ExperimentCtx {
        llm: &llm,
        sink: &DiskSink,
        runner: &runner,
        folder,
        idea: &idea,
        settings: &settings,
        python: "python3",
        temperature: Some(0.0),
        max_tokens: 4096,
        progress: &NoProgress,
        events: &NoEvents,
        cancel: &cancel,
    };
    run_experiments(&ctx).await
}

#[tokio::test]
async fn a_resumed_study_goes_on_after_its_completed_runs() {
    use aisci::project::journal::{Journal, StageState, STAGE_NOTES, STAGE_PLOT, STAGE_RUNS};
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let root = folder.root.clone();

    // Session 1 ends after run 1 (the model is gone: as if aisci stopped there).
    let first = Model::new(&[&wider()]);
    assert!(session(&folder, &first).await.is_err());
    let run1 = std::fs::read(root.join("run_1/aisci_run.json")).unwrap();
    let j = Journal::load(&root);
    assert_eq!(j.stage(STAGE_RUNS).unwrap().state, StageState::Running, "{j:?}");

    // Session 2 goes on at run 2, telling the model what run 1 gave.
    let lr = block(
        "experiment.py",
        &CFG.replace("\"hidden\": 8", "\"hidden\": 16"),
        &CFG.replace("\"hidden\": 8", "\"hidden\": 16")
            .replace("0.01", "0.02"),
    );
    let notes = block(
        "notes.txt",
        "Description: Baseline results.\n",
        "Description: Baseline results.\n## Figures\nnone\n",
    );
    let second = Model::new(&[&lr, "ALL_COMPLETED", no_blocks(), &notes]);
    let report = session(&folder, &second).await.unwrap();
    let prompt = second.prompt(1);
    assert!(prompt.contains("Runs 1 to 1 already completed"), "{prompt}");
    assert!(prompt.contains("Run 1: {'blobs': {"), "{prompt}");
    assert!(prompt.contains("Give the changes for run 2"), "{prompt}");
    assert_eq!(report.end, RunsEnd::AllCompleted);
    let runs: Vec<u32> = report.completed.iter().map(|r| r.run).collect();
    assert_eq!(runs, vec![1, 2]);
    assert_eq!(
        std::fs::read(root.join("run_1/aisci_run.json")).unwrap(),
        run1,
        "run 1 was not redone"
    );
    assert!(root.join("run_2/final_info.json").is_file());
    assert!(report.notes_updated);
    let j = Journal::load(&root);
    assert!(j.is_done(STAGE_RUNS, Some("all_completed")), "{j:?}");
    assert!(
        j.is_done(STAGE_PLOT, None) && j.is_done(STAGE_NOTES, None),
        "{j:?}"
    );

    // Session 3 finds everything done: no model call, nothing run.
    let third = Model::new(&[]);
    let report = session(&folder, &third).await.unwrap();
    assert_eq!(third.calls(), 0);
    assert_eq!(report.end, RunsEnd::AllCompleted);
    assert_eq!(report.completed.len(), 2);
    assert!(!root.join("run_3").exists());
}

/// plot.py writes `fig.png` (a real PNG header, `tag` bytes after it, so a revision
/// changes the file) whether or not matplotlib is installed.
fn draws_figure(search: &str, tag: &str) -> String {
    block(
        "plot.py",
        search,
        &format!(
            "{search}    open(\"fig.png\", \"wb\").write(b\"\\x89PNG\\r\\n\\x1a\\n\" + b\"{tag}\")  # drawn\n"
        ),
    )
}

#[tokio::test]
async fn a_vision_model_critiques_the_figure_and_the_revision_goes_back_to_plot_py() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let root = folder.root.clone();
    let first = draws_figure("    runs = load_runs()\n", "first");
    let issue = "The y axis has no label; say it is validation accuracy.";
    let critique = format!("```json\n{{\"ok\": false, \"issues\": [\"{issue}\"]}}\n```");
    let drawn = "    open(\"fig.png\", \"wb\").write(b\"\\x89PNG\\r\\n\\x1a\\n\" + b\"first\")  # drawn\n";
    let revised = block("plot.py", drawn, &drawn.replace("first", "second, labelled"));
    let fine = "{\"ok\": true, \"issues\": []}";
    let model = Model::seeing(&["ALL_COMPLETED", &first, &critique, &revised, fine, no_blocks()]);
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings(),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(model.calls(), 6);
    let plot = report.plot.as_ref().unwrap();
    assert!(plot.succeeded);
    assert_eq!(plot.figures, ["fig.png"]);
    // The critique: the PNG itself, with what plot.py recorded, to a fresh request.
    let seen = model.request(3);
    assert_eq!(
        seen.messages.len(),
        1,
        "the critique is not part of the plot conversation"
    );
    assert_eq!(seen.image_count(), 1);
    let image = &seen.messages[0].images[0];
    assert_eq!(image.media_type, "image/png");
    assert!(image.data.starts_with(b"\x89PNG") && image.data.ends_with(b"first"));
    assert!(
        seen.messages[0].content.contains("fig.png"),
        "{}",
        seen.messages[0].content
    );
    assert!(seen.system.as_deref().unwrap().contains("legend"));
    // Its issue went back to the plot conversation, and the new figure was looked at.
    let revise = model.prompt(4);
    assert!(revise.contains("fig.png:\n- The y axis has no label"), "{revise}");
    assert!(model.request(5).messages[0].images[0]
        .data
        .ends_with(b"second, labelled"));
    let catalog = aisci::project::figures::FigureCatalog::load(&root);
    let c = catalog.get("fig.png").unwrap().critique.clone().unwrap();
    assert_eq!((c.ok, c.rounds, c.issues.len()), (true, 2, 0), "{c:?}");
    assert_eq!(c.model, "scripted-model");
    let line = plot.critique.as_deref().unwrap();
    assert!(line.contains("1 of 1 fine after 1 revision(s)"), "{line}");
}

#[tokio::test]
async fn issues_left_after_the_last_round_stay_on_the_figure_and_a_blind_model_skips_once() {
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let first = draws_figure("    runs = load_runs()\n", "first");
    let critique = "{\"ok\": false, \"issues\": [\"The legend covers the moons bars.\"]}";
    // No revisions allowed: one look, the issue kept, plot.py left alone.
    let s = ExperimentSettings {
        figure_critique_rounds: 0,
        ..settings()
    };
    let model = Model::seeing(&["ALL_COMPLETED", &first, no_blocks()]);
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &s,
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(model.calls(), 3, "critique off: no look at the figure");
    assert!(report.plot.as_ref().unwrap().critique.is_none());

    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let root2 = folder.root.clone();
    let model = Model::seeing(&[
        "ALL_COMPLETED",
        &first,
        critique,
        &draws_figure("    runs = load_runs()\n", "x"),
        critique,
        no_blocks(),
    ]);
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings(),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(model.calls(), 6);
    let c = aisci::project::figures::FigureCatalog::load(&root2)
        .get("fig.png")
        .unwrap()
        .critique
        .clone()
        .unwrap();
    assert!(
        !c.ok && c.issues == ["The legend covers the moons bars."],
        "{c:?}"
    );
    let line = report.plot.as_ref().unwrap().critique.clone().unwrap();
    assert!(
        line.contains("0 of 1 fine after 1 revision(s) (issues left on fig.png"),
        "{line}"
    );

    // A model without image input: no image is sent, one note says so.
    let tmp = tempfile::tempdir().unwrap();
    let folder = setup(tmp.path());
    let model = Model::new(&["ALL_COMPLETED", &first, no_blocks()]);
    let report = run(
        &folder,
        &model,
        &DiskSink,
        &NoEvents,
        &settings(),
        &CancellationToken::new(),
    )
    .await;
    assert_eq!(model.calls(), 3);
    let line = report.plot.as_ref().unwrap().critique.clone().unwrap();
    assert_eq!(
        line,
        "figure critique skipped: scripted-model takes no images (set llm.vision = \"yes\" if it does)"
    );
}
