//! Runs an experiment as a process on this machine, in a way that survives aisci.
//!
//! The run's group is led by a small shell ([`leader`]) that runs the experiment as its
//! child and records its exit status in the run's exit file. The experiment writes its
//! stdout/stderr straight to the log files, so a killed aisci breaks nothing: the run goes
//! on, and a later aisci re-attaches to it ([`Runner::reattach`]) from its
//! [`LocalAttachment`] (pid and start time of the leader, boot id, deadline, exit file,
//! control group).
//!
//! Containment: the leader leads a new process group; where the machine has a `pids`
//! control group aisci can write, the run also gets a group of its own ([`cgroup`]) with
//! `run.max_processes` as its limit, and everything in it is killed when the run ends, a
//! process that left the process group with `setsid` included. Without a control group,
//! such a process is not contained.
//!
//! Signals go to the process group only while it is provably the run's: while aisci holds
//! the unreaped leader (its own child), or, re-attached, after checking the leader's pid
//! and start time again right before each signal.
//!
//! [`leader`]: super::leader
//! [`cgroup`]: super::cgroup

use std::ffi::{CString, OsString};
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Once};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use async_trait::async_trait;
use futures::FutureExt;
use rustix::process::{Pid, Signal, WaitId, WaitIdOptions};
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use super::cgroup::{self, RunCgroup};
use super::isolation::{self, Isolation, NoNetwork, Rlimits};
use super::logs::{self, Captured, Follower};
use super::{
    env, leader, proc_stat, Attachment, ExitKind, Limit, LocalAttachment, Ran, RunError, RunEvent, RunEvents,
    RunOutcome, RunSpec, Runner, Stream,
};
use crate::config::{ExperimentSettings, RunSettings};

pub use super::logs::TAIL_BYTES;
/// Where each run's own temporary folder is made, relative to the run's working folder.
pub const RUN_TMP_DIR: &str = ".aisci/tmp";
/// How long the group gets between SIGTERM and SIGKILL on timeout or cancellation.
pub const KILL_GRACE: Duration = Duration::from_secs(2);
/// How often a watched run folder's size is measured.
pub const DIR_POLL: Duration = Duration::from_secs(1);
/// How often the log files are looked at for new output.
pub const OUTPUT_POLL: Duration = Duration::from_millis(50);

/// Kernel-enforced limits set in the child before it starts, soft = hard, so the
/// experiment can lower them but never raise them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ResourceLimits {
    /// `RLIMIT_AS`: virtual address space per process (allocations beyond fail).
    /// Note that CUDA maps far more address space than it uses; leave unset for GPU runs.
    pub address_space_bytes: Option<u64>,
    /// `RLIMIT_FSIZE`: largest file a process may write (writes beyond fail with EFBIG),
    /// the run's own stdout/stderr files included.
    pub file_size_bytes: Option<u64>,
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
    /// Processes (and threads) a run may have at once; None: no limit.
    max_processes: Option<u32>,
    /// false: runs get no network.
    network: bool,
    /// Memory a run may use, all its processes together; None: not limited.
    max_memory: Option<u64>,
}

impl LocalRunner {
    /// `output_cap_bytes`: the most each of stdout/stderr keeps on disk once the run has
    /// ended. Beyond it the file keeps its beginning and its last bytes (at most
    /// [`TAIL_BYTES`], at most half the cap), with a marker line between them. While the
    /// run runs, its logs count towards its folder limit.
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
            max_processes: None,
            network: true,
            max_memory: None,
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

    /// The limits from `[run]`: the run folder size (`max_run_dir_bytes`), the process
    /// count (`max_processes`), memory (`max_memory_bytes`) and the network (`network`).
    pub fn with_run_settings(self, run: &RunSettings) -> Self {
        self.with_max_dir_bytes(Some(run.max_run_dir_bytes))
            .with_max_processes(Some(run.max_processes))
            .with_max_memory(Some(run.memory_limit()))
            .with_network(run.network)
    }

