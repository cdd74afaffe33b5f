//! Long work (model calls, literature queries, runs, builds) runs as jobs: each has a
//! cancellation token and reports events that the LSP layer or the CLI renders.

/// Where a running stage reports how far it got. The LSP layer turns reports into
/// `$/progress`; the CLI prints them.
pub trait Progress: Send + Sync {
    fn report(&self, message: &str, percent: Option<u32>);
}

/// A sink that drops every report (tests, quiet CLI runs).
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _message: &str, _percent: Option<u32>) {}
}

use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

pub type JobId = u64;

/// A running job as others see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct JobInfo {
    pub id: JobId,
    /// What it does, e.g. "Generate ideas".
    pub title: String,
    /// What it works on (a template or idea folder), for "one job per target" checks.
    pub target: String,
    pub started: SystemTime,
    /// The latest progress report (message, percent), kept by [`TrackedProgress`].
    pub progress: Option<(String, Option<u32>)>,
}

/// The registry of running jobs and their cancellation tokens. Cancelling the
/// registry's root token (shutdown) cancels every job.
#[derive(Default)]
pub struct Jobs {
    next: AtomicU64,
    root: CancellationToken,
    running: Mutex<BTreeMap<JobId, (JobInfo, CancellationToken)>>,
    /// Every target a job was started for, so what they spent can be found after they end.
    targets: Mutex<BTreeSet<String>>,
    /// Bumped whenever a job starts or ends, for views that show the running jobs.
    changes: watch::Sender<u64>,
}

/// Held by the task doing the work; dropping it unregisters the job.
pub struct JobGuard {
    pub info: JobInfo,
    pub cancel: CancellationToken,
    jobs: Arc<Jobs>,
}

impl JobGuard {
    /// A job that is part of this one (see [`Jobs::start_under`]).
    pub fn start_under(&self, title: &str, target: &str) -> Result<JobGuard, Busy> {
        self.jobs.start_under(self, title, target)
    }
}

impl Drop for JobGuard {
    fn drop(&mut self) {
        self.jobs.running.lock().unwrap().remove(&self.info.id);
        self.jobs.changed();
    }
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("\"{title}\" is already running for {target} (job {id}); cancel it first or wait for it to finish")]
pub struct Busy {
    pub id: JobId,
    pub title: String,
    pub target: String,
}

impl Jobs {
    pub fn new() -> Arc<Self> {
        Arc::new(Self::default())
    }

    /// Registers a job. One job at a time per target (project folder): stages share
    /// its files (ideas.json, notes.txt, runs), so two at once could undo each other.
    pub fn start(self: &Arc<Self>, title: &str, target: &str) -> Result<JobGuard, Busy> {
        let cancel = self.root.child_token();
        self.start_with(title, target, cancel, None)
    }

    /// Like [`Jobs::start`], for a job that is part of `parent` (a stage of `aisci
    /// launch`): cancelling the parent cancels it too, and the parent's own target does
    /// not count as busy.
    pub fn start_under(
        self: &Arc<Self>,
        parent: &JobGuard,
        title: &str,
        target: &str,
    ) -> Result<JobGuard, Busy> {
        self.start_with(title, target, parent.cancel.child_token(), Some(parent.info.id))
    }

    fn start_with(
        self: &Arc<Self>,
        title: &str,
        target: &str,
        cancel: CancellationToken,
        parent: Option<JobId>,
    ) -> Result<JobGuard, Busy> {
        let mut running = self.running.lock().unwrap();
        if let Some((info, _)) = running
            .values()
            .find(|(i, _)| i.target == target && Some(i.id) != parent)
        {
            return Err(Busy {
                id: info.id,
                title: info.title.clone(),
                target: info.target.clone(),
            });
        }
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let info = JobInfo {
            id,
            title: title.to_owned(),
            target: target.to_owned(),
            started: SystemTime::now(),
            progress: None,
        };
        running.insert(id, (info.clone(), cancel.clone()));
        drop(running);
        self.targets.lock().unwrap().insert(target.to_owned());
        self.changed();
        Ok(JobGuard {
            info,
            cancel,
            jobs: self.clone(),
        })
    }

    /// Cancels one job; false if it is not running.
    pub fn cancel(&self, id: JobId) -> bool {
        match self.running.lock().unwrap().get(&id) {
            Some((_, token)) => {
                token.cancel();
                true
            }
            None => false,
        }
    }

    /// Cancels every running job and any started later.
    pub fn cancel_all(&self) {
        self.root.cancel();
    }

