//! Hostile and unlucky experiments against the real LocalRunner: each is contained or
//! reported, nothing of the run is left running afterwards, and no process aisci did not
//! start is touched. Also: runs that outlive the aisci that started them, and re-attaching.
//!
//! These tests need a writable `pids` control group (cgroup v1 or v2); they say so and fail
//! where there is none rather than pass without checking.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisci::runner::{
    cgroup, proc_stat, Attachment, ExitKind, Limit, LocalAttachment, LocalRunner, RunError, RunEvent,
    RunOutcome, RunSpec, Runner, Stream,
};
use tokio_util::sync::CancellationToken;

const CAP: u64 = 1 << 20;

fn spec(dir: &Path, script: &str, timeout: Duration) -> RunSpec {
    std::fs::write(dir.join("experiment.py"), script).unwrap();
    RunSpec {
        program: "python3".into(),
        args: vec!["experiment.py".into()],
        cwd: dir.to_path_buf(),
        timeout,
        stdout_path: dir.join("stdout.txt"),
        stderr_path: dir.join("stderr.txt"),
        env: vec![],
        watch_dir: None,
    }
}

fn runner(max_processes: u32) -> LocalRunner {
    assert!(
        cgroup::hierarchy().is_some(),
        "these tests need a writable pids control group (cgroup v1 or v2)"
    );
    LocalRunner::new(CAP)
        .with_max_processes(Some(max_processes))
        .with_kill_grace(Duration::from_millis(500))
}

/// Runs `spec`, keeping the attachment it reported.
async fn run(runner: &LocalRunner, spec: &RunSpec) -> (RunOutcome, LocalAttachment) {
    let att = Mutex::new(None);
    let events = |e: RunEvent| {
        if let RunEvent::Started(Attachment::Local(a)) = e {
            *att.lock().unwrap() = Some(a);
        }
    };
    let out = runner
        .run_with(spec, &events, &CancellationToken::new())
        .await
        .unwrap();
    let att = att.lock().unwrap().take().expect("a Started event");
    (out, att)
}

/// Processes still running (not zombies) in the group named by `att`.
fn live_in_cgroup(att: &LocalAttachment) -> Vec<i32> {
    let name = att
        .cgroup
        .as_ref()
        .expect("the run had a control group")
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let suffix = format!("/aisci/{name}");
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(text) = std::fs::read_to_string(format!("/proc/{pid}/cgroup")) else {
            continue;
        };
        if text.lines().any(|l| l.ends_with(&suffix)) && proc_stat::stat(pid).is_some_and(|s| s.is_running())
        {
            found.push(pid);
        }
    }
    found
}

/// Running processes in the run's process group.
fn live_in_group(pgid: i32) -> Vec<i32> {
    let mut found = Vec::new();
    for e in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = e.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        if proc_stat::stat(pid).is_some_and(|s| s.pgid == pgid && s.is_running()) {
            found.push(pid);
        }
    }
    found
}

fn running(pid: i32) -> bool {
    proc_stat::stat(pid).is_some_and(|s| s.is_running())
}

