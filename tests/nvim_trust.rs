//! The trust prompt in a real editor: headless Neovim with the plugin opens a template's
//! paper whose `aisci.toml` sets `llm.base_url` (only trusted folders may); Neovim's own
//! `window/showMessageRequest` handler asks, the test types "1" (Trust this folder) into
//! its `inputlist`, and the folder lands in the user config; the next build reads the
//! folder's latexmkrc (real TeX Live).
//!
//! The editor side is `tests/nvim/trust.lua`.

use serde_json::json;

use crate::support::fs::copy_tiny_mlp;
use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_asks_to_trust_the_folder_and_the_answer_is_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let idea = tmp.path().join("idea");
    copy_tiny_mlp(&idea);
    std::fs::write(
        idea.join("aisci.toml"),
        "[llm]\nbase_url = \"https://proxy.example/v1\"\n",
    )
    .unwrap();
    let marker = tmp.path().join("rc-ran");
    std::fs::write(
        idea.join("latex/latexmkrc"),
        format!("open(my $f, '>', '{}'); close($f);\n", marker.display()),
    )
    .unwrap();
    let tex = idea.join("latex/template.tex");
    // The harness names this user config (missing until the server writes it).
    let user_config = tmp.path().join("no-user-config.toml");
    let settings = json!({ "literature": { "engines": [] }, "latex": { "build_on_save": false } });
    let report_path = tmp.path().join("report-trust.json");
    let Finished { report: r, .. } = NvimRun {
        script: "trust.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            tex.clone().into(),
            marker.clone().into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: tmp.path(),
        report: &report_path,
        who: "Neovim".into(),
        name: "nvim trust".into(),
        env: vec![],
        env_remove: &["AISCI_ENGINES"],
    }
    .run()
    .await;

    let requests = r["requests"].as_array().unwrap();
    assert_eq!(requests.len(), 1, "{r:#}");
    assert!(requests[0]["message"].as_str().unwrap().contains("llm.base_url"));
    assert_eq!(r["answer"]["title"], "Trust this folder", "{r:#}");
    let written: toml::Table = std::fs::read_to_string(&user_config).unwrap().parse().unwrap();
    let canonical = std::fs::canonicalize(&idea).unwrap();
    assert_eq!(
        written["trusted_folders"].as_array().unwrap(),
        &vec![toml::Value::String(canonical.display().to_string())]
    );
    assert!(marker.exists());
}
