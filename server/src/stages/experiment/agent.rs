//! The experiment stage (v1's `perform_experiments`): the model plans runs and edits
//! `experiment.py`; aisci runs `python experiment.py --out_dir=run_i`, feeds back
//! the results or the error, then has the model fill in `plot.py`, runs it, and has
//! it describe the figures in `notes.txt`.
//!
//! v1's protocol is kept: one conversation that sees its history, SEARCH/REPLACE
//! edits to `experiment.py`, `plot.py` and `notes.txt`, the fixed command, results
//! as the Python repr of `{dataset: means}`, the stop word `ALL_COMPLETED`
//! (checked before anything is run). Beyond v1:
//! - every run gets the same attempt budget (`max_attempts`; v1: 4 for run 1, 3 after);
//!   an attempt is one model turn: a failed run, edits that do not apply, or a reply
//!   with no edits (and no `ALL_COMPLETED`) each use one;
//! - completed runs are kept when a later run exhausts its budget; the report says
//!   the stage ended partially (v1 discards the idea);
//! - the results of the last run are shown to the model (to record in notes.txt)
//!   before plotting; v1 never sends them;
//! - `final_info.json` is checked (missing, not JSON, no `means`) and the problem is
//!   fed back as a failed attempt (v1 crashes);
//! - results are shown beside the baseline's; a failure with an empty stderr shows
//!   the end of stdout; failed attempts keep their logs (see `project::runs`);
//! - edits go through an `EditSink` (the editor's buffers in the LSP), all or none,
//!   and are checked to parse as Python before they are written.
//!
//! Written in the idea folder: `run_<i>/` (completed runs only, with `stdout.txt`,
//! `stderr.txt`, `aisci_run.json`), `run_<i>.py`, failed attempts under
//! `.aisci/attempts/run_<i>/attempt_<k>/`, plot logs under `.aisci/plot/`, and
//! whatever the model's edits and `plot.py` write (`notes.txt`, `*.png`).
//! The sink must put edits on disk before `write` returns: the runner reads files
//! from disk.

use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::{EditSink, SinkError};
use crate::agent::prompt::fill;
use crate::config::ExperimentSettings;
use crate::jobs::Progress;
use crate::llm::{CallTag, Llm, LlmError};
use crate::project::journal::{Journal, StageState, STAGE_NOTES, STAGE_PLOT, STAGE_RUNS};
use crate::project::{
    completed_runs, py_repr, read_baseline, FinalInfo, Idea, IdeaFolder, ResultsError, RunRecord, Template,
};
use crate::runner::{RunError, Runner};

use super::conversation::Dialogue;
use crate::agent::conversation::{Applied, ContextPolicy, Conversation};
use crate::runs::attempt::{run_attempt, AttemptError, AttemptSpec};
use crate::stages::plot::PlotRequest;

const SYSTEM_PROMPT: &str = include_str!("prompts/system.txt");
const FIRST_PROMPT: &str = include_str!("prompts/first.txt");
const RUN_DONE_PROMPT: &str = include_str!("prompts/run_done.txt");
const LAST_RUN_DONE_PROMPT: &str = include_str!("prompts/last_run_done.txt");
const RUN_FAILED_PROMPT: &str = include_str!("prompts/run_failed.txt");
const NO_EDITS_PROMPT: &str = include_str!("prompts/no_edits.txt");
pub(crate) const EDIT_FAILED_PROMPT: &str = include_str!("prompts/edit_failed.txt");
const RESUME_PROMPT: &str = include_str!("prompts/resume.txt");

/// What an experiment call carries besides the current files (which come with every
/// turn): the task and the model's plan (the first exchange), and the last exchange (the
/// run it reports, or the failed attempt being fixed). Earlier results come in the turn.
const HISTORY: ContextPolicy = ContextPolicy::Window { head: 2, tail: 2 };

/// v1's stop word: a reply containing it ends the runs.
pub const ALL_COMPLETED: &str = "ALL_COMPLETED";
/// The files the model may edit.
pub const EDITABLE: [&str; 3] = ["experiment.py", "plot.py", "notes.txt"];
/// Where `python plot.py` writes its logs, relative to the idea folder.
pub use crate::stages::plot::{PlotReport, PLOT_LOG_DIR};

