//! `aisci baseline` and `aisci experiment` as a user runs them: the built binary, a
//! user config named by `AISCI_CONFIG` (model endpoint, experiment limits, literature
//! cache in the test's folder), real `python3` on a copy of `templates/tiny_mlp`, and
//! a local fake of the OpenAI API replaying `tests/fixtures/experiment/`. Hermetic.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::{fixtures, tiny_mlp, tiny_mlp_without_ideas};

const IDEA: &str = "init_scale_regimes";

/// tiny_mlp copied to `<dir>/templates/tiny_mlp` (idea folders go to `<dir>/results/`).
fn template_copy(dir: &Path) -> PathBuf {
    tiny_mlp_without_ideas(&dir.join("templates/tiny_mlp"))
}

fn stage_replies() -> Vec<Reply> {
    let dir = fixtures().join("experiment");
    ["1_wider", "2_failing", "3_fix", "4_done", "5_plot", "6_notes"]
        .iter()
        .map(|n| completion(&std::fs::read_to_string(dir.join(format!("{n}.md"))).unwrap()))
        .collect()
}

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-cli-exp", text, 1500, 200)
}

fn config_toml(dir: &Path, llm: &str) -> String {
    format!(
        "{llm}\n[experiment]\ntimeout_secs = 30\nmax_attempts = 3\nplot_timeout_secs = 30\n\n\
         [literature]\ncache_dir = {:?}\n",
        dir.join("lit-cache").display().to_string()
    )
}

