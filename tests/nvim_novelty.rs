//! "Check novelty" end to end in a real editor: headless Neovim with the plugin in
//! `editors/nvim` opens a template's `ideas.json`, runs the "Check novelty" code lens
//! of one idea, and reads the lenses and the hover afterwards. The server it starts
//! (`aisci lsp`) talks to in-process fakes of an OpenAI-style model and of Semantic
//! Scholar (`tests/fixtures/literature/`); its literature cache is in the test's folder.
//!
//! The editor side is `tests/nvim/check_novelty.lua`, which writes a JSON report that
//! is checked here. Neovim is found as `$AISCI_NVIM`, else `.venv/bin/nvim` at the
//! repository root, else `nvim` on PATH; without it this test fails, it never skips.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_lit::{FakeLit, Route};
use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::tiny_mlp_with_seed_ideas;
use crate::support::nvim::{self, plugin_dir, server_bin, Finished, NvimRun};
const IDEA: &str = "init_scale_regimes";
const PAPERQA_ID: &str = "7e55d8701785818776323b4147cb13354c820469";
const PAPERQA: &str = "PaperQA: Retrieval-Augmented Generative Agent for Scientific Research";
const QUERY: &str = "lazy rich regime initialisation scale";
const REASON: &str = "Paper 2 already studies how the initialisation scale changes learning.";

/// tiny_mlp under `tmp` with ideas.json = its two seed ideas, unchecked.
fn template_copy(tmp: &Path) -> PathBuf {
    tiny_mlp_with_seed_ideas(&tmp.join("tiny_mlp"))
        .canonicalize()
        .unwrap()
}

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-nvim-novelty", text, 1000, 100)
}