/// Nothing of the run is left: no process in its group or control group, the control group
/// removed, and every pid the run wrote to `pids.txt` gone.
fn assert_nothing_left(dir: &Path, att: &LocalAttachment) {
    let deadline = Instant::now() + Duration::from_secs(3);
    loop {
        let (g, c) = (live_in_group(att.pid), live_in_cgroup(att));
        let listed: Vec<i32> = std::fs::read_to_string(dir.join("pids.txt"))
            .unwrap_or_default()
            .split_whitespace()
            .filter_map(|p| p.parse().ok())
            .filter(|p| running(*p))
            .collect();
        if g.is_empty() && c.is_empty() && listed.is_empty() {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "left running: group {g:?}, cgroup {c:?}, listed {listed:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        !att.cgroup.as_ref().unwrap().exists(),
        "the control group was removed"
    );
}

/// A process the test starts itself: no cleanup may touch it.
struct Stranger(Child);

impl Stranger {
    fn start() -> Self {
        Stranger(Command::new("sleep").arg("60").spawn().unwrap())
    }
    fn pid(&self) -> i32 {
        self.0.id() as i32
    }
    fn assert_alive(&mut self) {
        assert!(
            self.0.try_wait().unwrap().is_none(),
            "a process aisci did not start was killed"
        );
    }
}

impl Drop for Stranger {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[tokio::test]
async fn fork_bomb_is_held_at_the_process_limit_and_fully_killed() {
    let mut stranger = Stranger::start();
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        r#"
import os, sys, time
failed = 0
while True:
    try:
        if os.fork() == 0:
            continue  # every child forks on too
    except OSError:
        failed += 1
        if failed == 1:
            print("fork failed at the limit", flush=True)
        time.sleep(0.01)
"#,
        Duration::from_secs(5),
    );
    let t = Instant::now();
    let (out, att) = run(&runner(40), &s).await;
    assert_eq!(out.exit, ExitKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(
        out.stdout_tail.contains("fork failed at the limit"),
        "{}",
        out.stdout_tail
    );
    assert!(
        out.stderr_tail
            .contains("[aisci: the run hit its limit of 40 processes (run.max_processes);"),
        "{}",
        out.stderr_tail
    );
    assert!(std::fs::read_to_string(&s.stderr_path)
        .unwrap()
        .contains("hit its limit of 40 processes"));
    assert_nothing_left(dir.path(), &att);
    stranger.assert_alive();
    // The machine still starts processes.
    assert!(Command::new("true").status().unwrap().success());
}

const SHELL_BOMB: &str = r#"
bomb() { bomb | bomb & }
bomb &
while read l; do case $l in *:pids:*) v1=${l##*:};; 0::*) v2=${l#0::};; esac; done < /proc/self/cgroup
p=${v1:-$v2}
until read m < "$PIDS_MOUNT$p/pids.events" && [ "$m" != "max 0" ]; do :; done
echo started
"#;

#[tokio::test]
async fn shell_fork_bomb_left_behind_by_its_leader_is_killed() {
    let mut stranger = Stranger::start();
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "", Duration::from_secs(20));
    // The experiment's own process starts the bomb with its one fork, waits with builtins
    // only (a fork of its own would fail at the limit) until its control group says the
    // limit was hit, and ends; the bomb goes on until aisci ends it.
    s.program = "sh".into();
    s.args = vec!["-c".into(), SHELL_BOMB.into()];
    s.env = vec![(
        "PIDS_MOUNT".into(),
        cgroup::hierarchy()
            .expect("a pids control group")
            .mount
            .to_string_lossy()
            .into_owned(),
    )];
    let (out, att) = run(&runner(30), &s).await;
    assert_eq!(out.exit, ExitKind::Success, "{}", out.stderr_tail);
    assert_eq!(out.stdout_tail, "started\n");
    assert!(
        out.stderr_tail.contains("hit its limit of 30 processes"),
        "{}",
        out.stderr_tail
    );
    assert_nothing_left(dir.path(), &att);
    stranger.assert_alive();
}

#[tokio::test]
async fn infinite_loop_is_killed_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "import os\nopen('pids.txt', 'w').write(str(os.getpid()))\nwhile True:\n    pass\n",
        Duration::from_millis(1500),
    );
    let t = Instant::now();
    let (out, att) = run(&runner(64), &s).await;
    assert_eq!(out.exit, ExitKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_nothing_left(dir.path(), &att);
}

#[tokio::test]
async fn a_script_that_execs_itself_forever_ends_at_the_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        r#"
import os, sys, time
with open("pids.txt", "a") as f:
    f.write(f"{os.getpid()} ")
n = int(sys.argv[1]) if len(sys.argv) > 1 else 0
time.sleep(0.05)
os.execv(sys.executable, [sys.executable, "experiment.py", str(n + 1)])
"#,
        Duration::from_millis(1500),
    );
    let (out, att) = run(&runner(64), &s).await;
    assert_eq!(out.exit, ExitKind::TimedOut);
    assert_nothing_left(dir.path(), &att);
}

