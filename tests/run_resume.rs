//! The run registry across restarts: each transition is on disk as it happens, and an
//! aisci started later settles what an earlier one left in flight — queued runs are
//! marked failed (not run), running ones are watched again and completed as any run,
//! vanished ones are marked lost, ended ones are left alone, and nothing is re-run.
//!
//! The settling logic is checked with a fake `Runner` (it stands for a process that
//! lived on while aisci was down); the end-to-end `kill -9` of `aisci run` uses the
//! real local runner and real `python3`.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisci::project::{RunExit, RunOrigin, RunRecord, RunState, Watcher};
use aisci::runner::{
    Attachment, ExitKind, LocalAttachment, RunError, RunEvent, RunEvents, RunOutcome, RunSpec, Runner,
    SlurmAttachment, Stream,
};
use aisci::runs::{self, Reattacher, ResumeCtx, Resumed};
use tokio_util::sync::CancellationToken;

/// A runner standing in for processes that outlived an aisci: `reattach` answers from
/// `answers` by pid; `run_with` (which resuming must never call) counts calls, and for
/// the registry test emits a scripted series of events.
#[derive(Default)]
struct Fake {
    answers: Mutex<Vec<(i32, Result<RunOutcome, String>)>>,
    reattached: Mutex<Vec<(i32, RunSpec)>>,
    runs: AtomicUsize,
    /// Records seen on disk after each event of `run_with` (root, events).
    script: Mutex<Option<(PathBuf, Vec<RunEvent>)>>,
    seen: Mutex<Vec<RunRecord>>,
}

fn outcome(exit: ExitKind, stderr: &str) -> RunOutcome {
    RunOutcome {
        exit,
        elapsed: Duration::from_millis(2500),
        stdout_tail: String::new(),
        stderr_tail: stderr.into(),
        stdout_bytes: 0,
        stderr_bytes: stderr.len() as u64,
        cuda_visible_devices: Some(String::new()),
    }
}

