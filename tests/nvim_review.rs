//! The review end to end in a real editor: headless Neovim with the plugin in
//! `editors/nvim` opens an idea's `latex/template.tex` and runs "Review the paper" (an
//! ensemble of two reviews, a meta-review and a reflection from a fake OpenAI-style
//! model); each comment arrives as an "aisci review" diagnostic where it applies, the
//! scores as a lens and a hover on `\title`; "Revise to address this comment" brings the
//! writer's edit into the buffer and retires the comment; "Revise for all comments" then
//! reviews again, and the new scores stand beside the old. The paper is built with the
//! real TeX Live in between.
//!
//! The editor side is `tests/nvim/review.lua`. Neovim is found as `$AISCI_NVIM`, else
//! `.venv/bin/nvim` at the repository root, else `nvim` on PATH; never skipped.

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::copy_tiny_mlp;
use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

fn review(overall: u8, weaknesses: Value, questions: Value, limitations: Value) -> String {
    let j = json!({
        "Summary": "Widening the hidden layer of a tiny MLP.", "Strengths": ["Simple and reproducible."],
        "Weaknesses": weaknesses, "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 2,
        "Questions": questions, "Limitations": limitations, "Ethical Concerns": false,
        "Soundness": 2, "Presentation": 3, "Contribution": 2, "Overall": overall, "Confidence": 4,
        "Decision": "Reject"
    });
    format!("THOUGHT:\nI read the paper.\n\nREVIEW JSON:\n```json\n{j:#}\n```\n")
}

fn reply(text: String) -> Reply {
    Reply::chat_completion("chatcmpl-nvim-review", &text, 1500, 300)
}