#[tokio::test]
async fn a_detached_setsid_relaunch_is_killed_with_the_run() {
    let mut stranger = Stranger::start();
    let dir = tempfile::tempdir().unwrap();
    // Each generation starts the next in a new session (out of the process group, the way
    // a daemon escapes), records its pid, and exits: the run's own process ends at once.
    let s = spec(
        dir.path(),
        r#"
import os, subprocess, sys, time
with open("pids.txt", "a") as f:
    f.write(f"{os.getpid()} ")
gen = int(sys.argv[1]) if len(sys.argv) > 1 else 0
if gen < 3:
    subprocess.Popen([sys.executable, "experiment.py", str(gen + 1)], start_new_session=True,
                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if gen == 0:
        while len(open("pids.txt").read().split()) < 4:  # the whole chain is up
            time.sleep(0.02)
        print("relaunched", flush=True)
else:
    time.sleep(60)
"#,
        Duration::from_secs(20),
    );
    let (out, att) = run(&runner(64), &s).await;
    assert_eq!(out.exit, ExitKind::Success);
    assert_eq!(out.stdout_tail, "relaunched\n");
    let pids: Vec<i32> = std::fs::read_to_string(dir.path().join("pids.txt"))
        .unwrap()
        .split_whitespace()
        .map(|p| p.parse().unwrap())
        .collect();
    assert_eq!(pids.len(), 4, "all generations started: {pids:?}");
    assert_nothing_left(dir.path(), &att);
    stranger.assert_alive();
}

#[tokio::test]
async fn disk_filler_and_output_flood_stop_at_the_folder_limit() {
    for (name, script) in [
        (
            "file",
            "import os\nos.makedirs('out', exist_ok=True)\nf = open('out/fill.bin', 'wb')\nwhile True:\n    f.write(b'x' * (1 << 20)); f.flush()\n",
        ),
        ("stdout", "import sys\nwhile True:\n    sys.stdout.write('y' * 65536)\n"),
        // Logs outside the watched folder count too.
        ("stdout elsewhere", "import os, sys\nos.makedirs('out', exist_ok=True)\nwhile True:\n    sys.stdout.write('y' * 65536)\n"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), script, Duration::from_secs(60));
        s.watch_dir = Some(if name == "stdout elsewhere" {
            dir.path().join("out")
        } else {
            dir.path().to_path_buf()
        });
        let limit = 5 << 20;
        let runner = runner(64)
            .with_max_dir_bytes(Some(limit))
            .with_dir_poll(Duration::from_millis(50));
        let t = Instant::now();
        let (out, att) = run(&runner, &s).await;
        assert_eq!(out.exit, ExitKind::LimitExceeded(Limit::RunDirBytes(limit)), "{name}");
        // Far below the run's own 60 s, so the limit ended it (slack for a loaded machine).
        assert!(t.elapsed() < Duration::from_secs(10), "{name}: {:?}", t.elapsed());
        assert_nothing_left(dir.path(), &att);
        let size = aisci::runner::dir_size(dir.path());
        std::thread::sleep(Duration::from_millis(200));
        assert_eq!(aisci::runner::dir_size(dir.path()), size, "{name}: nothing writes any more");
        // The log is cut to the output cap once the run is over.
        assert!(std::fs::metadata(&s.stdout_path).unwrap().len() <= CAP + 200, "{name}");
        if name != "file" {
            assert!(out.stdout_bytes > limit / 2, "{}", out.stdout_bytes);
            assert!(std::fs::read_to_string(&s.stdout_path).unwrap().contains("[aisci: output truncated,"));
        }
    }
}

