//! `aisci writeup` as a user runs it: the built binary on an idea folder (a copy of
//! tiny_mlp with a completed run_1, its env.json and the figures), a fake of the model
//! replaying the replies in `tests/fixtures/writeup/`, a fake of Semantic Scholar, and the
//! real TeX Live (latexmk, pdflatex, bibtex, chktex, pdftotext).

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use crate::support::fake_lit::FakeLit;
use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::{copy_tiny_mlp, fixtures};
use crate::support::png::tiny_png;

const TEX: &str = "latex/template.tex";

fn reply(name: &str) -> Reply {
    let text = std::fs::read_to_string(fixtures().join("writeup").join(name)).unwrap();
    Reply::chat_completion("chatcmpl-writeup", &text, 1000, 100)
}

/// tiny_mlp laid out as an idea folder after the experiment stage: run_0 (the
/// template's baseline), run_1 with results and env.json, notes.txt, the two figures
/// the paper includes. The bibliography gets an entry that holds the key Semantic
/// Scholar gives the chemistry-tools paper, for another work, so that adding the paper
/// must pick a new key.
fn idea_folder(dir: &Path) -> PathBuf {
    let root = dir.join("results/tiny_mlp/20261129_120000_wider_hidden");
    copy_tiny_mlp(&root);
    std::fs::create_dir_all(root.join("run_1")).unwrap();
    std::fs::write(
        root.join("run_1/final_info.json"),
        r#"{"blobs": {"means": {"final_val_acc_mean": 0.97, "final_val_loss_mean": 0.09}}}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("run_1/env.json"),
        r#"{"hostname":"node1","os":"linux","kernel":"6.1","cpu_model":"AMD EPYC 9654","cpu_count":16,
           "gpus":[{"index":"0","name":"NVIDIA H200","memory_mib":143771}],
           "cuda_visible_devices":"0","driver_version":"550.54","cuda_version":"12.4",
           "python_command":"python3","python":{"version":"3.11.9","executable":"/usr/bin/python3",
           "numpy":"1.26.4","torch":null,"torch_cuda":null},"notes":[]}"#,
    )
    .unwrap();
    std::fs::write(
        root.join("notes.txt"),
        "# Title: Wider hidden layers\n# Experiment description: widen the hidden layer.\n\
         ## Run 0: Baseline\n## Run 1: hidden width 64 instead of 16.\n",
    )
    .unwrap();
    for f in ["val_acc.png", "val_loss.png"] {
        std::fs::write(root.join(f), tiny_png()).unwrap();
    }
    let tex = root.join(TEX);
    let src = std::fs::read_to_string(&tex).unwrap().replace(
        "\\end{filecontents}",
        "@misc{Bran2023AugmentingLL,\n  title={A Different Work on Something Else},\n  author={Bran, Ann},\n  year={2021}\n}\n\\end{filecontents}",
    );
    std::fs::write(&tex, src).unwrap();
    root
}

struct Run {
    out: Output,
    took: Duration,
}

impl Run {
    fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.out.stdout).into_owned()
    }
    fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.out.stderr).into_owned()
    }
    fn explain(&self) -> String {
        format!(
            "exit {}\nstdout:\n{}\nstderr:\n{}",
            self.out.status,
            self.stdout(),
            self.stderr()
        )
    }
}

/// `aisci writeup --idea-folder ROOT args…` with only the environment given here.
async fn aisci_writeup(
    dir: &Path,
    root: &Path,
    llm: &FakeLlm,
    lit: &FakeLit,
    writeup_toml: &str,
    args: &[&str],
) -> Run {
    let cfg = dir.join("user-config.toml");
    let config = format!(
        "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n\n\
         [literature]\ncache_dir = {:?}\ns2_rate_per_sec = 100.0\ns2_rate_per_sec_no_key = 100.0\nmax_retries = 0\nmax_retry_secs = 5\n\n\
         [writeup]\n{writeup_toml}\n",
        llm.v1(),
        dir.join("lit-cache").display().to_string(),
    );
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.arg("writeup")
        .arg("--idea-folder")
        .arg(root)
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("XDG_CONFIG_HOME", dir.join("xdg-config"))
        .env("XDG_CACHE_HOME", dir.join("xdg-cache"))
        .env("AISCI_CONFIG", &cfg)
        .env("AISCI_S2_URL", lit.s2_url())
        .env("AISCI_ENGINES", "semanticscholar")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let started = Instant::now();
    let child = cmd.spawn().unwrap();
    let out = tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("aisci writeup finished within 60 s")
        .unwrap();
    Run {
        out,
        took: started.elapsed(),
    }
}

