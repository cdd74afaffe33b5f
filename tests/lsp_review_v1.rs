//! A review that The AI Scientist v1 wrote (`review.txt` alone in the idea folder, the
//! corpus's adaptive_dual_scale_denoising one) is the paper's review in the editor: the
//! scores lens, its comments as diagnostics, the hover on `\title`. Reviewing again with
//! a fake model keeps v1's scores as the previous review, and v1's text stays on disk.

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::fixtures;
use crate::support::lsp_client::{file_uri, TestClient};

const PAPER: &str = "\\documentclass{article}\n\\title{Adaptive Dual-Scale Denoising}\n\\begin{document}\n\\maketitle\n\\section{Method}\nTwo branches, global and local, weighted by the timestep.\n\\section{Results}\nThe KL divergence drops by up to 12.8\\%.\n\\end{document}\n";

fn v1_review_txt() -> String {
    std::fs::read_to_string(fixtures().join("v1/example_papers/adaptive_dual_scale_denoising/review.txt"))
        .unwrap()
}

fn new_review() -> String {
    let j = json!({
        "Summary": "A dual-scale denoiser for 2D data.", "Strengths": ["Clear."],
        "Weaknesses": [{"text": "Only 2D data.", "section": "Results"}],
        "Originality": 3, "Quality": 3, "Clarity": 3, "Significance": 3,
        "Questions": [], "Limitations": [], "Ethical Concerns": false,
        "Soundness": 3, "Presentation": 3, "Contribution": 3, "Overall": 7, "Confidence": 4,
        "Decision": "Accept"
    });
    format!("THOUGHT:\nRead it.\n\nREVIEW JSON:\n```json\n{j}\n```\n")
}

async fn lens_title(c: &TestClient, uri: &str) -> String {
    let lenses = c
        .request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }))
        .await;
    lenses[0]["command"]["title"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_v1_review_txt_is_the_papers_review_and_becomes_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir
        .path()
        .join("results/2d_diffusion/20240802_090035_adaptive_dual_scale_denoising");
    std::fs::create_dir_all(root.join("latex")).unwrap();
    let tex = root.join("latex/template.tex");
    std::fs::write(&tex, PAPER).unwrap();
    std::fs::write(root.join("review.txt"), v1_review_txt()).unwrap();
    let llm = FakeLlm::start(vec![Reply::chat_completion(
        "chatcmpl-v1-review",
        &new_review(),
        2000,
        400,
    )])
    .await;

    let uri = file_uri(&tex);
    let c = TestClient::start(Value::Null);
    c.initialize(
        json!({ "window": { "workDoneProgress": true } }),
        json!({
            "latex": { "build_on_save": false },
            "llm": { "provider": "vllm", "base_url": llm.v1(), "model": "local-model",
                     "stream": false, "max_retries": 0 },
            "literature": { "engines": [] },
            "review": { "ensemble": 1, "reflection_rounds": 0 },
        }),
    )
    .await;
    c.open(&uri, "latex", PAPER).await;

    // v1's comments as diagnostics: its 6 weaknesses, 13 questions and 6 limitations.
    let published = c
        .wait_for("v1's review comments", 30, |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri.as_str()
                && m["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|d| d.iter().any(|x| x["source"] == "aisci review"))
        })
        .await;
    let review: Vec<&Value> = published["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|d| d["source"] == "aisci review")
        .collect();
    assert_eq!(review.len(), 6 + 13 + 6, "{review:#?}");
    let w0 = review.iter().find(|d| d["code"] == "weakness-0").unwrap();
    assert_eq!(w0["severity"], 2);
    assert!(
        w0["message"]
            .as_str()
            .unwrap()
            .starts_with("Weakness: Increased computational complexity"),
        "{w0}"
    );
    let lens = lens_title(&c, &uri).await;
    assert!(
        lens.starts_with("Review: Overall 5/10 · Reject (calibrated: Reject, ≥ 6)"),
        "{lens}"
    );
    assert!(lens.ends_with("25 open comment(s)"), "{lens}");
    let hover = c
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 1, "character": 3 } }),
        )
        .await;
    let hover = hover["contents"]["value"].as_str().unwrap();
    assert!(
        hover.contains("This paper introduces an adaptive dual-scale denoising approach"),
        "{hover}"
    );

    // Review again: v1's Overall is the previous one; v1's text is kept beside aisci's.
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.reviewPaper", "arguments": [{ "tex": tex }] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let end = c
        .wait_for("the review's end", 60, |m| {
            m["method"] == "$/progress"
                && m["params"]["token"] == token.as_str()
                && m["params"]["value"]["kind"] == "end"
        })
        .await;
    let message = end["params"]["value"]["message"].as_str().unwrap_or("");
    assert!(message.contains("Overall 7/10 (was 5)"), "{message}");
    let lens = lens_title(&c, &uri).await;
    assert!(
        lens.starts_with("Review: Overall 7/10 (was 5) · Accept"),
        "{lens}"
    );
    assert_eq!(llm.hits(), 1);
    assert_eq!(
        std::fs::read_to_string(root.join("review_v1.txt")).unwrap(),
        v1_review_txt()
    );
    let now: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("review.txt")).unwrap()).unwrap();
    assert_eq!(now["Overall"], 7, "review.txt is v1's format with the new review");
    let json: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("review.json")).unwrap()).unwrap();
    assert_eq!(json["previous"][0]["overall"], 5, "{json:#}");
    assert_eq!(json["previous"][0]["decision"], "Reject");
}
