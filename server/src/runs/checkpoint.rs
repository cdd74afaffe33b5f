//! Checkpoints of an idea folder: the versions of `experiment.py` its experiment made,
//! as a tree of nodes (`experiment.search = "tree"`: `node_<id>` in `.aisci/tree/`) or a
//! line of runs (`run_<i>` with its `run_<i>.py`). Listed with their scores against the
//! baseline; any one can be restored as the folder's `experiment.py`, or be the point
//! the next experiment goes on from (a branch). Protocol-free: the CLI (`aisci runs`) and
//! the editor commands (`aisci.listNodes`, …) are both thin layers on this.

use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::config::{Direction, TreeSettings};
use crate::project::journal::{Journal, STAGE_NOTES, STAGE_PLOT, STAGE_RUNS};
use crate::project::{completed_runs, RunRecord, ATTEMPTS_DIR};
use crate::stages::search::score;
use crate::stages::search::tree::{
    self, node_code, node_dir, node_run_dir, MetricSource, NodeKind, NodeState, Tree, FULL_RUN, SMOKE_RUN,
};

/// A checkpoint's name: `node_<id>` in a tree, `run_<i>` in a line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CheckpointId {
    Node(u32),
    Run(u32),
}

impl CheckpointId {
    pub fn parse(s: &str) -> Result<CheckpointId, CheckpointError> {
        let s = s.trim();
        let num = |rest: &str| rest.parse::<u32>().ok();
        if let Some(n) = s.strip_prefix("node_").and_then(num) {
            return Ok(CheckpointId::Node(n));
        }
        if let Some(n) = s.strip_prefix("run_").and_then(num) {
            return Ok(CheckpointId::Run(n));
        }
        Err(CheckpointError::BadId(s.to_string()))
    }
}

impl std::fmt::Display for CheckpointId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            CheckpointId::Node(n) => write!(f, "node_{n}"),
            CheckpointId::Run(n) => write!(f, "run_{n}"),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum CheckpointError {
    #[error("{0:?} is not a checkpoint name: use node_<n> (a tree search) or run_<n> (a line of runs)")]
    BadId(String),
    #[error("{folder} has no {id}{hint}")]
    Unknown {
        folder: PathBuf,
        id: String,
        hint: String,
    },
    #[error("{id}'s code was not kept ({path} is missing)")]
    NoCode { id: String, path: PathBuf },
    #[error("cannot branch from {id}: {why}")]
    NotBranchable { id: String, why: String },
    #[error("{0}")]
    Journal(String),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> CheckpointError + '_ {
    move |source| CheckpointError::Io {
        path: path.to_path_buf(),
        source,
    }
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct MetricView {
    pub name: String,
    pub direction: &'static str,
    /// Where it came from: settings, template, model.
    pub source: &'static str,
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeedsView {
    pub node: String,
    pub scores: Vec<f64>,
    pub mean: Option<f64>,
    pub stderr: Option<f64>,
}

/// One checkpoint, as the editor and `aisci runs list` show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoint {
    pub id: String,
    pub parent: Option<String>,
    /// baseline, draft, debug, improve (a tree) or run (a line).
    pub kind: &'static str,
    /// proposed, smoke, running, done, failed, duplicate, not_promoted, cancelled.
    pub state: &'static str,
    pub score: Option<f64>,
    pub smoke_score: Option<f64>,
    /// Relative improvement on the baseline's score, positive = better.
    pub vs_baseline: Option<f64>,
    pub plan: String,
    pub cost_usd: f64,
    /// One line, ready to show.
    pub label: String,
    /// Its `experiment.py` (None: not kept, as for a line's `run_0`).
    pub code: Option<PathBuf>,
    pub parent_code: Option<PathBuf>,
    /// Its change against its parent, as a unified diff.
    pub diff: Option<PathBuf>,
    /// Its results folder (the full-size run, else the smoke run).
    pub run: Option<PathBuf>,
    pub error: Option<String>,
}

/// Every checkpoint of a folder, parents before their children.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Checkpoints {
    pub folder: PathBuf,
    /// "tree" or "line".
    pub mode: &'static str,
    pub metric: Option<MetricView>,
    pub baseline_score: Option<f64>,
    pub best: Option<String>,
    pub seeds: Option<SeedsView>,
    pub nodes: Vec<Checkpoint>,
}

