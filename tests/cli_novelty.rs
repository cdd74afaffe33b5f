//! `aisci novelty` as a user runs it: the built binary, a user config file named by
//! `AISCI_CONFIG` (model endpoint, literature cache in the test's folder), the engines
//! and Semantic Scholar's address from `AISCI_ENGINES` / `AISCI_S2_URL`, and fakes of
//! the model and of Semantic Scholar. Hermetic: no real config, cache or network.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_lit::{FakeLit, Route};
use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::tiny_mlp_with_seed_ideas;

const IDEA_A: &str = "learning_rate_warmup";
const IDEA_B: &str = "init_scale_regimes";
const PAPERQA: &str = "PaperQA: Retrieval-Augmented Generative Agent for Scientific Research";

/// tiny_mlp with ideas.json = its two seed ideas, unchecked.
fn template(dir: &Path) -> PathBuf {
    tiny_mlp_with_seed_ideas(&dir.join("tiny_mlp"))
}

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-cli", text, 1000, 100)
}

/// Runs `aisci novelty --template T args…` with only the environment given here
/// (plus PATH/HOME), a user config with `config` as its text.
async fn aisci_novelty(dir: &Path, t: &Path, config: &str, env: &[(&str, String)], args: &[&str]) -> Output {
    let cfg = dir.join("user-config.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = crate::support::cli::aisci(dir, &cfg);
    cmd.arg("novelty").arg("--template").arg(t).args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    let child = cmd.spawn().unwrap();
    tokio::time::timeout(Duration::from_secs(20), child.wait_with_output())
        .await
        .expect("aisci novelty finished within 20 s")
        .unwrap()
}

fn literature_toml(cache: &Path) -> String {
    format!(
        "[literature]\ncache_dir = {:?}\ns2_rate_per_sec = 100.0\ns2_rate_per_sec_no_key = 100.0\n\
         max_retries = 0\nmax_retry_secs = 5\n\n[novelty]\nmax_rounds = 4\n",
        cache.display().to_string()
    )
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_novelty_checks_one_idea_and_records_the_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let llm = FakeLlm::start(vec![
        completion(
            "THOUGHT:\nLet me search.\n\nRESPONSE:\n```json\n{\"Query\": \"lazy rich regime initialisation scale\"}\n```",
        ),
        completion(
            "THOUGHT:\nPaper 2 covers it.\nDecision made: not novel.\n\nRESPONSE:\n```json\n{\"Reason\": \"Paper 2 already does this.\", \"Closest\": [2]}\n```",
        ),
    ])
    .await;
    let lit = FakeLit::start().await;
    let cache = dir.path().join("lit-cache");
    let config = format!(
        "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n\n{}",
        llm.v1(),
        literature_toml(&cache)
    );
    let env = [
        ("AISCI_S2_URL", lit.s2_url()),
        ("AISCI_ENGINES", "semanticscholar".to_string()),
    ];
    let started = Instant::now();
    let out = aisci_novelty(dir.path(), &t, &config, &env, &["--idea", IDEA_B]).await;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);

    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(
        lines[0],
        format!("{IDEA_B}: not novel — Paper 2 already does this."),
        "{stdout}"
    );
    assert!(
        lines[1].starts_with("novelty checked for 1 idea(s): 0 novel."),
        "{stdout}"
    );
    assert!(
        lines[1].contains("2 model call(s)") && lines[1].contains("local-model via vllm"),
        "{stdout}"
    );
    assert_eq!(lines.len(), 2, "{stdout}");
    // Progress and the engines go to stderr.
    assert!(stderr.contains("engines: semanticscholar"), "{stderr}");
    assert!(
        stderr.contains(&format!("Novelty 1/1: {IDEA_B}, round 1/4")),
        "{stderr}"
    );
    assert!(!stderr.contains("warning"), "{stderr}");

    let ideas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(t.join("ideas.json")).unwrap()).unwrap();
    assert!(ideas[0].get("novel").is_none(), "{IDEA_A} was not asked for");
    assert_eq!(ideas[1]["Name"], IDEA_B);
    assert_eq!(ideas[1]["novel"], false);
    assert_eq!(ideas[1]["novelty"]["closest"][0]["title"], PAPERQA);
    assert_eq!(ideas[1]["novelty"]["reason"], "Paper 2 already does this.");
    assert_eq!(
        ideas[1]["novelty"]["queries"],
        json!(["lazy rich regime initialisation scale"])
    );

    assert_eq!(llm.hits(), 2);
    assert_eq!(lit.hits(Route::S2Search), 1);
    assert_eq!(lit.total_hits(), 1);
    // The cache went where the user config said, and the usage ledger was kept.
    assert_eq!(std::fs::read_dir(cache.join("search")).unwrap().count(), 1);
    assert!(t.join(".aisci/usage.jsonl").exists());
    assert!(took < Duration::from_secs(10), "took {took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cli_novelty_without_the_model_key_fails_before_any_request() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let before = std::fs::read_to_string(t.join("ideas.json")).unwrap();
    let llm = FakeLlm::start(vec![]).await;
    let lit = FakeLit::start().await;
    let config = format!(
        "[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-2024-11-20\"\n\n{}",
        llm.v1(),
        literature_toml(&dir.path().join("lit-cache"))
    );
    // env_clear() in the helper: OPENAI_API_KEY is not in the child's environment.
    let env = [
        ("AISCI_S2_URL", lit.s2_url()),
        ("AISCI_ENGINES", "semanticscholar".to_string()),
    ];
    let out = aisci_novelty(dir.path(), &t, &config, &env, &["--idea", IDEA_A]).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stdout}\n{stderr}");
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr.contains("OPENAI_API_KEY"), "{stderr}");
    assert!(stdout.is_empty(), "{stdout}");
    assert_eq!(llm.hits(), 0);
    assert_eq!(lit.total_hits(), 0);
    assert_eq!(std::fs::read_to_string(t.join("ideas.json")).unwrap(), before);
}
