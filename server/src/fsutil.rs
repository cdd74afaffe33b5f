//! File helpers that never leave a half-written file behind, and the one way a file that
//! several writers share (ideas.json, the usage ledger, ...) is changed.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

/// Write `bytes` to `path` atomically: a temporary file in the same directory is
/// written, flushed to disk and renamed over the target, so readers see either the
/// old or the new content, never a mix.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> std::io::Result<()> {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let mut builder = tempfile::Builder::new();
    builder.prefix(".aisci-").suffix(".tmp");
    // A new file gets the mode any program would give it (0666 less the umask), not the
    // temporary file's 0600.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        builder.permissions(std::fs::Permissions::from_mode(0o666));
    }
    let mut tmp = builder.tempfile_in(dir)?;
    tmp.write_all(bytes)?;
    tmp.as_file().sync_all()?;
    // Keep the permissions of the file being replaced.
    if let Ok(meta) = std::fs::metadata(path) {
        let _ = std::fs::set_permissions(tmp.path(), meta.permissions());
    }
    tmp.persist(path).map_err(|e| e.error)?;
    Ok(())
}

/// Temporary files of a writer that died (killed mid-write) are removed once this old.
const STALE_TMP: Duration = Duration::from_secs(10 * 60);

/// Changes a file that other tasks and other aisci processes may change too: under an
/// advisory lock (`flock` on its [`lock_path`], held across processes), the file
/// is read again (`None` when it does not exist), `change` makes the new content from what
/// is there now (`Ok(None)`: leave it), and the result replaces it atomically. So two
/// writers never lose each other's changes, whatever they read before.
pub fn update_shared<T, E>(
    path: &Path,
    change: impl FnOnce(Option<String>) -> Result<(Option<String>, T), E>,
) -> Result<T, E>
where
    E: From<std::io::Error>,
{
    let _lock = lock_beside(path)?;
    remove_stale_temp_files(path);
    let current = match std::fs::read_to_string(path) {
        Ok(t) => Some(t),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => None,
        Err(e) => return Err(e.into()),
    };
    let (new, out) = change(current)?;
    if let Some(new) = new {
        write_atomic(path, new.as_bytes())?;
    }
    Ok(out)
}

/// The lock file of `path`: `<name>.lock` in the `.aisci` folder beside it (in that folder
/// itself for files already in one), so a project gains no stray files.
pub fn lock_path(path: &Path) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path.parent().unwrap_or(Path::new("."));
    let locks = if dir.file_name().is_some_and(|n| n == ".aisci") {
        dir.to_path_buf()
    } else {
        dir.join(".aisci")
    };
    locks.join(format!("{name}.lock"))
}

/// Holds an exclusive `flock` on the lock file of `path` until dropped. Each call opens
/// the lock file anew, so tasks of one process exclude each other as processes do.
fn lock_beside(path: &Path) -> std::io::Result<std::fs::File> {
    let lock = lock_path(path);
    if let Some(dir) = lock.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir)?;
    }
    let file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(false)
        .write(true)
        .open(&lock)?;
    rustix::fs::flock(&file, rustix::fs::FlockOperation::LockExclusive)?;
    Ok(file)
}

/// Removes `write_atomic`'s temporary files beside `path` that a killed writer left.
fn remove_stale_temp_files(path: &Path) {
    let dir = match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    };
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        if !(name.starts_with(".aisci-") && name.ends_with(".tmp")) {
            continue;
        }
        let old = e
            .metadata()
            .and_then(|m| m.modified())
            .ok()
            .and_then(|t| SystemTime::now().duration_since(t).ok())
            .is_some_and(|age| age > STALE_TMP);
        if old {
            let _ = std::fs::remove_file(e.path());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_new_file_gets_the_umask_mode_and_a_replaced_one_keeps_its_own() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        // What the umask gives a file any program creates.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "x").unwrap();
        let new = dir.path().join("new");
        write_atomic(&new, b"x").unwrap();
        assert_eq!(
            mode(&new),
            mode(&plain),
            "the umask's mode, not the temporary file's 0600"
        );
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o640)).unwrap();
        write_atomic(&plain, b"y").unwrap();
        assert_eq!(mode(&plain), 0o640);
    }

    #[test]
    fn concurrent_writers_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ledger.txt");
        let writers: Vec<_> = (0..4)
            .map(|w| {
                let p = p.clone();
                std::thread::spawn(move || {
                    for i in 0..25 {
                        update_shared::<_, std::io::Error>(&p, |cur| {
                            let mut t = cur.unwrap_or_default();
                            t.push_str(&format!("{w}-{i}\n"));
                            Ok((Some(t), ()))
                        })
                        .unwrap();
                    }
                })
            })
            .collect();
        for w in writers {
            w.join().unwrap();
        }
        let text = std::fs::read_to_string(&p).unwrap();
        assert_eq!(text.lines().count(), 100);
        for w in 0..4 {
            for i in 0..25 {
                assert!(text.lines().any(|l| l == format!("{w}-{i}")));
            }
        }
    }

    #[test]
    fn stale_temp_files_are_removed_and_fresh_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let stale = dir.path().join(".aisci-dead.tmp");
        let fresh = dir.path().join(".aisci-live.tmp");
        std::fs::write(&stale, "x").unwrap();
        std::fs::write(&fresh, "x").unwrap();
        let old = SystemTime::now() - Duration::from_secs(3600);
        std::fs::File::options()
            .write(true)
            .open(&stale)
            .unwrap()
            .set_modified(old)
            .unwrap();
        update_shared::<_, std::io::Error>(&dir.path().join("f"), |_| Ok((Some("1".into()), ()))).unwrap();
        assert!(!stale.exists() && fresh.exists());
    }

    #[test]
    fn replaces_content_and_leaves_no_temp_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ideas.json");
        std::fs::write(&p, "old").unwrap();
        write_atomic(&p, b"new").unwrap();
        assert_eq!(std::fs::read_to_string(&p).unwrap(), "new");
        let names: Vec<_> = std::fs::read_dir(dir.path())
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names.len(), 1, "{names:?}");
    }
}