/// Waits until the record in `dir` satisfies `pred` (the writer is asynchronous).
async fn record_when(dir: &Path, pred: impl Fn(&RunRecord) -> bool) -> RunRecord {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        if let Some(r) = RunRecord::load(dir).filter(|r| pred(r)) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "record in {} never got there: {:?}",
            dir.display(),
            RunRecord::load(dir)
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[async_trait::async_trait]
impl Runner for Fake {
    async fn run_with(
        &self,
        spec: &RunSpec,
        events: &dyn RunEvents,
        _cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        self.runs.fetch_add(1, Ordering::SeqCst);
        let script = self.script.lock().unwrap().take();
        let Some((dir, evs)) = script else {
            return Err(RunError::Rejected("resuming must not run anything".into()));
        };
        for e in evs {
            let want = match &e {
                RunEvent::Queued { .. } | RunEvent::Held { .. } => Some(RunState::Queued),
                RunEvent::Slot { .. } | RunEvent::Started(_) => Some(RunState::Running),
                RunEvent::Output { .. } => None,
            };
            let is_started = matches!(e, RunEvent::Started(_));
            let is_queued = matches!(e, RunEvent::Queued { .. });
            events.on_event(e);
            if let Some(state) = want {
                let r = record_when(&dir, |r| {
                    r.state == state
                        && (!is_started || r.attachment.is_some())
                        && (!is_queued || r.queued_ahead.is_some())
                })
                .await;
                self.seen.lock().unwrap().push(r);
            }
        }
        std::fs::write(
            spec.cwd.join("run_1/final_info.json"),
            r#"{"d": {"means": {"acc": 0.7}}}"#,
        )
        .unwrap();
        Ok(outcome(ExitKind::Success, ""))
    }

    async fn reattach(
        &self,
        attachment: &Attachment,
        spec: &RunSpec,
        events: &dyn RunEvents,
        _cancel: &CancellationToken,
    ) -> Result<RunOutcome, RunError> {
        let Attachment::Local(l) = attachment else {
            panic!("only local attachments reach the local runner: {attachment:?}");
        };
        self.reattached.lock().unwrap().push((l.pid, spec.clone()));
        events.on_event(RunEvent::Output {
            stream: Stream::Stdout,
            text: "still here\n".into(),
        });
        let answer = self
            .answers
            .lock()
            .unwrap()
            .iter()
            .find(|(pid, _)| *pid == l.pid)
            .map(|(_, a)| a.clone())
            .unwrap_or_else(|| Err(format!("no answer for pid {}", l.pid)));
        answer.map_err(RunError::Lost)
    }
}

struct LocalOnly(Arc<Fake>);

impl Reattacher for LocalOnly {
    fn runner_for(&self, attachment: &Attachment) -> Option<Arc<dyn Runner>> {
        match attachment {
            Attachment::Local(_) => Some(self.0.clone()),
            Attachment::Slurm(_) => None,
        }
    }
}

fn local(pid: i32) -> Attachment {
    Attachment::Local(LocalAttachment {
        pid,
        start_ticks: 1,
        boot_id: "boot".into(),
        deadline_unix_ms: u64::MAX / 2,
        exit_file: None,
        cgroup: None,
        tmp_dir: None,
    })
}

/// A process that is gone: pid of this process, another start time.
fn dead_watcher() -> Watcher {
    let me = Watcher::this_process().unwrap();
    Watcher {
        pid: me.pid,
        start_ticks: me.start_ticks + 1,
    }
}

/// Writes a record for `run_<run>` in `root` as an earlier aisci left it.
fn left(root: &Path, run: u32, origin: RunOrigin, state: RunState, att: Option<Attachment>) -> RunRecord {
    let mut r = RunRecord::queued(
        run,
        1,
        vec![
            "python3".into(),
            "experiment.py".into(),
            format!("--out_dir=run_{run}"),
        ],
        origin,
        600,
    );
    r.state = state;
    r.watcher = Some(dead_watcher());
    if state == RunState::Running {
        r.running_since = Some("2026-11-29T10:00:00Z".into());
        r.gpu = Some(String::new());
    }
    r.attachment = att;
    std::fs::create_dir_all(root.join(&r.dir)).unwrap();
    std::fs::write(root.join(&r.stdout), "out\n").unwrap();
    std::fs::write(root.join(&r.stderr), "").unwrap();
    r.save(root).unwrap();
    r
}

#[tokio::test]
async fn resuming_settles_every_kind_of_record_and_runs_nothing() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    std::fs::write(root.join("experiment.py"), "").unwrap();
    std::fs::create_dir_all(root.join("run_0")).unwrap();
    std::fs::write(
        root.join("run_0/final_info.json"),
        r#"{"d": {"means": {"acc": 0.5}}}"#,
    )
    .unwrap();

    // run_1 ended before: never touched.
    let mut done = left(&root, 1, RunOrigin::Launch, RunState::Done, None);
    done.exit = Some(RunExit::Success);
    done.completed = true;
    done.save(&root).unwrap();
    let done_bytes = std::fs::read(root.join("run_1/aisci_run.json")).unwrap();
    // run_2 was still queued.
    left(&root, 2, RunOrigin::Launch, RunState::Queued, None);
    // run_3 lived on and succeeded.
    left(&root, 3, RunOrigin::Launch, RunState::Running, Some(local(3003)));
    std::fs::write(
        root.join("run_3/final_info.json"),
        r#"{"d": {"means": {"acc": 0.75}}}"#,
    )
    .unwrap();
    // run_4 is gone without an exit status.
    left(&root, 4, RunOrigin::Launch, RunState::Running, Some(local(4004)));
    // run_5 is watched by a live aisci (this process): not ours to settle.
    let mut other = left(&root, 5, RunOrigin::Launch, RunState::Running, Some(local(5005)));
    other.watcher = Watcher::this_process();
    other.save(&root).unwrap();
    // run_6 was the experiment loop's and failed while aisci was down.
    let mut loop_run = left(
        &root,
        6,
        RunOrigin::Experiment,
        RunState::Running,
        Some(local(6006)),
    );
    loop_run.code = Some("run_6.py".into());
    loop_run.save(&root).unwrap();
    std::fs::write(root.join("run_6.py"), "raise ValueError('bad')\n").unwrap();
    // run_7 runs under Slurm; no Slurm runner here.
    left(
        &root,
        7,
        RunOrigin::Launch,
        RunState::Running,
        Some(Attachment::Slurm(SlurmAttachment {
            job_id: "77".into(),
            deadline_unix_ms: u64::MAX / 2,
        })),
    );
    // run_8 was starting (no attachment yet).
    left(&root, 8, RunOrigin::Launch, RunState::Running, None);

    let tb = "Traceback (most recent call last):\n  File \"experiment.py\", line 1, in <module>\n    raise ValueError('bad')\nValueError: bad\n";
    let fake = Arc::new(Fake::default());
    *fake.answers.lock().unwrap() = vec![
        (3003, Ok(outcome(ExitKind::Success, ""))),
        (4004, Err("process 4004 is gone and left no exit status".into())),
        (6006, Ok(outcome(ExitKind::Failed(1), tb))),
    ];
    let pending: Vec<u32> = runs::pending(&root).iter().map(|r| r.run).collect();
    assert_eq!(pending, vec![2, 3, 4, 6, 7, 8], "run_1 ended, run_5 is watched");

    let reattacher = LocalOnly(fake.clone());
    let cancel = CancellationToken::new();
    let ctx = ResumeCtx {
        runners: &reattacher,
        python: "python3",
        cancel: &cancel,
    };
    let results: Vec<Resumed> = runs::resume_folder(&root, &ctx)
        .await
        .into_iter()
        .map(|r| r.unwrap())
        .collect();
    assert_eq!(results.len(), 6);
    assert_eq!(fake.runs.load(Ordering::SeqCst), 0, "nothing is ever re-run");

    assert_eq!(
        std::fs::read(root.join("run_1/aisci_run.json")).unwrap(),
        done_bytes
    );

    let r2 = RunRecord::load(&root.join("run_2")).unwrap();
    assert_eq!(r2.state, RunState::Failed);
    assert!(r2.error.unwrap().contains("stopped before it started"));
    assert_eq!(r2.exit, None);

    let r3 = RunRecord::load(&root.join("run_3")).unwrap();
    assert_eq!((r3.state, r3.completed), (RunState::Done, true), "{r3:?}");
    assert_eq!(r3.exit, Some(RunExit::Success));
    assert_eq!(r3.means.unwrap()["d"]["acc"], 0.75);
    assert!(root.join("run_3/env.json").is_file(), "facts written when absent");
    let (_, spec) = fake
        .reattached
        .lock()
        .unwrap()
        .iter()
        .find(|(p, _)| *p == 3003)
        .cloned()
        .unwrap();
    assert_eq!(spec.program, "python3");
    assert_eq!(spec.args, ["experiment.py", "--out_dir=run_3"]);
    assert_eq!(spec.stdout_path, root.join("run_3/stdout.txt"));

    let r4 = RunRecord::load(&root.join("run_4")).unwrap();
    assert_eq!(r4.state, RunState::Lost);
    assert!(r4.error.unwrap().contains("left no exit status"));

    let r5 = RunRecord::load(&root.join("run_5")).unwrap();
    assert_eq!(r5.state, RunState::Running, "a live watcher's run is left alone");

    // The loop's failed attempt is filed as the loop would have, with its traceback.
    assert!(!root.join("run_6").exists());
    let a6 = root.join(".aisci/attempts/run_6/attempt_1");
    let r6 = RunRecord::load(&a6).unwrap();
    assert_eq!(r6.state, RunState::Done);
    assert_eq!(r6.exit, Some(RunExit::Failed { code: 1 }));
    assert_eq!(r6.error.as_deref(), Some("ValueError: bad"));
    assert_eq!(r6.frames.len(), 1);
    assert!(a6.join("experiment.py").is_file(), "the code it ran goes with it");

    let r7 = RunRecord::load(&root.join("run_7")).unwrap();
    assert_eq!(
        r7.state,
        RunState::Running,
        "no Slurm runner: left for one that has it"
    );
    assert!(results
        .iter()
        .any(|r| matches!(r, Resumed::Unwatched { record, .. } if record.run == 7)));

    let r8 = RunRecord::load(&root.join("run_8")).unwrap();
    assert_eq!(r8.state, RunState::Lost);

    // Settled records are not pending any more; a second start does nothing new.
    let again: Vec<u32> = runs::pending(&root).iter().map(|r| r.run).collect();
    assert_eq!(again, vec![7]);

    // The workspace list shows all of it.
    let list = runs::list(std::slice::from_ref(&root));
    let states: Vec<(u32, RunState)> = list.iter().map(|v| (v.run, v.state)).collect();
    assert_eq!(
        states,
        vec![
            (1, RunState::Done),
            (2, RunState::Failed),
            (3, RunState::Done),
            (4, RunState::Lost),
            (5, RunState::Running),
            (6, RunState::Done),
            (7, RunState::Running),
            (8, RunState::Lost)
        ]
    );
}

