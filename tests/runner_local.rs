//! LocalRunner against real `python3` processes.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use aisci::runner::{self, traceback, ExitKind, LocalRunner, ResourceLimits, RunError, RunSpec, Runner};
use tokio_util::sync::CancellationToken;

use crate::support::fs::fixtures;

const CAP: u64 = 1 << 20;

fn fixture(name: &str) -> String {
    fixtures()
        .join("runner")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn spec(dir: &Path, script: &str, timeout: Duration) -> RunSpec {
    RunSpec {
        program: "python3".into(),
        args: vec![fixture(script)],
        cwd: dir.to_path_buf(),
        timeout,
        stdout_path: dir.join("stdout.txt"),
        stderr_path: dir.join("stderr.txt"),
        env: vec![],
        watch_dir: None,
    }
}

async fn run(runner: &LocalRunner, spec: &RunSpec) -> runner::RunOutcome {
    runner.run(spec, &CancellationToken::new()).await.unwrap()
}

/// Gone, or a zombie waiting for init: either way no longer running.
fn gone(pid: u32) -> bool {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .ok()
            .and_then(|s| s.rsplit_once(')').map(|(_, r)| r.trim_start().chars().next()))
            .flatten();
        if matches!(state, None | Some('Z') | Some('X')) {
            return true;
        }
        if Instant::now() > deadline {
            return false;
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

fn pids(dir: &Path) -> Vec<u32> {
    let text = std::fs::read_to_string(dir.join("pids.txt")).expect("pids.txt written");
    text.split_whitespace().map(|p| p.parse().unwrap()).collect()
}

#[tokio::test]
async fn success_captures_both_streams() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "ok.py", Duration::from_secs(20));
    s.args.push("--out_dir=run_1".into());
    let out = run(&LocalRunner::new(CAP), &s).await;
    assert_eq!(out.exit, ExitKind::Success);
    assert_eq!(out.stdout_tail, "training done\n");
    assert_eq!(out.stderr_tail, "a warning on stderr\n");
    assert_eq!(out.stdout_bytes, 14);
    assert_eq!(
        std::fs::read_to_string(&s.stdout_path).unwrap(),
        "training done\n"
    );
    assert_eq!(
        std::fs::read_to_string(&s.stderr_path).unwrap(),
        "a warning on stderr\n"
    );
    assert!(dir.path().join("run_1/final_info.json").is_file());
}

#[tokio::test]
async fn failure_has_traceback_at_the_raising_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "raise.py", Duration::from_secs(20));
    let out = run(&LocalRunner::new(CAP), &s).await;
    assert_eq!(out.exit, ExitKind::Failed(1));
    let tb = traceback::parse(&out.stderr_tail).expect("a traceback");
    assert_eq!(tb.error, "ValueError: bad shape (3, 4)");
    let fixtures = fixtures().join("runner");
    let (path, frame) = tb.innermost_in(dir.path(), &fixtures).unwrap();
    assert_eq!(path, PathBuf::from(fixture("raise.py")));
    assert_eq!((frame.line, frame.function.as_deref()), (9, Some("train")));
    let fed_back = runner::tail(&out.stderr_tail, 60);
    assert!(fed_back.starts_with("...") && fed_back.ends_with("ValueError: bad shape (3, 4)\n"));
}

#[tokio::test]
async fn timeout_kills_the_whole_group() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "spawn_and_sleep.py", Duration::from_millis(1500));
    let runner = LocalRunner::new(CAP).with_kill_grace(Duration::from_millis(500));
    let out = run(&runner, &s).await;
    assert_eq!(out.exit, ExitKind::TimedOut);
    assert!(out.elapsed < Duration::from_secs(4), "{:?}", out.elapsed);
    assert_eq!(out.stdout_tail, "descendants started\n");
    let pids = pids(dir.path());
    assert_eq!(pids.len(), 3);
    for pid in pids {
        assert!(gone(pid), "pid {pid} survived the run");
    }
}