/// The text of the last user message of the `i`-th model request.
fn prompt_of(llm: &FakeLlm, i: usize) -> String {
    let seen = llm.seen();
    let msgs = seen[i].body["messages"].as_array().unwrap();
    msgs.last().unwrap()["content"].as_str().unwrap().to_string()
}

fn pdf_text(pdf: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext is installed");
    assert!(out.status.success());
    // Words only: line breaks and hyphenation spaces do not matter here.
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .collect::<Vec<_>>()
        .join(" ")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn writes_the_paper_cites_a_found_paper_and_builds_it() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let script = [
        "01_title_abstract.txt",
        "02_intro.txt",
        "03_background.txt",
        "04_method.txt",
        "05_setup.txt",
        "06_results.txt",
        "07_conclusion.txt",
        "08_related.txt",
        "09_cite_query.txt",
        "10_cite_pick.txt",
        "11_no_more.txt",
        "12_refine.txt",
    ];
    let llm = FakeLlm::start(script.iter().map(|n| reply(n)).collect()).await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "citation_rounds = 3\nfix_rounds = 2\nbuild_timeout_secs = 60",
        &[],
    )
    .await;
    assert!(run.out.status.success(), "{}", run.explain());
    assert_eq!(llm.hits(), script.len(), "{}", run.explain());

    let tex = std::fs::read_to_string(root.join(TEX)).unwrap();
    for placeholder in [
        "TITLE HERE",
        "ABSTRACT HERE",
        "INTRO HERE",
        "RELATED WORK HERE",
        "BACKGROUND HERE",
        "METHOD HERE",
        "EXPERIMENTAL SETUP HERE",
        "RESULTS HERE",
        "CONCLUSIONS HERE",
    ] {
        assert!(!tex.contains(placeholder), "{placeholder} left in:\n{tex}");
    }
    assert!(
        tex.contains("next we will vary the depth."),
        "the refinement is in"
    );
    // The found paper is in the bibliography under a new key; the other work keeps its key.
    assert_eq!(tex.matches("{Bran2023AugmentingLL,").count(), 1, "{tex}");
    assert_eq!(tex.matches("{Bran2023AugmentingLLb,").count(), 1, "{tex}");
    assert!(tex.contains("Augmenting large language models with chemistry tools"));
    assert!(tex.contains("\\citep{Bran2023AugmentingLLb}"));
    let end_of_bib = tex.find("\\end{filecontents}").unwrap();
    assert!(tex.find("{Bran2023AugmentingLLb,").unwrap() < end_of_bib);
    // The model was shown that key before it cited, and the facts from env.json.
    assert!(
        prompt_of(&llm, 9).contains("key: Bran2023AugmentingLLb"),
        "{}",
        prompt_of(&llm, 9)
    );
    let first = llm.seen()[0].body.to_string();
    assert!(first.contains("GPU: NVIDIA H200"), "{first}");
    assert!(first.contains("val_acc.png") && first.contains("run_1: {"));
    // Each citation round is a fresh context: the system prompt and its own turns only (the
    // .tex comes with each turn), not the inputs or the sections' history; later calls do
    // not carry the round's listing either.
    let messages = |i: usize| llm.seen()[i].body["messages"].as_array().unwrap().clone();
    assert_eq!(messages(8).len(), 2, "round 1's query");
    assert_eq!(messages(9).len(), 4, "round 1's listing follows its query");
    assert_eq!(messages(10).len(), 2, "round 2 starts afresh");
    for i in 8..=10 {
        let sent = serde_json::to_string(&messages(i)).unwrap();
        assert!(
            !sent.contains("GPU: NVIDIA H200") && !sent.contains("run_1: {"),
            "call {i}: {sent}"
        );
    }
    let refine = serde_json::to_string(&messages(11)).unwrap();
    assert!(!refine.contains("key: Bran2023AugmentingLLb"), "{refine}");
    assert!(
        messages(11).len() < messages(7).len() + 4,
        "the rounds left the history"
    );

    // The ledger has the estimate made before the stage beside what it spent.
    let ledger = std::fs::read_to_string(root.join(".aisci/usage.jsonl")).unwrap();
    let lines: Vec<serde_json::Value> = ledger.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(
        lines.iter().filter(|l| l.get("stage").is_some()).count(),
        script.len()
    );
    let est = &lines.last().unwrap()["estimate"];
    assert_eq!(est["expected"]["stage"], "writeup", "{ledger}");
    assert_eq!(est["expected"]["model"], "local-model");
    assert!(est["expected"]["calls"].as_u64().unwrap() > 8, "{est}");
    assert!(
        est["expected"]["usd"].is_null(),
        "a local model has no price: {est}"
    );
    assert_eq!(est["actual"]["calls"], script.len() as u64);
    assert_eq!(est["actual"]["usage"]["input_tokens"], 1000 * script.len() as u64);

    // Built, with the citation resolved.
    let pdf = root.join("latex/template.pdf");
    let text = pdf_text(&pdf);
    assert!(text.contains("[Bran et al., 2023]"), "{text}");
    assert!(
        text.contains("Augmenting large language models with chemistry tools"),
        "{text}"
    );
    assert!(
        !text.contains("(?)") && !text.contains("[?]") && !text.contains("?,"),
        "{text}"
    );
    let stdout = run.stdout();
    assert!(stdout.contains("8 part(s) written"), "{stdout}");
    assert!(
        stdout.contains("1 citation(s) added in 1 round(s) (Bran2023AugmentingLLb)"),
        "{stdout}"
    );
    assert!(
        stdout.contains("; 0 fix round(s)") && stdout.contains("; build built: "),
        "{stdout}"
    );
    assert!(
        run.stderr().contains("Writing: citations, round 1/3"),
        "{}",
        run.stderr()
    );
    // Every call is in the project's usage ledger under this stage.
    let ledger = std::fs::read_to_string(root.join(".aisci/usage.jsonl")).unwrap();
    assert_eq!(
        ledger
            .lines()
            .filter(|l| l.contains("\"stage\":\"writeup\"") && !l.starts_with("{\"estimate\""))
            .count(),
        script.len()
    );
    eprintln!("full paper: {:?}", run.took);
}

