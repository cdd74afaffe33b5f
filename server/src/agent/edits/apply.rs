//! Applying blocks to file texts in memory: all of them or none.

use std::collections::BTreeMap;

use super::text::FileText;
use super::EditBlock;

/// A file's text before and after all blocks of a reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    /// Relative, `/`-separated, without `./`.
    pub path: String,
    /// Empty for a file the reply creates.
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block {block} ({path}): this file may not be edited (allowed: {allowed})")]
    NotAllowed {
        block: usize,
        path: String,
        allowed: String,
    },
    #[error("block {block} ({path}): the path leads outside the experiment folder")]
    OutsideFolder { block: usize, path: String },
    #[error("block {block} ({path}): no such file")]
    NoSuchFile { block: usize, path: String },
    #[error("block {block} ({path}): SEARCH is empty, which creates a file, but {path} already exists")]
    FileExists { block: usize, path: String },
    #[error("block {block} ({path}): SEARCH text not found{hint}")]
    NoMatch {
        block: usize,
        path: String,
        /// "; the closest lines are ..." or empty.
        hint: String,
    },
    #[error("block {block} ({path}): SEARCH text matches {matches} places (lines {})", join_lines(.lines))]
    Ambiguous {
        block: usize,
        path: String,
        matches: usize,
        /// 1-based first lines of the matches.
        lines: Vec<usize>,
    },
    #[error("{path} line {line}: the edited file does not parse: {message}")]
    SyntaxError {
        path: String,
        line: usize,
        message: String,
    },
    /// A block the parser could not read (see `ParsedReply::problems`).
    #[error("{message}")]
    Malformed { block: usize, message: String },
    #[error("{path}: {message}")]
    Io { path: String, message: String },
}

fn join_lines(lines: &[usize]) -> String {
    lines.iter().map(usize::to_string).collect::<Vec<_>>().join(", ")
}

pub struct ApplyOptions<'a> {
    /// File names that may be edited, e.g. `["experiment.py", "plot.py", "notes.txt"]`.
    pub allowed: &'a [&'a str],
    /// Parse each edited `.py` with tree-sitter and refuse new syntax errors.
    pub check_python: bool,
}

/// `experiment.py`, `./experiment.py` and `.\experiment.py` are one file; `..`,
/// absolute paths and drive letters are refused (None).
pub(crate) fn normalise(path: &str) -> Option<String> {
    let p = path.trim().replace('\\', "/");
    if p.starts_with('/') || p.as_bytes().get(1) == Some(&b':') {
        return None;
    }
    let mut parts = Vec::new();
    for part in p.split('/') {
        match part {
            "" | "." => {}
            ".." => return None,
            _ => parts.push(part),
        }
    }
    (!parts.is_empty()).then(|| parts.join("/"))
}

/// Applies all blocks or none. `read` gives a file's current text by relative path
/// (None = missing). Blocks apply in order, each seeing the earlier ones' results;
/// every failing block is reported, not just the first, so the model can fix all
/// of them in one reply.
///
/// An empty SEARCH creates the file; if the file exists (and is not blank) that is
/// an error rather than an append, so that a resent "create" cannot silently
/// duplicate code.
pub fn apply_blocks(
    blocks: &[EditBlock],
    read: &mut dyn FnMut(&str) -> Option<String>,
    opts: &ApplyOptions,
) -> Result<Vec<FileEdit>, Vec<BlockError>> {
    apply_inner(blocks, read, Some(opts.allowed), opts.check_python)
}

struct Working {
    before: Option<String>,
    text: FileText,
}

