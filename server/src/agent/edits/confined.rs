//! A folder's files reached only through a handle on the folder, so that a path checked
//! to be inside is the path written. Every path is walked one component at a time with
//! `openat(O_NOFOLLOW)` from the folder's descriptor, and the write happens in the
//! descriptor the walk ended on: a directory swapped for a symlink after the walk cannot
//! carry the write elsewhere, and one swapped during it is seen as a symlink.
//!
//! Symlinks inside the folder still work: a link is read and its target walked the same
//! way (a relative target from the link's directory, an absolute one only when it names
//! a place under the folder), and a target that climbs above the folder is refused.
//! `..` is never opened; it pops the walk's own stack of directories.

use std::ffi::OsString;
use std::io::{self, Read, Write};
use std::os::fd::OwnedFd;
use std::os::unix::ffi::OsStringExt;
use std::os::unix::fs::PermissionsExt;
use std::path::{Component, Path, PathBuf};

use rustix::fs::{AtFlags, FileType, Mode, OFlags};
use rustix::io::Errno;

/// Why a path of the folder cannot be used.
#[derive(Debug)]
pub(crate) enum Refusal {
    /// The path, or a symlink on it, leads outside the folder.
    Outside,
    Io(io::Error),
}

impl From<io::Error> for Refusal {
    fn from(e: io::Error) -> Self {
        Refusal::Io(e)
    }
}

impl From<Errno> for Refusal {
    fn from(e: Errno) -> Self {
        Refusal::Io(e.into())
    }
}

impl std::fmt::Display for Refusal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Refusal::Outside => f.write_str("the path leads outside the folder"),
            Refusal::Io(e) => e.fmt(f),
        }
    }
}

/// Symlinks followed (and retries after a race) in one walk before giving up, as the
/// kernel's own limit does.
const MAX_HOPS: usize = 40;

/// The directory that holds a file, and the file's name in it.
struct Place {
    dir: OwnedFd,
    name: OsString,
}

pub(crate) struct Folder {
    root: OwnedFd,
    /// Canonical, only to tell whether an absolute symlink target is under the folder.
    path: PathBuf,
}

fn push_parts(todo: &mut Vec<OsString>, path: &Path) {
    // `todo` is a stack: the next component is last.
    for c in path.components().rev() {
        match c {
            Component::Normal(p) => todo.push(p.to_os_string()),
            Component::ParentDir => todo.push("..".into()),
            Component::CurDir | Component::RootDir | Component::Prefix(_) => {}
        }
    }
}

fn is_symlink(dir: &OwnedFd, name: &OsString) -> Result<bool, Errno> {
    let st = rustix::fs::statat(dir, name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW)?;
    Ok(FileType::from_raw_mode(st.st_mode) == FileType::Symlink)
}

impl Folder {
    pub(crate) fn open(path: &Path) -> io::Result<Folder> {
        let path = path.canonicalize()?;
        let root = rustix::fs::open(
            &path,
            OFlags::RDONLY | OFlags::DIRECTORY | OFlags::CLOEXEC,
            Mode::empty(),
        )?;
        Ok(Folder { root, path })
    }

    /// Where `rel` lives, every symlink on the way resolved; None when a directory on
    /// the way is missing (with `make_dirs`, missing directories are made instead).
    fn locate(&self, rel: &str, make_dirs: bool) -> Result<Option<Place>, Refusal> {
        let mut dirs: Vec<OwnedFd> = Vec::new();
        let mut todo = Vec::new();
        push_parts(&mut todo, Path::new(rel));
        let mut hops = 0;
        while let Some(part) = todo.pop() {
            if part == ".." {
                dirs.pop().ok_or(Refusal::Outside)?;
                continue;
            }
            let here = dirs.last().unwrap_or(&self.root);
            let symlink = if todo.is_empty() {
                match rustix::fs::statat(here, part.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                    Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::Symlink => true,
                    Ok(_) | Err(Errno::NOENT) => {
                        let dir = here.try_clone()?;
                        return Ok(Some(Place { dir, name: part }));
                    }
                    Err(e) => return Err(e.into()),
                }
            } else {
                let flags = OFlags::RDONLY | OFlags::DIRECTORY | OFlags::NOFOLLOW | OFlags::CLOEXEC;
                match rustix::fs::openat(here, part.as_os_str(), flags, Mode::empty()) {
                    Ok(fd) => {
                        dirs.push(fd);
                        continue;
                    }
                    Err(Errno::NOENT) if make_dirs => {
                        match rustix::fs::mkdirat(here, part.as_os_str(), Mode::from_raw_mode(0o777)) {
                            Ok(()) | Err(Errno::EXIST) => {}
                            Err(e) => return Err(e.into()),
                        }
                        false // open it on the next round
                    }
                    Err(Errno::NOENT) => return Ok(None),
                    // O_DIRECTORY|O_NOFOLLOW on a symlink says ENOTDIR (or ELOOP).
                    Err(e @ (Errno::NOTDIR | Errno::LOOP)) => {
                        if !is_symlink(here, &part)? {
                            return Err(e.into());
                        }
                        true
                    }
                    Err(e) => return Err(e.into()),
                }
            };
            hops += 1;
            if hops > MAX_HOPS {
                return Err(Errno::LOOP.into());
            }
            if !symlink {
                todo.push(part);
                continue;
            }
            let target = match rustix::fs::readlinkat(here, part.as_os_str(), Vec::new()) {
                Ok(t) => PathBuf::from(OsString::from_vec(t.into_bytes())),
                // No longer a link (swapped back meanwhile): look at it again.
                Err(Errno::INVAL) => {
                    todo.push(part);
                    continue;
                }
                Err(e) => return Err(e.into()),
            };
            if target.is_absolute() {
                let rest = target.strip_prefix(&self.path).map_err(|_| Refusal::Outside)?;
                dirs.clear();
                push_parts(&mut todo, rest);
            } else {
                push_parts(&mut todo, &target);
            }
            if todo.is_empty() {
                // The link names the folder itself (or a directory above it was left).
                return Err(Refusal::Outside);
            }
        }
        Err(io::Error::new(io::ErrorKind::InvalidInput, "the path names no file").into())
    }

