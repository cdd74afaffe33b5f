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

/// What aisci knows about one attempt at a run, persisted as `aisci_run.json` so
/// that the editor can show it after a restart and a later session can resume.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RunRecord {
    /// 0 for the baseline.
    pub run: u32,
    /// 1-based attempt within the run (the model turn that led to it).
    pub attempt: u32,
    pub exit: RunExit,
    /// True when the process succeeded and `final_info.json` is usable.
    pub completed: bool,
    /// RFC 3339.
    pub started: String,
    pub duration_secs: f64,
    pub command: Vec<String>,
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
    /// Write into `<root>/<dir>/aisci_run.json`, atomically.
    pub fn save(&self, root: &Path) -> std::io::Result<()> {
        let text = serde_json::to_string_pretty(self).expect("records serialise");
        crate::fsutil::write_atomic(&root.join(&self.dir).join(RUN_RECORD_FILE), text.as_bytes())
    }

    pub fn load(run_dir: &Path) -> Option<RunRecord> {
        let text = std::fs::read_to_string(run_dir.join(RUN_RECORD_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }
}

/// The completed runs of an idea folder (those whose `run_<i>/aisci_run.json` says
/// so), by run number.
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
        .filter_map(|e| RunRecord::load(&e.path()))
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
        let r = RunRecord {
            run: 1,
            attempt: 2,
            exit: RunExit::Success,
            completed: true,
            started: "2024-08-02T09:00:35Z".into(),
            duration_secs: 0.4,
            command: vec!["python".into(), "experiment.py".into(), "--out_dir=run_1".into()],
            means: Some(serde_json::json!({"a": {"x": 1.0}})),
            error: None,
            frames: vec![],
            dir: "run_1".into(),
            stdout: "run_1/stdout.txt".into(),
            stderr: "run_1/stderr.txt".into(),
            code: Some("run_1.py".into()),
        };
        r.save(tmp.path()).unwrap();
        assert_eq!(RunRecord::load(&tmp.path().join("run_1")).unwrap(), r);
        assert_eq!(completed_runs(tmp.path()), vec![r]);
    }
}
