//! Runs an experiment as a Slurm batch job.
//!
//! The job is submitted with `sbatch --parsable` from a small script written into the run
//! folder; Slurm queues it, hands out GPUs (`--gres=gpu:N`, so Slurm sets
//! `CUDA_VISIBLE_DEVICES`) and writes its output straight into the run's stdout/stderr
//! files, which aisci tails. State comes from `squeue` while the job is queued or runs,
//! then `scontrol show job` (kept for the cluster's `MinJobAge`), then `sacct` where
//! accounting exists. Slurm's own limit (`--time`) is in whole minutes and only a backstop:
//! aisci cancels the job itself at the exact deadline.
//!
//! What aisci touches: only the job it submitted, by id (`scancel <id>`), never by name or
//! user. Every Slurm command runs under a time limit, so a dead controller is an error,
//! not a hang. The job's environment is sbatch's, and sbatch runs with aisci's environment
//! minus secrets ([`super::env::scrub`]) plus the run's own variables (`--export=ALL`).

use std::collections::VecDeque;
use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use tokio::io::{AsyncReadExt, AsyncSeekExt, AsyncWriteExt};
use tokio_util::sync::CancellationToken;

use super::local::{dir_size, TAIL_BYTES};
use super::{
    env, Attachment, ExitKind, Limit, Ran, RunError, RunEvent, RunEvents, RunOutcome, RunSpec, Runner,
    SlurmAttachment, Stream,
};
use crate::config::{RunSettings, SlurmSettings};

/// How long a cancelled job may take to leave the node (Slurm's `KillWait` is 30 s by default).
pub const CANCEL_WAIT: Duration = Duration::from_secs(60);
/// How long Slurm may stay unreachable while a job is watched before the run is given up.
pub const UNREACHABLE_GRACE: Duration = Duration::from_secs(120);
/// Minutes added to Slurm's `--time` beyond aisci's own limit (which aisci enforces).
const TIME_SLACK_MINUTES: u64 = 1;
/// Most output read from one file per poll.
const READ_CHUNK: usize = 4 << 20;

/// The Slurm commands, by path or name on `PATH`.
#[derive(Debug, Clone)]
pub struct SlurmTools {
    pub sbatch: PathBuf,
    pub squeue: PathBuf,
    pub scontrol: PathBuf,
    pub sacct: PathBuf,
    pub scancel: PathBuf,
}

impl Default for SlurmTools {
    fn default() -> Self {
        Self {
            sbatch: "sbatch".into(),
            squeue: "squeue".into(),
            scontrol: "scontrol".into(),
            sacct: "sacct".into(),
            scancel: "scancel".into(),
        }
    }
}

/// The Slurm [`Runner`].
#[derive(Debug, Clone)]
pub struct SlurmRunner {
    settings: SlurmSettings,
    tools: SlurmTools,
    /// Set on every Slurm command (and so seen by the job too), e.g. `SLURM_CONF`.
    tool_env: Vec<(OsString, OsString)>,
    /// `None`: aisci's own environment, read at each run.
    base_env: Option<Arc<Vec<(OsString, OsString)>>>,
    secret_names: Vec<String>,
    max_dir_bytes: Option<u64>,
    /// `--mem`, and the contained run's memory limit on the node; None: the node's share.
    max_memory: Option<u64>,
    max_processes: Option<u32>,
    /// The aisci binary that contains the run on the node (`aisci contain`); None, or not
    /// executable there: the job runs the experiment directly, contained only by Slurm.
    contain: Option<PathBuf>,
    echo: bool,
    poll: Duration,
    command_timeout: Duration,
    cancel_wait: Duration,
    unreachable_grace: Duration,
    /// Set once `sacct` said accounting is disabled: not asked again.
    no_accounting: Arc<AtomicBool>,
}

impl SlurmRunner {
    pub fn new(settings: &SlurmSettings) -> Self {
        Self {
            settings: settings.clone(),
            tools: SlurmTools::default(),
            tool_env: Vec::new(),
            base_env: None,
            secret_names: Vec::new(),
            max_dir_bytes: None,
            max_memory: None,
            max_processes: None,
            contain: super::contain::this_binary().map(Path::to_path_buf),
            echo: false,
            poll: Duration::from_millis(settings.poll_ms.max(10)),
            command_timeout: Duration::from_secs(settings.command_timeout_secs.max(1)),
            cancel_wait: CANCEL_WAIT,
            unreachable_grace: UNREACHABLE_GRACE,
            no_accounting: Arc::default(),
        }
    }

    /// `[run]`: the `[run.slurm]` table, the run-folder, process and memory limits.
    pub fn from_run_settings(run: &RunSettings) -> Self {
        Self::new(&run.slurm)
            .with_max_dir_bytes(Some(run.max_run_dir_bytes))
            .with_max_processes(Some(run.max_processes))
            .with_max_memory(run.max_memory_bytes)
    }

    /// The job's memory: `--mem` and the limit of its control group on the node. None:
    /// no `--mem` (the site's default), and three quarters of the node's memory there.
    pub fn with_max_memory(mut self, bytes: Option<u64>) -> Self {
        self.max_memory = bytes;
        self
    }

    pub fn with_max_processes(mut self, max: Option<u32>) -> Self {
        self.max_processes = max;
        self
    }

    /// The aisci binary the job script calls to contain the run on the node (default: this
    /// process's own, when it is the `aisci` binary).
    pub fn with_contain_binary(mut self, aisci: Option<PathBuf>) -> Self {
        self.contain = aisci;
        self
    }

