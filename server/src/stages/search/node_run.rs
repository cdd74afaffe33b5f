//! Running one node: its folder is a working copy of the idea folder (the node's own
//! `experiment.py`, links to everything else), so that variants run side by side
//! without touching each other or the folder. Smoke first when the template has the
//! switch, then full size only when the smoke run looks promising.

use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::config::Direction;
use crate::project::{FinalInfo, RunExit, RunOrigin};
use crate::runner::Runner;
use crate::runs::attempt::{run_attempt, AttemptError, AttemptSpec};

use super::score::{promising, score};
use super::tree::{node_dir, FULL_RUN, SMOKE_RUN, TREE_DIR};

/// What running a node came to.
#[derive(Debug, Clone, PartialEq)]
pub enum NodeEnd {
    Done {
        smoke_score: Option<f64>,
        score: f64,
        means: Value,
    },
    Failed {
        smoke_score: Option<f64>,
        error: String,
        /// The message for a fix (the end of stderr), when a run failed.
        feedback: Option<String>,
    },
    NotPromoted {
        smoke_score: f64,
    },
    Cancelled,
}

/// The fixed things every node run needs.
pub struct RunEnv<'a> {
    pub folder: &'a Path,
    pub runner: &'a dyn Runner,
    pub python: &'a str,
    pub timeout_secs: u64,
    pub tail_chars: usize,
    pub baseline: &'a FinalInfo,
    pub metric: &'a str,
    pub direction: Direction,
    pub smoke: bool,
    pub baseline_smoke: Option<f64>,
    pub smoke_slack: f64,
    pub cancel: &'a CancellationToken,
}

/// One run of a node: `run_<run>` in its folder, with `env` on top of aisci's.
pub struct RunResult {
    pub score: Option<f64>,
    pub means: Option<Value>,
    /// None: completed. Some(message for the model).
    pub failure: Option<String>,
    pub cancelled: bool,
}

impl RunEnv<'_> {
    pub async fn run(
        &self,
        id: u32,
        run: u32,
        env: Vec<(String, String)>,
    ) -> Result<RunResult, AttemptError> {
        let dir = node_dir(self.folder, id);
        link_folder(self.folder, &dir).map_err(|source| AttemptError::Io {
            path: dir.clone(),
            source,
        })?;
        let spec = AttemptSpec {
            root: &dir,
            run,
            attempt: 1,
            python: self.python,
            timeout_secs: self.timeout_secs,
            tail_chars: self.tail_chars,
            expected: Some(self.baseline),
            origin: RunOrigin::Experiment,
            env,
        };
        let done = run_attempt(&spec, self.runner, &crate::runner::NoEvents, self.cancel).await?;
        let cancelled = done.record.exit == Some(RunExit::Cancelled);
        if !done.record.completed {
            return Ok(RunResult {
                score: None,
                means: None,
                failure: Some(done.feedback.unwrap_or_else(|| "the run did not complete".into())),
                cancelled,
            });
        }
        let means = done.record.means.clone().unwrap_or(Value::Null);
        let score = score(&means, self.metric);
        Ok(RunResult {
            failure: score.is_none().then(|| {
                format!(
                    "The run completed, but no dataset in final_info.json reports {}.",
                    self.metric
                )
            }),
            score,
            means: Some(means),
            cancelled,
        })
    }

    /// Smoke (unless `full_only`), then full size. `on_full` hears the smoke score when
    /// the node goes on to its full-size run.
    pub async fn run_node(
        &self,
        id: u32,
        full_only: bool,
        on_full: &(dyn Fn(u32, Option<f64>) + Send + Sync),
    ) -> Result<NodeEnd, AttemptError> {
        let mut smoke_score = None;
        if self.smoke && !full_only {
            let r = self
                .run(id, SMOKE_RUN, vec![("EXPERIMENT_SMOKE".into(), "1".into())])
                .await?;
            if r.cancelled {
                return Ok(NodeEnd::Cancelled);
            }
            let Some(s) = r.score else {
                let feedback = r.failure.unwrap_or_default();
                return Ok(NodeEnd::Failed {
                    smoke_score: None,
                    error: format!("smoke run: {}", first_line(&feedback)),
                    feedback: Some(feedback),
                });
            };
            if !promising(self.direction, s, self.baseline_smoke, self.smoke_slack) {
                return Ok(NodeEnd::NotPromoted { smoke_score: s });
            }
            smoke_score = Some(s);
        }
        on_full(id, smoke_score);
        let r = self.run(id, FULL_RUN, Vec::new()).await?;
        if r.cancelled {
            return Ok(NodeEnd::Cancelled);
        }
        match (r.score, r.means) {
            (Some(score), Some(means)) => Ok(NodeEnd::Done {
                smoke_score,
                score,
                means,
            }),
            _ => {
                let feedback = r.failure.unwrap_or_default();
                Ok(NodeEnd::Failed {
                    smoke_score,
                    error: first_line(&feedback),
                    feedback: Some(feedback),
                })
            }
        }
    }
}

/// The most telling line of a failure message: the last non-empty one (a traceback's
/// exception), at most 200 characters.
pub fn first_line(message: &str) -> String {
    let line = message
        .lines()
        .rev()
        .map(str::trim)
        .find(|l| !l.is_empty())
        .unwrap_or("failed");
    match line.char_indices().nth(200) {
        Some((i, _)) => format!("{}…", &line[..i]),
        None => line.to_string(),
    }
}

/// Links every entry of the idea folder into the node's folder, except what the node has
/// of its own (its code, its runs, aisci's records).
fn link_folder(folder: &Path, dir: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(dir)?;
    let tree_root = folder.join(TREE_DIR);
    for entry in std::fs::read_dir(folder)? {
        let entry = entry?;
        let name = entry.file_name();
        let n = name.to_string_lossy();
        if n == "experiment.py" || n == ".aisci" || n.starts_with("run_") || n == "__pycache__" || n == ".git"
        {
            continue;
        }
        let target = entry.path();
        if target.starts_with(&tree_root) {
            continue;
        }
        let link = dir.join(&name);
        if link.symlink_metadata().is_ok() {
            continue;
        }
        std::os::unix::fs::symlink(&target, &link)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_telling_line_is_the_last() {
        assert_eq!(
            first_line("Traceback (most recent call last):\n  File x\nValueError: bad\n\n"),
            "ValueError: bad"
        );
        assert_eq!(first_line(""), "failed");
    }

    #[test]
    fn a_node_folder_links_the_rest_of_the_idea_folder() {
        let d = tempfile::tempdir().unwrap();
        let f = d.path();
        std::fs::write(f.join("experiment.py"), "x").unwrap();
        std::fs::write(f.join("plot.py"), "p").unwrap();
        std::fs::create_dir_all(f.join("data")).unwrap();
        std::fs::create_dir_all(f.join("run_0")).unwrap();
        let node = f.join(TREE_DIR).join("node_1");
        std::fs::create_dir_all(&node).unwrap();
        std::fs::write(node.join("experiment.py"), "mine").unwrap();
        link_folder(f, &node).unwrap();
        link_folder(f, &node).unwrap();
        assert_eq!(
            std::fs::read_to_string(node.join("experiment.py")).unwrap(),
            "mine"
        );
        assert_eq!(std::fs::read_to_string(node.join("plot.py")).unwrap(), "p");
        assert!(node.join("data").is_dir());
        assert!(!node.join("run_0").exists());
        assert!(!node.join(".aisci").exists());
    }
}