/// What the stage tells the editor as it goes (diagnostics, code lenses). All
/// methods default to doing nothing.
pub trait ExperimentEvents: Send + Sync {
    /// `python experiment.py --out_dir=run_<run>` is about to start.
    fn run_started(&self, _run: u32, _attempt: u32) {}
    /// An attempt ended (completed or not); the record is saved already.
    fn run_finished(&self, _record: &RunRecord) {}
    /// Edits from the model were written; paths relative to the idea folder.
    fn edits_applied(&self, _files: &[String]) {}
    /// A tree search's node changed state (see `StageEvent::NodeChanged`).
    fn node_changed(&self, _node: u32, _line: &str, _ended: bool) {}
}

pub struct NoEvents;
impl ExperimentEvents for NoEvents {}

/// Everything the stage works with.
pub struct ExperimentCtx<'a> {
    pub llm: &'a Llm,
    pub sink: &'a dyn EditSink,
    pub runner: &'a dyn Runner,
    pub folder: &'a IdeaFolder,
    pub idea: &'a Idea,
    pub settings: &'a ExperimentSettings,
    /// The interpreter (`RunSettings::python`).
    pub python: &'a str,
    /// Sampling for the model (aider, which v1 used, sends temperature 0).
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    pub progress: &'a dyn Progress,
    pub events: &'a dyn ExperimentEvents,
    pub cancel: &'a CancellationToken,
}

/// Why the runs ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RunsEnd {
    /// The model answered `ALL_COMPLETED`.
    AllCompleted,
    /// All `max_runs` runs completed.
    MaxRuns,
    /// This run used its whole attempt budget; earlier runs are kept.
    AttemptsExhausted {
        run: u32,
    },
    Cancelled,
    /// The tree search ran to its end (`experiment.search = "tree"`).
    Searched,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ExperimentReport {
    /// Completed runs, in order (run 1, 2, ...).
    pub completed: Vec<RunRecord>,
    /// Attempts that did not complete, in order.
    pub failed: Vec<RunRecord>,
    pub end: RunsEnd,
    /// None when plotting was not reached (cancelled, or no run completed).
    pub plot: Option<PlotReport>,
    /// The model edited notes.txt in the notes stage.
    pub notes_updated: bool,
    /// Model calls made.
    pub calls: u32,
    /// Things that went wrong without stopping the stage.
    pub warnings: Vec<String>,
    /// The search's tree, in tree mode.
    pub tree: Option<crate::stages::search::tree::Tree>,
}

impl ExperimentReport {
    fn new() -> Self {
        Self {
            completed: Vec::new(),
            failed: Vec::new(),
            end: RunsEnd::Cancelled,
            plot: None,
            notes_updated: false,
            calls: 0,
            warnings: Vec::new(),
            tree: None,
        }
    }

    /// Some runs completed but the stage did not finish (a run exhausted its
    /// attempts, or it was cancelled).
    pub fn partial(&self) -> bool {
        !self.completed.is_empty()
            && matches!(self.end, RunsEnd::AttemptsExhausted { .. } | RunsEnd::Cancelled)
    }