impl Checkpoints {
    pub fn get(&self, id: &str) -> Option<&Checkpoint> {
        self.nodes.iter().find(|n| n.id == id)
    }
}

fn direction_str(d: Direction) -> &'static str {
    match d {
        Direction::Min => "min",
        Direction::Max => "max",
    }
}

fn source_str(s: MetricSource) -> &'static str {
    match s {
        MetricSource::Settings => "settings",
        MetricSource::Template => "template",
        MetricSource::Model => "model",
    }
}

fn finite(x: f64) -> Option<f64> {
    x.is_finite().then_some(x)
}

fn existing(p: PathBuf) -> Option<PathBuf> {
    p.exists().then_some(p)
}

/// The checkpoints of `folder`: its search tree when it has one, else its line of runs.
/// `settings` names the metric a line is scored by (else the template's prompt.json).
pub fn list(folder: &Path, settings: &TreeSettings) -> Result<Checkpoints, CheckpointError> {
    match Tree::load_checked(folder).map_err(CheckpointError::Journal)? {
        Some(tree) => Ok(list_tree(folder, &tree)),
        None => Ok(list_line(folder, settings)),
    }
}

fn label(
    id: &str,
    kind: &str,
    state: &str,
    metric: Option<&str>,
    score: Option<f64>,
    vs: Option<f64>,
) -> String {
    let mut s = format!("{id} {kind}");
    match score {
        Some(v) => {
            s.push_str(&format!(" · {} {v:.4}", metric.unwrap_or("score")));
            if let Some(r) = vs {
                s.push_str(&format!(" ({:+.1}% vs baseline)", r * 100.0));
            }
        }
        None => s.push_str(&format!(" · {}", state.replace('_', " "))),
    }
    s
}

fn list_tree(folder: &Path, t: &Tree) -> Checkpoints {
    let metric = t.metric.as_ref();
    let dir = metric.map(|m| m.direction);
    let base = t.node(0).and_then(|n| n.score);
    let best = t.best.or_else(|| crate::stages::search::select::best(t));
    let mut nodes: Vec<Checkpoint> = Vec::new();
    // Parents before children: the journal lists nodes as they were made, and a node's
    // parent is always older, but order by the path to be safe with edited journals.
    let mut order: Vec<&tree::Node> = t.nodes.iter().collect();
    order.sort_by_key(|n| t.path_to(n.id));
    for n in order {
        let id = format!("node_{}", n.id);
        let vs = match (dir, n.score, base) {
            (Some(d), Some(s), Some(b)) if n.id != 0 => score::vs_baseline(d, s, b),
            _ => None,
        };
        let mut label = label(
            &id,
            n.kind.as_str(),
            n.state.as_str(),
            metric.map(|m| m.name.as_str()),
            n.score,
            vs,
        );
        if best == Some(n.id) && n.id != 0 {
            label.push_str(" ★");
        }
        let run = existing(node_run_dir(folder, n.id, FULL_RUN))
            .or_else(|| existing(node_run_dir(folder, n.id, SMOKE_RUN)));
        let run = if n.id == 0 {
            existing(folder.join("run_0"))
        } else {
            run
        };
        nodes.push(Checkpoint {
            parent: n.parent.map(|p| format!("node_{p}")),
            kind: n.kind.as_str(),
            state: n.state.as_str(),
            score: n.score,
            smoke_score: n.smoke_score,
            vs_baseline: vs,
            plan: n.plan.clone(),
            cost_usd: n.cost_usd,
            label,
            code: existing(node_code(folder, n.id)),
            parent_code: n.parent.and_then(|p| existing(node_code(folder, p))),
            diff: existing(node_dir(folder, n.id).join("edit.diff")),
            run,
            error: n.error.clone(),
            id,
        });
    }
    Checkpoints {
        folder: folder.to_path_buf(),
        mode: "tree",
        metric: metric.map(|m| MetricView {
            name: m.name.clone(),
            direction: direction_str(m.direction),
            source: source_str(m.source),
        }),
        baseline_score: base,
        best: best.filter(|b| *b != 0).map(|b| format!("node_{b}")),
        seeds: t.seeds.as_ref().map(|s| SeedsView {
            node: format!("node_{}", s.node),
            scores: s.scores.clone(),
            mean: finite(s.mean),
            stderr: finite(s.stderr),
        }),
        nodes,
    }
}

