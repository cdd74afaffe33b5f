//! The paper in the editor (in-process server, the test plays the editor): static-check
//! diagnostics as the user types, quick fixes, hover and completion on citations, and the
//! build on save with its log as diagnostics (real TeX Live).

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::lsp_client::{file_uri, TestClient};

const PAPER: &str = r#"\documentclass{article}
\usepackage{natbib}
\begin{filecontents}{references.bib}
@article{ddpm,
  title = {Denoising Diffusion Probabilistic Models},
  author = {Ho, Jonathan and Jain, Ajay and Abbeel, Pieter},
  journal = {NeurIPS},
  year = {2020},
  url = {https://arxiv.org/abs/2006.11239},
}
@article{edm,
  title = {Elucidating the Design Space of Diffusion-Based Generative Models},
  author = {Karras, Tero},
  journal = {NeurIPS},
  year = {2022},
}
\end{filecontents}
\title{A Paper}
\begin{document}
\maketitle
\section{Introduction}
Diffusion models \citep{ddpm} and \citep{edn}.
\section{Results}
We reach 0.35 here.
\bibliographystyle{plainnat}
\bibliography{references}
\end{document}
"#;

/// `<dir>/idea/latex/template.tex` beside `<dir>/idea/run_1/final_info.json`.
fn paper(dir: &Path, text: &str) -> PathBuf {
    let idea = dir.join("idea");
    std::fs::create_dir_all(idea.join("latex")).unwrap();
    std::fs::create_dir_all(idea.join("run_1")).unwrap();
    std::fs::write(
        idea.join("run_1/final_info.json"),
        r#"{"toy": {"means": {"kl": 0.3512}}}"#,
    )
    .unwrap();
    let tex = idea.join("latex/template.tex");
    std::fs::write(&tex, text).unwrap();
    tex
}

fn line_of(text: &str, needle: &str) -> u64 {
    text.lines().position(|l| l.contains(needle)).unwrap() as u64
}

async fn diagnostics_where(
    c: &TestClient,
    uri: &str,
    what: &str,
    pred: impl Fn(&[Value]) -> bool,
) -> Vec<Value> {
    let m = c
        .wait_for(what, 60, |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri
                && m["params"]["diagnostics"].as_array().is_some_and(|d| pred(d))
        })
        .await;
    m["params"]["diagnostics"].as_array().unwrap().clone()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn checks_fixes_hover_and_completion_while_typing() {
    let dir = tempfile::tempdir().unwrap();
    let tex = paper(dir.path(), PAPER);
    let uri = file_uri(&tex);
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), json!({ "latex": { "build_on_save": false } }))
        .await;
    c.open(&uri, "latex", PAPER).await;
    let diags = diagnostics_where(&c, &uri, "the undefined citation", |d| {
        d.iter()
            .any(|x| x["message"].as_str().unwrap_or("").contains("\"edn\""))
    })
    .await;
    let cite = diags
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("\"edn\""))
        .unwrap();
    assert_eq!(cite["severity"], 1);
    assert_eq!(cite["range"]["start"]["line"], line_of(PAPER, "\\citep{edn}"));
    assert!(
        cite["message"].as_str().unwrap().contains("did you mean \"edm\""),
        "{cite}"
    );

    // The quick fix replaces the key.
    let actions = c
        .request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri }, "range": cite["range"], "context": { "diagnostics": [cite] } }),
        )
        .await;
    let fix = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["kind"] == "quickfix")
        .unwrap_or_else(|| panic!("no quick fix: {actions}"));
    assert_eq!(fix["title"], "Change to \"edm\"");
    let edit = &fix["edit"]["changes"][&uri][0];
    assert_eq!(edit["newText"], "edm");
    assert_eq!(edit["range"], cite["range"]);

    // Typing a duplicate entry into the bibliography: a warning on the repeated key.
    let dup_at = line_of(PAPER, "\\end{filecontents}");
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": dup_at, "character": 0 }, "end": { "line": dup_at, "character": 0 } },
            "text": "@misc{ddpm, title = {Again}}\n" }] }),
    )
    .await;
    let diags = diagnostics_where(&c, &uri, "the duplicate key", |d| {
        d.iter().any(|x| {
            x["message"]
                .as_str()
                .unwrap_or("")
                .contains("duplicate BibTeX key")
        })
    })
    .await;
    let dup = diags
        .iter()
        .find(|d| d["message"].as_str().unwrap().contains("duplicate BibTeX key"))
        .unwrap();
    assert_eq!(dup["range"]["start"]["line"], dup_at);
    assert_eq!(dup["severity"], 2);

    // Hover on a key: the paper's title, authors, venue and link (one line lower now).
    let ddpm_line = line_of(PAPER, "\\citep{ddpm}") + 1;
    let col = PAPER
        .lines()
        .nth(ddpm_line as usize - 1)
        .unwrap()
        .find("{ddpm}")
        .unwrap()
        + 2;
    let hover = c
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": ddpm_line, "character": col } }),
        )
        .await;
    let md = hover["contents"]["value"].as_str().unwrap();
    assert!(
        md.contains("**Denoising Diffusion Probabilistic Models**"),
        "{md}"
    );
    assert!(
        md.contains("Ho, Jonathan") && md.contains("NeurIPS, 2020"),
        "{md}"
    );
    assert!(md.contains("https://arxiv.org/abs/2006.11239"), "{md}");

    // Completion inside \citep{ lists the keys with their titles.
    let results_line = line_of(PAPER, "We reach") + 1;
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{
            "range": { "start": { "line": results_line + 1, "character": 0 }, "end": { "line": results_line + 1, "character": 0 } },
            "text": "As in \\citet{el\n" }] }),
    )
    .await;
    let list = c
        .request(
            "textDocument/completion",
            json!({ "textDocument": { "uri": uri }, "position": { "line": results_line + 1, "character": 15 } }),
        )
        .await;
    let items = list["items"].as_array().unwrap();
    let labels: Vec<&str> = items.iter().map(|i| i["label"].as_str().unwrap()).collect();
    assert!(labels.contains(&"edm") && labels.contains(&"ddpm"), "{labels:?}");
    let edm = items.iter().find(|i| i["label"] == "edm").unwrap();
    assert!(
        edm["detail"]
            .as_str()
            .unwrap()
            .starts_with("Elucidating the Design Space"),
        "{edm}"
    );
    assert_eq!(edm["textEdit"]["range"]["start"]["character"], 13);
    assert_eq!(edm["textEdit"]["range"]["end"]["character"], 15);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn save_builds_and_the_log_becomes_diagnostics() {
    let dir = tempfile::tempdir().unwrap();
    let fixed = PAPER.replace("\\citep{edn}", "\\citep{edm}");
    let tex = paper(dir.path(), &fixed);
    let uri = file_uri(&tex);
    let c = TestClient::start(Value::Null);
    c.initialize(json!({ "window": { "workDoneProgress": true } }), json!({}))
        .await;
    c.open(&uri, "latex", &fixed).await;
    c.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }))
        .await;
    let built = c
        .wait_for("aisci/pdfBuilt", 90, |m| m["method"] == "aisci/pdfBuilt")
        .await;
    let pdf = PathBuf::from(built["params"]["pdf"].as_str().unwrap());
    assert_eq!(pdf, tex.with_extension("pdf"));
    assert!(pdf.is_file());
    let before = std::fs::read(&pdf).unwrap();

    // A broken macro: pdflatex recovers from it, so the paper still builds (as in v1's
    // chain) with the error a diagnostic at its line, and no citation left undefined by
    // the passes the error would otherwise have cut short.
    let broken = fixed.replace("We reach 0.35 here.", "We reach \\brokenmacro 0.35 here.");
    std::fs::write(&tex, &broken).unwrap();
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": broken }] }),
    )
    .await;
    c.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }))
        .await;
    let has = |d: &Value, needle: &str| d["message"].as_str().unwrap_or("").contains(needle);
    let diags = diagnostics_where(&c, &uri, "the build error", |d| {
        d.iter().any(|x| has(x, "Undefined control sequence"))
    })
    .await;
    let err = diags
        .iter()
        .find(|d| has(d, "Undefined control sequence"))
        .unwrap();
    assert_eq!(err["range"]["start"]["line"], line_of(&broken, "\\brokenmacro"));
    assert_eq!(err["severity"], 1);
    assert!(
        !diags.iter().any(|d| has(d, "is undefined in the built PDF")),
        "{diags:?}"
    );
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(90);
    while c.messages("aisci/pdfBuilt").len() < 2 {
        assert!(std::time::Instant::now() < deadline, "no second pdfBuilt");
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
    }
    let rebuilt = std::fs::read(&pdf).unwrap();
    assert_ne!(
        rebuilt, before,
        "the paper with the recovered error is the new PDF"
    );

    // A missing input stops TeX: the build fails, the error is at its line, the last PDF
    // stays.
    let fatal = fixed.replace("We reach 0.35 here.", "\\input{missing-part}");
    std::fs::write(&tex, &fatal).unwrap();
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "text": fatal }] }),
    )
    .await;
    c.notify("textDocument/didSave", json!({ "textDocument": { "uri": uri } }))
        .await;
    let diags = diagnostics_where(&c, &uri, "the fatal build error", |d| {
        d.iter()
            .any(|x| has(x, "missing-part.tex' not found") && x["severity"] == 1)
    })
    .await;
    let err = diags
        .iter()
        .find(|d| has(d, "missing-part.tex' not found") && d["severity"] == 1)
        .unwrap();
    assert_eq!(err["range"]["start"]["line"], line_of(&fatal, "missing-part"));
    c.wait_for("the failure message", 30, |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .is_some_and(|s| s.contains("did not build") && s.contains("previous template.pdf is kept"))
    })
    .await;
    assert_eq!(std::fs::read(&pdf).unwrap(), rebuilt, "the last good PDF is kept");
}

