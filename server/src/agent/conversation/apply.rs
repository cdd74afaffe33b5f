//! Delivering the edits of a reply through an [`EditSink`]: every SEARCH/REPLACE
//! block or none, and once more on a fresh read when the user typed between our read
//! and our write (`SinkError::Changed`). The experiment and writing stages differ only
//! in the files they allow, the Python check and (writing) a last say over the texts.

use std::collections::HashMap;
use std::path::PathBuf;

use async_trait::async_trait;

use crate::agent::edit_sink::{EditSink, SinkError, Snapshot};
use crate::agent::edits::{apply_blocks, feedback_for, parse_reply, ApplyOptions, FileEdit};

/// Where a reply's edits may go.
pub struct EditTarget<'a> {
    pub sink: &'a dyn EditSink,
    /// The files a reply may edit: the name the model uses for each (relative,
    /// `/`-separated, no `./`: as `apply_blocks` normalises paths), and the file.
    pub files: Vec<(&'a str, PathBuf)>,
    /// Refuse edits that give a `.py` file new syntax errors.
    pub check_python: bool,
}

/// What became of the edits in a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Applied {
    /// No block could be read (and the stage had none of its own); the parser's
    /// complaints, if any.
    NoBlocks(Vec<String>),
    /// Nothing (more) was written; the message for the model.
    Failed(String),
    /// Written; the files that changed, by the names the model uses.
    Done(Vec<String>),
}

/// A stage's answer to the edited texts.
pub enum Vetted {
    /// Write them, after these whole-file texts (files outside the edit protocol).
    Write(Vec<(PathBuf, String)>),
    /// Write nothing; the message for the model.
    Refused(String),
}

/// A stage's last say over the edits, before anything is written.
#[async_trait]
pub trait Vet: Send {
    /// Whether the stage adds edits of its own, so that a reply without blocks still
    /// has something to apply.
    fn adds_edits(&self) -> bool {
        false
    }

    /// `edits` holds every allowed file, the ones no block touched with `after ==
    /// before`; the stage may change the `after` texts.
    async fn vet(&mut self, sink: &dyn EditSink, edits: &mut [FileEdit]) -> Result<Vetted, SinkError>;
}

/// Takes the edits as the blocks made them.
pub struct NoVet;

#[async_trait]
impl Vet for NoVet {
    async fn vet(&mut self, _: &dyn EditSink, _: &mut [FileEdit]) -> Result<Vetted, SinkError> {
        Ok(Vetted::Write(Vec::new()))
    }
}

