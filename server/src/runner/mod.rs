//! Running untrusted experiment code: each run in its own process group, under a
//! wall-clock limit aisci enforces, with an environment that holds no API keys, its
//! output captured to files with a bounded tail kept in memory.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

pub mod env;
pub mod facts;
pub mod gpus;
pub mod local;
pub mod scheduler;
pub mod traceback;

pub use gpus::{Gpu, GpuDetection, GpuSource};
pub use local::{dir_size, LocalRunner, ResourceLimits};
pub use scheduler::{QueueEvent, Slot, SlotScheduler};
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
}

impl std::fmt::Display for Limit {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Limit::RunDirBytes(n) => write!(f, "run folder exceeded {n} bytes"),
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
}

#[async_trait]
pub trait Runner: Send + Sync {
    async fn run(&self, spec: &RunSpec, cancel: &CancellationToken) -> Result<RunOutcome, RunError>;
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
