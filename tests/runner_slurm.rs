//! SlurmRunner against a real single-node Slurm with two fake GPUs (`scripts/slurm-up`).
//! Every test cancels only the jobs it submitted, by id.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisci::config::SlurmSettings;
use aisci::runner::{
    Attachment, ExitKind, RunError, RunEvent, RunEvents, RunOutcome, RunSpec, Runner, SlurmAttachment,
    SlurmRunner, SlurmTools, Stream,
};
use tokio_util::sync::CancellationToken;

use crate::support::fs::tiny_mlp;

/// Tests that ask for GPUs run one at a time: the node has two, and the concurrency test
/// must have both.
static GPUS: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The test cluster's config: `$SLURM_CONF`, else where `scripts/slurm-up` writes it.
/// Fails (never skips) when Slurm does not answer.
fn slurm_conf() -> PathBuf {
    static CHECKED: std::sync::OnceLock<Result<PathBuf, String>> = std::sync::OnceLock::new();
    CHECKED
        .get_or_init(|| {
            let conf = std::env::var_os("SLURM_CONF")
                .map(PathBuf::from)
                .unwrap_or_else(|| {
                    let dir =
                        std::env::var_os("AISCI_SLURM_DIR").unwrap_or_else(|| "/tmp/aisci-slurm".into());
                    Path::new(&dir).join("slurm.conf")
                });
            let hint = "start the test cluster with scripts/slurm-up (as root) and export SLURM_CONF";
            if !conf.is_file() {
                return Err(format!("no Slurm config at {}: {hint}", conf.display()));
            }
            let out = Command::new("timeout")
                .args(["20", "sinfo", "-h", "-o", "%T"])
                .env("SLURM_CONF", &conf)
                .output()
                .map_err(|e| format!("cannot run sinfo ({e}): {hint}"))?;
            let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
            if !out.status.success()
                || !["idle", "mixed", "allocated", "completing"].contains(&state.as_str())
            {
                return Err(format!(
                    "Slurm at {} is not ready (sinfo: {state:?} {}): {hint}",
                    conf.display(),
                    String::from_utf8_lossy(&out.stderr).trim()
                ));
            }
            Ok(conf)
        })
        .clone()
        .unwrap_or_else(|e| panic!("{e}"))
}

fn slurm(args: &[&str]) -> String {
    let out = Command::new("timeout")
        .arg("20")
        .args(args)
        .env("SLURM_CONF", slurm_conf())
        .output()
        .unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Whether Slurm still holds the job on the node or in the queue (squeue lists a job that
/// just ended for a moment with its final state: that is not holding anything).
fn still_queued(job: &str) -> bool {
    let state = slurm(&["squeue", "-h", "-j", job, "-o", "%T"]).trim().to_owned();
    ["PENDING", "CONFIGURING", "RUNNING", "COMPLETING", "SUSPENDED"].contains(&state.as_str())
}

/// `JobState=` of `scontrol show job` (the whole answer when it has none).
fn final_state(job: &str) -> String {
    let text = slurm(&["scontrol", "show", "job", "-o", job]);
    text.split_whitespace()
        .find_map(|w| w.strip_prefix("JobState="))
        .map_or_else(|| format!("no JobState in {text:?}"), str::to_owned)
}

fn runner(gpus: u32) -> SlurmRunner {
    SlurmRunner::new(&SlurmSettings {
        gpus_per_run: gpus,
        poll_ms: 200,
        ..SlurmSettings::default()
    })
    .with_tool_env([("SLURM_CONF".into(), slurm_conf().into_os_string())])
    // As the aisci binary does: the job is contained on the node by `aisci contain`.
    .with_contain_binary(Some(env!("CARGO_BIN_EXE_aisci").into()))
}

/// `exp.py` holding `code` in `dir`, run with output in `dir/run_1`.
fn spec(dir: &Path, code: &str, timeout: Duration) -> RunSpec {
    std::fs::write(dir.join("exp.py"), code).unwrap();
    let run = dir.join("run_1");
    std::fs::create_dir_all(&run).unwrap();
    RunSpec {
        program: "python3".into(),
        args: vec!["exp.py".into(), "--out_dir=run_1".into()],
        cwd: dir.to_path_buf(),
        timeout,
        stdout_path: run.join("stdout.txt"),
        stderr_path: run.join("stderr.txt"),
        env: vec![],
        watch_dir: Some(run),
    }
}

/// Records events, and cancels every job id it saw when dropped (a failed test leaves
/// nothing queued).
#[derive(Default, Clone)]
struct Log {
    events: Arc<Mutex<Vec<(Instant, RunEvent)>>>,
}

impl RunEvents for Log {
    fn on_event(&self, event: RunEvent) {
        self.events.lock().unwrap().push((Instant::now(), event));
    }
}

impl Log {
    fn job_ids(&self) -> Vec<String> {
        let mut ids: Vec<String> = self
            .events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                RunEvent::Started(Attachment::Slurm(a)) => Some(a.job_id.clone()),
                _ => None,
            })
            .collect();
        ids.dedup();
        ids
    }

    fn job_id(&self) -> String {
        let ids = self.job_ids();
        assert_eq!(ids.len(), 1, "one job per run: {ids:?}");
        ids[0].clone()
    }

    fn count(&self, f: impl Fn(&RunEvent) -> bool) -> usize {
        self.events.lock().unwrap().iter().filter(|(_, e)| f(e)).count()
    }

    fn output(&self, stream: Stream) -> String {
        self.events
            .lock()
            .unwrap()
            .iter()
            .filter_map(|(_, e)| match e {
                RunEvent::Output { stream: s, text } if *s == stream => Some(text.as_str()),
                _ => None,
            })
            .collect()
    }
}