#[tokio::test]
async fn a_script_cannot_lift_its_own_limits() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("aisci.toml"), "[experiment]\ntimeout_secs = 2\n").unwrap();
    let s = spec(
        dir.path(),
        r#"
import os, resource, time
def write(path, text):
    with open(path, "w") as f:
        f.write(text)
def attempt(what, f):
    try:
        f()
        print(f"{what}: ALLOWED", flush=True)
    except OSError as e:
        print(f"{what}: denied ({e.__class__.__name__})", flush=True)
    except ValueError as e:
        print(f"{what}: denied (ValueError)", flush=True)

# Its own time limit and process limit, as a project file would set them.
write("aisci.toml", "[experiment]\ntimeout_secs = 999999\n[run]\nmax_processes = 100000\n")
for res in (resource.RLIMIT_NPROC, resource.RLIMIT_FSIZE, resource.RLIMIT_AS):
    soft, hard = resource.getrlimit(res)
    if hard != resource.RLIM_INFINITY:
        attempt(f"raise rlimit {res}", lambda: resource.setrlimit(res, (resource.RLIM_INFINITY, resource.RLIM_INFINITY)))
line = [l for l in open("/proc/self/cgroup").read().splitlines() if ":pids:" in l or l.startswith("0::")][0]
rel = line.split(":", 2)[2]
mount = os.environ["PIDS_MOUNT"]
attempt("write pids.max", lambda: write(mount + rel + "/pids.max", "max"))
attempt("leave the cgroup", lambda: write(mount + "/cgroup.procs", str(os.getpid())))
attempt("remount", lambda: (_ for _ in ()).throw(OSError()) if os.system(f"mount -o remount,rw {mount} 2>/dev/null") else None)
started = 0
for i in range(60):
    try:
        if os.fork() == 0:
            time.sleep(30); os._exit(0)
        started += 1
    except OSError:
        break
print(f"children started: {started}", flush=True)
time.sleep(30)
"#,
        Duration::from_secs(6),
    );
    let mut s = s;
    let h = cgroup::hierarchy().expect("a pids control group");
    s.env = vec![("PIDS_MOUNT".into(), h.mount.to_string_lossy().into_owned())];
    let runner = runner(20).with_limits(aisci::runner::ResourceLimits {
        address_space_bytes: None,
        file_size_bytes: Some(64 << 20),
    });
    let t = Instant::now();
    let (out, att) = run(&runner, &s).await;
    assert_eq!(out.exit, ExitKind::TimedOut, "{}", out.stderr_tail);
    assert!(t.elapsed() < Duration::from_secs(12), "{:?}", t.elapsed());
    let text = &out.stdout_tail;
    assert!(!text.contains("ALLOWED"), "{text}");
    for what in ["raise rlimit 1", "write pids.max", "leave the cgroup", "remount"] {
        assert!(text.contains(&format!("{what}: denied")), "{what}: {text}");
    }
    // 20 in all: python itself, and 19 children at most.
    let started: u32 = text
        .lines()
        .find_map(|l| l.strip_prefix("children started: "))
        .expect(text)
        .parse()
        .unwrap();
    assert!(started <= 19, "{started} children with a limit of 20");
    assert_nothing_left(dir.path(), &att);
}

#[tokio::test]
async fn killed_by_its_own_signal_is_signaled() {
    for (sig, name) in [(9, "SIGKILL"), (11, "SIGSEGV"), (15, "SIGTERM")] {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(
            dir.path(),
            &format!("import os, signal\nprint('before', flush=True)\nos.kill(os.getpid(), signal.{name})\n"),
            Duration::from_secs(20),
        );
        let (out, att) = run(&runner(64), &s).await;
        assert_eq!(out.exit, ExitKind::Signaled(sig), "{name}");
        assert_eq!(out.stdout_tail, "before\n");
        assert_eq!(out.stderr_tail, "", "{name}: the leader adds nothing to stderr");
        assert_eq!(
            std::fs::read_to_string(att.exit_file.unwrap()).unwrap(),
            format!("{}\n", 128 + sig)
        );
    }
}

