//! Stages as the CLI and the language server run them: load the project's inputs,
//! build the model client from settings, run the agent, summarise what it cost.

pub mod experiment;
pub mod ideas;
pub mod novelty;
pub mod review;
pub mod writeup;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::EditSink;
use crate::config::{LlmSettings, ProviderKind, Settings};
use crate::fsutil::write_atomic;
use crate::jobs::Progress;
use crate::literature::{LitError, Literature, PaperSearch};
use crate::llm::{self, CallRecord, Llm, LlmError, Totals};
use crate::project::{Idea, PromptJson, Template};
use crate::project::{IdeaFolder, RunRecord};
use crate::runner::local::LocalRunner;
use crate::runner::{Attachment, Runner, SlotScheduler, SlurmRunner};
use crate::runs::{Reattacher, ResumeCtx, Resumed};
use crate::stages::experiment::agent::{
    run_baseline, run_experiments, BaselineError, ExperimentCtx, ExperimentError, ExperimentEvents,
    ExperimentReport, RunsEnd,
};
use crate::stages::ideas::agent::{generate_ideas, IdeaError, IdeaInputs, IdeaOptions, IdeaReport};
use crate::stages::novelty::agent::{
    check_archive, NoveltyError, NoveltyInputs, NoveltyOptions, NoveltyReport,
};

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{} is not a template: it needs experiment.py and prompt.json", .0.display())]
    NotATemplate(PathBuf),
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Ideas(#[from] IdeaError),
    #[error(transparent)]
    Novelty(#[from] NoveltyError),
    #[error(transparent)]
    Literature(#[from] LitError),
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error("{}: no idea named {name} in its ideas.json or notes.txt", folder.display())]
    UnknownIdea { folder: PathBuf, name: String },
}

/// Relative paths in the model settings (the replay recording) are relative to the
/// project they came from.
pub fn resolve_llm_paths(mut llm: LlmSettings, root: &Path) -> LlmSettings {
    if let Some(p) = &llm.replay_file {
        if p.is_relative() {
            llm.replay_file = Some(root.join(p));
        }
    }
    if llm.replay_file.is_some() && llm.provider == ProviderKind::Auto && llm.model == "replay" {
        llm.provider = ProviderKind::Replay;
    }
    llm
}

/// The model client for a project, or the one clear error (missing key, bad
/// recording) before anything is spent.
pub fn llm_for(settings: &Settings, root: &Path) -> Result<Llm, LlmError> {
    llm::from_process_env(&resolve_llm_paths(settings.llm.clone(), root))
}

/// The literature engines for these settings. One instance per distinct
/// literature configuration is kept for the whole process, so every job shares its
/// circuit breakers and in-memory cache (the rate limiters are process-wide anyway).
pub fn literature_for(settings: &Settings) -> Result<Arc<Literature>, LitError> {
    static SHARED: Mutex<Option<(String, Arc<Literature>)>> = Mutex::new(None);
    let fingerprint = serde_json::to_string(&settings.literature).unwrap_or_default();
    let mut slot = SHARED.lock().unwrap();
    if let Some((fp, lit)) = slot.as_ref() {
        if *fp == fingerprint {
            return Ok(lit.clone());
        }
    }
    let lit = Arc::new(Literature::from_settings(&settings.literature, &llm::ProcessEnv)?);
    *slot = Some((fingerprint, lit.clone()));
    Ok(lit)
}

/// Literature search that passes the engines' notices ("S2 is rate limiting,
/// switching to OpenAlex") on as soon as a search produced them, so the user hears
/// of a switch while the check runs, once.
pub struct NoticedSearch<'a> {
    pub lit: &'a Literature,
    pub on_notice: &'a (dyn Fn(String) + Send + Sync),
}

#[async_trait::async_trait]
impl PaperSearch for NoticedSearch<'_> {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<crate::literature::SearchResult, LitError> {
        let out = self.lit.search(query, limit, cancel).await;
        for n in self.lit.notices() {
            (self.on_notice)(n.to_string());
        }
        out
    }
}

fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| StageError::Input {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| StageError::Input {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// What a finished idea run reports.
pub struct IdeasOutcome {
    pub report: IdeaReport,
    pub totals: Totals,
    pub provider: String,
    pub model: String,
    /// Models that answered without a known price (their calls count as $0).
    pub unpriced_models: Vec<String>,
}

impl IdeasOutcome {
    /// One paragraph for a person: what came out and what it cost.
    pub fn summary(&self) -> String {
        let r = &self.report;
        let mut s = format!("{} new idea(s) in {}", r.accepted.len(), r.ideas_path.display());
        if !r.dropped.is_empty() {
            let reasons: Vec<String> = r
                .dropped
                .iter()
                .map(|d| {
                    format!(
                        "#{} {}: {}",
                        d.index,
                        d.name.as_deref().unwrap_or("(unnamed)"),
                        d.reason
                    )
                })
                .collect();
            s.push_str(&format!("; {} dropped ({})", r.dropped.len(), reasons.join("; ")));
        }
        if r.cancelled {
            s.push_str("; cancelled, ideas finished before that are kept");
        }
        s.push_str(&format!(
            ". {}",
            cost_line(&self.totals, &self.provider, &self.model)
        ));
        s
    }
}

/// "12 calls, 34,567 input (1,200 cached) + 2,345 output tokens, $0.1234 (gpt-4o via openai)".
pub fn cost_line(t: &Totals, provider: &str, model: &str) -> String {
    let recording = if provider == "replay" {
        ", a recorded conversation, not a live model"
    } else {
        ""
    };
    format!(
        "{} model call(s), {} input ({} cached) + {} output tokens, ${:.4} ({model} via {provider}{recording})",
        t.calls,
        group(t.usage.input_tokens),
        group(t.usage.cached_input_tokens),
        group(t.usage.output_tokens),
        t.cost_usd
    )
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Loads what every model stage of a template reads: prompt.json and the code
/// (the editor's buffer when given).
fn prompt_and_code(
    template: &Template,
    experiment_text: Option<String>,
) -> Result<(PromptJson, String), StageError> {
    let prompt: PromptJson = read_json(&template.prompt_json())?;
    let code = match experiment_text {
        Some(t) => t,
        None => std::fs::read_to_string(template.experiment_py()).map_err(|e| StageError::Input {
            path: template.experiment_py(),
            message: e.to_string(),
        })?,
    };
    Ok((prompt, code))
}

/// Records what `llm` spent under the project, whatever the stage's outcome.
fn record_usage(root: &Path, llm: &Llm) {
    if let Err(e) = append_usage(root, &llm.records()) {
        tracing::warn!("could not record usage in {}: {e}", usage_path(root).display());
    }
}

/// What a finished novelty run reports.
pub struct NoveltyOutcome {
    pub report: NoveltyReport,
    pub totals: Totals,
    pub provider: String,
    pub model: String,
}

impl NoveltyOutcome {
    pub fn summary(&self) -> String {
        let r = &self.report;
        let checked: Vec<_> = r.results.iter().filter(|v| v.verdict.novel.is_some()).collect();
        let novel = r.novel();
        let mut s = format!(
            "novelty checked for {} idea(s): {} novel",
            checked.len(),
            novel.len()
        );
        if !novel.is_empty() {
            s.push_str(&format!(" ({})", novel.join(", ")));
        }
        let unchecked: Vec<String> = r
            .results
            .iter()
            .filter(|v| v.verdict.novel.is_none())
            .map(|v| {
                format!(
                    "{}: {}",
                    v.name,
                    v.verdict.reason.trim_start_matches("not checked: ")
                )
            })
            .collect();
        if !unchecked.is_empty() {
            s.push_str(&format!("; not checked: {}", unchecked.join("; ")));
        }
        if !r.skipped.is_empty() {
            s.push_str(&format!("; {} already checked, skipped", r.skipped.len()));
        }
        if !r.unknown.is_empty() {
            s.push_str(&format!("; no such idea: {}", r.unknown.join(", ")));
        }
        if r.cancelled {
            s.push_str("; cancelled, verdicts finished before that are kept");
        }
        s.push_str(&format!(
            ". {}",
            cost_line(&self.totals, &self.provider, &self.model)
        ));
        s
    }
}

/// Checks the novelty of the ideas in `template`'s ideas.json (`only`: these
/// names; `force`: also ideas already checked), writing each verdict as it comes.
#[allow(clippy::too_many_arguments)] // the stage's distinct inputs
pub async fn run_novelty(
    template: &Template,
    settings: &Settings,
    llm: &Llm,
    search: &dyn PaperSearch,
    experiment_text: Option<String>,
    only: Option<&[String]>,
    force: bool,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<NoveltyOutcome, StageError> {
    let (prompt, code) = prompt_and_code(template, experiment_text)?;
    let opts = NoveltyOptions::from_settings(&settings.novelty, &settings.llm);
    let inputs = NoveltyInputs {
        prompt: &prompt,
        experiment_py: &code,
    };
    let result = check_archive(
        llm,
        search,
        inputs,
        &template.ideas_json(),
        &opts,
        only,
        force,
        progress,
        cancel,
    )
    .await;
    record_usage(&template.root, llm);
    Ok(NoveltyOutcome {
        report: result?,
        totals: llm.ledger_snapshot().total,
        provider: llm.provider().name().to_owned(),
        model: llm.provider().model().to_owned(),
    })
}

/// The runner for experiments: the configured output cap and run-folder limit, and
/// every variable that names a key in the settings kept out of the experiment's
/// environment.
pub fn runner_for(settings: &Settings) -> LocalRunner {
    LocalRunner::from_settings(&settings.experiment)
        .with_secret_names(secret_names(settings))
        .with_run_settings(&settings.run)
}

/// Every variable the settings name as holding a key.
fn secret_names(settings: &Settings) -> Vec<String> {
    let secrets = [
        settings.llm.api_key_env.clone(),
        Some(settings.literature.s2_api_key_env.clone()),
        Some(settings.literature.openalex_api_key_env.clone()),
    ];
    let named = settings.secret_env_names.iter().cloned();
    secrets.into_iter().flatten().chain(named).collect()
}

/// The Slurm runner for these settings (`[run.slurm]`), keeping the same secrets out of
/// jobs as [`runner_for`].
pub fn slurm_runner_for(settings: &Settings) -> SlurmRunner {
    SlurmRunner::from_run_settings(&settings.run).with_secret_names(secret_names(settings))
}

/// The runner `run.runner` chooses, shared by every stage of this process: the GPU
/// queue in front of the local runner, or Slurm, which queues jobs itself.
pub async fn shared_runner(settings: &Settings) -> Arc<dyn Runner> {
    match settings.run.runner {
        crate::config::RunnerKind::Slurm => Arc::new(slurm_runner_for(settings)),
        crate::config::RunnerKind::Local => scheduled_runner(settings).await,
    }
}

/// The process's GPU queue for these run settings: every stage started by this
/// process (editor jobs, several ideas) waits for a free GPU slot in one FIFO queue.
pub async fn scheduled_runner(settings: &Settings) -> Arc<SlotScheduler<LocalRunner>> {
    type Shared = Mutex<Option<(String, Arc<SlotScheduler<LocalRunner>>)>>;
    static SHARED: Shared = Mutex::new(None);
    let fingerprint = serde_json::to_string(&(
        &settings.run,
        &settings.experiment,
        &settings.secret_env_names,
        &settings.llm.api_key_env,
        &settings.literature.s2_api_key_env,
        &settings.literature.openalex_api_key_env,
    ))
    .unwrap_or_default();
    if let Some((fp, s)) = SHARED.lock().unwrap().as_ref() {
        if *fp == fingerprint {
            return s.clone();
        }
    }
    let found = crate::runner::gpus::detect(&settings.run).await;
    let scheduler = Arc::new(SlotScheduler::for_gpus(
        runner_for(settings),
        &found.gpus,
        &settings.run,
    ));
    let mut slot = SHARED.lock().unwrap();
    match slot.as_ref() {
        // Another stage built it while we were detecting: share theirs.
        Some((fp, s)) if *fp == fingerprint => s.clone(),
        _ => {
            *slot = Some((fingerprint, scheduler.clone()));
            scheduler
        }
    }
}

/// How to launch a single run.
#[derive(Default)]
pub struct LaunchOptions {
    /// Wall-clock limit; None = `experiment.timeout_secs`.
    pub timeout_secs: Option<u64>,
    /// Also copy the run's output to this process's stdout/stderr (the CLI).
    pub echo: bool,
    /// Queue events (queued, started on a GPU) for whoever shows them.
    pub observer: Option<crate::runner::scheduler::Observer>,
}

/// A launched run's result.
pub struct Launched {
    pub record: RunRecord,
    /// As a shell reports it: the script's code, 124 timeout, 128+N signal, 125
    /// run-folder limit, 130 cancelled.
    pub exit_code: u8,
    /// Which GPUs (or CPU) the queue had, in words.
    pub gpus: String,
}

/// `python experiment.py --out_dir=run_i` for the next free `run_i` of `root`
/// (outside the agent loop): through the GPU queue and limits of every run, with the
/// run record and env.json written, whatever the outcome.
pub async fn launch_run(
    root: &Path,
    s: &Settings,
    opts: LaunchOptions,
    cancel: &CancellationToken,
) -> Result<Launched, StageError> {
    use crate::project::{RunOrigin, RunState};
    use crate::runner::{facts, ExitKind, RunEvent, RunSpec};
    use crate::runs::finish::{complete, ended_without_status};

    let input = |message: String| StageError::Input {
        path: root.to_path_buf(),
        message,
    };
    if !root.join("experiment.py").is_file() {
        return Err(input(format!("{} has no experiment.py", root.display())));
    }
    let timeout_secs = opts.timeout_secs.unwrap_or(s.experiment.timeout_secs);
    if timeout_secs == 0 {
        return Err(input("the timeout must be at least 1 second".into()));
    }
    let slurm = s.run.runner == crate::config::RunnerKind::Slurm;
    let found = match slurm {
        true => None,
        false => Some(crate::runner::gpus::detect(&s.run).await),
    };
    let observer = opts.observer;
    let runner: Arc<dyn Runner> = match &found {
        None => Arc::new(slurm_runner_for(s).with_echo(opts.echo)),
        Some(found) if opts.echo || observer.is_some() => {
            let mut sched = SlotScheduler::for_gpus(runner_for(s).with_echo(opts.echo), &found.gpus, &s.run);
            if let Some(o) = observer.clone() {
                sched = sched.with_observer(o);
            }
            Arc::new(sched)
        }
        Some(_) => scheduled_runner(s).await,
    };
    // Slurm queues the job itself: its queue position goes to the same observer.
    let slurm_job: Mutex<Option<String>> = Mutex::new(None);
    let events = |e: RunEvent| match e {
        RunEvent::Queued { ahead } if slurm => {
            if let Some(o) = &observer {
                o(&crate::runner::QueueEvent::Queued { run: 0, ahead });
            }
        }
        RunEvent::Started(Attachment::Slurm(a)) => *slurm_job.lock().unwrap() = Some(a.job_id),
        _ => {}
    };

    let run = (1u32..)
        .find(|i| !root.join(format!("run_{i}")).exists())
        .expect("a free run number");
    let run_name = format!("run_{run}");
    let run_dir = root.join(&run_name);
    std::fs::create_dir(&run_dir).map_err(|e| input(format!("{}: {e}", run_dir.display())))?;
    let out_arg = format!("--out_dir={run_name}");
    let spec = RunSpec {
        program: s.run.python.clone(),
        args: vec!["experiment.py".into(), out_arg.clone()],
        cwd: root.to_path_buf(),
        timeout: std::time::Duration::from_secs(timeout_secs),
        stdout_path: run_dir.join("stdout.txt"),
        stderr_path: run_dir.join("stderr.txt"),
        env: Vec::new(),
        watch_dir: Some(run_dir.clone()),
    };
    let record = RunRecord::queued(
        run,
        1,
        vec![s.run.python.clone(), "experiment.py".into(), out_arg],
        RunOrigin::Launch,
        timeout_secs,
    );
    let tracked = crate::runs::run_tracked(root, record, runner.as_ref(), &spec, &events, cancel).await;
    let mut record = tracked.record;
    let io = |e: std::io::Error| input(e.to_string());
    let outcome = match tracked.result {
        Ok(o) => o,
        Err(e) => {
            ended_without_status(&mut record, RunState::Failed, e.to_string());
            record.save(root).map_err(io)?;
            return Err(input(e.to_string()));
        }
    };
    complete(&mut record, &outcome, &run_dir, None);
    let exit_code = match outcome.exit {
        ExitKind::Success => 0,
        ExitKind::Failed(c) => u8::try_from(c).ok().filter(|c| *c != 0).unwrap_or(1),
        ExitKind::Signaled(n) => 128u8.saturating_add(n.clamp(0, 127) as u8),
        ExitKind::TimedOut => 124,
        ExitKind::Cancelled => 130,
        ExitKind::LimitExceeded(_) => 125,
    };
    record.save(root).map_err(io)?;
    let env = facts::collect(&s.run.python, outcome.cuda_visible_devices.as_deref()).await;
    facts::write(&run_dir, &env).map_err(io)?;
    drop(tracked.live);
    Ok(Launched {
        record,
        exit_code,
        gpus: match found {
            Some(found) => found.describe(),
            None => describe_slurm_job(
                slurm_job.lock().unwrap().as_deref(),
                &s.run.slurm,
                outcome.cuda_visible_devices.as_deref(),
            ),
        },
    })
}

/// Watches runs again, each with the runner that started it.
struct ReattachBoth {
    local: Arc<dyn Runner>,
    slurm: Arc<dyn Runner>,
}

impl Reattacher for ReattachBoth {
    fn runner_for(&self, attachment: &Attachment) -> Option<Arc<dyn Runner>> {
        Some(match attachment {
            Attachment::Local(_) => self.local.clone(),
            Attachment::Slurm(_) => self.slurm.clone(),
        })
    }
}

/// The runners that can watch again the runs an earlier aisci started (local runs by
/// pid and start time, Slurm jobs by job id), whatever `run.runner` says now.
pub fn reattacher_for(settings: &Settings) -> impl Reattacher {
    ReattachBoth {
        local: Arc::new(runner_for(settings)),
        slurm: Arc::new(slurm_runner_for(settings)),
    }
}

/// Settles the runs an earlier aisci left queued or running in `folder` (see
/// `runs::resume`): queued ones are marked failed, running ones watched to their end.
pub async fn resume_runs(
    folder: &Path,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Vec<std::io::Result<Resumed>> {
    let runners = reattacher_for(settings);
    let ctx = ResumeCtx {
        runners: &runners,
        python: &settings.run.python,
        cancel,
    };
    crate::runs::resume_folder(folder, &ctx).await
}

/// A Slurm run's placement, in words.
fn describe_slurm_job(
    job: Option<&str>,
    slurm: &crate::config::SlurmSettings,
    cuda_visible_devices: Option<&str>,
) -> String {
    let job = job.map_or_else(
        || "Slurm job (not submitted)".to_string(),
        |j| format!("Slurm job {j}"),
    );
    let gpus = match (slurm.gpus_per_run, cuda_visible_devices) {
        (0, _) => "no GPU requested".to_string(),
        (n, Some(cvd)) => format!("{n} GPU(s), CUDA_VISIBLE_DEVICES={cvd}"),
        (n, None) => format!("{n} GPU(s)"),
    };
    format!("{job}: {gpus}")
}

/// The idea named `name` in a template's ideas.json, else in its seed_ideas.json.
pub fn idea_in_template(template: &Template, name: &str) -> Result<Idea, StageError> {
    for path in [template.ideas_json(), template.seed_ideas_json()] {
        let Ok(entries) = crate::project::read_ideas_archive(&path) else {
            continue;
        };
        if let Some(v) = entries
            .iter()
            .find(|e| crate::project::entry_name(e) == Some(name))
        {
            return Idea::from_value(v).map_err(|issues| StageError::Input {
                path: path.clone(),
                message: format!(
                    "idea {name} is not usable: {}",
                    issues
                        .iter()
                        .map(|i| i.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            });
        }
    }
    Err(StageError::UnknownIdea {
        folder: template.root.clone(),
        name: name.to_owned(),
    })
}

/// The idea an idea folder implements: from the archive copied into it (by the
/// folder's Name), else rebuilt from the title and description in notes.txt.
pub fn idea_of_folder(folder: &IdeaFolder) -> Result<Idea, StageError> {
    let unknown = || StageError::UnknownIdea {
        folder: folder.root.clone(),
        name: folder.name.clone(),
    };
    if let Ok(entries) = crate::project::read_ideas_archive(&folder.root.join("ideas.json")) {
        if let Some(v) = entries
            .iter()
            .find(|e| crate::project::entry_name(e) == Some(folder.name.as_str()))
        {
            if let Ok(idea) = Idea::from_value(v) {
                return Ok(idea);
            }
        }
    }
    let notes = std::fs::read_to_string(folder.root.join("notes.txt")).map_err(|_| unknown())?;
    let field = |prefix: &str| {
        notes
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .map(str::to_owned)
    };
    let (Some(title), Some(experiment)) = (field("# Title:"), field("# Experiment description:")) else {
        return Err(unknown());
    };
    let v = serde_json::json!({
        "Name": folder.name, "Title": title, "Experiment": experiment,
        "Interestingness": 5, "Feasibility": 5, "Novelty": 5
    });
    Idea::from_value(&v).map_err(|_| unknown())
}

/// What a finished experiment stage reports.
pub struct ExperimentOutcome {
    pub report: ExperimentReport,
    pub totals: Totals,
    pub provider: String,
    pub model: String,
}

impl ExperimentOutcome {
    pub fn summary(&self) -> String {
        let r = &self.report;
        let done: Vec<String> = r.completed.iter().map(|c| format!("run_{}", c.run)).collect();
        let mut s = match done.len() {
            0 => "no run completed".to_owned(),
            n => format!("{n} run(s) completed ({})", done.join(", ")),
        };
        if !r.failed.is_empty() {
            s.push_str(&format!(", {} failed attempt(s)", r.failed.len()));
        }
        s.push_str(match r.end {
            RunsEnd::AllCompleted => "; the model finished (ALL_COMPLETED)",
            RunsEnd::MaxRuns => "; all runs used",
            RunsEnd::AttemptsExhausted { .. } => {
                "; stopped: a run used up its attempts (completed runs are kept)"
            }
            RunsEnd::Cancelled => "; cancelled (completed runs are kept)",
        });
        if let Some(p) = &r.plot {
            if p.succeeded {
                s.push_str(&format!(
                    "; plots: {}",
                    if p.figures.is_empty() {
                        "none".into()
                    } else {
                        p.figures.join(", ")
                    }
                ));
            } else {
                s.push_str(&format!("; plotting failed after {} attempt(s)", p.attempts));
            }
        }
        if r.notes_updated {
            s.push_str("; notes.txt updated");
        }
        for w in &r.warnings {
            s.push_str(&format!("; {w}"));
        }
        s.push_str(&format!(
            ". {}",
            cost_line(&self.totals, &self.provider, &self.model)
        ));
        s
    }
}

/// Everything an experiment stage needs besides the folder and the idea.
pub struct ExperimentDeps<'a> {
    pub llm: &'a Llm,
    pub sink: &'a dyn EditSink,
    pub events: &'a dyn ExperimentEvents,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancellationToken,
}

/// Runs the experiment loop, plotting and notes in `folder`.
pub async fn run_experiment(
    folder: &IdeaFolder,
    idea: &Idea,
    settings: &Settings,
    deps: ExperimentDeps<'_>,
) -> Result<ExperimentOutcome, StageError> {
    let runner = shared_runner(settings).await;
    let ctx = ExperimentCtx {
        llm: deps.llm,
        sink: deps.sink,
        runner: runner.as_ref(),
        folder,
        idea,
        settings: &settings.experiment,
        python: &settings.run.python,
        temperature: Some(settings.llm.temperature),
        max_tokens: settings.llm.max_tokens,
        progress: deps.progress,
        events: deps.events,
        cancel: deps.cancel,
    };
    let result = run_experiments(&ctx).await;
    record_usage(&folder.root, deps.llm);
    Ok(ExperimentOutcome {
        report: result?,
        totals: deps.llm.ledger_snapshot().total,
        provider: deps.llm.provider().name().to_owned(),
        model: deps.llm.provider().model().to_owned(),
    })
}

/// `python experiment.py --out_dir=run_0` in the template (no model).
pub async fn baseline(
    template: &Template,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Result<RunRecord, StageError> {
    let runner = shared_runner(settings).await;
    Ok(run_baseline(
        template,
        runner.as_ref(),
        &settings.experiment,
        &settings.run.python,
        cancel,
    )
    .await?)
}

/// Generates ideas for `template`, appending them to its `ideas.json`.
/// `experiment_text` is the editor's buffer when open (saved or not).
pub async fn run_ideas(
    template: &Template,
    settings: &Settings,
    llm: &Llm,
    experiment_text: Option<String>,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<IdeasOutcome, StageError> {
    let (prompt, experiment_py) = prompt_and_code(template, experiment_text)?;
    let seeds: Vec<Idea> = if template.seed_ideas_json().exists() {
        read_json(&template.seed_ideas_json())?
    } else {
        Vec::new()
    };
    let opts = IdeaOptions::from_settings(&settings.ideas, &settings.llm);
    let inputs = IdeaInputs {
        prompt: &prompt,
        seeds: &seeds,
        experiment_py: &experiment_py,
    };
    let result = generate_ideas(llm, inputs, &opts, &template.ideas_json(), progress, cancel).await;
    // What was spent is recorded whether or not the stage succeeded.
    record_usage(&template.root, llm);
    let report = result?;
    let snapshot = llm.ledger_snapshot();
    Ok(IdeasOutcome {
        report,
        totals: snapshot.total,
        provider: llm.provider().name().to_owned(),
        model: llm.provider().model().to_owned(),
        unpriced_models: snapshot.unpriced_models.into_iter().collect(),
    })
}

/// The project's usage ledger: one JSON line per model call, kept across runs.
pub fn usage_path(root: &Path) -> PathBuf {
    root.join(".aisci").join("usage.jsonl")
}

/// Adds `records` to the project's ledger (rewritten atomically: a crash leaves the
/// old ledger or the new one).
pub fn append_usage(root: &Path, records: &[CallRecord]) -> std::io::Result<()> {
    if records.is_empty() {
        return Ok(());
    }
    // Stages of different projects (or a late one) may finish together: one writer at a time.
    static LEDGER_LOCK: Mutex<()> = Mutex::new(());
    let _one_writer = LEDGER_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let path = usage_path(root);
    std::fs::create_dir_all(path.parent().expect("ledger has a parent"))?;
    let mut text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
        Err(e) => return Err(e),
    };
    if !text.is_empty() && !text.ends_with('\n') {
        text.push('\n');
    }
    for r in records {
        text.push_str(&serde_json::to_string(r).map_err(std::io::Error::other)?);
        text.push('\n');
    }
    write_atomic(&path, text.as_bytes())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn usage_ledger_appends_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |stage: &str| CallRecord {
            at: "2026-11-26T00:00:00Z".into(),
            stage: stage.into(),
            idea: Some("idea-1".into()),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            usage: Default::default(),
            cost_usd: 0.5,
            price_known: true,
            attempts: 1,
            elapsed_ms: 3,
            finish_reason: Some("stop".into()),
        };
        append_usage(dir.path(), &[rec("ideas")]).unwrap();
        append_usage(dir.path(), &[]).unwrap();
        append_usage(dir.path(), &[rec("ideas"), rec("novelty")]).unwrap();
        let text = std::fs::read_to_string(usage_path(dir.path())).unwrap();
        let lines: Vec<CallRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].stage, "novelty");
    }

    #[test]
    fn replay_paths_resolve_against_the_project() {
        let mut s = LlmSettings {
            model: "replay".into(),
            ..Default::default()
        };
        s.replay_file = Some(".aisci/replay/ideas.json".into());
        let r = resolve_llm_paths(s, Path::new("/t"));
        assert_eq!(
            r.replay_file.as_deref(),
            Some(Path::new("/t/.aisci/replay/ideas.json"))
        );
        assert_eq!(r.provider, ProviderKind::Replay);
    }
}
