//! Running untrusted experiment code: each run in its own process group, under a
//! wall-clock limit aisci enforces, with an environment that holds no API keys, its
//! output captured to files with a bounded tail kept in memory.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

pub mod cgroup;
pub mod contain;
pub mod env;
pub mod facts;
pub mod gpu_lease;
pub mod gpus;
pub mod isolation;
pub mod leader;
pub mod local;
pub mod logs;
pub mod proc_stat;
pub mod scheduler;
pub mod slurm;
pub mod traceback;

pub use gpus::{Gpu, GpuDetection, GpuSource};
pub use local::{dir_size, LocalRunner, ResourceLimits};
pub use scheduler::{QueueEvent, Slot, SlotScheduler};
pub use slurm::{SlurmRunner, SlurmTools};
pub use traceback::{Frame, Traceback};

/// One program run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The program (e.g. `python3`) and its arguments.
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Killed (with everything it spawned) when this runs out.
    pub timeout: Duration,
    /// Where stdout and stderr go (two different files, created/truncated), in full up
    /// to the runner's output cap, then beginning + marker + end.
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Extra environment for the run (after secrets are removed).
    pub env: Vec<(String, String)>,
    /// The run's output folder: while the run runs, its size is checked against the
    /// runner's folder limit (e.g. `run.max_run_dir_bytes`). None: not watched.
    pub watch_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ExitKind {
    Success,
    /// Non-zero exit code.
    Failed(i32),
    /// Killed by a signal it did not get from aisci.
    Signaled(i32),
    TimedOut,
    Cancelled,
    /// Stopped by aisci (the whole process group, as on timeout) for breaking a limit.
    LimitExceeded(Limit),
}

