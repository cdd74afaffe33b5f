//! The Neovim plugin as a user installs it: `require('aisci').setup{}` in real headless
//! Neovim, each user command (:AisciIdeas, :AisciNovelty, :AisciImplement, :AisciRun,
//! :AisciWrite, :AisciReview, :AisciJobs, :AisciCancel) against a fake model that holds
//! every request (so each job stays running until cancelled; :AisciRun runs the real tiny
//! experiment to the end), and `:checkhealth aisci`. Twice: registered with
//! `vim.lsp.config`/`vim.lsp.enable` (Neovim 0.11+), and through `vim.lsp.start` as on 0.10
//! (the script takes `vim.lsp.config` away first).
//!
//! The editor side is `tests/nvim/plugin.lua`. Neovim is found as `$AISCI_NVIM`, else
//! `.venv/bin/nvim` at the repository root, else `nvim` on PATH; never skipped.

use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::copy_tiny_mlp;
use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

const SECRET: &str = "sk-never-shown-1234";

async fn run(mode: &str) -> Value {
    let held = || Reply::Delay(Duration::from_secs(120), Box::new(Reply::json(500, "{}")));
    let llm = FakeLlm::start((0..20).map(|_| held()).collect()).await;
    let tmp = tempfile::tempdir().unwrap();
    let template = tmp.path().join("tiny_mlp");
    copy_tiny_mlp(&template);
    std::fs::copy(template.join("seed_ideas.json"), template.join("ideas.json")).unwrap();
    let idea = tmp.path().join("results/tiny_mlp/20261129_120000_wider_hidden");
    copy_tiny_mlp(&idea);
    let settings = json!({
        "llm": { "provider": "vllm", "base_url": llm.v1(), "model": "local-model",
                 "stream": false, "max_retries": 0 },
        "literature": { "engines": ["semanticscholar"], "s2_url": llm.url, "max_retries": 0,
                        "cache_dir": tmp.path().join("lit-cache") },
        "latex": { "build_on_save": false },
    });
    let report_path = tmp.path().join(format!("report-plugin-{mode}.json"));
    let Finished { report, .. } = NvimRun {
        script: "plugin.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            template.clone().into(),
            idea.join("latex/template.tex").into(),
            report_path.clone().into(),
            settings.to_string().into(),
            mode.into(),
        ],
        dir: tmp.path(),
        report: &report_path,
        who: format!("Neovim ({mode})"),
        name: format!("nvim plugin ({mode})"),
        env: vec![("OPENAI_API_KEY", SECRET.into())],
        env_remove: &["AISCI_ENGINES", "AISCI_S2_URL", "ANTHROPIC_API_KEY"],
    }
    .run()
    .await;
    // :AisciRun ran the template's experiment once more.
    let listing: Vec<String> = std::fs::read_dir(&template)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert!(template.join("run_1/final_info.json").is_file(), "{listing:?}");
    // :AisciImplement made the idea's folder.
    let implemented = std::fs::read_dir(tmp.path().join("results/tiny_mlp"))
        .unwrap()
        .any(|e| {
            e.unwrap()
                .file_name()
                .to_string_lossy()
                .ends_with("_learning_rate_warmup")
        });
    assert!(implemented, "{report:#}");
    report
}

fn check(r: &Value, registration: &str) {
    assert_eq!(r["registration"], registration);
    let commands: Vec<&str> = r["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["cmd"].as_str().unwrap())
        .collect();
    assert_eq!(
        commands,
        [
            "AisciIdeas",
            "AisciNovelty",
            "AisciImplement learning_rate_warmup",
            "AisciRun",
            "AisciWrite Results",
            "AisciReview"
        ]
    );
    // While each held job ran, :AisciJobs (aisci.listJobs) listed it under its title.
    let listed = |i: usize| r["commands"][i]["listed"].clone();
    assert_eq!(listed(0), json!(["Generate ideas"]));
    assert_eq!(listed(4), json!(["Write the paper"]));
    assert_eq!(listed(5), json!(["Review the paper"]));
    assert!(r["commands"][3]["said"]
        .as_str()
        .unwrap()
        .starts_with("aisci: run launched"));
    // :AisciJobs printed the session's spending and what runs.
    let notes = r["notes"].as_array().unwrap();
    assert!(
        notes
            .iter()
            .any(|n| n["msg"].as_str().unwrap().starts_with("aisci: $")),
        "{notes:#?}"
    );
    // No error was said except the expected one (revise without a review).
    let errors: Vec<&str> = notes
        .iter()
        .filter(|n| n["level"] == 4)
        .map(|n| n["msg"].as_str().unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert!(errors[0].contains("no review yet"), "{errors:?}");
    assert_eq!(r["final_jobs"]["jobs"], json!([]));
    // :checkhealth aisci: every section, the server's version, keys set or not, no value.
    let health = r["health"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect::<Vec<_>>()
        .join("\n");
    for section in [
        "aisci: server",
        "aisci: experiments",
        "aisci: the paper",
        "aisci: API keys",
    ] {
        assert!(health.contains(section), "{health}");
    }
    assert!(health.contains("aisci 0.1.0"), "{health}");
    assert!(
        health.contains(&format!("registered with {registration}")),
        "{health}"
    );
    assert!(health.contains("OPENAI_API_KEY is set"), "{health}");
    assert!(health.contains("ANTHROPIC_API_KEY is not set"), "{health}");
    assert!(
        !health.contains(SECRET),
        "a key's value reached the health report"
    );
    assert!(!health.contains("ERROR"), "{health}");
    assert_eq!(r["help_tag"], true);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_commands_and_checkhealth_with_lsp_enable() {
    check(&run("enable").await, "vim.lsp.enable");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn plugin_commands_and_checkhealth_with_lsp_start_as_on_0_10() {
    check(&run("start").await, "vim.lsp.start");
}