impl Drop for Log {
    fn drop(&mut self) {
        if Arc::strong_count(&self.events) == 1 {
            for id in self.job_ids().into_iter().filter(|id| still_queued(id)) {
                let _ = Command::new("scancel")
                    .arg(&id)
                    .env("SLURM_CONF", slurm_conf())
                    .status();
            }
        }
    }
}

async fn wait_for(what: &str, limit: Duration, mut f: impl FnMut() -> bool) {
    let until = Instant::now() + limit;
    while !f() {
        assert!(Instant::now() < until, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn success_and_failure_with_output_in_the_run_folder() {
    let (a, b) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    let ok = spec(
        a.path(),
        "import sys\nprint('hello from slurm', flush=True)\nprint('a warning', file=sys.stderr)\n\
         open('run_1/result.txt', 'w').write('42')\n",
        Duration::from_secs(60),
    );
    let bad = spec(
        b.path(),
        "import sys\nprint('failing')\nsys.stderr.write('boom\\n')\nsys.exit(3)\n",
        Duration::from_secs(60),
    );
    let (la, lb) = (Log::default(), Log::default());
    let r = runner(0);
    let cancel = CancellationToken::new();
    let (oa, ob) = tokio::join!(r.run_with(&ok, &la, &cancel), r.run_with(&bad, &lb, &cancel));
    let (oa, ob) = (oa.unwrap(), ob.unwrap());

    assert_eq!(oa.exit, ExitKind::Success, "{oa:?}");
    assert_eq!(oa.stdout_tail, "hello from slurm\n");
    assert_eq!(oa.stderr_tail, "a warning\n");
    assert_eq!(oa.stdout_bytes, 17);
    assert_eq!(
        std::fs::read_to_string(a.path().join("run_1/stdout.txt")).unwrap(),
        "hello from slurm\n"
    );
    assert_eq!(
        std::fs::read_to_string(a.path().join("run_1/result.txt")).unwrap(),
        "42"
    );
    assert_eq!(oa.cuda_visible_devices, None, "no GPU was asked for");
    assert_eq!(la.output(Stream::Stdout), "hello from slurm\n");
    let job = la.job_id();
    assert_eq!(final_state(&job), "COMPLETED");

    assert_eq!(ob.exit, ExitKind::Failed(3), "{ob:?}");
    assert_eq!(ob.stderr_tail, "boom\n");
    assert_eq!(ob.stdout_tail, "failing\n");
    assert_eq!(final_state(&lb.job_id()), "FAILED");
}

#[tokio::test]
async fn two_gpus_two_runs_at_once_and_the_third_waits() {
    let _gpus = GPUS.lock().await;
    let dirs: Vec<_> = (0..3).map(|_| tempfile::tempdir().unwrap()).collect();
    let code =
        "import os, time\nprint('start', time.time(), os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True)\n\
                time.sleep(4)\nprint('end', time.time(), flush=True)\n";
    let specs: Vec<RunSpec> = dirs
        .iter()
        .map(|d| spec(d.path(), code, Duration::from_secs(60)))
        .collect();
    let logs: Vec<Log> = (0..3).map(|_| Log::default()).collect();
    let r = runner(1);
    let cancel = CancellationToken::new();
    let (o0, o1, o2) = tokio::join!(
        r.run_with(&specs[0], &logs[0], &cancel),
        r.run_with(&specs[1], &logs[1], &cancel),
        r.run_with(&specs[2], &logs[2], &cancel),
    );
    let outcomes: Vec<RunOutcome> = [o0, o1, o2].into_iter().map(Result::unwrap).collect();

    // (start, end, CUDA_VISIBLE_DEVICES seen by the program, as aisci read it back)
    let mut runs: Vec<(f64, f64, String, Option<String>, usize)> = outcomes
        .iter()
        .enumerate()
        .map(|(i, o)| {
            assert_eq!(o.exit, ExitKind::Success, "{o:?}");
            let words: Vec<&str> = o.stdout_tail.split_whitespace().collect();
            assert_eq!((words[0], words[3]), ("start", "end"), "{:?}", o.stdout_tail);
            (
                words[1].parse().unwrap(),
                words[4].parse().unwrap(),
                words[2].to_owned(),
                o.cuda_visible_devices.clone(),
                i,
            )
        })
        .collect();
    runs.sort_by(|x, y| x.0.total_cmp(&y.0));
    for (_, _, seen, read_back, _) in &runs {
        assert!(seen == "0" || seen == "1", "{runs:?}");
        assert_eq!(read_back.as_deref(), Some(seen.as_str()));
    }
    let (first, second, third) = (&runs[0], &runs[1], &runs[2]);
    assert!(second.0 < first.1, "the first two ran at once: {runs:?}");
    assert_ne!(first.2, second.2, "on different GPUs: {runs:?}");
    let freed = first.1.min(second.1);
    assert!(third.0 >= freed - 0.2, "the third waited for a GPU: {runs:?}");
    let waiter = &logs[third.4];
    assert!(waiter.count(|e| matches!(e, RunEvent::Queued { .. })) >= 1);
    // Started once at submission, once when it ran.
    assert_eq!(waiter.count(|e| matches!(e, RunEvent::Started(_))), 2);
    for l in &logs {
        assert!(!still_queued(&l.job_id()));
    }
}

#[tokio::test]
async fn aisci_enforces_the_timeout_to_the_second() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "import time\nprint('working', flush=True)\ntime.sleep(300)\n",
        Duration::from_secs(3),
    );
    let log = Log::default();
    let t0 = Instant::now();
    let out = runner(0)
        .run_with(&s, &log, &CancellationToken::new())
        .await
        .unwrap();
    let took = t0.elapsed();
    assert_eq!(out.exit, ExitKind::TimedOut, "{out:?}");
    assert!(took >= Duration::from_secs(3), "{took:?}");
    // The run itself had its whole limit (Slurm's run time, whole seconds).
    assert!(out.elapsed >= Duration::from_secs(3), "{:?}", out.elapsed);
    // Slurm's own limit is whole minutes; aisci's is seconds (plus queueing and scancel).
    assert!(took < Duration::from_secs(25), "{took:?}");
    assert_eq!(out.stdout_tail, "working\n");
    let job = log.job_id();
    assert!(!still_queued(&job), "nothing left in the queue");
    assert_eq!(final_state(&job), "CANCELLED");
}

#[tokio::test]
async fn cancel_scancels_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "import time\nprint('ready', flush=True)\ntime.sleep(300)\n",
        Duration::from_secs(600),
    );
    let log = Log::default();
    let cancel = CancellationToken::new();
    let r = runner(0);
    let run = r.run_with(&s, &log, &cancel);
    let watcher = async {
        let l = log.clone();
        wait_for("the job's first output", Duration::from_secs(30), || {
            l.output(Stream::Stdout).contains("ready")
        })
        .await;
        cancel.cancel();
    };
    let (out, ()) = tokio::join!(run, watcher);
    let out = out.unwrap();
    assert_eq!(out.exit, ExitKind::Cancelled);
    let job = log.job_id();
    assert!(!still_queued(&job), "nothing left in the queue");
    assert_eq!(final_state(&job), "CANCELLED");
}

