//! The tree search's parallel workers, as a user runs them: `aisci experiment` (the
//! built binary) with `experiment.search = "tree"` on a toy template whose every run
//! sleeps T seconds, against a fake model that answers at once with an edit that makes a
//! new variant. Wall time of the whole command against the ideal schedule (the N variants
//! and the S seed reruns, W at a time: (ceil(N/W) + ceil(S/W)) × one run launched directly,
//! Python's start included), and the workers' idle share (1 − the runs' own time / (W ×
//! wall)), for one worker, for
//! two workers on two fake GPUs (`run.gpus = ["0", "1"]`), and for two workers on the test
//! Slurm cluster when `SLURM_CONF` names one that answers (`scripts/slurm-up`).
//!
//!     cargo bench -p aisci --bench search   # (under `cargo test`: 3 variants of 0.3 s, no Slurm)
//!     AISCI_BENCH_NODES=8 AISCI_BENCH_SECS=1.0 cargo bench -p aisci --bench search
//!
//! What the ratio above 1 holds: aisci's start and the baseline's reading, the model's
//! answers (instant here), each run's record and folder, the plot and notes stages after
//! the search (a Python start each), and for Slurm its submission and polling.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::Arc;
use std::time::Instant;

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

/// The fake model: a search proposal gets an edit of the `K = …` line it is shown to a
/// value no other variant had; anything else (plot, notes) gets a plain answer.
struct Model {
    next: AtomicU32,
    calls: AtomicU32,
}

async fn handle(State(m): State<Arc<Model>>, body: Bytes) -> Response {
    m.calls.fetch_add(1, Ordering::Relaxed);
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let text = |v: &Value| v["content"].as_str().unwrap_or("").to_string();
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let last = messages
        .iter()
        .rev()
        .find(|v| v["role"] == "user")
        .map(text)
        .unwrap_or_default();
    let reply = match last.lines().find(|l| l.starts_with("K = ")) {
        Some(line) => {
            let k = m.next.fetch_add(1, Ordering::Relaxed) + 1;
            format!(
                "PLAN: Try K = {k}.\n\nexperiment.py\n```python\n<<<<<<< SEARCH\n{line}\n=======\nK = {k}\n>>>>>>> REPLACE\n```\n"
            )
        }
        None => "Nothing to change here.".to_string(),
    };
    let body = json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "created": 1, "model": "local-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 500, "completion_tokens": 60, "total_tokens": 560}
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into())
        .unwrap()
}

async fn serve(m: Arc<Model>) -> String {
    let app = Router::new().fallback(handle).with_state(m);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        axum::serve(listener, app).await.ok();
    });
    format!("http://{addr}/v1")
}

fn template(dir: &Path, secs: f64) -> PathBuf {
    let t = dir.join("templates/toy");
    std::fs::create_dir_all(t.join("latex")).unwrap();
    std::fs::write(
        t.join("experiment.py"),
        format!(
            "import argparse, json, os, time\n\nK = 0\n\n\ndef main():\n    p = argparse.ArgumentParser()\n    p.add_argument('--out_dir', default='run_0')\n    out = p.parse_args().out_dir\n    seed = int(os.environ.get('EXPERIMENT_SEED', '0') or 0)\n    time.sleep({secs})\n    os.makedirs(out, exist_ok=True)\n    with open(os.path.join(out, 'final_info.json'), 'w') as f:\n        json.dump({{'toy': {{'means': {{'loss': 1.0 / (1 + K) + 0.001 * seed}}}}}}, f)\n\n\nif __name__ == '__main__':\n    main()\n"
        ),
    )
    .unwrap();
    std::fs::write(t.join("plot.py"), "print('no figures')\n").unwrap();
    std::fs::write(
        t.join("latex/template.tex"),
        "\\documentclass{article}\\begin{document}\\end{document}\n",
    )
    .unwrap();
    std::fs::write(
        t.join("prompt.json"),
        r#"{"system": "A toy.", "task_description": "A toy.", "metric": "loss", "direction": "min"}"#,
    )
    .unwrap();
    std::fs::write(
        t.join("seed_ideas.json"),
        r#"[{"Name": "toy", "Title": "Toy", "Experiment": "Lower the loss.", "Interestingness": 1, "Feasibility": 10, "Novelty": 1}]"#,
    )
    .unwrap();
    t
}

