//! A control group per run: a process-count limit the kernel enforces even for root, and a
//! way to find (and kill) every process of a run, including one that left its process
//! group with `setsid`.
//!
//! Works with the `pids` controller of cgroup v2 (needs `pids` in the root's
//! `cgroup.subtree_control`) or of cgroup v1. aisci keeps its groups under an `aisci`
//! parent at the root of that hierarchy, named `aisci-<aisci pid>-<n>`, and never touches
//! any other group.
//!
//! Where the machine also offers the `memory` controller (in the same v2 group, or v1's own
//! `memory` hierarchy, where a group of the same name is made), the run's memory is capped
//! too, swap included, and the kernel's OOM kills inside the group are counted so that the
//! run's end can be reported as the memory limit rather than as a bare SIGKILL.

use std::ffi::CString;
use std::io::Write;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::OnceLock;
use std::time::Duration;

use rustix::process::{Pid, Signal};

use super::proc_stat;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

/// Where aisci's groups live on this machine.
#[derive(Debug)]
pub struct Hierarchy {
    pub version: Version,
    /// The mount point of the hierarchy (made read-only for experiments run as root).
    pub mount: PathBuf,
    /// `<mount>/aisci`.
    pub parent: PathBuf,
    /// v1 only: the `aisci` parent in the separate `memory` hierarchy. (On v2 the memory
    /// controller lives in the same groups: see `memory_v2`.)
    pub memory_v1: Option<PathBuf>,
    /// v2: whether `memory` is enabled for aisci's groups.
    pub memory_v2: bool,
}

/// The usable hierarchy, found (and the `aisci` parent made) once per process; None when
/// this machine gives aisci no writable `pids` controller.
pub fn hierarchy() -> Option<&'static Hierarchy> {
    static H: OnceLock<Option<Hierarchy>> = OnceLock::new();
    H.get_or_init(|| {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").ok()?;
        let controllers =
            |mount: &Path| std::fs::read_to_string(mount.join("cgroup.controllers")).unwrap_or_default();
        let found = find(&mountinfo, controllers).and_then(|(version, mount)| {
            let parent = mount.join("aisci");
            match prepare(version, &mount, &parent) {
                Ok(()) => {
                    let (memory_v1, memory_v2) = match version {
                        Version::V2 => (
                            None,
                            enable(&mount, "memory")
                                .and_then(|()| enable(&parent, "memory"))
                                .is_ok(),
                        ),
                        Version::V1 => (memory_v1_parent(&mountinfo), false),
                    };
                    Some(Hierarchy {
                        version,
                        mount,
                        parent,
                        memory_v1,
                        memory_v2,
                    })
                }
                Err(e) => {
                    tracing::debug!(mount = %mount.display(), %e, "cgroup hierarchy not usable");
                    None
                }
            }
        });
        if let Some(h) = &found {
            remove_stale(&h.parent);
            if let Some(m) = &h.memory_v1 {
                remove_stale(m);
            }
        }
        found
    })
    .as_ref()
}

/// The `pids` hierarchy from `/proc/self/mountinfo`: v2 when its root offers `pids` (as
/// `controllers` of its mount point says), else v1.
fn find(mountinfo: &str, controllers: impl Fn(&Path) -> String) -> Option<(Version, PathBuf)> {
    let mut v1 = None;
    for m in cgroup_mounts(mountinfo) {
        match m.fstype {
            "cgroup2" if controllers(&m.mount).split_whitespace().any(|c| c == "pids") => {
                return Some((Version::V2, m.mount));
            }
            "cgroup" if m.has_option("pids") => {
                v1.get_or_insert((Version::V1, m.mount));
            }
            _ => {}
        }
    }
    v1
}

/// One control-group file system of `/proc/self/mountinfo`.
struct CgroupMount<'a> {
    mount: PathBuf,
    fstype: &'a str,
    /// The super options (`rw,pids` for a v1 hierarchy).
    options: &'a str,
}

impl CgroupMount<'_> {
    fn has_option(&self, name: &str) -> bool {
        self.options.split(',').any(|o| o == name)
    }
}

