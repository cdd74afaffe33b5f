//! The agent's edits as undoable editor edits. An open file is changed with a
//! versioned `workspace/applyEdit` (minimal line hunks, so undo and cursors behave),
//! then written to disk too because the run reads the file from disk; a file that is
//! not open is written to disk atomically.

use std::path::Path;
use std::time::Duration;

use async_trait::async_trait;
use ropey::Rope;
use tower_lsp::lsp_types::{
    ApplyWorkspaceEditParams, DocumentChanges, OneOf, OptionalVersionedTextDocumentIdentifier, Range,
    TextDocumentEdit, TextEdit, WorkspaceEdit,
};

use super::backend::Backend;
use super::convert::{pos_to, uri_of};
use crate::agent::edit_sink::{DiskSink, EditSink, SinkError, Snapshot};
use crate::workspace::{position, PosEncoding};

/// How long the client has to answer `applyEdit`, and then to report the change back.
const APPLY_TIMEOUT: Duration = Duration::from_secs(10);
const ECHO_TIMEOUT: Duration = Duration::from_secs(3);

pub struct EditorSink {
    pub backend: Backend,
    /// Shown by editors in their undo history / edit label.
    pub label: String,
    /// Some: the edits wait for the user's review before they land (`edits.review`).
    pub review: Option<ReviewCtx>,
}

/// What a reviewed edit needs from its job: where to say it waits, and its cancellation.
pub struct ReviewCtx {
    pub progress: std::sync::Arc<dyn crate::jobs::Progress>,
    pub cancel: tokio_util::sync::CancellationToken,
    /// Changes the user rejected in this job: proposed again, they are rejected without asking.
    rejected: std::sync::Mutex<Vec<RejectedChange>>,
}

/// A change the user rejected: its file, the lines it replaced and the lines it brought.
type RejectedChange = (std::path::PathBuf, Vec<String>, Vec<String>);

impl ReviewCtx {
    pub fn new(
        progress: std::sync::Arc<dyn crate::jobs::Progress>,
        cancel: tokio_util::sync::CancellationToken,
    ) -> Self {
        ReviewCtx {
            progress,
            cancel,
            rejected: Default::default(),
        }
    }
}

impl EditorSink {
    /// Edits that land at once (undoable).
    pub fn direct(backend: Backend, label: String) -> Self {
        EditorSink {
            backend,
            label,
            review: None,
        }
    }
}

/// Line hunks turning `base` into `after`, as LSP text edits in `enc`.
pub fn line_edits(base: &str, after: &str, enc: PosEncoding) -> Vec<TextEdit> {
    let rope = Rope::from_str(base);
    let at_line = |line: usize| {
        let idx = if line >= rope.len_lines() {
            rope.len_chars()
        } else {
            rope.line_to_char(line)
        };
        pos_to(position::from_char(&rope, idx, enc))
    };
    let diff = crate::agent::edits::line_diff(base, after);
    let new_lines: Vec<&str> = diff.new_slices().to_vec();
    let mut edits = Vec::new();
    for op in diff.ops() {
        let (tag, old, new) = op.as_tag_tuple();
        if tag == similar::DiffTag::Equal {
            continue;
        }
        edits.push(TextEdit {
            range: Range::new(at_line(old.start), at_line(old.end)),
            new_text: new_lines[new].concat(),
        });
    }
    edits
}

impl EditorSink {
    fn open_state(&self, path: &Path) -> Option<(i32, String)> {
        self.backend
            .state
            .docs
            .lock()
            .unwrap()
            .get(path)
            .map(|d| (d.doc.version(), d.doc.text()))
    }