#[tokio::test]
async fn no_network_when_disabled() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let script = format!(
        "import socket\ntry:\n    socket.create_connection(('127.0.0.1', {port}), timeout=3).close()\n    print('connected')\nexcept OSError as e:\n    print('failed', e.errno)\n"
    );
    for network in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        let s = spec(dir.path(), &script, Duration::from_secs(20));
        let out = runner(64)
            .with_network(network)
            .run(&s, &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(out.exit, ExitKind::Success, "{}", out.stderr_tail);
        if network {
            assert_eq!(out.stdout_tail, "connected\n");
        } else {
            assert!(out.stdout_tail.starts_with("failed"), "{}", out.stdout_tail);
        }
    }
}

// ---- Runs that outlive aisci, and re-attaching ----

const HELPER_DIR: &str = "AISCI_FAULTS_HELPER_DIR";

/// Not a test: the "aisci" that the resumption tests start and `kill -9`. It runs
/// `experiment.py` in the folder named by the variable and writes the run's attachment
/// to `attachment.json` there as soon as it exists.
#[test]
#[ignore = "helper process for the resumption tests"]
fn helper_aisci_process() {
    let dir = PathBuf::from(std::env::var_os(HELPER_DIR).expect("run by the resumption tests only"));
    let s = RunSpec {
        program: "python3".into(),
        args: vec!["experiment.py".into()],
        cwd: dir.clone(),
        timeout: Duration::from_secs(30),
        stdout_path: dir.join("stdout.txt"),
        stderr_path: dir.join("stderr.txt"),
        env: vec![],
        watch_dir: Some(dir.clone()),
    };
    let rt = tokio::runtime::Runtime::new().unwrap();
    let events = |e: RunEvent| {
        if let RunEvent::Started(a) = e {
            let tmp = dir.join("attachment.json.tmp");
            std::fs::write(&tmp, serde_json::to_vec(&a).unwrap()).unwrap();
            std::fs::rename(&tmp, dir.join("attachment.json")).unwrap();
        }
    };
    let out = rt.block_on(runner(64).run_with(&s, &events, &CancellationToken::new()));
    println!("helper saw the end: {out:?}");
}

