//! `aisci apply`: a saved reply applied to the files of a folder.

use std::path::Path;

use super::confined::{Folder, Refusal};
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

pub fn unified_diff(edits: &[FileEdit]) -> String {
    let mut out = String::new();
    for e in edits {
        let old = if e.before.is_empty() {
            "/dev/null".to_string()
        } else {
            format!("a/{}", e.path)
        };
        let diff = super::text::line_diff(&e.before, &e.after);
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
/// Paths that resolve outside `folder` (`..`, absolute, symlinks that leave it) are
/// refused, symlinks that stay inside are followed; `allowed` = None lets any file inside the folder be edited. A reply with blocks
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
    // Every read and write goes through this handle on the folder, walked without
    // following symlinks out of it (see `confined`), so what is checked here is where
    // the write lands even if the folder changes meanwhile.
    let root = Folder::open(folder).map_err(|e| vec![io(folder, e)])?;

    let mut ok_blocks = Vec::new();
    for b in &parsed.blocks {
        let checked = normalise(&b.path).map(|rel| root.check(&rel));
        match checked {
            Some(Ok(())) => ok_blocks.push(b.clone()),
            Some(Err(Refusal::Io(e))) => errors.push(io(Path::new(&b.path), e)),
            None | Some(Err(Refusal::Outside)) => errors.push(BlockError::OutsideFolder {
                block: b.index,
                path: b.path.clone(),
            }),
        }
    }

    let mut read_errors = Vec::new();
    let mut read = |rel: &str| -> Option<String> {
        match root.read(rel) {
            Ok(Some(bytes)) => match String::from_utf8(bytes) {
                Ok(s) => Some(s),
                Err(e) => {
                    read_errors.push(io(Path::new(rel), e));
                    None
                }
            },
            Ok(None) => None,
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
        write_all(&files, &root)?;
    }
    Ok(ApplyReport { files, diff })
}

/// The 1-based block an error is about (`usize::MAX`: none in particular).
pub fn block_of(e: &BlockError) -> usize {
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
fn write_all(files: &[FileEdit], root: &Folder) -> Result<(), Vec<BlockError>> {
    for (n, f) in files.iter().enumerate() {
        if let Err(e) = root.write_atomic(&f.path, f.after.as_bytes()) {
            for done in &files[..n] {
                let _ = if done.before.is_empty() {
                    root.remove(&done.path)
                } else {
                    root.write_atomic(&done.path, done.before.as_bytes())
                };
            }
            return Err(vec![io(Path::new(&f.path), e)]);
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicBool, Ordering};
    use std::sync::Arc;

    fn create(path: &str, text: &str) -> String {
        format!("{path}\n```\n<<<<<<< SEARCH\n=======\n{text}>>>>>>> REPLACE\n```\n")
    }

    /// A directory of the folder swapped for a symlink to an outside directory, over and
    /// over, while replies that write into it are applied: no write ever lands outside.
    #[cfg(unix)]
    #[test]
    fn a_directory_swapped_for_a_symlink_never_carries_a_write_outside() {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("idea");
        let outside = outer.path().join("outside");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::create_dir(&outside).unwrap();
        std::fs::write(root.join("sub/f.py"), "x = 1\n").unwrap();
        std::fs::write(outside.join("f.py"), "x = 1\n").unwrap();

        let stop = Arc::new(AtomicBool::new(false));
        let swapper = {
            let (root, outside, stop) = (root.clone(), outside.clone(), stop.clone());
            std::thread::spawn(move || {
                let (sub, parked) = (root.join("sub"), root.join("parked"));
                let mut swaps = 0u32;
                while !stop.load(Ordering::Relaxed) {
                    if std::fs::rename(&sub, &parked).is_err() {
                        continue;
                    }
                    let _ = std::os::unix::fs::symlink(&outside, &sub);
                    std::thread::yield_now();
                    // Whatever is at `sub` now (the link, or a directory a write made
                    // meanwhile) goes, and the real directory comes back.
                    while std::fs::rename(&parked, &sub).is_err() {
                        if std::fs::remove_file(&sub).is_err() {
                            let _ = std::fs::remove_dir_all(&sub);
                        }
                    }
                    swaps += 1;
                    // Some time as a directory, so that writes start while it is one.
                    std::thread::sleep(std::time::Duration::from_micros(50));
                }
                swaps
            })
        };
        // Until enough writes went through (most are refused while `sub` is the link).
        let (mut applied, mut tries) = (0, 0);
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
        while (applied < 50 || tries < 300) && std::time::Instant::now() < deadline {
            let reply = create(&format!("sub/new_{tries}.py"), "y = 2\n");
            if apply_reply_to_folder(&root, &reply, None, false).is_ok() {
                applied += 1;
            }
            tries += 1;
        }
        stop.store(true, Ordering::Relaxed);
        let swaps = swapper.join().unwrap();

        let mut names: Vec<_> = std::fs::read_dir(&outside)
            .unwrap()
            .map(|e| e.unwrap().file_name().into_string().unwrap())
            .collect();
        names.sort();
        assert_eq!(
            names,
            ["f.py"],
            "written outside ({applied} of {tries} applied, {swaps} swaps)"
        );
        assert_eq!(std::fs::read_to_string(outside.join("f.py")).unwrap(), "x = 1\n");
        assert!(
            applied > 0 && swaps > 0,
            "{applied} of {tries} applied, {swaps} swaps"
        );
        eprintln!("{applied} of {tries} applied, {swaps} swaps");
    }
}
