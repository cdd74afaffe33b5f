//! Experiment runs on disk: reading a run's `final_info.json` strictly enough to
//! feed the model a useful message, and the record aisci keeps of each run.
//!
//! Layout in an idea folder (or a template, for the baseline):
//! - `run_<i>/` — a completed run only: the experiment's outputs, `final_info.json`,
//!   our `stdout.txt`/`stderr.txt` and `aisci_run.json` (a [`RunRecord`]).
//! - `run_<i>.py` — the `experiment.py` that produced it (v1's snapshot).
//! - `.aisci/attempts/run_<i>/attempt_<k>/` — a failed attempt: what was in
//!   `run_<i>/` (partial outputs, logs, its `aisci_run.json`) plus the
//!   `experiment.py` it ran. v1 deletes a failed `run_<i>/`; we move it here so
//!   the logs survive, and so that no failed run sits beside the completed ones
//!   where `plot.py` (which scans `run*` folders) would read it.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::formats::{kind_of, DatasetResult, FinalInfo};
use super::pyrepr::parse_python_json;
use crate::runner::Attachment;

/// The record file inside a run folder.
pub const RUN_RECORD_FILE: &str = "aisci_run.json";
/// Where failed attempts are kept, relative to the idea folder.
pub const ATTEMPTS_DIR: &str = ".aisci/attempts";

/// How a run's process ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum RunExit {
    Success,
    Failed {
        code: i32,
    },
    Signaled {
        signal: i32,
    },
    TimedOut,
    Cancelled,
    /// Stopped by aisci: the run folder grew past `run.max_run_dir_bytes`.
    RunDirTooLarge {
        limit_bytes: u64,
    },
    /// Stopped by the kernel (or Slurm) for going over `run.max_memory_bytes`.
    OutOfMemory {
        limit_bytes: u64,
    },
}

/// One frame of a Python traceback, innermost last.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct TraceFrame {
    /// As Python printed it (often absolute).
    pub file: String,
    pub line: u32,
    /// None for a `SyntaxError` location.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function: Option<String>,
}

/// Where a run is in its life. The record is rewritten (atomically) at each change, so
/// an aisci started later knows which runs to watch again and never re-runs one.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunState {
    /// Waiting for a slot (a GPU, a CPU slot).
    Queued,
    /// Has its slot; the process (or Slurm job) runs. `attachment` finds it again.
    Running,
    /// Ended with an exit status (`exit`); `completed` says whether its results are usable.
    /// Records written before states existed were written at the end: they default here.
    #[default]
    Done,
    /// Ended without an exit status: aisci stopped before it started, or the runner failed.
    Failed,
    /// Its process or job vanished while no aisci watched it, leaving no exit status.
    Lost,
}

impl RunState {
    /// Queued or running: still someone's to finish.
    pub fn in_flight(self) -> bool {
        matches!(self, RunState::Queued | RunState::Running)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RunState::Queued => "queued",
            RunState::Running => "running",
            RunState::Done => "done",
            RunState::Failed => "failed",
            RunState::Lost => "lost",
        }
    }
}

/// An aisci process, told apart from a later process that reuses its pid.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Watcher {
    pub pid: u32,
    /// Its start time in clock ticks since boot (`/proc/<pid>/stat` field 22).
    pub start_ticks: u64,
}

impl Watcher {
    /// This process.
    pub fn this_process() -> Option<Watcher> {
        let pid = std::process::id();
        Some(Watcher {
            pid,
            start_ticks: start_ticks(pid)?,
        })
    }

    /// Whether that process still runs (false where this cannot be known: no /proc).
    pub fn alive(&self) -> bool {
        start_ticks(self.pid) == Some(self.start_ticks)
    }
}

/// Field 22 of `/proc/<pid>/stat` (after the parenthesised command name, which may hold spaces).
fn start_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let rest = &stat[stat.rfind(')')? + 1..];
    // Fields after the name start at field 3; field 22 is the 20th of them.
    rest.split_whitespace().nth(19)?.parse().ok()
}

