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
        let shown = path.display().to_string();
        // A run's result still being published waits the edit: the diagnostics are
        // about the text that ran.
        if let Some(folder) = self.backend.state.folder_of(path) {
            let gate = self.backend.state.publish_gate(folder.root());
            let _published = gate.lock().await;
        }
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
