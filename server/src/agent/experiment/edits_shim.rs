//! TEMPORARY stand-in for `agent::edits` (branch `edits`) with the same API, so the
//! loop builds and is tested before that branch lands. Deleted at the merge.
#![allow(dead_code)]

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditBlock {
    pub index: usize,
    pub path: String,
    pub search: String,
    pub replace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedReply {
    pub blocks: Vec<EditBlock>,
    pub problems: Vec<String>,
}

pub fn parse_reply(reply: &str) -> ParsedReply {
    let lines: Vec<&str> = reply.lines().collect();
    let mut out = ParsedReply::default();
    let mut i = 0;
    while i < lines.len() {
        if lines[i].trim() == "<<<<<<< SEARCH" {
            let path = lines[..i]
                .iter()
                .rev()
                .map(|l| l.trim())
                .find(|l| !l.is_empty() && !l.starts_with("```"))
                .unwrap_or("")
                .to_string();
            let (mut search, mut replace, mut in_replace) = (String::new(), String::new(), false);
            i += 1;
            let mut closed = false;
            while i < lines.len() {
                match lines[i].trim() {
                    "=======" if !in_replace => in_replace = true,
                    ">>>>>>> REPLACE" => {
                        closed = true;
                        break;
                    }
                    _ if in_replace => replace.push_str(&format!("{}\n", lines[i])),
                    _ => search.push_str(&format!("{}\n", lines[i])),
                }
                i += 1;
            }
            let index = out.blocks.len() + out.problems.len() + 1;
            if closed {
                out.blocks.push(EditBlock { index, path, search, replace });
            } else {
                out.problems.push(format!("block {index} is cut off before >>>>>>> REPLACE"));
            }
        }
        i += 1;
    }
    out
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileEdit {
    pub path: String,
    pub before: String,
    pub after: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum BlockError {
    #[error("block {block} ({path}): this file may not be edited")]
    NotAllowed { block: usize, path: String },
    #[error("block {block} ({path}): SEARCH text not found")]
    NoMatch { block: usize, path: String },
}

pub struct ApplyOptions<'a> {
    pub allowed: &'a [&'a str],
    pub check_python: bool,
}

pub fn apply_blocks(
    blocks: &[EditBlock],
    read: &mut dyn FnMut(&str) -> Option<String>,
    opts: &ApplyOptions,
) -> Result<Vec<FileEdit>, Vec<BlockError>> {
    let mut edits: Vec<FileEdit> = Vec::new();
    let mut errors = Vec::new();
    for b in blocks {
        let path = b.path.trim_start_matches("./").to_string();
        if !opts.allowed.contains(&path.as_str()) {
            errors.push(BlockError::NotAllowed { block: b.index, path });
            continue;
        }
        if !edits.iter().any(|e| e.path == path) {
            let Some(text) = read(&path) else {
                errors.push(BlockError::NoMatch { block: b.index, path });
                continue;
            };
            edits.push(FileEdit { path: path.clone(), before: text.clone(), after: text });
        }
        let e = edits.iter_mut().find(|e| e.path == path).unwrap();
        if e.after.matches(&b.search).count() == 1 {
            e.after = e.after.replacen(&b.search, &b.replace, 1);
        } else {
            errors.push(BlockError::NoMatch { block: b.index, path });
        }
    }
    if errors.is_empty() {
        Ok(edits)
    } else {
        Err(errors)
    }
}

pub fn feedback_for(errors: &[BlockError]) -> String {
    errors.iter().map(|e| e.to_string()).collect::<Vec<_>>().join("\n")
}
