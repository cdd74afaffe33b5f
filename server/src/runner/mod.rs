//! Running untrusted experiment code: each run in its own process group, under a
//! wall-clock limit aisci enforces, with an environment that holds no API keys, its
//! output captured to files with a bounded tail kept in memory.

use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

/// One program run.
#[derive(Debug, Clone, PartialEq)]
pub struct RunSpec {
    /// The program (e.g. `python3`) and its arguments.
    pub program: String,
    pub args: Vec<String>,
    pub cwd: PathBuf,
    /// Killed (with everything it spawned) when this runs out.
    pub timeout: Duration,
    /// Where stdout and stderr go in full (created/truncated).
    pub stdout_path: PathBuf,
    pub stderr_path: PathBuf,
    /// Extra environment for the run (after secrets are removed).
    pub env: Vec<(String, String)>,
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