/// The code snapshot a line's run ran (`run_<i>.py`).
pub fn run_code(folder: &Path, r: &RunRecord) -> PathBuf {
    folder.join(
        r.code
            .clone()
            .unwrap_or_else(|| format!("run_{}.py", r.run).into()),
    )
}

fn list_line(folder: &Path, settings: &TreeSettings) -> Checkpoints {
    let metric = crate::stages::search::stated_metric(settings, folder);
    let runs: Vec<RunRecord> = completed_runs(folder);
    let score_of = |r: &RunRecord| {
        let m = metric.as_ref()?;
        score::score(r.means.as_ref()?, &m.name)
    };
    let base = runs.iter().find(|r| r.run == 0).and_then(score_of);
    let mut best: Option<(u32, f64)> = None;
    let mut nodes = Vec::new();
    let mut parent: Option<&RunRecord> = None;
    for r in &runs {
        let id = format!("run_{}", r.run);
        let sc = score_of(r);
        let vs = match (&metric, sc, base) {
            (Some(m), Some(s), Some(b)) if r.run != 0 => score::vs_baseline(m.direction, s, b),
            _ => None,
        };
        if let (Some(m), Some(s)) = (&metric, sc) {
            if r.run != 0 && best.is_none_or(|(_, b)| score::better(m.direction, s, b)) {
                best = Some((r.run, s));
            }
        }
        let kind = if r.run == 0 { "baseline" } else { "run" };
        nodes.push(Checkpoint {
            parent: parent.map(|p| format!("run_{}", p.run)),
            kind,
            state: "done",
            score: sc,
            smoke_score: None,
            vs_baseline: vs,
            plan: String::new(),
            cost_usd: 0.0,
            label: label(
                &id,
                kind,
                "done",
                metric.as_ref().map(|m| m.name.as_str()),
                sc,
                vs,
            ),
            code: existing(run_code(folder, r)),
            parent_code: parent.and_then(|p| existing(run_code(folder, p))),
            diff: None,
            run: existing(folder.join(&r.dir)),
            error: None,
            id,
        });
        parent = Some(r);
    }
    if let Some((b, _)) = best {
        if let Some(n) = nodes.iter_mut().find(|n| n.id == format!("run_{b}")) {
            n.label.push_str(" ★");
        }
    }
    Checkpoints {
        folder: folder.to_path_buf(),
        mode: "line",
        metric: metric.map(|m| MetricView {
            name: m.name,
            direction: direction_str(m.direction),
            source: source_str(m.source),
        }),
        baseline_score: base,
        best: best.map(|(b, _)| format!("run_{b}")),
        seeds: None,
        nodes,
    }
}

/// The checkpoints as indented text, one per line, children under their parent, then
/// the metric and the seeds: what `aisci runs list` and a tree search's end print.
pub fn render_text(c: &Checkpoints) -> String {
    let mut out = String::new();
    let depth = |n: &Checkpoint| {
        let mut d = 0;
        let mut at = n.parent.clone();
        while let Some(p) = at {
            d += 1;
            at = c.get(&p).and_then(|x| x.parent.clone());
            if d > c.nodes.len() {
                break;
            }
        }
        d
    };
    for n in &c.nodes {
        out.push_str(&"  ".repeat(depth(n)));
        out.push_str(&n.label);
        if !n.plan.is_empty() && n.kind != "baseline" {
            let plan: String = n.plan.chars().take(80).collect();
            let more = if n.plan.chars().count() > 80 { "…" } else { "" };
            out.push_str(&format!(" — {plan}{more}"));
        }
        if let Some(e) = n.error.as_deref().and_then(|e| e.lines().next()) {
            if n.state != "done" {
                out.push_str(&format!(" [{e}]"));
            }
        }
        out.push('\n');
    }
    if let Some(m) = &c.metric {
        out.push_str(&format!(
            "metric: {} ({}, {}); ",
            m.name,
            if m.direction == "min" {
                "lower is better"
            } else {
                "higher is better"
            },
            m.source
        ));
    } else {
        out.push_str("metric: none (set experiment.tree.metric, or \"metric\" in prompt.json); ");
    }
    match &c.best {
        Some(b) => out.push_str(&format!("best: {b}")),
        None => out.push_str("best: none beats the baseline"),
    }
    if let Some(s) = &c.seeds {
        if let (Some(m), Some(e)) = (s.mean, s.stderr) {
            out.push_str(&format!(
                "; {} over {} seeds: {m:.4} ± {e:.4}",
                s.node,
                s.scores.len()
            ));
        }
    }
    out.push('\n');
    out
}