/// Starts the helper "aisci" on `dir` (this test binary, running only
/// [`helper_aisci_process`], by its full name), waits for the attachment, and returns both.
fn start_helper(dir: &Path) -> (Child, LocalAttachment) {
    let child = Command::new(std::env::current_exe().unwrap())
        .args([
            "runner_faults::helper_aisci_process",
            "--exact",
            "--ignored",
            "--nocapture",
            "--test-threads=1",
        ])
        .env(HELPER_DIR, dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let t = Instant::now();
    let path = dir.join("attachment.json");
    while !path.exists() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "the helper never started the run"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    let att: Attachment = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
    let Attachment::Local(att) = att else {
        panic!("{att:?}")
    };
    (child, att)
}

fn kill_9(mut child: Child) {
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
}

fn helper_spec(dir: &Path) -> RunSpec {
    RunSpec {
        program: "python3".into(),
        args: vec!["experiment.py".into()],
        cwd: dir.to_path_buf(),
        timeout: Duration::from_secs(30),
        stdout_path: dir.join("stdout.txt"),
        stderr_path: dir.join("stderr.txt"),
        env: vec![],
        watch_dir: Some(dir.to_path_buf()),
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t = Instant::now();
    while !cond() {
        assert!(
            t.elapsed() < Duration::from_secs(20),
            "timed out waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[tokio::test]
async fn a_run_outlives_a_killed_aisci_and_is_reattached() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("experiment.py"),
        "import time\nfor i in range(16):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.2)\nraise SystemExit(3)\n",
    )
    .unwrap();
    let (helper, att) = start_helper(dir.path());
    let stdout = dir.path().join("stdout.txt");
    let ticks = || {
        std::fs::read_to_string(&stdout)
            .unwrap_or_default()
            .lines()
            .count()
    };
    wait_for("the first ticks", || ticks() >= 2);
    kill_9(helper);
    let after_kill = ticks();
    // The run goes on printing without the aisci that started it.
    wait_for("ticks after aisci died", || ticks() >= after_kill + 2);
    assert!(running(att.pid));
    assert_eq!(att.boot_id, proc_stat::boot_id());
    assert!(att.deadline_unix_ms > 0 && att.cgroup.is_some() && att.exit_file.is_some());

    let seen = Arc::new(Mutex::new(String::new()));
    let events = {
        let seen = seen.clone();
        move |e: RunEvent| {
            if let RunEvent::Output {
                stream: Stream::Stdout,
                text,
            } = e
            {
                seen.lock().unwrap().push_str(&text);
            }
        }
    };
    let out = runner(64)
        .reattach(
            &Attachment::Local(att.clone()),
            &helper_spec(dir.path()),
            &events,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit, ExitKind::Failed(3));
    assert!(
        out.stdout_tail.starts_with("tick 0\n") && out.stdout_tail.ends_with("tick 15\n"),
        "{}",
        out.stdout_tail
    );
    assert_eq!(out.stdout_bytes, std::fs::metadata(&stdout).unwrap().len());
    assert!(
        seen.lock().unwrap().ends_with("tick 15\n"),
        "live output after re-attaching"
    );
    assert!(out.elapsed >= Duration::from_secs(2), "{:?}", out.elapsed);
    assert_nothing_left(dir.path(), &att);
}

#[tokio::test]
async fn a_reattached_run_still_ends_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("experiment.py"),
        "import os, time\nopen('pids.txt', 'w').write(str(os.getpid()))\nprint('up', flush=True)\ntime.sleep(60)\n",
    )
    .unwrap();
    let (helper, mut att) = start_helper(dir.path());
    wait_for("the run", || dir.path().join("pids.txt").exists());
    kill_9(helper);
    // As if the run had been started with a 1.5 s limit.
    att.deadline_unix_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64
        + 1500;
    let t = Instant::now();
    let out = runner(64)
        .reattach(
            &Attachment::Local(att.clone()),
            &helper_spec(dir.path()),
            &aisci::runner::NoEvents,
            &CancellationToken::new(),
        )
        .await
        .unwrap();
    assert_eq!(out.exit, ExitKind::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(4), "{:?}", t.elapsed());
    assert_eq!(out.stdout_tail, "up\n");
    assert_nothing_left(dir.path(), &att);
}

#[tokio::test]
async fn a_run_that_ended_unwatched_gives_its_status_and_one_without_status_is_lost() {
    for keep_exit_file in [true, false] {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("experiment.py"),
            "import time\ntime.sleep(0.3)\nprint('done', flush=True)\nraise SystemExit(5)\n",
        )
        .unwrap();
        let (helper, att) = start_helper(dir.path());
        kill_9(helper);
        let exit_file = att.exit_file.clone().unwrap();
        wait_for("the exit file", || exit_file.exists());
        wait_for("the leader's end", || !running(att.pid));
        if !keep_exit_file {
            std::fs::remove_file(&exit_file).unwrap();
        }
        let got = runner(64)
            .reattach(
                &Attachment::Local(att.clone()),
                &helper_spec(dir.path()),
                &aisci::runner::NoEvents,
                &CancellationToken::new(),
            )
            .await;
        if keep_exit_file {
            let out = got.unwrap();
            assert_eq!(out.exit, ExitKind::Failed(5));
            assert_eq!(out.stdout_tail, "done\n");
            assert!(
                out.elapsed >= Duration::from_millis(300) && out.elapsed < Duration::from_secs(30),
                "{:?}",
                out.elapsed
            );
        } else {
            let err = got.unwrap_err();
            assert!(
                matches!(&err, RunError::Lost(m) if m.contains("ended while aisci was not running and left no exit status")),
                "{err}"
            );
        }
        assert_nothing_left(dir.path(), &att);
    }
}