#[tokio::test]
async fn sbatch_rejecting_the_job_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "print('never')\n", Duration::from_secs(60));
    let log = Log::default();
    let err = runner(3)
        .run_with(&s, &log, &CancellationToken::new())
        .await
        .unwrap_err();
    match &err {
        RunError::Rejected(m) => {
            assert!(m.starts_with("sbatch rejected the job"), "{m}");
            assert!(m.contains("Requested node configuration is not available"), "{m}");
        }
        other => panic!("expected a rejection, got {other:?}"),
    }
    assert!(log.job_ids().is_empty());
    let name = format!(
        "aisci-{}-run_1",
        dir.path().file_name().unwrap().to_string_lossy()
    );
    assert_eq!(slurm(&["squeue", "-h", "-n", &name, "-o", "%i"]).trim(), "");
}

#[tokio::test]
async fn slurm_down_is_a_clear_error_in_bounded_time() {
    let dir = tempfile::tempdir().unwrap();
    // The same cluster, but a controller port nothing listens on.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let conf = std::fs::read_to_string(slurm_conf()).unwrap();
    let conf: String = conf
        .lines()
        .map(|l| match l.starts_with("SlurmctldPort=") {
            true => format!("SlurmctldPort={port}\n"),
            false => format!("{l}\n"),
        })
        .collect();
    let down = dir.path().join("down.conf");
    std::fs::write(&down, conf).unwrap();
    let work = dir.path().join("work");
    std::fs::create_dir(&work).unwrap();
    let s = spec(&work, "print('never')\n", Duration::from_secs(60));

    let t0 = Instant::now();
    let err = SlurmRunner::new(&SlurmSettings {
        gpus_per_run: 0,
        ..SlurmSettings::default()
    })
    .with_tool_env([("SLURM_CONF".into(), down.into_os_string())])
    .run(&s, &CancellationToken::new())
    .await
    .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(40), "{:?}", t0.elapsed());
    let msg = err.to_string();
    assert!(matches!(err, RunError::Rejected(_)), "{err:?}");
    assert!(msg.contains("Unable to contact slurm controller"), "{msg}");

    // A missing sbatch names itself.
    let err = runner(0)
        .with_tools(SlurmTools {
            sbatch: "/nonexistent/sbatch".into(),
            ..SlurmTools::default()
        })
        .run(&s, &CancellationToken::new())
        .await
        .unwrap_err();
    match err {
        RunError::Spawn { program, message } => {
            assert_eq!(program, "sbatch");
            assert!(message.contains("/nonexistent/sbatch not found"), "{message}");
        }
        other => panic!("{other:?}"),
    }

    // An sbatch that hangs is given up after the command time limit, and killed.
    let fake = dir.path().join("sbatch");
    let pid_file = dir.path().join("sbatch.pid");
    std::fs::write(
        &fake,
        format!("#!/bin/sh\necho $$ > {}\nexec sleep 60\n", pid_file.display()),
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&fake).status().unwrap();
    let t0 = Instant::now();
    let err = runner(0)
        .with_tools(SlurmTools {
            sbatch: fake,
            ..SlurmTools::default()
        })
        .with_command_timeout(Duration::from_secs(1))
        .run(&s, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(5), "{:?}", t0.elapsed());
    assert!(
        err.to_string().contains("sbatch did not answer within 1 s"),
        "{err}"
    );
    let pid = std::fs::read_to_string(&pid_file).unwrap().trim().to_owned();
    wait_for("the hung sbatch to be killed", Duration::from_secs(5), || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty()
            || stat
                .rsplit_once(')')
                .is_some_and(|(_, r)| r.trim_start().starts_with('Z'))
    })
    .await;
}