    pub fn with_tools(mut self, tools: SlurmTools) -> Self {
        self.tools = tools;
        self
    }

    /// Variables set for every Slurm command (e.g. `SLURM_CONF`); the job inherits them.
    pub fn with_tool_env(mut self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        self.tool_env.extend(vars);
        self
    }

    /// Start from this environment instead of the process's (secrets are still removed).
    pub fn with_base_env(mut self, vars: impl IntoIterator<Item = (OsString, OsString)>) -> Self {
        self.base_env = Some(Arc::new(vars.into_iter().collect()));
        self
    }

    /// More variable names to keep from jobs, e.g. the configured `api_key_env`.
    pub fn with_secret_names(mut self, names: impl IntoIterator<Item = String>) -> Self {
        self.secret_names.extend(names);
        self
    }

    /// A job whose [`RunSpec::watch_dir`] grows past `bytes` is cancelled with
    /// [`ExitKind::LimitExceeded`] (checked at each poll).
    pub fn with_max_dir_bytes(mut self, bytes: Option<u64>) -> Self {
        self.max_dir_bytes = bytes;
        self
    }

    /// Copy the job's output to aisci's stdout/stderr as it is polled.
    pub fn with_echo(mut self, echo: bool) -> Self {
        self.echo = echo;
        self
    }

    pub fn with_poll(mut self, every: Duration) -> Self {
        self.poll = every.max(Duration::from_millis(10));
        self
    }

    pub fn with_command_timeout(mut self, limit: Duration) -> Self {
        self.command_timeout = limit;
        self
    }

    pub fn with_cancel_wait(mut self, wait: Duration) -> Self {
        self.cancel_wait = wait;
        self
    }

    pub fn with_unreachable_grace(mut self, grace: Duration) -> Self {
        self.unreachable_grace = grace;
        self
    }

    /// The environment sbatch runs with, and so the job's: the base without secrets, the
    /// Slurm command variables, then `spec.env`.
    pub fn job_env(&self, spec: &RunSpec) -> Vec<(OsString, OsString)> {
        let extra = self
            .tool_env
            .iter()
            .cloned()
            .chain(spec.env.iter().map(|(k, v)| (k.into(), v.into())));
        env::compose(
            self.base_env.as_deref().map(Vec::as_slice),
            &self.secret_names,
            extra,
        )
    }

    /// The `sbatch` arguments for a run whose script is `script`.
    pub fn sbatch_args(&self, spec: &RunSpec, script: &Path) -> Vec<String> {
        let s = &self.settings;
        let mut args = vec!["--parsable".to_string()];
        if let Some(p) = &s.partition {
            args.push(format!("--partition={p}"));
        }
        if let Some(a) = &s.account {
            args.push(format!("--account={a}"));
        }
        // The site's options first: aisci's own below win where they overlap.
        args.extend(s.extra_args.iter().cloned());
        if s.gpus_per_run > 0 {
            args.push(format!("--gres=gpu:{}", s.gpus_per_run));
        }
        if let Some(bytes) = self.max_memory {
            args.push(format!("--mem={}M", (bytes >> 20).max(1)));
        }
        args.extend([
            format!("--job-name={}", job_name(spec)),
            format!("--chdir={}", spec.cwd.display()),
            format!("--output={}", slurm_path(&spec.stdout_path)),
            format!("--error={}", slurm_path(&spec.stderr_path)),
            "--open-mode=append".into(),
            format!("--time={}", slurm_time(spec.timeout)),
            "--export=ALL".into(),
            script.display().to_string(),
        ]);
        args
    }