#[tokio::test]
async fn cancellation_kills_promptly() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "spawn_and_sleep.py", Duration::from_secs(60));
    let cancel = CancellationToken::new();
    let runner = LocalRunner::new(CAP).with_kill_grace(Duration::from_millis(500));
    let task = {
        let (cancel, s) = (cancel.clone(), s.clone());
        tokio::spawn(async move { runner.run(&s, &cancel).await })
    };
    // Wait until the descendants exist, then cancel.
    let t0 = Instant::now();
    while !dir.path().join("pids.txt").exists() {
        assert!(t0.elapsed() < Duration::from_secs(10));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(50)).await;
    let cancelled_at = Instant::now();
    cancel.cancel();
    let out = task.await.unwrap().unwrap();
    assert_eq!(out.exit, ExitKind::Cancelled);
    // SIGTERM ends the leader at once; the daemon that ignores it goes with the SIGKILL.
    assert!(
        cancelled_at.elapsed() < Duration::from_secs(1),
        "{:?}",
        cancelled_at.elapsed()
    );
    for pid in pids(dir.path()) {
        assert!(gone(pid), "pid {pid} survived the run");
    }
}

#[tokio::test]
async fn huge_output_is_capped_on_disk_and_in_memory() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "flood.py", Duration::from_secs(30));
    let out = run(&LocalRunner::new(CAP), &s).await;
    assert_eq!(out.exit, ExitKind::Success);
    assert_eq!(out.stdout_bytes, 200 * (1 << 20) + 8);
    assert!(out.stdout_tail.len() <= runner::local::TAIL_BYTES);
    assert!(out.stdout_tail.ends_with("THE END\n"));
    let file = std::fs::read(&s.stdout_path).unwrap();
    assert!(file.len() as u64 <= CAP + 200, "{} bytes on disk", file.len());
    let text = String::from_utf8(file).unwrap();
    assert!(text.starts_with("xxxx"));
    assert!(text.contains("[aisci: output truncated,"));
    assert!(text.ends_with("THE END\n"));
    assert_eq!(
        std::fs::read_to_string(&s.stderr_path).unwrap(),
        "stderr is small\n"
    );
}

#[tokio::test]
async fn no_secrets_in_the_environment() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "env_dump.py", Duration::from_secs(20));
    s.env = vec![("CUDA_VISIBLE_DEVICES".into(), "3".into())];
    let base: Vec<(OsString, OsString)> = [
        ("PATH", std::env::var("PATH").unwrap().as_str()),
        ("HOME", "/home/someone"),
        ("LANG", "C.UTF-8"),
        ("CUDA_VISIBLE_DEVICES", "0,1"),
        ("PYTHONDONTWRITEBYTECODE", "1"),
        ("OPENAI_API_KEY", "sk-fake-openai"),
        ("ANTHROPIC_API_KEY", "sk-ant-fake"),
        ("OPENAI_BASE_URL", "https://user:pw@proxy/v1"),
        ("S2_API_KEY", "s2-fake"),
        ("HF_TOKEN", "hf_fake"),
        ("AWS_ACCESS_KEY_ID", "AKIAFAKE"),
        ("DB_PASSWORD", "hunter2"),
        ("AISCI_LOG", "debug"),
        ("WORK_LLM_KEY_VAR", "configured-elsewhere"),
    ]
    .into_iter()
    .map(|(k, v)| (k.into(), v.into()))
    .collect();
    let runner = LocalRunner::new(CAP)
        .with_base_env(base)
        .with_secret_names(["WORK_LLM_KEY_VAR".to_string()]);
    let out = run(&runner, &s).await;
    assert_eq!(out.exit, ExitKind::Success);
    let env: serde_json::Map<String, serde_json::Value> = serde_json::from_str(&out.stdout_tail).unwrap();
    for secret in [
        "OPENAI_API_KEY",
        "ANTHROPIC_API_KEY",
        "OPENAI_BASE_URL",
        "S2_API_KEY",
        "HF_TOKEN",
        "AWS_ACCESS_KEY_ID",
        "DB_PASSWORD",
        "AISCI_LOG",
        "WORK_LLM_KEY_VAR",
    ] {
        assert!(!env.contains_key(secret), "{secret} leaked");
    }
    assert_eq!(env["HOME"], "/home/someone");
    assert_eq!(env["LANG"], "C.UTF-8");
    assert_eq!(env["PYTHONDONTWRITEBYTECODE"], "1");
    assert_eq!(env["CUDA_VISIBLE_DEVICES"], "3", "the spec's variables win");
    assert!(!out.stdout_tail.contains("fake") && !out.stdout_tail.contains("hunter2"));
}

