//! What `/proc` says about a process: enough to tell a run's process from a stranger that
//! got its pid later (start time in clock ticks since boot, and the boot it belongs to).

use std::sync::OnceLock;

/// One process as `/proc/<pid>/stat` describes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ProcStat {
    /// Field 3: `R`, `S`, `Z` (zombie), ...
    pub state: char,
    /// Field 4: the parent.
    pub ppid: i32,
    /// Field 5: the process group.
    pub pgid: i32,
    /// Field 22: start time in clock ticks after boot.
    pub start_ticks: u64,
}

impl ProcStat {
    /// Still running (a zombie has ended and only waits to be reaped).
    pub fn is_running(&self) -> bool {
        !matches!(self.state, 'Z' | 'X' | 'x')
    }
}

/// `/proc/<pid>/stat`, or None when there is no such process (or it cannot be read).
pub fn stat(pid: i32) -> Option<ProcStat> {
    if pid <= 0 {
        return None;
    }
    parse_stat(&std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses a `stat` line. The command name (field 2) is in parentheses and may itself hold
/// spaces and parentheses, so the fields after it are found from its *last* `)`.
pub fn parse_stat(line: &str) -> Option<ProcStat> {
    let (_, rest) = line.rsplit_once(')')?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // `rest` starts at field 3.
    let field = |n: usize| fields.get(n - 3).copied();
    Some(ProcStat {
        state: field(3)?.chars().next()?,
        ppid: field(4)?.parse().ok()?,
        pgid: field(5)?.parse().ok()?,
        start_ticks: field(22)?.parse().ok()?,
    })
}

/// The running process `pid` if it started at `start_ticks`; None if it is gone, a zombie
/// or a different process that reuses the pid.
pub fn same_running(pid: i32, start_ticks: u64) -> Option<ProcStat> {
    stat(pid).filter(|s| s.start_ticks == start_ticks && s.is_running())
}

/// This boot's id (`/proc/sys/kernel/random/boot_id`), read once; "" when unreadable.
pub fn boot_id() -> &'static str {
    static ID: OnceLock<String> = OnceLock::new();
    ID.get_or_init(|| {
        std::fs::read_to_string("/proc/sys/kernel/random/boot_id")
            .map(|s| s.trim().to_owned())
            .unwrap_or_default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comm_with_spaces_and_parens() {
        let line =
            "4242 (my (weird) ) name) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 10\n";
        let s = parse_stat(line).unwrap();
        assert_eq!(
            s,
            ProcStat {
                state: 'S',
                ppid: 1,
                pgid: 4242,
                start_ticks: 987654
            }
        );
        assert!(s.is_running());
        assert!(parse_stat("12 (x) Z 1").is_none());
        assert!(parse_stat("garbage").is_none());
    }

    #[test]
    fn this_process() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(s.is_running());
        // The state letter may change between two reads (R while on a core, S otherwise).
        let again = same_running(me, s.start_ticks).expect("this process, still running");
        assert_eq!((again.pgid, again.start_ticks), (s.pgid, s.start_ticks));
        assert_eq!(same_running(me, s.start_ticks + 1), None);
        assert_eq!(boot_id().len(), 36);
    }
}