    /// Runs one Slurm command under the command time limit.
    async fn tool(
        &self,
        program: &Path,
        args: &[String],
        env: Option<&[(OsString, OsString)]>,
    ) -> Result<ToolOut, ToolError> {
        let name = program
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| program.display().to_string());
        let mut cmd = tokio::process::Command::new(program);
        cmd.args(args)
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true);
        match env {
            Some(vars) => {
                cmd.env_clear().envs(vars.iter().cloned());
            }
            None => {
                cmd.envs(self.tool_env.iter().cloned());
            }
        }
        let child = cmd.spawn().map_err(|e| ToolError::Missing {
            tool: name.clone(),
            message: if e.kind() == std::io::ErrorKind::NotFound {
                format!("{} not found: is Slurm installed and on PATH?", program.display())
            } else {
                e.to_string()
            },
        })?;
        match tokio::time::timeout(self.command_timeout, child.wait_with_output()).await {
            Err(_) => Err(ToolError::TimedOut {
                tool: name,
                secs: self.command_timeout.as_secs_f64(),
            }),
            Ok(Err(e)) => Err(ToolError::Missing {
                tool: name,
                message: e.to_string(),
            }),
            Ok(Ok(o)) => Ok(ToolOut {
                tool: name,
                ok: o.status.success(),
                stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
                stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
            }),
        }
    }

    async fn submit(&self, spec: &RunSpec, script: &Path) -> Result<String, RunError> {
        let args = self.sbatch_args(spec, script);
        let env = self.job_env(spec);
        let out = self
            .tool(&self.tools.sbatch, &args, Some(&env))
            .await
            .map_err(ToolError::into_run_error)?;
        let id = out
            .stdout
            .trim()
            .split(';')
            .next()
            .unwrap_or("")
            .trim()
            .to_owned();
        if !out.ok || id.is_empty() || !id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return Err(RunError::Rejected(format!(
                "sbatch rejected the job: {}",
                out.message()
            )));
        }
        Ok(id)
    }

    /// The job's state and start time as `squeue` sees it; None once it left the queue.
    async fn queue_state(&self, job: &str) -> Result<Option<(String, Option<String>)>, ToolError> {
        let args = ["-h", "-j", job, "-o", "%T|%S"].map(String::from);
        let out = self.tool(&self.tools.squeue, &args, None).await?;
        if !out.ok {
            if out.stderr.contains("Invalid job id") {
                return Ok(None);
            }
            return Err(ToolError::Failed(out.message()));
        }
        let line = out.stdout.lines().find(|l| !l.trim().is_empty());
        Ok(line.map(|l| {
            let (state, start) = l.trim().split_once('|').unwrap_or((l.trim(), ""));
            let start = (!start.is_empty() && start != "N/A").then(|| start.to_owned());
            (state.to_owned(), start)
        }))
    }

    /// Pending jobs ahead of `job` in its partition (lower ids: an estimate, as Slurm's
    /// priorities may reorder them).
    async fn ahead(&self, job: &str) -> usize {
        let ours = leading_number(job);
        let mut args = ["-h", "-t", "PENDING", "-o", "%i"].map(String::from).to_vec();
        if let Some(p) = &self.settings.partition {
            args.push(format!("--partition={p}"));
        }
        match self.tool(&self.tools.squeue, &args, None).await {
            Ok(out) if out.ok => out
                .stdout
                .lines()
                .filter(|l| leading_number(l.trim()) < ours)
                .count(),
            _ => 0,
        }
    }

    /// How the job ended, from `scontrol`, else `sacct`; None when Slurm no longer knows it.
    async fn final_state(&self, job: &str) -> Result<Option<Ended>, ToolError> {
        let args = ["show", "job", "-o", job].map(String::from);
        let out = self.tool(&self.tools.scontrol, &args, None).await?;
        if out.ok {
            let fields = parse_scontrol(&out.stdout);
            if let Some(state) = fields
                .iter()
                .find(|(k, _)| k == "JobState")
                .map(|(_, v)| v.clone())
            {
                let get = |k: &str| fields.iter().find(|(n, _)| n == k).map(|(_, v)| v.as_str());
                return Ok(Some(Ended {
                    state,
                    exit_code: get("ExitCode").map(parse_exit_code).unwrap_or((0, 0)),
                    run_time: get("RunTime").and_then(parse_duration),
                    reason: get("Reason").filter(|r| *r != "None").map(str::to_owned),
                }));
            }
        } else if !out.stderr.contains("Invalid job id") {
            return Err(ToolError::Failed(out.message()));
        }
        if self.no_accounting.load(Ordering::Relaxed) {
            return Ok(None);
        }
        let args = ["-n", "-X", "-P", "-j", job, "-o", "State,ExitCode,Elapsed"].map(String::from);
        let out = self.tool(&self.tools.sacct, &args, None).await?;
        let text = format!("{}{}", out.stdout, out.stderr);
        if text.contains("accounting storage is disabled") {
            self.no_accounting.store(true, Ordering::Relaxed);
            return Ok(None);
        }
        if !out.ok {
            return Err(ToolError::Failed(out.message()));
        }
        Ok(out.stdout.lines().find_map(|l| {
            let mut f = l.trim().split('|');
            let state = f.next()?.split_whitespace().next()?.to_owned();
            (!state.is_empty()).then(|| Ended {
                state,
                exit_code: f.next().map(parse_exit_code).unwrap_or((0, 0)),
                run_time: f.next().and_then(parse_duration),
                reason: None,
            })
        }))
    }

    /// `scancel <job>`, then waits (bounded) until the job has left the node.
    async fn cancel_job(&self, job: &str) {
        let args = [job.to_owned()];
        match self.tool(&self.tools.scancel, &args, None).await {
            Ok(out) if !out.ok => tracing::warn!(job, message = %out.message(), "scancel failed"),
            Err(e) => tracing::warn!(job, error = %e, "scancel failed"),
            Ok(_) => {}
        }
        let until = Instant::now() + self.cancel_wait;
        while Instant::now() < until {
            match self.queue_state(job).await {
                Ok(None) => return,
                Ok(Some((state, _))) if !is_active(&state) => return,
                _ => tokio::time::sleep(Duration::from_millis(200)).await,
            }
        }
        tracing::warn!(
            job,
            "the cancelled job has not left the queue after {:?}",
            self.cancel_wait
        );
    }

    /// Watches `job` to its end: queue events, output, aisci's deadline, cancellation.
    async fn watch(
        &self,
        job: &str,
        spec: &RunSpec,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        let mut guard = CancelOnDrop {
            scancel: self.tools.scancel.clone(),
            env: self.tool_env.clone(),
            job: job.to_owned(),
            armed: true,
        };
        let begun = Instant::now();
        let mut out = FileTail::new(&spec.stdout_path, Stream::Stdout);
        let mut err = FileTail::new(&spec.stderr_path, Stream::Stderr);
        let mut deadline: Option<tokio::time::Instant> = None;
        let mut running_since: Option<Instant> = None;
        let mut last_ahead = None;
        let mut unreachable_since: Option<Instant> = None;
        let mut dir_base: Option<u64> = None;
        let far = || tokio::time::Instant::now() + Duration::from_secs(86400 * 365);

        let stopped = loop {
            let polled = tokio::select! {
                r = self.queue_state(job) => r,
                _ = cancel.cancelled() => break Some(ExitKind::Cancelled),
                _ = tokio::time::sleep_until(deadline.unwrap_or_else(far)) => break Some(ExitKind::TimedOut),
            };
            match polled {
                Ok(None) => break None,
                Ok(Some((state, start))) => {
                    unreachable_since = None;
                    if state == "PENDING" {
                        let ahead = self.ahead(job).await;
                        if last_ahead != Some(ahead) {
                            last_ahead = Some(ahead);
                            events.on_event(RunEvent::Queued { ahead });
                        }
                    } else if !is_active(&state) {
                        break None;
                    } else if deadline.is_none() && state != "CONFIGURING" {
                        let (at, unix_ms) = deadline_from_start(start.as_deref(), spec.timeout);
                        deadline = Some(at);
                        running_since = Some(Instant::now());
                        events.on_event(RunEvent::Started(Attachment::Slurm(SlurmAttachment {
                            job_id: job.to_owned(),
                            deadline_unix_ms: unix_ms,
                        })));
                    }
                }
                Err(e) => {
                    let since = *unreachable_since.get_or_insert_with(Instant::now);
                    if since.elapsed() >= self.unreachable_grace {
                        self.cancel_job(job).await;
                        guard.armed = false;
                        return Err(RunError::Lost(format!(
                            "Slurm did not answer for {} s while watching job {job} ({e}); asked it to cancel the job",
                            since.elapsed().as_secs()
                        )));
                    }
                }
            }
            out.pump(events, self.echo).await;
            err.pump(events, self.echo).await;
            if let (Some(dir), Some(max)) = (&spec.watch_dir, self.max_dir_bytes) {
                let d = dir.clone();
                let size = tokio::task::spawn_blocking(move || dir_size(&d))
                    .await
                    .unwrap_or(0);
                // Growth since the watch began, as for local runs.
                if size.saturating_sub(*dir_base.get_or_insert(size)) > max {
                    break Some(ExitKind::LimitExceeded(Limit::RunDirBytes(max)));
                }
            }
            let next = tokio::time::Instant::now() + self.poll;
            tokio::select! {
                _ = tokio::time::sleep_until(deadline.map_or(next, |d| d.min(next))) => {}
                _ = cancel.cancelled() => break Some(ExitKind::Cancelled),
            }
            if deadline.is_some_and(|d| tokio::time::Instant::now() >= d) {
                break Some(ExitKind::TimedOut);
            }
        };
        if stopped.is_some() {
            self.cancel_job(job).await;
        }
        let ended = self.final_state(job).await;
        guard.armed = false;
        out.pump(events, self.echo).await;
        err.pump(events, self.echo).await;

        let (exit, run_time, note) = match (stopped, ended) {
            (Some(kind), Ok(e)) => (kind, e.and_then(|e| e.run_time), None),
            (Some(kind), Err(_)) => (kind, None, None),
            (None, Ok(Some(e))) => {
                let (mut kind, note) = exit_of(job, &e);
                // Recorded by `aisci contain` when the node's kernel killed the run for memory.
                let oom = std::fs::read_to_string(oom_file(spec)).ok();
                if let Some(limit) = oom
                    .and_then(|t| t.trim().parse().ok())
                    .or(match e.state.as_str() {
                        "OUT_OF_MEMORY" => self.max_memory,
                        _ => None,
                    })
                {
                    if kind != ExitKind::Success {
                        kind = ExitKind::LimitExceeded(Limit::Memory(limit));
                    }
                }
                (kind, e.run_time, note)
            }
            (None, Ok(None)) => {
                return Err(RunError::Lost(format!(
                    "Slurm job {job} is gone from squeue, scontrol and sacct; its exit status is unknown"
                )))
            }
            (None, Err(e)) => {
                return Err(RunError::Lost(format!(
                    "Slurm job {job} left the queue but its end could not be read: {e}"
                )))
            }
        };
        let elapsed = run_time
            .or_else(|| running_since.map(|s| s.elapsed()))
            .unwrap_or_else(|| begun.elapsed());
        let mut stderr_tail = err.tail_text();
        if let Some(note) = note {
            if !stderr_tail.is_empty() && !stderr_tail.ends_with('\n') {
                stderr_tail.push('\n');
            }
            stderr_tail.push_str(&note);
            stderr_tail.push('\n');
        }
        let cuda_visible_devices = std::fs::read_to_string(gpu_file(spec)).ok();
        Ok(RunOutcome {
            exit,
            elapsed,
            stdout_tail: out.tail_text(),
            stderr_tail,
            stdout_bytes: out.offset,
            stderr_bytes: err.offset,
            cuda_visible_devices,
        })
    }
}