/// A checkpoint's code: the file that holds it and its text.
pub fn code(folder: &Path, id: CheckpointId) -> Result<(PathBuf, String), CheckpointError> {
    let path = match id {
        CheckpointId::Node(n) => {
            let t = Tree::load_checked(folder).map_err(CheckpointError::Journal)?;
            if t.as_ref().and_then(|t| t.node(n)).is_none() {
                return Err(unknown(folder, id, t.is_some()));
            }
            node_code(folder, n)
        }
        CheckpointId::Run(n) => {
            let r = completed_runs(folder)
                .into_iter()
                .find(|r| r.run == n)
                .ok_or_else(|| unknown(folder, id, tree::Tree::load(folder).is_some()))?;
            run_code(folder, &r)
        }
    };
    match std::fs::read_to_string(&path) {
        Ok(text) => Ok((path, text)),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Err(CheckpointError::NoCode {
            id: id.to_string(),
            path,
        }),
        Err(e) => Err(io(&path)(e)),
    }
}

fn unknown(folder: &Path, id: CheckpointId, has_tree: bool) -> CheckpointError {
    let hint = match (id, has_tree) {
        (CheckpointId::Run(_), true) => " (its experiment was a tree search: name a node_<n>)",
        (CheckpointId::Node(_), false) => " (it has no search tree: name a run_<n>)",
        _ => "",
    };
    CheckpointError::Unknown {
        folder: folder.to_path_buf(),
        id: id.to_string(),
        hint: hint.to_string(),
    }
}

fn stamp() -> String {
    chrono::Utc::now().format("%Y%m%d_%H%M%S").to_string()
}

/// Moves `path` into `aside` (made when needed), keeping its name.
fn set_aside(path: &Path, aside: &Path) -> Result<PathBuf, CheckpointError> {
    std::fs::create_dir_all(aside).map_err(io(aside))?;
    let dest = aside.join(path.file_name().unwrap_or_default());
    std::fs::rename(path, &dest).map_err(io(path))?;
    Ok(dest)
}

/// What a restore did.
#[derive(Debug, Clone, PartialEq)]
pub struct Restored {
    pub file: PathBuf,
    /// Where the replaced experiment.py went (None: it was the same, or absent).
    pub aside: Option<PathBuf>,
}

/// Writes `id`'s code over the folder's experiment.py (atomically); the file it replaces
/// is kept in `.aisci/attempts/restored_<stamp>/` unless it was the same.
pub fn restore(folder: &Path, id: CheckpointId) -> Result<Restored, CheckpointError> {
    let (_, text) = code(folder, id)?;
    let file = folder.join("experiment.py");
    let aside = replace_code(folder, &file, &text, &format!("restored_{}", stamp()))?;
    Ok(Restored { file, aside })
}

fn replace_code(
    folder: &Path,
    file: &Path,
    text: &str,
    aside_name: &str,
) -> Result<Option<PathBuf>, CheckpointError> {
    let aside = match std::fs::read_to_string(file) {
        Ok(old) if old != text => {
            let dir = folder.join(ATTEMPTS_DIR).join(aside_name);
            std::fs::create_dir_all(&dir).map_err(io(&dir))?;
            let dest = dir.join("experiment.py");
            crate::fsutil::write_atomic(&dest, old.as_bytes()).map_err(io(&dest))?;
            Some(dest)
        }
        _ => None,
    };
    crate::fsutil::write_atomic(file, text.as_bytes()).map_err(io(file))?;
    Ok(aside)
}

