//! `aisci contain`: what a Slurm job runs, so that the experiment is held on the node as a
//! local run is held here, whatever the site's `ProctrackType`.
//!
//! The job script execs this process with the run's limits; it becomes a child subreaper
//! (so a process that leaves with `setsid` and a double fork is re-parented to it, not to
//! init), runs the experiment in a process group of its own under the same isolation as a
//! local run (control group with the process and memory limits where the node allows one,
//! else `RLIMIT_NPROC`/`RLIMIT_AS`), and, when the experiment ends or the job is cancelled,
//! kills everything the experiment left: the control group, then every descendant it can
//! still find. It exits as the experiment did: its exit code, or 128 + the signal that
//! ended it (read back by the Slurm runner with the local runs' rule).

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::cgroup::RunCgroup;
use super::local::{self, LocalRunner};
use super::proc_stat;

/// The limits a contained run gets (from the submitting aisci's settings).
#[derive(Debug, Clone, Default)]
pub struct Containment {
    pub max_processes: Option<u32>,
    /// None: three quarters of this node's memory.
    pub max_memory: Option<u64>,
    /// Where to record the memory limit when the kernel killed part of the run for it.
    pub oom_file: Option<PathBuf>,
    /// Between SIGTERM and SIGKILL when the job is cancelled.
    pub kill_grace: Duration,
}

/// The aisci binary that Slurm jobs call for containment: this process's own executable,
/// set by the `aisci` binary's `main` (a library user or test names one explicitly).
pub fn this_binary() -> Option<&'static Path> {
    THIS_BINARY.get().map(PathBuf::as_path)
}

static THIS_BINARY: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();

/// Called by the `aisci` binary at start.
pub fn register_this_binary() {
    if let Ok(exe) = std::env::current_exe() {
        let _ = THIS_BINARY.set(exe);
    }
}

/// Runs `program args` contained, in the current folder, and returns the exit status to
/// exit with.
pub async fn run(c: &Containment, program: &str, args: &[String]) -> std::io::Result<i32> {
    use tokio::signal::unix::{signal, SignalKind};
    let me = Pid::from_raw(std::process::id() as i32).expect("a pid is positive");
    rustix::process::set_child_subreaper(Some(me))?;
    let cwd = std::env::current_dir()?;
    let memory = c
        .max_memory
        .unwrap_or_else(crate::config::default_max_memory_bytes);
    let runner = LocalRunner::new(u64::MAX)
        .with_max_processes(c.max_processes)
        .with_max_memory(Some(memory));
    let tmp = local::make_run_tmp(&cwd, "slurm")?;
    let _tmp = local::TmpGuard::new(tmp.clone());
    let no_gpu = std::env::var_os("CUDA_VISIBLE_DEVICES").is_some_and(|v| v.is_empty())
        || !Path::new("/dev/nvidiactl").exists();
    let program_path = local::resolve_program(program, &cwd, &std::env::vars_os().collect::<Vec<_>>())?;
    let private_tmp = (!local::lives_in_tmp(&cwd, &program_path)).then_some(tmp.as_path());
    let iso = runner
        .isolation(no_gpu, private_tmp)
        .map_err(std::io::Error::other)?;
    let cg: Option<Arc<RunCgroup>> = iso.cgroup.clone();

    let mut cmd = tokio::process::Command::new(&program_path);
    cmd.args(args)
        .envs(["TMPDIR", "TMP", "TEMP"].map(|k| (k, OsString::from(tmp.as_os_str()))))
        .stdin(Stdio::null())
        .process_group(0);
    // SAFETY: `Isolation::apply` is async-signal-safe (see `isolation`).
    unsafe {
        cmd.pre_exec(move || iso.apply());
    }
    let mut child = cmd.spawn()?;
    let pgid = child.id().and_then(|p| Pid::from_raw(p as i32));
    let (mut term, mut int, mut hup) = (
        signal(SignalKind::terminate())?,
        signal(SignalKind::interrupt())?,
        signal(SignalKind::hangup())?,
    );
    let status = tokio::select! {
        s = child.wait() => Some(s?),
        _ = term.recv() => None,
        _ = int.recv() => None,
        _ = hup.recv() => None,
    };
    let status = match status {
        Some(s) => s,
        None => {
            // The job is being cancelled: the experiment gets the same grace a local run gets.
            if let Some(p) = pgid {
                let _ = rustix::process::kill_process_group(p, Signal::TERM);
            }
            match tokio::time::timeout(c.kill_grace, child.wait()).await {
                Ok(s) => s?,
                Err(_) => {
                    if let Some(p) = pgid {
                        let _ = rustix::process::kill_process_group(p, Signal::KILL);
                    }
                    child.wait().await?
                }
            }
        }
    };
    if let Some(p) = pgid {
        let _ = rustix::process::kill_process_group(p, Signal::KILL);
    }
    let oom = cg
        .as_ref()
        .filter(|g| g.oom_kills() > 0)
        .and_then(|g| g.memory_limit());
    let leftovers = tokio::task::spawn_blocking(move || {
        if let Some(g) = &cg {
            g.kill_all();
            g.remove();
        }
        kill_descendants(me)
    })
    .await
    .unwrap_or(0);
    if leftovers > 0 {
        eprintln!("[aisci: {leftovers} process(es) the run left behind were killed at its end]");
    }
    let code = {
        use std::os::unix::process::ExitStatusExt;
        match (status.code(), status.signal()) {
            (Some(c), _) => c,
            (None, Some(s)) => 128 + s,
            (None, None) => 1,
        }
    };
    if let (Some(limit), Some(file), true) = (oom, &c.oom_file, code != 0) {
        eprintln!("[aisci: the run went over its memory limit of {limit} bytes and was killed]");
        let _ = crate::fsutil::write_atomic(file, limit.to_string().as_bytes());
    }
    Ok(code)
}

/// Kills and reaps every process below `me` (all of them re-parented to `me`, the
/// subreaper, once their own parents are gone), until none is left or after a bounded
/// number of sweeps. Returns how many were killed.
fn kill_descendants(me: Pid) -> usize {
    let mut killed = 0;
    for _ in 0..200 {
        let below = descendants(me.as_raw_nonzero().get());
        reap();
        if below.is_empty() {
            break;
        }
        for pid in below {
            if let Some(p) = Pid::from_raw(pid) {
                // A pidfd pins the process: the signal reaches the one that was found.
                if let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) {
                    if rustix::process::pidfd_send_signal(&fd, Signal::KILL).is_ok() {
                        killed += 1;
                    }
                }
            }
        }
        std::thread::sleep(Duration::from_millis(10));
    }
    reap();
    killed
}

fn reap() {
    use rustix::process::{waitpid, WaitOptions};
    while let Ok(Some(_)) = waitpid(None, WaitOptions::NOHANG) {}
}

/// Live (not zombie) processes whose parent chain leads to `root`.
fn descendants(root: i32) -> Vec<i32> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let parents: std::collections::HashMap<i32, i32> = entries
        .flatten()
        .filter_map(|e| e.file_name().to_str()?.parse::<i32>().ok())
        .filter_map(|pid| {
            let st = proc_stat::stat(pid)?;
            st.is_running().then_some((pid, st.ppid))
        })
        .collect();
    parents
        .keys()
        .copied()
        .filter(|&pid| {
            let mut at = pid;
            for _ in 0..parents.len() {
                match parents.get(&at) {
                    Some(&pp) if pp == root => return true,
                    Some(&pp) => at = pp,
                    None => return false,
                }
            }
            false
        })
        .collect()
}
