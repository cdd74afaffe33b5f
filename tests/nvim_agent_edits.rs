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

/// The whole review in real Neovim with the real server: `edits.review = "experiment"`,
/// "Implement idea"; the model's two-hunk edit waits in the review buffer; rejecting the
/// first and accepting the second (`x`, `a`, `s`) lands only the second, in the buffer
/// and the file alike, and the model's next prompt says which was rejected.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_review_keeps_one_hunk_and_the_model_hears_of_the_other() {
    use crate::support::fake_llm::{FakeLlm, Reply};
    use crate::support::fs::tiny_mlp_with_seed_ideas;
    use std::time::Duration;

    const STEP: &str = "            model.sgd_step(train_x[i], train_y[i], cfg[\"lr\"])";
    const STEP_X: &str = "            model.sgd_step(train_x[i], train_y[i], cfg[\"lr\"] * 1.0)";
    const CFG: &str =
        "    cfg = {\"n_train\": 200, \"n_val\": 200, \"hidden\": 8, \"lr\": 0.01, \"epochs\": 40}";
    const CFG_16: &str =
        "    cfg = {\"n_train\": 200, \"n_val\": 200, \"hidden\": 16, \"lr\": 0.01, \"epochs\": 40}";
    let block = |s: &str, r: &str| {
        format!("experiment.py\n```python\n<<<<<<< SEARCH\n{s}\n=======\n{r}\n>>>>>>> REPLACE\n```\n")
    };
    let completion = |t: &str| Reply::chat_completion("chatcmpl-nvim-review", t, 1500, 200);
    let first = format!(
        "Plan: scale the step and widen the layer.\n\n{}\n{}",
        block(STEP, STEP_X),
        block(CFG, CFG_16)
    );
    let mut script = vec![
        completion(&first).delayed(Duration::from_millis(1500)),
        completion("ALL_COMPLETED"),
    ];
    script.extend((0..4).map(|_| completion("Nothing to change.")));
    let fake = FakeLlm::start(script).await;

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let template = tiny_mlp_with_seed_ideas(&dir.join("templates/tiny_mlp"))
        .canonicalize()
        .unwrap();
    let report_path = dir.join("report.json");
    let settings = json!({
        "llm": { "provider": "vllm", "base_url": fake.v1(), "model": "local-model", "stream": false, "max_retries": 0 },
        "experiment": { "timeout_secs": 30, "max_attempts": 3, "plot_timeout_secs": 30 },
        "edits": { "review": "experiment" },
        "literature": { "cache_dir": dir.join("lit-cache") },
    });
    let Finished { report: r, .. } = NvimRun {
        script: "review_e2e.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            template.clone().into(),
            "init_scale_regimes".into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: &dir,
        report: &report_path,
        who: "Neovim (review e2e)".into(),
        name: "nvim review e2e".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;

    let lines = |v: &Value| -> Vec<String> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|l| l.as_str().unwrap().to_string())
            .collect()
    };
    let review = lines(&r["review_lines"]);
    assert!(review[0].ends_with("/experiment.py · 2 hunks"), "{review:#?}");
    let before = lines(&r["buffer_before_decision"]);
    assert!(
        before.iter().any(|l| l == CFG) && before.iter().any(|l| l == STEP),
        "nothing landed before the decision"
    );
    let after = lines(&r["buffer_after"]);
    assert!(
        after.iter().any(|l| l == CFG_16),
        "the accepted hunk is in the buffer: {after:#?}"
    );
    assert!(
        after.iter().any(|l| l == STEP) && !after.iter().any(|l| l == STEP_X),
        "the rejected one is not"
    );
    let disk = std::fs::read_to_string(r["exp_path"].as_str().unwrap()).unwrap();
    assert_eq!(
        disk.lines().collect::<Vec<_>>(),
        after.iter().map(String::as_str).collect::<Vec<_>>(),
        "the file agrees with the buffer"
    );
    assert_eq!(
        r["review_open_after"], false,
        "the review closed after submitting"
    );
    let notes: Vec<String> = lines(&r["notes"]);
    assert!(
        notes
            .iter()
            .any(|n| n.contains("applied 1 of 2 hunks to experiment.py")),
        "{notes:#?}"
    );
    let seen = fake.seen();
    let next = seen[1].body.to_string();
    assert!(
        next.contains("1 of 2 change(s) were kept") && next.contains("* 1.0"),
        "the model heard it: {next}"
    );
}
