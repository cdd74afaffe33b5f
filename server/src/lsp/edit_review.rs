//! The agent's edits reviewed before they land (`edits.review`). An edit is cut into
//! line hunks; the user keeps or rejects each one, in VS Code's refactor preview (a
//! `workspace/applyEdit` whose changes need confirmation, one change annotation per hunk)
//! or in a client that reviews proposals itself (`aisci/editProposed`, answered with
//! `aisci.resolveEdit`: the Neovim plugin). What was kept lands as one undoable edit; what
//! was rejected goes back to the agent, which goes on from the file as it is.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use serde::Serialize;
use serde_json::Value;
use tokio::sync::oneshot;

/// One hunk of a proposed edit, against the text the agent read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Hunk {
    pub index: usize,
    /// 0-based line of the base text where `old_lines` start (an insertion goes before it).
    pub start_line: usize,
    pub old_lines: Vec<String>,
    pub new_lines: Vec<String>,
}

impl Hunk {
    /// For the agent: where it was and what it would have done.
    pub fn describe(&self, path: &str) -> String {
        let lines =
            |v: &[String], sign: char| -> String { v.iter().map(|l| format!("{sign}{l}\n")).collect() };
        format!(
            "{path} line {}:\n{}{}",
            self.start_line + 1,
            lines(&self.old_lines, '-'),
            lines(&self.new_lines, '+')
        )
    }
}

fn split_lines(text: &str) -> Vec<String> {
    text.split_inclusive('\n')
        .map(|l| l.trim_end_matches('\n').trim_end_matches('\r').to_string())
        .collect()
}

/// The line hunks turning `base` into `after`, in file order.
pub fn hunks(base: &str, after: &str) -> Vec<Hunk> {
    let diff = crate::agent::edits::line_diff(base, after);
    let (old, new) = (split_lines(base), split_lines(after));
    let mut out = Vec::new();
    for op in diff.ops() {
        let (tag, o, n) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        out.push(Hunk {
            index: out.len(),
            start_line: o.start,
            old_lines: old[o.clone()].to_vec(),
            new_lines: new[n.clone()].to_vec(),
        });
    }
    out
}

/// `base` with the hunks in `accept` applied (the others left as they were). The text
/// keeps `base`'s line endings and whether it ends with a newline, except where a kept
/// hunk changes the last line.
pub fn apply_hunks(base: &str, hunks: &[Hunk], accept: &[usize]) -> String {
    let lines: Vec<&str> = base.split_inclusive('\n').collect();
    let eol = if base.contains("\r\n") { "\r\n" } else { "\n" };
    let mut out = String::new();
    let mut at = 0;
    for h in hunks {
        for l in &lines[at..h.start_line.min(lines.len())] {
            out.push_str(l);
        }
        at = (h.start_line + h.old_lines.len()).min(lines.len());
        if accept.contains(&h.index) {
            for l in &h.new_lines {
                out.push_str(l);
                out.push_str(eol);
            }
        } else {
            for l in &lines[h.start_line.min(lines.len())..at] {
                out.push_str(l);
            }
        }
    }
    for l in &lines[at..] {
        out.push_str(l);
    }
    // A kept hunk at the very end follows `base` on the final newline.
    if !base.ends_with('\n') && out.ends_with(eol) && !base.is_empty() && at >= lines.len() {
        out.truncate(out.len() - eol.len());
    }
    out
}

/// Which hunks `now` holds, when it is `base` with some of them applied (None: the text
/// was changed some other way too).
pub fn landed(base: &str, hunks: &[Hunk], now: &str) -> Option<Vec<usize>> {
    let n = hunks.len();
    if n > 16 {
        // Too many subsets to try: judge hunk by hunk, each alone.
        let kept: Vec<usize> = hunks
            .iter()
            .filter(|h| {
                let alone = apply_hunks(base, hunks, &[h.index]);
                norm(&alone) != norm(base) && norm(now).contains(h.new_lines.join("\n").as_str())
            })
            .map(|h| h.index)
            .collect();
        return (norm(&apply_hunks(base, hunks, &kept)) == norm(now)).then_some(kept);
    }
    (0u32..(1 << n)).find_map(|mask| {
        let accept: Vec<usize> = (0..n).filter(|i| mask & (1 << i) != 0).collect();
        (norm(&apply_hunks(base, hunks, &accept)) == norm(now)).then_some(accept)
    })
}

/// Texts compared without a difference in the final newline (editors differ there).
fn norm(s: &str) -> &str {
    s.trim_end_matches('\n')
}

/// A proposal as the client sees it (`aisci/editProposed`, `aisci.pendingEdits`).
#[derive(Debug, Clone, Serialize)]
pub struct ProposalView {
    pub id: u64,
    pub file: PathBuf,
    pub uri: String,
    pub label: String,
    pub version: Option<i32>,
    pub hunks: Vec<Hunk>,
}