/// A limit aisci enforces while a run runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The watched folder grew past this many bytes.
    RunDirBytes(u64),
    /// The run needed more memory than this many bytes (the kernel's OOM killer ended it
    /// inside its control group, or Slurm reported `OUT_OF_MEMORY`).
    Memory(u64),
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::RunDirBytes(n) => write!(f, "run folder exceeded {n} bytes"),
            Limit::Memory(n) => write!(f, "run exceeded its memory limit of {n} bytes"),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct RunOutcome {
    pub exit: ExitKind,
    pub elapsed: Duration,
    /// The last bytes of each stream (bounded), lossily decoded.
    pub stdout_tail: String,
    pub stderr_tail: String,
    /// Total bytes written to each stream (the files may be capped below this).
    pub stdout_bytes: u64,
    pub stderr_bytes: u64,
    /// The `CUDA_VISIBLE_DEVICES` the run had (`""`: CPU only); None when it had none.
    pub cuda_visible_devices: Option<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum RunError {
    #[error("cannot start {program}: {message}")]
    Spawn { program: String, message: String },
    #[error("run I/O: {0}")]
    Io(#[from] std::io::Error),
    /// A re-attached run that ended while no aisci watched it and left no exit status, or
    /// whose process or job is gone.
    #[error("run lost: {0}")]
    Lost(String),
    /// The runner refused the run (e.g. `sbatch` rejected the job, Slurm is down).
    #[error("{0}")]
    Rejected(String),
}

/// Which output stream a chunk came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Stream {
    Stdout,
    Stderr,
}

/// What a run reports while it goes, to whoever watches it (an editor, a terminal, the run
/// registry). How it ends is the `Result` of [`Runner::run_with`].
#[derive(Debug, Clone, PartialEq)]
pub enum RunEvent {
    /// Waiting for a slot; `ahead` runs are queued before it.
    Queued { ahead: usize },
    /// Waiting for `gpu`, which another aisci process on this machine holds (`holder`).
    Held { gpu: String, holder: String },
    /// It has its slot and is about to start: `gpu` is the slot's `CUDA_VISIBLE_DEVICES`
    /// value (`""` for a CPU slot). Sent by the [`SlotScheduler`].
    Slot { gpu: String },
    /// The run exists: how to find it again after aisci restarts. Persist it.
    Started(Attachment),
    /// New output, lossily decoded. Chunks arrive as written; a watcher throttles.
    Output { stream: Stream, text: String },
}

/// Receives [`RunEvent`]s. Called from the runner's tasks: return quickly.
pub trait RunEvents: Send + Sync {
    fn on_event(&self, event: RunEvent);
}

/// Ignores every event.
pub struct NoEvents;

impl RunEvents for NoEvents {
    fn on_event(&self, _: RunEvent) {}
}

impl<F: Fn(RunEvent) + Send + Sync> RunEvents for F {
    fn on_event(&self, event: RunEvent) {
        self(event)
    }
}

/// How a started run is found again by a later aisci process: enough to tell whether it
/// still runs, to stop it, and to learn how it ended. Stored in the run's record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "runner", rename_all = "lowercase")]
pub enum Attachment {
    Local(LocalAttachment),
    Slurm(SlurmAttachment),
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LocalAttachment {
    /// The process group leader (its pid is the group id).
    pub pid: i32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22), so that a
    /// reused pid is never mistaken for the run.
    pub start_ticks: u64,
    /// `/proc/sys/kernel/random/boot_id` at start: after a reboot nothing is re-attached.
    pub boot_id: String,
    /// When the run's time limit ends (milliseconds since the Unix epoch).
    pub deadline_unix_ms: u64,
    /// Where the run's exit status is written when it ends, read when no aisci watched.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit_file: Option<PathBuf>,
    /// The control group holding the run's processes, when aisci made one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cgroup: Option<PathBuf>,
    /// The run's own temporary folder (its `TMPDIR`), removed when the run has ended.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tmp_dir: Option<PathBuf>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SlurmAttachment {
    pub job_id: String,
    /// When the run's time limit ends (milliseconds since the Unix epoch). The limit counts
    /// from the job's start: sent at submission as submission + limit, and again in a
    /// second `Started` once the job runs. A re-attaching runner takes the start from Slurm.
    pub deadline_unix_ms: u64,
}

/// How a run ended, or why it could not run.
pub type Ran = Result<RunOutcome, RunError>;

#[async_trait]
pub trait Runner: Send + Sync {
    /// Runs `spec` to its end, reporting [`RunEvent`]s as it goes.
    async fn run_with(&self, spec: &RunSpec, events: &dyn RunEvents, cancel: &CancellationToken) -> Ran;

    async fn run(&self, spec: &RunSpec, cancel: &CancellationToken) -> Result<RunOutcome, RunError> {
        self.run_with(spec, &NoEvents, cancel).await
    }

    /// Watches a run that an earlier aisci process started (from its [`Attachment`]) until
    /// it ends, with the same limits, cancellation and events as [`Runner::run_with`].
    /// A run that already ended gives its outcome at once; one that is gone without an exit
    /// status gives [`RunError::Lost`].
    async fn reattach(
        &self,
        attachment: &Attachment,
        spec: &RunSpec,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError>;
}

/// The end of `text` as feedback for a model: `text` itself when it has at most
/// `max_chars` characters, else `"..."` followed by its last `max_chars` characters
/// (v1 feeds back the last 1,500 characters of a failed run's stderr this way).
pub fn tail(text: &str, max_chars: usize) -> String {
    match text.char_indices().rev().nth(max_chars.wrapping_sub(1)) {
        _ if max_chars == 0 => {
            if text.is_empty() {
                String::new()
            } else {
                "...".into()
            }
        }
        Some((0, _)) | None => text.to_owned(),
        Some((i, _)) => format!("...{}", &text[i..]),
    }
}

#[cfg(test)]
mod tests {
    use super::tail;

    #[test]
    fn tail_counts_chars_not_bytes() {
        assert_eq!(tail("abc", 5), "abc");
        assert_eq!(tail("abc", 3), "abc");
        assert_eq!(tail("abcdef", 2), "...ef");
        assert_eq!(tail("ééé", 2), "...éé");
        assert_eq!(tail("", 0), "");
        assert_eq!(tail("x", 0), "...");
    }
}