#[tokio::test]
async fn secrets_never_reach_the_job() {
    let dir = tempfile::tempdir().unwrap();
    let mut s = spec(
        dir.path(),
        "import json, os\nprint(json.dumps(dict(os.environ)))\n",
        Duration::from_secs(60),
    );
    s.env = vec![("AISCI_RUN_SEED".into(), "x".into()), ("SEED".into(), "7".into())];
    let mut base: Vec<(OsString, OsString)> = std::env::vars_os().collect();
    base.extend([
        ("OPENAI_API_KEY".into(), "sk-test-secret-1".into()),
        ("HF_TOKEN".into(), "hf-test-secret-2".into()),
        ("WORK_LLM".into(), "custom-test-secret-3".into()),
    ]);
    let log = Log::default();
    let out = runner(0)
        .with_base_env(base)
        .with_secret_names(["WORK_LLM".to_string()])
        .run_with(&s, &log, &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(out.exit, ExitKind::Success, "{out:?}");
    let env: std::collections::HashMap<String, String> =
        serde_json::from_str(out.stdout_tail.trim()).unwrap();
    for secret in ["sk-test-secret-1", "hf-test-secret-2", "custom-test-secret-3"] {
        assert!(!out.stdout_tail.contains(secret), "{secret} reached the job");
    }
    assert!(!env.contains_key("OPENAI_API_KEY") && !env.contains_key("WORK_LLM"));
    assert_eq!(env.get("SEED").map(String::as_str), Some("7"));
    assert_eq!(
        env.get("SLURM_JOB_ID"),
        Some(&log.job_id()),
        "it ran as that Slurm job"
    );
    // The script and the job record hold no secret either.
    let script = std::fs::read_to_string(dir.path().join("run_1/slurm_job.sh")).unwrap();
    assert!(!script.contains("secret"));
}

#[tokio::test]
async fn a_second_runner_reattaches_by_job_id() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "import time\nprint('begun', flush=True)\ntime.sleep(3)\nprint('done', flush=True)\n",
        Duration::from_secs(60),
    );
    let first_log = Log::default();
    let cancel = CancellationToken::new();
    let first = runner(0);
    let second_log = Log::default();
    let l = first_log.clone();
    let second = async {
        wait_for("the job to start", Duration::from_secs(30), || {
            l.output(Stream::Stdout).contains("begun")
        })
        .await;
        let job = l.job_id();
        let attachment = Attachment::Slurm(SlurmAttachment {
            job_id: job,
            deadline_unix_ms: 0,
        });
        runner(0)
            .reattach(&attachment, &s, &second_log, &CancellationToken::new())
            .await
    };
    let (a, b) = tokio::join!(first.run_with(&s, &first_log, &cancel), second);
    let (a, b) = (a.unwrap(), b.unwrap());
    assert_eq!(a.exit, ExitKind::Success);
    assert_eq!(b.exit, ExitKind::Success, "{b:?}");
    assert_eq!(b.stdout_tail, "begun\ndone\n");
    let job = first_log.job_id();
    assert_eq!(
        second_log.job_ids(),
        std::slice::from_ref(&job),
        "the running job was reported as it"
    );

    // A finished job gives its outcome at once; an unknown one is lost.
    let attachment = Attachment::Slurm(SlurmAttachment {
        job_id: job,
        deadline_unix_ms: 0,
    });
    let t0 = Instant::now();
    let c = runner(0)
        .reattach(&attachment, &s, &Log::default(), &CancellationToken::new())
        .await
        .unwrap();
    assert_eq!(c.exit, ExitKind::Success);
    assert_eq!(c.stdout_tail, "begun\ndone\n");
    assert!(t0.elapsed() < Duration::from_secs(5));
    let unknown = Attachment::Slurm(SlurmAttachment {
        job_id: "987654321".into(),
        deadline_unix_ms: 0,
    });
    let err = runner(0)
        .reattach(&unknown, &s, &Log::default(), &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(matches!(err, RunError::Lost(_)), "{err:?}");
}