struct Pending {
    view: ProposalView,
    answer: oneshot::Sender<Vec<usize>>,
}

/// The proposals waiting for the user, across jobs.
#[derive(Default)]
pub struct Reviews {
    next: AtomicU64,
    pending: Mutex<HashMap<u64, Pending>>,
}

impl Reviews {
    /// Registers a proposal; the receiver gets the hunks the user kept.
    pub fn propose(
        &self,
        file: &Path,
        uri: String,
        label: String,
        version: Option<i32>,
        hunks: Vec<Hunk>,
    ) -> (ProposalView, oneshot::Receiver<Vec<usize>>) {
        let id = self.next.fetch_add(1, Ordering::Relaxed) + 1;
        let view = ProposalView {
            id,
            file: file.to_path_buf(),
            uri,
            label,
            version,
            hunks,
        };
        let (tx, rx) = oneshot::channel();
        self.pending.lock().unwrap().insert(
            id,
            Pending {
                view: view.clone(),
                answer: tx,
            },
        );
        (view, rx)
    }

    /// The user's decision: the hunks kept (the rest rejected).
    pub fn resolve(&self, id: u64, accept: Vec<usize>) -> Result<ProposalView, String> {
        let p =
            self.pending.lock().unwrap().remove(&id).ok_or_else(|| {
                format!("no edit {id} is waiting for review (it was resolved or cancelled)")
            })?;
        let n = p.view.hunks.len();
        let accept: Vec<usize> = accept.into_iter().filter(|i| *i < n).collect();
        // The agent is gone (its job was cancelled): nothing lands.
        p.answer
            .send(accept)
            .map_err(|_| "the job that proposed this edit has ended".to_string())?;
        Ok(p.view)
    }

    /// Forgets a proposal (its job was cancelled); whether it was still waiting.
    pub fn withdraw(&self, id: u64) -> bool {
        self.pending.lock().unwrap().remove(&id).is_some()
    }

    pub fn list(&self) -> Vec<ProposalView> {
        let mut v: Vec<ProposalView> = self
            .pending
            .lock()
            .unwrap()
            .values()
            .map(|p| p.view.clone())
            .collect();
        v.sort_by_key(|p| p.id);
        v
    }

    pub fn for_file(&self, file: &Path) -> Option<ProposalView> {
        self.list().into_iter().find(|p| p.file == file)
    }
}

/// `aisci/editProposed`.
pub enum EditProposed {}

impl tower_lsp::lsp_types::notification::Notification for EditProposed {
    type Params = Value;
    const METHOD: &'static str = "aisci/editProposed";
}

/// `aisci/editResolved {id, reason}`: a proposal is over (resolved elsewhere, cancelled).
pub enum EditResolved {}

impl tower_lsp::lsp_types::notification::Notification for EditResolved {
    type Params = Value;
    const METHOD: &'static str = "aisci/editResolved";
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "a\nb\nc\nd\ne\n";
    const AFTER: &str = "a\nB\nc\nnew\nd\n";

    #[test]
    fn hunks_apply_alone_or_together() {
        let h = hunks(BASE, AFTER);
        assert_eq!(h.len(), 3, "{h:?}");
        assert_eq!(
            (h[0].start_line, h[0].old_lines.clone(), h[0].new_lines.clone()),
            (1, vec!["b".into()], vec!["B".into()])
        );
        assert_eq!(apply_hunks(BASE, &h, &[0, 1, 2]), AFTER);
        assert_eq!(apply_hunks(BASE, &h, &[]), BASE);
        assert_eq!(apply_hunks(BASE, &h, &[1]), "a\nb\nc\nnew\nd\ne\n");
        assert_eq!(apply_hunks(BASE, &h, &[2]), "a\nb\nc\nd\n");
        assert_eq!(landed(BASE, &h, "a\nB\nc\nd\n"), Some(vec![0, 2]));
        assert_eq!(landed(BASE, &h, AFTER), Some(vec![0, 1, 2]));
        assert_eq!(landed(BASE, &h, "typed over\n"), None);
        assert!(
            h[1].describe("x.py").starts_with("x.py line 4:\n+new\n"),
            "{}",
            h[1].describe("x.py")
        );
    }

    #[test]
    fn a_resolved_proposal_answers_once() {
        let r = Reviews::default();
        let (v, mut rx) = r.propose(
            Path::new("/f/x.py"),
            "file:///f/x.py".into(),
            "l".into(),
            Some(3),
            hunks(BASE, AFTER),
        );
        assert_eq!(r.for_file(Path::new("/f/x.py")).unwrap().id, v.id);
        r.resolve(v.id, vec![2, 7]).unwrap();
        assert_eq!(
            rx.try_recv().unwrap(),
            vec![2],
            "indices past the end are dropped"
        );
        assert!(r.resolve(v.id, vec![]).is_err());
        assert!(r.list().is_empty());
    }
}