/// The cgroup and cgroup2 mounts of `mountinfo`, only those mounted from their hierarchy's
/// root: paths in /proc/<pid>/cgroup are relative to it.
fn cgroup_mounts(mountinfo: &str) -> impl Iterator<Item = CgroupMount<'_>> {
    mountinfo.lines().filter_map(|line| {
        let (pre, post) = line.split_once(" - ")?;
        let pre: Vec<&str> = pre.split(' ').collect();
        let post: Vec<&str> = post.split(' ').collect();
        let (root, mount, fstype) = (*pre.get(3)?, *pre.get(4)?, *post.first()?);
        (root == "/" && fstype.starts_with("cgroup")).then(|| CgroupMount {
            mount: PathBuf::from(unescape(mount)),
            fstype,
            options: post.get(2).copied().unwrap_or(""),
        })
    })
}

/// mountinfo escapes spaces and the like as `\ooo`.
fn unescape(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\' && i + 3 < b.len() && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c)) {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// v1's `memory` hierarchy (mounted from its root) with aisci's parent made in it; None
/// where there is none or it is not writable.
fn memory_v1_parent(mountinfo: &str) -> Option<PathBuf> {
    let mount = cgroup_mounts(mountinfo)
        .find(|m| m.fstype == "cgroup" && m.has_option("memory"))?
        .mount;
    let parent = mount.join("aisci");
    match std::fs::create_dir(&parent) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => {
            tracing::debug!(mount = %mount.display(), %e, "memory cgroup not usable");
            None
        }
        _ => Some(parent),
    }
}

fn prepare(version: Version, mount: &Path, parent: &Path) -> std::io::Result<()> {
    if version == Version::V2 {
        enable(mount, "pids")?;
    }
    match std::fs::create_dir(parent) {
        Err(e) if e.kind() != std::io::ErrorKind::AlreadyExists => return Err(e),
        _ => {}
    }
    if version == Version::V2 {
        enable(parent, "pids")?;
    }
    Ok(())
}

/// v2: lets the children of `dir` use `controller` (e.g. have a `pids.max`).
fn enable(dir: &Path, controller: &str) -> std::io::Result<()> {
    let control = dir.join("cgroup.subtree_control");
    let on = std::fs::read_to_string(&control)?;
    if on.split_whitespace().any(|c| c == controller) {
        return Ok(());
    }
    std::fs::OpenOptions::new()
        .write(true)
        .open(&control)?
        .write_all(format!("+{controller}").as_bytes())
}

/// Removes the empty groups of aisci processes that no longer exist (a non-empty group
/// cannot be removed, so a run still alive keeps its group for re-attaching).
fn remove_stale(parent: &Path) {
    let me = std::process::id();
    let Ok(entries) = std::fs::read_dir(parent) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some((owner, _)) = parse_name(&name.to_string_lossy()) else {
            continue;
        };
        if owner != me && proc_stat::stat(owner as i32).is_none() {
            let _ = std::fs::remove_dir(e.path());
        }
    }
}

/// `aisci-<pid>-<n>` → (pid, n).
fn parse_name(name: &str) -> Option<(u32, u64)> {
    let (pid, n) = name.strip_prefix("aisci-")?.split_once('-')?;
    Some((pid.parse().ok()?, n.parse().ok()?))
}

/// One run's group.
#[derive(Debug)]
pub struct RunCgroup {
    path: PathBuf,
    version: Version,
    /// `<path>/cgroup.procs`, ready for the forked child (no allocation there).
    procs_file: CString,
    /// Where the memory limit is kept: `path` itself on v2, the group of the same name in
    /// the memory hierarchy on v1; None when the run's memory is not capped by a group.
    memory: Option<PathBuf>,
    /// v1: `<memory>/cgroup.procs`, for the child to join as well.
    memory_procs: Option<CString>,
}

impl RunCgroup {
    /// A new group for one run, allowing at most `max_processes` processes and threads and,
    /// where the machine has a memory controller aisci may use, `max_memory` bytes (see
    /// [`RunCgroup::memory_limit`] for whether it holds).
    pub fn create(max_processes: Option<u32>, max_memory: Option<u64>) -> std::io::Result<Self> {
        static NEXT: AtomicU64 = AtomicU64::new(0);
        let h = hierarchy().ok_or_else(|| std::io::Error::other("no usable cgroup hierarchy"))?;
        let path = loop {
            let n = NEXT.fetch_add(1, Ordering::Relaxed);
            let path = h.parent.join(format!("aisci-{}-{n}", std::process::id()));
            match std::fs::create_dir(&path) {
                Ok(()) => break path,
                // Left by an earlier aisci that had this pid: take the next number.
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => return Err(e),
            }
        };
        let mut group = Self::at(path, h.version)?;
        let pids = max_processes.map_or_else(|| "max".to_string(), |n| n.to_string());
        if let Err(e) = std::fs::write(group.path.join("pids.max"), pids) {
            group.remove();
            return Err(e);
        }
        if let Some(bytes) = max_memory {
            if let Err(e) = group.limit_memory(h, bytes) {
                tracing::debug!(%e, "no memory limit from a control group");
                group.remove_memory();
            }
        }
        Ok(group)
    }

