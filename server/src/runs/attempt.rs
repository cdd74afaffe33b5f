//! The one way `experiment.py` is run: prepare `run_<i>/`, run `python experiment.py
//! --out_dir=run_<i>` through a runner with its record kept from the moment it is queued,
//! judge the result, write the run's facts, and leave the folder so that only a
//! completed experiment run is a `run_<i>/` (see `project::runs` for the layout). The
//! experiment loop, the baseline and "Launch run" / `aisci run` all come here.

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::project::{FinalInfo, RunOrigin, RunRecord, RunState, ATTEMPTS_DIR};
use crate::runner::{facts, ExitKind, Limit, RunError, RunEvents, RunOutcome, RunSpec, Runner};
use crate::runs::finish::{complete, ended_without_status, set_aside, set_aside_when_failed};
use crate::runs::run_tracked;

/// Why a run could not be made (a run that ran and failed is not an error).
#[derive(Debug, thiserror::Error)]
pub enum AttemptError {
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
    #[error(transparent)]
    Run(#[from] RunError),
}

fn io(path: &Path, source: std::io::Error) -> AttemptError {
    AttemptError::Io {
        path: path.to_path_buf(),
        source,
    }
}

pub struct AttemptSpec<'a> {
    /// The folder the command runs in (idea folder, or the template for run 0).
    pub root: &'a Path,
    pub run: u32,
    pub attempt: u32,
    pub python: &'a str,
    pub timeout_secs: u64,
    /// How much of stderr the model sees.
    pub tail_chars: usize,
    /// The baseline, to show the expected `final_info.json` shape.
    pub expected: Option<&'a FinalInfo>,
    /// Who asked for it: an experiment run keeps a copy of the code it ran
    /// (`run_<i>.py`, v1's snapshot), and a failed experiment or baseline run is set aside;
    /// a launched run keeps its facts (env.json) whatever the outcome.
    pub origin: RunOrigin,
    /// Variables the run gets beyond aisci's scrubbed environment (`EXPERIMENT_SMOKE`).
    pub env: Vec<(String, String)>,
}

/// The record (already saved) and, unless the run completed, the message for the model.
pub struct Attempted {
    pub record: RunRecord,
    pub feedback: Option<String>,
    pub exit: ExitKind,
    /// The GPUs the run was given, as the runner set them.
    pub cuda_visible_devices: Option<String>,
}

pub async fn run_attempt(
    spec: &AttemptSpec<'_>,
    runner: &dyn Runner,
    events: &dyn RunEvents,
    cancel: &CancellationToken,
) -> Result<Attempted, AttemptError> {
    let snapshot_code = spec.origin == RunOrigin::Experiment;
    let root = spec.root;
    let run_name = format!("run_{}", spec.run);
    let run_dir = root.join(&run_name);
    // A launched run's folder was claimed by its caller (see `launch_run`); any other
    // existing folder is left over from an interrupted session.
    if run_dir.exists() && spec.origin != RunOrigin::Launch {
        // Keep it out of the way, not deleted.
        let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S");
        let dest = root
            .join(ATTEMPTS_DIR)
            .join(&run_name)
            .join(format!("leftover_{stamp}"));
        move_dir(&run_dir, &dest)?;
    }
    mkdirs(&run_dir)?;
    let code_name = format!("{run_name}.py");
    if snapshot_code {
        let from = root.join("experiment.py");
        std::fs::copy(&from, root.join(&code_name)).map_err(|e| io(&from, e))?;
    }

    let out_arg = format!("--out_dir={run_name}");
    let run_spec = RunSpec {
        program: spec.python.to_string(),
        args: vec!["experiment.py".into(), out_arg.clone()],
        cwd: root.to_path_buf(),
        timeout: Duration::from_secs(spec.timeout_secs),
        stdout_path: run_dir.join("stdout.txt"),
        stderr_path: run_dir.join("stderr.txt"),
        env: spec.env.clone(),
        // The whole idea folder: what the run writes beside its own folder counts too.
        watch_dir: Some(root.to_path_buf()),
    };
    let mut record = RunRecord::queued(
        spec.run,
        spec.attempt,
        vec![spec.python.to_string(), "experiment.py".into(), out_arg],
        spec.origin,
        spec.timeout_secs,
    );
    record.code = snapshot_code.then(|| PathBuf::from(&code_name));
    // The machine's facts do not depend on the run: gathered while it runs, so the run's
    // end is not followed by interpreter and nvidia-smi starts. Dropped if unused.
    let python = spec.python.to_string();
    let mut gathering = AbortOnDrop(tokio::spawn(async move { facts::collect_all(&python).await }));
    let tracked = run_tracked(root, record, runner, &run_spec, events, cancel).await;
    let mut record = tracked.record;
    let outcome = match tracked.result {
        Ok(o) => o,
        Err(e) => {
            ended_without_status(&mut record, RunState::Failed, e.to_string());
            let _ = record.save(root);
            return Err(AttemptError::Run(e));
        }
    };

    let problem = complete(&mut record, &outcome, &run_dir, spec.expected);
    let feedback = match outcome.exit {
        ExitKind::Success => problem.map(|e| format!("The run exited normally, but {e}")),
        ExitKind::TimedOut => Some(format!("Run timed out after {} seconds.", spec.timeout_secs)),
        ExitKind::Cancelled => None,
        ExitKind::LimitExceeded(limit) => Some(limit_message(limit)),
        ExitKind::Failed(_) | ExitKind::Signaled(_) => {
            Some(failure_message("Run", &outcome, spec.tail_chars))
        }
    };

    if record.completed || spec.origin == RunOrigin::Launch {
        // Facts for the paper; a run whose facts cannot be written is still a run.
        let gathered = match (&mut gathering.0).await {
            Ok(f) => f,
            Err(_) => facts::collect_all(spec.python).await,
        };
        let facts = gathered.for_devices(outcome.cuda_visible_devices.as_deref());
        if let Err(e) = facts::write(&run_dir, &facts) {
            tracing::warn!(dir = %run_dir.display(), %e, "cannot write env.json");
        }
    }
    if set_aside_when_failed(&record) {
        set_aside(root, &mut record).map_err(|e| io(&run_dir, e))?;
    }
    record.save(root).map_err(|e| io(&root.join(&record.dir), e))?;
    drop(tracked.live);
    Ok(Attempted {
        record,
        feedback,
        exit: outcome.exit,
        cuda_visible_devices: outcome.cuda_visible_devices,
    })
}