/// Runs `aisci args…` with only the environment given here (plus PATH and HOME in
/// the test folder), the user config `config`.
async fn aisci(dir: &Path, config: &str, args: &[&str]) -> (Output, Duration) {
    let cfg = dir.join("user-config.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = crate::support::cli::aisci(dir, &cfg);
    cmd.args(args).current_dir(dir);
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("aisci finished within 20 s")
        .unwrap();
    (out, started.elapsed())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_baseline_makes_run_0() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    std::fs::remove_dir_all(t.join("run_0")).unwrap();
    let config = config_toml(dir.path(), "");
    let (out, took) = aisci(
        dir.path(),
        &config,
        &["baseline", "--template", t.to_str().unwrap()],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 1, "{stdout}");
    assert!(lines[0].starts_with("baseline (run_0) ✓ "), "{stdout}");
    assert!(!lines[0].contains("vs baseline"), "{stdout}");
    assert!(stderr.contains("aisci: running the baseline in"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("run_0/final_info.json")).unwrap()).unwrap();
    assert!(info["circles"]["means"]["final_val_acc_mean"].is_number());
    assert!(t.join("run_0/aisci_run.json").is_file());
    eprintln!("aisci baseline: {took:?}");
    assert!(took < Duration::from_secs(10), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_experiment_implements_a_seed_idea() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let fake = FakeLlm::start(stage_replies()).await;
    let llm = format!(
        "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n",
        fake.v1()
    );
    let config = config_toml(dir.path(), &llm);
    let (out, took) = aisci(
        dir.path(),
        &config,
        &["experiment", "--template", t.to_str().unwrap(), "--idea", IDEA],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);

    // One headline per attempt as it ends, then the summary.
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 4, "{stdout}");
    assert!(lines[0].starts_with("run_1 ✓ "), "{stdout}");
    assert!(lines[0].ends_with("baseline)"), "{stdout}");
    assert_eq!(
        lines[1], "run_2 ✗ ValueError: shapes do not match (attempt 1)",
        "{stdout}"
    );
    assert!(
        lines[2].starts_with("run_2 ✓ ") && lines[2].ends_with("baseline)"),
        "{stdout}"
    );
    assert!(
        lines[3].starts_with("2 run(s) completed (run_1, run_2), 1 failed attempt(s); the model finished (ALL_COMPLETED); plots: summary.png; figure critique skipped: local-model takes no images (set llm.vision = \"yes\" if it does); notes.txt updated. 6 model call(s)"),
        "{stdout}"
    );
    assert!(lines[3].contains("local-model via vllm"), "{stdout}");
    // Progress and what happened go to stderr.
    assert!(stderr.contains("aisci: created "), "{stderr}");
    assert!(
        stderr.contains(&format!("aisci: implementing {IDEA} in ")),
        "{stderr}"
    );
    assert!(stderr.contains("aisci: run_2, attempt 2…"), "{stderr}");
    assert!(!stderr.contains("warning"), "{stderr}");

    let parent = dir.path().join("results/tiny_mlp");
    let folders: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    let f = &folders[0];
    assert!(f.to_str().unwrap().ends_with(&format!("_{IDEA}")));
    for i in [1, 2] {
        assert!(f.join(format!("run_{i}/final_info.json")).is_file());
        assert!(f.join(format!("run_{i}.py")).is_file());
    }
    assert!(f.join(".aisci/attempts/run_2/attempt_1/stderr.txt").is_file());
    let notes = std::fs::read_to_string(f.join("notes.txt")).unwrap();
    assert!(notes.starts_with("# Title: Lazy or Rich?"), "{notes}");
    assert!(notes.contains("Figure summary.png"), "{notes}");
    let code = std::fs::read_to_string(f.join("experiment.py")).unwrap();
    assert!(code.contains("init_scale=0.3") && !code.contains("raise ValueError(\"shapes"));
    // The template itself is untouched.
    assert_eq!(
        std::fs::read_to_string(t.join("experiment.py")).unwrap(),
        std::fs::read_to_string(tiny_mlp().join("experiment.py")).unwrap()
    );
    assert!(f.join(".aisci/usage.jsonl").is_file());
    assert_eq!(fake.hits(), 6);
    eprintln!("aisci experiment: {took:?}");
    assert!(took < Duration::from_secs(14), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_experiment_without_the_key_creates_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let fake = FakeLlm::start(vec![]).await;
    let llm = format!(
        "[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-2024-11-20\"\n",
        fake.v1()
    );
    let config = config_toml(dir.path(), &llm);
    // env_clear() in the helper: OPENAI_API_KEY is not in the child's environment.
    let (out, _) = aisci(
        dir.path(),
        &config,
        &["experiment", "--template", t.to_str().unwrap(), "--idea", IDEA],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert!(!dir.path().join("results").exists(), "no results/ folder");
    assert_eq!(fake.hits(), 0);
}

/// `--idea A --idea B --parallel 2`: both ideas are implemented at the same time, each
/// in its own folder and conversation, their runs sharing two CPU slots.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_experiment_runs_two_ideas_in_parallel() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    // Each idea's conversation gets its own script; every reply takes 300 ms, so ideas
    // run one after the other would not overlap in time.
    const KEYS: [(&str, &str); 2] = [
        ("learning_rate_warmup", "Warmup versus Constant SGD"),
        (IDEA, "Lazy or Rich?"),
    ];
    let delayed = || {
        stage_replies()
            .into_iter()
            .map(|r| r.delayed(Duration::from_millis(300)))
            .collect::<Vec<_>>()
    };
    let fake = FakeLlm::start_routed(
        vec![],
        KEYS.iter().map(|(_, key)| (key.to_string(), delayed())).collect(),
    )
    .await;
    let llm = format!(
        "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n",
        fake.v1()
    );
    let config = format!(
        "{}\n[run]\ngpus = []\ncpu_slots = 2\n",
        config_toml(dir.path(), &llm)
    );
    let (out, took) = aisci(
        dir.path(),
        &config,
        &[
            "experiment",
            "--template",
            t.to_str().unwrap(),
            "--idea",
            KEYS[0].0,
            "--idea",
            KEYS[1].0,
            "--parallel",
            "2",
        ],
    )
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);
    assert!(stderr.contains("implementing 2 idea(s), 2 at a time"), "{stderr}");
    for (name, _) in KEYS {
        assert!(stdout.contains(&format!("[{name}] run_1 ✓ ")), "{name}: {stdout}");
        assert!(
            stdout.contains(&format!("\n{name}: 2 run(s) completed (run_1, run_2)")),
            "{name}: {stdout}"
        );
    }
    let parent = dir.path().join("results/tiny_mlp");
    let mut folders: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    folders.sort();
    assert_eq!(folders.len(), 2, "{folders:?}");
    for (name, _) in KEYS {
        let f = folders
            .iter()
            .find(|f| f.to_str().unwrap().ends_with(&format!("_{name}")))
            .unwrap_or_else(|| panic!("no folder for {name}: {folders:?}"));
        for i in [1, 2] {
            assert!(
                f.join(format!("run_{i}/final_info.json")).is_file(),
                "{name} run_{i}"
            );
        }
        assert!(f.join(".aisci/usage.jsonl").is_file());
    }
    // Overlap: each conversation's first request came before the other's last.
    let seen = fake.seen();
    let window = |key: &str| {
        let times: Vec<_> = seen
            .iter()
            .filter(|s| s.body.to_string().contains(key))
            .map(|s| s.at)
            .collect();
        assert_eq!(times.len(), 6, "{key}: every stage call answered from its route");
        (*times.iter().min().unwrap(), *times.iter().max().unwrap())
    };
    let (a0, a1) = window(KEYS[0].1);
    let (b0, b1) = window(KEYS[1].1);
    assert!(a0 < b1 && b0 < a1, "the two ideas ran one after the other");
    assert_eq!(fake.hits(), 12);
    eprintln!("two ideas in parallel: {took:?}");
}