/// Applies the reply's blocks to `target`, all or none. When a file changed under us
/// (`SinkError::Changed`), the blocks not yet delivered are applied once more to a
/// fresh read; a second change is an error.
pub async fn apply_reply(
    target: &EditTarget<'_>,
    reply: &str,
    vet: &mut dyn Vet,
) -> Result<Applied, SinkError> {
    let parsed = parse_reply(reply);
    if parsed.blocks.is_empty() && !vet.adds_edits() {
        return Ok(Applied::NoBlocks(parsed.problems));
    }
    if !parsed.problems.is_empty() {
        // Applying the readable blocks alone would leave a half-made change.
        return Ok(Applied::Failed(parsed.problems.join("\n")));
    }
    let names: Vec<&str> = target.files.iter().map(|(name, _)| *name).collect();
    let opts = ApplyOptions {
        allowed: &names,
        check_python: target.check_python,
    };
    let mut pending = parsed.blocks;
    let mut written: Vec<String> = Vec::new();
    for pass in 0..2 {
        let mut snaps: HashMap<&str, (Snapshot, &PathBuf)> = HashMap::new();
        for (name, path) in &target.files {
            snaps.insert(name, (target.sink.read(path).await?, path));
        }
        // `apply_blocks` asks by normalised path, which is how the names are given.
        let mut read = |p: &str| snaps.get(p).map(|(s, _)| s.text.clone());
        let mut edits = match apply_blocks(&pending, &mut read, &opts) {
            Ok(edits) => edits,
            Err(errors) if written.is_empty() => return Ok(Applied::Failed(feedback_for(&errors))),
            // Part of the reply is in; say so rather than pretend none is.
            Err(errors) => {
                return Ok(Applied::Failed(format!(
                    "{} was changed while your edits were applied; {} got your edits, the rest did not:\n{}",
                    pending[0].path,
                    written.join(", "),
                    feedback_for(&errors)
                )))
            }
        };
        // The blocks' order first (it is the order of the writes), then the rest.
        for name in &names {
            if !edits.iter().any(|e| e.path == *name) {
                let text = snaps[name].0.text.clone();
                edits.push(FileEdit {
                    path: name.to_string(),
                    before: text.clone(),
                    after: text,
                });
            }
        }
        let others = match vet.vet(target.sink, &mut edits).await? {
            Vetted::Write(others) => others,
            Vetted::Refused(why) => return Ok(Applied::Failed(why)),
        };
        for (path, text) in &others {
            let base = target.sink.read(path).await?;
            target.sink.write(path, &base, text).await?;
        }
        let mut changed = false;
        for e in edits.iter().filter(|e| e.before != e.after) {
            // Only a target file whose name is not in normal form lacks a snapshot
            // (a block's path is normalised); such a file is not written.
            let Some((base, path)) = snaps.get(e.path.as_str()) else {
                continue;
            };
            match target.sink.write(path, base, &e.after).await {
                Ok(()) => written.push(e.path.clone()),
                Err(SinkError::Changed(_)) if pass == 0 => {
                    changed = true;
                    break;
                }
                // The user's review said no to part of it: the model hears what, and the
                // rest of the reply is not written (it may have depended on it).
                Err(err @ SinkError::Reviewed { .. }) => {
                    let feedback = err.review_feedback().unwrap_or_default();
                    return Ok(Applied::Failed(feedback));
                }
                Err(err) => return Err(err),
            }
        }
        if !changed {
            break;
        }
        pending.retain(|b| !written.iter().any(|w| w == normal(&b.path)));
    }
    Ok(Applied::Done(written))
}

/// `./experiment.py` → `experiment.py`.
fn normal(p: &str) -> &str {
    let p = p.trim();
    p.strip_prefix("./").unwrap_or(p)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::agent::edit_sink::DiskSink;

    fn block(path: &str, search: &str, replace: &str) -> String {
        format!("{path}\n```\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")
    }

    #[tokio::test]
    async fn all_or_none_and_vetted() {
        let dir = tempfile::tempdir().unwrap();
        let a = dir.path().join("a.txt");
        std::fs::write(&a, "one\n").unwrap();
        let target = EditTarget {
            sink: &DiskSink,
            files: vec![("a.txt", a.clone()), ("b.txt", dir.path().join("b.txt"))],
            check_python: false,
        };
        assert_eq!(
            apply_reply(&target, "no edits here", &mut NoVet).await.unwrap(),
            Applied::NoBlocks(Vec::new())
        );
        let two = format!(
            "{}{}",
            block("a.txt", "one\n", "two\n"),
            block("a.txt", "nine\n", "ten\n")
        );
        assert!(matches!(
            apply_reply(&target, &two, &mut NoVet).await.unwrap(),
            Applied::Failed(_)
        ));
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "one\n");

        struct Shout;
        #[async_trait]
        impl Vet for Shout {
            async fn vet(&mut self, _: &dyn EditSink, edits: &mut [FileEdit]) -> Result<Vetted, SinkError> {
                assert_eq!(edits.len(), 2, "untouched files are offered too");
                edits[0].after = edits[0].after.to_uppercase();
                Ok(Vetted::Write(Vec::new()))
            }
        }
        let one = block("./a.txt", "one\n", "two\n");
        assert_eq!(
            apply_reply(&target, &one, &mut Shout).await.unwrap(),
            Applied::Done(vec!["a.txt".into()])
        );
        assert_eq!(std::fs::read_to_string(&a).unwrap(), "TWO\n");
    }
}
