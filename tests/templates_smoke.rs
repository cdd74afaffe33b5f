//! Each research template under `templates/`, as a user gets it: copied to a fresh
//! folder, its baseline made by the real `aisci baseline --template DIR` (the built
//! binary, a user config naming the interpreter), then its `plot.py` run there. The
//! PyTorch templates run in smoke mode (`EXPERIMENT_SMOKE=1`, which the runner passes
//! through to the experiment) with the interpreter named by `AISCI_TEMPLATE_PYTHON`
//! (torch, numpy, matplotlib; `scripts/test` installs it with `scripts/torch-up`);
//! tiny_mlp's experiment runs with plain `python3`. A missing interpreter fails the
//! tests: they never skip.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use aisci::project::{check_template, Overlay};
use aisci::workspace::python::{out_dir_problem, PyFacts};
use aisci::workspace::syntax::parse_python;
use serde_json::Value;

use crate::support::fs::{copy_dir, templates};

const BASELINE_LIMIT: Duration = Duration::from_secs(300);

struct Expect {
    template: &'static str,
    datasets: &'static [&'static str],
    metrics: &'static [&'static str],
    figures: &'static [&'static str],
}

/// The interpreter with torch, numpy and matplotlib, checked to import them.
fn torch_python() -> String {
    let py = std::env::var("AISCI_TEMPLATE_PYTHON").unwrap_or_default();
    assert!(
        !py.is_empty(),
        "AISCI_TEMPLATE_PYTHON is not set: it must name a Python with torch, numpy and \
         matplotlib (scripts/test sets it; or run `export AISCI_TEMPLATE_PYTHON=$(scripts/torch-up)`)"
    );
    let probe = std::process::Command::new(&py)
        .args(["-c", "import torch, numpy, matplotlib"])
        .output()
        .unwrap_or_else(|e| panic!("AISCI_TEMPLATE_PYTHON={py} cannot be started: {e}"));
    assert!(
        probe.status.success(),
        "AISCI_TEMPLATE_PYTHON={py} cannot import torch, numpy and matplotlib:\n{}",
        String::from_utf8_lossy(&probe.stderr)
    );
    py
}

/// `templates/<name>` copied to `<dir>/templates/<name>` without a baseline.
fn template_copy(dir: &Path, name: &str) -> PathBuf {
    let t = dir.join("templates").join(name);
    copy_dir(&templates().join(name), &t);
    let _ = std::fs::remove_dir_all(t.join("run_0"));
    t
}

