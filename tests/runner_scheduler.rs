//! SlotScheduler over LocalRunner with real `python3` runs and fake GPUs from config.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use aisci::config::RunSettings;
use aisci::runner::{gpus, ExitKind, LocalRunner, QueueEvent, RunSpec, Runner, SlotScheduler};
use tokio_util::sync::CancellationToken;

use crate::support::fs::fixtures;

fn fixture(name: &str) -> String {
    fixtures()
        .join("runner")
        .join(name)
        .to_string_lossy()
        .into_owned()
}

fn spec(dir: &Path, name: &str, secs: f64) -> RunSpec {
    let d: PathBuf = dir.join(name);
    std::fs::create_dir_all(&d).unwrap();
    RunSpec {
        program: "python3".into(),
        args: vec![fixture("cuda_env.py"), secs.to_string()],
        cwd: d.clone(),
        timeout: Duration::from_secs(30),
        stdout_path: d.join("stdout.txt"),
        stderr_path: d.join("stderr.txt"),
        env: vec![],
        watch_dir: None,
    }
}

type Log = Arc<Mutex<Vec<(Instant, QueueEvent)>>>;

async fn scheduler(gpu_list: Option<Vec<&str>>, cpu_slots: u32) -> (Arc<SlotScheduler<LocalRunner>>, Log) {
    let settings = RunSettings {
        gpus: gpu_list.map(|l| l.into_iter().map(String::from).collect()),
        cpu_slots,
        ..RunSettings::default()
    };
    let found = gpus::detect(&settings).await;
    let log: Log = Arc::default();
    let l = log.clone();
    let s = SlotScheduler::for_gpus(LocalRunner::new(1 << 20), &found.gpus, &settings).with_observer(
        Arc::new(move |e: &QueueEvent| l.lock().unwrap().push((Instant::now(), e.clone()))),
    );
    (Arc::new(s), log)
}