    pub fn cancelled(&self) -> bool {
        self.end == RunsEnd::Cancelled
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ExperimentError {
    #[error("the idea folder has no usable baseline: {0}")]
    Baseline(ResultsError),
    /// The tree search could not go on (no score in the baseline, an unreadable journal).
    #[error("the search stopped: {message}")]
    Search {
        message: String,
        report: Box<ExperimentReport>,
    },
    /// A model call failed for good; what was done before is in `report` and on disk.
    #[error("the experiment stage stopped after {} completed run(s): {source}", report.completed.len())]
    Llm {
        source: LlmError,
        report: Box<ExperimentReport>,
    },
    /// An edit could not be delivered (the editor refused it, or the file kept changing).
    #[error("the model's edit could not be written: {source}")]
    Edit {
        source: SinkError,
        report: Box<ExperimentReport>,
    },
    /// The interpreter could not be started: the model cannot fix that.
    #[error("the experiment could not be started: {source}")]
    Run {
        source: RunError,
        report: Box<ExperimentReport>,
    },
    #[error("{}: {source}", path.display())]
    Io {
        path: PathBuf,
        source: std::io::Error,
        report: Box<ExperimentReport>,
    },
}

/// Internal: what stops the stage.
#[derive(Debug)]
pub(crate) enum Fatal {
    Cancelled,
    Llm(LlmError),
    Sink(SinkError),
    Run(RunError),
    Io(PathBuf, std::io::Error),
    Search(String),
}

impl Fatal {
    pub(crate) fn io(path: &Path, e: std::io::Error) -> Fatal {
        Fatal::Io(path.to_path_buf(), e)
    }

    fn into_error(self, report: ExperimentReport) -> Result<ExperimentReport, ExperimentError> {
        let report = Box::new(report);
        Err(match self {
            Fatal::Cancelled => {
                let mut r = *report;
                r.end = RunsEnd::Cancelled;
                return Ok(r);
            }
            Fatal::Llm(source) => ExperimentError::Llm { source, report },
            Fatal::Sink(source) => ExperimentError::Edit { source, report },
            Fatal::Run(source) => ExperimentError::Run { source, report },
            Fatal::Io(path, source) => ExperimentError::Io { path, source, report },
            Fatal::Search(message) => ExperimentError::Search { message, report },
        })
    }
}

impl From<AttemptError> for Fatal {
    fn from(e: AttemptError) -> Self {
        match e {
            AttemptError::Io { path, source } => Fatal::Io(path, source),
            AttemptError::Run(e) => Fatal::Run(e),
        }
    }
}

impl From<LlmError> for Fatal {
    fn from(e: LlmError) -> Self {
        match e {
            LlmError::Cancelled => Fatal::Cancelled,
            e => Fatal::Llm(e),
        }
    }
}

/// Run the experiment stage in `ctx.folder` (made by `project::create_idea_folder`,
/// with its baseline in `run_0/`). Cancellation is not an error: the report says
/// `RunsEnd::Cancelled`, and completed runs stay on disk.
pub async fn run_experiments(ctx: &ExperimentCtx<'_>) -> Result<ExperimentReport, ExperimentError> {
    let baseline = read_baseline(&ctx.folder.root).map_err(ExperimentError::Baseline)?;
    let mut stage = Stage {
        ctx,
        conv: Dialogue {
            conv: Conversation::new(
                ctx.llm,
                ctx.cancel,
                CallTag::new("experiment", Some(&ctx.idea.name)),
                SYSTEM_PROMPT,
                ctx.temperature,
                ctx.max_tokens,
            )
            .with_policy(HISTORY),
            sink: ctx.sink,
            events: ctx.events,
            root: &ctx.folder.root,
        },
        baseline_repr: py_repr(&Value::Object(baseline.means_by_dataset())),
        baseline,
        report: ExperimentReport::new(),
    };
    // Runs completed by an earlier session (1..=k without a gap) are kept, not redone.
    stage.report.completed = earlier_runs(&ctx.folder.root);
    let result = stage.run_all().await;
    stage.report.calls = stage.conv.calls();
    match result {
        Ok(()) => Ok(stage.report),
        Err(fatal) => fatal.into_error(stage.report),
    }
}

struct Stage<'a> {
    ctx: &'a ExperimentCtx<'a>,
    conv: Dialogue<'a>,
    baseline: FinalInfo,
    baseline_repr: String,
    report: ExperimentReport,
}

/// The completed runs 1..=k of a folder, k as large as possible without a gap.
fn earlier_runs(root: &Path) -> Vec<RunRecord> {
    let mut out = Vec::new();
    for r in completed_runs(root).into_iter().filter(|r| r.run >= 1) {
        if r.run as usize != out.len() + 1 {
            break;
        }
        out.push(r);
    }
    out
}

impl Stage<'_> {
    /// Notes where the stage is in the folder's journal; a journal that cannot be
    /// written costs only the resumption, not the stage.
    fn journal(&self, stage: &str, state: StageState, attempts: u32, detail: Option<String>) {
        if let Err(e) = Journal::set(&self.ctx.folder.root, stage, state, attempts, detail) {
            tracing::warn!(folder = %self.ctx.folder.root.display(), %e, "cannot write the stage journal");
        }
    }