/// The dollars in `(~$0.12)` at the end of `title`.
fn cost_in(title: &str) -> f64 {
    title
        .rsplit_once("(~$")
        .and_then(|(_, r)| r.strip_suffix(')'))
        .and_then(|u| u.parse().ok())
        .unwrap_or_else(|| panic!("no cost in {title:?}"))
}

#[tokio::test]
async fn writing_and_reviewing_the_paper_show_their_cost_for_the_settings_in_force() {
    let dir = tempfile::tempdir().unwrap();
    let tex = paper(dir.path(), PAPER);
    let uri = file_uri(&tex);
    let c = TestClient::start(Value::Null);
    let settings = |ensemble: u32| {
        json!({ "latex": { "build_on_save": false }, "llm": { "model": "gpt-4o" },
                "review": { "model": "claude-sonnet-4-5", "ensemble": ensemble } })
    };
    c.initialize(json!({}), settings(1)).await;
    c.open(&uri, "latex", PAPER).await;
    let at = line_of(PAPER, "We reach");
    let range = json!({ "start": { "line": at, "character": 0 }, "end": { "line": at, "character": 0 } });
    let titles = || async {
        let actions = c
            .request(
                "textDocument/codeAction",
                json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [] } }),
            )
            .await;
        let find = |kind: &str| {
            actions
                .as_array()
                .unwrap()
                .iter()
                .find(|a| a["kind"] == kind)
                .and_then(|a| a["title"].as_str())
                .unwrap_or_else(|| panic!("no {kind}: {actions}"))
                .to_string()
        };
        let lenses = c
            .request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }))
            .await;
        let lens = lenses[0]["command"]["title"].as_str().unwrap().to_string();
        (
            find("source.aisci.writePaper"),
            find("source.aisci.reviewPaper"),
            lens,
        )
    };
    let (write, review, lens) = titles().await;
    assert!(write.starts_with("Write the paper"), "{write}");
    assert!(review.starts_with("Review the paper (~$"), "{review}");
    assert_eq!(lens, review, "the lens and the action agree");
    let (w1, r1) = (cost_in(&write), cost_in(&review));
    assert!(w1 > 0.01 && r1 > 0.001, "{write} / {review}");

    // Five reviewers instead of one (Claude takes no `n`: four more calls and a meta-review
    // beside the reflections):
    // the editor's settings change and the titles follow at once.
    c.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": settings(5) }),
    )
    .await;
    let (write, review, _) = titles().await;
    assert_eq!(cost_in(&write), w1, "{write}");
    assert!(cost_in(&review) > 1.5 * r1, "{review} after {r1}");
}