#[async_trait]
impl Runner for SlurmRunner {
    async fn run_with(&self, spec: &RunSpec, events: &dyn RunEvents, cancel: &CancellationToken) -> Ran {
        if !spec.cwd.is_dir() {
            return Err(RunError::Spawn {
                program: spec.program.clone(),
                message: format!("working directory {} does not exist", spec.cwd.display()),
            });
        }
        let spec = &absolute_spec(spec)?;
        if cancel.is_cancelled() {
            return Ok(cancelled_before_start());
        }
        // Empty output files now, so that a stale file is never tailed; Slurm appends.
        tokio::fs::File::create(&spec.stdout_path).await?;
        tokio::fs::File::create(&spec.stderr_path).await?;
        let _ = std::fs::remove_file(gpu_file(spec));
        let _ = std::fs::remove_file(oom_file(spec));
        let script = run_folder(spec).join("slurm_job.sh");
        self.write_script(&script, spec)?;

        // Not raced with `cancel`: an sbatch killed midway may have submitted a job without
        // telling its id. A cancel now is seen by `watch`, which cancels the job by id.
        let job = self.submit(spec, &script).await?;
        tracing::info!(job, name = %job_name(spec), "submitted Slurm job");
        let provisional = unix_ms(SystemTime::now()) + spec.timeout.as_millis() as u64;
        events.on_event(RunEvent::Started(Attachment::Slurm(SlurmAttachment {
            job_id: job.clone(),
            deadline_unix_ms: provisional,
        })));
        self.watch(&job, spec, events, cancel).await
    }