#[tokio::test]
async fn aisci_run_with_the_slurm_runner() {
    let _gpus = GPUS.lock().await;
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    std::fs::write(
        root.join("experiment.py"),
        "import argparse, json, os\np = argparse.ArgumentParser(); p.add_argument('--out_dir')\n\
         a = p.parse_args(); os.makedirs(a.out_dir, exist_ok=True)\n\
         print('training on', os.environ.get('CUDA_VISIBLE_DEVICES'), flush=True)\n\
         json.dump({'d': {'means': {'acc': 0.9}}}, open(os.path.join(a.out_dir, 'final_info.json'), 'w'))\n",
    )
    .unwrap();
    std::fs::write(
        root.join("aisci.toml"),
        "[run.slurm]\ngpus_per_run = 1\npoll_ms = 200\n",
    )
    .unwrap();
    let aisci = |extra: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_aisci"))
            .args(["run", "--runner", "slurm", "--timeout", "60"])
            .args(extra)
            .arg(root)
            .env("SLURM_CONF", slurm_conf())
            .env("AISCI_CONFIG", root.join("no-user-config.toml"))
            .output()
            .unwrap();
        (
            out.status.code(),
            String::from_utf8_lossy(&out.stdout).into_owned(),
            String::from_utf8_lossy(&out.stderr).into_owned(),
        )
    };
    let (code, stdout, stderr) = aisci(&[]);
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stdout.contains("training on 0") || stdout.contains("training on 1"),
        "{stdout}"
    );
    assert!(stderr.contains("Slurm job "), "{stderr}");
    let saved = std::fs::read_to_string(root.join("run_1/stdout.txt")).unwrap();
    assert!(saved.starts_with("training on "), "{saved}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("run_1/aisci_run.json")).unwrap()).unwrap();
    assert_eq!(record["completed"], true, "{record}");

    std::fs::write(
        root.join("experiment.py"),
        "import sys\nprint('oops', file=sys.stderr)\nsys.exit(3)\n",
    )
    .unwrap();
    let (code, _, stderr) = aisci(&[]);
    assert_eq!(code, Some(3), "{stderr}");
    assert!(stderr.contains("oops"), "{stderr}");
    assert!(root.join("run_2/stderr.txt").is_file());
}

