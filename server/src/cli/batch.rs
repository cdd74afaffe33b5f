//! Several ideas' experiments at once (v1's `--parallel`): each idea gets its own
//! conversation, model ledger and idea folder, and its runs go through the process-wide
//! GPU/CPU slot queue, so with G slots G ideas run side by side, one slot each, and an
//! idea waits only when every slot is busy. v1 instead starts one process per GPU with a
//! fixed 150 s stagger between them; the queue makes the stagger unnecessary.

use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;

use crate::agent::edit_sink::DiskSink;
use crate::config::Settings;
use crate::jobs::JobGuard;
use crate::project::{Idea, IdeaFolder};
use crate::stages::experiment::{ExperimentOutcome, ExperimentRequest};
use crate::stages::host::{StageEvent, StageHost};
use crate::stages::{self, StageError};

use super::{baseline_means, job, open_template};
use crate::stages::host::StageEvents;

/// One idea to implement in its (already created) folder.
pub struct IdeaJob {
    pub folder: IdeaFolder,
    pub idea: Idea,
}

/// How one idea's experiments ended.
pub struct IdeaResult {
    pub name: String,
    pub folder: PathBuf,
    pub outcome: Result<ExperimentOutcome, StageError>,
}

/// Where the batch's events go, each with the Name of the idea it is about.
pub type IdeaEvents = Arc<dyn Fn(&str, StageEvent) + Send + Sync>;

/// How many ideas run at once by default: one per slot of the run queue (GPUs, or the
/// CPU slots when there is none).
pub async fn default_parallelism(settings: &Settings) -> usize {
    let found = crate::runner::gpus::detect(&settings.run).await;
    crate::runner::scheduler::slots_for(&found.gpus, settings.run.runs_per_gpu, settings.run.cpu_slots)
        .len()
        .max(1)
}

/// Implements every idea of `jobs`, at most `parallel` at a time, in the order given
/// (the next idea starts as soon as one ends). An idea that fails does not stop the
/// others; cancelling stops all of them, keeping what each completed. Results come back
/// in the order of `jobs`.
pub async fn run_ideas(
    jobs: Vec<IdeaJob>,
    settings: &Settings,
    parallel: usize,
    events: IdeaEvents,
    parent: &JobGuard,
) -> Vec<IdeaResult> {
    let parallel = parallel.max(1);
    let mut results: Vec<(usize, IdeaResult)> = futures::stream::iter(jobs.into_iter().enumerate())
        .map(|(i, job)| {
            let events = events.clone();
            async move {
                let result = run_one(job, settings, events.clone(), parent).await;
                (i, result)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

async fn run_one(job: IdeaJob, settings: &Settings, events: IdeaEvents, parent: &JobGuard) -> IdeaResult {
    let name = job.idea.name.clone();
    let folder = job.folder.root.clone();
    events(
        &name,
        StageEvent::Notice(format!("started in {}", folder.display())),
    );
    let outcome = async {
        // Each idea has its own ledger, so its cost is its own.
        let llm = stages::services::llm_for(settings, &job.folder.root)?;
        let registered = parent.start_under(stages::experiment::TITLE, &folder.display().to_string())?;
        let show = |e| events(&name, e);
        let host = StageHost::new(&DiskSink, &show, &registered.cancel);
        let req = ExperimentRequest {
            folder: &job.folder,
            idea: &job.idea,
            settings,
            llm: &llm,
        };
        stages::experiment::run(req, &host).await
    }
    .await;
    IdeaResult {
        name,
        folder,
        outcome,
    }
}

// The command.

/// `aisci experiment --template T --idea A --idea B [--parallel G]`.
pub(crate) async fn experiments_in_parallel(
    template: &Path,
    names: Vec<String>,
    parallel: Option<u32>,
    model: Option<String>,
) -> anyhow::Result<()> {
    use crate::cli::batch::{self, IdeaJob};
    use crate::project;
    let (template, loaded) = open_template(template, model)?;
    let s = &loaded.settings;
    // A missing key stops us before any folder is created.
    let llm = stages::services::llm_for(s, &template.root)?;
    let mut ideas = Vec::new();
    for name in &names {
        if ideas.iter().any(|i: &project::Idea| &i.name == name) {
            anyhow::bail!("--idea {name} is given twice");
        }
        ideas.push(stages::experiment::idea_in_template(&template, name)?);
    }
    let parallel = match parallel {
        Some(p) => p as usize,
        None => batch::default_parallelism(s).await,
    };
    eprintln!(
        "aisci: implementing {} idea(s), {parallel} at a time, with {} via {}",
        ideas.len(),
        llm.provider().model(),
        llm.provider().name()
    );
    let results_root = project::default_results_root(&template);
    let mut jobs = Vec::new();
    for idea in ideas {
        let now = chrono::Local::now().naive_local();
        let folder = project::create_idea_folder(&template, &results_root, &idea, now)?;
        jobs.push(IdeaJob { folder, idea });
    }
    let baseline = baseline_means(&template.root);
    // Each line tagged with its idea; the stages' progress lines would interleave
    // unreadably, so only runs, edits and notices are printed.
    let events: IdeaEvents = Arc::new(move |name: &str, e: StageEvent| {
        if matches!(e, StageEvent::Progress { .. }) {
            return;
        }
        let terminal = super::Terminal {
            baseline: baseline.clone(),
            tag: format!("[{name}] "),
        };
        terminal.event(e);
    });
    let parent = job("Run experiments (several ideas)", &template.root)?;
    let results = batch::run_ideas(jobs, s, parallel, events, &parent).await;
    let mut failed = 0;
    println!("--");
    for r in &results {
        match &r.outcome {
            Ok(o) => println!("{}: {}", r.name, o.summary()),
            Err(e) => {
                failed += 1;
                println!("{}: failed: {e}", r.name)
            }
        }
    }
    match failed {
        0 => Ok(()),
        n => anyhow::bail!("{n} of {} idea(s) failed", results.len()),
    }
}