struct Case {
    name: &'static str,
    workers: u32,
    run: String,
}

fn aisci(dir: &Path, cfg: &Path) -> tokio::process::Command {
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AISCI_CONFIG", cfg)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    if let Some(c) = std::env::var_os("SLURM_CONF") {
        cmd.env("SLURM_CONF", c);
    }
    cmd
}

struct Searched {
    wall: f64,
    ran: u32,
    reran: u32,
    /// The node runs' own time (their records' durations), seed reruns included.
    busy: f64,
}

/// One search: its wall time, the runs it made and their time.
async fn search(case: &Case, nodes: u32, seeds: u32, secs: f64) -> Option<Searched> {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path(), secs);
    let model = Arc::new(Model {
        next: AtomicU32::new(0),
        calls: AtomicU32::new(0),
    });
    let url = serve(model.clone()).await;
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nprovider = \"vllm\"\nbase_url = {url:?}\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n\n\
             {}\n\n\
             [experiment]\nsearch = \"tree\"\ntimeout_secs = 120\n\n\
             [experiment.tree]\nmax_nodes = {nodes}\nworkers = {}\nseeds = {seeds}\nsmoke = false\nduplicate_similarity = 1.0\n",
            case.run, case.workers
        ),
    )
    .unwrap();
    let base = aisci(dir.path(), &cfg)
        .args(["baseline", "--template"])
        .arg(&t)
        .output()
        .await
        .unwrap();
    if !base.status.success() {
        eprintln!(
            "{}: the baseline failed: {}",
            case.name,
            String::from_utf8_lossy(&base.stderr)
        );
        return None;
    }
    let started = Instant::now();
    let out = aisci(dir.path(), &cfg)
        .args(["experiment", "--template"])
        .arg(&t)
        .args(["--idea", "toy"])
        .output()
        .await
        .unwrap();
    let wall = started.elapsed().as_secs_f64();
    if !out.status.success() {
        eprintln!(
            "{}: aisci experiment failed ({}):\n{}\n{}",
            case.name,
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        return None;
    }
    let folder = std::fs::read_dir(dir.path().join("results/toy"))
        .unwrap()
        .next()
        .unwrap()
        .unwrap()
        .path();
    let tree: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join(".aisci/tree/tree.json")).unwrap())
            .unwrap();
    let ran = tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["kind"] != "baseline" && n["state"] == "done")
        .count() as u32;
    let reran = tree["seeds"]["scores"].as_array().map_or(0, |s| s.len() as u32);
    let mut busy = 0.0;
    for node in std::fs::read_dir(folder.join(".aisci/tree")).unwrap().flatten() {
        for run in std::fs::read_dir(node.path()).into_iter().flatten().flatten() {
            if let Ok(text) = std::fs::read_to_string(run.path().join("aisci_run.json")) {
                let v: Value = serde_json::from_str(&text).unwrap_or_default();
                busy += v["duration_secs"].as_f64().unwrap_or(0.0);
            }
        }
    }
    Some(Searched {
        wall,
        ran,
        reran,
        busy,
    })
}