/// `aisci baseline --template t` with only PATH, HOME, the user config and the smoke
/// switch in its environment.
async fn baseline(dir: &Path, t: &Path, python: &str) -> Duration {
    let cfg = dir.join("user-config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[run]\npython = {python:?}\n\n[experiment]\ntimeout_secs = {}\n",
            BASELINE_LIMIT.as_secs()
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.args(["baseline", "--template", t.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .env("AISCI_CONFIG", &cfg)
        .env("EXPERIMENT_SMOKE", "1")
        .current_dir(dir)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let out = tokio::time::timeout(
        BASELINE_LIMIT + Duration::from_secs(30),
        cmd.spawn().unwrap().wait_with_output(),
    )
    .await
    .expect("aisci baseline finished in time")
    .unwrap();
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let run_stderr = std::fs::read_to_string(t.join("run_0/stderr.txt")).unwrap_or_default();
    assert!(
        out.status.success(),
        "aisci baseline failed ({}):\n{stdout}\n{stderr}\nrun_0/stderr.txt:\n{run_stderr}",
        out.status
    );
    assert!(stdout.starts_with("baseline (run_0) ✓ "), "{stdout}");
    took
}

/// run_0/final_info.json: v1's shape, exactly the expected datasets, each with the
/// expected metrics as finite numbers.
fn check_final_info(t: &Path, e: &Expect) {
    let path = t.join("run_0/final_info.json");
    let text = std::fs::read_to_string(&path).expect("run_0/final_info.json exists");
    let info: Value = serde_json::from_str(&text).expect("final_info.json is JSON");
    let obj = info.as_object().expect("final_info.json is an object");
    let mut found: Vec<&str> = obj.keys().map(String::as_str).collect();
    found.sort();
    let mut want = e.datasets.to_vec();
    want.sort();
    assert_eq!(found, want, "{}: datasets in final_info.json", e.template);
    for d in e.datasets {
        let means = obj[*d]["means"]
            .as_object()
            .unwrap_or_else(|| panic!("{}: {d} has no \"means\" object", e.template));
        for m in e.metrics {
            let v = means
                .get(*m)
                .and_then(Value::as_f64)
                .unwrap_or_else(|| panic!("{}: {d}.means.{m} is not a number: {text}", e.template));
            assert!(v.is_finite(), "{}: {d}.means.{m} = {v}", e.template);
        }
    }
    let parsed = aisci::project::FinalInfo::parse(&text).expect("aisci reads it");
    assert!(parsed.mean_count() >= e.datasets.len() * e.metrics.len());
}

/// `python plot.py` in the template folder; every expected figure is a real PNG.
fn check_plots(t: &Path, python: &str, e: &Expect) {
    let out = std::process::Command::new(python)
        .arg("plot.py")
        .current_dir(t)
        .env("MPLCONFIGDIR", t.join(".mplconfig"))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}: plot.py failed:\n{}",
        e.template,
        String::from_utf8_lossy(&out.stderr)
    );
    for f in e.figures {
        let bytes =
            std::fs::read(t.join(f)).unwrap_or_else(|_| panic!("{}: plot.py made no {f}", e.template));
        assert!(
            bytes.len() > 1000 && bytes.starts_with(b"\x89PNG\r\n\x1a\n") && &bytes[12..16] == b"IHDR",
            "{}: {f} is not a PNG",
            e.template
        );
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert!(
            width >= 100 && height >= 100,
            "{}: {f} is {width}x{height}",
            e.template
        );
    }
    // The paper skeleton shows figures that plot.py makes.
    let tex = std::fs::read_to_string(t.join("latex/template.tex")).unwrap();
    for part in tex.split("\\includegraphics").skip(1) {
        let name = part.split('{').nth(1).and_then(|s| s.split('}').next()).unwrap();
        assert!(
            t.join(name).is_file(),
            "{}: latex/template.tex shows {name}, which plot.py did not make",
            e.template
        );
    }
}

/// No problem from aisci's template checks (files, JSON schemas, baseline) nor the
/// `--out_dir` check the editor runs on experiment.py.
fn check_no_diagnostics(t: &Path, e: &Expect) {
    let problems = check_template(t, &Overlay::new());
    assert!(problems.is_empty(), "{}: {problems:#?}", e.template);
    let src = std::fs::read_to_string(t.join("experiment.py")).unwrap();
    let tree = parse_python(&src, None).unwrap();
    assert!(
        !tree.root_node().has_error(),
        "{}: experiment.py does not parse",
        e.template
    );
    let facts = PyFacts::of_tree(&tree, &src);
    assert!(out_dir_problem(&t.join("experiment.py"), &facts).is_none());
}

/// Makes the baseline of a copy of the template (the experiment run by
/// `experiment_python`, else the torch interpreter), plots it and checks everything.
/// Returns the copy (with the folder that holds it).
async fn smoke(e: &Expect, experiment_python: Option<&str>) -> (tempfile::TempDir, PathBuf) {
    let plot_python = torch_python();
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path(), e.template);
    let took = baseline(dir.path(), &t, experiment_python.unwrap_or(&plot_python)).await;
    eprintln!("{}: aisci baseline (smoke) took {took:.1?}", e.template);
    check_final_info(&t, e);
    check_plots(&t, &plot_python, e);
    check_no_diagnostics(&t, e);
    (dir, t)
}