/// Who launched a run: decides how a resumed run is finished (an experiment-loop
/// attempt that failed is moved under `.aisci/attempts/`, as the loop would have).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RunOrigin {
    /// "Launch run" in the editor, or `aisci run`.
    Launch,
    /// The experiment agent's loop.
    Experiment,
    /// A template's baseline (`run_0`).
    Baseline,
}

/// What aisci knows about one attempt at a run, persisted as `aisci_run.json` so
/// that the editor can show it after a restart and a later session can resume.
/// Written when the run is queued, when it starts, and when it ends.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 0 for the baseline.
    pub run: u32,
    /// 1-based attempt within the run (the model turn that led to it).
    pub attempt: u32,
    #[serde(default)]
    pub state: RunState,
    /// How the process ended; None until it has (and for a run that never ran).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub exit: Option<RunExit>,
    /// True when the process succeeded and `final_info.json` is usable.
    pub completed: bool,
    /// When aisci launched it (RFC 3339); it may have waited in the queue after that.
    pub started: String,
    /// When it got its slot and its process started (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub running_since: Option<String>,
    /// When it ended (RFC 3339).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
    /// Seconds from launch to end (0 until it ends).
    pub duration_secs: f64,
    pub command: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub origin: Option<RunOrigin>,
    /// Its wall-clock limit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout_secs: Option<u64>,
    /// Runs queued before it when it was queued.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub queued_ahead: Option<usize>,
    /// The `CUDA_VISIBLE_DEVICES` of its slot (`""`: a CPU slot).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    /// How a later aisci finds the running process or Slurm job again.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub attachment: Option<Attachment>,
    /// The aisci process watching it while it is queued or running: another aisci
    /// leaves it alone while that process lives.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub watcher: Option<Watcher>,
    /// `{dataset: means}` of a completed run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub means: Option<Value>,
    /// One line: why it did not complete.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// The traceback of a failed run, innermost last.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub frames: Vec<TraceFrame>,
    /// Where things are, relative to the folder the run ran in: the run folder
    /// (where a failed attempt was moved to), its logs and the code snapshot.
    pub dir: PathBuf,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<PathBuf>,
}

impl RunRecord {
    /// A run about to be queued in `<root>/run_<run>/` (its logs in that folder).
    pub fn queued(
        run: u32,
        attempt: u32,
        command: Vec<String>,
        origin: RunOrigin,
        timeout_secs: u64,
    ) -> Self {
        let dir = PathBuf::from(format!("run_{run}"));
        RunRecord {
            run,
            attempt,
            state: RunState::Queued,
            exit: None,
            completed: false,
            started: now_rfc3339(),
            running_since: None,
            ended: None,
            duration_secs: 0.0,
            command,
            origin: Some(origin),
            timeout_secs: Some(timeout_secs),
            queued_ahead: None,
            gpu: None,
            attachment: None,
            watcher: Watcher::this_process(),
            means: None,
            error: None,
            frames: Vec::new(),
            stdout: dir.join("stdout.txt"),
            stderr: dir.join("stderr.txt"),
            dir,
            code: None,
        }
    }

    /// The Slurm job id, for a run sent to Slurm.
    pub fn job_id(&self) -> Option<&str> {
        match &self.attachment {
            Some(Attachment::Slurm(s)) => Some(s.job_id.as_str()),
            _ => None,
        }
    }

    /// Where it ran, in words: "GPU 1", "CPU", "Slurm job 42"; None before it had a slot.
    pub fn place(&self) -> Option<String> {
        if let Some(job) = self.job_id() {
            return Some(format!("Slurm job {job}"));
        }
        match self.gpu.as_deref() {
            Some("") => Some("CPU".into()),
            Some(g) => Some(format!("GPU {g}")),
            None => None,
        }
    }