    /// Waits until the editor has reported the edit back (its didChange), so the next
    /// read sees the edited text with its new version.
    async fn wait_for_echo(&self, path: &Path, after: &str) -> bool {
        let deadline = tokio::time::Instant::now() + ECHO_TIMEOUT;
        loop {
            if self.open_state(path).is_some_and(|(_, text)| text == after) {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    }
}

#[async_trait]
impl EditSink for EditorSink {
    async fn read(&self, path: &Path) -> Result<Snapshot, SinkError> {
        match self.open_state(path) {
            Some((version, text)) => Ok(Snapshot {
                text,
                version: Some(version),
            }),
            None => DiskSink.read(path).await,
        }
    }

    async fn write(&self, path: &Path, base: &Snapshot, after: &str) -> Result<(), SinkError> {
        // A run's result still being published waits the edit: the diagnostics are
        // about the text that ran.
        if let Some(folder) = self.backend.state.folder_of(path) {
            let gate = self.backend.state.publish_gate(folder.root());
            let _published = gate.lock().await;
        }
        if let Some(r) = &self.review {
            return self.write_reviewed(r, path, base, after).await;
        }
        self.write_now(path, base, after).await
    }
}

impl EditorSink {
    /// The edit as it is, now: a versioned applyEdit of an open file (then the file on
    /// disk), else an atomic write.
    async fn write_now(&self, path: &Path, base: &Snapshot, after: &str) -> Result<(), SinkError> {
        let shown = path.display().to_string();
        let (version, current) = match (self.open_state(path), base.version) {
            (None, None) => return DiskSink.write(path, base, after).await,
            (Some((v, text)), Some(bv)) if v == bv && text == base.text => (v, text),
            // Typed into, opened or closed since it was read: read again and redo.
            _ => return Err(SinkError::Changed(shown)),
        };
        if current == after {
            return Ok(());
        }
        let uri = uri_of(path).ok_or_else(|| SinkError::Rejected {
            path: shown.clone(),
            reason: "not a file path".into(),
        })?;
        let edits = line_edits(&current, after, self.backend.state.encoding());
        let params = ApplyWorkspaceEditParams {
            label: Some(self.label.clone()),
            edit: WorkspaceEdit {
                document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier {
                        uri,
                        version: Some(version),
                    },
                    edits: edits.into_iter().map(OneOf::Left).collect(),
                }])),
                ..Default::default()
            },
        };
        let reply = tokio::time::timeout(
            APPLY_TIMEOUT,
            self.backend
                .client
                .send_request::<tower_lsp::lsp_types::request::ApplyWorkspaceEdit>(params),
        )
        .await;
        match reply {
            Ok(Ok(r)) if r.applied => {}
            Ok(Ok(r)) => {
                if self.open_state(path).is_some_and(|(v, _)| v != version) {
                    return Err(SinkError::Changed(shown));
                }
                let reason = r.failure_reason.unwrap_or_else(|| "no reason given".into());
                return Err(SinkError::Rejected { path: shown, reason });
            }
            Ok(Err(e)) => {
                return Err(SinkError::Rejected {
                    path: shown,
                    reason: e.to_string(),
                })
            }
            Err(_) => {
                return Err(SinkError::Rejected {
                    path: shown,
                    reason: "the editor did not answer applyEdit".into(),
                })
            }
        }
        if !self.wait_for_echo(path, after).await {
            // Applied to something else than we meant (e.g. the buffer moved on and the
            // client skipped a stale edit): start over from the current text.
            return Err(SinkError::Changed(shown));
        }
        // The experiment runs what is on disk: keep it equal to the buffer.
        crate::fsutil::write_atomic(path, after.as_bytes())
            .map_err(|source| SinkError::Io { path: shown, source })
    }

    /// The edit, reviewed: cut into hunks, each kept or rejected by the user (changes
    /// rejected earlier in the job are rejected again without asking); the kept ones land
    /// through [`EditorSink::write_now`], the rejected ones come back as
    /// `SinkError::Reviewed`. A client that can review neither way gets the edit as it is,
    /// with one message per session.
    async fn write_reviewed(
        &self,
        r: &ReviewCtx,
        path: &Path,
        base: &Snapshot,
        after: &str,
    ) -> Result<(), SinkError> {
        use super::edit_review::{apply_hunks, hunks};
        let shown = path.display().to_string();
        let caps = self.backend.state.caps();
        if self.open_state(path).is_none() && caps.change_annotations && !caps.edit_review {
            // The preview needs the file open: show it, then the caller reads it again.
            self.backend.show_document_and_wait(path).await;
            if self.open_state(path).is_some() {
                return Err(SinkError::Changed(shown));
            }
        }
        let open = self.open_state(path);
        match (&open, base.version) {
            (None, None) => {}
            (Some((v, text)), Some(bv)) if *v == bv && *text == base.text => {}
            _ => return Err(SinkError::Changed(shown)),
        }
        let all = hunks(&base.text, after);
        if all.is_empty() {
            return Ok(());
        }
        let before: Vec<bool> = {
            let rejected = r.rejected.lock().unwrap();
            all.iter()
                .map(|h| {
                    rejected
                        .iter()
                        .any(|(p, o, n)| p == path && *o == h.old_lines && *n == h.new_lines)
                })
                .collect()
        };
        let asked: Vec<usize> = (0..all.len()).filter(|i| !before[*i]).collect();
        let kept: Vec<usize> = if asked.is_empty() {
            Vec::new()
        } else if caps.edit_review {
            match self.review_by_client(r, path, base, &all, &asked).await? {
                Some(kept) => kept,
                None => return Err(cancelled(&shown)),
            }
        } else if caps.change_annotations && open.is_some() {
            return self.review_in_preview(r, path, base, &all, &asked, &before).await;
        } else {
            let key = "edits.review: this editor cannot review".to_string();
            if self.backend.state.warned.lock().unwrap().insert(key) {
                self.backend
                    .client
                    .show_message(
                        tower_lsp::lsp_types::MessageType::WARNING,
                        "aisci: edits.review is on, but this editor can neither preview edits (change annotations) nor review aisci's proposals, or it did not open the file: the agent's edits land at once, undoable as before",
                    )
                    .await;
            }
            return self.write_now(path, base, after).await;
        };
        if !kept.is_empty() {
            let text = apply_hunks(&base.text, &all, &kept);
            self.write_now(path, base, &text).await?;
        }
        self.reviewed(r, path, &all, &kept, &before)
    }

    /// The review's outcome: remembers what was rejected; an error naming it unless all was kept.
    fn reviewed(
        &self,
        r: &ReviewCtx,
        path: &Path,
        all: &[super::edit_review::Hunk],
        kept: &[usize],
        before: &[bool],
    ) -> Result<(), SinkError> {
        let rejected: Vec<&super::edit_review::Hunk> =
            all.iter().filter(|h| !kept.contains(&h.index)).collect();
        if rejected.is_empty() {
            return Ok(());
        }
        let name = path
            .file_name()
            .map_or(path.display().to_string(), |n| n.to_string_lossy().into_owned());
        let mut memory = r.rejected.lock().unwrap();
        for h in &rejected {
            memory.push((path.to_path_buf(), h.old_lines.clone(), h.new_lines.clone()));
        }
        Err(SinkError::Reviewed {
            path: name.clone(),
            kept: kept.len(),
            total: all.len(),
            rejected: rejected.iter().map(|h| h.describe(&name)).collect(),
            again: rejected.iter().filter(|h| before[h.index]).count(),
        })
    }

    /// A client that reviews proposals itself: `aisci/editProposed`, then wait for its
    /// `aisci.resolveEdit` (or the job's cancel: None). Returns the kept hunks' indices in `all`.
    async fn review_by_client(
        &self,
        r: &ReviewCtx,
        path: &Path,
        base: &Snapshot,
        all: &[super::edit_review::Hunk],
        asked: &[usize],
    ) -> Result<Option<Vec<usize>>, SinkError> {
        use super::edit_review::{EditProposed, EditResolved, Hunk};
        let shown: Vec<Hunk> = asked
            .iter()
            .enumerate()
            .map(|(i, a)| Hunk {
                index: i,
                ..all[*a].clone()
            })
            .collect();
        let uri = uri_of(path).map(|u| u.to_string()).unwrap_or_default();
        let (view, answer) =
            self.backend
                .state
                .reviews
                .propose(path, uri, self.label.clone(), base.version, shown);
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        r.progress.report(
            &format!(
                "Waiting for your review of {name} ({} change(s)): accept or reject them in the editor",
                asked.len()
            ),
            None,
        );
        let id = view.id;
        self.backend
            .client
            .send_notification::<EditProposed>(serde_json::to_value(&view).unwrap_or_default())
            .await;
        let kept = tokio::select! {
            kept = answer => kept.unwrap_or_default(),
            _ = r.cancel.cancelled() => {
                self.backend.state.reviews.withdraw(id);
                self.backend
                    .client
                    .send_notification::<EditResolved>(serde_json::json!({ "id": id, "reason": "cancelled" }))
                    .await;
                return Ok(None);
            }
        };
        Ok(Some(
            kept.into_iter().filter_map(|i| asked.get(i).copied()).collect(),
        ))
    }

    /// VS Code's refactor preview: one applyEdit whose changes need confirmation, one
    /// annotation per hunk; what the user left ticked is what lands.
    async fn review_in_preview(
        &self,
        r: &ReviewCtx,
        path: &Path,
        base: &Snapshot,
        all: &[super::edit_review::Hunk],
        asked: &[usize],
        before: &[bool],
    ) -> Result<(), SinkError> {
        use super::edit_review::landed;
        use tower_lsp::lsp_types::{AnnotatedTextEdit, ChangeAnnotation};
        let shown = path.display().to_string();
        let version = base.version.unwrap_or_default();
        let uri = uri_of(path).ok_or_else(|| SinkError::Rejected {
            path: shown.clone(),
            reason: "not a file path".into(),
        })?;
        // line_edits cuts the same hunks, in the same order, as edit_review::hunks.
        let after_all = super::edit_review::apply_hunks(&base.text, all, asked);
        let edits = line_edits(&base.text, &after_all, self.backend.state.encoding());
        let name = path
            .file_name()
            .map_or(String::new(), |n| n.to_string_lossy().into_owned());
        let mut annotations = std::collections::HashMap::new();
        let mut annotated = Vec::new();
        for (k, (edit, a)) in edits.into_iter().zip(asked.iter()).enumerate() {
            let id = format!("aisci-change-{k}");
            let h = &all[*a];
            annotations.insert(
                id.clone(),
                ChangeAnnotation {
                    label: format!(
                        "{name} line {}: change {} of {}",
                        h.start_line + 1,
                        k + 1,
                        asked.len()
                    ),
                    needs_confirmation: Some(true),
                    description: Some(self.label.clone()),
                },
            );
            annotated.push(OneOf::Right(AnnotatedTextEdit {
                text_edit: edit,
                annotation_id: id,
            }));
        }
        let params = ApplyWorkspaceEditParams {
            label: Some(format!("{} (review)", self.label)),
            edit: WorkspaceEdit {
                document_changes: Some(DocumentChanges::Edits(vec![TextDocumentEdit {
                    text_document: OptionalVersionedTextDocumentIdentifier {
                        uri,
                        version: Some(version),
                    },
                    edits: annotated,
                }])),
                change_annotations: Some(annotations),
                ..Default::default()
            },
        };
        r.progress.report(
            &format!(
                "Waiting for your review of {name} ({} change(s)) in the preview",
                asked.len()
            ),
            None,
        );
        let reply = tokio::select! {
            reply = self.backend.client.send_request::<tower_lsp::lsp_types::request::ApplyWorkspaceEdit>(params) => reply,
            _ = r.cancel.cancelled() => return Err(cancelled(&shown)),
        };
        let applied = matches!(&reply, Ok(res) if res.applied);
        let now = if applied {
            // What the preview let through arrives as the buffer's next change.
            let deadline = tokio::time::Instant::now() + ECHO_TIMEOUT;
            loop {
                let state = self.open_state(path);
                if state.as_ref().is_some_and(|(v, _)| *v != version)
                    || tokio::time::Instant::now() >= deadline
                {
                    break state.map(|(_, t)| t).unwrap_or_else(|| base.text.clone());
                }
                tokio::time::sleep(Duration::from_millis(5)).await;
            }
        } else {
            base.text.clone()
        };
        let kept = match landed(&base.text, all, &now) {
            Some(kept) => kept,
            // Changed some other way as well (the user edited in the preview): theirs.
            None => all.iter().map(|h| h.index).collect(),
        };
        if now != base.text {
            crate::fsutil::write_atomic(path, now.as_bytes()).map_err(|source| SinkError::Io {
                path: shown.clone(),
                source,
            })?;
        }
        self.reviewed(r, path, all, &kept, before)
    }
}

