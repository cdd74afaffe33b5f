//! After a restart: the runs an earlier aisci left queued or running are settled. A
//! queued run never started, so it is marked failed (never started now: the user
//! decides to run it again); a running one is watched again through its attachment
//! and completed as any run; one that is gone without an exit status is marked lost.
//! A run that ended is never touched, and nothing is ever re-run.

use std::path::Path;
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio_util::sync::CancellationToken;

use super::finish::{self, complete, ended_without_status, set_aside, set_aside_when_failed};
use super::live::{self, LiveRun};
use super::tracked::OutputOnly;
use crate::project::{read_baseline, RunOrigin, RunRecord, RunState};
use crate::runner::{facts, Attachment, RunError, RunSpec, Runner};

/// The runner that can watch a run again, by how the run was started.
pub trait Reattacher: Send + Sync {
    fn runner_for(&self, attachment: &Attachment) -> Option<Arc<dyn Runner>>;
}

/// What became of a run left in flight.
#[derive(Debug, Clone, PartialEq)]
pub enum Resumed {
    /// It was still queued: marked failed, not run.
    NeverStarted(RunRecord),
    /// Watched again to its end (or it had ended already): completed as any run.
    Finished(RunRecord),
    /// Gone without an exit status (or it had no attachment): marked lost.
    Lost(RunRecord),
    /// No runner here can watch it (e.g. a Slurm job with no Slurm runner): left as it is.
    Unwatched { record: RunRecord, why: String },
}

impl Resumed {
    pub fn record(&self) -> &RunRecord {
        match self {
            Resumed::NeverStarted(r) | Resumed::Finished(r) | Resumed::Lost(r) => r,
            Resumed::Unwatched { record, .. } => record,
        }
    }

    /// One line for a person.
    pub fn describe(&self) -> String {
        let r = self.record();
        let name = format!("run_{}", r.run);
        match self {
            Resumed::NeverStarted(_) => format!("{name} was still queued when aisci stopped: marked failed"),
            Resumed::Finished(r) => {
                format!("{name} re-attached, ended: {}", crate::project::headline(r, None))
            }
            Resumed::Lost(r) => format!("{name} lost: {}", r.error.as_deref().unwrap_or("gone")),
            Resumed::Unwatched { why, .. } => format!("{name} not re-attached: {why}"),
        }
    }
}

/// The records under `folder` that an aisci left queued or running and that no live
/// aisci watches (this process or another).
pub fn pending(folder: &Path) -> Vec<RunRecord> {
    let mut out: Vec<RunRecord> = super::listing::record_files(folder)
        .iter()
        .filter_map(|f| RunRecord::load(f.parent()?))
        .filter(|r| r.state.in_flight())
        .filter(|r| live::get(folder, r.run).is_none())
        .filter(|r| !r.watcher.as_ref().is_some_and(|w| w.alive()))
        .collect();
    out.sort_by_key(|r| r.run);
    out
}

/// What resuming needs besides the record.
pub struct ResumeCtx<'a> {
    pub runners: &'a dyn Reattacher,
    /// The interpreter, for `env.json` facts.
    pub python: &'a str,
    /// Cancels the watching: the run is stopped as any cancelled run.
    pub cancel: &'a CancellationToken,
}

/// The spec the run was started with, rebuilt from its record, with the time it has left.
fn spec_of(folder: &Path, record: &RunRecord, attachment: &Attachment) -> RunSpec {
    let deadline_ms = match attachment {
        Attachment::Local(l) => l.deadline_unix_ms,
        Attachment::Slurm(s) => s.deadline_unix_ms,
    };
    let now_ms = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0);
    let (program, args) = match record.command.split_first() {
        Some((p, a)) => (p.clone(), a.to_vec()),
        None => (String::new(), Vec::new()),
    };
    RunSpec {
        program,
        args,
        cwd: folder.to_path_buf(),
        timeout: Duration::from_millis(deadline_ms.saturating_sub(now_ms).max(1)),
        stdout_path: folder.join(&record.stdout),
        stderr_path: folder.join(&record.stderr),
        env: Vec::new(),
        watch_dir: Some(folder.join(&record.dir)),
    }
}

/// Settles one run left in flight (see the module comment); the record is saved.
pub async fn resume(folder: &Path, mut record: RunRecord, ctx: &ResumeCtx<'_>) -> std::io::Result<Resumed> {
    let save = |r: &RunRecord| r.save(folder);
    if record.state == RunState::Queued {
        ended_without_status(
            &mut record,
            RunState::Failed,
            "aisci stopped before it started; it was not run".into(),
        );
        save(&record)?;
        return Ok(Resumed::NeverStarted(record));
    }
    let Some(attachment) = record.attachment.clone() else {
        ended_without_status(
            &mut record,
            RunState::Lost,
            "aisci stopped while it was starting; nothing says where it ran".into(),
        );
        save(&record)?;
        return Ok(Resumed::Lost(record));
    };
    let Some(runner) = ctx.runners.runner_for(&attachment) else {
        let why = match attachment {
            Attachment::Slurm(_) => "it runs under Slurm and no Slurm runner is configured here",
            Attachment::Local(_) => "no local runner here",
        };
        return Ok(Resumed::Unwatched {
            record,
            why: why.into(),
        });
    };

    let mut watched = LiveRun::new(folder, record.run, record.attempt);
    watched.state = RunState::Running;
    watched.reattached = true;
    watched.gpu = record.gpu.clone();
    watched.running_since = record
        .running_since
        .as_deref()
        .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
        .map(SystemTime::from);
    match &attachment {
        Attachment::Local(l) => watched.pid = Some(l.pid),
        Attachment::Slurm(s) => watched.job_id = Some(s.job_id.clone()),
    }
    let _live = live::begin(watched);
    // This process watches it now.
    record.watcher = crate::project::Watcher::this_process();
    save(&record)?;

    let spec = spec_of(folder, &record, &attachment);
    let events = OutputOnly {
        folder: folder.to_path_buf(),
        run: record.run,
    };
    let result = runner.reattach(&attachment, &spec, &events, ctx.cancel).await;
    let run_dir = finish::run_dir(folder, &record);
    let resumed = match result {
        Ok(outcome) => {
            let expected = (record.run != 0).then(|| read_baseline(folder).ok()).flatten();
            complete(&mut record, &outcome, &run_dir, expected.as_ref());
            let wants_facts = record.completed || record.origin == Some(RunOrigin::Launch);
            if wants_facts && !run_dir.join("env.json").exists() {
                let env = facts::collect(ctx.python, record.gpu.as_deref()).await;
                if let Err(e) = facts::write(&run_dir, &env) {
                    tracing::warn!(dir = %run_dir.display(), %e, "cannot write env.json");
                }
            }
            if set_aside_when_failed(&record) {
                set_aside(folder, &mut record)?;
            }
            Resumed::Finished(record)
        }
        Err(RunError::Lost(why)) => {
            ended_without_status(&mut record, RunState::Lost, why);
            Resumed::Lost(record)
        }
        Err(e) => {
            ended_without_status(
                &mut record,
                RunState::Failed,
                format!("cannot watch it again: {e}"),
            );
            Resumed::Lost(record)
        }
    };
    save(resumed.record())?;
    Ok(resumed)
}

/// Settles every run left in flight under `folder`, the running ones watched at once.
pub async fn resume_folder(folder: &Path, ctx: &ResumeCtx<'_>) -> Vec<std::io::Result<Resumed>> {
    let runs = pending(folder);
    futures::future::join_all(runs.into_iter().map(|r| resume(folder, r, ctx))).await
}
