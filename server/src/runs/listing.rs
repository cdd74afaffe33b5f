//! Every run of a workspace, as a list a person (or an editor) reads: state, where it
//! runs, how long, how it ended, where its logs are. Built from the records on disk and
//! the live view of this process; records are parsed again only when their file changed,
//! so the list is cheap to ask for often.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{LazyLock, Mutex};
use std::time::SystemTime;

use serde::Serialize;

use super::live::{self, LiveRun};
use crate::project::{RunExit, RunRecord, RunState, ATTEMPTS_DIR, RUN_RECORD_FILE};

/// How deep under a workspace folder project folders are looked for
/// (`<root>/results/<template>/<idea>/` is 3).
const MAX_DEPTH: usize = 3;
/// Folders never looked into.
const SKIP: [&str; 8] = [
    ".git",
    "node_modules",
    "target",
    ".venv",
    "venv",
    "__pycache__",
    "latex",
    ".aisci",
];

/// One run (one attempt) in the list.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct RunView {
    /// The folder it ran in (holds experiment.py).
    pub folder: PathBuf,
    pub run: u32,
    pub attempt: u32,
    pub state: RunState,
    /// Runs ahead of it in the queue, while queued.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ahead: Option<usize>,
    /// While queued for a GPU another aisci process holds: which, and who holds it.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub held_by: Option<String>,
    /// The GPU(s) of its slot (`""`: CPU).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub gpu: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub job_id: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub pid: Option<i32>,
    /// "GPU 1", "CPU", "Slurm job 42".
    #[serde(skip_serializing_if = "Option::is_none")]
    pub place: Option<String>,
    /// Seconds it has run (queued: waited), or ran in all once ended.
    pub elapsed_secs: f64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exit: Option<RunExit>,
    pub completed: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub means: Option<serde_json::Value>,
    pub started: String,
    pub stdout: PathBuf,
    pub stderr: PathBuf,
    /// Its `aisci_run.json`.
    pub record: PathBuf,
    /// Watched by this process now.
    pub watched: bool,
}

fn secs_since(t: SystemTime) -> f64 {
    SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

fn parse_time(s: &str) -> Option<SystemTime> {
    chrono::DateTime::parse_from_rfc3339(s).ok().map(SystemTime::from)
}

impl RunView {
    pub fn new(folder: &Path, record: &RunRecord, record_path: PathBuf, live: Option<&LiveRun>) -> Self {
        let mut v = RunView {
            folder: folder.to_path_buf(),
            run: record.run,
            attempt: record.attempt,
            state: record.state,
            ahead: record.queued_ahead.filter(|_| record.state == RunState::Queued),
            held_by: None,
            gpu: record.gpu.clone(),
            job_id: record.job_id().map(str::to_owned),
            pid: match &record.attachment {
                Some(crate::runner::Attachment::Local(l)) => Some(l.pid),
                _ => None,
            },
            place: record.place(),
            elapsed_secs: record.duration_secs,
            exit: record.exit,
            completed: record.completed,
            error: record.error.clone(),
            means: record.means.clone(),
            started: record.started.clone(),
            stdout: folder.join(&record.stdout),
            stderr: folder.join(&record.stderr),
            record: record_path,
            watched: false,
        };
        if let Some(l) = live.filter(|_| record.state.in_flight()) {
            v.watched = true;
            v.state = l.state;
            v.ahead = l.ahead.filter(|_| l.state == RunState::Queued);
            v.held_by = l.held_by.clone().filter(|_| l.state == RunState::Queued);
            v.gpu = l.gpu.clone().or(v.gpu);
            v.job_id = l.job_id.clone().or(v.job_id);
            v.pid = l.pid.or(v.pid);
            v.place = match (&v.job_id, v.gpu.as_deref()) {
                (Some(j), _) => Some(format!("Slurm job {j}")),
                (None, Some("")) => Some("CPU".into()),
                (None, Some(g)) => Some(format!("GPU {g}")),
                (None, None) => None,
            };
        }
        if v.state.in_flight() {
            let since = match v.state {
                RunState::Running => live
                    .and_then(|l| l.running_since)
                    .or_else(|| record.running_since.as_deref().and_then(parse_time)),
                _ => live.map(|l| l.queued_at),
            }
            .or_else(|| parse_time(&record.started));
            v.elapsed_secs = since.map(secs_since).unwrap_or(0.0);
        }
        v
    }
}

/// Modification time, length and inode: a record is replaced by rename, so a new
/// version is a new inode even within one mtime tick.
type Stamp = (SystemTime, u64, u64);
type Cache = HashMap<PathBuf, (Stamp, RunRecord)>;
static CACHE: LazyLock<Mutex<Cache>> = LazyLock::new(Default::default);

/// The record at `path`, parsed again only when the file changed.
fn load_cached(path: &Path) -> Option<RunRecord> {
    use std::os::unix::fs::MetadataExt;
    let meta = std::fs::metadata(path).ok()?;
    let stamp = (meta.modified().ok()?, meta.len(), meta.ino());
    if let Some((s, r)) = CACHE.lock().unwrap_or_else(|p| p.into_inner()).get(path) {
        if *s == stamp {
            return Some(r.clone());
        }
    }
    let record: RunRecord = serde_json::from_str(&std::fs::read_to_string(path).ok()?).ok()?;
    CACHE
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .insert(path.to_path_buf(), (stamp, record.clone()));
    Some(record)
}

fn run_number(name: &str) -> Option<u32> {
    name.strip_prefix("run_")?.parse().ok()
}

fn subdirs(dir: &Path) -> Vec<(String, PathBuf)> {
    let mut out: Vec<(String, PathBuf)> = std::fs::read_dir(dir)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_ok_and(|t| t.is_dir()))
        .filter_map(|e| Some((e.file_name().to_str()?.to_owned(), e.path())))
        .collect();
    out.sort();
    out
}