#[tokio::test]
async fn each_transition_is_on_disk_as_it_happens() {
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().canonicalize().unwrap();
    let run_dir = root.join("run_1");
    std::fs::create_dir_all(&run_dir).unwrap();
    let fake = Fake::default();
    let att = local(1234);
    *fake.script.lock().unwrap() = Some((
        run_dir.clone(),
        vec![
            RunEvent::Queued { ahead: 2 },
            RunEvent::Slot { gpu: "1".into() },
            RunEvent::Started(att.clone()),
            RunEvent::Output {
                stream: Stream::Stdout,
                text: "epoch 1\n".into(),
            },
        ],
    ));
    let feed = runs::live::subscribe(1024);
    let spec = RunSpec {
        program: "python3".into(),
        args: vec!["experiment.py".into(), "--out_dir=run_1".into()],
        cwd: root.clone(),
        timeout: Duration::from_secs(60),
        stdout_path: run_dir.join("stdout.txt"),
        stderr_path: run_dir.join("stderr.txt"),
        env: vec![],
        watch_dir: Some(run_dir.clone()),
    };
    let record = RunRecord::queued(1, 1, vec!["python3".into()], RunOrigin::Launch, 60);
    let end = runs::run_tracked(
        &root,
        record,
        &fake,
        &spec,
        &aisci::runner::NoEvents,
        &CancellationToken::new(),
    )
    .await;

    let seen = fake.seen.lock().unwrap().clone();
    assert_eq!(seen.len(), 3, "{seen:#?}");
    assert_eq!((seen[0].state, seen[0].queued_ahead), (RunState::Queued, Some(2)));
    assert_eq!(
        seen[0].watcher,
        Watcher::this_process(),
        "this process watches it"
    );
    assert_eq!(
        (seen[1].state, seen[1].gpu.as_deref()),
        (RunState::Running, Some("1"))
    );
    assert!(seen[1].running_since.is_some());
    assert_eq!(seen[2].attachment, Some(att));
    // Watched live until its record is completed.
    let live = runs::live::get(&root, 1).expect("still in the live view");
    assert_eq!((live.state, live.pid), (RunState::Running, Some(1234)));
    let out = feed.drain();
    assert!(
        out.iter()
            .any(|c| c.folder == root && c.run == 1 && c.text == "epoch 1\n"),
        "{out:?}"
    );

    let mut record = end.record;
    runs::finish::complete(&mut record, &end.result.unwrap(), &run_dir, None);
    record.save(&root).unwrap();
    drop(end.live);
    assert!(runs::live::get(&root, 1).is_none());
    let on_disk = RunRecord::load(&run_dir).unwrap();
    assert_eq!((on_disk.state, on_disk.completed), (RunState::Done, true));
    assert_eq!(on_disk.gpu.as_deref(), Some("1"));
    let names: Vec<String> = std::fs::read_dir(&run_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().all(|n| !n.ends_with(".tmp")),
        "atomic writes leave no temp files: {names:?}"
    );
}

