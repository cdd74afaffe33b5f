//! GPU slots that belong to the machine, not to one aisci process: every aisci of this user
//! (each editor's server, each CLI command) takes a run's GPU through a lock file per GPU
//! place, `<dir>/gpu-<id>-<k>.lock` for k < `run.runs_per_gpu`, held with `flock` for as
//! long as the run holds its slot. The kernel drops the lock when its holder exits however
//! it exits, so a crashed aisci frees its slots. The holder writes who it is into the file,
//! for the message of a run that waits for it.
//!
//! The folder is `$AISCI_RUNTIME_DIR`, else `$XDG_RUNTIME_DIR/aisci`, else
//! `<temp>/aisci-<uid>`; made private to the user (0700), and refused when it is a link or
//! another user's.

use std::fs::File;
use std::io::Write;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// Where the GPU lock files of this user live, made (0700) when missing.
pub fn default_dir() -> std::io::Result<PathBuf> {
    let dir = match std::env::var_os("AISCI_RUNTIME_DIR") {
        Some(d) if !d.is_empty() => PathBuf::from(d),
        _ => match std::env::var_os("XDG_RUNTIME_DIR") {
            Some(d) if !d.is_empty() => PathBuf::from(d).join("aisci"),
            _ => std::env::temp_dir().join(format!("aisci-{}", rustix::process::geteuid().as_raw())),
        },
    };
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
    {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    let meta = std::fs::symlink_metadata(&dir)?;
    if !meta.is_dir() || meta.uid() != rustix::process::geteuid().as_raw() {
        return Err(std::io::Error::other(format!(
            "{} is not a folder of this user's",
            dir.display()
        )));
    }
    Ok(dir)
}

/// The GPU places of one machine, as lock files in `dir`.
#[derive(Debug, Clone)]
pub struct MachineGpus {
    dir: PathBuf,
    /// Runs one GPU may hold at once (`run.runs_per_gpu`).
    places: u32,
}

/// One GPU place held; given back (the lock dropped) with this value.
#[derive(Debug)]
pub struct Lease {
    _file: File,
}

impl MachineGpus {
    pub fn new(dir: PathBuf, places: u32) -> Self {
        Self {
            dir,
            places: places.max(1),
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A free place on `gpu`, taken at once; Err holds who has the places when none is free.
    pub fn try_take(&self, gpu: &str) -> std::io::Result<Result<Lease, String>> {
        let mut holder = None;
        for k in 0..self.places {
            let path = self.dir.join(format!("gpu-{}-{k}.lock", file_part(gpu)));
            let file = std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .create(true)
                .truncate(false)
                .mode(0o600)
                .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32)
                .open(&path)?;
            match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
                Ok(()) => {
                    write_holder(&file);
                    return Ok(Ok(Lease { _file: file }));
                }
                Err(rustix::io::Errno::WOULDBLOCK) => {
                    if holder.is_none() {
                        holder = Some(read_holder(&path));
                    }
                }
                Err(e) => return Err(e.into()),
            }
        }
        Ok(Err(holder.unwrap_or_default()))
    }
}

/// A GPU id (an index, or a UUID such as `GPU-5f3c…`) as part of a file name.
fn file_part(gpu: &str) -> String {
    gpu.chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// Who holds the lock: pid, command and folder, one line.
fn write_holder(mut file: &File) {
    let args: Vec<String> = std::env::args().take(3).collect();
    let cwd = std::env::current_dir()
        .map(|d| d.display().to_string())
        .unwrap_or_default();
    let line = format!(
        "pid {} ({}) in {cwd}, since {}\n",
        std::process::id(),
        args.join(" "),
        chrono::Local::now().format("%H:%M:%S")
    );
    let _ = file.set_len(0);
    let _ = file.write_all(line.as_bytes());
}

fn read_holder(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let line = text.lines().next().unwrap_or("").trim();
    if line.is_empty() {
        "another aisci process".into()
    } else {
        format!("aisci {line}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_place_is_held_until_its_lease_drops_and_says_who_holds_it() {
        let dir = tempfile::tempdir().unwrap();
        let gpus = MachineGpus::new(dir.path().to_path_buf(), 2);
        let a = gpus.try_take("0").unwrap().expect("first place");
        let b = gpus.try_take("0").unwrap().expect("second place");
        let held = gpus.try_take("0").unwrap().expect_err("both places held");
        assert!(held.contains(&format!("pid {}", std::process::id())), "{held}");
        // Another GPU is not affected.
        let other = gpus.try_take("GPU-1a/2").unwrap().expect("another GPU");
        drop(a);
        // A process another thread forks at this moment shares the lock until it execs
        // (close-on-exec): the place is free again within moments, not necessarily at once.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(2);
        let again = loop {
            match gpus.try_take("0").unwrap() {
                Ok(lease) => break lease,
                Err(held) if std::time::Instant::now() > deadline => panic!("a freed place: {held}"),
                Err(_) => std::thread::sleep(std::time::Duration::from_millis(10)),
            }
        };
        drop((b, again, other));
        assert!(dir.path().join("gpu-GPU-1a_2-0.lock").exists());
    }
}
