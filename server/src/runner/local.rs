//! Runs an experiment as a child process on this machine.
//!
//! The child leads a new process group, so everything it spawns (workers, daemons that
//! double-fork but stay in the group, a script that relaunches itself) can be signalled at
//! once. The group is only ever signalled while its leader is unreaped: the kernel does
//! not reuse a pid that is still a zombie, so the group id cannot name a stranger. The
//! leader's exit is observed with `waitid(WNOWAIT)`, the group is killed, and only then is
//! the leader reaped.
//!
//! Not contained: a process that calls `setsid`/`setpgid` to leave the group. Its pipes are
//! abandoned after [`PIPE_GRACE`] so the run still ends; containing it needs cgroups or a
//! container.

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use futures::FutureExt;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::{env, Attachment, ExitKind, Limit, RunError, RunEvents, RunOutcome, RunSpec, Runner};
use crate::config::{ExperimentSettings, RunSettings};

/// Bytes of each stream kept in memory for [`RunOutcome`]'s tails.
pub const TAIL_BYTES: usize = 64 * 1024;
/// How long the group gets between SIGTERM and SIGKILL on timeout or cancellation.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How long the output pipes may stay open after the group is killed (only a process that
/// left the group can hold them).
pub const PIPE_GRACE: Duration = Duration::from_secs(2);
/// How often a watched run folder's size is measured.
pub const DIR_POLL: Duration = Duration::from_secs(1);

