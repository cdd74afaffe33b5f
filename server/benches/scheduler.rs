//! SlotScheduler over LocalRunner with G fake GPUs (from config) and 4G short runs:
//! wall time against the ideal schedule, 4 × the time of one run launched directly
//! (target: at most 1.05).
//!
//! `cargo bench --bench scheduler` (AISCI_BENCH_G overrides G = 2; AISCI_BENCH_SECS
//! the 0.5 s each run sleeps).

use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use aisci::config::RunSettings;
use aisci::runner::{gpus::Gpu, ExitKind, LocalRunner, RunSpec, Runner, SlotScheduler};
use tokio_util::sync::CancellationToken;

fn main() {
    let env = |k: &str| std::env::var(k).ok();
    let g: usize = env("AISCI_BENCH_G").and_then(|v| v.parse().ok()).unwrap_or(2);
    let secs: f64 = env("AISCI_BENCH_SECS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(0.5);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("experiment.py");
    std::fs::write(&script, format!("import time\nprint('ok')\ntime.sleep({secs})\n")).unwrap();

    // One run launched directly, the best of 3 (the ideal schedule's unit).
    let direct = (0..3)
        .map(|_| {
            let t = Instant::now();
            let s = Command::new("python3")
                .arg(&script)
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success());
            t.elapsed()
        })
        .min()
        .unwrap();

    let gpus: Vec<Gpu> = (0..g).map(|i| Gpu::from_index(i.to_string())).collect();
    let sched = Arc::new(SlotScheduler::for_gpus(
        LocalRunner::new(64 << 20),
        &gpus,
        &RunSettings::default(),
    ));
    let rt = tokio::runtime::Runtime::new().unwrap();
    let wall = rt.block_on(async {
        let t = Instant::now();
        let tasks: Vec<_> = (0..4 * g)
            .map(|i| {
                let d = dir.path().join(format!("r{i}"));
                std::fs::create_dir_all(&d).unwrap();
                let spec = RunSpec {
                    program: "python3".into(),
                    args: vec![script.to_string_lossy().into_owned()],
                    cwd: d.clone(),
                    timeout: Duration::from_secs(60),
                    stdout_path: d.join("out.txt"),
                    stderr_path: d.join("err.txt"),
                    env: vec![],
                    watch_dir: Some(d),
                };
                let s = sched.clone();
                tokio::spawn(async move { s.run(&spec, &CancellationToken::new()).await.unwrap() })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().exit, ExitKind::Success);
        }
        t.elapsed()
    });
    let ideal = direct * 4;
    println!(
        "G={g}, {} runs of {secs} s: wall {:.3} s, ideal {:.3} s (4 × direct {:.3} s), ratio {:.3} (target ≤ 1.05)",
        4 * g,
        wall.as_secs_f64(),
        ideal.as_secs_f64(),
        direct.as_secs_f64(),
        wall.as_secs_f64() / ideal.as_secs_f64()
    );
}