    async fn reattach(
        &self,
        attachment: &Attachment,
        spec: &RunSpec,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        let Attachment::Slurm(a) = attachment else {
            return Err(RunError::Lost(
                "not a Slurm job; the Slurm runner cannot watch it".into(),
            ));
        };
        if a.job_id.is_empty() || !a.job_id.bytes().all(|b| b.is_ascii_digit() || b == b'_') {
            return Err(RunError::Lost(format!("{:?} is not a Slurm job id", a.job_id)));
        }
        let spec = &absolute_spec(spec)?;
        self.watch(&a.job_id, spec, events, cancel).await
    }
}

/// Cancels the job if the run future is dropped midway (e.g. its task was aborted).
struct CancelOnDrop {
    scancel: PathBuf,
    env: Vec<(OsString, OsString)>,
    job: String,
    armed: bool,
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if !self.armed {
            return;
        }
        let spawned = std::process::Command::new(&self.scancel)
            .arg(&self.job)
            .envs(self.env.iter().cloned())
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn();
        // Reaped on a thread of its own: a destructor must not block.
        if let Ok(mut child) = spawned {
            std::thread::spawn(move || child.wait());
        }
    }
}

struct ToolOut {
    tool: String,
    ok: bool,
    stdout: String,
    stderr: String,
}