    /// Write into `<root>/<dir>/aisci_run.json`, atomically.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("records serialise");
        crate::fsutil::write_atomic(&root.join(&self.dir).join(RUN_RECORD_FILE), text.as_bytes())
    }

    /// A run that The AI Scientist v1 made (`run_<i>/final_info.json`, no aisci record),
    /// as a completed run, so a v1 idea folder goes on after its runs instead of redoing
    /// them. Its code is v1's `run_<i>.py` snapshot when there is one.
    pub fn from_v1_run(root: &Path, run_dir: &Path) -> Option<RunRecord> {
        let name = run_dir.file_name()?.to_str()?;
        let run: u32 = name.strip_prefix("run_")?.parse().ok()?;
        let info = read_run_results(run_dir, None).ok()?;
        let when = std::fs::metadata(run_dir.join("final_info.json"))
            .and_then(|m| m.modified())
            .ok()
            .map(|t| {
                chrono::DateTime::<chrono::Utc>::from(t).to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
            })
            .unwrap_or_else(now_rfc3339);
        let mut r = RunRecord::queued(
            run,
            1,
            vec![
                "python".into(),
                "experiment.py".into(),
                format!("--out_dir={name}"),
            ],
            RunOrigin::Experiment,
            0,
        );
        r.state = RunState::Done;
        r.exit = Some(RunExit::Success);
        r.completed = true;
        r.started = when.clone();
        r.ended = Some(when);
        r.timeout_secs = None;
        r.watcher = None;
        r.means = Some(Value::Object(info.means_by_dataset()));
        let code = format!("{name}.py");
        r.code = root.join(&code).is_file().then(|| PathBuf::from(code));
        Some(r)
    }

    pub fn load(run_dir: &Path) -> Option<RunRecord> {
        let text = std::fs::read_to_string(run_dir.join(RUN_RECORD_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// Now, as records store times.
pub fn now_rfc3339() -> String {
    chrono::Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Millis, true)
}

/// The completed runs of an idea folder (those whose `run_<i>/aisci_run.json` says
/// so, and v1's runs, which have no record but usable results), by run number.
pub fn completed_runs(root: &Path) -> Vec<RunRecord> {
    let mut out: Vec<RunRecord> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix("run_"))
                .is_some_and(|n| n.parse::<u32>().is_ok())
        })
        .filter_map(|e| RunRecord::load(&e.path()).or_else(|| RunRecord::from_v1_run(root, &e.path())))
        .filter(|r| r.completed)
        .collect();
    out.sort_by_key(|r| r.run);
    out
}

/// The folder a failed attempt is moved to, relative to the idea folder.
pub fn attempt_dir(run: u32, attempt: u32) -> PathBuf {
    Path::new(ATTEMPTS_DIR)
        .join(format!("run_{run}"))
        .join(format!("attempt_{attempt}"))
}

/// Why a run's results cannot be used. The messages are written for the model,
/// which has to fix `experiment.py`, so they say what the file must look like.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ResultsError {
    #[error("the run finished but wrote no {path}. experiment.py must create the folder given by --out_dir and write final_info.json into it, shaped {expected}")]
    Missing { path: String, expected: String },
    #[error("{path} cannot be read: {message}")]
    Unreadable { path: String, message: String },
    #[error("{path} is not valid JSON ({message}); it must be shaped {expected}")]
    NotJson {
        path: String,
        message: String,
        expected: String,
    },
    #[error("{path} holds {found}, not a JSON object; it must be shaped {expected}")]
    NotObject {
        path: String,
        found: String,
        expected: String,
    },
    #[error("{path} has no results: {detail}; it must be shaped {expected}")]
    NoMeans {
        path: String,
        detail: String,
        expected: String,
    },
}