#[tokio::test]
async fn a_claimed_number_hovers_with_its_run_and_goes_to_its_entry() {
    let dir = tempfile::tempdir().unwrap();
    let text = PAPER.replace("We reach 0.35 here.", "We reach 0.35 here, and 0.77 too.");
    let tex = paper(dir.path(), &text);
    let uri = file_uri(&tex);
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), json!({ "latex": { "build_on_save": false } }))
        .await;
    c.open(&uri, "latex", &text).await;
    // 0.77 is in no run: an integrity diagnostic, named as such.
    let diags = diagnostics_where(&c, &uri, "the untraced number", |d| {
        d.iter().any(|x| x["code"] == "number-without-source")
    })
    .await;
    let d = diags
        .iter()
        .find(|x| x["code"] == "number-without-source")
        .unwrap();
    assert_eq!(d["source"], "aisci integrity");
    assert!(d["message"].as_str().unwrap().starts_with("0.77"), "{d}");
    assert!(
        !diags
            .iter()
            .any(|x| x["message"].as_str().unwrap().starts_with("0.35")),
        "{diags:?}"
    );

    let line = line_of(&text, "We reach");
    let col = text.lines().nth(line as usize).unwrap().find("0.35").unwrap() as u64 + 1;
    let at = json!({ "textDocument": { "uri": uri }, "position": { "line": line, "character": col } });
    let hover = c.request("textDocument/hover", at.clone()).await;
    let value = hover["contents"]["value"]
        .as_str()
        .unwrap_or_else(|| panic!("{hover}"));
    assert!(value.contains("run_1 toy kl = 0.3512"), "{value}");
    assert!(value.contains("mean over seeds"), "{value}");
    let def = c.request("textDocument/definition", at).await;
    let target = dir.path().join("idea/run_1/final_info.json");
    assert_eq!(def["uri"], file_uri(&target).as_str(), "{def}");
    let info = std::fs::read_to_string(&target).unwrap();
    let want = info.find("\"kl\"").unwrap() as u64;
    assert_eq!(def["range"]["start"]["character"], want, "{def}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_outline_gives_each_section_its_state() {
    let dir = tempfile::tempdir().unwrap();
    let text = PAPER
        .replace(
            "\\section{Results}\nWe reach 0.35 here.",
            "\\section{Method}\nMETHOD HERE\n\\section{Results}\nWe reach 0.35 here, and 0.77 too.\n\\subsection{Ablations}\n\\section{Conclusion}\n% nothing yet\n",
        );
    let tex = paper(dir.path(), &text);
    // v1's review.txt: a plain-string weakness quoting a sentence of the Results.
    let review = json!({
        "Summary": "s", "Strengths": [], "Weaknesses": ["The sentence \"We reach 0.35 here\" has no error bars."],
        "Originality": 2, "Quality": 2, "Clarity": 2, "Significance": 2, "Questions": [], "Limitations": [],
        "Ethical Concerns": false, "Soundness": 2, "Presentation": 2, "Contribution": 2,
        "Overall": 4, "Confidence": 3, "Decision": "Reject"
    });
    std::fs::write(
        dir.path().join("idea/review.txt"),
        serde_json::to_string_pretty(&review).unwrap(),
    )
    .unwrap();
    let uri = file_uri(&tex);
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), json!({ "latex": { "build_on_save": false } }))
        .await;
    c.open(&uri, "latex", &text).await;
    diagnostics_where(&c, &uri, "the checks", |d| {
        d.iter().any(|x| x["code"] == "number-without-source")
    })
    .await;
    let outline = c
        .request(
            "textDocument/documentSymbol",
            json!({ "textDocument": { "uri": uri } }),
        )
        .await;
    let items = outline.as_array().unwrap_or_else(|| panic!("{outline}"));
    let by_name = |list: &[Value], name: &str| -> Value {
        list.iter()
            .find(|s| s["name"] == name)
            .cloned()
            .unwrap_or_else(|| panic!("no {name} in {list:?}"))
    };
    assert_eq!(by_name(items, "A Paper")["detail"], "title");
    assert_eq!(
        by_name(items, "Introduction")["detail"],
        "3 words",
        "citations are not prose"
    );
    assert_eq!(by_name(items, "Method")["detail"], "placeholder");
    let results = by_name(items, "Results");
    assert_eq!(
        results["detail"], "5 words · 1 open review comment · 1 integrity problem",
        "{results}"
    );
    let line = line_of(&text, "\\section{Results}");
    assert_eq!(results["selectionRange"]["start"]["line"], line);
    let ablations = by_name(results["children"].as_array().unwrap(), "Ablations");
    assert_eq!(ablations["detail"], "empty");
    assert_eq!(
        by_name(items, "Conclusion")["detail"],
        "empty",
        "a comment is not prose"
    );
}