#[tokio::test]
async fn a_reused_or_foreign_pid_is_never_signalled() {
    let dir = tempfile::tempdir().unwrap();
    let s = helper_spec(dir.path());
    // A stranger that leads its own process group, so a stray killpg would reach it.
    let mut stranger = {
        use std::os::unix::process::CommandExt;
        Stranger(Command::new("sleep").arg("60").process_group(0).spawn().unwrap())
    };
    let ticks = proc_stat::stat(stranger.pid()).unwrap().start_ticks;
    let now_ms = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_millis() as u64;
    // A control group aisci did not make (not named as aisci names its own), holding the
    // stranger: a record naming it must not get it killed.
    let h = cgroup::hierarchy().expect("a pids control group");
    let foreign = h.parent.join(format!("foreign-{}", std::process::id()));
    std::fs::create_dir(&foreign).unwrap();
    std::fs::write(foreign.join("cgroup.procs"), stranger.pid().to_string()).unwrap();
    for (start_ticks, cgroup) in [(ticks + 1, None), (ticks, None), (ticks, Some(foreign.clone()))] {
        // Wrong start time (the pid was reused), then the right one but not a run's leader
        // (a record that names some other process); the deadline has passed either way.
        let att = LocalAttachment {
            pid: stranger.pid(),
            start_ticks,
            boot_id: proc_stat::boot_id().to_owned(),
            deadline_unix_ms: now_ms,
            exit_file: Some(dir.path().join(".stdout.txt.exit")),
            cgroup,
            tmp_dir: None,
        };
        let err = runner(64)
            .reattach(
                &Attachment::Local(att),
                &s,
                &aisci::runner::NoEvents,
                &CancellationToken::new(),
            )
            .await
            .unwrap_err();
        assert!(matches!(err, RunError::Lost(_)), "{err}");
        std::thread::sleep(Duration::from_millis(100));
        stranger.assert_alive();
    }
    // Another boot: nothing is even looked at.
    let att = LocalAttachment {
        pid: stranger.pid(),
        start_ticks: ticks,
        boot_id: "another-boot".into(),
        deadline_unix_ms: now_ms,
        exit_file: None,
        cgroup: Some("/sys/fs/cgroup/pids".into()),
        tmp_dir: None,
    };
    let err = runner(64)
        .reattach(
            &Attachment::Local(att),
            &s,
            &aisci::runner::NoEvents,
            &CancellationToken::new(),
        )
        .await
        .unwrap_err();
    assert!(
        err.to_string().contains("before this machine last booted"),
        "{err}"
    );
    stranger.assert_alive();
    assert!(
        foreign.exists(),
        "a control group aisci did not make is left alone"
    );
    drop(stranger);
    wait_for("the foreign group to empty", || {
        std::fs::remove_dir(&foreign).is_ok()
    });
}

#[tokio::test]
async fn a_log_swapped_for_a_link_costs_the_run_nothing_and_the_target_is_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let elsewhere = tempfile::tempdir().unwrap();
    let victim = elsewhere.path().join("precious.txt");
    std::fs::write(&victim, "keep me\n").unwrap();
    let s = spec(
        dir.path(),
        &format!(
            "import os, sys\nsys.stdout.write('z' * {})\nsys.stdout.write('END\\n')\nsys.stdout.flush()\nos.remove('stdout.txt')\nos.symlink({:?}, 'stdout.txt')\n",
            2 * CAP,
            victim.to_str().unwrap()
        ),
        Duration::from_secs(20),
    );
    let (out, att) = run(&runner(64), &s).await;
    assert_eq!(out.exit, ExitKind::Success, "{}", out.stderr_tail);
    assert!(out.stdout_tail.ends_with("zzzEND\n"));
    assert_eq!(out.stdout_bytes, 2 * CAP + 4);
    assert_eq!(std::fs::read_to_string(&victim).unwrap(), "keep me\n");
    assert!(std::fs::symlink_metadata(&s.stdout_path)
        .unwrap()
        .file_type()
        .is_symlink());
    assert_nothing_left(dir.path(), &att);
}