/// Read `<run_dir>/final_info.json` as v1 uses it: an object whose every value is
/// an object with `means` (v1 takes `v["means"]` of each and fails otherwise).
/// `expected`: the baseline's results, to show the shape the template uses.
pub fn read_run_results(run_dir: &Path, expected: Option<&FinalInfo>) -> Result<FinalInfo, ResultsError> {
    let path = run_dir.join("final_info.json");
    let shown = display_path(&path);
    let shape = expected_shape(expected);
    let text = match std::fs::read_to_string(&path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            return Err(ResultsError::Missing {
                path: shown,
                expected: shape,
            })
        }
        Err(e) => {
            return Err(ResultsError::Unreadable {
                path: shown,
                message: e.to_string(),
            })
        }
    };
    let value = parse_python_json(&text).map_err(|e| ResultsError::NotJson {
        path: shown.clone(),
        message: e.to_string(),
        expected: shape.clone(),
    })?;
    let Value::Object(top) = value else {
        return Err(ResultsError::NotObject {
            path: shown,
            found: kind_of(&value).to_string(),
            expected: shape,
        });
    };
    if top.is_empty() {
        return Err(ResultsError::NoMeans {
            path: shown,
            detail: "the object is empty".into(),
            expected: shape,
        });
    }
    let lacking: Vec<&str> = top
        .iter()
        .filter(|(_, v)| !v.as_object().is_some_and(|o| o.contains_key("means")))
        .map(|(k, _)| k.as_str())
        .collect();
    if !lacking.is_empty() {
        let detail = if lacking.len() == top.len() {
            "no entry has a \"means\" key".to_string()
        } else {
            format!(
                "{} ha{} no \"means\" key",
                lacking
                    .iter()
                    .map(|k| format!("\"{k}\""))
                    .collect::<Vec<_>>()
                    .join(", "),
                if lacking.len() == 1 { "s" } else { "ve" }
            )
        };
        return Err(ResultsError::NoMeans {
            path: shown,
            detail,
            expected: shape,
        });
    }
    let datasets = top
        .into_iter()
        .map(|(k, v)| {
            let r: DatasetResult =
                serde_json::from_value(v).expect("an object with means fits DatasetResult");
            (k, r)
        })
        .collect();
    Ok(FinalInfo { datasets })
}

/// The baseline of a template or idea folder: `run_0/final_info.json`, read as
/// v1 does (an object with `means` per dataset).
pub fn read_baseline(root: &Path) -> Result<FinalInfo, ResultsError> {
    read_run_results(&root.join("run_0"), None)
}

/// `{"<dataset>": {"means": {"<metric>": <number>, ...}}, ...}`, with the
/// baseline's dataset and metric names when known.
fn expected_shape(expected: Option<&FinalInfo>) -> String {
    let Some(fi) = expected.filter(|fi| !fi.datasets.is_empty()) else {
        return r#"{"<dataset>": {"means": {"<metric>": <number>, ...}}, ...}"#.into();
    };
    let parts: Vec<String> = fi
        .datasets
        .iter()
        .map(|(name, r)| {
            let means = match &r.means {
                Value::Object(m) => {
                    let names: Vec<String> = m.keys().map(|k| format!("\"{k}\": ...")).collect();
                    format!("{{{}}}", names.join(", "))
                }
                _ => "<number>".into(),
            };
            format!("\"{name}\": {{\"means\": {means}}}")
        })
        .collect();
    format!("{{{}}} (as in run_0/final_info.json)", parts.join(", "))
}