fn titles(lenses: &Value) -> Vec<String> {
    lenses
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["title"].as_str().unwrap_or("").to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_checks_novelty_through_the_code_lens() {
    let llm = FakeLlm::start(vec![
        completion(&format!(
            "THOUGHT:\nI should search first.\n\nRESPONSE:\n```json\n{{\"Query\": \"{QUERY}\"}}\n```"
        )),
        completion(&format!(
            "THOUGHT:\nPaper 2 is it.\nDecision made: not novel.\n\nRESPONSE:\n```json\n{}\n```",
            json!({ "Reason": REASON, "Closest": [2] })
        )),
    ])
    .await;
    let lit = FakeLit::start().await;
    let tmp = tempfile::tempdir().unwrap();
    let template = template_copy(tmp.path());
    let cache = tmp.path().join("lit-cache");
    let settings = json!({
        "llm": { "provider": "vllm", "base_url": llm.v1(), "model": "local-model",
                 "stream": false, "max_retries": 0 },
        "literature": {
            "engines": ["semanticscholar"],
            "s2_url": lit.s2_url(),
            "s2_rate_per_sec": 100.0,
            "s2_rate_per_sec_no_key": 100.0,
            "max_retries": 0,
            "max_retry_secs": 5,
            "cache_dir": cache,
        },
        "novelty": { "max_rounds": 4, "evidence_papers": 3 },
    });

    let report_path = tmp.path().join("report-novelty.json");
    let Finished { report: r, wall } = NvimRun {
        script: "check_novelty.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            template.clone().into(),
            IDEA.into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: tmp.path(),
        report: &report_path,
        who: "Neovim".into(),
        name: "nvim novelty".into(),
        env: vec![],
        // No environment overrides of the engines either.
        env_remove: &[
            "AISCI_ENGINES",
            "AISCI_S2_URL",
            "AISCI_OPENALEX_URL",
            "AISCI_ARXIV_URL",
        ],
    }
    .run()
    .await;

    // The plugin attached to ideas.json in the template.
    assert_eq!(r["filetype"], "json");
    assert_eq!(r["root_dir"], template.display().to_string());
    let before = titles(&r["lenses_before"]);
    assert!(
        before[0].starts_with("Check novelty of all unchecked ideas (~"),
        "{before:#?}"
    );
    assert_eq!(
        before
            .iter()
            .filter(|t| t.starts_with("Check novelty (~"))
            .count(),
        2,
        "{before:#?}"
    );

    // The job: progress begin, a report for the idea, end; one Info summary.
    let token = r["token"].as_str().unwrap();
    let of_kind = |kind: &str| nvim::progress_of(&r, token, kind);
    assert_eq!(of_kind("begin").len(), 1, "{r:#}");
    assert_eq!(of_kind("begin")[0]["title"], "Check novelty");
    assert!(
        of_kind("report")
            .iter()
            .any(|p| p["message"] == format!("Novelty 1/1: {IDEA}, round 2/4")),
        "{r:#}"
    );
    assert_eq!(of_kind("end").len(), 1, "{r:#}");
    let messages = r["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(messages[0]["type"], 3);
    let summary = messages[0]["message"].as_str().unwrap();
    assert!(
        summary.contains("novelty checked for 1 idea(s): 0 novel"),
        "{summary}"
    );
    assert!(summary.contains("2 model call(s)"), "{summary}");
    // `workspace/codeLens/refresh` only to a client that announced it (Neovim 0.12
    // does not; the script asks for the lenses again itself).
    let refreshes = r["lens_refreshes"].as_u64().unwrap();
    if r["lens_refresh_support"] == true {
        assert!(refreshes >= 1, "{r:#}");
    } else {
        assert_eq!(refreshes, 0, "{r:#}");
    }

    // ideas.json: the verdict and its evidence for this idea only.
    let ideas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(template.join("ideas.json")).unwrap()).unwrap();
    assert_eq!(ideas.len(), 2);
    assert!(ideas[0].get("novel").is_none(), "only {IDEA} was checked");
    let idea = &ideas[1];
    assert_eq!(idea["Name"], IDEA);
    assert_eq!(idea["novel"], false);
    assert_eq!(idea["novelty"]["queries"], json!([QUERY]));
    assert_eq!(idea["novelty"]["reason"], REASON);
    assert_eq!(idea["novelty"]["closest"][0]["id"], PAPERQA_ID);
    assert_eq!(idea["novelty"]["closest"][0]["title"], PAPERQA);
    assert_eq!(idea["novelty"]["closest"].as_array().unwrap().len(), 1);

    // Once the buffer holds the new text: the verdict on the idea's lens line, the
    // other idea still offers its check.
    let after = r["lenses_after"].as_array().unwrap();
    let line = r["lens_line"].as_u64().unwrap();
    let on_line: Vec<String> = after
        .iter()
        .filter(|l| l["line"] == line)
        .map(|l| l["title"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(
        on_line,
        [
            "Interestingness 7 · Feasibility 9 · Novelty 5 · not novel".to_string(),
            format!("not novel — {PAPERQA}")
        ],
        "{after:#?}"
    );
    assert_eq!(
        titles(&r["lenses_after"])
            .iter()
            .filter(|t| t.starts_with("Check novelty (~"))
            .count(),
        1
    );

    // The hover: markdown with the reason and the closest paper as a link.
    assert_eq!(r["hover"]["kind"], "markdown", "{r:#}");
    let md = r["hover"]["value"].as_str().unwrap();
    assert!(md.contains(&format!("`{IDEA}` · not novel")), "{md}");
    assert!(md.contains(REASON), "{md}");
    assert!(
        md.contains(&format!(
            "[{PAPERQA}](https://www.semanticscholar.org/paper/{PAPERQA_ID})"
        )),
        "{md}"
    );

    // The fakes: two model calls, one search, the answer cached in the test's folder.
    assert_eq!(llm.hits(), 2);
    assert_eq!(lit.hits(Route::S2Search), 1);
    assert_eq!(lit.total_hits(), 1);
    assert_eq!(lit.seen()[0].query["query"], QUERY);
    assert_eq!(std::fs::read_dir(cache.join("search")).unwrap().count(), 1);

    assert_eq!(r["server_stopped"], true);
    assert!(wall < Duration::from_secs(10), "took {wall:?}");
}