fn done(text: String) -> Reply {
    reply(text.replace("I read the paper.", "Nothing to change. I am done"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_review_diagnostics_quick_fix_revision_and_second_review() {
    let first = review(
        4,
        json!([{"text": "The claim that accuracy improves everywhere is not supported by the runs.",
                "quote": "accuracy improves on every dataset"}]),
        json!([{"text": "Why only three seeds?", "section": "Results"}]),
        json!(["Only toy data is studied."]),
    );
    let second = review(
        6,
        json!([{"text": "A second review weakness about the method.", "section": "Method"}]),
        json!([]),
        json!([]),
    );
    let members = vec![
        reply(review(4, json!(["w"]), json!([]), json!([]))),
        reply(review(5, json!(["w"]), json!([]), json!([]))),
        reply(review(6, json!(["w"]), json!([]), json!([]))),
        reply(review(7, json!(["w"]), json!([]), json!([]))),
    ];
    let revise_one = "latex/template.tex\n<<<<<<< SEARCH\nWith a wider hidden layer, accuracy improves on every dataset.\n=======\nWith a wider hidden layer, accuracy improves on two of the three datasets.\n>>>>>>> REPLACE\n";
    let revise_all = "latex/template.tex\n<<<<<<< SEARCH\nWider layers help on small problems.\n=======\nWider layers help on small problems. Only three toy datasets are studied.\n>>>>>>> REPLACE\n";
    let llm = FakeLlm::start_routed(
        members,
        vec![
            (
                "A reviewer commented".into(),
                vec![reply(revise_one.into()), reply(revise_all.into())],
            ),
            (
                "area chair".into(),
                vec![reply(first.clone()), reply(second.clone())],
            ),
            ("Reflection round".into(), vec![done(first), done(second)]),
        ],
    )
    .await;

    let tmp = tempfile::tempdir().unwrap();
    let idea = tmp.path().join("idea");
    copy_tiny_mlp(&idea);
    let tex = idea.join("latex/template.tex");
    let src = std::fs::read_to_string(&tex).unwrap();
    let fig_start = src.find("\\begin{figure}").unwrap();
    let fig_end = src.find("\\end{figure}").unwrap() + "\\end{figure}".len();
    let src = format!("{}{}", &src[..fig_start], &src[fig_end..])
        .replace("TITLE HERE", "Wider Hidden Layers for a Tiny MLP")
        .replace(
            "RESULTS HERE",
            "With a wider hidden layer, accuracy improves on every dataset.",
        )
        .replace("CONCLUSIONS HERE", "Wider layers help on small problems.");
    std::fs::write(&tex, src).unwrap();
    let settings = json!({
        "llm": { "provider": "vllm", "base_url": llm.v1(), "model": "local-model",
                 "stream": false, "max_retries": 0 },
        "literature": { "engines": [], "cache_dir": tmp.path().join("lit-cache") },
        "latex": { "build_on_save": false },
        "writeup": { "fix_rounds": 0 },
        "review": { "ensemble": 2, "reflection_rounds": 1 },
    });
    let report_path = tmp.path().join("report-review.json");
    let Finished { report: r, .. } = NvimRun {
        script: "review.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            tex.clone().into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: tmp.path(),
        report: &report_path,
        who: "Neovim".into(),
        name: "nvim review".into(),
        env: vec![],
        env_remove: &["AISCI_ENGINES"],
    }
    .run()
    .await;

    // Before any review: the action to start one.
    let before = r["lenses_before"].as_array().unwrap();
    assert_eq!(before.len(), 1, "{before:?}");
    assert!(
        before[0].as_str().unwrap().starts_with("Review the paper (~"),
        "{before:?}"
    );
    // Each comment where it applies, with its kind's severity.
    let first = r["first"].as_array().unwrap();
    let by_code = |list: &[Value], code: &str| list.iter().find(|d| d["code"] == code).cloned().unwrap();
    let w = by_code(first, "weakness-0");
    assert_eq!(w["severity"], 2);
    assert_eq!(w["lnum"], r["lines"]["quote"]);
    assert!(w["message"]
        .as_str()
        .unwrap()
        .starts_with("Weakness: The claim that accuracy"));
    let q = by_code(first, "question-0");
    assert_eq!(
        (q["severity"].clone(), q["lnum"].clone()),
        (json!(3), r["lines"]["results"].clone())
    );
    assert!(q["message"]
        .as_str()
        .unwrap()
        .contains("shown at the section it names"));
    let l = by_code(first, "limitation-0");
    assert_eq!(
        (l["severity"].clone(), l["lnum"].clone()),
        (json!(4), r["lines"]["title"].clone())
    );
    // Means of the two members (4, 5 → 4.5 → 4) after the reflection kept them.
    let lens = r["lenses_after_review"][0].as_str().unwrap();
    assert!(
        lens.starts_with("Review: Overall 4/10 · Reject (calibrated: Reject, ≥ 6)"),
        "{lens}"
    );
    assert!(lens.ends_with("3 open comment(s)"), "{lens}");
    assert!(r["hover"]
        .as_str()
        .unwrap()
        .contains("Widening the hidden layer of a tiny MLP."));

    // The quick fix's edit landed, and its comment is retired.
    assert_eq!(
        r["revised_line"],
        "With a wider hidden layer, accuracy improves on two of the three datasets."
    );
    let codes: Vec<&Value> = r["after_fix"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| &d["code"])
        .collect();
    assert_eq!(codes, [&json!("limitation-0"), &json!("question-0")]);

    // Revise for all, reviewed again: the new comment and the new scores beside the old.
    assert_eq!(r["second"].as_array().unwrap().len(), 1);
    let lens = r["lenses_after_second"][0].as_str().unwrap();
    assert!(
        lens.starts_with("Review: Overall 6/10 (was 4) · Reject (calibrated: Accept, ≥ 6)"),
        "{lens}"
    );
    assert!(r["hover_second"]
        .as_str()
        .unwrap()
        .contains("| Overall | 6/10 (was 4) |"));
    let lines: Vec<&str> = r["final_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(lines.contains(&"Wider layers help on small problems. Only three toy datasets are studied."));
    assert_eq!(
        r["after_undo_limitation_line"],
        Value::Null,
        "undo takes the revision back"
    );

    // On disk: review.json with the earlier scores, v1's review.txt and review_improved.txt.
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(idea.join("review.json")).unwrap()).unwrap();
    assert_eq!(file["review"]["Overall"], 6);
    assert_eq!(file["previous"][0]["overall"], 4);
    assert_eq!(file["ensemble"]["means"]["Overall"], 6.5);
    let v1: Value = serde_json::from_str(&std::fs::read_to_string(idea.join("review.txt")).unwrap()).unwrap();
    assert_eq!(v1["Overall"], 4);
    assert_eq!(
        v1["Weaknesses"][0],
        "The claim that accuracy improves everywhere is not supported by the runs."
    );
    let improved: Value =
        serde_json::from_str(&std::fs::read_to_string(idea.join("review_improved.txt")).unwrap()).unwrap();
    assert_eq!(improved["Overall"], 6);
    // 2 members + meta + reflection, one revision, one more, then 4 again.
    assert_eq!(llm.hits(), 10);
}
