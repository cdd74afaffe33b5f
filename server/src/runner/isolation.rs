//! What the forked child does to itself before it runs the experiment: resource limits,
//! joining its control group, leaving the network, and (when it runs as root) losing the
//! means to undo any of it. Everything here runs between `fork` and `exec`, where only
//! async-signal-safe work is allowed: plain system calls (rustix issues them directly),
//! on paths and bytes prepared beforehand; no allocation, no locks.

use std::ffi::CString;
use std::io;
use std::sync::{Arc, OnceLock};

use rustix::io::Errno;
use rustix::thread::{CapabilitySet, UnshareFlags};

use super::cgroup::RunCgroup;

/// Kernel limits set soft = hard: the experiment can lower them, never raise them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Rlimits {
    pub address_space: Option<u64>,
    pub file_size: Option<u64>,
    /// `RLIMIT_NPROC`: only where no control group counts processes and aisci is not root
    /// (it counts all of the user's processes, and root ignores it).
    pub processes: Option<u64>,
}

/// How a child leaves the network.
#[derive(Debug, Clone)]
pub enum NoNetwork {
    /// As root: a new network namespace (only a loopback interface, down).
    Namespace,
    /// Without root: a user namespace mapping only our own ids, then a network namespace.
    UserNamespace { uid_map: Vec<u8>, gid_map: Vec<u8> },
}

impl NoNetwork {
    pub fn for_this_process() -> Self {
        let (uid, gid) = (rustix::process::geteuid(), rustix::process::getegid());
        if uid.is_root() {
            NoNetwork::Namespace
        } else {
            NoNetwork::UserNamespace {
                uid_map: format!("{0} {0} 1\n", uid.as_raw()).into_bytes(),
                gid_map: format!("{0} {0} 1\n", gid.as_raw()).into_bytes(),
            }
        }
    }
}

/// Everything the child applies to itself, prepared in the parent.
#[derive(Debug, Clone, Default)]
pub struct Isolation {
    pub rlimits: Rlimits,
    pub cgroup: Option<Arc<RunCgroup>>,
    pub no_network: Option<NoNetwork>,
    /// As root with a control group: the hierarchy's mount point, remounted read-only in a
    /// mount namespace of the run's own so it can neither raise its limit nor leave.
    pub protect_mount: Option<CString>,
    /// As root: drop the capabilities that would undo the above (see [`DROPPED`]).
    pub drop_capabilities: bool,
    /// As root: this folder (the run's own temporary folder) bound over `/tmp` in the run's
    /// mount namespace, so what it writes to `/tmp` is its own and goes with it.
    pub private_tmp: Option<CString>,
}

/// Capabilities a root experiment loses: remounting and namespaces (`SYS_ADMIN`), raising
/// hard resource limits (`SYS_RESOURCE`), tracing aisci (`SYS_PTRACE`), kernel modules.
const DROPPED: [CapabilitySet; 4] = [
    CapabilitySet::SYS_ADMIN,
    CapabilitySet::SYS_RESOURCE,
    CapabilitySet::SYS_PTRACE,
    CapabilitySet::SYS_MODULE,
];

impl Isolation {
    /// In the forked child. Order matters: the control group first (so everything after
    /// counts), the namespaces while `CAP_SYS_ADMIN` is still held, the capabilities last.
    pub fn apply(&self) -> io::Result<()> {
        use rustix::process::{setrlimit, Resource, Rlimit};
        let set = |resource, value: Option<u64>| match value {
            Some(v) => setrlimit(
                resource,
                Rlimit {
                    current: Some(v),
                    maximum: Some(v),
                },
            )
            .map_err(os),
            None => Ok(()),
        };
        set(Resource::As, self.rlimits.address_space)?;
        set(Resource::Fsize, self.rlimits.file_size)?;
        set(Resource::Nproc, self.rlimits.processes)?;
        if let Some(cg) = &self.cgroup {
            cg.join_self()?;
        }
        if let Some(net) = &self.no_network {
            leave_network(net)?;
        }
        if self.protect_mount.is_some() || self.private_tmp.is_some() {
            use rustix::mount::{mount_change, MountPropagationFlags};
            // SAFETY: the child is single-threaded after fork, which unshare requires.
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNS) }.map_err(os)?;
            mount_change(
                c"/",
                MountPropagationFlags::DOWNSTREAM | MountPropagationFlags::REC,
            )
            .map_err(os)?;
        }
        if let Some(tmp) = &self.private_tmp {
            // Without it the run still has its own TMPDIR; /tmp is then the machine's.
            let _ = rustix::mount::mount_bind(tmp.as_c_str(), c"/tmp");
        }
        if let Some(mount) = &self.protect_mount {
            use rustix::mount::{mount_remount, MountFlags};
            mount_remount(mount.as_c_str(), MountFlags::BIND | MountFlags::RDONLY, c"").map_err(os)?;
        }
        if self.drop_capabilities {
            // Required only where it guards the read-only mount; elsewhere a kernel that
            // refuses still runs the experiment, as it would have run before.
            let dropped = drop_capabilities();
            if self.protect_mount.is_some() {
                dropped.map_err(os)?;
            }
        }
        Ok(())
    }
}