    pub fn list(&self) -> Vec<JobInfo> {
        self.running
            .lock()
            .unwrap()
            .values()
            .map(|(i, _)| i.clone())
            .collect()
    }

    /// Every target a job was started for since this registry was made, running or not.
    pub fn targets(&self) -> Vec<String> {
        self.targets.lock().unwrap().iter().cloned().collect()
    }

    /// Changes whenever a job starts or ends. Bursts coalesce: a watcher sees the latest
    /// generation, and `list` then tells the state.
    pub fn subscribe(&self) -> watch::Receiver<u64> {
        self.changes.subscribe()
    }

    fn changed(&self) {
        // `send_modify` stores the value even while nobody is subscribed.
        self.changes.send_modify(|generation| *generation += 1);
    }

    /// Keeps a job's latest progress report, for listings (no change signal: reports
    /// are frequent and already shown as `$/progress`).
    fn report(&self, id: JobId, message: &str, percent: Option<u32>) {
        if let Some((info, _)) = self.running.lock().unwrap().get_mut(&id) {
            info.progress = Some((message.to_owned(), percent));
        }
    }
}

/// A job's progress sink that also keeps the latest report in the registry.
pub struct TrackedProgress {
    pub jobs: Arc<Jobs>,
    pub id: JobId,
    pub inner: Arc<dyn Progress>,
}

impl Progress for TrackedProgress {
    fn report(&self, message: &str, percent: Option<u32>) {
        self.jobs.report(self.id, message, percent);
        self.inner.report(message, percent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_under_another_shares_its_target_and_its_cancel() {
        let jobs = Jobs::new();
        let launch = jobs.start("Launch", "/t").unwrap();
        let ideas = jobs.start_under(&launch, "Generate ideas", "/t").unwrap();
        let paper = jobs
            .start_under(&launch, "Write the paper", "/t/results/a")
            .unwrap();
        // Anyone else is still refused on a busy target.
        assert!(jobs.start("Generate ideas", "/t").is_err());
        assert!(jobs
            .start_under(&launch, "Review the paper", "/t/results/a")
            .is_err());
        assert_eq!(jobs.list().len(), 3);
        jobs.cancel(launch.info.id);
        assert!(ideas.cancel.is_cancelled() && paper.cancel.is_cancelled());
    }

    #[test]
    fn one_job_per_target() {
        let jobs = Jobs::new();
        let a = jobs.start("Generate ideas", "/t").unwrap();
        let busy = jobs.start("Generate ideas", "/t").err().unwrap();
        assert_eq!(busy.id, a.info.id);
        let other_stage = jobs.start("Check novelty", "/t").err().unwrap();
        assert_eq!(other_stage.title, "Generate ideas");
        let b = jobs.start("Generate ideas", "/other").unwrap();
        assert_eq!(jobs.list().len(), 2);
        drop(a);
        assert_eq!(jobs.list(), vec![b.info.clone()]);
        assert!(jobs.start("Generate ideas", "/t").is_ok());
    }

    #[test]
    fn cancel_one_and_all() {
        let jobs = Jobs::new();
        let a = jobs.start("x", "1").unwrap();
        let b = jobs.start("x", "2").unwrap();
        assert!(jobs.cancel(a.info.id));
        assert!(a.cancel.is_cancelled() && !b.cancel.is_cancelled());
        assert!(!jobs.cancel(999));
        jobs.cancel_all();
        assert!(b.cancel.is_cancelled());
    }

    #[test]
    fn changes_progress_and_targets_are_kept() {
        let jobs = Jobs::new();
        let mut rx = jobs.subscribe();
        assert!(!rx.has_changed().unwrap());
        let a = jobs.start("x", "/a").unwrap();
        assert!(rx.has_changed().unwrap());
        rx.mark_unchanged();
        let tracked = TrackedProgress {
            jobs: jobs.clone(),
            id: a.info.id,
            inner: Arc::new(NoProgress),
        };
        tracked.report("idea 1/2", Some(50));
        assert_eq!(jobs.list()[0].progress, Some(("idea 1/2".into(), Some(50))));
        assert!(!rx.has_changed().unwrap(), "reports alone signal no change");
        drop(a);
        assert!(rx.has_changed().unwrap());
        assert!(jobs.list().is_empty());
        // A report after the end is dropped, not kept for a job that is gone.
        tracked.report("late", None);
        assert!(jobs.list().is_empty());
        assert_eq!(jobs.targets(), vec!["/a".to_string()]);
    }
}