    /// Whether `rel` can be used at all: Err when it leads outside the folder.
    pub(crate) fn check(&self, rel: &str) -> Result<(), Refusal> {
        self.locate(rel, false).map(drop)
    }

    /// The bytes of file `rel`, or None when it does not exist.
    pub(crate) fn read(&self, rel: &str) -> Result<Option<Vec<u8>>, Refusal> {
        for _ in 0..MAX_HOPS {
            let Some(place) = self.locate(rel, false)? else {
                return Ok(None);
            };
            // NONBLOCK: a FIFO planted in the folder must not hang the read.
            let flags = OFlags::RDONLY | OFlags::NOFOLLOW | OFlags::CLOEXEC | OFlags::NONBLOCK;
            let fd = match rustix::fs::openat(&place.dir, place.name.as_os_str(), flags, Mode::empty()) {
                Ok(fd) => fd,
                Err(Errno::NOENT) => return Ok(None),
                // Became a symlink since the walk: walk again.
                Err(Errno::LOOP) => continue,
                Err(e) => return Err(e.into()),
            };
            if FileType::from_raw_mode(rustix::fs::fstat(&fd)?.st_mode) != FileType::RegularFile {
                return Err(io::Error::new(io::ErrorKind::InvalidInput, "not a regular file").into());
            }
            let mut bytes = Vec::new();
            std::fs::File::from(fd).read_to_end(&mut bytes)?;
            return Ok(Some(bytes));
        }
        Err(Errno::LOOP.into())
    }

    /// `fsutil::write_atomic` inside the folder: a temporary file in the final directory,
    /// written, flushed to disk and renamed over `rel` in that same directory. A new file
    /// gets 0666 less the umask, a replaced one keeps its mode. Missing directories are
    /// made.
    pub(crate) fn write_atomic(&self, rel: &str, bytes: &[u8]) -> Result<(), Refusal> {
        let place = self
            .locate(rel, true)?
            .ok_or_else(|| io::Error::from(io::ErrorKind::NotFound))?;
        let kept_mode =
            match rustix::fs::statat(&place.dir, place.name.as_os_str(), AtFlags::SYMLINK_NOFOLLOW) {
                Ok(st) if FileType::from_raw_mode(st.st_mode) == FileType::RegularFile => {
                    Some(st.st_mode & 0o7777)
                }
                _ => None,
            };
        let (tmp_name, fd) = temp_file(&place.dir)?;
        let written = (|| -> io::Result<()> {
            let mut file = std::fs::File::from(fd);
            file.write_all(bytes)?;
            if let Some(mode) = kept_mode {
                file.set_permissions(std::fs::Permissions::from_mode(mode))?;
            }
            file.sync_all()?;
            // rename replaces whatever is at the name (a symlink too) in this directory.
            rustix::fs::renameat(
                &place.dir,
                tmp_name.as_os_str(),
                &place.dir,
                place.name.as_os_str(),
            )?;
            Ok(())
        })();
        if written.is_err() {
            let _ = rustix::fs::unlinkat(&place.dir, tmp_name.as_os_str(), AtFlags::empty());
        }
        Ok(written?)
    }

    /// Removes file `rel`; a file already gone is fine.
    pub(crate) fn remove(&self, rel: &str) -> Result<(), Refusal> {
        let Some(place) = self.locate(rel, false)? else {
            return Ok(());
        };
        match rustix::fs::unlinkat(&place.dir, place.name.as_os_str(), AtFlags::empty()) {
            Ok(()) | Err(Errno::NOENT) => Ok(()),
            Err(e) => Err(e.into()),
        }
    }
}