#[tokio::test]
async fn two_gpus_three_runs_third_waits() {
    let dir = tempfile::tempdir().unwrap();
    let (sched, log) = scheduler(Some(vec!["0", "1"]), 1).await;
    let t0 = Instant::now();
    let mut tasks = Vec::new();
    for name in ["a", "b", "c"] {
        let s = spec(dir.path(), name, 1.0);
        let sched = sched.clone();
        tasks.push(tokio::spawn(async move {
            let out = sched.run(&s, &CancellationToken::new()).await.unwrap();
            (out, Instant::now())
        }));
        // A fixed submission order.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut seen = Vec::new();
    for t in tasks {
        let (out, _) = t.await.unwrap();
        assert_eq!(out.exit, ExitKind::Success);
        seen.push(out.stdout_tail.trim().to_string());
    }
    let total = t0.elapsed();
    // The first two hold both GPUs (which got which depends on which task reached the
    // scheduler first, which a loaded machine may swap).
    let mut first_two = seen[..2].to_vec();
    first_two.sort();
    assert_eq!(first_two, ["'0'", "'1'"], "{seen:?}");
    assert!(seen[2] == "'0'" || seen[2] == "'1'", "{seen:?}");
    // Two at once, then the third: at least two run lengths. That the first two ran side
    // by side is read from the event order below, not from the wall time, which a loaded
    // machine (every test shares one binary) stretches.
    assert!(total >= Duration::from_millis(1900), "{total:?}");

    let log = log.lock().unwrap();
    let events: Vec<&QueueEvent> = log.iter().map(|(_, e)| e).collect();
    assert!(matches!(events[0], QueueEvent::Started { run: 1, .. }));
    assert!(matches!(events[1], QueueEvent::Started { run: 2, .. }));
    assert!(matches!(events[2], QueueEvent::Queued { run: 3, ahead: 0 }));
    // The third starts only after one of the first two finished, on the slot it freed.
    let first_finish = log
        .iter()
        .find_map(|(at, e)| match e {
            QueueEvent::Finished { slot, .. } => Some((*at, slot.clone())),
            _ => None,
        })
        .unwrap();
    let third = log
        .iter()
        .find_map(|(at, e)| match e {
            QueueEvent::Started { run: 3, slot, waited } => Some((*at, slot.clone(), *waited)),
            _ => None,
        })
        .unwrap();
    assert!(third.0 >= first_finish.0);
    assert_eq!(third.1, first_finish.1);
    assert!(third.2 >= Duration::from_millis(800), "{:?}", third.2);
    assert!(sched.queued() == 0);
}

#[tokio::test]
async fn fifo_on_one_cpu_slot_and_cpu_runs_see_no_gpu() {
    let dir = tempfile::tempdir().unwrap();
    let (sched, log) = scheduler(Some(vec![]), 1).await;
    let mut tasks = Vec::new();
    for i in 0..4 {
        let s = spec(dir.path(), &format!("r{i}"), 0.2);
        let sched = sched.clone();
        tasks.push(tokio::spawn(async move {
            sched.run(&s, &CancellationToken::new()).await.unwrap()
        }));
        tokio::time::sleep(Duration::from_millis(30)).await;
    }
    for t in tasks {
        let out = t.await.unwrap();
        assert_eq!(out.exit, ExitKind::Success);
        assert_eq!(out.stdout_tail.trim(), "''");
    }
    let log = log.lock().unwrap();
    let queued: Vec<u64> = log
        .iter()
        .filter_map(|(_, e)| match e {
            QueueEvent::Queued { run, .. } => Some(*run),
            _ => None,
        })
        .collect();
    let started: Vec<u64> = log
        .iter()
        .filter_map(|(_, e)| match e {
            QueueEvent::Started { run, .. } => Some(*run),
            _ => None,
        })
        .collect();
    assert_eq!(queued, [2, 3, 4]);
    assert_eq!(started, [1, 2, 3, 4]);
    // Never two at once on the one slot.
    let mut running = 0;
    for (_, e) in log.iter() {
        match e {
            QueueEvent::Started { .. } => running += 1,
            QueueEvent::Finished { .. } => running -= 1,
            _ => {}
        }
        assert!(running <= 1);
    }
}

#[tokio::test]
async fn cancel_while_queued_never_runs() {
    let dir = tempfile::tempdir().unwrap();
    let (sched, log) = scheduler(Some(vec!["0"]), 1).await;
    let first = spec(dir.path(), "first", 1.0);
    let s1 = sched.clone();
    let running = tokio::spawn(async move { s1.run(&first, &CancellationToken::new()).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;

    let cancel = CancellationToken::new();
    let queued = spec(dir.path(), "queued", 0.1);
    let (s2, c2, q2) = (sched.clone(), cancel.clone(), queued.clone());
    let waiting = tokio::spawn(async move { s2.run(&q2, &c2).await.unwrap() });
    // A third one, queued behind the cancelled one, must still get the slot.
    let after = spec(dir.path(), "after", 0.1);
    let s3 = sched.clone();
    let third = tokio::spawn(async move { s3.run(&after, &CancellationToken::new()).await.unwrap() });
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(sched.queued(), 2);
    cancel.cancel();
    let out = waiting.await.unwrap();
    assert_eq!(out.exit, ExitKind::Cancelled);
    assert_eq!(sched.queued(), 1);
    assert_eq!(running.await.unwrap().exit, ExitKind::Success);
    let out3 = third.await.unwrap();
    assert_eq!(out3.exit, ExitKind::Success);
    assert_eq!(out3.stdout_tail.trim(), "'0'");
    // The cancelled run never started: no output file was even created.
    assert!(!queued.stdout_path.exists());
    let log = log.lock().unwrap();
    assert!(log
        .iter()
        .any(|(_, e)| matches!(e, QueueEvent::Dequeued { run: 2 })));
    assert!(!log
        .iter()
        .any(|(_, e)| matches!(e, QueueEvent::Started { run: 2, .. })));
}

#[tokio::test]
async fn aborted_run_gives_its_slot_back() {
    let dir = tempfile::tempdir().unwrap();
    let (sched, _log) = scheduler(Some(vec!["0"]), 1).await;
    let s = spec(dir.path(), "aborted", 20.0);
    let s1 = sched.clone();
    let task = tokio::spawn(async move { s1.run(&s, &CancellationToken::new()).await });
    tokio::time::sleep(Duration::from_millis(200)).await;
    task.abort();
    let _ = task.await;
    let next = spec(dir.path(), "next", 0.1);
    let out = tokio::time::timeout(
        Duration::from_secs(10),
        sched.run(&next, &CancellationToken::new()),
    )
    .await
    .expect("slot released after abort")
    .unwrap();
    assert_eq!(out.stdout_tail.trim(), "'0'");
}
