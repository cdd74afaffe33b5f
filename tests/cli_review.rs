//! `aisci review` and `aisci review-bench` as a user runs them: the built binary, a fake
//! OpenAI-style model over HTTP (its errors included), the real `pdflatex` and
//! `pdftotext` for the PDF the reviewer reads.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};

fn review(overall: u8, decision: &str, weakness: &str) -> String {
    let j = json!({
        "Summary": "A study of wider hidden layers.", "Strengths": ["Simple."],
        "Weaknesses": [{"text": weakness, "quote": "accuracy improves on every dataset"}],
        "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 2,
        "Questions": [{"text": "Why three seeds?", "section": "Results"}], "Limitations": [],
        "Ethical Concerns": false, "Soundness": 2, "Presentation": 3, "Contribution": 2,
        "Overall": overall, "Confidence": 4, "Decision": decision
    });
    format!("THOUGHT:\nChecked.\n\nREVIEW JSON:\n```json\n{j}\n```\n")
}

fn reply(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-review", text, 2000, 400)
}

const PAPER: &str = "\\documentclass{article}\n\\title{Wider Hidden Layers}\n\\begin{document}\n\\maketitle\n\\section{Results}\nWith a wider hidden layer, accuracy improves on every dataset.\n\\section{Conclusion}\nWider layers help.\n\\end{document}\n";

fn idea_folder(dir: &Path) -> PathBuf {
    let root = dir.join("results/tiny_mlp/20261129_120000_wider_hidden");
    std::fs::create_dir_all(root.join("latex")).unwrap();
    std::fs::write(root.join("latex/template.tex"), PAPER).unwrap();
    root
}

/// `pdflatex` the paper into latex/template.pdf (newer than the .tex).
fn build_pdf(root: &Path) {
    let out = std::process::Command::new("pdflatex")
        .args(["-interaction=nonstopmode", "template.tex"])
        .current_dir(root.join("latex"))
        .stdin(Stdio::null())
        .output()
        .expect("pdflatex is installed (scripts/tex-up)");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stdout));
}

