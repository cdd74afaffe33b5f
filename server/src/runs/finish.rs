//! Completing a run's record from how it ended, the same way whoever watched it to the
//! end (the launcher, the experiment loop, an aisci that re-attached after a restart):
//! exit status, results from `final_info.json`, the error line and traceback frames.

use std::path::{Path, PathBuf};

use crate::project::{
    attempt_dir, now_rfc3339, read_run_results, FinalInfo, ResultsError, RunExit, RunOrigin, RunRecord,
    RunState, TraceFrame,
};
use crate::runner::{traceback, ExitKind, Limit, RunOutcome};

pub fn run_exit(exit: ExitKind) -> RunExit {
    match exit {
        ExitKind::Success => RunExit::Success,
        ExitKind::Failed(code) => RunExit::Failed { code },
        ExitKind::Signaled(signal) => RunExit::Signaled { signal },
        ExitKind::TimedOut => RunExit::TimedOut,
        ExitKind::Cancelled => RunExit::Cancelled,
        ExitKind::LimitExceeded(Limit::RunDirBytes(limit_bytes)) => RunExit::RunDirTooLarge { limit_bytes },
        ExitKind::LimitExceeded(Limit::Memory(limit_bytes)) => RunExit::OutOfMemory { limit_bytes },
    }
}

/// Fills in `record` (saved by the caller) from `outcome`; `run_dir` holds the run's
/// outputs. Returns why the results of a successful run are unusable, if they are.
pub fn complete(
    record: &mut RunRecord,
    outcome: &RunOutcome,
    run_dir: &Path,
    expected: Option<&FinalInfo>,
) -> Option<ResultsError> {
    record.state = RunState::Done;
    record.exit = Some(run_exit(outcome.exit));
    record.ended = Some(now_rfc3339());
    // Milliseconds: short decimals read back exactly.
    record.duration_secs = (outcome.elapsed.as_secs_f64() * 1000.0).round() / 1000.0;
    if record.gpu.is_none() {
        record.gpu = outcome.cuda_visible_devices.clone();
    }
    record.completed = false;
    record.means = None;
    record.frames.clear();
    record.error = None;
    match outcome.exit {
        ExitKind::Success => match read_run_results(run_dir, expected) {
            Ok(fi) => {
                record.completed = true;
                record.means = Some(serde_json::Value::Object(fi.means_by_dataset()));
            }
            Err(e) => {
                record.error = Some(e.to_string());
                return Some(e);
            }
        },
        ExitKind::TimedOut => {
            let secs = record
                .timeout_secs
                .unwrap_or_else(|| outcome.elapsed.as_secs_f64().round() as u64);
            record.error = Some(format!("timed out after {secs} s"));
        }
        ExitKind::Cancelled => record.error = Some("cancelled".into()),
        ExitKind::LimitExceeded(limit) => record.error = Some(limit.to_string()),
        ExitKind::Failed(_) | ExitKind::Signaled(_) => {
            record.error = Some(error_line(outcome));
            if let Some(tb) = traceback::parse(&outcome.stderr_tail) {
                record.error = Some(tb.error.clone());
                record.frames = tb
                    .frames
                    .into_iter()
                    .map(|f| TraceFrame {
                        file: f.file,
                        line: f.line,
                        function: f.function,
                    })
                    .collect();
            }
        }
    }
    None
}

/// Marks a run that gave no exit status: `state` is Failed or Lost.
pub fn ended_without_status(record: &mut RunRecord, state: RunState, why: String) {
    record.state = state;
    record.exit = None;
    record.completed = false;
    record.error = Some(why);
    record.ended = Some(now_rfc3339());
}

/// One line for the record: the last line of stderr (Python puts the exception
/// there), else the exit status.
pub fn error_line(outcome: &RunOutcome) -> String {
    outcome
        .stderr_tail
        .lines()
        .map(str::trim)
        .rfind(|l| !l.is_empty())
        .map(str::to_string)
        .unwrap_or_else(|| match outcome.exit {
            ExitKind::Failed(code) => format!("exit code {code}"),
            ExitKind::Signaled(sig) => format!("killed by signal {sig}"),
            _ => "failed".into(),
        })
}

/// The module a failed run could not import ("numpy" from Python's
/// `ModuleNotFoundError: No module named 'numpy'`), from its error line.
pub fn missing_module(error_line: &str) -> Option<&str> {
    let rest = error_line
        .trim()
        .strip_prefix("ModuleNotFoundError: No module named ")?;
    let name = rest.trim_matches(|c| c == '\'' || c == '"');
    // `No module named 'torch.cuda'`: the package is what is installed.
    let top = name.split('.').next().unwrap_or(name);
    (!top.is_empty()).then_some(top)
}

