//! The process that leads a local run's process group: a small `/bin/sh` script that runs
//! the experiment as its one child, then records the child's exit status in the run's exit
//! file, so that a later aisci learns how a run ended while no aisci watched it.
//!
//! The exit file holds the shell's `$?` in decimal and a newline (`"0\n"`, `"1\n"`,
//! `"139\n"`). The shell creates it with `set -C` (O_EXCL: never through an existing file or
//! link) and writes it with one `printf`; it is read only once the leader has ended, and only
//! a number followed by a newline counts, so a leader killed mid-write leaves no status
//! rather than a wrong one. After the experiment the shell forks nothing (no `mv`, no
//! subshell): processes the run left behind may hold the whole process limit by then.
//!
//! The status follows the shell's rule: `0..=128` are exit codes; `128 + n` for n in
//! 1..=64 means "killed by signal n" (so an experiment that itself exits with 129..=192
//! reads as signalled, as in a terminal); anything else is an exit code.
//!
//! The shell ignores nothing the experiment would inherit: SIGTERM is *trapped* (a trap is
//! reset in the child) so that the group-wide SIGTERM of a timeout ends the experiment while
//! the shell lives on to record it. Its own messages ("Segmentation fault") go to
//! /dev/null; the experiment's stderr is untouched.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::ExitKind;

pub const SHELL: &str = "/bin/sh";
/// `$0` of the script; also how a re-attaching aisci recognises the leader.
pub const NAME: &str = "aisci-run";
/// Arguments: the exit file, then the program and its arguments.
pub const SCRIPT: &str = r#"f=$1; shift; trap : TERM; exec 3>&2 2>/dev/null; (exec "$@" 2>&3 3>&-); s=$?; set -C; printf '%d\n' "$s" > "$f"; exit $s"#;

/// The argument vector of the leader: `sh -c SCRIPT aisci-run EXIT_FILE PROGRAM ARGS...`.
pub fn argv(exit_file: &Path, program: &Path, args: &[String]) -> Vec<std::ffi::OsString> {
    let mut v: Vec<std::ffi::OsString> = vec![
        "-c".into(),
        SCRIPT.into(),
        NAME.into(),
        exit_file.into(),
        program.into(),
    ];
    v.extend(args.iter().map(Into::into));
    v
}

/// Where a run's exit status goes: next to its stdout file, named after it
/// (`run_1/stdout.txt` → `run_1/.stdout.txt.exit`).
pub fn exit_file_for(stdout_path: &Path) -> PathBuf {
    let name = stdout_path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| "stdout".into());
    stdout_path.with_file_name(format!(".{name}.exit"))
}

/// Removes what an earlier run left at `exit_file`, so a new run's status is never
/// confused with an old one (and the new one can be created).
pub fn clear(exit_file: &Path) -> std::io::Result<()> {
    let removed = match std::fs::symlink_metadata(exit_file) {
        // A folder planted there by an earlier experiment (never followed: no links).
        Ok(m) if m.is_dir() => std::fs::remove_dir_all(exit_file),
        Ok(_) => std::fs::remove_file(exit_file),
        Err(_) => Ok(()),
    };
    match removed {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// The status recorded in `exit_file`; None when there is none (or it is not a small
/// regular file holding one number and a newline). Never follows a link.
pub fn read_status(exit_file: &Path) -> Option<i32> {
    use std::os::unix::fs::OpenOptionsExt;
    let mut f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(rustix::fs::OFlags::NOFOLLOW.bits() as i32 | rustix::fs::OFlags::NONBLOCK.bits() as i32)
        .open(exit_file)
        .ok()?;
    if !f.metadata().ok()?.is_file() {
        return None;
    }
    let mut buf = [0u8; 16];
    let mut n = 0;
    while n < buf.len() {
        match f.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(_) => return None,
        }
    }
    let text = std::str::from_utf8(&buf[..n]).ok()?.strip_suffix('\n')?;
    text.parse::<i32>().ok().filter(|s| (0..=255).contains(s))
}

/// How a run ended, from its shell status (see the module comment for the rule).
pub fn exit_kind(status: i32) -> ExitKind {
    match status {
        0 => ExitKind::Success,
        s @ 129..=192 => ExitKind::Signaled(s - 128),
        s => ExitKind::Failed(s),
    }
}

/// Whether `pid`'s command line is a leader started for `exit_file`: a pid that names
/// some other process (reused, or a tampered record) is never treated as the run.
pub fn is_leader(pid: i32, exit_file: &Path) -> bool {
    let Ok(cmdline) = std::fs::read(format!("/proc/{pid}/cmdline")) else {
        return false;
    };
    let mut parts = cmdline.split(|b| *b == 0);
    let expect: [&[u8]; 5] = [
        SHELL.as_bytes(),
        b"-c",
        SCRIPT.as_bytes(),
        NAME.as_bytes(),
        std::os::unix::ffi::OsStrExt::as_bytes(exit_file.as_os_str()),
    ];
    expect.iter().all(|e| parts.next() == Some(*e))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn status_rule() {
        assert_eq!(exit_kind(0), ExitKind::Success);
        assert_eq!(exit_kind(1), ExitKind::Failed(1));
        assert_eq!(exit_kind(128), ExitKind::Failed(128));
        assert_eq!(exit_kind(137), ExitKind::Signaled(9));
        assert_eq!(exit_kind(139), ExitKind::Signaled(11));
        assert_eq!(exit_kind(192), ExitKind::Signaled(64));
        assert_eq!(exit_kind(255), ExitKind::Failed(255));
    }

    #[test]
    fn exit_file_reading_is_strict() {
        let dir = tempfile::tempdir().unwrap();
        let f = exit_file_for(&dir.path().join("stdout.txt"));
        assert_eq!(f, dir.path().join(".stdout.txt.exit"));
        assert_eq!(read_status(&f), None);
        std::fs::write(&f, "139\n").unwrap();
        assert_eq!(read_status(&f), Some(139));
        std::fs::write(&f, "13").unwrap();
        assert_eq!(read_status(&f), None, "no newline: not complete");
        std::fs::write(&f, "999\n").unwrap();
        assert_eq!(read_status(&f), None);
        std::fs::remove_file(&f).unwrap();
        std::fs::write(dir.path().join("real"), "0\n").unwrap();
        std::os::unix::fs::symlink(dir.path().join("real"), &f).unwrap();
        assert_eq!(read_status(&f), None, "a link is not followed");
        clear(&f).unwrap();
        assert!(!f.exists() && dir.path().join("real").exists());
        std::fs::create_dir_all(f.join("planted")).unwrap();
        clear(&f).unwrap();
        assert!(!f.exists());
    }
}