/// A new temporary file in `dir`, named as `fsutil`'s (`.aisci-*.tmp`) so that its
/// clean-up of dead writers' files finds it too.
fn temp_file(dir: &OwnedFd) -> io::Result<(OsString, OwnedFd)> {
    let flags = OFlags::WRONLY | OFlags::CREATE | OFlags::EXCL | OFlags::NOFOLLOW | OFlags::CLOEXEC;
    loop {
        let name = OsString::from(format!(".aisci-{:016x}.tmp", rand::random::<u64>()));
        match rustix::fs::openat(dir, name.as_os_str(), flags, Mode::from_raw_mode(0o666)) {
            Ok(fd) => return Ok((name, fd)),
            Err(Errno::EXIST) => continue,
            Err(e) => return Err(e.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn folder() -> (tempfile::TempDir, std::path::PathBuf, Folder) {
        let outer = tempfile::tempdir().unwrap();
        let root = outer.path().join("idea");
        std::fs::create_dir(&root).unwrap();
        let f = Folder::open(&root).unwrap();
        (outer, root, f)
    }

    #[test]
    fn links_inside_are_followed_and_links_out_refused() {
        let (outer, root, f) = folder();
        std::fs::create_dir(root.join("real")).unwrap();
        std::fs::write(root.join("real/a.py"), "a\n").unwrap();
        std::fs::write(outer.path().join("secret.py"), "s\n").unwrap();
        let link = |target: &Path, name: &str| std::os::unix::fs::symlink(target, root.join(name)).unwrap();
        link(Path::new("real"), "rel_dir");
        link(&root.join("real"), "abs_dir");
        link(Path::new("real/a.py"), "file_link.py");
        link(Path::new("../secret.py"), "up.py");
        link(Path::new("real/../../secret.py"), "sneaky.py");
        link(&outer.path().join("secret.py"), "abs_out.py");
        link(Path::new("."), "here");
        for p in ["rel_dir/a.py", "abs_dir/a.py", "file_link.py", "here/real/a.py"] {
            assert_eq!(f.read(p).unwrap().as_deref(), Some(&b"a\n"[..]), "{p}");
        }
        for p in ["up.py", "sneaky.py", "abs_out.py", "here/up.py"] {
            assert!(matches!(f.read(p), Err(Refusal::Outside)), "{p}");
            assert!(matches!(f.write_atomic(p, b"x"), Err(Refusal::Outside)), "{p}");
        }
        assert_eq!(
            std::fs::read_to_string(outer.path().join("secret.py")).unwrap(),
            "s\n"
        );
        // Writing through a link to a file inside changes the file and keeps the link.
        f.write_atomic("file_link.py", b"b\n").unwrap();
        assert_eq!(std::fs::read_to_string(root.join("real/a.py")).unwrap(), "b\n");
        assert!(std::fs::symlink_metadata(root.join("file_link.py"))
            .unwrap()
            .file_type()
            .is_symlink());
    }

    #[test]
    fn writes_make_directories_keep_modes_and_leave_no_temp_files() {
        let (_outer, root, f) = folder();
        assert_eq!(f.read("a/b/c.txt").unwrap(), None);
        f.write_atomic("a/b/c.txt", b"1").unwrap();
        assert_eq!(std::fs::read(root.join("a/b/c.txt")).unwrap(), b"1");
        let plain = root.join("plain");
        std::fs::write(&plain, "x").unwrap();
        let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode(&root.join("a/b/c.txt")), mode(&plain), "0666 less the umask");
        std::fs::set_permissions(&plain, std::fs::Permissions::from_mode(0o640)).unwrap();
        f.write_atomic("plain", b"y").unwrap();
        assert_eq!(
            (mode(&plain), std::fs::read(&plain).unwrap()),
            (0o640, b"y".to_vec())
        );
        f.remove("plain").unwrap();
        f.remove("plain").unwrap();
        assert!(!plain.exists());
        let names: Vec<_> = std::fs::read_dir(root.join("a/b"))
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(names, ["c.txt"]);
    }

    #[test]
    fn a_file_on_the_way_or_a_fifo_is_an_error_not_a_hang() {
        let (_outer, root, f) = folder();
        std::fs::write(root.join("file"), "x").unwrap();
        assert!(matches!(f.read("file/x"), Err(Refusal::Io(_))));
        assert!(matches!(f.write_atomic("file/x", b""), Err(Refusal::Io(_))));
        rustix::fs::mkfifoat(&f.root, "pipe", Mode::from_raw_mode(0o644)).unwrap();
        assert!(matches!(f.read("pipe"), Err(Refusal::Io(_))));
    }
}