#[tokio::test]
async fn losing_slurm_while_watching_is_reported_and_the_job_cancelled() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(
        dir.path(),
        "import time\nprint('running', flush=True)\ntime.sleep(300)\n",
        Duration::from_secs(600),
    );
    // squeue stops answering right after submission; scancel still works.
    let fake = dir.path().join("squeue");
    std::fs::write(
        &fake,
        "#!/bin/sh\necho 'slurm_load_jobs error: Unable to contact slurm controller (connect failure)' >&2\nexit 1\n",
    )
    .unwrap();
    Command::new("chmod").arg("755").arg(&fake).status().unwrap();
    let log = Log::default();
    let t0 = Instant::now();
    let err = runner(0)
        .with_tools(SlurmTools {
            squeue: fake,
            ..SlurmTools::default()
        })
        .with_unreachable_grace(Duration::from_secs(1))
        .with_cancel_wait(Duration::from_secs(2))
        .run_with(&s, &log, &CancellationToken::new())
        .await
        .unwrap_err();
    assert!(t0.elapsed() < Duration::from_secs(20), "{:?}", t0.elapsed());
    let msg = err.to_string();
    assert!(matches!(err, RunError::Lost(_)), "{err:?}");
    assert!(msg.contains("Unable to contact slurm controller"), "{msg}");
    let job = log.job_id();
    wait_for("the job to be cancelled", Duration::from_secs(20), || {
        !still_queued(&job)
    })
    .await;
    assert_eq!(final_state(&job), "CANCELLED");
}