/// The parts as in the test above, then the given citation and refinement replies.
fn paper_script(after_parts: &[&str]) -> Vec<Reply> {
    let parts = [
        "01_title_abstract.txt",
        "02_intro.txt",
        "03_background.txt",
        "04_method.txt",
        "05_setup.txt",
        "06_results.txt",
        "07_conclusion.txt",
        "08_related.txt",
    ];
    parts.iter().chain(after_parts).map(|n| reply(n)).collect()
}

/// A round is one search: one call lists several searches' results, and the reply that
/// picks from them proposes the next queries, so 4 rounds take 3 calls instead of 8.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_call_lists_several_searches_and_its_reply_proposes_the_next() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let text = |t: &str| Reply::chat_completion("chatcmpl-writeup", t, 1000, 100);
    let pick = std::fs::read_to_string(fixtures().join("writeup/10_cite_pick.txt"))
        .unwrap()
        .replace(
            "{\"Selected\": [1]}",
            "{\"Selected\": [1], \"Queries\": [\"lazy training\", \"mean field limit\", \"tensor programs\"]}",
        );
    let llm = FakeLlm::start(
        paper_script(&[])
            .into_iter()
            .chain([
                text("```json\n{\"Queries\": [\"width of networks\", \"llm agents for science\"]}\n```"),
                text(&pick),
                text("None fits.\n```json\n{\"Selected\": []}\n```"),
                reply("15_no_changes.txt"),
            ])
            .collect(),
    )
    .await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "citation_rounds = 4\nfix_rounds = 0\nbuild_timeout_secs = 60",
        &[],
    )
    .await;
    assert!(run.out.status.success(), "{}", run.explain());
    assert_eq!(llm.hits(), 12, "{}", run.explain());
    assert!(
        prompt_of(&llm, 8).contains("3 search queries as JSON"),
        "{}",
        prompt_of(&llm, 8)
    );
    let first = prompt_of(&llm, 9);
    assert!(
        first.contains("The searches for \"width of networks\" and \"llm agents for science\" found:"),
        "{first}"
    );
    // The same papers found twice are listed once.
    assert_eq!(
        first
            .matches("Augmenting large language models with chemistry tools (")
            .count(),
        1,
        "{first}"
    );
    assert!(first.contains("at most 2; 2 search(es) left"), "{first}");
    // The proposed queries are searched, as many as rounds are left, without a query call.
    let second = prompt_of(&llm, 10);
    assert!(
        second.contains("The searches for \"lazy training\" and \"mean field limit\" found:"),
        "{second}"
    );
    assert!(
        !second.contains("tensor programs") && !second.contains("search(es) left"),
        "{second}"
    );
    assert_eq!(lit.hits(crate::support::fake_lit::Route::S2Search), 4);
    let tex = std::fs::read_to_string(root.join(TEX)).unwrap();
    assert!(tex.contains("\\citep{Bran2023AugmentingLLb}"), "{tex}");
    let stdout = run.stdout();
    assert!(stdout.contains("1 citation(s) added in 4 round(s)"), "{stdout}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_work_already_in_the_bibliography_keeps_its_key_and_picks_must_be_cited() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    // The chemistry-tools paper is in the bibliography already, under the user's key.
    let tex_path = root.join(TEX);
    let seeded = std::fs::read_to_string(&tex_path).unwrap().replace(
        "\\end{filecontents}",
        "@article{bran2023chem,\n  title={Augmenting Large Language Models with Chemistry Tools},\n  \
         author={Bran, Andres M. and Cox, Sam},\n  journal={Nature Machine Intelligence},\n  year={2023}\n}\n\\end{filecontents}",
    );
    std::fs::write(&tex_path, &seeded).unwrap();
    let llm = FakeLlm::start(paper_script(&[
        "09_cite_query.txt",
        "13_cite_pick_uncited.txt",
        "14_cite_pick_existing.txt",
        "11_no_more.txt",
        "15_no_changes.txt",
    ]))
    .await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "citation_rounds = 5\nfix_rounds = 1\nbuild_timeout_secs = 60",
        &[],
    )
    .await;
    assert!(run.out.status.success(), "{}", run.explain());
    assert_eq!(llm.hits(), 13);
    let listing = prompt_of(&llm, 9);
    assert!(
        listing.contains(
            "1. Augmenting large language models with chemistry tools (Andrés M Bran et al., 2023)"
        ),
        "{listing}"
    );
    assert!(
        listing.contains("key: bran2023chem (already in the bibliography)"),
        "{listing}"
    );
    // Picking paper 2 without citing it was refused, and nothing was written.
    let feedback = prompt_of(&llm, 10);
    assert!(feedback.contains("Your edits were not made"), "{feedback}");
    assert!(feedback.contains("but your edits do not cite it"), "{feedback}");
    // The next round starts afresh: the listing is not sent again.
    let later = llm.seen()[11].body.to_string();
    assert!(later.contains("Citation round 2 of 5"), "{later}");
    assert!(!later.contains("key: bran2023chem"), "{later}");
    let tex = std::fs::read_to_string(&tex_path).unwrap();
    assert!(tex.contains("studies \\citep{bran2023chem}."));
    assert_eq!(
        tex.matches("@article{").count(),
        seeded.matches("@article{").count(),
        "no entry added"
    );
    assert!(!tex.contains("PaperQA"));
    let stdout = run.stdout();
    assert!(stdout.contains("0 citation(s) added in 1 round(s)"), "{stdout}");
    assert!(!stdout.contains("refined"), "{stdout}");
    let text = pdf_text(&root.join("latex/template.pdf"));
    assert!(text.contains("[Bran and Cox, 2023]"), "{text}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn edits_that_drop_end_document_or_add_html_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let original = std::fs::read_to_string(root.join(TEX)).unwrap();
    let llm = FakeLlm::start(vec![
        reply("bad_end_document.txt"),
        reply("bad_html.txt"),
        reply("06_results.txt"),
    ])
    .await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "max_attempts_per_section = 3\nfix_rounds = 0\nbuild_timeout_secs = 60",
        &["--section", "results"],
    )
    .await;
    assert!(run.out.status.success(), "{}", run.explain());
    assert_eq!(llm.hits(), 3);
    let second = prompt_of(&llm, 1);
    assert!(second.contains("the edit removes \\end{document}"), "{second}");
    let third = prompt_of(&llm, 2);
    assert!(third.contains("HTML tags (<b>, </b>, </p>)"), "{third}");
    // Each refused edit left the file as it was: the next turn saw the original text.
    for i in [1, 2] {
        let body = llm.seen()[i].body["messages"].as_array().unwrap().last().unwrap()["content"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(body.contains(&original), "turn {} saw a changed file", i + 1);
    }
    let tex = std::fs::read_to_string(root.join(TEX)).unwrap();
    assert_eq!(tex, original.replace("RESULTS HERE\n", &results_text()));
    assert!(run.stdout().contains("2 edit(s) refused"), "{}", run.stdout());
    assert!(root.join("latex/template.pdf").is_file());
}