/// What the model is told when aisci stopped a run for breaking a limit.
pub fn limit_message(limit: Limit) -> String {
    match limit {
        Limit::RunDirBytes(n) => format!(
            "The run was stopped: its folder grew past the limit of {n} bytes ({}). \
             Write less into the output folder: no checkpoints, large arrays or datasets; \
             final_info.json and small results are enough.",
            human_bytes(n)
        ),
        Limit::Memory(n) => format!(
            "The run was stopped: it needed more than its memory limit of {}. \
             Use less memory: smaller batches or models, fewer data-loader workers, \
             no whole datasets or histories held in memory.",
            human_bytes(n)
        ),
    }
}

fn human_bytes(n: u64) -> String {
    const UNITS: [&str; 5] = ["bytes", "KiB", "MiB", "GiB", "TiB"];
    let mut v = n as f64;
    let mut u = 0;
    while v >= 1024.0 && u < UNITS.len() - 1 {
        v /= 1024.0;
        u += 1;
    }
    if u == 0 {
        format!("{n} bytes")
    } else {
        format!("{v:.1} {}", UNITS[u])
    }
}

/// "<what> failed with the following error:" and the end of stderr; with nothing on
/// stderr, the exit status and the end of stdout instead.
pub fn failure_message(what: &str, outcome: &RunOutcome, tail_chars: usize) -> String {
    let status = match outcome.exit {
        ExitKind::Failed(code) => format!("exit code {code}"),
        ExitKind::Signaled(sig) => format!("signal {sig}"),
        _ => "an error".into(),
    };
    if outcome.stderr_tail.trim().is_empty() {
        let out = tail(&outcome.stdout_tail, outcome.stdout_bytes, tail_chars);
        if out.trim().is_empty() {
            return format!("{what} failed with {status} and printed nothing.");
        }
        return format!(
            "{what} failed with {status} and printed nothing on stderr. The end of its output:\n{out}"
        );
    }
    format!(
        "{what} failed ({status}) with the following error:\n{}",
        tail(&outcome.stderr_tail, outcome.stderr_bytes, tail_chars)
    )
}

/// The last `n` characters, after "..." when anything was cut (here, or already by
/// the runner's bounded tail).
fn tail(text: &str, total_bytes: u64, n: usize) -> String {
    let count = text.chars().count();
    if count > n {
        let skip = count - n;
        let at = text.char_indices().nth(skip).map_or(text.len(), |(i, _)| i);
        format!("...{}", &text[at..])
    } else if total_bytes > text.len() as u64 {
        format!("...{text}")
    } else {
        text.to_string()
    }
}

/// A spawned task that is stopped when its handle goes (its child processes with it).
struct AbortOnDrop<T>(tokio::task::JoinHandle<T>);

impl<T> Drop for AbortOnDrop<T> {
    fn drop(&mut self) {
        self.0.abort();
    }
}

fn mkdirs(dir: &Path) -> Result<(), AttemptError> {
    std::fs::create_dir_all(dir).map_err(|e| io(dir, e))
}

fn move_dir(from: &Path, to: &Path) -> Result<(), AttemptError> {
    if let Some(parent) = to.parent() {
        mkdirs(parent)?;
    }
    std::fs::rename(from, to).map_err(|e| io(from, e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn folder_limit_maps_to_record_and_feedback() {
        use crate::project::RunExit;
        let exit = ExitKind::LimitExceeded(Limit::RunDirBytes(10 << 30));
        let r = crate::runs::finish::run_exit(exit);
        assert_eq!(
            r,
            RunExit::RunDirTooLarge {
                limit_bytes: 10 << 30
            }
        );
        assert_eq!(
            serde_json::to_value(r).unwrap(),
            serde_json::json!({"kind": "run_dir_too_large", "limit_bytes": 10u64 << 30})
        );
        let msg = limit_message(Limit::RunDirBytes(10 << 30));
        assert!(
            msg.starts_with(
                "The run was stopped: its folder grew past the limit of 10737418240 bytes (10.0 GiB)."
            ),
            "{msg}"
        );
        assert_eq!(human_bytes(512), "512 bytes");
    }

    #[test]
    fn tails_are_marked_when_cut() {
        assert_eq!(tail("abcdef", 6, 3), "...def");
        assert_eq!(tail("abc", 3, 3), "abc");
        assert_eq!(tail("abc", 10, 3), "...abc");
        assert_eq!(tail("ééé", 6, 2), "...éé");
    }
}
