//! The end of a search: the best node rerun over seeds, its line of nodes installed as
//! the folder's `run_1..run_k` (code snapshots included) and its code as the folder's
//! `experiment.py`, and a summary of what was tried for the notes and the paper.

use std::path::Path;

use futures::stream::{self, StreamExt};

use crate::agent::edit_sink::EditSink;
use crate::project::{completed_runs, RunRecord, ATTEMPTS_DIR};
use crate::runs::attempt::AttemptError;

use super::node_run::RunEnv;
use super::tree::{node_code, node_run_dir, NodeKind, NodeState, Seeds, Tree, FULL_RUN, SEED_RUN_BASE};
use super::{fmt_score, score, SearchError};

/// The heading of the search's section in notes.txt (replaced, not repeated, by a
/// later search).
pub const NOTES_HEADING: &str = "## Search over implementations";

/// One seed rerun's end: its seed, its score (None: it failed), whether it was cancelled.
type SeedEnd = (u32, Option<f64>, bool);

/// `best` rerun with `EXPERIMENT_SEED` = 1..=seeds, `workers` at a time; seed runs a
/// killed search completed are not run again. None: cancelled.
pub async fn rerun_seeds(
    env: &RunEnv<'_>,
    best: u32,
    seeds: u32,
    workers: u32,
) -> Result<Option<Seeds>, AttemptError> {
    let results: Vec<Result<SeedEnd, AttemptError>> = stream::iter(1..=seeds)
        .map(|k| async move {
            let run = SEED_RUN_BASE + k;
            if let Some(rec) = RunRecord::load(&node_run_dir(env.folder, best, run)) {
                if rec.completed {
                    let s = rec.means.as_ref().and_then(|m| score::score(m, env.metric));
                    return Ok((k, s, false));
                }
            }
            let r = env
                .run(best, run, vec![("EXPERIMENT_SEED".into(), k.to_string())])
                .await?;
            Ok((k, r.score, r.cancelled))
        })
        .buffer_unordered(workers.max(1) as usize)
        .collect()
        .await;
    let mut done = Vec::new();
    for r in results {
        let (k, s, cancelled) = r?;
        if cancelled {
            return Ok(None);
        }
        done.push((k, s));
    }
    done.sort_by_key(|(k, _)| *k);
    let scores: Vec<f64> = done.iter().filter_map(|(_, s)| *s).collect();
    let failed = done.iter().filter(|(_, s)| s.is_none()).count() as u32;
    let Some((mean, stderr)) = score::mean_stderr(&scores) else {
        return Ok(Some(Seeds {
            node: best,
            scores,
            mean: f64::NAN,
            stderr: f64::NAN,
            failed,
            note: Some(format!("every rerun of node_{best} over seeds failed")),
        }));
    };
    let code = std::fs::read_to_string(node_code(env.folder, best)).unwrap_or_default();
    let note = if !code.contains("EXPERIMENT_SEED") {
        Some(format!(
            "node_{best}'s code does not read EXPERIMENT_SEED: its reruns differ only by chance, not by seed"
        ))
    } else if scores.len() > 1 && scores.iter().all(|s| *s == scores[0]) {
        Some(format!("node_{best}'s reruns over seeds gave identical scores"))
    } else {
        None
    };
    Ok(Some(Seeds {
        node: best,
        scores,
        mean,
        stderr,
        failed,
        note,
    }))
}

