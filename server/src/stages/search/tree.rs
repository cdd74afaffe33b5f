//! The search's journal, `.aisci/tree/tree.json`: every node with its parent, plan,
//! state and scores, rewritten atomically at each change so that a killed search goes
//! on where it was. Each node keeps its code and its runs in `.aisci/tree/node_<id>/`:
//! `experiment.py` (the code it ran), `edit.diff` (against its parent), and the run
//! folders (`run_1` smoke, `run_2` full size, `run_<10+k>` seed k of the best).

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::config::Direction;

pub const TREE_DIR: &str = ".aisci/tree";
pub const TREE_FILE: &str = ".aisci/tree/tree.json";
/// A branch request (`aisci runs branch`), taken by the next search.
pub const BRANCH_FILE: &str = ".aisci/tree/branch.json";

/// The run numbers inside a node's folder.
pub const SMOKE_RUN: u32 = 1;
pub const FULL_RUN: u32 = 2;
pub const SEED_RUN_BASE: u32 = 10;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeKind {
    /// The template's code and its `run_0`.
    Baseline,
    /// A new implementation of the idea from the baseline.
    Draft,
    /// A fix of a node that failed.
    Debug,
    /// A change to a node that works.
    Improve,
}

impl NodeKind {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeKind::Baseline => "baseline",
            NodeKind::Draft => "draft",
            NodeKind::Debug => "debug",
            NodeKind::Improve => "improve",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum NodeState {
    /// Its code is written; nothing ran yet.
    Proposed,
    /// In its smoke run.
    Smoke,
    /// In its full-size run.
    Running,
    /// Ran at full size and has a score.
    Done,
    /// Its edits did not apply, or a run failed, or gave no score.
    Failed,
    /// Its change was near-identical to an earlier node's: not run.
    Duplicate,
    /// Its smoke run worked but did not look promising: not run at full size.
    NotPromoted,
    Cancelled,
}

impl NodeState {
    pub fn as_str(self) -> &'static str {
        match self {
            NodeState::Proposed => "proposed",
            NodeState::Smoke => "smoke",
            NodeState::Running => "running",
            NodeState::Done => "done",
            NodeState::Failed => "failed",
            NodeState::Duplicate => "duplicate",
            NodeState::NotPromoted => "not_promoted",
            NodeState::Cancelled => "cancelled",
        }
    }