fn leave_network(net: &NoNetwork) -> io::Result<()> {
    match net {
        // SAFETY (both): single-threaded child, see above.
        NoNetwork::Namespace => unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWNET) }.map_err(os),
        NoNetwork::UserNamespace { uid_map, gid_map } => {
            unsafe { rustix::thread::unshare_unsafe(UnshareFlags::NEWUSER | UnshareFlags::NEWNET) }
                .map_err(os)?;
            write_file(c"/proc/self/setgroups", b"deny")?;
            write_file(c"/proc/self/uid_map", uid_map)?;
            write_file(c"/proc/self/gid_map", gid_map)
        }
    }
}

fn write_file(path: &std::ffi::CStr, bytes: &[u8]) -> io::Result<()> {
    use rustix::fs::{open, Mode, OFlags};
    let fd = open(path, OFlags::WRONLY | OFlags::CLOEXEC, Mode::empty()).map_err(os)?;
    rustix::io::write(&fd, bytes).map_err(os)?;
    Ok(())
}

/// Out of the bounding set (so the `exec` of a root program cannot regain them) and out of
/// the inheritable and ambient sets.
fn drop_capabilities() -> Result<(), Errno> {
    for cap in DROPPED {
        rustix::thread::remove_capability_from_bounding_set(cap)?;
    }
    let mut sets = rustix::thread::capabilities(None)?;
    for cap in DROPPED {
        sets.inheritable.remove(cap);
    }
    rustix::thread::set_capabilities(None, sets)?;
    // Not every kernel has ambient capabilities; nothing to clear then.
    let _ = rustix::thread::clear_ambient_capability_set();
    Ok(())
}

fn os(e: Errno) -> io::Error {
    io::Error::from_raw_os_error(e.raw_os_error())
}

/// Whether this machine lets a child leave the network, tried once with `/bin/true`.
pub fn network_isolation() -> Result<(), String> {
    static CHECK: OnceLock<Result<(), String>> = OnceLock::new();
    CHECK
        .get_or_init(|| {
            use std::os::unix::process::CommandExt;
            let net = NoNetwork::for_this_process();
            let mut cmd = std::process::Command::new("/bin/sh");
            cmd.args(["-c", "exit 0"])
                .stdin(std::process::Stdio::null())
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::null());
            // SAFETY: `leave_network` is async-signal-safe (see the module comment).
            unsafe {
                cmd.pre_exec(move || leave_network(&net));
            }
            match cmd.status() {
                Ok(s) if s.success() => Ok(()),
                Ok(s) => Err(format!("a test process in a new network namespace failed ({s})")),
                Err(e) => Err(format!("a new network namespace could not be made ({e})")),
            }
        })
        .clone()
}

/// Whether the mount-namespace protection of a root run's control group works here, tried
/// once; when it does not, runs go without it and aisci says so once.
pub fn mount_protection(mount: &CString) -> bool {
    static CHECK: OnceLock<bool> = OnceLock::new();
    *CHECK.get_or_init(|| {
        use std::os::unix::process::CommandExt;
        let iso = Isolation {
            protect_mount: Some(mount.clone()),
            drop_capabilities: true,
            ..Default::default()
        };
        let mut cmd = std::process::Command::new("/bin/sh");
        cmd.args(["-c", "exit 0"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null());
        // SAFETY: `apply` is async-signal-safe (see the module comment).
        unsafe {
            cmd.pre_exec(move || iso.apply());
        }
        let ok = matches!(cmd.status(), Ok(s) if s.success());
        if !ok {
            tracing::warn!(
                "runs as root can change their own process limit: no private read-only view of {} could be made",
                mount.to_string_lossy()
            );
        }
        ok
    })
}
