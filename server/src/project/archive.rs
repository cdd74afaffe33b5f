//! Reading `ideas.json` and updating one idea in it by Name, plus the novelty
//! evidence that aisci stores beside v1's `novel` flag.
//!
//! Updates re-read the file each time, so edits made to other ideas meanwhile (in
//! the editor, by another job) survive, and rewrite it atomically in v1's format.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use super::formats::ideas_to_json;

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
    parse_archive(&text).map_err(bad)
}

fn parse_archive(text: &str) -> Result<Vec<Value>, String> {
    match serde_json::from_str::<Value>(text).map_err(|e| format!("invalid JSON: {e}"))? {
        Value::Array(items) => Ok(items),
        _ => Err("it is not a JSON array of ideas".into()),
    }
}

/// The `Name` of an archive entry.
pub fn entry_name(entry: &Value) -> Option<&str> {
    entry.get("Name").and_then(Value::as_str)
}

/// Re-read `path` under the shared-file lock (see `fsutil::update_shared`), apply `edit`
/// to the first idea called `name` and write the file back atomically in v1's format.
/// Ok(false): no such idea any more (someone removed it), and the file was left alone.
pub fn update_idea_by_name(
    path: &Path,
    name: &str,
    edit: impl FnOnce(&mut Map<String, Value>),
) -> Result<bool, ArchiveError> {
    update_archive(path, false, |entries| {
        let Some(obj) = entries
            .iter_mut()
            .find(|e| entry_name(e) == Some(name))
            .and_then(Value::as_object_mut)
        else {
            return false;
        };
        edit(obj);
        true
    })
}

/// Changes the ideas archive at `path` as it is on disk now, under the shared-file lock:
/// `change` gets its entries and says whether it changed them; only then is the file
/// rewritten. A missing file is no entries when `missing_ok`, else an error.
pub fn update_archive(
    path: &Path,
    missing_ok: bool,
    change: impl FnOnce(&mut Vec<Value>) -> bool,
) -> Result<bool, ArchiveError> {
    let unreadable = |message: String| ArchiveError::Unreadable {
        path: path.to_path_buf(),
        message,
    };
    crate::fsutil::update_shared(path, |text| {
        let mut entries = match text {
            Some(t) => parse_archive(&t).map_err(unreadable)?,
            None if missing_ok => Vec::new(),
            None => return Err(unreadable("No such file or directory".into()).into()),
        };
        let changed = change(&mut entries);
        Ok((changed.then(|| ideas_to_json(&entries)), changed))
    })
    .map_err(|e| match e {
        LockedError::Archive(a) => a,
        LockedError::Io(source) => ArchiveError::Write {
            path: path.to_path_buf(),
            source,
        },
    })
}

/// The archive module's errors inside `update_shared`.
enum LockedError {
    Archive(ArchiveError),
    Io(std::io::Error),
}

impl From<std::io::Error> for LockedError {
    fn from(e: std::io::Error) -> Self {
        LockedError::Io(e)
    }
}

impl From<ArchiveError> for LockedError {
    fn from(e: ArchiveError) -> Self {
        LockedError::Archive(e)
    }
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

    /// An ideas writer and a novelty writer at once (two `aisci` processes would do the
    /// same through the same lock): every idea and every verdict is kept.
    #[test]
    fn concurrent_ideas_and_verdicts_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ideas.json");
        std::fs::write(&p, r#"[{"Name": "seed", "Title": "S"}]"#).unwrap();
        let ideas = {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    update_archive(&p, true, |e| {
                        e.push(json!({ "Name": format!("idea_{i}") }));
                        true
                    })
                    .unwrap();
                }
            })
        };
        let verdicts = {
            let p = p.clone();
            std::thread::spawn(move || {
                for i in 0..20 {
                    update_idea_by_name(&p, "seed", |o| {
                        o.insert("novel".into(), json!(i % 2 == 0));
                        o.insert("checked".into(), json!(i));
                    })
                    .unwrap();
                }
            })
        };
        ideas.join().unwrap();
        verdicts.join().unwrap();
        let entries = read_ideas_archive(&p).unwrap();
        assert_eq!(entries.len(), 21);
        assert_eq!(entries[0]["checked"], 19);
        for i in 0..20 {
            assert!(entries.iter().any(|e| e["Name"] == format!("idea_{i}")));
        }
    }

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