fn script_dir(dir: &Path, code: &str) -> PathBuf {
    let t = dir.join("exp");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("experiment.py"), code).unwrap();
    t
}

fn aisci_run_cmd(home: &Path, cwd: &Path) -> std::process::Command {
    let cfg = home.join("config.toml");
    if !cfg.exists() {
        std::fs::write(&cfg, "[run]\ngpus = []\n").unwrap();
    }
    let mut c = std::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    c.arg("run")
        .args(["--timeout", "60"])
        .current_dir(cwd)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("AISCI_CONFIG", &cfg);
    c
}

fn alive(pid: i32) -> bool {
    // Signal 0: no signal, only the check; a zombie has no /proc/<pid>/cmdline content.
    Path::new(&format!("/proc/{pid}")).exists()
        && std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_aisci_run_then_the_next_aisci_finishes_the_run() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    // Runs 3 s, then writes its results; the second run (after the restart) is quick.
    let t = script_dir(
        tmp.path(),
        "import json, os, sys, time\nout = sys.argv[1].split('=')[1]\nos.makedirs(out, exist_ok=True)\n\
         if out == 'run_1':\n    time.sleep(3)\n\
         json.dump({'d': {'means': {'acc': 0.9}}}, open(os.path.join(out, 'final_info.json'), 'w'))\nprint('done', out)\n",
    );
    let mut first = aisci_run_cmd(&home, &t)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    // Wait until the record says it runs and where.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(Attachment::Local(l)) = RunRecord::load(&t.join("run_1")).and_then(|r| r.attachment) {
            break l.pid;
        }
        assert!(
            Instant::now() < deadline,
            "run_1 never recorded its attachment: {:?}",
            RunRecord::load(&t.join("run_1"))
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    // kill -9 the daemon, not the run.
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    first.wait().unwrap();
    assert!(alive(pid), "the run outlives the aisci that started it");
    let left = RunRecord::load(&t.join("run_1")).unwrap();
    assert_eq!(left.state, RunState::Running);

    // The next aisci re-attaches, waits for it, completes its record, and only then
    // launches the next run (run_1 is not run again).
    let second = aisci_run_cmd(&home, &t).output().unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(err.contains("run_1 re-attached"), "{err}");
    let r1 = RunRecord::load(&t.join("run_1")).unwrap();
    assert_eq!((r1.state, r1.completed), (RunState::Done, true), "{r1:?}");
    assert_eq!(r1.means.unwrap()["d"]["acc"], 0.9);
    assert!(t.join("run_1/env.json").is_file());
    let out1 = std::fs::read_to_string(t.join("run_1/stdout.txt")).unwrap();
    assert_eq!(out1.matches("done run_1").count(), 1, "run_1 ran once: {out1}");
    assert!(t.join("run_2/final_info.json").is_file());
    assert!(!alive(pid));
}