pub(crate) fn apply_inner(
    blocks: &[EditBlock],
    read: &mut dyn FnMut(&str) -> Option<String>,
    allowed: Option<&[&str]>,
    check_python: bool,
) -> Result<Vec<FileEdit>, Vec<BlockError>> {
    let allowed_norm: Option<Vec<String>> = allowed.map(|a| a.iter().filter_map(|p| normalise(p)).collect());
    let mut files: BTreeMap<String, Working> = BTreeMap::new();
    let mut order: Vec<String> = Vec::new();
    let mut errors = Vec::new();
    for b in blocks {
        let Some(path) = normalise(&b.path) else {
            errors.push(BlockError::OutsideFolder {
                block: b.index,
                path: b.path.clone(),
            });
            continue;
        };
        if let Some(ok) = &allowed_norm {
            if !ok.contains(&path) {
                errors.push(BlockError::NotAllowed {
                    block: b.index,
                    path,
                    allowed: ok.join(", "),
                });
                continue;
            }
        }
        if !files.contains_key(&path) {
            let before = read(&path);
            files.insert(
                path.clone(),
                Working {
                    text: FileText::new(before.clone().unwrap_or_default()),
                    before,
                },
            );
            order.push(path.clone());
        }
        let w = files.get_mut(&path).expect("inserted above");
        let exists = w.before.is_some() || !w.text.is_empty();
        if b.search.trim().is_empty() {
            if exists && !w.text.is_blank() {
                errors.push(BlockError::FileExists { block: b.index, path });
            } else {
                w.text = FileText::new(b.replace.clone());
            }
            continue;
        }
        if !exists {
            errors.push(BlockError::NoSuchFile { block: b.index, path });
            continue;
        }
        match super::matching::replace_once(&mut w.text, &b.search, &b.replace) {
            Ok(()) => {}
            Err(super::matching::Miss::None { hint }) => errors.push(BlockError::NoMatch {
                block: b.index,
                path,
                hint,
            }),
            Err(super::matching::Miss::Many { lines }) => errors.push(BlockError::Ambiguous {
                block: b.index,
                path,
                matches: lines.len(),
                lines,
            }),
        }
    }
    let edits: Vec<FileEdit> = order
        .into_iter()
        .filter_map(|path| {
            let w = files.remove(&path)?;
            let created = w.before.is_none();
            let before = w.before.unwrap_or_default();
            let after = w.text.into_string();
            (created || before != after).then_some(FileEdit { path, before, after })
        })
        .collect();
    if check_python && errors.is_empty() {
        for e in &edits {
            if e.path.ends_with(".py") {
                errors.extend(super::pycheck::new_syntax_errors(&e.path, &e.before, &e.after));
            }
        }
    }
    if errors.is_empty() {
        Ok(edits)
    } else {
        Err(errors)
    }
}

/// The message for the model when blocks failed: what, why, and how to fix it.
pub fn feedback_for(errors: &[BlockError]) -> String {
    use std::fmt::Write;
    let mut msg = String::new();
    let _ = writeln!(
        msg,
        "None of your SEARCH/REPLACE blocks were applied: {} problem{} must be fixed first, and the files are unchanged.",
        errors.len(),
        if errors.len() == 1 { "" } else { "s" }
    );
    for e in errors {
        let _ = writeln!(msg, "\n- {e}");
        let advice = match e {
            BlockError::NotAllowed { allowed, .. } => {
                format!("Only these files may be edited: {allowed}.")
            }
            BlockError::OutsideFolder { .. } => {
                "Use a path relative to the experiment folder, without `..`.".into()
            }
            BlockError::NoSuchFile { .. } => {
                "To create a new file, use a block with an empty SEARCH section.".into()
            }
            BlockError::FileExists { .. } => {
                "Change the existing file with SEARCH lines copied from it instead.".into()
            }
            BlockError::NoMatch { .. } => "SEARCH must repeat existing lines of the file exactly, \
                 comments and blank lines included; copy them from the current file."
                .into(),
            BlockError::Ambiguous { .. } => {
                "Add neighbouring lines to SEARCH so that it matches one place only.".into()
            }
            BlockError::SyntaxError { .. } => {
                "Correct the code in your blocks so the file is valid Python.".into()
            }
            BlockError::Malformed { .. } => "Each block needs the file name, then \
                 <<<<<<< SEARCH, the old lines, =======, the new lines, >>>>>>> REPLACE."
                .into(),
            BlockError::Io { .. } => "This is not your fault; try again.".into(),
        };
        let _ = writeln!(msg, "  {advice}");
    }
    msg.push_str(
        "\nSend all of the blocks again (the ones that worked too), corrected, as SEARCH/REPLACE blocks.\n",
    );
    msg
}
