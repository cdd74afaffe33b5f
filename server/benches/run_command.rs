//! The whole `aisci run` command against running the experiment directly, as a user
//! times them: a 2 s Python experiment that prints a little output, `python3
//! experiment.py --out_dir=run_i` beside `aisci run --gpus "" DIR` (process start,
//! settings, the GPU queue, the runner, the run record and env.json), in alternating
//! pairs. Prints the median of each and their ratio (target: at most 1.02).
//!
//! `cargo bench --bench run_command` (AISCI_BENCH_N overrides the 8 pairs;
//! AISCI_BENCH_BIN names another aisci binary to time).

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const SCRIPT: &str =
    "import time\nfor i in range(20):\n    print(f'step {i}', flush=True)\n    time.sleep(0.1)\n";

/// Wall time of `cmd` to its exit, output discarded; it must succeed.
fn timed(cmd: &mut Command) -> Duration {
    let t = Instant::now();
    let st = cmd.stdout(Stdio::null()).stderr(Stdio::null()).status().unwrap();
    assert!(st.success());
    t.elapsed()
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort();
    v[v.len() / 2]
}

fn main() {
    let n: usize = std::env::var("AISCI_BENCH_N")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(8);
    let home = tempfile::tempdir().unwrap();
    let exp = home.path().join("exp");
    std::fs::create_dir_all(&exp).unwrap();
    std::fs::write(exp.join("experiment.py"), SCRIPT).unwrap();
    let config = home.path().join("config.toml");
    std::fs::write(&config, "").unwrap();
    // AISCI_BENCH_BIN times another build (e.g. an older one) the same way.
    let aisci = std::env::var("AISCI_BENCH_BIN").unwrap_or_else(|_| env!("CARGO_BIN_EXE_aisci").to_string());

    let direct = |i: usize| {
        timed(
            Command::new("python3")
                .args(["experiment.py", &format!("--out_dir=direct_{i}")])
                .current_dir(&exp),
        )
    };
    let whole = || {
        timed(
            Command::new(&aisci)
                .args(["run", "--gpus", ""])
                .arg(&exp)
                .env("HOME", home.path())
                .env("AISCI_CONFIG", &config)
                .env("AISCI_RUNTIME_DIR", home.path().join("runtime")),
        )
    };
    // One of each first: page cache and interpreter warm for both sides.
    direct(0);
    whole();
    let (mut d, mut a) = (Vec::new(), Vec::new());
    for i in 1..=n {
        d.push(direct(i));
        a.push(whole());
    }
    let (md, ma) = (median(d), median(a));
    println!(
        "direct python3 experiment.py: median {:.3} s over {n}\naisci run (whole command):    median {:.3} s over {n}\nratio {:.3} (target ≤ 1.02); aisci's own cost {:.0} ms",
        md.as_secs_f64(),
        ma.as_secs_f64(),
        ma.as_secs_f64() / md.as_secs_f64(),
        (ma.as_secs_f64() - md.as_secs_f64()) * 1000.0
    );
}