    async fn run_all(&mut self) -> Result<(), Fatal> {
        let journal = Journal::load(&self.ctx.folder.root);
        self.report.end = match self.ctx.settings.search {
            crate::config::SearchMode::Line => self.runs(&journal).await?,
            crate::config::SearchMode::Tree => self.search().await?,
        };
        let end = self.report.end;
        let (state, detail) = match end {
            RunsEnd::AllCompleted => (StageState::Done, "all_completed".to_string()),
            RunsEnd::MaxRuns => (StageState::Done, "max_runs".to_string()),
            RunsEnd::Searched => (StageState::Done, "searched".to_string()),
            RunsEnd::AttemptsExhausted { run } => {
                (StageState::Failed, format!("run {run} used up its attempts"))
            }
            RunsEnd::Cancelled => (StageState::Cancelled, "cancelled".to_string()),
        };
        let runs = self.report.completed.len() as u32;
        self.journal(STAGE_RUNS, state, runs, Some(detail));
        if end == RunsEnd::Cancelled || (self.report.completed.is_empty() && end != RunsEnd::AllCompleted) {
            return Ok(());
        }
        let plot = if journal.is_done(STAGE_PLOT, None) {
            // Done in an earlier session: its figures are there.
            PlotReport {
                succeeded: true,
                attempts: 0,
                figures: crate::stages::plot::png_state(&self.ctx.folder.root)
                    .into_keys()
                    .collect(),
                error: None,
                no_figure: None,
                critique: None,
            }
        } else {
            self.journal(STAGE_PLOT, StageState::Running, 0, None);
            let req = PlotRequest {
                root: &self.ctx.folder.root,
                completed: &self.report.completed,
                settings: self.ctx.settings,
                python: self.ctx.python,
                runner: self.ctx.runner,
                progress: self.ctx.progress,
                cancel: self.ctx.cancel,
                llm: Some(self.ctx.llm),
                idea: Some(&self.ctx.idea.name),
            };
            let plot = crate::stages::plot::run(&req, &mut self.conv).await?;
            let state = if plot.succeeded {
                StageState::Done
            } else {
                StageState::Failed
            };
            self.journal(STAGE_PLOT, state, plot.attempts, plot.error.clone());
            plot
        };
        self.report.plot = Some(plot);
        if journal.is_done(STAGE_NOTES, None) {
            return Ok(());
        }
        self.journal(STAGE_NOTES, StageState::Running, 0, None);
        let root = &self.ctx.folder.root;
        let catalog = crate::project::figures::FigureCatalog::for_folder(root);
        let notes = crate::stages::notes::run(root, &catalog, &mut self.conv, self.ctx.progress).await?;
        self.report.notes_updated = notes.updated;
        let state = match notes.warning {
            Some(w) => {
                self.report.warnings.push(w);
                StageState::Failed
            }
            None => StageState::Done,
        };
        self.journal(STAGE_NOTES, state, 1, None);
        Ok(())
    }

    /// The tree search instead of the line of runs; its best line becomes the
    /// folder's completed runs.
    async fn search(&mut self) -> Result<RunsEnd, Fatal> {
        use crate::stages::search::{run_search, SearchError};
        let c = self.ctx;
        self.journal(STAGE_RUNS, StageState::Running, 0, Some("search".into()));
        let report = match run_search(c).await {
            Ok(r) => r,
            Err(SearchError::Cancelled) => return Ok(RunsEnd::Cancelled),
            Err(SearchError::Llm(e)) => return Err(Fatal::from(e)),
            Err(SearchError::Attempt(e)) => return Err(Fatal::from(e)),
            Err(SearchError::Sink(e)) => return Err(Fatal::Sink(e)),
            Err(SearchError::Io(p, e)) => return Err(Fatal::Io(p, e)),
            Err(SearchError::Input(m)) => return Err(Fatal::Search(m)),
        };
        if !report.promoted.is_empty() {
            c.events.edits_applied(&["experiment.py".to_string()]);
        }
        self.report.completed = report.promoted;
        self.report.warnings.extend(report.warnings);
        let cancelled = report.cancelled;
        self.report.tree = Some(report.tree);
        Ok(if cancelled {
            RunsEnd::Cancelled
        } else {
            RunsEnd::Searched
        })
    }