impl ToolOut {
    /// What the command said, for an error message.
    fn message(&self) -> String {
        let text = if self.stderr.trim().is_empty() {
            self.stdout.trim()
        } else {
            self.stderr.trim()
        };
        let text = text.strip_prefix(&format!("{}: ", self.tool)).unwrap_or(text);
        let text = text.strip_prefix("error: ").unwrap_or(text);
        if text.is_empty() {
            format!("{} failed without a message", self.tool)
        } else {
            text.to_owned()
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum ToolError {
    #[error("cannot run {tool}: {message}")]
    Missing { tool: String, message: String },
    #[error("{tool} did not answer within {secs} s (is slurmctld running?)")]
    TimedOut { tool: String, secs: f64 },
    #[error("{0}")]
    Failed(String),
}

impl ToolError {
    fn into_run_error(self) -> RunError {
        match self {
            ToolError::Missing { tool, message } => RunError::Spawn {
                program: tool,
                message,
            },
            other => RunError::Rejected(other.to_string()),
        }
    }
}

/// How Slurm says a job ended.
#[derive(Debug, Clone, PartialEq)]
struct Ended {
    state: String,
    /// `ExitCode=x:y`: the script's exit code, the signal that ended it.
    exit_code: (i32, i32),
    run_time: Option<Duration>,
    reason: Option<String>,
}

/// The exit kind of a job that ended without aisci stopping it, and a line saying why
/// when Slurm ended it.
fn exit_of(job: &str, e: &Ended) -> (ExitKind, Option<String>) {
    let (code, signal) = e.exit_code;
    let by_code = || match (code, signal) {
        (0, 0) => ExitKind::Failed(1),
        (0, s) => ExitKind::Signaled(s),
        // `aisci contain` exits with 128 + the signal that ended the experiment: the rule
        // of local runs' leader.
        (c, _) => super::leader::exit_kind(c),
    };
    let note = |what: &str| {
        let reason = e.reason.as_deref().map(|r| format!(" ({r})")).unwrap_or_default();
        Some(format!("[aisci: Slurm job {job} ended {what}{reason}]"))
    };
    match e.state.as_str() {
        "COMPLETED" if code == 0 && signal == 0 => (ExitKind::Success, None),
        "COMPLETED" | "FAILED" => (by_code(), None),
        "TIMEOUT" | "DEADLINE" => (ExitKind::TimedOut, note("at Slurm's time limit")),
        "CANCELLED" => (
            ExitKind::Signaled(if signal > 0 { signal } else { 15 }),
            note("cancelled outside aisci"),
        ),
        "OUT_OF_MEMORY" => (by_code(), note("out of memory")),
        other => (by_code(), note(&format!("with state {other}"))),
    }
}

/// States in which the job still holds (or waits for) resources.
fn is_active(state: &str) -> bool {
    matches!(
        state,
        "PENDING"
            | "CONFIGURING"
            | "RUNNING"
            | "COMPLETING"
            | "SUSPENDED"
            | "STOPPED"
            | "REQUEUED"
            | "REQUEUE_HOLD"
            | "REQUEUE_FED"
            | "RESIZING"
            | "SIGNALING"
            | "STAGE_OUT"
            | "RESV_DEL_HOLD"
            | "POWER_UP_NODE"
    )
}

/// The one-line `scontrol show job -o` output as key/value pairs. Values may hold
/// spaces (`Command=`, `WorkDir=`): a word without `=` continues the previous value.
fn parse_scontrol(text: &str) -> Vec<(String, String)> {
    let mut fields: Vec<(String, String)> = Vec::new();
    for word in text.split_whitespace() {
        match word.split_once('=') {
            Some((k, v))
                if !k.is_empty()
                    && k.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"/:_".contains(&b)) =>
            {
                fields.push((k.to_owned(), v.to_owned()))
            }
            _ => {
                if let Some((_, v)) = fields.last_mut() {
                    v.push(' ');
                    v.push_str(word);
                }
            }
        }
    }
    fields
}

/// `"3:0"` → (3, 0).
fn parse_exit_code(s: &str) -> (i32, i32) {
    let (a, b) = s.trim().split_once(':').unwrap_or((s.trim(), "0"));
    (a.parse().unwrap_or(0), b.parse().unwrap_or(0))
}

/// Slurm's `[D-]HH:MM:SS` (or `MM:SS`).
fn parse_duration(s: &str) -> Option<Duration> {
    let s = s.trim();
    let (days, rest) = match s.split_once('-') {
        Some((d, r)) => (d.parse::<u64>().ok()?, r),
        None => (0, s),
    };
    let parts: Vec<u64> = rest.split(':').map(|p| p.parse().ok()).collect::<Option<_>>()?;
    let secs = match parts[..] {
        [h, m, s] => h * 3600 + m * 60 + s,
        [m, s] => m * 60 + s,
        _ => return None,
    };
    Some(Duration::from_secs(days * 86400 + secs))
}

/// `--time`: aisci's limit rounded up to whole minutes, plus a minute of slack (aisci
/// cancels at the exact deadline; this is only the backstop if aisci is gone).
fn slurm_time(timeout: Duration) -> String {
    let minutes = timeout.as_secs().div_ceil(60).max(1) + TIME_SLACK_MINUTES;
    let (d, h, m) = (minutes / 1440, minutes / 60 % 24, minutes % 60);
    format!("{d}-{h:02}:{m:02}:00")
}

/// Where aisci's deadline falls: `timeout` after the job's start time (`squeue %S`, local
/// time, whole seconds: taken as the end of that second, so the run never gets less than
/// its limit), else after now.
fn deadline_from_start(start: Option<&str>, timeout: Duration) -> (tokio::time::Instant, u64) {
    use chrono::TimeZone;
    let now_ms = unix_ms(SystemTime::now());
    let start_ms = start
        .and_then(|s| chrono::NaiveDateTime::parse_from_str(s, "%Y-%m-%dT%H:%M:%S").ok())
        .and_then(|t| chrono::Local.from_local_datetime(&t).earliest())
        .map(|t| (t.timestamp_millis().max(0) as u64 + 1000).min(now_ms))
        .unwrap_or(now_ms);
    let deadline_ms = start_ms + timeout.as_millis() as u64;
    let left = Duration::from_millis(deadline_ms.saturating_sub(now_ms));
    (tokio::time::Instant::now() + left, deadline_ms)
}

fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn leading_number(id: &str) -> u64 {
    let digits: String = id.chars().take_while(char::is_ascii_digit).collect();
    digits.parse().unwrap_or(u64::MAX)
}

/// `aisci-<folder>-<run folder>`, with only characters every tool shows plainly.
fn job_name(spec: &RunSpec) -> String {
    let part = |p: &Path| {
        p.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let raw = format!("aisci-{}-{}", part(&spec.cwd), part(run_folder(spec)));
    raw.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(120)
        .collect()
}

/// A path as an sbatch file name: `%` starts a pattern there, `%%` is a plain `%`.
fn slurm_path(p: &Path) -> String {
    p.display().to_string().replace('%', "%%")
}

/// The run's folder: where its stdout goes.
fn run_folder(spec: &RunSpec) -> &Path {
    spec.stdout_path.parent().unwrap_or(&spec.cwd)
}

/// Where `aisci contain` records the memory limit the run went over.
fn oom_file(spec: &RunSpec) -> PathBuf {
    run_folder(spec).join(".slurm_out_of_memory")
}

/// Where the job script records the `CUDA_VISIBLE_DEVICES` Slurm gave the job.
fn gpu_file(spec: &RunSpec) -> PathBuf {
    run_folder(spec).join("slurm_cuda_visible_devices")
}

fn absolute_spec(spec: &RunSpec) -> Result<RunSpec, RunError> {
    let mut s = spec.clone();
    s.cwd = std::path::absolute(&spec.cwd)?;
    s.stdout_path = super::local::absolutize(&s.cwd, &spec.stdout_path);
    s.stderr_path = super::local::absolutize(&s.cwd, &spec.stderr_path);
    s.watch_dir = spec
        .watch_dir
        .as_ref()
        .map(|d| super::local::absolutize(&s.cwd, d));
    Ok(s)
}

fn cancelled_before_start() -> RunOutcome {
    RunOutcome {
        exit: ExitKind::Cancelled,
        elapsed: Duration::ZERO,
        stdout_tail: String::new(),
        stderr_tail: String::new(),
        stdout_bytes: 0,
        stderr_bytes: 0,
        cuda_visible_devices: None,
    }
}

fn shell_quote(s: &str) -> String {
    format!("'{}'", s.replace('\'', r"'\''"))
}

impl SlurmRunner {
    /// The batch script: records the GPUs Slurm gave the job, then becomes `aisci contain`
    /// (which holds the experiment and everything it starts, and exits as it did) or, where
    /// the node cannot run that binary, the program itself, contained only by Slurm.
    fn write_script(&self, path: &Path, spec: &RunSpec) -> std::io::Result<()> {
        let quote_path = |p: &Path| shell_quote(&p.display().to_string());
        let command: Vec<String> = std::iter::once(&spec.program)
            .chain(&spec.args)
            .map(|a| shell_quote(a))
            .collect();
        let command = command.join(" ");
        let mut text = format!(
            "#!/bin/sh\n# Written by aisci: one experiment run as a Slurm job.\n\
             if [ -n \"${{CUDA_VISIBLE_DEVICES+x}}\" ]; then printf '%s' \"$CUDA_VISIBLE_DEVICES\" > {}; fi\n",
            quote_path(&gpu_file(spec)),
        );
        if let Some(aisci) = &self.contain {
            let mut limits = vec![format!("--oom-file={}", quote_path(&oom_file(spec)))];
            if let Some(n) = self.max_processes {
                limits.push(format!("--max-processes={n}"));
            }
            if let Some(n) = self.max_memory {
                limits.push(format!("--max-memory={n}"));
            }
            text.push_str(&format!(
                "if [ -x {a} ]; then exec {a} contain {} -- {command}; fi\n\
                 echo '[aisci: '{a}' cannot run on this node; the run is contained by Slurm only]' >&2\n",
                limits.join(" "),
                a = quote_path(aisci),
            ));
        }
        text.push_str(&format!("exec {command}\n"));
        let tmp = path.with_extension("sh.tmp");
        std::fs::write(&tmp, text)?;
        std::fs::rename(&tmp, path)
    }
}

/// Follows one output file that Slurm writes, keeping the last [`TAIL_BYTES`].
struct FileTail {
    path: PathBuf,
    stream: Stream,
    offset: u64,
    ring: VecDeque<u8>,
    /// The start of a UTF-8 sequence cut by the end of the last read.
    partial: Vec<u8>,
}

impl FileTail {
    fn new(path: &Path, stream: Stream) -> Self {
        Self {
            path: path.to_path_buf(),
            stream,
            offset: 0,
            ring: VecDeque::with_capacity(TAIL_BYTES),
            partial: Vec::new(),
        }
    }

    /// Reads what was appended since the last call and reports it.
    async fn pump(&mut self, events: &dyn RunEvents, echo: bool) {
        let Ok(mut file) = tokio::fs::File::open(&self.path).await else {
            return;
        };
        let mut buf = Vec::new();
        if file.seek(std::io::SeekFrom::Start(self.offset)).await.is_err() {
            return;
        }
        if (&mut file)
            .take(READ_CHUNK as u64)
            .read_to_end(&mut buf)
            .await
            .is_err()
            || buf.is_empty()
        {
            return;
        }
        self.offset += buf.len() as u64;
        let tail = &buf[buf.len().saturating_sub(TAIL_BYTES)..];
        let over = (self.ring.len() + tail.len()).saturating_sub(TAIL_BYTES);
        self.ring.drain(..over);
        self.ring.extend(tail);
        if echo {
            let ok = match self.stream {
                Stream::Stdout => tokio::io::stdout().write_all(&buf).await,
                Stream::Stderr => tokio::io::stderr().write_all(&buf).await,
            };
            let _ = ok;
        }
        let mut bytes = std::mem::take(&mut self.partial);
        bytes.extend_from_slice(&buf);
        let keep = match std::str::from_utf8(&bytes) {
            Err(e) if e.error_len().is_none() => bytes.len() - e.valid_up_to(),
            _ => 0,
        };
        self.partial = bytes.split_off(bytes.len() - keep);
        events.on_event(RunEvent::Output {
            stream: self.stream,
            text: String::from_utf8_lossy(&bytes).into_owned(),
        });
    }

    fn tail_text(&self) -> String {
        let bytes: Vec<u8> = self.ring.iter().copied().collect();
        let skip = if self.offset as usize > bytes.len() {
            bytes.iter().take(3).take_while(|b| (**b & 0xC0) == 0x80).count()
        } else {
            0
        };
        String::from_utf8_lossy(&bytes[skip..]).into_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ended(state: &str, code: (i32, i32)) -> Ended {
        Ended {
            state: state.into(),
            exit_code: code,
            run_time: None,
            reason: None,
        }
    }

    #[test]
    fn states_map_to_exit_kinds() {
        assert_eq!(exit_of("1", &ended("COMPLETED", (0, 0))).0, ExitKind::Success);
        assert_eq!(exit_of("1", &ended("FAILED", (3, 0))).0, ExitKind::Failed(3));
        assert_eq!(exit_of("1", &ended("FAILED", (0, 11))).0, ExitKind::Signaled(11));
        assert_eq!(exit_of("1", &ended("TIMEOUT", (0, 15))).0, ExitKind::TimedOut);
        let (kind, note) = exit_of("7", &ended("OUT_OF_MEMORY", (0, 125)));
        assert_eq!(kind, ExitKind::Signaled(125));
        assert!(note.unwrap().contains("job 7 ended out of memory"));
        let (kind, note) = exit_of("7", &ended("NODE_FAIL", (0, 0)));
        assert_eq!(kind, ExitKind::Failed(1));
        assert!(note.unwrap().contains("NODE_FAIL"));
    }

    #[test]
    fn scontrol_line_parses_with_spaces_in_values() {
        let f = parse_scontrol(
            "JobId=5 JobName=x JobState=FAILED Reason=NonZeroExitCode ExitCode=3:0 RunTime=1-00:00:03 \
             WorkDir=/tmp/a b StdOut=/tmp/o",
        );
        let get = |k: &str| f.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        assert_eq!(get("JobState").as_deref(), Some("FAILED"));
        assert_eq!(get("WorkDir").as_deref(), Some("/tmp/a b"));
        assert_eq!(parse_exit_code(&get("ExitCode").unwrap()), (3, 0));
        assert_eq!(
            parse_duration(&get("RunTime").unwrap()),
            Some(Duration::from_secs(86403))
        );
        assert_eq!(parse_duration("02:05"), Some(Duration::from_secs(125)));
        assert_eq!(parse_duration("Unknown"), None);
    }

    #[test]
    fn deadline_counts_from_the_end_of_the_start_second() {
        let limit = Duration::from_secs(600);
        let now = chrono::Local::now();
        let ago = |secs: i64| {
            (now - chrono::Duration::seconds(secs))
                .format("%Y-%m-%dT%H:%M:%S")
                .to_string()
        };
        let now_ms = unix_ms(SystemTime::now());
        let (_, ms) = deadline_from_start(Some(&ago(100)), limit);
        // Started 100-101 s ago (the second is truncated): about 500 s left.
        let left = ms as i64 - now_ms as i64;
        assert!((498_000..=501_100).contains(&left), "{left}");
        // No start, or one in the future: from now.
        for start in [None, Some(ago(-50))] {
            let (_, ms) = deadline_from_start(start.as_deref(), limit);
            assert!((ms as i64 - now_ms as i64 - 600_000).abs() < 1000);
        }
    }

    #[test]
    fn time_limit_rounds_up_to_minutes_with_slack() {
        assert_eq!(slurm_time(Duration::from_secs(1)), "0-00:02:00");
        assert_eq!(slurm_time(Duration::from_secs(60)), "0-00:02:00");
        assert_eq!(slurm_time(Duration::from_secs(61)), "0-00:03:00");
        assert_eq!(slurm_time(Duration::from_secs(7200)), "0-02:01:00");
        assert_eq!(slurm_time(Duration::from_secs(86400)), "1-00:01:00");
    }

    #[test]
    fn names_and_paths_are_safe_for_sbatch() {
        let spec = RunSpec {
            program: "python3".into(),
            args: vec!["it's.py".into()],
            cwd: "/r/2026_My Idea".into(),
            timeout: Duration::from_secs(5),
            stdout_path: "/r/2026_My Idea/run_3/stdout.txt".into(),
            stderr_path: "/r/2026_My Idea/run_3/stderr.txt".into(),
            env: vec![],
            watch_dir: None,
        };
        assert_eq!(job_name(&spec), "aisci-2026_My_Idea-run_3");
        assert_eq!(slurm_path(Path::new("/a/100%/o")), "/a/100%%/o");
        assert_eq!(shell_quote("it's"), r"'it'\''s'");
        let args = SlurmRunner::new(&SlurmSettings {
            gpus_per_run: 0,
            ..SlurmSettings::default()
        })
        .sbatch_args(&spec, Path::new("/s.sh"));
        assert!(!args.iter().any(|a| a.starts_with("--gres")), "{args:?}");
        assert_eq!(args.last().map(String::as_str), Some("/s.sh"));

        let args = SlurmRunner::new(&SlurmSettings {
            partition: Some("gpu".into()),
            account: Some("lab".into()),
            gpus_per_run: 2,
            extra_args: vec!["--output=/elsewhere".into(), "--mem=8G".into()],
            ..SlurmSettings::default()
        })
        .sbatch_args(&spec, Path::new("/s.sh"));
        let at = |a: &str| {
            args.iter()
                .position(|x| x == a)
                .unwrap_or_else(|| panic!("{a} in {args:?}"))
        };
        assert!(at("--partition=gpu") < at("--mem=8G"));
        assert!(at("--account=lab") < at("--mem=8G"));
        assert!(at("--gres=gpu:2") > 0);
        // aisci's own options come after the site's, so they win.
        assert!(at("--output=/elsewhere") < at("--output=/r/2026_My Idea/run_3/stdout.txt"));
        assert!(at("--mem=8G") < at("--export=ALL"));
        assert!(args.contains(&"--time=0-00:02:00".to_string()));
        assert!(args.contains(&"--job-name=aisci-2026_My_Idea-run_3".to_string()));
    }

    #[test]
    fn job_env_drops_secrets_and_adds_run_vars() {
        let r = SlurmRunner::new(&SlurmSettings::default())
            .with_base_env([
                ("PATH".into(), "/bin".into()),
                ("OPENAI_API_KEY".into(), "sk-x".into()),
                ("WORK_LLM".into(), "k".into()),
            ])
            .with_secret_names(["WORK_LLM".to_string()])
            .with_tool_env([("SLURM_CONF".into(), "/c".into())]);
        let spec = RunSpec {
            program: "p".into(),
            args: vec![],
            cwd: "/".into(),
            timeout: Duration::from_secs(1),
            stdout_path: "/o".into(),
            stderr_path: "/e".into(),
            env: vec![("SEED".into(), "1".into())],
            watch_dir: None,
        };
        let names: Vec<String> = r
            .job_env(&spec)
            .into_iter()
            .map(|(k, _)| k.to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["PATH", "SLURM_CONF", "SEED"]);
    }
}
