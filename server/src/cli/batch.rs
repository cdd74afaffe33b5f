//! Several ideas' experiments at once (v1's `--parallel`): each idea gets its own
//! conversation, model ledger and idea folder, and its runs go through the process-wide
//! GPU/CPU slot queue, so with G slots G ideas run side by side, one slot each, and an
//! idea waits only when every slot is busy. v1 instead starts one process per GPU with a
//! fixed 150 s stagger between them; the queue makes the stagger unnecessary.

use super::{ctrl_c_token, open_template};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use futures::StreamExt;
use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::DiskSink;
use crate::config::Settings;
use crate::jobs::Progress;
use crate::project::{Idea, IdeaFolder, RunRecord};
use crate::stages::experiment::agent::ExperimentEvents;
use crate::stages::experiment::ExperimentDeps;
use crate::stages::experiment::ExperimentOutcome;
use crate::stages::{self, StageError};

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
        let llm = stages::services::llm_for(settings, &job.folder.root)?;
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
        stages::experiment::run_experiment(&job.folder, &job.idea, settings, deps).await
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
    let baseline = project::read_baseline(&template.root)
        .ok()
        .map(|b| serde_json::Value::Object(b.means_by_dataset()));
    let events = std::sync::Arc::new(PrintBatch { baseline });
    let results = batch::run_ideas(jobs, s, parallel, events, &ctrl_c_token()).await;
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

/// Prints a batch's events, each line tagged with its idea.
struct PrintBatch {
    baseline: Option<serde_json::Value>,
}

impl crate::cli::batch::BatchEvents for PrintBatch {
    fn idea_started(&self, name: &str, folder: &Path) {
        eprintln!("aisci: [{name}] started in {}", folder.display());
    }
    fn run_started(&self, name: &str, run: u32, attempt: u32) {
        eprintln!("aisci: [{name}] run_{run}, attempt {attempt}…");
    }
    fn run_finished(&self, name: &str, record: &crate::project::RunRecord) {
        println!(
            "[{name}] {}",
            crate::project::headline(record, self.baseline.as_ref())
        );
    }
    fn edits_applied(&self, name: &str, files: &[String]) {
        eprintln!("aisci: [{name}] the model edited {}", files.join(", "));
    }
}