#[tokio::test]
async fn signal_from_inside_is_signaled() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(
        &LocalRunner::new(CAP),
        &spec(dir.path(), "segv.py", Duration::from_secs(20)),
    )
    .await;
    assert_eq!(out.exit, ExitKind::Signaled(11));
}

#[tokio::test]
async fn missing_program_is_a_spawn_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "ok.py", Duration::from_secs(5));
    s.program = "no-such-python-9.9".into();
    let err = LocalRunner::new(CAP)
        .run(&s, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(&err, RunError::Spawn { program, .. } if program == "no-such-python-9.9"));
    assert_eq!(
        err.to_string(),
        "cannot start no-such-python-9.9: no such program: \"no-such-python-9.9\" is not a file and not found on PATH"
    );

    s.program = "python3".into();
    s.cwd = dir.path().join("missing");
    let err = LocalRunner::new(CAP)
        .run(&s, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(err.to_string().contains("working directory"), "{err}");
}

#[tokio::test]
async fn closed_stdout_still_times_out() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "close_stdout.py", Duration::from_secs(1));
    let out = run(&LocalRunner::new(CAP), &s).await;
    assert_eq!(out.exit, ExitKind::TimedOut);
    assert!(out.elapsed < Duration::from_secs(3), "{:?}", out.elapsed);
    assert_eq!(out.stdout_tail, "closing stdout\n");
    assert_eq!(out.stderr_tail, "stdout closed\n");
}

#[tokio::test]
async fn hard_limits_cannot_be_raised() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "limits.py", Duration::from_secs(20));
    let runner = LocalRunner::new(CAP).with_limits(ResourceLimits {
        address_space_bytes: Some(4 << 30),
        file_size_bytes: Some(1 << 20),
    });
    let out = run(&runner, &s).await;
    assert_eq!(out.exit, ExitKind::Failed(1), "{}", out.stderr_tail);
    assert!(!out.stdout_tail.contains("raised"), "{}", out.stdout_tail);
    assert!(
        out.stdout_tail.contains("RLIMIT_FSIZE stays 1048576"),
        "{}",
        out.stdout_tail
    );
    let tb = traceback::parse(&out.stderr_tail).unwrap();
    assert!(tb.error.contains("File too large"), "{}", tb.error);
    assert!(std::fs::metadata(dir.path().join("big.bin")).unwrap().len() <= 1 << 20);
}

#[tokio::test]
async fn real_syntax_error_and_chained_tracebacks() {
    let dir = tempfile::tempdir().unwrap();
    let fixtures = fixtures().join("runner");

    let out = run(
        &LocalRunner::new(CAP),
        &spec(dir.path(), "syntax_error.py", Duration::from_secs(20)),
    )
    .await;
    assert_eq!(out.exit, ExitKind::Failed(1));
    let tb = traceback::parse(&out.stderr_tail).expect(&out.stderr_tail);
    assert_eq!(tb.exception, "SyntaxError");
    let (_, frame) = tb.innermost_in(dir.path(), &fixtures).unwrap();
    assert_eq!((frame.line, frame.function.as_deref()), (3, None));

    let out = run(
        &LocalRunner::new(CAP),
        &spec(dir.path(), "chained.py", Duration::from_secs(20)),
    )
    .await;
    let tb = traceback::parse(&out.stderr_tail).expect(&out.stderr_tail);
    assert_eq!(tb.error, "RuntimeError: could not load the dataset");
    let (_, frame) = tb.innermost_in(dir.path(), &fixtures).unwrap();
    assert_eq!(frame.line, 9);
}