    /// The run loop; see the module comment for the rules. Runs an earlier session
    /// completed (in `report.completed` already) are not redone: the loop goes on after
    /// them, telling the model their results, and not at all once the journal says the
    /// model ended the runs.
    async fn runs(&mut self, journal: &Journal) -> Result<RunsEnd, Fatal> {
        let s = self.ctx.settings;
        let max_runs = s.max_runs.max(1);
        let max_attempts = s.max_attempts.max(1);
        let done = self.report.completed.len() as u32;
        if journal.is_done(STAGE_RUNS, Some("all_completed")) {
            return Ok(RunsEnd::AllCompleted);
        }
        if done >= max_runs {
            return Ok(RunsEnd::MaxRuns);
        }
        let mut prompt = fill(
            FIRST_PROMPT,
            &[
                ("title", &self.ctx.idea.title),
                ("experiment", &self.ctx.idea.experiment),
                ("max_runs", &max_runs.to_string()),
                ("baseline", &self.baseline_repr),
            ],
        );
        if done > 0 {
            let results = results_lines(self.report.completed.iter());
            prompt.push_str(&fill(
                RESUME_PROMPT,
                &[
                    ("done", &done.to_string()),
                    ("results", &results.join("\n")),
                    ("next", &(done + 1).to_string()),
                ],
            ));
        }
        let mut run = done + 1;
        let mut attempt = 0;
        loop {
            self.ctx.progress.report(
                &format!("Experiment: run {run}/{max_runs}, asking the model"),
                Some((run - 1).min(max_runs) * 100 / max_runs),
            );
            let reply = match self.conv.ask(prompt).await {
                Ok(r) => r,
                Err(Fatal::Cancelled) => return Ok(RunsEnd::Cancelled),
                Err(e) => return Err(e),
            };
            let done = reply.contains(ALL_COMPLETED);
            if done || run > max_runs {
                // Notes for the last run usually come with the stop word; nothing is run.
                self.apply_closing(&reply).await?;
                return Ok(if done {
                    RunsEnd::AllCompleted
                } else {
                    RunsEnd::MaxRuns
                });
            }
            attempt += 1;
            let attempt_note = format!("attempt {attempt} of {max_attempts} for run {run}");
            let failure = match self.conv.apply(&reply).await? {
                Applied::NoBlocks(problems) => {
                    let problems = if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", problems.join("; "))
                    };
                    fill(
                        NO_EDITS_PROMPT,
                        &[
                            ("problems", &problems),
                            ("attempt", &attempt.to_string()),
                            ("max_attempts", &max_attempts.to_string()),
                            ("run", &run.to_string()),
                        ],
                    )
                }
                Applied::Failed(feedback) => fill(
                    EDIT_FAILED_PROMPT,
                    &[("attempt_note", &attempt_note), ("feedback", &feedback)],
                ),
                Applied::Done(_) => match self.run_once(run, attempt).await? {
                    None => return Ok(RunsEnd::Cancelled),
                    Some(Ok(results)) => {
                        let template = if run == max_runs {
                            LAST_RUN_DONE_PROMPT
                        } else {
                            RUN_DONE_PROMPT
                        };
                        let earlier = self.earlier_results(run);
                        prompt = fill(
                            template,
                            &[
                                ("earlier", &earlier),
                                ("run", &run.to_string()),
                                ("next", &(run + 1).to_string()),
                                ("runs_left", &(max_runs - run).to_string()),
                                ("results", &results),
                                ("baseline", &self.baseline_repr),
                            ],
                        );
                        run += 1;
                        attempt = 0;
                        continue;
                    }
                    Some(Err(error)) => fill(
                        RUN_FAILED_PROMPT,
                        &[
                            ("run", &run.to_string()),
                            ("attempt", &attempt.to_string()),
                            ("max_attempts", &max_attempts.to_string()),
                            ("error", &error),
                        ],
                    ),
                },
            };
            if attempt >= max_attempts {
                return Ok(RunsEnd::AttemptsExhausted { run });
            }
            prompt = failure;
        }
    }

    /// The results of the completed runs before `run`, for a turn whose history window
    /// no longer holds the turns that reported them ("" before run 2).
    fn earlier_results(&self, run: u32) -> String {
        let lines = results_lines(self.report.completed.iter().filter(|r| r.run < run));
        if lines.is_empty() {
            String::new()
        } else {
            format!(
                "\nThe earlier runs (means per dataset):\n\n{}\n",
                lines.join("\n")
            )
        }
    }

    /// One attempt at `run`. None: cancelled. Some(Ok(results repr)) or Some(Err(message)).
    async fn run_once(&mut self, run: u32, attempt: u32) -> Result<Option<Result<String, String>>, Fatal> {
        let s = self.ctx.settings;
        self.ctx.progress.report(
            &format!(
                "Experiment: run {run}/{}, attempt {attempt}/{}",
                s.max_runs.max(1),
                s.max_attempts.max(1)
            ),
            Some((run - 1) * 100 / s.max_runs.max(1)),
        );
        self.ctx.events.run_started(run, attempt);
        self.journal(
            STAGE_RUNS,
            StageState::Running,
            attempt,
            Some(format!("run {run}")),
        );
        let spec = AttemptSpec {
            root: &self.ctx.folder.root,
            run,
            attempt,
            python: self.ctx.python,
            timeout_secs: s.timeout_secs,
            tail_chars: s.stderr_tail_chars as usize,
            expected: Some(&self.baseline),
            origin: crate::project::RunOrigin::Experiment,
            env: Vec::new(),
        };
        let done = run_attempt(&spec, self.ctx.runner, &crate::runner::NoEvents, self.ctx.cancel).await?;
        self.ctx.events.run_finished(&done.record);
        let cancelled = done.record.exit == Some(crate::project::RunExit::Cancelled);
        let outcome = if done.record.completed {
            let results = py_repr(done.record.means.as_ref().unwrap_or(&Value::Null));
            self.report.completed.push(done.record);
            Ok(results)
        } else {
            let msg = done.feedback.clone().unwrap_or_default();
            self.report.failed.push(done.record);
            Err(msg)
        };
        Ok((!cancelled).then_some(outcome))
    }

    /// Edits in the reply that ends the runs are applied but nothing is run; if
    /// they fail, the stage goes on (the model is not asked again here).
    async fn apply_closing(&mut self, reply: &str) -> Result<(), Fatal> {
        match self.conv.apply(reply).await? {
            Applied::Failed(feedback) => self.report.warnings.push(format!(
                "edits in the model's closing reply were not applied: {feedback}"
            )),
            Applied::NoBlocks(_) | Applied::Done(_) => {}
        }
        Ok(())
    }
}