    /// Still to be run (by this search or, after a kill, the next one).
    pub fn unfinished(self) -> bool {
        matches!(
            self,
            NodeState::Proposed | NodeState::Smoke | NodeState::Running | NodeState::Cancelled
        )
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MetricSource {
    /// `experiment.tree.metric` in the settings.
    Settings,
    /// The template's `prompt.json`.
    Template,
    /// Proposed by the model from the baseline's results (recorded; edit it here).
    Model,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    /// A key of the means in `final_info.json`.
    pub name: String,
    pub direction: Direction,
    pub source: MetricSource,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Node {
    pub id: u32,
    pub parent: Option<u32>,
    pub kind: NodeKind,
    pub state: NodeState,
    /// The model's plan for this variant, as it wrote it.
    #[serde(default)]
    pub plan: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub smoke_score: Option<f64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub score: Option<f64>,
    /// One line: why it failed or was not run.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What the model is told about its failure (the end of stderr), for a debug child.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub feedback: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub duplicate_of: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub similarity: Option<f64>,
    /// What proposing it cost (model calls).
    #[serde(default)]
    pub cost_usd: f64,
    /// Debug nodes in a row up to and including this one.
    #[serde(default)]
    pub debug_depth: u32,
    /// Its `{dataset: means}` at full size.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub means: Option<serde_json::Value>,
    pub created: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ended: Option<String>,
}

/// The best node rerun over seeds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Seeds {
    pub node: u32,
    /// The score of each rerun that completed, in seed order.
    pub scores: Vec<f64>,
    pub mean: f64,
    /// Standard error of the mean (0 with one score).
    pub stderr: f64,
    /// Reruns that failed.
    #[serde(default)]
    pub failed: u32,
    /// Why the spread may mean little (the code ignores `EXPERIMENT_SEED`, ...).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Tree {
    pub version: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub metric: Option<Metric>,
    /// The baseline's score at smoke size (None: no smoke runs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub baseline_smoke: Option<f64>,
    pub nodes: Vec<Node>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best: Option<u32>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub seeds: Option<Seeds>,
    /// Improvements chosen so far (the exploration rule counts them).
    #[serde(default)]
    pub improvements: u32,
    /// Whether smoke runs are used (the template has the switch and it is on).
    #[serde(default)]
    pub smoke: bool,
    /// The search ran to its end (its best node is installed as the folder's runs).
    #[serde(default)]
    pub finished: bool,
}

pub fn node_dir(folder: &Path, id: u32) -> PathBuf {
    folder.join(TREE_DIR).join(format!("node_{id}"))
}

pub fn node_code(folder: &Path, id: u32) -> PathBuf {
    node_dir(folder, id).join("experiment.py")
}

pub fn node_run_dir(folder: &Path, id: u32, run: u32) -> PathBuf {
    node_dir(folder, id).join(format!("run_{run}"))
}

impl Tree {
    pub fn new() -> Tree {
        Tree {
            version: 1,
            metric: None,
            baseline_smoke: None,
            nodes: Vec::new(),
            best: None,
            seeds: None,
            improvements: 0,
            smoke: false,
            finished: false,
        }
    }

    /// The folder's tree; None when there is none or it cannot be read.
    pub fn load(folder: &Path) -> Option<Tree> {
        let text = std::fs::read_to_string(folder.join(TREE_FILE)).ok()?;
        serde_json::from_str(&text).ok()
    }

    /// Like [`Tree::load`], telling an unreadable journal from a missing one.
    pub fn load_checked(folder: &Path) -> Result<Option<Tree>, String> {
        let path = folder.join(TREE_FILE);
        match std::fs::read_to_string(&path) {
            Ok(text) => serde_json::from_str(&text)
                .map(Some)
                .map_err(|e| format!("{}: not a search journal ({e})", path.display())),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("{}: {e}", path.display())),
        }
    }

    pub fn save(&self, folder: &Path) -> std::io::Result<()> {
        let path = folder.join(TREE_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(&path, text.as_bytes())
    }

    pub fn node(&self, id: u32) -> Option<&Node> {
        self.nodes.iter().find(|n| n.id == id)
    }

    pub fn node_mut(&mut self, id: u32) -> Option<&mut Node> {
        self.nodes.iter_mut().find(|n| n.id == id)
    }

    pub fn next_id(&self) -> u32 {
        self.nodes.iter().map(|n| n.id + 1).max().unwrap_or(0)
    }

    /// Nodes beyond the baseline.
    pub fn variants(&self) -> usize {
        self.nodes.iter().filter(|n| n.kind != NodeKind::Baseline).count()
    }

    pub fn children(&self, id: u32) -> impl Iterator<Item = &Node> {
        self.nodes.iter().filter(move |n| n.parent == Some(id))
    }

    /// The ids from the baseline down to `id`.
    pub fn path_to(&self, id: u32) -> Vec<u32> {
        let mut path = vec![id];
        let mut at = id;
        while let Some(p) = self.node(at).and_then(|n| n.parent) {
            if path.contains(&p) {
                break;
            }
            path.push(p);
            at = p;
        }
        path.reverse();
        path
    }

    pub fn spent_usd(&self) -> f64 {
        self.nodes.iter().map(|n| n.cost_usd).sum()
    }
}

impl Default for Tree {
    fn default() -> Self {
        Tree::new()
    }
}

/// A request that the next search improve `node` first.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct BranchRequest {
    pub node: u32,
    pub at: String,
}

pub fn request_branch(folder: &Path, node: u32) -> std::io::Result<()> {
    let path = folder.join(BRANCH_FILE);
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let req = BranchRequest {
        node,
        at: crate::project::now_rfc3339(),
    };
    let text = serde_json::to_string(&req).map_err(std::io::Error::other)?;
    crate::fsutil::write_atomic(&path, text.as_bytes())
}

/// The waiting branch request, removed as it is taken.
pub fn take_branch(folder: &Path) -> Option<u32> {
    let path = folder.join(BRANCH_FILE);
    let req: BranchRequest = serde_json::from_str(&std::fs::read_to_string(&path).ok()?).ok()?;
    let _ = std::fs::remove_file(&path);
    Some(req.node)
}

pub fn pending_branch(folder: &Path) -> Option<u32> {
    let text = std::fs::read_to_string(folder.join(BRANCH_FILE)).ok()?;
    serde_json::from_str::<BranchRequest>(&text).ok().map(|r| r.node)
}