/// Installs the line from the baseline to `best` (its nodes that ran at full size) as
/// `run_1..run_k`, and `best`'s code as `experiment.py` (through the sink: an editor
/// edit when the file is open). A `run_<i>` already there is set aside, not deleted.
pub async fn install(
    sink: &dyn EditSink,
    folder: &Path,
    tree: &Tree,
    best: u32,
) -> Result<Vec<RunRecord>, SearchError> {
    let line: Vec<u32> = tree
        .path_to(best)
        .into_iter()
        .filter(|id| *id != 0 && tree.node(*id).is_some_and(|n| n.state == NodeState::Done))
        .collect();
    let io = |p: &Path, e: std::io::Error| SearchError::Io(p.to_path_buf(), e);
    let mut records = Vec::new();
    for (i, id) in line.iter().enumerate() {
        let n = i as u32 + 1;
        let name = format!("run_{n}");
        let dest = folder.join(&name);
        if dest.exists() {
            let stamp = chrono::Utc::now().format("%Y%m%d_%H%M%S");
            let aside = folder
                .join(ATTEMPTS_DIR)
                .join(&name)
                .join(format!("replaced_{stamp}"));
            std::fs::create_dir_all(aside.parent().expect("has a parent")).map_err(|e| io(&aside, e))?;
            std::fs::rename(&dest, &aside).map_err(|e| io(&dest, e))?;
        }
        let src = node_run_dir(folder, *id, FULL_RUN);
        copy_dir(&src, &dest).map_err(|e| io(&src, e))?;
        let code = format!("{name}.py");
        std::fs::copy(node_code(folder, *id), folder.join(&code)).map_err(|e| io(&folder.join(&code), e))?;
        let mut rec = RunRecord::load(&dest)
            .ok_or_else(|| SearchError::Input(format!("{}: the run's record is missing", src.display())))?;
        rec.run = n;
        rec.dir = name.clone().into();
        rec.stdout = dest.strip_prefix(folder).unwrap_or(&dest).join("stdout.txt");
        rec.stderr = dest.strip_prefix(folder).unwrap_or(&dest).join("stderr.txt");
        rec.code = Some(code.into());
        rec.command = vec![
            rec.command.first().cloned().unwrap_or_else(|| "python".into()),
            "experiment.py".into(),
            format!("--out_dir={name}"),
        ];
        rec.save(folder).map_err(|e| io(&dest, e))?;
        if *id == best {
            if let Some(seeds) = tree.seeds.as_ref().filter(|s| s.node == best) {
                let text = serde_json::to_string_pretty(seeds).unwrap_or_default();
                crate::fsutil::write_atomic(&dest.join("seeds.json"), text.as_bytes())
                    .map_err(|e| io(&dest, e))?;
            }
        }
        records.push(rec);
    }
    let code =
        std::fs::read_to_string(node_code(folder, best)).map_err(|e| io(&node_code(folder, best), e))?;
    let path = folder.join("experiment.py");
    let snap = sink.read(&path).await.map_err(SearchError::Sink)?;
    if snap.text != code {
        sink.write(&path, &snap, &code).await.map_err(SearchError::Sink)?;
    }
    Ok(records)
}

/// The runs an earlier, finished search installed.
pub fn promoted_runs(folder: &Path) -> Vec<RunRecord> {
    let mut out = Vec::new();
    for r in completed_runs(folder).into_iter().filter(|r| r.run >= 1) {
        if r.run as usize != out.len() + 1 {
            break;
        }
        out.push(r);
    }
    out
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let ty = entry.file_type()?;
        let dest = to.join(entry.file_name());
        if ty.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if ty.is_file() {
            std::fs::copy(entry.path(), &dest)?;
        }
    }
    Ok(())
}

/// What the search tried, in words for the notes and the paper: the metric, the best
/// variant against the baseline (over seeds when rerun), and every variant that failed,
/// was a duplicate or was not promoted.
pub fn summary(tree: &Tree) -> String {
    let Some(m) = &tree.metric else {
        return String::new();
    };
    let dir = match m.direction {
        crate::config::Direction::Min => "lower is better",
        crate::config::Direction::Max => "higher is better",
    };
    let base = tree.node(0).and_then(|n| n.score);
    let count = |s: NodeState| {
        tree.nodes
            .iter()
            .filter(|n| n.kind != NodeKind::Baseline && n.state == s)
            .count()
    };
    let mut out = format!(
        "{NOTES_HEADING}\n\nA tree search tried {} variants of the code (scored by {}, {dir}; baseline {}): {} ran at full size, {} failed, {} were not promoted after their smoke run, {} were near-duplicates and were not run.\n",
        tree.variants(),
        m.name,
        fmt_score(base),
        count(NodeState::Done),
        count(NodeState::Failed),
        count(NodeState::NotPromoted),
        count(NodeState::Duplicate),
    );
    match tree.best.filter(|b| *b != 0).and_then(|b| tree.node(b)) {
        Some(b) => {
            out.push_str(&format!(
                "Best: node_{} ({}): {} = {}",
                b.id,
                b.kind.as_str(),
                m.name,
                fmt_score(b.score)
            ));
            if let Some(s) = tree
                .seeds
                .as_ref()
                .filter(|s| s.node == b.id && s.mean.is_finite())
            {
                out.push_str(&format!(
                    "; over {} seeds {:.4} ± {:.4} (standard error)",
                    s.scores.len(),
                    s.mean,
                    s.stderr
                ));
                if let Some(note) = &s.note {
                    out.push_str(&format!(" ({note})"));
                }
            }
            out.push_str(&format!(". Plan: {}\n", b.plan));
            let line: Vec<String> = tree.path_to(b.id).iter().map(|id| format!("node_{id}")).collect();
            out.push_str(&format!("Its line: {}.\n", line.join(" -> ")));
        }
        None => out.push_str("No variant beat the baseline.\n"),
    }
    let misses: Vec<String> = tree
        .nodes
        .iter()
        .filter(|n| {
            matches!(
                n.state,
                NodeState::Failed | NodeState::NotPromoted | NodeState::Duplicate
            )
        })
        .map(|n| {
            format!(
                "- node_{} ({}, {}): {} — {}",
                n.id,
                n.kind.as_str(),
                n.state.as_str(),
                if n.plan.is_empty() {
                    "(no plan)"
                } else {
                    n.plan.as_str()
                },
                n.error.as_deref().unwrap_or("")
            )
        })
        .collect();
    let others: Vec<String> = tree
        .nodes
        .iter()
        .filter(|n| n.kind != NodeKind::Baseline && n.state == NodeState::Done && Some(n.id) != tree.best)
        .map(|n| {
            format!(
                "- node_{} ({}): {} = {} — {}",
                n.id,
                n.kind.as_str(),
                m.name,
                fmt_score(n.score),
                n.plan
            )
        })
        .collect();
    if !others.is_empty() {
        out.push_str(&format!("\nOther working variants:\n{}\n", others.join("\n")));
    }
    if !misses.is_empty() {
        out.push_str(&format!("\nWhat did not work:\n{}\n", misses.join("\n")));
    }
    out
}

