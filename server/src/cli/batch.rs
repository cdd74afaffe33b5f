//! Several ideas' experiments at once (v1's `--parallel`): each idea gets its own
//! conversation, model ledger and idea folder, and its runs go through the process-wide
//! GPU/CPU slot queue, so with G slots G ideas run side by side, one slot each, and an
//! idea waits only when every slot is busy. v1 instead starts one process per GPU with a
//! fixed 150 s stagger between them; the queue makes the stagger unnecessary.

use std::path::PathBuf;
use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::DiskSink;
use crate::config::Settings;
use crate::jobs::Progress;
use crate::project::{Idea, IdeaFolder, RunRecord};
use crate::stages::experiment::agent::ExperimentEvents;
use crate::stages::{self, ExperimentDeps, ExperimentOutcome, StageError};

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

/// What the batch reports, each line tagged with the idea's Name.
pub trait BatchEvents: Send + Sync {
    fn idea_started(&self, _name: &str, _folder: &std::path::Path) {}
    fn run_started(&self, _name: &str, _run: u32, _attempt: u32) {}
    fn run_finished(&self, _name: &str, _record: &RunRecord) {}
    fn edits_applied(&self, _name: &str, _files: &[String]) {}
    fn progress(&self, _name: &str, _message: &str) {}
    fn idea_finished(&self, _result: &IdeaResult) {}
}

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
    events: Arc<dyn BatchEvents>,
    cancel: &CancellationToken,
) -> Vec<IdeaResult> {
    let parallel = parallel.max(1);
    let mut results: Vec<(usize, IdeaResult)> = futures::stream::iter(jobs.into_iter().enumerate())
        .map(|(i, job)| {
            let events = events.clone();
            async move {
                let result = run_one(job, settings, events.clone(), cancel).await;
                events.idea_finished(&result);
                (i, result)
            }
        })
        .buffer_unordered(parallel)
        .collect()
        .await;
    results.sort_by_key(|(i, _)| *i);
    results.into_iter().map(|(_, r)| r).collect()
}

async fn run_one(
    job: IdeaJob,
    settings: &Settings,
    events: Arc<dyn BatchEvents>,
    cancel: &CancellationToken,
) -> IdeaResult {
    let name = job.idea.name.clone();
    let folder = job.folder.root.clone();
    events.idea_started(&name, &folder);
    let outcome = async {
        // Each idea has its own ledger, so its cost is its own.
        let llm = stages::llm_for(settings, &job.folder.root)?;
        let tagged = Tagged {
            name: &name,
            events: events.as_ref(),
        };
        let deps = ExperimentDeps {
            llm: &llm,
            sink: &DiskSink,
            events: &tagged,
            progress: &tagged,
            cancel,
        };
        stages::run_experiment(&job.folder, &job.idea, settings, deps).await
    }
    .await;
    IdeaResult {
        name,
        folder,
        outcome,
    }
}

/// Forwards one idea's events to the batch's, tagged with the idea's Name.
struct Tagged<'a> {
    name: &'a str,
    events: &'a dyn BatchEvents,
}

impl ExperimentEvents for Tagged<'_> {
    fn run_started(&self, run: u32, attempt: u32) {
        self.events.run_started(self.name, run, attempt);
    }
    fn run_finished(&self, record: &RunRecord) {
        self.events.run_finished(self.name, record);
    }
    fn edits_applied(&self, files: &[String]) {
        self.events.edits_applied(self.name, files);
    }
}

impl Progress for Tagged<'_> {
    fn report(&self, message: &str, _percent: Option<u32>) {
        self.events.progress(self.name, message);
    }
}
