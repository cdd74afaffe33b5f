//! Overhead of LocalRunner over a bare `std::process::Command` for a 2 s Python
//! experiment that prints a little output. Prints the mean of each and their ratio
//! (target: at most 1.02). LocalRunner runs as `aisci run` does: a shell leader that
//! records the exit status, logs followed from their files, a control group with the
//! default process limit where the machine has one.
//!
//! `cargo bench --bench runner` (AISCI_BENCH_N overrides the 5 runs per side).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use aisci::runner::{ExitKind, LocalRunner, RunSpec, Runner};
use tokio_util::sync::CancellationToken;

const SCRIPT: &str =
    "import time\nfor i in range(20):\n    print(f'step {i}', flush=True)\n    time.sleep(0.1)\n";

fn main() {
    let n: usize = std::env::var("AISCI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(5);
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("experiment.py");
    std::fs::write(&script, SCRIPT).unwrap();
    let rt = tokio::runtime::Runtime::new().unwrap();
    let runner = LocalRunner::new(64 << 20).with_max_processes(Some(1024));
    let spec = RunSpec {
        program: "python3".into(),
        args: vec![script.to_string_lossy().into_owned()],
        cwd: dir.path().to_path_buf(),
        timeout: Duration::from_secs(60),
        stdout_path: dir.path().join("out.txt"),
        stderr_path: dir.path().join("err.txt"),
        env: vec![],
        watch_dir: None,
    };

    let direct = |_: usize| {
        let t = Instant::now();
        let status = Command::new("python3")
            .arg(&script)
            .current_dir(dir.path())
            .stdout(Stdio::null())
            .status()
            .unwrap();
        assert!(status.success());
        t.elapsed()
    };
    let local = |_: usize| {
        let t = Instant::now();
        let out = rt.block_on(runner.run(&spec, &CancellationToken::new())).unwrap();
        assert_eq!(out.exit, ExitKind::Success);
        t.elapsed()
    };

    // Interleaved, so drift on a shared machine hits both sides alike.
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for i in 0..n {
        a.push(direct(i));
        b.push(local(i));
    }
    let mean = |v: &[Duration]| v.iter().sum::<Duration>().as_secs_f64() / v.len() as f64;
    let (ma, mb) = (mean(&a), mean(&b));
    println!("direct std::process::Command: mean {ma:.4} s over {n} runs {a:?}");
    println!("LocalRunner:                  mean {mb:.4} s over {n} runs {b:?}");
    println!("ratio LocalRunner/direct: {:.4} (target <= 1.02)", mb / ma);
}