fn cancelled(path: &str) -> SinkError {
    SinkError::Rejected {
        path: path.to_string(),
        reason: "the job was cancelled while the edit waited for review".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn apply(base: &str, edits: &[TextEdit]) -> String {
        // Apply back to front with UTF-16 positions.
        let mut rope = Rope::from_str(base);
        for e in edits.iter().rev() {
            let s = position::to_char(
                &rope,
                crate::workspace::Pos::new(e.range.start.line, e.range.start.character),
                PosEncoding::Utf16,
            );
            let t = position::to_char(
                &rope,
                crate::workspace::Pos::new(e.range.end.line, e.range.end.character),
                PosEncoding::Utf16,
            );
            rope.remove(s..t);
            rope.insert(s, &e.new_text);
        }
        rope.to_string()
    }

    #[test]
    fn hunks_reproduce_the_target() {
        let cases = [
            ("a\nb\nc\n", "a\nB\nc\n"),
            ("a\nb\nc", "a\nb\nc\nd\n"),
            ("x = 1\n", ""),
            ("", "new file\n"),
            ("é😀\nkeep\nold\n", "é😀\nkeep\nnew\nmore\n"),
            ("1\n2\n3\n4\n5\n", "0\n1\n3\n4\n5\n6"),
        ];
        for (base, after) in cases {
            let edits = line_edits(base, after, PosEncoding::Utf16);
            assert_eq!(apply(base, &edits), after, "{base:?} -> {after:?}: {edits:?}");
        }
        // Only the changed line is touched.
        let edits = line_edits("a\nb\nc\n", "a\nB\nc\n", PosEncoding::Utf16);
        assert_eq!(edits.len(), 1);
        assert_eq!(edits[0].range.start.line, 1);
    }
}