/// Kernel-enforced limits set in the child before it starts, soft = hard, so the
/// experiment can lower them but never raise them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `RLIMIT_AS`: virtual address space per process (allocations beyond fail).
    /// Note that CUDA maps far more address space than it uses; leave unset for GPU runs.
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_FSIZE`: largest file a process may write (writes beyond fail with EFBIG).
    pub file_size_bytes: Option<u64>,
}

impl ResourceLimits {
    fn is_empty(&self) -> bool {
        self.address_space_bytes.is_none() && self.file_size_bytes.is_none()
    }
}

/// The local [`Runner`].
#[derive(Debug, Clone)]
pub struct LocalRunner {
    output_cap_bytes: u64,
    limits: ResourceLimits,
    /// `None`: aisci's own environment, read at each run.
    base_env: Option<Arc<Vec<(OsString, OsString)>>>,
    secret_names: Vec<String>,
    kill_grace: Duration,
    /// Largest size of a run's `watch_dir`; None: not checked.
    max_dir_bytes: Option<u64>,
    dir_poll: Duration,
    /// Also copy the run's stdout/stderr to aisci's own, as they arrive.
    echo: bool,
}

impl LocalRunner {
    /// `output_cap_bytes`: the most each of stdout/stderr may take on disk. Beyond it the
    /// file keeps its beginning and its last bytes (at most [`TAIL_BYTES`], at most half
    /// the cap), with a marker line between them.
    pub fn new(output_cap_bytes: u64) -> Self {
        Self {
            output_cap_bytes,
            limits: ResourceLimits::default(),
            base_env: None,
            secret_names: Vec::new(),
            kill_grace: KILL_GRACE,
            max_dir_bytes: None,
            dir_poll: DIR_POLL,
            echo: false,
        }
    }

    pub fn from_settings(settings: &ExperimentSettings) -> Self {
        Self::new(settings.output_cap_bytes)
    }

    pub fn with_limits(mut self, limits: ResourceLimits) -> Self {
        self.limits = limits;
        self
    }

    /// Use this environment instead of the process's as the starting point (secrets are
    /// still removed from it). For tests, and for a daemon that wants a fixed base.
    pub fn with_base_env(mut self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        self.base_env = Some(Arc::new(vars.into_iter().collect()));
        self
    }

    /// More variable names to keep from experiments, e.g. the configured `api_key_env`.
    pub fn with_secret_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.secret_names.extend(names);
        self
    }

    /// The limits from `[run]`: the run folder size (`max_run_dir_bytes`).
    pub fn with_run_settings(self, run: &RunSettings) -> Self {
        self.with_max_dir_bytes(Some(run.max_run_dir_bytes))
    }

    /// A run whose [`RunSpec::watch_dir`] grows past `bytes` is ended like a timeout,
    /// with [`ExitKind::LimitExceeded`].
    pub fn with_max_dir_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_dir_bytes = bytes;
        self
    }

    /// How often the watched folder is measured (default [`DIR_POLL`]).
    pub fn with_dir_poll(mut self, every: Duration) -> Self {
        self.dir_poll = every.max(Duration::from_millis(10));
        self
    }

    /// Copy the run's output to aisci's stdout/stderr live (the files still get all of
    /// it); for `aisci run` in a terminal.
    pub fn with_echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    pub fn with_kill_grace(mut self, grace: Duration) -> Self {
        self.kill_grace = grace;
        self
    }

    /// The environment a run gets: the base without secrets, then `spec.env`.
    pub fn child_env(&self, spec: &RunSpec) -> Vec<(OsString, OsString)> {
        let base: Vec<(OsString, OsString)> = match &self.base_env {
            Some(b) => b.as_ref().clone(),
            None => std::env::vars_os().collect(),
        };
        let mut vars = env::scrub(base, &self.secret_names);
        for (k, v) in &spec.env {
            vars.retain(|(name, _)| name != k.as_str());
            vars.push((k.into(), v.into()));
        }
        vars
    }

    fn command(&self, spec: &RunSpec) -> tokio::process::Command {
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(self.child_env(spec))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        if !self.limits.is_empty() {
            let limits = self.limits;
            // SAFETY: the closure runs in the forked child before exec, where only
            // async-signal-safe work is allowed. It makes plain `setrlimit` system calls
            // (rustix issues them directly) and builds errors with `from_raw_os_error`;
            // it neither allocates nor takes locks.
            unsafe {
                cmd.pre_exec(move || apply_limits(&limits));
            }
        }
        cmd
    }
}

fn apply_limits(limits: &ResourceLimits) -> std::io::Result<()> {
    use rustix::process::{setrlimit, Resource, Rlimit};
    let set = |resource, value: Option<u64>| match value {
        Some(v) => setrlimit(
            resource,
            Rlimit {
                current: Some(v),
                maximum: Some(v),
            },
        )
        .map_err(|e| std::io::Error::from_raw_os_error(e.raw_os_error())),
        None => Ok(()),
    };
    set(Resource::As, limits.address_space_bytes)?;
    set(Resource::Fsize, limits.file_size_bytes)
}

#[async_trait]
impl Runner for LocalRunner {
    async fn run_with(
        &self,
        spec: &RunSpec,
        _events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        let started = Instant::now();
        if !spec.cwd.is_dir() {
            return Err(RunError::Spawn {
                program: spec.program.clone(),
                message: format!("working directory {} does not exist", spec.cwd.display()),
            });
        }
        let stdout_file = tokio::fs::File::create(&spec.stdout_path).await?;
        let stderr_file = tokio::fs::File::create(&spec.stderr_path).await?;

        let mut child = self.command(spec).spawn().map_err(|e| RunError::Spawn {
            program: spec.program.clone(),
            message: spawn_message(&e, &spec.program),
        })?;
        let pgid = child
            .id()
            .and_then(|id| Pid::from_raw(id as i32))
            .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
        // Declared after `child`, so dropped before it: the leader is still unreaped then.
        let mut guard = GroupGuard { pgid, armed: true };

        let stop = CancellationToken::new();
        let cap = self.output_cap_bytes;
        let (echo_out, echo_err): (Echo, Echo) = if self.echo {
            (
                Some(Box::new(tokio::io::stdout())),
                Some(Box::new(tokio::io::stderr())),
            )
        } else {
            (None, None)
        };
        let out_task = tokio::spawn(pump(
            child.stdout.take(),
            stdout_file,
            cap,
            stop.clone(),
            echo_out,
        ));
        let err_task = tokio::spawn(pump(
            child.stderr.take(),
            stderr_file,
            cap,
            stop.clone(),
            echo_err,
        ));

        // Shared: awaited once in the race and again after the kill.
        let exited = leader_exited(pgid).map(|_| ()).shared();
        let watched = watch_size(spec.watch_dir.clone(), self.max_dir_bytes, self.dir_poll);
        let ended = tokio::select! {
            _ = exited.clone() => None,
            _ = tokio::time::sleep(spec.timeout) => Some(ExitKind::TimedOut),
            _ = cancel.cancelled() => Some(ExitKind::Cancelled),
            limit = watched => Some(ExitKind::LimitExceeded(limit)),
        };
        if ended.is_some() {
            signal_group(pgid, Signal::TERM);
            let _ = tokio::time::timeout(self.kill_grace, exited.clone()).await;
        }
        // Whatever is left of the group goes now, whether the leader ended on its own or not.
        signal_group(pgid, Signal::KILL);
        exited.await;

        let pipes = async { (join(out_task).await, join(err_task).await) };
        tokio::pin!(pipes);
        let (out, err) = match tokio::time::timeout(PIPE_GRACE, &mut pipes).await {
            Ok(done) => done,
            Err(_) => {
                tracing::warn!(
                    program = %spec.program,
                    "output pipes still open after the process group was killed; a process left the group"
                );
                stop.cancel();
                pipes.await
            }
        };
        let (out, err) = (out?, err?);

        let status = child.wait().await?;
        guard.armed = false;
        let cuda_visible_devices = self
            .child_env(spec)
            .into_iter()
            .find(|(k, _)| k == "CUDA_VISIBLE_DEVICES")
            .map(|(_, v)| v.to_string_lossy().into_owned());
        Ok(RunOutcome {
            cuda_visible_devices,
            exit: ended.unwrap_or_else(|| exit_kind(status)),
            elapsed: started.elapsed(),
            stdout_tail: out.tail_text(),
            stderr_tail: err.tail_text(),
            stdout_bytes: out.total,
            stderr_bytes: err.total,
        })
    }

    async fn reattach(
        &self,
        _attachment: &Attachment,
        _spec: &RunSpec,
        _events: &dyn RunEvents,
        _cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        Err(RunError::Lost(
            "re-attaching to local runs is not supported yet".into(),
        ))
    }
}

/// Resolves when `dir` has grown past `max` bytes (measured every `every`); never without
/// both.
async fn watch_size(dir: Option<PathBuf>, max: Option<u64>, every: Duration) -> Limit {
    let (Some(dir), Some(max)) = (dir, max) else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        let d = dir.clone();
        let size = tokio::task::spawn_blocking(move || dir_size(&d))
            .await
            .unwrap_or(0);
        if size > max {
            return Limit::RunDirBytes(max);
        }
    }
}

/// The apparent size of everything under `dir` (files' lengths, so a sparse file counts
/// at its full length), without following symbolic links. Entries that vanish or cannot
/// be read while walking count as 0.
pub fn dir_size(dir: &Path) -> u64 {
    let mut total = 0u64;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in entries.flatten() {
            let Ok(meta) = std::fs::symlink_metadata(e.path()) else {
                continue;
            };
            if meta.is_dir() {
                stack.push(e.path());
            } else {
                total = total.saturating_add(meta.len());
            }
        }
    }
    total
}

fn exit_kind(status: ExitStatus) -> ExitKind {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(0), _) => ExitKind::Success,
        (Some(c), _) => ExitKind::Failed(c),
        (None, Some(s)) => ExitKind::Signaled(s),
        (None, None) => ExitKind::Failed(-1),
    }
}

fn spawn_message(e: &std::io::Error, program: &str) -> String {
    match e.kind() {
        std::io::ErrorKind::NotFound => {
            format!("no such program: {program:?} is not a file and not found on PATH")
        }
        std::io::ErrorKind::PermissionDenied => format!("{program:?} is not executable ({e})"),
        _ => e.to_string(),
    }
}

/// Resolves when the leader has exited, without reaping it (so its pid stays ours).
fn leader_exited(pid: Pid) -> JoinHandle<()> {
    tokio::task::spawn_blocking(move || loop {
        match rustix::process::waitid(WaitId::Pid(pid), WaitIdOptions::EXITED | WaitIdOptions::NOWAIT) {
            Err(rustix::io::Errno::INTR) => continue,
            // Exited, or an error that waiting again would not fix (ECHILD): stop either way.
            _ => return,
        }
    })
}

fn signal_group(pgid: Pid, sig: Signal) {
    // ESRCH cannot happen while the leader is a zombie; anything else is only worth a log.
    if let Err(e) = rustix::process::kill_process_group(pgid, sig) {
        tracing::debug!(pgid = pgid.as_raw_nonzero().get(), ?sig, %e, "killpg");
    }
}

/// Kills the group if the run future is dropped midway (e.g. its task was aborted).
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, Signal::KILL);
        }
    }
}

/// Where a stream is echoed to, if anywhere.
type Echo = Option<Box<dyn tokio::io::AsyncWrite + Unpin + Send>>;

async fn join(task: JoinHandle<std::io::Result<Captured>>) -> std::io::Result<Captured> {
    task.await.map_err(std::io::Error::other)?
}

/// What a stream left behind in memory.
struct Captured {
    tail: VecDeque<u8>,
    total: u64,
}

impl Captured {
    fn tail_text(&self) -> String {
        let (a, b) = self.tail.as_slices();
        let mut bytes = Vec::with_capacity(a.len() + b.len());
        bytes.extend_from_slice(a);
        bytes.extend_from_slice(b);
        // A full ring may start inside a UTF-8 sequence: drop the orphaned continuation bytes.
        let skip = if self.total as usize > bytes.len() {
            bytes.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count()
        } else {
            0
        };
        String::from_utf8_lossy(&bytes[skip..]).into_owned()
    }
}

/// Copies a stream to its file, up to `cap` bytes on disk, keeping the last [`TAIL_BYTES`]
/// in memory. Over the cap, the file ends as: first `cap - keep` bytes, a marker, the last
/// `keep` bytes.
async fn pump<R: AsyncRead + Unpin>(
    reader: Option<R>,
    mut file: tokio::fs::File,
    cap: u64,
    stop: CancellationToken,
    mut echo: Echo,
) -> std::io::Result<Captured> {
    let mut got = Captured {
        tail: VecDeque::with_capacity(TAIL_BYTES),
        total: 0,
    };
    let Some(mut reader) = reader else {
        return Ok(got);
    };
    let keep = (TAIL_BYTES as u64).min(cap / 2);
    let head = cap - keep;
    let mut buf = vec![0u8; 64 * 1024];
    loop {
        let n = tokio::select! {
            biased;
            r = reader.read(&mut buf) => r?,
            _ = stop.cancelled() => break,
        };
        if n == 0 {
            break;
        }
        let chunk = &buf[..n];
        if let Some(w) = echo.as_mut() {
            // A closed terminal must not stop the run: stop echoing instead.
            if w.write_all(chunk).await.is_err() || w.flush().await.is_err() {
                echo = None;
            }
        }
        if got.total < cap {
            let room = (cap - got.total).min(n as u64) as usize;
            file.write_all(&chunk[..room]).await?;
        }
        got.total += n as u64;
        push_tail(&mut got.tail, chunk);
    }
    if got.total > cap {
        file.flush().await?;
        file.set_len(head).await?;
        file.seek(std::io::SeekFrom::End(0)).await?;
        let omitted = got.total - head - keep;
        let marker =
            format!("\n[aisci: output truncated, {omitted} bytes omitted; the last {keep} bytes follow]\n");
        file.write_all(marker.as_bytes()).await?;
        let start = got.tail.len() - keep as usize;
        let last: Vec<u8> = got.tail.range(start..).copied().collect();
        file.write_all(&last).await?;
    }
    file.flush().await?;
    Ok(got)
}

fn push_tail(tail: &mut VecDeque<u8>, chunk: &[u8]) {
    let chunk = &chunk[chunk.len().saturating_sub(TAIL_BYTES)..];
    let over = (tail.len() + chunk.len()).saturating_sub(TAIL_BYTES);
    tail.drain(..over);
    tail.extend(chunk);
}

/// Lexically normalises `p` against `cwd` (no file-system access): `cwd/p` for a relative
/// path, with `.` and `..` components resolved.
pub(crate) fn absolutize(cwd: &Path, p: &Path) -> PathBuf {
    use std::path::Component;
    let joined = if p.is_absolute() {
        p.to_path_buf()
    } else {
        cwd.join(p)
    };
    let mut out = PathBuf::new();
    for c in joined.components() {
        match c {
            Component::CurDir => {}
            Component::ParentDir => {
                out.pop();
            }
            other => out.push(other),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tail_ring_is_bounded() {
        let mut t = VecDeque::new();
        push_tail(&mut t, &vec![1u8; TAIL_BYTES - 10]);
        push_tail(&mut t, &[2u8; 20]);
        assert_eq!(t.len(), TAIL_BYTES);
        assert_eq!(t.back(), Some(&2));
        push_tail(&mut t, &vec![3u8; TAIL_BYTES * 2]);
        assert!(t.iter().all(|b| *b == 3));
    }

    #[test]
    fn tail_text_skips_split_char() {
        let mut c = Captured {
            tail: VecDeque::new(),
            total: 100,
        };
        c.tail.extend("é!".as_bytes()[1..].iter());
        assert_eq!(c.tail_text(), "!");
    }

    #[test]
    fn absolutize_resolves_dots() {
        let cwd = Path::new("/a/b");
        assert_eq!(
            absolutize(cwd, Path::new("./x/../y.py")),
            PathBuf::from("/a/b/y.py")
        );
        assert_eq!(absolutize(cwd, Path::new("/c/./d.py")), PathBuf::from("/c/d.py"));
    }
}