    /// Caps the group's memory, swap included where the kernel counts it.
    fn limit_memory(&mut self, h: &Hierarchy, bytes: u64) -> std::io::Result<()> {
        let bytes = bytes.to_string();
        if h.memory_v2 {
            std::fs::write(self.path.join("memory.max"), &bytes)?;
            let swap = self.path.join("memory.swap.max");
            if swap.exists() {
                std::fs::write(swap, "0")?;
            }
            self.memory = Some(self.path.clone());
            return Ok(());
        }
        let Some(parent) = &h.memory_v1 else {
            return Err(std::io::Error::other("no memory controller"));
        };
        let dir = parent.join(self.path.file_name().expect("groups have names"));
        std::fs::create_dir(&dir)?;
        self.memory = Some(dir.clone());
        std::fs::write(dir.join("memory.limit_in_bytes"), &bytes)?;
        // memory + swap: only where swap accounting is on; must not be below the limit.
        let memsw = dir.join("memory.memsw.limit_in_bytes");
        if memsw.exists() {
            std::fs::write(memsw, &bytes)?;
        }
        self.memory_procs = Some(
            CString::new(dir.join("cgroup.procs").as_os_str().as_bytes()).map_err(std::io::Error::other)?,
        );
        Ok(())
    }

    /// The memory limit the group holds, if it holds one.
    pub fn memory_limit(&self) -> Option<u64> {
        let dir = self.memory.as_ref()?;
        let file = match self.version {
            Version::V2 => "memory.max",
            Version::V1 => "memory.limit_in_bytes",
        };
        std::fs::read_to_string(dir.join(file)).ok()?.trim().parse().ok()
    }