#[tokio::test]
async fn disk_filler_is_stopped_at_the_folder_limit() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "disk_filler.py", Duration::from_secs(60));
    s.watch_dir = Some(dir.path().join("out"));
    let limit = 8 << 20;
    let runner = LocalRunner::new(CAP)
        .with_max_dir_bytes(Some(limit))
        .with_kill_grace(Duration::from_millis(500));
    let t = Instant::now();
    let out = run(&runner, &s).await;
    let took = t.elapsed();
    assert_eq!(
        out.exit,
        ExitKind::LimitExceeded(runner::Limit::RunDirBytes(limit))
    );
    // One poll (1 s) plus the grace: well under the run's own 60 s.
    assert!(took < Duration::from_millis(2500), "{took:?}");
    for pid in pids(dir.path()) {
        assert!(gone(pid), "pid {pid} still running");
    }
    // Nothing writes any more.
    let size = runner::dir_size(&dir.path().join("out"));
    assert!(size > limit);
    std::thread::sleep(Duration::from_millis(300));
    assert_eq!(runner::dir_size(&dir.path().join("out")), size);
    assert_eq!(
        runner::Limit::RunDirBytes(limit).to_string(),
        "run folder exceeded 8388608 bytes"
    );
}

#[tokio::test]
async fn folder_limit_ignores_unwatched_runs_and_small_folders() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "ok.py", Duration::from_secs(20));
    s.args.push("--out_dir=run_1".into());
    s.watch_dir = Some(dir.path().join("run_1"));
    let runner = LocalRunner::new(CAP)
        .with_max_dir_bytes(Some(1 << 20))
        .with_dir_poll(Duration::from_millis(20));
    assert_eq!(run(&runner, &s).await.exit, ExitKind::Success);
}

#[tokio::test]
async fn events_report_the_start_then_live_output() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(dir.path(), "ok.py", Duration::from_secs(20));
    s.args.push("--out_dir=run_1".into());
    let seen = std::sync::Mutex::new(Vec::new());
    let events = |e: runner::RunEvent| seen.lock().unwrap().push(e);
    let out = LocalRunner::new(CAP)
        .run_with(&s, &events, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.exit, ExitKind::Success);
    let seen = seen.into_inner().unwrap();
    let runner::RunEvent::Started(runner::Attachment::Local(att)) = &seen[0] else {
        panic!("first event: {:?}", seen.first())
    };
    assert_eq!(att.boot_id, runner::proc_stat::boot_id());
    assert_eq!(
        att.exit_file.as_deref(),
        Some(dir.path().join(".stdout.txt.exit").as_path())
    );
    assert_eq!(
        std::fs::read_to_string(dir.path().join(".stdout.txt.exit")).unwrap(),
        "0\n"
    );
    let text = |want: runner::Stream| -> String {
        seen.iter()
            .filter_map(|e| match e {
                runner::RunEvent::Output { stream, text } if *stream == want => Some(text.as_str()),
                _ => None,
            })
            .collect()
    };
    assert_eq!(text(runner::Stream::Stdout), "training done\n");
    assert_eq!(text(runner::Stream::Stderr), "a warning on stderr\n");
}

/// A run's processes together may not take more memory than the limit: with a memory
/// control group (this machine's cgroup v1 or v2, as root) the kernel ends it and the run
/// reads as the memory limit; without one, a CPU run's allocations beyond fail.
#[tokio::test]
async fn a_run_over_its_memory_limit_ends_as_the_memory_limit() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(
        dir.path().join("hog.py"),
        "import time\nblocks = []\nfor i in range(64):\n    blocks.append(bytearray(8 << 20))\n    \
         for j in range(0, 8 << 20, 4096): blocks[-1][j] = 1\nprint('allocated 512 MiB', flush=True)\n",
    )
    .unwrap();
    let mut s = spec(dir.path(), "hog.py", Duration::from_secs(60));
    s.args = vec!["hog.py".into()];
    s.env.push(("CUDA_VISIBLE_DEVICES".into(), String::new()));
    let limit = 128u64 << 20;
    let runner = LocalRunner::new(CAP)
        .with_max_processes(Some(64))
        .with_max_memory(Some(limit));
    let out = run(&runner, &s).await;
    assert!(!out.stdout_tail.contains("allocated"), "{}", out.stdout_tail);
    let memory_group =
        aisci::runner::cgroup::hierarchy().is_some_and(|h| h.memory_v2 || h.memory_v1.is_some());
    if memory_group {
        assert_eq!(
            out.exit,
            ExitKind::LimitExceeded(runner::Limit::Memory(limit)),
            "{}",
            out.stderr_tail
        );
    } else {
        assert_eq!(out.exit, ExitKind::Failed(1), "{}", out.stderr_tail);
        assert!(out.stderr_tail.contains("MemoryError"), "{}", out.stderr_tail);
    }
    // Under the limit, the same machinery lets a run through.
    let mut s = spec(dir.path(), "ok.py", Duration::from_secs(20));
    s.args.push("--out_dir=run_1".into());
    assert_eq!(run(&runner, &s).await.exit, ExitKind::Success);
}