/// `Run <i>: <means per dataset>` for each run.
fn results_lines<'r>(runs: impl Iterator<Item = &'r RunRecord>) -> Vec<String> {
    runs.map(|r| {
        format!(
            "Run {}: {}",
            r.run,
            py_repr(r.means.as_ref().unwrap_or(&Value::Null))
        )
    })
    .collect()
}

#[derive(Debug, thiserror::Error)]
pub enum BaselineError {
    /// The run failed or its results are unusable; the record is saved in the
    /// attempt folder (`.aisci/attempts/run_0/attempt_1/`).
    #[error("the baseline run failed: {message}")]
    Failed { message: String, record: Box<RunRecord> },
    #[error("the baseline run was cancelled")]
    Cancelled { record: Box<RunRecord> },
    #[error("the baseline could not be started: {0}")]
    Run(RunError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// `python experiment.py --out_dir=run_0` in the template itself (no model), for a
/// template without `run_0/final_info.json`. The results are checked as for any run;
/// on success `run_0/aisci_run.json` records it.
pub async fn run_baseline(
    template: &Template,
    runner: &dyn Runner,
    settings: &ExperimentSettings,
    python: &str,
    cancel: &CancellationToken,
) -> Result<RunRecord, BaselineError> {
    let spec = AttemptSpec {
        root: &template.root,
        run: 0,
        attempt: 1,
        python,
        timeout_secs: settings.timeout_secs,
        tail_chars: settings.stderr_tail_chars as usize,
        expected: None,
        origin: crate::project::RunOrigin::Baseline,
        env: Vec::new(),
    };
    let done = run_attempt(&spec, runner, &crate::runner::NoEvents, cancel)
        .await
        .map_err(|f| match f {
            AttemptError::Run(e) => BaselineError::Run(e),
            AttemptError::Io { path, source } => BaselineError::Io { path, source },
        })?;
    if done.record.completed {
        return Ok(done.record);
    }
    if done.record.exit == Some(crate::project::RunExit::Cancelled) {
        return Err(BaselineError::Cancelled {
            record: Box::new(done.record),
        });
    }
    Err(BaselineError::Failed {
        message: done.feedback.unwrap_or_default(),
        record: Box::new(done.record),
    })
}