/// One run of the toy launched directly, the best of 3: the ideal schedule's unit.
fn direct_run(secs: f64) -> f64 {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path(), secs);
    (0..3)
        .map(|i| {
            let started = Instant::now();
            let s = std::process::Command::new("python3")
                .arg(t.join("experiment.py"))
                .arg(format!(
                    "--out_dir={}",
                    dir.path().join(format!("d{i}")).display()
                ))
                .stdout(Stdio::null())
                .status()
                .unwrap();
            assert!(s.success());
            started.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn slurm_answers() -> bool {
    std::env::var_os("SLURM_CONF").is_some()
        && std::process::Command::new("sinfo")
            .arg("-h")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
}

fn main() {
    let env = |k: &str| std::env::var(k).ok();
    // `cargo test --all-targets` runs this too (without `--bench`): a short check that it
    // works, not the measurement.
    let measuring = std::env::args().any(|a| a == "--bench");
    let nodes: u32 = env("AISCI_BENCH_NODES")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 8 } else { 3 });
    let seeds: u32 = env("AISCI_BENCH_SEEDS").and_then(|v| v.parse().ok()).unwrap_or(2);
    let secs: f64 = env("AISCI_BENCH_SECS")
        .and_then(|v| v.parse().ok())
        .unwrap_or(if measuring { 2.0 } else { 0.3 });
    let mut cases = vec![
        Case {
            name: "local, 1 worker",
            workers: 1,
            run: "[run]\ngpus = []\ncpu_slots = 1".into(),
        },
        Case {
            name: "local, 2 workers, 2 fake GPUs",
            workers: 2,
            run: "[run]\ngpus = [\"0\", \"1\"]\nruns_per_gpu = 1".into(),
        },
    ];
    if measuring && slurm_answers() {
        cases.push(Case {
            name: "Slurm, 2 workers",
            workers: 2,
            run: "[run]\nrunner = \"slurm\"\ngpus = []\ncpu_slots = 2\n\n[run.slurm]\npoll_ms = 100".into(),
        });
    } else if measuring {
        eprintln!(
            "search bench: no Slurm answers (SLURM_CONF unset or sinfo fails): the Slurm case is left out"
        );
    }
    let rt = tokio::runtime::Runtime::new().unwrap();
    let unit = direct_run(secs);
    println!(
        "tree search, {nodes} variants + {seeds} seed reruns, each run {secs} s of work ({unit:.3} s launched directly); aisci experiment, the whole command"
    );
    println!(
        "{:<32} {:>8} {:>8} {:>7} {:>6} {:>6}",
        "case", "wall s", "ideal s", "ratio", "idle", "runs"
    );
    let mut walls = Vec::new();
    for case in &cases {
        let Some(r) = rt.block_on(search(case, nodes, seeds, secs)) else {
            continue;
        };
        let w = case.workers.max(1);
        let ideal = (r.ran.div_ceil(w) + r.reran.div_ceil(w)) as f64 * unit;
        let idle = 1.0 - r.busy / (w as f64 * r.wall);
        println!(
            "{:<32} {:>8.2} {:>8.2} {:>7.3} {:>5.1}% {:>3}+{}",
            case.name,
            r.wall,
            ideal,
            r.wall / ideal,
            idle * 100.0,
            r.ran,
            r.reran
        );
        walls.push((case.name, r.wall));
    }
    if let (Some((_, one)), Some((_, two))) = (walls.first(), walls.get(1)) {
        println!("speed-up of 2 workers over 1: {:.2}× (ideal 2×)", one / two);
    }
    if measuring && slurm_answers() {
        if let Some(l) = slurm_start_latency() {
            println!("this Slurm's own start latency (sbatch of a no-op job to its first line), best of 3: {l:.3} s per job");
        }
    }
}

/// From `sbatch` returning to the job's first command running, the best of 3: what
/// Slurm itself adds to every run before aisci sees it start.
fn slurm_start_latency() -> Option<f64> {
    let dir = tempfile::tempdir().ok()?;
    let mut best = f64::INFINITY;
    for i in 0..3 {
        let mark = dir.path().join(format!("started_{i}"));
        let t0 = std::time::SystemTime::now();
        let ok = std::process::Command::new("sbatch")
            .args(["--quiet", "-o", "/dev/null", "--wrap"])
            .arg(format!("date +%s.%N > {}", mark.display()))
            .status()
            .ok()?
            .success();
        if !ok {
            return None;
        }
        let deadline = Instant::now() + std::time::Duration::from_secs(30);
        let started = loop {
            if let Some(t) = std::fs::read_to_string(&mark)
                .ok()
                .and_then(|t| t.trim().parse::<f64>().ok())
            {
                break t;
            }
            if Instant::now() > deadline {
                return None;
            }
            std::thread::sleep(std::time::Duration::from_millis(10));
        };
        let submitted = t0.duration_since(std::time::UNIX_EPOCH).ok()?.as_secs_f64();
        best = best.min(started - submitted);
    }
    Some(best)
}