/// What a run writes beside its own output folder counts towards the folder limit: the
/// experiment folder (the run is watched as a whole) and its temporary folder.
#[tokio::test]
async fn writing_outside_the_run_folder_counts_towards_the_limit() {
    let dir = tempfile::tempdir().unwrap();
    // Already there before the run: not counted (growth, not size).
    std::fs::write(dir.path().join("dataset.bin"), vec![0u8; 3 << 20]).unwrap();
    for (name, code) in [
        ("beside.py", "import time\nwith open('beside.bin', 'wb') as f:\n    for i in range(64):\n        f.write(b'x' * (1 << 20)); f.flush(); time.sleep(0.02)\ntime.sleep(30)\n"),
        ("tmp.py", "import tempfile, time\nwith tempfile.NamedTemporaryFile(delete=False) as f:\n    for i in range(64):\n        f.write(b'x' * (1 << 20)); f.flush(); time.sleep(0.02)\ntime.sleep(30)\n"),
    ] {
        std::fs::write(dir.path().join(name), code).unwrap();
        let mut s = spec(dir.path(), name, Duration::from_secs(60));
        s.args = vec![name.into()];
        s.watch_dir = Some(dir.path().to_path_buf());
        let runner = LocalRunner::new(CAP)
            .with_max_dir_bytes(Some(8 << 20))
            .with_dir_poll(Duration::from_millis(50))
            .with_kill_grace(Duration::from_millis(200));
        let out = run(&runner, &s).await;
        assert_eq!(
            out.exit,
            ExitKind::LimitExceeded(runner::Limit::RunDirBytes(8 << 20)),
            "{name}: {}",
            out.stderr_tail
        );
        let _ = std::fs::remove_file(dir.path().join("beside.bin"));
    }
    // The temporary folders went with their runs.
    let tmp = dir.path().join(aisci::runner::local::RUN_TMP_DIR);
    assert_eq!(std::fs::read_dir(&tmp).unwrap().count(), 0);
}

/// Each run has a temporary folder of its own (TMPDIR), removed when it ends; run as root
/// outside /tmp, its /tmp is that folder too, so nothing it puts there stays behind.
#[tokio::test]
async fn each_run_gets_its_own_temporary_folder_and_tmp() {
    let base = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    std::fs::create_dir_all(&base).unwrap();
    let dir = tempfile::tempdir_in(&base).unwrap();
    let marker = format!("aisci-test-marker-{}", std::process::id());
    std::fs::write(
        dir.path().join("t.py"),
        format!(
            "import os, tempfile\nprint(os.environ['TMPDIR'])\nprint(tempfile.gettempdir())\n\
             open('/tmp/{marker}', 'w').write('x')\nprint(os.path.exists('/tmp/{marker}'))\n"
        ),
    )
    .unwrap();
    let mut s = spec(dir.path(), "t.py", Duration::from_secs(20));
    s.args = vec!["t.py".into()];
    let out = run(&LocalRunner::new(CAP), &s).await;
    assert_eq!(out.exit, ExitKind::Success, "{}", out.stderr_tail);
    let lines: Vec<&str> = out.stdout_tail.lines().collect();
    let tmpdir = Path::new(lines[0]);
    assert!(
        tmpdir.starts_with(dir.path().join(aisci::runner::local::RUN_TMP_DIR)),
        "{tmpdir:?}"
    );
    assert_eq!(lines[1], lines[0]);
    assert_eq!(lines[2], "True");
    assert!(!tmpdir.exists(), "the run's temporary folder is removed");
    let root = rustix::process::geteuid().is_root();
    let leaked = Path::new("/tmp").join(&marker).exists();
    let _ = std::fs::remove_file(Path::new("/tmp").join(&marker));
    if root {
        assert!(!leaked, "a root run's /tmp is its own");
    }
}
