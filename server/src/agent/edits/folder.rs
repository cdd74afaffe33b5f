//! `aisci apply`: a saved reply applied to the files of a folder.

use std::collections::HashMap;
use std::path::{Component, Path, PathBuf};

use super::{apply_inner, normalise, parse_reply, BlockError, FileEdit};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApplyReport {
    pub files: Vec<FileEdit>,
    /// Unified diff of all files (`a/…`, `b/…`; `/dev/null` for created files).
    pub diff: String,
}

fn io(path: &Path, e: impl std::fmt::Display) -> BlockError {
    BlockError::Io {
        path: path.display().to_string(),
        message: e.to_string(),
    }
}

/// Where `rel` really lives, following symlinks one component at a time, or None when
/// any step lands outside `root` (which must be canonical).
fn resolve_inside(root: &Path, rel: &str) -> Option<PathBuf> {
    let mut cur = root.to_path_buf();
    for comp in Path::new(rel).components() {
        let Component::Normal(part) = comp else {
            return None;
        };
        cur.push(part);
        match std::fs::symlink_metadata(&cur) {
            Ok(meta) if meta.file_type().is_symlink() => {
                // A dangling link cannot be canonicalised: refuse rather than guess.
                cur = cur.canonicalize().ok()?;
                if !cur.starts_with(root) {
                    return None;
                }
            }
            _ => {}
        }
    }
    cur.starts_with(root).then_some(cur)
}

pub fn unified_diff(edits: &[FileEdit]) -> String {
    let mut out = String::new();
    for e in edits {
        let old = if e.before.is_empty() {
            "/dev/null".to_string()
        } else {
            format!("a/{}", e.path)
        };
        let diff = similar::TextDiff::from_lines(&e.before, &e.after);
        out.push_str(
            &diff
                .unified_diff()
                .context_radius(3)
                .header(&old, &format!("b/{}", e.path))
                .to_string(),
        );
    }
    out
}

/// Applies a saved reply to the files of `folder`: all blocks or none, each file
/// written atomically (and earlier files restored if a later write fails). With
/// `dry_run` nothing is written and the report's diff shows what would change.
/// Paths that resolve outside `folder` (`..`, absolute, symlinks) are refused;
/// `allowed` = None lets any file inside the folder be edited. A reply with blocks
/// that could not be read is refused as a whole (`BlockError::Malformed`).
pub fn apply_reply_to_folder(
    folder: &Path,
    reply: &str,
    allowed: Option<&[&str]>,
    dry_run: bool,
) -> Result<ApplyReport, Vec<BlockError>> {
    let parsed = parse_reply(reply);
    let mut errors: Vec<BlockError> = parsed
        .problems
        .iter()
        .map(|p| BlockError::Malformed {
            block: p
                .strip_prefix("block ")
                .and_then(|r| r.split(|c: char| !c.is_ascii_digit()).next())
                .and_then(|n| n.parse().ok())
                .unwrap_or(0),
            message: p.clone(),
        })
        .collect();
    let root = folder.canonicalize().map_err(|e| vec![io(folder, e)])?;

    let mut resolved: HashMap<String, PathBuf> = HashMap::new();
    let mut ok_blocks = Vec::new();
    for b in &parsed.blocks {
        match normalise(&b.path).and_then(|rel| Some((resolve_inside(&root, &rel)?, rel))) {
            Some((abs, rel)) => {
                resolved.insert(rel, abs);
                ok_blocks.push(b.clone());
            }
            None => errors.push(BlockError::OutsideFolder {
                block: b.index,
                path: b.path.clone(),
            }),
        }
    }

    let mut read_errors = Vec::new();
    let mut read = |rel: &str| -> Option<String> {
        let path = resolved.get(rel)?;
        match std::fs::read(path) {
            Ok(bytes) => match String::from_utf8(bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    read_errors.push(io(Path::new(rel), e));
                    None
                }
            },
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
            Err(e) => {
                read_errors.push(io(Path::new(rel), e));
                None
            }
        }
    };
    let result = apply_inner(&ok_blocks, &mut read, allowed, false);
    errors.extend(read_errors);
    let files = match result {
        Ok(files) => files,
        Err(e) => {
            errors.extend(e);
            Vec::new()
        }
    };
    if !errors.is_empty() {
        errors.sort_by_key(block_of);
        return Err(errors);
    }

    let diff = unified_diff(&files);
    if !dry_run {
        write_all(&files, &resolved)?;
    }
    Ok(ApplyReport { files, diff })
}

fn block_of(e: &BlockError) -> usize {
    match e {
        BlockError::NotAllowed { block, .. }
        | BlockError::OutsideFolder { block, .. }
        | BlockError::NoSuchFile { block, .. }
        | BlockError::FileExists { block, .. }
        | BlockError::NoMatch { block, .. }
        | BlockError::Ambiguous { block, .. }
        | BlockError::Malformed { block, .. } => *block,
        BlockError::SyntaxError { .. } | BlockError::Io { .. } => usize::MAX,
    }
}

/// Writes every file or, when one write fails, puts back the ones already written.
fn write_all(files: &[FileEdit], resolved: &HashMap<String, PathBuf>) -> Result<(), Vec<BlockError>> {
    for (n, f) in files.iter().enumerate() {
        let path = &resolved[&f.path];
        let res = match path.parent() {
            Some(dir) => std::fs::create_dir_all(dir),
            None => Ok(()),
        }
        .and_then(|()| crate::fsutil::write_atomic(path, f.after.as_bytes()));
        if let Err(e) = res {
            for done in &files[..n] {
                let p = &resolved[&done.path];
                let _ = if done.before.is_empty() && !p.exists() {
                    Ok(())
                } else if done.before.is_empty() {
                    std::fs::remove_file(p)
                } else {
                    crate::fsutil::write_atomic(p, done.before.as_bytes())
                };
            }
            return Err(vec![io(Path::new(&f.path), e)]);
        }
    }
    Ok(())
}