    /// At most `bytes` of memory for all of a run's processes together, swap included: a
    /// memory control group where the machine has one aisci may use (the run then ends
    /// with [`Limit::Memory`] when the kernel kills it for going over); without one, CPU
    /// runs get it as `RLIMIT_AS` per process (allocations beyond fail) and GPU runs go
    /// without (CUDA maps far more address space than it uses), with one warning.
    pub fn with_max_memory(mut self, bytes: Option<u64>) -> Self {
        self.max_memory = bytes;
        self
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

    /// At most `max` processes and threads per run (a fork beyond fails), held by a control
    /// group where the machine has one aisci may use; see the module comment.
    pub fn with_max_processes(mut self, max: Option<u32>) -> Self {
        self.max_processes = max;
        self
    }

    /// `false`: each run gets a network namespace of its own, without any usable
    /// interface. A machine that cannot make one refuses to start the run.
    pub fn with_network(mut self, network: bool) -> Self {
        self.network = network;
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
        let extra = spec.env.iter().map(|(k, v)| (k.into(), v.into()));
        env::compose(
            self.base_env.as_deref().map(Vec::as_slice),
            &self.secret_names,
            extra,
        )
    }

    /// What the child will do to itself before the experiment starts, and its control group.
    /// `cpu_only`: the run sees no GPU; `private_tmp`: a folder a root run gets as `/tmp`.
    pub(super) fn isolation(&self, cpu_only: bool, private_tmp: Option<&Path>) -> Result<Isolation, String> {
        let root = rustix::process::geteuid().is_root();
        let mut iso = Isolation {
            rlimits: Rlimits {
                address_space: self.limits.address_space_bytes,
                file_size: self.limits.file_size_bytes,
                processes: None,
            },
            drop_capabilities: root,
            ..Default::default()
        };
        if let Some(tmp) = private_tmp.filter(|_| root) {
            iso.private_tmp = Some(CString::new(tmp.as_os_str().as_bytes()).map_err(|e| e.to_string())?);
        }
        if self.max_processes.is_some() || self.max_memory.is_some() {
            match RunCgroup::create(self.max_processes, self.max_memory) {
                Ok(cg) => {
                    if root {
                        let h = cgroup::hierarchy().expect("a group exists, so its hierarchy does");
                        let mount =
                            CString::new(h.mount.as_os_str().as_bytes()).map_err(|e| e.to_string())?;
                        if isolation::mount_protection(&mount) {
                            iso.protect_mount = Some(mount);
                        }
                    }
                    iso.cgroup = Some(Arc::new(cg));
                }
                Err(e) => match self.max_processes {
                    None => tracing::debug!(%e, "no control group for the run's memory"),
                    Some(max) if !root => {
                        warn_once(&format!(
                            "no control group for runs ({e}); their process count is limited with RLIMIT_NPROC, which counts all of this user's processes"
                        ));
                        iso.rlimits.processes = Some(u64::from(max));
                    }
                    Some(max) => warn_once(&format!(
                        "no control group for runs ({e}); as root, run.max_processes = {max} is not enforced"
                    )),
                },
            }
        }
        // Memory the group does not hold (no group, or one without the memory controller).
        if let Some(bytes) = self.max_memory {
            if iso.cgroup.as_ref().and_then(|cg| cg.memory_limit()).is_none() {
                self.memory_fallback(&mut iso, bytes, cpu_only);
            }
        }
        if !self.network {
            isolation::network_isolation().map_err(|e| {
                format!("run.network = false, but this machine does not permit a run without network: {e}")
            })?;
            iso.no_network = Some(NoNetwork::for_this_process());
        }
        Ok(iso)
    }
}

impl LocalRunner {
    /// No memory control group: `RLIMIT_AS` for a CPU run; a GPU run goes without.
    fn memory_fallback(&self, iso: &mut Isolation, bytes: u64, cpu_only: bool) {
        if cpu_only {
            let current = iso.rlimits.address_space.unwrap_or(u64::MAX);
            iso.rlimits.address_space = Some(current.min(bytes));
        } else {
            static ONCE: Once = Once::new();
            ONCE.call_once(|| {
                tracing::warn!(
                    "no memory control group for runs: run.max_memory_bytes is not enforced for runs on a GPU"
                )
            });
        }
    }
}

fn warn_once(message: &str) {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| tracing::warn!("{message}"));
}