/// `notes` with its search section (from [`NOTES_HEADING`] to the next heading of the
/// same or a higher level) replaced by `section`, or `section` appended; what the user
/// wrote before and after it stays.
fn replace_section(notes: &str, section: &str) -> String {
    let section = section.trim_end();
    let at = notes
        .match_indices(NOTES_HEADING)
        .map(|(i, _)| i)
        .find(|i| *i == 0 || notes[..*i].ends_with('\n'));
    let Some(at) = at else {
        let kept = notes.trim_end();
        return if kept.is_empty() {
            format!("{section}\n")
        } else {
            format!("{kept}\n\n{section}\n")
        };
    };
    let body = at + NOTES_HEADING.len();
    let end = notes[body..]
        .match_indices('\n')
        .map(|(i, _)| body + i + 1)
        .find(|line| notes[*line..].starts_with("## ") || notes[*line..].starts_with("# "))
        .unwrap_or(notes.len());
    let before = notes[..at].trim_end();
    let rest = &notes[end..];
    let mut out = String::new();
    if !before.is_empty() {
        out.push_str(before);
        out.push_str("\n\n");
    }
    out.push_str(section);
    out.push('\n');
    if !rest.is_empty() {
        out.push('\n');
        out.push_str(rest);
    }
    out
}

/// The summary into `.aisci/tree/summary.md` and into notes.txt (its section replaced
/// when a search wrote one before).
pub async fn write_summary(sink: &dyn EditSink, folder: &Path, tree: &Tree) -> Result<(), SearchError> {
    let text = summary(tree);
    if text.is_empty() {
        return Ok(());
    }
    let file = folder.join(super::tree::TREE_DIR).join("summary.md");
    crate::fsutil::write_atomic(&file, text.as_bytes()).map_err(|e| SearchError::Io(file.clone(), e))?;
    let notes = folder.join("notes.txt");
    let snap = sink.read(&notes).await.map_err(SearchError::Sink)?;
    let after = replace_section(&snap.text, &text);
    if after != snap.text {
        sink.write(&notes, &snap, &after)
            .await
            .map_err(SearchError::Sink)?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_search_replaces_only_its_own_section_of_the_notes() {
        let notes = "# Title: X\n\n## Run 1: wider\nok\n\n## Search over implementations\nold\nlines\n\n## My own notes\nkeep me\n";
        let out = replace_section(notes, "## Search over implementations\nnew\n");
        assert_eq!(
            out,
            "# Title: X\n\n## Run 1: wider\nok\n\n## Search over implementations\nnew\n\n## My own notes\nkeep me\n"
        );
        assert_eq!(
            replace_section("# Title: X\n", "## Search over implementations\nnew"),
            "# Title: X\n\n## Search over implementations\nnew\n"
        );
        // The heading quoted inside a line is not the section.
        let quoted = "see ## Search over implementations below\n";
        assert!(replace_section(quoted, "## Search over implementations\nx").starts_with("see ## Search"));
    }
}
