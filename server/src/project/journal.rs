//! An idea folder's stage journal, `.aisci/journal.json`: where each stage of the
//! experiment (runs, plot, notes) is, after how many attempts, since when. Rewritten
//! atomically as the loop moves, so a later "Run experiments" knows what is finished
//! and goes on from there instead of redoing it.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

pub const JOURNAL_FILE: &str = ".aisci/journal.json";
/// The run loop (detail: the run in progress, or how it ended).
pub const STAGE_RUNS: &str = "runs";
pub const STAGE_PLOT: &str = "plot";
pub const STAGE_NOTES: &str = "notes";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StageState {
    Running,
    Done,
    Failed,
    Cancelled,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct StageEntry {
    pub state: StageState,
    #[serde(default)]
    pub attempts: u32,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub detail: Option<String>,
    /// RFC 3339.
    pub updated: String,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Journal {
    #[serde(default)]
    pub stages: BTreeMap<String, StageEntry>,
}

fn path(folder: &Path) -> PathBuf {
    folder.join(JOURNAL_FILE)
}

impl Journal {
    /// The folder's journal; an absent or unreadable one is empty (nothing is known done).
    pub fn load(folder: &Path) -> Journal {
        std::fs::read_to_string(path(folder))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    pub fn stage(&self, name: &str) -> Option<&StageEntry> {
        self.stages.get(name)
    }

    /// Whether `name` is done (and, with `detail`, ended that way).
    pub fn is_done(&self, name: &str, detail: Option<&str>) -> bool {
        self.stage(name).is_some_and(|e| {
            e.state == StageState::Done && detail.is_none_or(|d| e.detail.as_deref() == Some(d))
        })
    }

    /// Sets one stage's entry in the folder's journal, through the shared-file lock (read
    /// again, changed, written atomically), so another writer's entries are kept.
    pub fn set(
        folder: &Path,
        name: &str,
        state: StageState,
        attempts: u32,
        detail: Option<String>,
    ) -> std::io::Result<()> {
        crate::fsutil::update_shared(&path(folder), |text| {
            // An unreadable journal counts as empty, as `load` reads it.
            let mut j: Journal = text
                .and_then(|t| serde_json::from_str(&t).ok())
                .unwrap_or_default();
            j.stages.insert(
                name.to_owned(),
                StageEntry {
                    state,
                    attempts,
                    detail,
                    updated: super::now_rfc3339(),
                },
            );
            let text = serde_json::to_string_pretty(&j).map_err(std::io::Error::other)?;
            Ok((Some(text), ()))
        })
    }
}

impl Journal {
    /// Forgets the entries of `names`, so that those stages run again (a branch from an
    /// earlier run): read, changed and written under the shared-file lock, as [`Journal::set`].
    pub fn clear(folder: &Path, names: &[&str]) -> std::io::Result<()> {
        crate::fsutil::update_shared(&path(folder), |text| {
            let Some(mut j) = text.and_then(|t| serde_json::from_str::<Journal>(&t).ok()) else {
                return Ok((None, ()));
            };
            for n in names {
                j.stages.remove(*n);
            }
            let text = serde_json::to_string_pretty(&j).map_err(std::io::Error::other)?;
            Ok((Some(text), ()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stages_are_kept_across_writes() {
        let tmp = tempfile::tempdir().unwrap();
        assert_eq!(Journal::load(tmp.path()), Journal::default());
        Journal::set(
            tmp.path(),
            STAGE_RUNS,
            StageState::Running,
            1,
            Some("run 2".into()),
        )
        .unwrap();
        Journal::set(tmp.path(), STAGE_PLOT, StageState::Done, 2, None).unwrap();
        Journal::set(
            tmp.path(),
            STAGE_RUNS,
            StageState::Done,
            3,
            Some("all_completed".into()),
        )
        .unwrap();
        let j = Journal::load(tmp.path());
        assert!(j.is_done(STAGE_RUNS, Some("all_completed")));
        assert!(!j.is_done(STAGE_RUNS, Some("max_runs")));
        assert!(j.is_done(STAGE_PLOT, None));
        assert!(!j.is_done(STAGE_NOTES, None));
        Journal::clear(tmp.path(), &[STAGE_RUNS, STAGE_NOTES]).unwrap();
        let j = Journal::load(tmp.path());
        assert!(j.stage(STAGE_RUNS).is_none() && j.is_done(STAGE_PLOT, None));
        std::fs::write(tmp.path().join(JOURNAL_FILE), "{not json").unwrap();
        assert_eq!(
            Journal::load(tmp.path()),
            Journal::default(),
            "a damaged journal knows nothing"
        );
    }
}