async fn aisci(
    dir: &Path,
    config: &str,
    args: &[&dyn AsRef<std::ffi::OsStr>],
    env: &[(&str, &str)],
) -> Output {
    let cfg = dir.join("user-config.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = crate::support::cli::aisci(dir, &cfg);
    cmd.args(args).current_dir(dir);
    for (k, v) in env {
        cmd.env(k, v);
    }
    tokio::time::timeout(Duration::from_secs(60), cmd.spawn().unwrap().wait_with_output())
        .await
        .expect("aisci finished within 60 s")
        .unwrap()
}

fn config(llm: &FakeLlm, review: &str) -> String {
    format!(
        "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n\n[writeup]\nfix_rounds = 0\n\n[review]\n{review}\n",
        llm.v1()
    )
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_the_pdf_drops_a_failing_member_and_improves_the_paper() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    build_pdf(&root);
    let revise = "latex/template.tex\n<<<<<<< SEARCH\nWith a wider hidden layer, accuracy improves on every dataset.\n=======\nWith a wider hidden layer, accuracy improves on two of three datasets.\n>>>>>>> REPLACE\n";
    let llm = FakeLlm::start_routed(
        vec![
            reply(&review(4, "Reject", "m1")),
            Reply::json(
                400,
                r#"{"error":{"message":"context too long","type":"invalid_request_error"}}"#,
            ),
            reply(&review(5, "Reject", "m3")),
            // The second review (after the revision).
            reply(&review(6, "Reject", "m1b")),
            reply(&review(7, "Accept", "m2b")),
            reply(&review(6, "Reject", "m3b")),
        ],
        vec![
            ("A reviewer commented".into(), vec![reply(revise)]),
            (
                "area chair".into(),
                vec![
                    reply(&review(9, "Reject", "meta")),
                    reply(&review(9, "Accept", "meta 2")),
                ],
            ),
        ],
    )
    .await;
    let out = aisci(
        dir.path(),
        &config(&llm, "ensemble = 3\nreflection_rounds = 0"),
        &[&"review", &"--idea-folder", &root, &"--improvement"],
        &[],
    )
    .await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // The first review: members 4 and 5 (the 400 dropped) → 4.5 → 4.
    assert!(
        stdout.contains("Overall 4/10 · Reject (calibrated: Reject, ≥ 6)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("2 review(s) of 3 used, meta-reviewed"),
        "{stdout}"
    );
    assert!(
        stdout.contains("dropped: the model call failed") && stdout.contains("context too long"),
        "{stdout}"
    );
    assert!(stdout.contains("reviewed the PDF"), "{stdout}");
    // The reviewers read the PDF's text, not the LaTeX source.
    let seen = llm.seen();
    let first = seen[0].body["messages"].to_string();
    assert!(first.contains("accuracy improves on every dataset") && !first.contains("\\section{Results}"));
    // The improvement: the edit on disk, the second review's means 6, 7, 6 → 6.33 → 6.
    let tex = std::fs::read_to_string(root.join("latex/template.tex")).unwrap();
    assert!(tex.contains("improves on two of three datasets."), "{tex}");
    assert!(
        stdout.contains("after the revision:\nOverall 6/10 (was 4) · Accept (calibrated: Accept, ≥ 6)"),
        "{stdout}"
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("review.json")).unwrap()).unwrap();
    assert_eq!(file["previous"][0]["overall"], 4);
    assert_eq!(file["ensemble"]["used"], 3);
    assert_eq!(
        file["addressed"],
        json!([]),
        "a new review starts with every comment open"
    );
    let v1 = std::fs::read_to_string(root.join("review.txt")).unwrap();
    assert!(
        v1.starts_with("{\n    \"Summary\": \"A study of wider hidden layers.\",\n    \"Strengths\": ["),
        "{v1}"
    );
    let improved: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("review_improved.txt")).unwrap()).unwrap();
    assert_eq!(improved["Overall"], 6);
    assert_eq!(improved["Weaknesses"][0], "meta 2");
    assert_eq!(llm.hits(), 9);
    // The ledger got every call.
    let usage = std::fs::read_to_string(root.join(".aisci/usage.jsonl")).unwrap();
    assert!(
        usage.lines().filter(|l| l.contains("\"review\"")).count() >= 7,
        "{usage}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_pdf_is_passed_over_and_a_missing_key_stops_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    build_pdf(&root);
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(
        root.join("latex/template.tex"),
        PAPER.replace("Wider layers help.", "Wider layers help a lot."),
    )
    .unwrap();
    let llm = FakeLlm::start(vec![reply(&review(3, "Reject", "only"))]).await;
    let out = aisci(
        dir.path(),
        &config(&llm, "ensemble = 1\nreflection_rounds = 0"),
        &[&"review", &"--idea-folder", &root],
        &[],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("reviewed the LaTeX source"), "{stdout}");
    assert!(stdout.contains("template.pdf is older than the .tex"), "{stdout}");
    assert!(llm.seen()[0]
        .body
        .to_string()
        .contains("Wider layers help a lot."));

    let openai = format!(
        "[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o-2024-11-20\"\n",
        llm.v1()
    );
    let before = std::fs::read_to_string(root.join("review.json")).unwrap();
    let out = aisci(dir.path(), &openai, &[&"review", &"--idea-folder", &root], &[]).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("OPENAI_API_KEY"),
        "{}",
        text(&out.stderr)
    );
    assert_eq!(llm.hits(), 1);
    assert_eq!(
        std::fs::read_to_string(root.join("review.json")).unwrap(),
        before,
        "nothing is lost"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn review_bench_measures_a_reviewer_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let papers = dir.path().join("papers");
    std::fs::create_dir_all(&papers).unwrap();
    // (id, label, Overall, Decision): accepted A1 (7, Accept), A2 (5, Reject); rejected
    // R1 (6, Reject), R2 (3, Reject), R3 (2, Reject). Papers R4 has no file.
    let cases = [
        ("A1", "Accept (Poster)", 7, "Accept"),
        ("A2", "Accept (Oral)", 5, "Reject"),
        ("R1", "Reject", 6, "Reject"),
        ("R2", "Reject", 3, "Reject"),
        ("R3", "Reject", 2, "Reject"),
    ];
    let mut labels = String::from("\tpaper_id\tdecision\n");
    let mut routes = Vec::new();
    for (i, (id, label, overall, decision)) in cases.iter().enumerate() {
        labels.push_str(&format!("{i}\t{id}\t{label}\n"));
        std::fs::write(
            papers.join(format!("{id}.txt")),
            format!("Paper PAPER-{id}: a study of something, long enough to review."),
        )
        .unwrap();
        routes.push((
            format!("PAPER-{id}"),
            vec![reply(&review(*overall, decision, id))],
        ));
    }
    labels.push_str("5\tR4\tReject\n6\tW1\tWithdrawn\n");
    std::fs::write(dir.path().join("ratings.tsv"), labels).unwrap();
    let llm = FakeLlm::start_routed(vec![], routes).await;
    let cfg = config(&llm, "ensemble = 1\nreflection_rounds = 0\naccept_threshold = 6");
    let args: [&dyn AsRef<std::ffi::OsStr>; 5] =
        [&"review-bench", &"--papers", &papers, &"--labels", &"ratings.tsv"];
    let out = aisci(dir.path(), &cfg, &args, &[]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(stdout.contains("5 papers (2 accepted, 3 rejected)"), "{stdout}");
    // Decision: tp 1, fn 1, fp 0, tn 3 → bal 0.75, acc 0.80, F1 0.67, FPR 0, FNR 0.5; a
    // yes/no Decision has no AUC.
    let row = |name: &str| -> String {
        let line = stdout.lines().find(|l| l.starts_with(name)).unwrap_or_default();
        line[name.len()..]
            .split_whitespace()
            .collect::<Vec<_>>()
            .join(" ")
    };
    assert_eq!(
        row("model's Decision"),
        "5 0.750 0.800 0.667 - 0.000 0.500",
        "{stdout}"
    );
    // Overall ≥ 6: tp 1 (A1), fn 1 (A2), fp 1 (R1), tn 2 → bal 0.58, acc 0.60, F1 0.50,
    // FPR 0.33, FNR 0.50; AUC on Overall: accepted 7, 5 vs rejected 6, 3, 2 → 5/6.
    assert_eq!(
        row("calibrated (Overall >= 6)"),
        "5 0.583 0.600 0.500 0.833 0.333 0.500",
        "{stdout}"
    );
    assert!(stdout.contains("not reviewed: R4: no paper file"), "{stdout}");
    assert!(
        stdout.contains("1 label row(s) neither accept nor reject were left out"),
        "{stdout}"
    );
    assert_eq!(llm.hits(), 5);
    let csv = std::fs::read_to_string(dir.path().join("review_bench.csv")).unwrap();
    assert!(csv.starts_with("paper_id,accept,decision,overall,error\n"));
    assert!(csv.contains("A1,true,Accept,7,\n"), "{csv}");
    // Again: every reviewed paper comes from the CSV, nothing is paid twice.
    let out = aisci(dir.path(), &cfg, &args, &[]).await;
    let stdout = text(&out.stdout);
    assert!(
        stdout.contains("5 paper(s) taken from review_bench.csv"),
        "{stdout}"
    );
    assert!(
        stdout
            .lines()
            .any(|l| l.starts_with("model's Decision") && l.ends_with("0.800  0.667      -  0.000  0.500")),
        "{stdout}"
    );
    assert_eq!(llm.hits(), 5);
}

/// A paper whose PDF carries a figure on page 1.
const FIGURE_PAPER: &str = "\\documentclass{article}\n\\usepackage{graphicx}\n\\graphicspath{{../}}\n\\title{Wider Hidden Layers}\n\\begin{document}\n\\maketitle\n\\section{Results}\nWith a wider hidden layer, accuracy improves on every dataset (Figure~\\ref{fig:acc}).\n\\begin{figure}[h]\n\\centering\n\\includegraphics[width=0.5\\textwidth]{val_acc.png}\n\\caption{Validation accuracy per dataset.}\\label{fig:acc}\n\\end{figure}\n\\section{Conclusion}\nWider layers help.\n\\end{document}\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_that_takes_images_sees_the_pages_with_figures_and_one_that_does_not_is_noted() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    std::fs::write(root.join("latex/template.tex"), FIGURE_PAPER).unwrap();
    std::fs::copy(
        crate::support::fs::fixtures().join("figures/val_acc.png"),
        root.join("val_acc.png"),
    )
    .unwrap();
    build_pdf(&root);
    let llm = FakeLlm::start(vec![reply(&review(4, "Reject", "m1"))]).await;
    let cfg = config(&llm, "ensemble = 1\nreflection_rounds = 0")
        .replace("stream = false", "stream = false\nvision = \"yes\"");
    let out = aisci(dir.path(), &cfg, &[&"review", &"--idea-folder", &root], &[]).await;
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // OpenAI's wire format: the paper's text, then the page with the figure as a PNG data URL.
    let seen = llm.seen();
    let content = seen[0].body["messages"][1]["content"]
        .as_array()
        .unwrap_or_else(|| panic!("{}", seen[0].body));
    assert_eq!(content[0]["type"], "text");
    assert!(content[0]["text"]
        .as_str()
        .unwrap()
        .contains("accuracy improves on every dataset"));
    let images: Vec<&str> = content
        .iter()
        .filter(|p| p["type"] == "image_url")
        .map(|p| p["image_url"]["url"].as_str().unwrap())
        .collect();
    assert_eq!(images.len(), 1, "one page carries a figure: {content:?}");
    assert!(
        images[0].starts_with("data:image/png;base64,iVBORw0KGgo"),
        "{}",
        &images[0][..40]
    );

    // The same paper to a model without image input: text only, and the review says so.
    let llm = FakeLlm::start(vec![reply(&review(4, "Reject", "m1"))]).await;
    let cfg = config(&llm, "ensemble = 1\nreflection_rounds = 0")
        .replace("stream = false", "stream = false\nvision = \"no\"");
    let out = aisci(dir.path(), &cfg, &[&"review", &"--idea-folder", &root], &[]).await;
    assert!(out.status.success(), "{}", text(&out.stderr));
    let seen = llm.seen();
    assert!(
        seen[0].body["messages"][1]["content"].is_string(),
        "{}",
        seen[0].body
    );
    let file: Value =
        serde_json::from_str(&std::fs::read_to_string(root.join("review.json")).unwrap()).unwrap();
    let notes = file["notes"].to_string();
    assert!(
        notes.contains("takes no images: it read the text without the paper's 1 figure(s)"),
        "{notes}"
    );
}