/// The last two components (`run_1/final_info.json`): what the model knows.
fn display_path(p: &Path) -> String {
    let comps: Vec<_> = p.components().rev().take(2).collect();
    comps
        .iter()
        .rev()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn write(dir: &Path, text: &str) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join("final_info.json"), text).unwrap();
    }

    #[test]
    fn results_problems_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let base = tmp.path().join("run_0");
        write(&base, r#"{"blobs": {"means": {"acc": 0.9}}}"#);
        let baseline = read_baseline(tmp.path()).unwrap();
        let run = tmp.path().join("run_1");

        let e = read_run_results(&run, Some(&baseline)).unwrap_err();
        assert!(matches!(e, ResultsError::Missing { .. }));
        let msg = e.to_string();
        assert!(msg.contains("run_1/final_info.json"), "{msg}");
        assert!(msg.contains(r#""blobs": {"means": {"acc": ...}}"#), "{msg}");

        write(&run, "{\"blobs\": ");
        assert!(matches!(
            read_run_results(&run, None),
            Err(ResultsError::NotJson { .. })
        ));
        write(&run, "[1, 2]");
        let e = read_run_results(&run, None).unwrap_err();
        assert!(e.to_string().contains("an array"), "{e}");
        write(&run, r#"{"blobs": {"acc": 1}, "moons": {"means": {}}}"#);
        let e = read_run_results(&run, None).unwrap_err();
        assert!(e.to_string().contains("\"blobs\" has no \"means\" key"), "{e}");
        write(&run, r#"{"blobs": {"means": {"acc": NaN}}}"#);
        let fi = read_run_results(&run, None).unwrap();
        assert_eq!(fi.datasets.len(), 1);
    }

    #[test]
    fn records_round_trip() {
        let tmp = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(tmp.path().join("run_1")).unwrap();
        let mut r = RunRecord::queued(
            1,
            2,
            vec!["python".into(), "experiment.py".into(), "--out_dir=run_1".into()],
            RunOrigin::Experiment,
            60,
        );
        r.state = RunState::Done;
        r.exit = Some(RunExit::Success);
        r.completed = true;
        r.duration_secs = 0.4;
        r.means = Some(serde_json::json!({"a": {"x": 1.0}}));
        r.code = Some("run_1.py".into());
        r.save(tmp.path()).unwrap();
        assert_eq!(RunRecord::load(&tmp.path().join("run_1")).unwrap(), r);
        assert_eq!(completed_runs(tmp.path()), vec![r]);
    }

    #[test]
    fn records_from_before_states_still_load() {
        // As aisci wrote them before runs had states: written once, at the end.
        let old = r#"{"run": 2, "attempt": 1, "exit": {"kind": "failed", "code": 1}, "completed": false,
            "started": "2026-11-20T10:00:00Z", "duration_secs": 1.5, "command": ["python", "experiment.py"],
            "error": "ValueError: x", "dir": "run_2", "stdout": "run_2/stdout.txt", "stderr": "run_2/stderr.txt"}"#;
        let r: RunRecord = serde_json::from_str(old).unwrap();
        assert_eq!(r.state, RunState::Done);
        assert_eq!(r.exit, Some(RunExit::Failed { code: 1 }));
        assert_eq!(r.attachment, None);
        assert_eq!(r.place(), None);
        assert_eq!(r.watcher, None);
    }

    #[test]
    fn this_process_is_alive_and_a_dead_one_is_not() {
        let me = Watcher::this_process().expect("/proc is there");
        assert!(me.alive());
        let reused = Watcher {
            pid: me.pid,
            start_ticks: me.start_ticks + 1,
        };
        assert!(!reused.alive(), "same pid, other start: another process");
    }

    #[test]
    fn in_flight_records_carry_their_attachment() {
        let mut r = RunRecord::queued(3, 1, vec!["python3".into()], RunOrigin::Launch, 10);
        assert!(r.state.in_flight());
        r.state = RunState::Running;
        r.gpu = Some("1".into());
        r.attachment = Some(Attachment::Local(crate::runner::LocalAttachment {
            pid: 42,
            start_ticks: 7,
            boot_id: "b".into(),
            deadline_unix_ms: 1,
            exit_file: None,
            cgroup: None,
            tmp_dir: None,
        }));
        let text = serde_json::to_string(&r).unwrap();
        assert!(!text.contains("\"exit\""), "no exit before it ended: {text}");
        let back: RunRecord = serde_json::from_str(&text).unwrap();
        assert_eq!(back, r);
        assert_eq!(back.place().as_deref(), Some("GPU 1"));
        r.attachment = Some(Attachment::Slurm(crate::runner::SlurmAttachment {
            job_id: "77".into(),
            deadline_unix_ms: 1,
        }));
        assert_eq!(r.place().as_deref(), Some("Slurm job 77"));
    }
}
