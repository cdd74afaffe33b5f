//! Where the agent's edits go. The core computes the new text; a sink delivers it:
//! to disk atomically, or (in the LSP layer) to the open editor buffer as an
//! undoable, versioned edit.

use std::path::Path;

use async_trait::async_trait;

/// A file's text as the agent saw it, with the editor's version when it came
/// from an open buffer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Snapshot {
    pub text: String,
    pub version: Option<i32>,
}

#[derive(Debug, thiserror::Error)]
pub enum SinkError {
    /// The text moved on since the snapshot (the user typed): read again and redo.
    #[error("{0} changed since it was read")]
    Changed(String),
    /// The editor refused the edit.
    #[error("the editor refused the edit to {path}: {reason}")]
    Rejected { path: String, reason: String },
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    /// The user reviewed the edit and rejected some (or all) of its changes; the kept ones
    /// are in the file.
    #[error("the user kept {kept} of {total} change(s) to {path}")]
    Reviewed {
        path: String,
        kept: usize,
        total: usize,
        /// Each rejected change as a small diff, for the model.
        rejected: Vec<String>,
        /// Of those, the ones the model had proposed before and the user had rejected then
        /// (not asked about again).
        again: usize,
    },
}

impl SinkError {
    /// For the model, after a review rejected part of its edit.
    pub fn review_feedback(&self) -> Option<String> {
        let SinkError::Reviewed {
            path,
            kept,
            total,
            rejected,
            again,
        } = self
        else {
            return None;
        };
        let mut s = format!(
            "The user reviewed your edit of {path} before it was applied: {kept} of {total} change(s) were kept and are in the file now; these were rejected, so the file does not have them:\n\n{}",
            rejected.join("\n")
        );
        if *again > 0 {
            s.push_str(&format!(
                "\n{again} of them you had proposed before and the user had rejected already; they were not shown again."
            ));
        }
        s.push_str("\nDo not propose the rejected changes again. Go on from the file as it is now; if the task needs something else, change it another way or say why.");
        Some(s)
    }
}

#[async_trait]
pub trait EditSink: Send + Sync {
    /// The current text of `path` (the open buffer when there is one). A missing
    /// file reads as empty text with no version.
    async fn read(&self, path: &Path) -> Result<Snapshot, SinkError>;
    /// Replaces the text of `path`, which must still be `base`, with `after`.
    async fn write(&self, path: &Path, base: &Snapshot, after: &str) -> Result<(), SinkError>;
}

/// Edits straight to disk, atomically; refuses when the file changed since it was read.
pub struct DiskSink;

#[async_trait]
impl EditSink for DiskSink {
    async fn read(&self, path: &Path) -> Result<Snapshot, SinkError> {
        match std::fs::read(path) {
            Ok(bytes) => Ok(Snapshot {
                text: String::from_utf8(bytes).map_err(|e| SinkError::Io {
                    path: path.display().to_string(),
                    source: std::io::Error::new(std::io::ErrorKind::InvalidData, e.utf8_error()),
                })?,
                version: None,
            }),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Snapshot {
                text: String::new(),
                version: None,
            }),
            Err(source) => Err(SinkError::Io {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    async fn write(&self, path: &Path, base: &Snapshot, after: &str) -> Result<(), SinkError> {
        let current = self.read(path).await?;
        if current.text != base.text {
            return Err(SinkError::Changed(path.display().to_string()));
        }
        crate::fsutil::write_atomic(path, after.as_bytes()).map_err(|source| SinkError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn disk_sink_refuses_a_stale_base() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("experiment.py");
        std::fs::write(&p, "a = 1\n").unwrap();
        let snap = DiskSink.read(&p).await.unwrap();
        std::fs::write(&p, "a = 2\n").unwrap();
        assert!(matches!(
            DiskSink.write(&p, &snap, "a = 3\n").await,
            Err(SinkError::Changed(_))
        ));
        let snap = DiskSink.read(&p).await.unwrap();
        DiskSink.write(&p, &snap, "a = 3\n").await.unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "a = 3\n");
        let missing = DiskSink.read(&dir.path().join("new.py")).await.unwrap();
        assert_eq!(
            missing,
            Snapshot {
                text: String::new(),
                version: None
            }
        );
    }
}