/// What a branch did, in one message for the user.
#[derive(Debug, Clone, PartialEq)]
pub struct Branched {
    pub message: String,
    /// The folder the later runs were moved to (a line), if any.
    pub aside: Option<PathBuf>,
}

/// Makes `id` the point the next experiment goes on from. A tree: the next search
/// first improves that node (or fixes it, when its run failed), one variant past
/// `max_nodes`, then reruns the seeds and installs the best line again. A line: the runs
/// after it (and their code) move to `.aisci/attempts/branched_<stamp>/`, experiment.py
/// becomes its code, and the next experiment goes on at the run after it. Either way the
/// journal forgets the runs, plot and notes stages, so they run again.
pub fn branch(folder: &Path, id: CheckpointId) -> Result<Branched, CheckpointError> {
    let not = |why: String| CheckpointError::NotBranchable {
        id: id.to_string(),
        why,
    };
    let out = match id {
        CheckpointId::Node(n) => {
            let mut t = Tree::load_checked(folder)
                .map_err(CheckpointError::Journal)?
                .ok_or_else(|| unknown(folder, id, false))?;
            let node = t.node(n).ok_or_else(|| unknown(folder, id, true))?;
            match node.state {
                NodeState::Done => {}
                NodeState::Failed if node.feedback.is_some() => {}
                NodeState::Failed => {
                    return Err(not(
                        "it failed before running (its edits did not apply): branch from its parent".into(),
                    ))
                }
                NodeState::Duplicate => {
                    return Err(not(format!(
                        "it is a duplicate of node_{}: branch from that node",
                        node.duplicate_of.unwrap_or(0)
                    )))
                }
                s => return Err(not(format!("it is {}, not done", s.as_str().replace('_', " ")))),
            }
            let what = if node.state == NodeState::Done {
                if node.kind == NodeKind::Baseline {
                    "a new variant of the baseline"
                } else {
                    "an improvement of it"
                }
            } else {
                "a fix of it"
            };
            tree::request_branch(folder, n).map_err(io(&folder.join(tree::BRANCH_FILE)))?;
            t.finished = false;
            t.save(folder).map_err(io(&folder.join(tree::TREE_FILE)))?;
            Branched {
                message: format!(
                    "branched from node_{n}: the next search of this folder starts with {what}, then reruns the seeds and installs the best line again"
                ),
                aside: None,
            }
        }
        CheckpointId::Run(k) => {
            if Tree::load(folder).is_some() {
                return Err(unknown(folder, id, true));
            }
            let (_, text) = code(folder, id)?;
            let later: Vec<RunRecord> = completed_runs(folder).into_iter().filter(|r| r.run > k).collect();
            let aside_name = format!("branched_{}", stamp());
            let dir = folder.join(ATTEMPTS_DIR).join(&aside_name);
            let mut moved = Vec::new();
            // Failed attempts of later runs too: their folders are run_<i> without a record.
            for entry in std::fs::read_dir(folder).map_err(io(folder))?.flatten() {
                let name = entry.file_name().to_string_lossy().into_owned();
                let num = name
                    .strip_prefix("run_")
                    .map(|r| r.strip_suffix(".py").unwrap_or(r))
                    .and_then(|r| r.parse::<u32>().ok());
                if num.is_some_and(|i| i > k) {
                    set_aside(&entry.path(), &dir)?;
                    moved.push(name);
                }
            }
            let file = folder.join("experiment.py");
            let aside_code = replace_code(folder, &file, &text, &aside_name)?;
            moved.sort();
            let mut message = format!("branched from run_{k}: experiment.py is run_{k}'s code");
            if !later.is_empty() || !moved.is_empty() {
                message.push_str(&format!(
                    "; {} set aside in {}",
                    moved.join(", "),
                    dir.strip_prefix(folder).unwrap_or(&dir).display()
                ));
            }
            if aside_code.is_some() {
                message.push_str("; the experiment.py it replaced is kept there too");
            }
            message.push_str(&format!("; the next experiment goes on at run_{}", k + 1));
            Branched {
                message,
                aside: (!moved.is_empty() || aside_code.is_some()).then_some(dir),
            }
        }
    };
    Journal::clear(folder, &[STAGE_RUNS, STAGE_PLOT, STAGE_NOTES])
        .map_err(io(&folder.join(crate::project::journal::JOURNAL_FILE)))?;
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(folder: &Path, i: u32, loss: f64) {
        let dir = folder.join(format!("run_{i}"));
        std::fs::create_dir_all(&dir).unwrap();
        std::fs::write(
            dir.join("final_info.json"),
            format!(r#"{{"toy": {{"means": {{"loss": {loss}}}}}}}"#),
        )
        .unwrap();
        if i > 0 {
            std::fs::write(folder.join(format!("run_{i}.py")), format!("LR = {i}\n")).unwrap();
        }
    }

    fn line_folder() -> tempfile::TempDir {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path();
        std::fs::write(f.join("prompt.json"), r#"{"metric": "loss", "direction": "min"}"#).unwrap();
        std::fs::write(f.join("experiment.py"), "LR = 3\n").unwrap();
        run(f, 0, 1.0);
        run(f, 1, 0.5);
        run(f, 2, 0.8);
        run(f, 3, 0.9);
        tmp
    }

    #[test]
    fn names_parse_and_print() {
        assert_eq!(CheckpointId::parse("node_3").unwrap(), CheckpointId::Node(3));
        assert_eq!(CheckpointId::parse(" run_0 ").unwrap().to_string(), "run_0");
        assert!(CheckpointId::parse("run_x").is_err());
        assert!(CheckpointId::parse("3").is_err());
    }

    #[test]
    fn a_line_lists_its_runs_with_the_best_marked() {
        let tmp = line_folder();
        let c = list(tmp.path(), &TreeSettings::default()).unwrap();
        assert_eq!(c.mode, "line");
        let ids: Vec<_> = c.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(ids, ["run_0", "run_1", "run_2", "run_3"]);
        assert_eq!(c.best.as_deref(), Some("run_1"));
        let r1 = c.get("run_1").unwrap();
        assert_eq!(r1.parent.as_deref(), Some("run_0"));
        assert!((r1.vs_baseline.unwrap() - 0.5).abs() < 1e-9);
        assert_eq!(r1.label, "run_1 run · loss 0.5000 (+50.0% vs baseline) ★");
        assert!(c.get("run_0").unwrap().code.is_none(), "v1 keeps no run_0.py");
        assert_eq!(
            c.get("run_2").unwrap().parent_code,
            Some(tmp.path().join("run_1.py"))
        );
    }

    #[test]
    fn restoring_a_run_keeps_the_replaced_code() {
        let tmp = line_folder();
        let r = restore(tmp.path(), CheckpointId::Run(1)).unwrap();
        assert_eq!(std::fs::read_to_string(&r.file).unwrap(), "LR = 1\n");
        assert_eq!(std::fs::read_to_string(r.aside.unwrap()).unwrap(), "LR = 3\n");
        // The same code again: nothing to keep.
        assert!(restore(tmp.path(), CheckpointId::Run(1)).unwrap().aside.is_none());
        assert!(matches!(
            restore(tmp.path(), CheckpointId::Run(0)),
            Err(CheckpointError::NoCode { .. })
        ));
        assert!(matches!(
            restore(tmp.path(), CheckpointId::Node(1)),
            Err(CheckpointError::Unknown { .. })
        ));
    }

    #[test]
    fn branching_a_line_sets_the_later_runs_aside() {
        let tmp = line_folder();
        let f = tmp.path();
        Journal::set(
            f,
            STAGE_RUNS,
            crate::project::journal::StageState::Done,
            3,
            Some("all_completed".into()),
        )
        .unwrap();
        let b = branch(f, CheckpointId::Run(1)).unwrap();
        assert!(
            b.message.contains("run_2, run_2.py, run_3, run_3.py set aside"),
            "{}",
            b.message
        );
        assert!(
            b.message.ends_with("the next experiment goes on at run_2"),
            "{}",
            b.message
        );
        let aside = b.aside.unwrap();
        assert!(aside.join("run_3/final_info.json").is_file());
        assert_eq!(
            std::fs::read_to_string(aside.join("experiment.py")).unwrap(),
            "LR = 3\n"
        );
        assert!(!f.join("run_2").exists() && f.join("run_1").exists());
        assert_eq!(
            std::fs::read_to_string(f.join("experiment.py")).unwrap(),
            "LR = 1\n"
        );
        assert!(Journal::load(f).stage(STAGE_RUNS).is_none());
        let ids: Vec<_> = list(f, &TreeSettings::default())
            .unwrap()
            .nodes
            .into_iter()
            .map(|n| n.id)
            .collect();
        assert_eq!(ids, ["run_0", "run_1"]);
    }

    #[test]
    fn a_tree_lists_nodes_and_branches_by_request() {
        let tmp = tempfile::tempdir().unwrap();
        let f = tmp.path();
        let node =
            |id: u32, parent: Option<u32>, kind: NodeKind, state: NodeState, score: Option<f64>| tree::Node {
                id,
                parent,
                kind,
                state,
                plan: format!("plan {id}"),
                smoke_score: None,
                score,
                error: None,
                feedback: None,
                duplicate_of: (state == NodeState::Duplicate).then_some(1),
                similarity: None,
                cost_usd: 0.01,
                debug_depth: 0,
                means: None,
                created: String::new(),
                ended: None,
            };
        let mut t = Tree::new();
        t.metric = Some(tree::Metric {
            name: "loss".into(),
            direction: Direction::Min,
            source: MetricSource::Template,
            reason: None,
        });
        t.nodes = vec![
            node(0, None, NodeKind::Baseline, NodeState::Done, Some(1.0)),
            node(1, Some(0), NodeKind::Draft, NodeState::Done, Some(0.8)),
            node(2, Some(0), NodeKind::Draft, NodeState::Duplicate, None),
            node(3, Some(1), NodeKind::Improve, NodeState::Done, Some(0.25)),
        ];
        t.finished = true;
        t.save(f).unwrap();
        for id in 0..4 {
            std::fs::create_dir_all(node_dir(f, id)).unwrap();
            std::fs::write(node_code(f, id), format!("V = {id}\n")).unwrap();
        }
        let c = list(f, &TreeSettings::default()).unwrap();
        assert_eq!(c.mode, "tree");
        assert_eq!(c.best.as_deref(), Some("node_3"));
        let ids: Vec<_> = c.nodes.iter().map(|n| n.id.as_str()).collect();
        assert_eq!(
            ids,
            ["node_0", "node_1", "node_3", "node_2"],
            "parents before children"
        );
        let n3 = c.get("node_3").unwrap();
        assert_eq!(n3.label, "node_3 improve · loss 0.2500 (+75.0% vs baseline) ★");
        assert_eq!(n3.parent_code, Some(node_code(f, 1)));
        assert_eq!(c.get("node_2").unwrap().label, "node_2 draft · duplicate");
        let text = render_text(&c);
        assert!(
            text.starts_with("node_0 baseline · loss 1.0000\n  node_1 draft"),
            "{text}"
        );
        assert!(
            text.contains("\n    node_3 improve · loss 0.2500 (+75.0% vs baseline) ★ — plan 3\n"),
            "{text}"
        );
        assert!(
            text.ends_with("metric: loss (lower is better, template); best: node_3\n"),
            "{text}"
        );

        std::fs::write(f.join("experiment.py"), "V = 9\n").unwrap();
        restore(f, CheckpointId::Node(1)).unwrap();
        assert_eq!(
            std::fs::read_to_string(f.join("experiment.py")).unwrap(),
            "V = 1\n"
        );
        let e = branch(f, CheckpointId::Node(2)).unwrap_err().to_string();
        assert!(e.contains("duplicate of node_1"), "{e}");
        assert!(branch(f, CheckpointId::Run(1)).is_err());
        let b = branch(f, CheckpointId::Node(1)).unwrap();
        assert!(b.message.contains("an improvement of it"), "{}", b.message);
        assert_eq!(tree::pending_branch(f), Some(1));
        assert!(!Tree::load(f).unwrap().finished);
    }
}