/// The record files of one folder: `run_<i>/` and the attempts under `.aisci/attempts/`.
pub fn record_files(folder: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    for (name, dir) in subdirs(folder) {
        if run_number(&name).is_some() {
            let f = dir.join(RUN_RECORD_FILE);
            if f.is_file() {
                files.push(f);
            }
        }
    }
    for (name, dir) in subdirs(&folder.join(ATTEMPTS_DIR)) {
        if run_number(&name).is_none() {
            continue;
        }
        for (_, attempt) in subdirs(&dir) {
            let f = attempt.join(RUN_RECORD_FILE);
            if f.is_file() {
                files.push(f);
            }
        }
    }
    files
}

/// The runs of one folder (by run, then attempt), with what this process knows live.
pub fn runs_in(folder: &Path) -> Vec<RunView> {
    let live: Vec<LiveRun> = live::in_folder(folder);
    let mut out: Vec<RunView> = record_files(folder)
        .into_iter()
        .filter_map(|f| {
            let r = load_cached(&f)?;
            let l = live
                .iter()
                .find(|l| l.run == r.run && f.starts_with(folder.join(format!("run_{}", r.run))));
            Some(RunView::new(folder, &r, f, l))
        })
        .collect();
    out.sort_by(|a, b| (a.run, a.attempt, &a.started).cmp(&(b.run, b.attempt, &b.started)));
    out
}

/// Folders holding an `experiment.py` at or below `roots` (not deeper than 3 levels).
pub fn project_folders(roots: &[PathBuf]) -> Vec<PathBuf> {
    fn walk(dir: &Path, depth: usize, out: &mut Vec<PathBuf>) {
        if dir.join("experiment.py").is_file() && !out.iter().any(|p| p == dir) {
            out.push(dir.to_path_buf());
        }
        if depth == MAX_DEPTH {
            return;
        }
        for (name, sub) in subdirs(dir) {
            if SKIP.contains(&name.as_str()) || run_number(&name).is_some() || name.starts_with('.') {
                continue;
            }
            walk(&sub, depth + 1, out);
        }
    }
    let mut out = Vec::new();
    for root in roots {
        walk(root, 0, &mut out);
    }
    out
}

/// Every run under the workspace `roots`.
pub fn list(roots: &[PathBuf]) -> Vec<RunView> {
    project_folders(roots).iter().flat_map(|f| runs_in(f)).collect()
}

/// "0:42", "12:05", "1:02:03".
pub fn clock(secs: f64) -> String {
    let s = secs.max(0.0) as u64;
    let (h, m, s) = (s / 3600, s / 60 % 60, s % 60);
    if h > 0 {
        format!("{h}:{m:02}:{s:02}")
    } else {
        format!("{m}:{s:02}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::RunOrigin;

    #[test]
    fn lists_runs_and_attempts_of_every_project_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("templates/toy");
        let idea = tmp.path().join("results/toy/20260101_000000_x");
        for f in [&t, &idea] {
            std::fs::create_dir_all(f).unwrap();
            std::fs::write(f.join("experiment.py"), "").unwrap();
        }
        let mut r = RunRecord::queued(1, 1, vec![], RunOrigin::Launch, 5);
        std::fs::create_dir_all(t.join("run_1")).unwrap();
        r.save(&t).unwrap();
        let mut a = RunRecord::queued(2, 1, vec![], RunOrigin::Experiment, 5);
        a.state = RunState::Done;
        a.dir = crate::project::attempt_dir(2, 1);
        a.stdout = a.dir.join("stdout.txt");
        std::fs::create_dir_all(idea.join(&a.dir)).unwrap();
        a.save(&idea).unwrap();

        let all = list(&[tmp.path().to_path_buf()]);
        assert_eq!(all.len(), 2, "{all:#?}");
        let queued = all.iter().find(|v| v.folder == t).unwrap();
        assert_eq!(queued.state, RunState::Queued);
        assert!(!queued.watched);
        let failed = all.iter().find(|v| v.folder == idea).unwrap();
        assert_eq!(
            failed.stdout,
            idea.join(".aisci/attempts/run_2/attempt_1/stdout.txt")
        );

        // A change on disk is seen (the cache is keyed by the file's stamp).
        r.state = RunState::Running;
        r.gpu = Some("3".into());
        r.save(&t).unwrap();
        let v = &runs_in(&t)[0];
        assert_eq!((v.state, v.place.as_deref()), (RunState::Running, Some("GPU 3")));
    }

    #[test]
    fn clocks() {
        assert_eq!(clock(42.7), "0:42");
        assert_eq!(clock(725.0), "12:05");
        assert_eq!(clock(3723.0), "1:02:03");
    }
}
