//! Agent edits in real Neovim: a model reply pasted into a markdown buffer is applied to
//! its template with the code action "Apply agent edits" (one undo step; a reply that
//! does not apply changes nothing and marks its failing block), and the review of a
//! proposed edit (`:AisciEdits` buffer, accept or reject per hunk), whose editor side is
//! `tests/nvim/review_ui.lua`.

use serde_json::{json, Value};

use crate::support::fs::copy_tiny_mlp;
use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_applies_a_pasted_reply_in_one_undo_step() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let template = dir.join("tiny_mlp");
    copy_tiny_mlp(&template);
    let code = std::fs::read_to_string(template.join("experiment.py")).unwrap();
    let plot = std::fs::read_to_string(template.join("plot.py")).unwrap();
    let first = code.lines().find(|l| !l.trim().is_empty()).unwrap();
    std::fs::write(
        template.join("reply.md"),
        format!("Here is the change.\n\nexperiment.py\n```python\n<<<<<<< SEARCH\n{first}\n=======\n{first}\n# pasted from a chat\n>>>>>>> REPLACE\n```\n"),
    )
    .unwrap();
    // Two blocks: the first would apply, the second does not; neither may land.
    let plot_first = plot.lines().find(|l| !l.trim().is_empty()).unwrap();
    std::fs::write(
        template.join("bad_reply.md"),
        format!(
            "plot.py\n```python\n<<<<<<< SEARCH\n{plot_first}\n=======\n# changed\n>>>>>>> REPLACE\n```\n\nexperiment.py\n```python\n<<<<<<< SEARCH\nthis line is in no file\n=======\nx = 1\n>>>>>>> REPLACE\n```\n"
        ),
    )
    .unwrap();
    let report_path = dir.join("report.json");
    let settings = json!({ "run": { "gpus": [] }, "literature": { "cache_dir": dir.join("lit-cache") } });
    let Finished { report: r, .. } = NvimRun {
        script: "apply_reply.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            template.clone().into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: &dir,
        report: &report_path,
        who: "Neovim (apply reply)".into(),
        name: "nvim apply reply".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;

    assert_eq!(
        r["action_title"], "Apply agent edits (1 block(s) to experiment.py)",
        "{r:#}"
    );
    assert_eq!(r["answer"]["files"], json!(["experiment.py"]), "{r:#}");
    let applied = r["applied"].as_str().unwrap();
    assert_eq!(
        applied,
        code.replacen(first, &format!("{first}\n# pasted from a chat"), 1),
        "{r:#}"
    );
    assert_eq!(
        r["undone"].as_str(),
        Some(code.as_str()),
        "one u takes the whole reply back: {r:#}"
    );
    assert!(
        r["refusal"].as_str().unwrap().contains("no file was changed"),
        "{r:#}"
    );
    let diags = r["bad_diagnostics"].as_array().unwrap();
    assert_eq!(diags.len(), 1, "{r:#}");
    assert!(
        diags[0]["message"]
            .as_str()
            .unwrap()
            .contains("block 2 (experiment.py): SEARCH text not found"),
        "{r:#}"
    );
    assert_eq!(diags[0]["lnum"], 11, "on the failing block's SEARCH line: {r:#}");
    assert_eq!(
        r["plot_after_bad"].as_str(),
        Some(plot.as_str()),
        "all or none: {r:#}"
    );
    assert_eq!(std::fs::read_to_string(template.join("plot.py")).unwrap(), plot);
    let _: &Value = &r["after_bad"];
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_reviews_a_proposed_edit_hunk_by_hunk() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let report_path = dir.join("report.json");
    let Finished { report: r, .. } = NvimRun {
        script: "review_ui.lua",
        args: vec![
            plugin_dir().into(),
            dir.clone().into(),
            report_path.clone().into(),
        ],
        dir: &dir,
        report: &report_path,
        who: "Neovim (edit review)".into(),
        name: "nvim edit review".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;
    assert_eq!(r["experimental"]["aisciEditReview"], true, "{r:#}");
    assert_eq!(r["buffer_name"], "aisci://review/7");
    let lines: Vec<&str> = r["lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert_eq!(
        lines[0], "aisci: init_scale_regimes · experiment.py · 3 hunks",
        "{lines:#?}"
    );
    assert!(lines.contains(&"[ ] @@ hunk 2/3, after line 8 @@"), "{lines:#?}");
    assert_eq!(r["accept"], json!([0, 2]), "{r:#}");
    assert_eq!(
        r["applied_note"],
        "aisci: applied 2 of 3 hunks to experiment.py; u undoes them"
    );
    for key in ["closed_after_submit", "closed_by_q", "closed_by_resolved"] {
        assert_eq!(r[key], true, "{key}: {r:#}");
    }
}