/// The test cluster's config (`$SLURM_CONF`, else where `scripts/slurm-up` writes it);
/// fails, never skips, when there is none.
fn slurm_conf() -> PathBuf {
    let conf = std::env::var_os("SLURM_CONF")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            let dir = std::env::var_os("AISCI_SLURM_DIR").unwrap_or_else(|| "/tmp/aisci-slurm".into());
            Path::new(&dir).join("slurm.conf")
        });
    assert!(
        conf.is_file(),
        "no Slurm config at {}: start the test cluster with scripts/slurm-up (as root) and export SLURM_CONF",
        conf.display()
    );
    conf
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn kill_9_of_aisci_run_then_the_next_aisci_finishes_the_slurm_job() {
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(
        home.join("config.toml"),
        "[run]\ngpus = []\n[run.slurm]\ngpus_per_run = 0\npoll_ms = 200\n",
    )
    .unwrap();
    let conf = slurm_conf();
    let t = script_dir(
        tmp.path(),
        "import json, os, sys, time\nout = sys.argv[1].split('=')[1]\nos.makedirs(out, exist_ok=True)\n\
         if out == 'run_1':\n    time.sleep(4)\n\
         json.dump({'d': {'means': {'acc': 0.8}}}, open(os.path.join(out, 'final_info.json'), 'w'))\nprint('done', out)\n",
    );
    let mut first = aisci_run_cmd(&home, &t)
        .args(["--runner", "slurm"])
        .env("SLURM_CONF", &conf)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let job = loop {
        if let Some(id) = RunRecord::load(&t.join("run_1")).and_then(|r| r.job_id().map(str::to_owned)) {
            break id;
        }
        assert!(
            Instant::now() < deadline,
            "run_1 never recorded its Slurm job: {:?}",
            RunRecord::load(&t.join("run_1"))
        );
        std::thread::sleep(Duration::from_millis(20));
    };
    rustix::process::kill_process(
        rustix::process::Pid::from_raw(first.id() as i32).unwrap(),
        rustix::process::Signal::KILL,
    )
    .unwrap();
    first.wait().unwrap();
    let left = RunRecord::load(&t.join("run_1")).unwrap();
    assert!(left.state.in_flight(), "{left:?}");

    let second = aisci_run_cmd(&home, &t)
        .args(["--runner", "slurm"])
        .env("SLURM_CONF", &conf)
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&second.stderr);
    assert!(second.status.success(), "{err}");
    assert!(err.contains("run_1 re-attached"), "{err}");
    let r1 = RunRecord::load(&t.join("run_1")).unwrap();
    assert_eq!((r1.state, r1.completed), (RunState::Done, true), "{r1:?}");
    assert_eq!(r1.job_id(), Some(job.as_str()), "the same job, not a new one");
    assert_eq!(r1.means.unwrap()["d"]["acc"], 0.8);
    assert!(t.join("run_2/final_info.json").is_file(), "then the next run");
    let out1 = std::fs::read_to_string(t.join("run_1/stdout.txt")).unwrap();
    assert_eq!(out1.matches("done run_1").count(), 1, "run_1 ran once: {out1}");
}
