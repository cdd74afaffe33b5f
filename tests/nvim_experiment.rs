//! "Implement idea" end to end in a real editor: headless Neovim with the plugin in
//! `editors/nvim` opens a template's ideas.json and runs the idea's "Implement idea"
//! code lens; `aisci lsp` creates the idea folder, Neovim opens the experiment.py it is
//! shown, and a local fake of the OpenAI API replays `tests/fixtures/experiment/`
//! (run 1 edits, run 2 fails on a `raise`, is fixed, ALL_COMPLETED, plot, notes), with
//! real `python3` running the copied stdlib template `templates/tiny_mlp`.
//!
//! The editor side is `tests/nvim/experiment.lua`; it writes a JSON report checked here.
//! Neovim is found as `$AISCI_NVIM`, else `.venv/bin/nvim` at the repository root, else
//! `nvim` on PATH; without it this test fails, it never skips.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::{fixtures, tiny_mlp, tiny_mlp_with_seed_ideas};
use crate::support::nvim::{self, plugin_dir, server_bin, Finished, NvimRun};

const IDEA: &str = "init_scale_regimes";

/// tiny_mlp at `<tmp>/templates/tiny_mlp` with ideas.json = its seed ideas.
fn template_copy(tmp: &Path) -> PathBuf {
    tiny_mlp_with_seed_ideas(&tmp.join("templates/tiny_mlp"))
        .canonicalize()
        .unwrap()
}

fn reply_text(name: &str) -> String {
    let path = fixtures().join(format!("experiment/{name}.md"));
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-nvim-exp", text, 1500, 200)
}

fn lines(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap_or_else(|| panic!("not a list of lines: {v}"))
        .iter()
        .map(|l| l.as_str().unwrap().to_owned())
        .collect()
}

