//! Reading `ideas.json` and updating one idea in it by Name, plus the novelty
//! evidence that aisci stores beside v1's `novel` flag.
//!
//! Updates re-read the file each time, so edits made to other ideas meanwhile (in
//! the editor, by another job) survive, and rewrite it atomically in v1's format.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::formats::ideas_to_json;
use crate::fsutil::write_atomic;

/// The key under which the novelty check keeps its evidence. v1 ignores unknown
/// keys, so an archive carrying it still loads there.
pub const NOVELTY_KEY: &str = "novelty";

/// A paper kept as evidence: enough to find it again, not the whole record.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EvidencePaper {
    pub id: String,
    pub title: String,
    #[serde(default)]
    pub year: Option<i32>,
    #[serde(default)]
    pub url: Option<String>,
    /// The engine the id belongs to (`semanticscholar`, `openalex`, `arxiv`); a plain
    /// string so that the file format does not depend on the engines compiled in.
    pub engine: String,
}

/// What the novelty check found, stored under [`NOVELTY_KEY`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NoveltyEvidence {
    /// The search queries, in the order they were sent.
    #[serde(default)]
    pub queries: Vec<String>,
    /// The papers that come closest to the idea, closest first.
    #[serde(default)]
    pub closest: Vec<EvidencePaper>,
    /// One line: why the model decided as it did (or why there is no decision).
    #[serde(default)]
    pub reason: String,
    /// When the check finished, RFC 3339.
    #[serde(default)]
    pub checked: String,
    #[serde(default)]
    pub rounds: u32,
    #[serde(default)]
    pub papers_seen: u32,
    /// False when the model never decided and `novel: false` is v1's default verdict.
    #[serde(default = "yes")]
    pub decided: bool,
}

fn yes() -> bool {
    true
}

impl NoveltyEvidence {
    /// The evidence stored in an idea entry, if it is there and readable.
    pub fn of(entry: &Value) -> Option<NoveltyEvidence> {
        serde_json::from_value(entry.get(NOVELTY_KEY)?.clone()).ok()
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ArchiveError {
    #[error("{}: {message}", path.display())]
    Unreadable { path: PathBuf, message: String },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
}

/// The entries of an idea archive, verbatim. A missing file is an error here: the
/// callers update ideas that must already exist.
pub fn read_ideas_archive(path: &Path) -> Result<Vec<Value>, ArchiveError> {
    let bad = |message: String| ArchiveError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    let text = std::fs::read_to_string(path).map_err(|e| bad(e.to_string()))?;
    match serde_json::from_str::<Value>(&text).map_err(|e| bad(format!("invalid JSON: {e}")))? {
        Value::Array(items) => Ok(items),
        _ => Err(bad("it is not a JSON array of ideas".into())),
    }
}

/// The `Name` of an archive entry.
pub fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("Name").and_then(Value::as_str)
}

/// Serialises read-modify-write cycles within this process; across processes the
/// atomic rename at least guarantees that nobody reads a half-written file.
static UPDATE_LOCK: Mutex<()> = Mutex::new(());

/// Re-read `path`, apply `edit` to the first idea called `name` and write the file
/// back atomically in v1's format. Ok(false): no such idea any more (someone removed
/// it), and the file was left alone.
pub fn update_idea_by_name(
    path: &Path,
    name: &str,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<bool, ArchiveError> {
    let _guard = UPDATE_LOCK.lock().unwrap_or_else(|e| e.into_inner());
    let mut entries = read_ideas_archive(path)?;
    let Some(obj) = entries
        .iter_mut()
        .find(|e| entry_name(e) == Some(name))
        .and_then(Value::as_object_mut)
    else {
        return Ok(false);
    };
    edit(obj);
    write_atomic(path, ideas_to_json(&entries).as_bytes()).map_err(|source| ArchiveError::Write {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(true)
}

/// Set v1's `novel` flag and the evidence of one idea (see [`update_idea_by_name`]).
pub fn record_novelty(
    path: &Path,
    name: &str,
    novel: bool,
    evidence: &NoveltyEvidence,
) -> Result<bool, ArchiveError> {
    let evidence = serde_json::to_value(evidence).expect("evidence serialises");
    update_idea_by_name(path, name, |obj| {
        obj.insert("novel".into(), Value::Bool(novel));
        obj.insert(NOVELTY_KEY.into(), evidence);
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn novelty_update_keeps_other_entries_and_key_order() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ideas.json");
        let start = json!([{"Name": "a", "novel": true, "x": 1}, {"Name": "b", "y": "é"}]);
        std::fs::write(&p, ideas_to_json(start.as_array().unwrap())).unwrap();
        assert!(update_idea_by_name(&p, "a", |o| {
            o.insert("novel".into(), json!(false));
        })
        .unwrap());
        let after: Value = serde_json::from_str(&std::fs::read_to_string(&p).unwrap()).unwrap();
        assert_eq!(
            after,
            json!([{"Name": "a", "novel": false, "x": 1}, {"Name": "b", "y": "é"}])
        );
        let keys: Vec<_> = after[0].as_object().unwrap().keys().cloned().collect();
        assert_eq!(keys, ["Name", "novel", "x"], "an existing key keeps its place");
        assert!(!update_idea_by_name(&p, "gone", |_| {}).unwrap());
    }

    #[test]
    fn novelty_evidence_reads_leniently() {
        let e = NoveltyEvidence::of(&json!({"novelty": {"queries": ["q"], "reason": "r"}})).unwrap();
        assert_eq!(e.queries, ["q"]);
        assert!(e.decided);
        assert!(NoveltyEvidence::of(&json!({"novelty": 3})).is_none());
    }
}