/// What to do about a module `python` lacks.
pub fn missing_module_hint(module: &str, python: &str) -> String {
    format!(
        "{module} is not installed for {python} (run.python). Install it there \
         (`{python} -m pip install {module}`), or set run.python in ~/.config/aisci/config.toml \
         to a Python that has it; `scripts/torch-up` makes one with torch, numpy and matplotlib"
    )
}

/// Whether a run that did not complete is moved under `.aisci/attempts/` (as the
/// experiment loop and the baseline do, so only completed runs are `run_<i>/`).
pub fn set_aside_when_failed(record: &RunRecord) -> bool {
    !record.completed && matches!(record.origin, Some(RunOrigin::Experiment | RunOrigin::Baseline))
}

/// Moves a failed attempt's `run_<i>/` (and its code snapshot `run_<i>.py`, if any)
/// to `.aisci/attempts/run_<i>/attempt_<k>/`, and points the record there. v1 deletes
/// a failed `run_<i>/`; we keep it (logs, partial output) out of plot.py's `run*` scan.
pub fn set_aside(root: &Path, record: &mut RunRecord) -> std::io::Result<()> {
    let run_name = format!("run_{}", record.run);
    let dest_rel = attempt_dir(record.run, record.attempt);
    let dest = root.join(&dest_rel);
    if dest.exists() {
        std::fs::remove_dir_all(&dest)?;
    }
    move_dir(&root.join(&run_name), &dest)?;
    record.dir = dest_rel.clone();
    record.stdout = dest_rel.join("stdout.txt");
    record.stderr = dest_rel.join("stderr.txt");
    if record.code.is_some() {
        let code = root.join(format!("{run_name}.py"));
        if code.exists() {
            std::fs::rename(&code, dest.join("experiment.py"))?;
            record.code = Some(dest_rel.join("experiment.py"));
        }
    }
    Ok(())
}

pub fn move_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    if let Some(parent) = to.parent() {
        std::fs::create_dir_all(parent)?;
    }
    std::fs::rename(from, to).map_err(|e| std::io::Error::new(e.kind(), format!("{}: {e}", from.display())))
}

/// The run folder of a record in `root` (where it runs, or where it was moved).
pub fn run_dir(root: &Path, record: &RunRecord) -> PathBuf {
    root.join(&record.dir)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn outcome(exit: ExitKind, stderr: &str) -> RunOutcome {
        RunOutcome {
            exit,
            elapsed: Duration::from_millis(1234),
            stdout_tail: String::new(),
            stderr_tail: stderr.into(),
            stdout_bytes: 0,
            stderr_bytes: stderr.len() as u64,
            cuda_visible_devices: Some("".into()),
        }
    }

    #[test]
    fn outcomes_fill_the_record() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("run_1");
        std::fs::create_dir_all(&dir).unwrap();
        let mut r = RunRecord::queued(1, 1, vec![], RunOrigin::Launch, 5);
        assert!(complete(&mut r, &outcome(ExitKind::Success, ""), &dir, None).is_some());
        assert_eq!((r.state, r.completed), (RunState::Done, false));
        std::fs::write(dir.join("final_info.json"), r#"{"d": {"means": {"acc": 1}}}"#).unwrap();
        assert!(complete(&mut r, &outcome(ExitKind::Success, ""), &dir, None).is_none());
        assert!(r.completed && r.error.is_none());
        assert_eq!(r.duration_secs, 1.234);
        assert_eq!(r.gpu.as_deref(), Some(""));

        let tb = "Traceback (most recent call last):\n  File \"experiment.py\", line 3, in <module>\n    f()\nValueError: bad\n";
        complete(&mut r, &outcome(ExitKind::Failed(1), tb), &dir, None);
        assert_eq!(r.exit, Some(RunExit::Failed { code: 1 }));
        assert!(!r.completed && r.means.is_none());
        assert_eq!(r.error.as_deref(), Some("ValueError: bad"));
        assert_eq!(r.frames.len(), 1);
        complete(&mut r, &outcome(ExitKind::TimedOut, ""), &dir, None);
        assert_eq!(r.error.as_deref(), Some("timed out after 5 s"));
        assert!(r.frames.is_empty());
    }
}