/// A PyTorch template's smoke run; its experiment prints its mode first, which shows
/// that EXPERIMENT_SMOKE reached it through the runner's environment.
async fn smoke_torch(e: Expect) -> (tempfile::TempDir, PathBuf) {
    let (dir, t) = smoke(&e, None).await;
    let stdout = std::fs::read_to_string(t.join("run_0/stdout.txt")).expect("run_0/stdout.txt");
    assert!(stdout.contains("smoke=True"), "{}: {stdout}", e.template);
    (dir, t)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn diffusion_2d_smoke() {
    let e = Expect {
        template: "2d_diffusion",
        datasets: &["circle", "moons", "spiral", "checkerboard"],
        metrics: &["training_time", "eval_loss", "inference_time", "kl_divergence"],
        figures: &["train_loss.png", "generated_images.png", "kl_divergence.png"],
    };
    smoke_torch(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn grokking_smoke() {
    let e = Expect {
        template: "grokking",
        datasets: &["x_plus_y", "x_minus_y", "x_div_y", "x2_plus_xy_plus_y2"],
        metrics: &[
            "final_train_loss_mean",
            "final_val_loss_mean",
            "final_train_acc_mean",
            "final_val_acc_mean",
            "step_val_acc_99_mean",
            "train_time_mean",
        ],
        figures: &["train_acc.png", "val_acc.png", "train_loss.png", "val_loss.png"],
    };
    smoke_torch(e).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nanogpt_lite_smoke() {
    let e = Expect {
        template: "nanogpt_lite",
        datasets: &["pride_prejudice_char"],
        metrics: &[
            "final_train_loss_mean",
            "best_val_loss_mean",
            "total_train_time_mean",
            "avg_inference_tokens_per_second_mean",
        ],
        figures: &["train_loss.png", "val_loss.png"],
    };
    let (_dir, t) = smoke_torch(e).await;
    // The generated text: a header, then the prompt (a newline) and 20 sampled characters.
    let samples = std::fs::read_to_string(t.join("samples.txt")).expect("plot.py wrote samples.txt");
    let header = "=== Baseline, pride_prejudice_char, seed 0\n";
    assert!(samples.starts_with(header), "{samples}");
    assert!(samples.len() >= header.len() + 21, "{samples:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tiny_mlp_with_plain_python3() {
    let e = Expect {
        template: "tiny_mlp",
        datasets: &["blobs", "moons", "circles"],
        metrics: &[
            "final_val_acc_mean",
            "final_val_loss_mean",
            "steps_to_90_val_acc_mean",
            "train_time_mean",
        ],
        figures: &["val_acc.png", "val_loss.png"],
    };
    smoke(&e, Some("python3")).await;
}

/// `aisci doctor` on the repository's templates with the torch interpreter: every
/// import of every template's experiment.py and plot.py is found.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_finds_every_template_import() {
    let python = torch_python();
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("user-config.toml");
    // The model endpoint is a closed local port.
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nprovider = \"openai\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmodel = \"gpt-4o\"\n\n\
             [run]\npython = {python:?}\ngpus = []\n"
        ),
    )
    .unwrap();
    let templates = templates();
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"))
        .args(["doctor", templates.to_str().unwrap()])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        .env("AISCI_CONFIG", &cfg)
        .current_dir(dir.path())
        .stdin(Stdio::null())
        .kill_on_drop(true)
        .output()
        .await
        .unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    for (template, imports) in [
        ("2d_diffusion", "numpy, torch, matplotlib"),
        ("grokking", "torch, matplotlib, numpy"),
        ("nanogpt_lite", "torch, matplotlib, numpy"),
        ("tiny_mlp", "argparse, json, math, os, random, time"),
    ] {
        let line = text
            .lines()
            .find(|l| l.contains(&format!(" template {template}: ")))
            .unwrap_or_else(|| panic!("doctor does not report {template}:\n{text}"));
        assert!(line.trim_start().starts_with("✓ "), "{line}\n{text}");
        for m in imports.split(", ") {
            assert!(
                line.split(": ").nth(1).unwrap().split(", ").any(|x| x == m),
                "{m} not in {line}"
            );
        }
    }
}