fn results_text() -> String {
    "On blobs the wider layer reaches a mean validation accuracy of 0.97, against 0.95 for the\n\
     baseline (Figure~\\ref{fig:results}). The comparison uses three seeds only, which limits\n\
     what it can show.\n"
        .to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_section_whose_edits_are_all_refused_leaves_the_file_intact() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let original = std::fs::read(root.join(TEX)).unwrap();
    let llm = FakeLlm::start(vec![reply("bad_end_document.txt")]).await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "max_attempts_per_section = 1\nfix_rounds = 0\nbuild_timeout_secs = 60",
        &["--section", "Results"],
    )
    .await;
    assert_eq!(run.out.status.code(), Some(1), "{}", run.explain());
    assert_eq!(std::fs::read(root.join(TEX)).unwrap(), original);
    assert!(
        run.stdout().contains("0 part(s) written (1 not: Results)"),
        "{}",
        run.stdout()
    );
    assert!(
        run.stderr().contains("the paper is not finished"),
        "{}",
        run.stderr()
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_build_stops_at_its_limit_and_keeps_the_previous_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let previous = b"%PDF-1.5\n% the last good build\n".to_vec();
    std::fs::write(root.join("latex/template.pdf"), &previous).unwrap();
    let llm = FakeLlm::start(vec![reply("results_hang.txt")]).await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "fix_rounds = 0\nbuild_timeout_secs = 4",
        &["--section", "Results"],
    )
    .await;
    assert_eq!(run.out.status.code(), Some(1), "{}", run.explain());
    let stdout = run.stdout();
    assert!(
        stdout.contains("build timed out (the previous PDF is kept: "),
        "{stdout}"
    );
    assert!(stdout.contains("did not finish within 4 s"), "{stdout}");
    assert_eq!(std::fs::read(root.join("latex/template.pdf")).unwrap(), previous);
    assert!(run.took < Duration::from_secs(20), "took {:?}", run.took);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_build_error_goes_back_to_the_model_and_is_fixed() {
    let dir = tempfile::tempdir().unwrap();
    let root = idea_folder(dir.path());
    let llm = FakeLlm::start(vec![
        reply("results_build_error.txt"),
        reply("fix_build_error.txt"),
    ])
    .await;
    let lit = FakeLit::start().await;
    let run = aisci_writeup(
        dir.path(),
        &root,
        &llm,
        &lit,
        "fix_rounds = 3\nbuild_timeout_secs = 60",
        &["--section", "Results"],
    )
    .await;
    assert!(run.out.status.success(), "{}", run.explain());
    assert_eq!(llm.hits(), 2);
    let tex = std::fs::read_to_string(root.join(TEX)).unwrap();
    let line = tex.lines().position(|l| l.contains("\\accuracyvalue")).is_none();
    assert!(line, "the fix is in");
    let fix = prompt_of(&llm, 1);
    assert!(fix.contains("fix round 1 of 3"), "{fix}");
    assert!(fix.contains("Undefined control sequence"), "{fix}");
    // Only the real error: no citation left undefined by a build cut short by it.
    assert!(!fix.contains("is undefined in the built PDF"), "{fix}");
    // The error is given at its line in the .tex.
    let bad_line = std::fs::read_to_string(root.join(TEX))
        .unwrap()
        .lines()
        .position(|l| l.starts_with("On blobs the wider layer reaches"))
        .unwrap()
        + 1;
    assert!(fix.contains(&format!("line {bad_line}: latex: ")), "{fix}");
    let stdout = run.stdout();
    assert!(
        stdout.contains("1 fix round(s)") && stdout.contains("build built"),
        "{stdout}"
    );
    assert!(pdf_text(&root.join("latex/template.pdf")).contains("wider layer reaches 0.97"));
}
