//! A run with its record kept: saved as queued before the runner is called, as
//! running (slot, attachment) as soon as the runner says so, and handed back for the
//! caller to complete. Events are applied by one writer task, in order, so a slow
//! disk never holds up the runner and a late write never overwrites the end.

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::live::{self, LiveGuard, LiveRun};
use crate::project::{now_rfc3339, RunRecord, RunState};
use crate::runner::{Attachment, RunError, RunEvent, RunEvents, RunOutcome, RunSpec, Runner};

/// How a tracked run ended, before its record is completed.
pub struct TrackedEnd {
    /// The record as last saved (queued or running, with its slot and attachment).
    pub record: RunRecord,
    /// Keeps the run in the live view until the caller has completed its record.
    pub live: LiveGuard,
    pub result: Result<RunOutcome, RunError>,
}

enum Change {
    Queued(usize),
    Slot(String),
    Started(Attachment),
}

/// Passes a run's events to the live view and the record writer, then to the caller's
/// own watcher.
struct Recorder<'a> {
    folder: PathBuf,
    run: u32,
    tx: mpsc::UnboundedSender<Change>,
    also: &'a dyn RunEvents,
}

impl RunEvents for Recorder<'_> {
    fn on_event(&self, event: RunEvent) {
        self.record(event.clone());
        self.also.on_event(event);
    }
}

impl Recorder<'_> {
    fn record(&self, event: RunEvent) {
        let (folder, run) = (self.folder.as_path(), self.run);
        match event {
            RunEvent::Output { stream, text } => live::output(folder, run, stream, &text),
            RunEvent::Queued { ahead } => {
                live::update(folder, run, |r| r.ahead = Some(ahead));
                let _ = self.tx.send(Change::Queued(ahead));
            }
            RunEvent::Held { gpu, holder } => {
                live::update(folder, run, |r| {
                    r.held_by = Some(format!("GPU {gpu} is held by {holder}"))
                });
                let _ = self.tx.send(Change::Queued(0));
            }
            RunEvent::Slot { gpu } => {
                live::update(folder, run, |r| {
                    r.held_by = None;
                    r.state = RunState::Running;
                    r.gpu = Some(gpu.clone());
                    r.running_since.get_or_insert_with(SystemTime::now);
                });
                let _ = self.tx.send(Change::Slot(gpu));
            }
            RunEvent::Started(att) => {
                live::update(folder, run, |r| {
                    r.state = RunState::Running;
                    r.running_since.get_or_insert_with(SystemTime::now);
                    match &att {
                        Attachment::Local(l) => r.pid = Some(l.pid),
                        Attachment::Slurm(s) => r.job_id = Some(s.job_id.clone()),
                    }
                });
                let _ = self.tx.send(Change::Started(att));
            }
        }
    }
}

fn apply(record: &mut RunRecord, change: Change) {
    match change {
        Change::Queued(ahead) => record.queued_ahead = Some(ahead),
        Change::Slot(gpu) => {
            record.state = RunState::Running;
            record.gpu = Some(gpu);
            record.running_since.get_or_insert_with(now_rfc3339);
        }
        Change::Started(att) => {
            record.state = RunState::Running;
            record.running_since.get_or_insert_with(now_rfc3339);
            record.attachment = Some(att);
        }
    }
}

/// Saves `record` (under `root`) as queued, runs `spec` through `runner` keeping the
/// record up to date (events go on to `also`), and hands back the record with how the
/// run ended.
pub async fn run_tracked(
    root: &Path,
    mut record: RunRecord,
    runner: &dyn Runner,
    spec: &RunSpec,
    also: &dyn RunEvents,
    cancel: &CancellationToken,
) -> TrackedEnd {
    record.state = RunState::Queued;
    let guard = live::begin(LiveRun::new(root, record.run, record.attempt));
    if let Err(e) = record.save(root) {
        return TrackedEnd {
            record,
            live: guard,
            result: Err(RunError::Io(e)),
        };
    }
    let (tx, mut rx) = mpsc::unbounded_channel();
    let writer = {
        let root = root.to_path_buf();
        let mut record = record.clone();
        tokio::spawn(async move {
            while let Some(change) = rx.recv().await {
                apply(&mut record, change);
                // Everything already waiting goes into the same write.
                while let Ok(more) = rx.try_recv() {
                    apply(&mut record, more);
                }
                let (r, at) = (record.clone(), root.clone());
                let saved = tokio::task::spawn_blocking(move || r.save(&at)).await;
                if let Ok(Err(e)) = saved {
                    tracing::warn!(dir = %root.join(&record.dir).display(), %e, "cannot update the run record");
                }
            }
            record
        })
    };
    let recorder = Recorder {
        folder: root.to_path_buf(),
        run: record.run,
        tx,
        also,
    };
    let result = runner.run_with(spec, &recorder, cancel).await;
    drop(recorder);
    let record = match writer.await {
        Ok(r) => r,
        Err(_) => record,
    };
    TrackedEnd {
        record,
        live: guard,
        result,
    }
}

/// Forwards a re-attached run's output to the live view (its record is complete
/// already; only its end is written).
pub(super) struct OutputOnly {
    pub folder: PathBuf,
    pub run: u32,
}

impl RunEvents for OutputOnly {
    fn on_event(&self, event: RunEvent) {
        if let RunEvent::Output { stream, text } = event {
            live::output(&self.folder, self.run, stream, &text);
        }
    }
}