/// Runs `tests/nvim/experiment.lua` against a fresh template copy; returns the report,
/// the template and the temp folder (kept alive by the caller).
async fn run_nvim() -> (Value, PathBuf, tempfile::TempDir, Duration) {
    let names = ["1_wider", "2_failing", "3_fix", "4_done", "5_plot", "6_notes"];
    let mut script: Vec<Reply> = names.iter().map(|n| completion(&reply_text(n))).collect();
    // The first answer waits so Neovim has opened and attached the file it was shown.
    script[0] = script[0].clone().delayed(Duration::from_millis(1500));
    let fake = FakeLlm::start(script).await;
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().canonicalize().unwrap();
    let template = template_copy(&tmp_path);
    let report_path = tmp_path.join("report.json");
    let settings = json!({
        "llm": { "provider": "vllm", "base_url": fake.v1(), "model": "local-model", "stream": false, "max_retries": 0 },
        "experiment": { "timeout_secs": 30, "max_attempts": 3, "plot_timeout_secs": 30 },
        "literature": { "cache_dir": tmp_path.join("lit-cache") },
    });
    let Finished { report: r, wall } = NvimRun {
        script: "experiment.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            template.clone().into(),
            IDEA.into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: &tmp_path,
        report: &report_path,
        who: "Neovim".into(),
        name: "nvim experiment".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;
    assert_eq!(fake.hits(), 6, "{r:#}");
    (r, template, tmp, wall)
}

/// 0-based line of the first line of `lines` containing `needle`.
fn line_of(lines: &[String], needle: &str) -> Option<u64> {
    lines.iter().position(|l| l.contains(needle)).map(|i| i as u64)
}

const RAISE: &str = "raise ValueError(\"shapes do not match\")";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_implements_an_idea_through_the_lens() {
    let (r, template, tmp, wall) = run_nvim().await;

    // ideas.json has an "Implement idea" lens per idea; the script ran this idea's.
    let ideas_lenses = lines(&r["ideas_lenses"]);
    assert_eq!(
        ideas_lenses
            .iter()
            .filter(|t| t.starts_with("Implement idea (~"))
            .count(),
        2,
        "{ideas_lenses:?}"
    );
    assert_eq!(r["lens_command"]["command"], "aisci.implementIdea");

    // Neovim opened the idea folder's experiment.py the server showed.
    let shown = r["show_document"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    let exp = PathBuf::from(r["exp_path"].as_str().unwrap());
    let folder = exp.parent().unwrap().to_path_buf();
    assert_eq!(
        folder.parent().unwrap(),
        tmp.path().canonicalize().unwrap().join("results/tiny_mlp")
    );
    assert!(folder
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with(&format!("_{IDEA}")));
    assert_eq!(shown[0]["uri"], r["exp_uri"]);
    assert_eq!(r["exp_filetype"], "python");

    // The failed run: Neovim shows an Error at the raise (the line as the failing
    // attempt ran it) with the exception.
    let attempt_code: Vec<String> =
        std::fs::read_to_string(folder.join(".aisci/attempts/run_2/attempt_1/experiment.py"))
            .unwrap()
            .lines()
            .map(str::to_owned)
            .collect();
    let raise_line = line_of(&attempt_code, RAISE).expect("the failing attempt has the raise");
    let diags = r["error_diagnostics"]
        .as_array()
        .unwrap_or_else(|| panic!("no error diagnostic: {r:#}"));
    let errors: Vec<&Value> = diags.iter().filter(|d| d["severity"] == 1).collect();
    assert_eq!(errors.len(), 1, "{diags:#?}");
    assert_eq!(errors[0]["lnum"], raise_line, "{diags:#?}");
    assert_eq!(errors[0]["col"], 4, "{diags:#?}");
    assert_eq!(
        errors[0]["message"],
        "ValueError: shapes do not match (run_2, attempt 1)"
    );
    // Fixed by run 2's second attempt: nothing left.
    assert_eq!(r["diagnostics_after"], json!([]), "{r:#}");

    // After the job the buffer holds the edited code, as on disk.
    let after = lines(&r["buffer_after"]);
    assert!(line_of(&after, "\"hidden\": 16").is_some(), "{after:#?}");
    assert!(line_of(&after, "init_scale=0.3").is_some(), "{after:#?}");
    assert!(line_of(&after, RAISE).is_none(), "{after:#?}");
    let disk: Vec<String> = std::fs::read_to_string(&exp)
        .unwrap()
        .lines()
        .map(str::to_owned)
        .collect();
    assert_eq!(after, disk);

    // Progress end and the summary.
    let token = r["token"].as_str().unwrap();
    let begin = nvim::progress_of(&r, token, "begin");
    assert_eq!(begin.len(), 1);
    assert_eq!(begin[0]["title"], "Run experiments");
    let end = r["end_message"].as_str().unwrap();
    assert!(
        end.starts_with("2 run(s) completed (run_1, run_2), 1 failed attempt(s); the model finished (ALL_COMPLETED); plots: summary.png; figure critique skipped: local-model takes no images (set llm.vision = \"yes\" if it does); notes.txt updated."),
        "{end}"
    );
    let messages = r["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 1, "only the summary: {messages:#?}");
    assert_eq!(messages[0]["type"], 3);

    // The lenses of experiment.py: the runs' headlines, then "Run experiments".
    let lenses = lines(&r["exp_lenses"]);
    assert_eq!(lenses.len(), 3, "{lenses:?}");
    assert!(lenses[0].starts_with("run_1 ✓ "), "{lenses:?}");
    assert!(
        lenses[1].starts_with("run_2 ✓ ") && lenses[1].ends_with("baseline)"),
        "{lenses:?}"
    );
    assert!(lenses[2].starts_with("Run experiments (~"), "{lenses:?}");

    for i in [1, 2] {
        assert!(folder.join(format!("run_{i}/final_info.json")).is_file());
    }
    assert!(folder.join("notes.txt").is_file());
    // The template itself is untouched.
    assert_eq!(
        std::fs::read_to_string(template.join("experiment.py")).unwrap(),
        std::fs::read_to_string(tiny_mlp().join("experiment.py")).unwrap()
    );
    assert_eq!(r["servers_stopped"], true);
    assert!(wall < Duration::from_secs(15), "took {wall:?}");
}

/// The idea folder's experiment.py is served by the same aisci server (the plugin
/// reuses its client), so each model edit arrives in the buffer as a versioned
/// applyEdit, the failing run's diagnostic sits on the raise in the text that ran, and
/// each edit is its own undo step (the plugin breaks undo before applying).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_gets_each_edit_as_an_undoable_apply_edit() {
    let (r, _template, _tmp, _) = run_nvim().await;
    let clients = r["exp_clients"].as_array().unwrap();
    assert!(
        clients.iter().any(|c| c["template_client"] == true),
        "experiment.py is not attached to the server running the job: {clients:#?}"
    );
    let edits = r["apply_edits"].as_array().unwrap();
    assert_eq!(edits.len(), 3, "{edits:#?}");
    for e in edits {
        assert_eq!(e["uri"], r["exp_uri"]);
        assert_eq!(e["applied"]["applied"], true, "{e:#}");
        assert_eq!(e["version"], e["buffer_version"], "{e:#}");
        assert_eq!(e["label"], format!("aisci: {IDEA}"));
    }
    let at_error = lines(&r["buffer_at_error"]);
    let error = r["error_diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == 1)
        .unwrap()
        .clone();
    assert_eq!(Some(error["lnum"].as_u64().unwrap()), line_of(&at_error, RAISE));
    // :undo takes back the last edit (the fix) only: the raise is back, "hidden": 16 stays.
    let before_last = lines(&edits[2]["buffer_before"]);
    assert_eq!(lines(&r["buffer_after_undo"]), before_last);
    assert_eq!(lines(&r["buffer_after_redo"]), lines(&r["buffer_after"]));
}