/// A fresh temporary folder for one run, inside the run's working folder (so it counts
/// towards the run's size limit and is removed with the run), private to its owner.
/// `stem` names it (`run_1`).
pub(super) fn make_run_tmp(cwd: &Path, stem: &str) -> std::io::Result<PathBuf> {
    use std::os::unix::fs::DirBuilderExt;
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let base = cwd.join(RUN_TMP_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&base)?;
    loop {
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = base.join(format!("{stem}-{}-{n}", std::process::id()));
        match std::fs::DirBuilder::new().mode(0o700).create(&dir) {
            Ok(()) => return Ok(dir),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
}

/// Removes a run's temporary folder once nothing of the run is left to write to it.
fn remove_run_tmp(dir: &Path) {
    // Only aisci's own folders: a name under `.aisci/tmp`, never a link.
    let ours = dir.parent().is_some_and(|p| p.ends_with(RUN_TMP_DIR))
        && std::fs::symlink_metadata(dir).is_ok_and(|m| m.is_dir());
    if ours {
        if let Err(e) = std::fs::remove_dir_all(dir) {
            tracing::warn!(dir = %dir.display(), %e, "could not remove the run's temporary folder");
        }
    }
}

/// Whether a private `/tmp` would hide the run's own files from it: its folder or its
/// program lie under `/tmp`, where the new mount would cover them.
pub(super) fn lives_in_tmp(cwd: &Path, program: &Path) -> bool {
    let tmp = Path::new("/tmp");
    let canon = |p: &Path| p.canonicalize().unwrap_or_else(|_| p.to_path_buf());
    canon(cwd).starts_with(tmp) || canon(program).starts_with(tmp)
}

/// Where `program` is, as `execvp` would find it: a path with a `/` is relative to the
/// run's folder, a bare name is looked up in the run's `PATH`.
pub(super) fn resolve_program(
    program: &str,
    cwd: &Path,
    env: &[(OsString, OsString)],
) -> std::io::Result<PathBuf> {
    use std::io::ErrorKind;
    use std::os::unix::fs::PermissionsExt;
    let executable =
        |p: &Path| std::fs::metadata(p).map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0);
    if program.contains('/') {
        let p = cwd.join(program);
        return match executable(&p) {
            Ok(true) => Ok(p),
            Ok(false) => Err(ErrorKind::PermissionDenied.into()),
            Err(e) => Err(e),
        };
    }
    let path = env
        .iter()
        .find(|(k, _)| k == "PATH")
        .map(|(_, v)| v.clone())
        .unwrap_or_else(|| "/usr/local/bin:/usr/bin:/bin".into());
    let mut denied = false;
    for dir in std::env::split_paths(&path) {
        let dir = if dir.as_os_str().is_empty() {
            cwd.to_path_buf()
        } else {
            cwd.join(dir)
        };
        let p = dir.join(program);
        match executable(&p) {
            Ok(true) => return Ok(p),
            Ok(false) => denied |= p.is_file(),
            Err(_) => {}
        }
    }
    Err(if denied {
        ErrorKind::PermissionDenied
    } else {
        ErrorKind::NotFound
    }
    .into())
}

fn now_unix_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn spawn_error(spec: &RunSpec, message: String) -> RunError {
    RunError::Spawn {
        program: spec.program.clone(),
        message,
    }
}

/// Opens a log for the run: truncated, readable by aisci (which follows it through this
/// same open file, whatever the experiment does to the name later).
fn create_log(path: &Path) -> std::io::Result<std::fs::File> {
    std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(true)
        .open(path)
}

#[async_trait]
impl Runner for LocalRunner {
    async fn run_with(&self, spec: &RunSpec, events: &dyn RunEvents, cancel: &CancellationToken) -> Ran {
        let started = Instant::now();
        if !spec.cwd.is_dir() {
            return Err(spawn_error(
                spec,
                format!("working directory {} does not exist", spec.cwd.display()),
            ));
        }
        // Named after the run's folder (where its stdout goes).
        let stem = spec
            .stdout_path
            .parent()
            .and_then(|p| p.file_name())
            .map_or_else(|| "run".into(), |n| n.to_string_lossy());
        let tmp = make_run_tmp(&spec.cwd, &stem)
            .map_err(|e| spawn_error(spec, format!("no temporary folder for the run: {e}")))?;
        let tmp_guard = TmpGuard(Some(tmp.clone()));
        let mut with_tmp = spec.clone();
        for var in ["TMPDIR", "TMP", "TEMP"] {
            with_tmp.env.retain(|(k, _)| k != var);
            with_tmp
                .env
                .push((var.into(), tmp.to_string_lossy().into_owned()));
        }
        let spec = &with_tmp;
        let env = self.child_env(spec);
        let program = resolve_program(&spec.program, &spec.cwd, &env)
            .map_err(|e| spawn_error(spec, spawn_message(&e, &spec.program)))?;
        let exit_file = leader::exit_file_for(&spec.stdout_path);
        leader::clear(&exit_file)?;
        let stdout_file = create_log(&spec.stdout_path)?;
        let stderr_file = create_log(&spec.stderr_path)?;

        let cpu_only = env
            .iter()
            .any(|(k, v)| k == "CUDA_VISIBLE_DEVICES" && v.is_empty());
        let private_tmp = (!lives_in_tmp(&spec.cwd, &program)).then_some(tmp.as_path());
        let iso = self
            .isolation(cpu_only, private_tmp)
            .map_err(|m| spawn_error(spec, m))?;
        let cg = iso.cgroup.clone();
        let mut cmd = tokio::process::Command::new(leader::SHELL);
        cmd.args(leader::argv(&exit_file, &program, &spec.args))
            .current_dir(&spec.cwd)
            .env_clear()
            .envs(env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::null())
            .stdout(Stdio::from(stdout_file.try_clone()?))
            .stderr(Stdio::from(stderr_file.try_clone()?))
            .process_group(0);
        // SAFETY: `Isolation::apply` is async-signal-safe (see `isolation`).
        unsafe {
            cmd.pre_exec(move || iso.apply());
        }
        let deadline_unix_ms = now_unix_ms() + spec.timeout.as_millis() as u64;
        let mut child = match cmd.spawn() {
            Ok(c) => c,
            Err(e) => {
                if let Some(cg) = &cg {
                    cg.remove();
                }
                return Err(spawn_error(spec, format!("the run could not be set up: {e}")));
            }
        };
        let pgid = child
            .id()
            .and_then(|id| Pid::from_raw(id as i32))
            .ok_or_else(|| std::io::Error::other("spawned child has no pid"))?;
        // Declared after `child`, so dropped before it: the leader is still unreaped then.
        let mut guard = GroupGuard {
            pgid,
            cgroup: cg.clone(),
            armed: true,
        };
        let pid = pgid.as_raw_nonzero().get();
        // The child exists (unreaped) until we wait for it, so its /proc entry does too.
        let start_ticks = proc_stat::stat(pid).map(|s| s.start_ticks).unwrap_or(0);
        events.on_event(RunEvent::Started(Attachment::Local(LocalAttachment {
            pid,
            start_ticks,
            boot_id: proc_stat::boot_id().to_owned(),
            deadline_unix_ms,
            exit_file: Some(exit_file.clone()),
            cgroup: cg.as_ref().map(|c| c.path().to_path_buf()),
            tmp_dir: Some(tmp.clone()),
        })));

        let mut out = Follower::new(Stream::Stdout, stdout_file, 0, self.echo);
        let mut err = Follower::new(Stream::Stderr, stderr_file, 0, self.echo);
        // Shared: awaited once in the race and again after the kill.
        let exited = leader_exited(pgid).map(|_| ()).shared();
        let ended = {
            let watched = watch_size(watched_paths(spec, Some(&tmp)), self.max_dir_bytes, self.dir_poll);
            let follow = follow(&mut out, &mut err, events);
            tokio::select! {
                _ = exited.clone() => None,
                _ = tokio::time::sleep(spec.timeout) => Some(ExitKind::TimedOut),
                _ = cancel.cancelled() => Some(ExitKind::Cancelled),
                limit = watched => Some(ExitKind::LimitExceeded(limit)),
                never = follow => match never {},
            }
        };
        if ended.is_some() {
            signal_group(pgid, Signal::TERM);
            let _ = tokio::time::timeout(self.kill_grace, exited.clone()).await;
        }
        // Whatever is left of the run goes now, whether the leader ended on its own or not.
        signal_group(pgid, Signal::KILL);
        if let Some(cg) = cg.clone() {
            let _ = tokio::task::spawn_blocking(move || cg.kill_all()).await;
        }
        exited.await;
        let status = child.wait().await?;
        guard.armed = false;

        let exit = out_of_memory(cg.as_deref(), ended.unwrap_or_else(|| exit_kind(status)));
        drop(tmp_guard);
        let outcome = self
            .finish(spec, out, err, cg, events, exit, started.elapsed())
            .await?;
        Ok(outcome)
    }

    async fn reattach(
        &self,
        attachment: &Attachment,
        spec: &RunSpec,
        events: &dyn RunEvents,
        cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        let Attachment::Local(att) = attachment else {
            return Err(RunError::Lost(
                "not a local run: the local runner cannot re-attach to it".into(),
            ));
        };
        if att.boot_id != proc_stat::boot_id() {
            return Err(RunError::Lost(format!(
                "local run {} was started before this machine last booted",
                att.pid
            )));
        }
        let exit_file = att
            .exit_file
            .clone()
            .unwrap_or_else(|| leader::exit_file_for(&spec.stdout_path));
        let cg = att.cgroup.as_deref().and_then(RunCgroup::existing).map(Arc::new);
        let _tmp_guard = TmpGuard(att.tmp_dir.clone());
        let start_ms = att
            .deadline_unix_ms
            .saturating_sub(spec.timeout.as_millis() as u64);
        let elapsed = || Duration::from_millis(now_unix_ms().saturating_sub(start_ms));
        let leader = RunLeader {
            pid: att.pid,
            start_ticks: att.start_ticks,
        };

        let alive = leader.is_running() && leader::is_leader(att.pid, &exit_file);
        let pidfd = if alive { leader.pidfd() } else { None };
        let Some(pidfd) = pidfd else {
            // Ended while no aisci watched: whatever it left running goes, then its status.
            leader.kill_remains(cg.clone(), false).await;
            let Some(status) = leader::read_status(&exit_file) else {
                if let Some(cg) = &cg {
                    cg.remove();
                }
                return Err(RunError::Lost(format!(
                    "local run {} ended while aisci was not running and left no exit status",
                    att.pid
                )));
            };
            let ended_at = std::fs::metadata(&exit_file)
                .and_then(|m| m.modified())
                .ok()
                .and_then(|t| t.duration_since(UNIX_EPOCH).ok())
                .map(|d| Duration::from_millis((d.as_millis() as u64).saturating_sub(start_ms)));
            let (out, err) = self.reopen_logs(spec)?;
            let exit = out_of_memory(cg.as_deref(), leader::exit_kind(status));
            return self
                .finish(spec, out, err, cg, events, exit, ended_at.unwrap_or_else(elapsed))
                .await;
        };

        let (mut out, mut err) = self.reopen_logs(spec)?;
        let exited = leader_ended(pidfd, att.pid, att.start_ticks).shared();
        let remaining = Duration::from_millis(att.deadline_unix_ms.saturating_sub(now_unix_ms()));
        let ended = {
            let watched = watch_size(
                watched_paths(spec, att.tmp_dir.as_deref()),
                self.max_dir_bytes,
                self.dir_poll,
            );
            let follow = follow(&mut out, &mut err, events);
            tokio::select! {
                _ = exited.clone() => None,
                _ = tokio::time::sleep(remaining) => Some(ExitKind::TimedOut),
                _ = cancel.cancelled() => Some(ExitKind::Cancelled),
                limit = watched => Some(ExitKind::LimitExceeded(limit)),
                never = follow => match never {},
            }
        };
        if ended.is_some() {
            leader.signal_group_if_alive(Signal::TERM);
            let _ = tokio::time::timeout(self.kill_grace, exited.clone()).await;
            leader.signal_group_if_alive(Signal::KILL);
            let _ = tokio::time::timeout(self.kill_grace, exited.clone()).await;
        }
        leader.kill_remains(cg.clone(), true).await;
        let exit = match ended {
            Some(kind) => kind,
            None => match leader::read_status(&exit_file) {
                Some(status) => out_of_memory(cg.as_deref(), leader::exit_kind(status)),
                None => {
                    if let Some(cg) = &cg {
                        cg.remove();
                    }
                    return Err(RunError::Lost(format!(
                        "local run {}: its leader ended without recording an exit status (killed from outside?)",
                        att.pid
                    )));
                }
            },
        };
        self.finish(spec, out, err, cg, events, exit, elapsed()).await
    }
}

impl LocalRunner {
    /// The logs of a re-attached run, followed from their current ends. A log that is gone
    /// or no longer a plain file (the experiment's doing) reads as empty.
    fn reopen_logs(&self, spec: &RunSpec) -> Result<(Follower, Follower), RunError> {
        let open = |stream, path: &Path| match Follower::reopen(stream, path, self.echo) {
            Ok(f) => Ok(f),
            Err(e) => {
                tracing::warn!(log = %path.display(), %e, "a re-attached run's log cannot be read");
                Ok::<_, RunError>(Follower::new(
                    stream,
                    std::fs::File::open("/dev/null")?,
                    0,
                    self.echo,
                ))
            }
        };
        Ok((
            open(Stream::Stdout, &spec.stdout_path)?,
            open(Stream::Stderr, &spec.stderr_path)?,
        ))
    }

    /// After every process of the run is gone: the last output, the process-limit note,
    /// logs cut to the cap, the control group removed.
    #[allow(clippy::too_many_arguments)]
    async fn finish(
        &self,
        spec: &RunSpec,
        out: Follower,
        err: Follower,
        cg: Option<Arc<RunCgroup>>,
        events: &dyn RunEvents,
        exit: ExitKind,
        elapsed: Duration,
    ) -> Result<RunOutcome, RunError> {
        let out = out.finish(events);
        let mut err = err.finish(events);
        let (cap, paths) = (
            self.output_cap_bytes,
            [spec.stdout_path.clone(), spec.stderr_path.clone()],
        );
        // The run is over; what the experiment did to its log files (a link, a folder in
        // their place) costs it the cut or the note, never its outcome.
        let note = tokio::task::spawn_blocking(move || -> Option<String> {
            for p in &paths {
                if let Err(e) = logs::cap_file(p, cap) {
                    tracing::warn!(log = %p.display(), %e, "could not cut the run's log to the output cap");
                }
            }
            let cg = cg?;
            let (max, hits) = cg.limit_hits();
            cg.remove();
            if hits == 0 {
                return None;
            }
            let max = max.map(|m| m.to_string()).unwrap_or_else(|| "?".into());
            let note = format!(
                "\n[aisci: the run hit its limit of {max} processes (run.max_processes); {hits} attempts to start another failed]\n"
            );
            if let Err(e) = logs::append_note(&paths[1], &note) {
                tracing::warn!(log = %paths[1].display(), %e, "could not note the process limit in the log");
            }
            Some(note)
        })
        .await
        .map_err(std::io::Error::other)?;
        if let Some(note) = note {
            tracing::info!(program = %spec.program, "{}", note.trim());
            err.push_note(&note);
        }
        let cuda_visible_devices = self
            .child_env(spec)
            .into_iter()
            .find(|(k, _)| k == "CUDA_VISIBLE_DEVICES")
            .map(|(_, v)| v.to_string_lossy().into_owned());
        Ok(outcome(exit, elapsed, &out, &err, cuda_visible_devices))
    }
}

fn outcome(
    exit: ExitKind,
    elapsed: Duration,
    out: &Captured,
    err: &Captured,
    cuda: Option<String>,
) -> RunOutcome {
    RunOutcome {
        cuda_visible_devices: cuda,
        exit,
        elapsed,
        stdout_tail: out.tail_text(),
        stderr_tail: err.tail_text(),
        stdout_bytes: out.total,
        stderr_bytes: err.total,
    }
}

/// Looks at both logs every [`OUTPUT_POLL`], forever (the caller stops caring).
async fn follow(out: &mut Follower, err: &mut Follower, events: &dyn RunEvents) -> std::convert::Infallible {
    loop {
        tokio::time::sleep(OUTPUT_POLL).await;
        out.poll(events);
        err.poll(events);
    }
}

/// A re-attached run's leader: not aisci's child, so its pid is checked against its start
/// time before anything is done to it.
struct RunLeader {
    pid: i32,
    start_ticks: u64,
}

impl RunLeader {
    fn is_running(&self) -> bool {
        proc_stat::same_running(self.pid, self.start_ticks).is_some()
    }

    /// A pidfd for the leader, checked after opening so that it pins the right process.
    fn pidfd(&self) -> Option<std::os::fd::OwnedFd> {
        let fd = rustix::process::pidfd_open(Pid::from_raw(self.pid)?, rustix::process::PidfdFlags::empty())
            .ok()?;
        self.is_running().then_some(fd)
    }

    /// Signals the group only if its leader is still the run's (checked right before).
    fn signal_group_if_alive(&self, sig: Signal) {
        if self.is_running() {
            if let Some(pid) = Pid::from_raw(self.pid) {
                signal_group(pid, sig);
            }
        }
    }

    /// Kills what the run left after its leader ended: every process of its control group;
    /// without one, and only for a leader whose command line was checked (`verified`), the
    /// process group while the leader's pid still names it (as a zombie with the same start
    /// time) or names no process (the group then holds only the run's processes, or none).
    /// Without a control group, what a run left behind while no aisci watched is not found.
    async fn kill_remains(&self, cg: Option<Arc<RunCgroup>>, verified: bool) {
        if let Some(cg) = cg {
            let _ = tokio::task::spawn_blocking(move || cg.kill_all()).await;
            return;
        }
        let ours = verified
            && match proc_stat::stat(self.pid) {
                Some(s) => s.start_ticks == self.start_ticks,
                None => true,
            };
        if ours {
            if let Some(pid) = Pid::from_raw(self.pid) {
                if let Err(e) = rustix::process::kill_process_group(pid, Signal::KILL) {
                    tracing::debug!(pgid = self.pid, %e, "killpg of a re-attached run's remains");
                }
            }
        }
    }
}

/// Resolves when the process behind `fd` (`pid`, started at `start_ticks`) has ended: a
/// pidfd becomes readable then; where the runtime cannot watch it, /proc is polled.
async fn leader_ended(fd: std::os::fd::OwnedFd, pid: i32, start_ticks: u64) {
    // SAFETY: the AsyncFd owns the pidfd, which nothing else closes or replaces.
    if let Ok(afd) =
        unsafe { tokio::io::unix::AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }
    {
        let _ = afd.readable().await;
        return;
    }
    while proc_stat::same_running(pid, start_ticks).is_some() {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// What a run's size limit counts: its watched folder, its temporary folder and its logs
/// wherever they lie outside it (the run writes them itself, so they must not grow without
/// bound either).
fn watched_paths(spec: &RunSpec, tmp: Option<&Path>) -> Vec<PathBuf> {
    let dir = spec.watch_dir.as_ref().map(|d| absolutize(&spec.cwd, d));
    let mut paths: Vec<PathBuf> = dir.iter().cloned().collect();
    let logs = [&spec.stdout_path, &spec.stderr_path].map(|l| absolutize(&spec.cwd, l));
    for p in logs.into_iter().chain(tmp.map(Path::to_path_buf)) {
        if !dir.as_ref().is_some_and(|d| p.starts_with(d)) {
            paths.push(p);
        }
    }
    paths
}

/// Resolves when `paths` together have grown by more than `max` bytes beyond their size
/// when the watch began (measured every `every`); never without `max`. Growth, not size:
/// a watched idea folder already holds the earlier runs, the paper and the code.
async fn watch_size(paths: Vec<PathBuf>, max: Option<u64>, every: Duration) -> Limit {
    let Some(max) = max else {
        return std::future::pending().await;
    };
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut base = None;
    loop {
        tick.tick().await;
        let p = paths.clone();
        let size = tokio::task::spawn_blocking(move || {
            p.iter()
                .map(|p| match std::fs::symlink_metadata(p) {
                    Ok(m) if m.is_dir() => dir_size(p),
                    Ok(m) => m.len(),
                    Err(_) => 0,
                })
                .fold(0u64, u64::saturating_add)
        })
        .await
        .unwrap_or(0);
        let start = *base.get_or_insert(size);
        if size.saturating_sub(start) > max {
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

/// How the leader's own exit status reads (see [`leader`] for the rule); a leader killed
/// by a signal was killed from outside the run.
fn exit_kind(status: ExitStatus) -> ExitKind {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(c), _) => leader::exit_kind(c),
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

/// A run that ended because the kernel killed part of it for going over its memory limit
/// reads as that limit, not as the SIGKILL (or the failure) it caused.
fn out_of_memory(cg: Option<&RunCgroup>, exit: ExitKind) -> ExitKind {
    match (exit, cg) {
        (ExitKind::Failed(_) | ExitKind::Signaled(_), Some(cg)) if cg.oom_kills() > 0 => cg
            .memory_limit()
            .map_or(exit, |n| ExitKind::LimitExceeded(Limit::Memory(n))),
        _ => exit,
    }
}

/// Removes the run's temporary folder however the run ends (the run's processes are gone
/// by then, or, for a future dropped midway, killed by the group guard declared after it).
pub(super) struct TmpGuard(Option<PathBuf>);

impl TmpGuard {
    pub(super) fn new(dir: PathBuf) -> Self {
        Self(Some(dir))
    }
}

impl Drop for TmpGuard {
    fn drop(&mut self) {
        if let Some(dir) = self.0.take() {
            remove_run_tmp(&dir);
        }
    }
}

/// Kills the run if its future is dropped midway (e.g. its task was aborted).
struct GroupGuard {
    pgid: Pid,
    cgroup: Option<Arc<RunCgroup>>,
    armed: bool,
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            signal_group(self.pgid, Signal::KILL);
            if let Some(cg) = &self.cgroup {
                cg.kill_all();
                cg.remove();
            }
        }
    }
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
    fn absolutize_resolves_dots() {
        let cwd = Path::new("/a/b");
        assert_eq!(
            absolutize(cwd, Path::new("./x/../y.py")),
            PathBuf::from("/a/b/y.py")
        );
        assert_eq!(absolutize(cwd, Path::new("/c/./d.py")), PathBuf::from("/c/d.py"));
    }

    #[test]
    fn programs_are_found_like_execvp() {
        let dir = tempfile::tempdir().unwrap();
        let env = vec![(
            OsString::from("PATH"),
            OsString::from("/nonexistent:/bin:/usr/bin"),
        )];
        let sh = resolve_program("sh", dir.path(), &env).unwrap();
        assert!(sh.ends_with("sh") && sh.is_absolute());
        let err = resolve_program("no-such-prog-xyz", dir.path(), &env).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::NotFound);
        std::fs::write(dir.path().join("script"), "#!/bin/sh\n").unwrap();
        let err = resolve_program("./script", dir.path(), &env).unwrap_err();
        assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    }
}