#[tokio::test]
async fn the_baseline_runs_as_a_slurm_job_when_configured() {
    let dir = tempfile::tempdir().unwrap();
    let template = dir.path().join("tiny_mlp");
    let src = tiny_mlp();
    let copied = Command::new("cp")
        .arg("-r")
        .arg(&src)
        .arg(&template)
        .status()
        .unwrap();
    assert!(copied.success());
    std::fs::remove_dir_all(template.join("run_0")).unwrap();
    std::fs::write(
        template.join("aisci.toml"),
        "[run]\nrunner = \"slurm\"\n[run.slurm]\ngpus_per_run = 0\npoll_ms = 200\n",
    )
    .unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_aisci"))
        .args(["baseline", "--template"])
        .arg(&template)
        .env("SLURM_CONF", slurm_conf())
        .env("AISCI_CONFIG", dir.path().join("no-user-config.toml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(template.join("run_0/final_info.json").is_file(), "{stderr}");
    // It went through Slurm: the job script is there, and Slurm knows the job by name.
    assert!(template.join("run_0/slurm_job.sh").is_file());
    let jobs = slurm(&["scontrol", "show", "job", "-o"]);
    assert!(
        jobs.lines().any(|l| l.contains("JobName=aisci-tiny_mlp-run_0")
            && l.contains(&format!("WorkDir={}", template.display()))
            && l.contains("JobState=COMPLETED")),
        "{jobs}"
    );
}

/// An experiment that forks children, a `setsid` double-forked grandchild and a detached
/// relaunch of itself; every process writes its pid to `pids.txt`.
const ESCAPER: &str = r#"
import os, subprocess, sys, time
def note():
    with open("pids.txt", "a") as f:
        f.write(f"{os.getpid()}\n")
note()
if os.environ.get("ROLE") == "relaunch":
    time.sleep(300)
for _ in range(3):
    if os.fork() == 0:
        note(); time.sleep(300); os._exit(0)
if os.fork() == 0:
    os.setsid()
    if os.fork() == 0:
        note(); time.sleep(300); os._exit(0)
    os._exit(0)
subprocess.Popen([sys.executable, __file__], env={**os.environ, "ROLE": "relaunch"}, start_new_session=True)
while len(open("pids.txt").read().split()) < 6:
    time.sleep(0.05)
print("all started", flush=True)
if os.environ.get("EXIT_AT_ONCE"):
    sys.exit(0)
time.sleep(300)
"#;

fn all_gone(pids: &[i32]) -> bool {
    pids.iter().all(|p| {
        std::fs::read_to_string(format!("/proc/{p}/stat"))
            .ok()
            .and_then(|s| {
                s.rsplit_once(')')
                    .and_then(|(_, r)| r.trim_start().chars().next())
            })
            .is_none_or(|c| c == 'Z' || c == 'X')
    })
}

/// Nothing the experiment started survives its job, whatever the site's process tracking
/// (the test cluster's is `proctrack/linuxproc`, which loses a process that re-parents to
/// init): on a timeout, and when the experiment itself ends first.
#[tokio::test]
async fn nothing_a_job_started_survives_it() {
    for at_once in [false, true] {
        let dir = tempfile::tempdir().unwrap();
        let mut s = spec(dir.path(), ESCAPER, Duration::from_secs(6));
        if at_once {
            s.env.push(("EXIT_AT_ONCE".into(), "1".into()));
        }
        let log = Log::default();
        let out = runner(0)
            .run_with(&s, &log, &CancellationToken::new())
            .await
            .unwrap();
        let want = if at_once {
            ExitKind::Success
        } else {
            ExitKind::TimedOut
        };
        assert_eq!(out.exit, want, "{out:?}");
        assert!(out.stdout_tail.contains("all started"), "{out:?}");
        let pids: Vec<i32> = std::fs::read_to_string(dir.path().join("pids.txt"))
            .unwrap()
            .split_whitespace()
            .map(|p| p.parse().unwrap())
            .collect();
        assert_eq!(pids.len(), 6, "{pids:?}");
        wait_for("every process of the job to end", Duration::from_secs(15), || {
            all_gone(&pids)
        })
        .await;
        assert!(!still_queued(&log.job_id()));
    }
}

#[test]
fn the_job_asks_slurm_for_the_memory_limit() {
    let r = SlurmRunner::new(&SlurmSettings::default()).with_max_memory(Some(3 << 30));
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), "", Duration::from_secs(60));
    let args = r.sbatch_args(&s, &dir.path().join("job.sh"));
    assert!(args.contains(&"--mem=3072M".to_string()), "{args:?}");
    let none = SlurmRunner::new(&SlurmSettings::default()).sbatch_args(&s, &dir.path().join("job.sh"));
    assert!(!none.iter().any(|a| a.starts_with("--mem")), "{none:?}");
}