    /// How many processes of the group the kernel killed for going over its memory limit.
    pub fn oom_kills(&self) -> u64 {
        let Some(dir) = &self.memory else { return 0 };
        let file = match self.version {
            Version::V2 => "memory.events",
            Version::V1 => "memory.oom_control",
        };
        std::fs::read_to_string(dir.join(file))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("oom_kill ").and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0)
    }

    /// v1: the run's group in the memory hierarchy, removed (once empty).
    fn remove_memory(&mut self) {
        self.memory_procs = None;
        if let Some(dir) = self.memory.take() {
            if dir != self.path {
                remove_dir_retrying(&dir);
            }
        }
    }

    /// The group of an earlier run, from its attachment: only one of aisci's own groups
    /// (under the `aisci` parent, named as aisci names them); None otherwise.
    pub fn existing(path: &Path) -> Option<Self> {
        let h = hierarchy()?;
        let name = path.file_name()?.to_str()?;
        if path.parent()? != h.parent || parse_name(name).is_none() || !path.is_dir() {
            return None;
        }
        let mut group = Self::at(path.to_path_buf(), h.version).ok()?;
        if h.memory_v2 && path.join("memory.max").exists() {
            group.memory = Some(path.to_path_buf());
        } else if let Some(dir) = h.memory_v1.as_ref().map(|m| m.join(name)).filter(|d| d.is_dir()) {
            group.memory = Some(dir);
        }
        Some(group)
    }

    fn at(path: PathBuf, version: Version) -> std::io::Result<Self> {
        let procs_file =
            CString::new(path.join("cgroup.procs").as_os_str().as_bytes()).map_err(std::io::Error::other)?;
        Ok(Self {
            path,
            version,
            procs_file,
            memory: None,
            memory_procs: None,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Moves the calling process into the group. Async-signal-safe: for `pre_exec`.
    pub fn join_self(&self) -> std::io::Result<()> {
        use rustix::fs::{open, Mode, OFlags};
        let fd = open(
            self.procs_file.as_c_str(),
            OFlags::WRONLY | OFlags::CLOEXEC,
            Mode::empty(),
        )
        .map_err(errno)?;
        // "0" names the writing process itself, in v1 and v2 alike.
        rustix::io::write(&fd, b"0").map_err(errno)?;
        if let Some(procs) = &self.memory_procs {
            let fd =
                open(procs.as_c_str(), OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).map_err(errno)?;
            rustix::io::write(&fd, b"0").map_err(errno)?;
        }
        Ok(())
    }

    /// The processes in the group now.
    pub fn procs(&self) -> Vec<i32> {
        std::fs::read_to_string(self.path.join("cgroup.procs"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .collect()
    }

    /// The group's process limit, and how often a fork failed at it (`pids.events`).
    pub fn limit_hits(&self) -> (Option<u64>, u64) {
        let max = std::fs::read_to_string(self.path.join("pids.max"))
            .ok()
            .and_then(|s| s.trim().parse().ok());
        let hits = std::fs::read_to_string(self.path.join("pids.events"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| l.strip_prefix("max ").and_then(|n| n.trim().parse().ok()))
            .unwrap_or(0);
        (max, hits)
    }

    /// Kills every process in the group (blocking; bounded). True when it is empty after.
    pub fn kill_all(&self) -> bool {
        let kill_file = self.path.join("cgroup.kill");
        if self.version == Version::V2 && kill_file.exists() {
            let _ = std::fs::write(&kill_file, "1");
        }
        for round in 0..400 {
            let procs = self.procs();
            if procs.is_empty() {
                return true;
            }
            for pid in procs {
                self.kill_member(pid);
            }
            std::thread::sleep(Duration::from_millis(if round < 20 { 2 } else { 10 }));
        }
        self.procs().is_empty()
    }

    /// SIGKILL to `pid` only if it is still in this group: the pidfd pins the process, so
    /// the check and the signal are about the same one even if the pid were reused.
    fn kill_member(&self, pid: i32) {
        let Some(p) = Pid::from_raw(pid) else { return };
        let Ok(fd) = rustix::process::pidfd_open(p, rustix::process::PidfdFlags::empty()) else {
            return;
        };
        if self.has_member(pid) {
            let _ = rustix::process::pidfd_send_signal(&fd, Signal::KILL);
        }
    }

    /// Whether `/proc/<pid>/cgroup` puts `pid` in this group.
    pub fn has_member(&self, pid: i32) -> bool {
        let Some(name) = self.path.file_name().and_then(|n| n.to_str()) else {
            return false;
        };
        let suffix = format!("/aisci/{name}");
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            return false;
        };
        text.lines().any(|l| {
            let mut parts = l.splitn(3, ':');
            let (_, controllers, path) = (
                parts.next(),
                parts.next().unwrap_or(""),
                parts.next().unwrap_or(""),
            );
            let right = match self.version {
                Version::V2 => controllers.is_empty(),
                Version::V1 => controllers.split(',').any(|c| c == "pids"),
            };
            right && path.ends_with(&suffix)
        })
    }

    /// Removes the group (once empty; retried briefly while the kernel lets go of it).
    pub fn remove(&self) {
        if let Some(dir) = self.memory.as_ref().filter(|d| **d != self.path) {
            remove_dir_retrying(dir);
        }
        remove_dir_retrying(&self.path);
    }
}

fn remove_dir_retrying(dir: &Path) {
    for _ in 0..50 {
        match std::fs::remove_dir(dir) {
            Ok(()) => return,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return,
            Err(_) => std::thread::sleep(Duration::from_millis(10)),
        }
    }
    tracing::warn!(cgroup = %dir.display(), "could not remove the run's control group");
}

fn errno(e: rustix::io::Errno) -> std::io::Error {
    std::io::Error::from_raw_os_error(e.raw_os_error())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_v2_before_v1_and_skips_empty_v2() {
        let info = "39 31 0:36 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n\
                    41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n\
                    42 31 0:38 /sub /x rw - cgroup cgroup rw,pids\n";
        // A cgroup2 without the pids controller (as on hybrid machines): v1's is used.
        assert_eq!(
            find(info, |_| "cpu memory".into()),
            Some((Version::V1, PathBuf::from("/sys/fs/cgroup/pids")))
        );
        assert_eq!(
            find(info, |m| if m == Path::new("/sys/fs/cgroup/unified") {
                "cpu pids".into()
            } else {
                String::new()
            }),
            Some((Version::V2, PathBuf::from("/sys/fs/cgroup/unified")))
        );
        assert_eq!(
            find("1 2 3:4 / /a rw - ext4 /dev/x rw\n", |_| String::new()),
            None
        );
    }

    #[test]
    fn names() {
        assert_eq!(parse_name("aisci-123-4"), Some((123, 4)));
        assert_eq!(parse_name("aisci-x-4"), None);
        assert_eq!(parse_name("user.slice"), None);
        assert_eq!(unescape("/a\\040b"), "/a b");
    }
}
