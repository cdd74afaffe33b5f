//! Building papers with the real TeX Live (installed by `.ci/run`): the v1 paper (with our
//! stand-in conference style, tests/fixtures/paper/standin/) builds with its citations
//! resolved and its BibTeX defects reported at their lines; a broken build keeps the last
//! good PDF; a build that hangs is stopped at its time limit.

use std::path::{Path, PathBuf};
use std::time::Duration;

use aisci::latex::build::{self, BuildStatus};
use aisci::project::Severity;
use aisci::runner::LocalRunner;
use tokio_util::sync::CancellationToken;

use crate::support::fs;
use crate::support::png::tiny_png;

fn fixtures() -> PathBuf {
    fs::fixtures().join("paper")
}

/// The v1 paper set up as v1 lays it out: `<idea>/latex/template.tex`, figures in `<idea>/`.
fn v1_paper(dir: &Path) -> PathBuf {
    let latex = dir.join("latex");
    std::fs::create_dir_all(&latex).unwrap();
    let src = fixtures().join("v1_adaptive_dual_scale");
    std::fs::copy(src.join("template.tex"), latex.join("template.tex")).unwrap();
    std::fs::copy(
        fixtures().join("standin/iclr2024_conference.sty"),
        latex.join("iclr2024_conference.sty"),
    )
    .unwrap();
    // The conference's .bst is not in the corpus: TeX Live's plainnat under its name.
    let plainnat = std::process::Command::new("kpsewhich")
        .arg("plainnat.bst")
        .output()
        .expect("kpsewhich (TeX Live) is installed: run .ci/run's apt step");
    let plainnat = String::from_utf8(plainnat.stdout).unwrap();
    std::fs::copy(plainnat.trim(), latex.join("iclr2024_conference.bst")).unwrap();
    for f in ["generated_images.png", "weight_evolution.png"] {
        std::fs::write(dir.join(f), tiny_png()).unwrap();
    }
    latex.join("template.tex")
}

fn pdftotext(pdf: &Path) -> String {
    let out = std::process::Command::new("pdftotext")
        .arg(pdf)
        .arg("-")
        .output()
        .expect("pdftotext (poppler-utils) is installed");
    String::from_utf8_lossy(&out.stdout).into_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn v1_paper_builds_and_its_bibtex_defects_are_reported() {
    let dir = tempfile::tempdir().unwrap();
    let tex = v1_paper(dir.path());
    let runner = LocalRunner::new(8 << 20);
    let out = build::build(
        &tex,
        Duration::from_secs(120),
        &runner,
        false,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    let src = std::fs::read_to_string(&tex).unwrap();
    for p in &out.problems {
        eprintln!("{:?}:{:?} {:?} {}", p.file, p.line, p.severity, p.message);
    }
    assert_eq!(out.status, BuildStatus::Built, "{:?}", out.problems);
    assert!(out.pdf_is_new);
    let pdf = out.pdf.clone().unwrap();
    assert_eq!(pdf, tex.with_extension("pdf"));
    let text = pdftotext(&pdf);
    assert!(
        text.contains("DualScale Diffusion"),
        "{}",
        &text[..text.len().min(500)]
    );
    // Citations resolved: natbib prints "(?)" for unknown ones; plainnat author-year here.
    assert!(
        !text.contains("(?)") && !text.contains("[?]"),
        "unresolved citations in the PDF"
    );
    assert!(
        text.contains("Ho et al."),
        "author-year citation of the DDPM paper"
    );
    // bibtex's "Repeated entry" errors point into the filecontents block of the .tex, at
    // the repeated key.
    let repeats: Vec<_> = out
        .problems
        .iter()
        .filter(|p| p.source == "bibtex" && p.message.contains("Repeated entry"))
        .collect();
    assert_eq!(repeats.len(), 5, "{:?}", out.problems);
    for r in &repeats {
        assert_eq!(r.file.as_deref(), Some(tex.as_path()));
        let line = src
            .lines()
            .nth(r.line.unwrap() as usize - 1)
            .unwrap()
            .to_lowercase();
        assert!(
            line.starts_with("@article{") || line.starts_with("@inproceedings{"),
            "{line}"
        );
    }
    // No undefined citations after the full build.
    assert!(
        !out.problems.iter().any(|p| p.message.starts_with("citation ")),
        "{:?}",
        out.problems
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_broken_build_reports_the_line_and_keeps_the_last_pdf() {
    let dir = tempfile::tempdir().unwrap();
    let tex = dir.path().join("paper.tex");
    let good = "\\documentclass{article}\n\\begin{document}\nHello.\n\\end{document}\n";
    std::fs::write(&tex, good).unwrap();
    let runner = LocalRunner::new(8 << 20);
    let cancel = CancellationToken::new();
    let first = build::build(&tex, Duration::from_secs(60), &runner, false, &cancel)
        .await
        .unwrap();
    assert_eq!(first.status, BuildStatus::Built, "{:?}", first.problems);
    let pdf = first.pdf.unwrap();
    let before = std::fs::read(&pdf).unwrap();

    // A file error is fatal in nonstop mode: TeX stops, no PDF comes of it.
    let broken =
        "\\documentclass{article}\n\\begin{document}\nHello.\n\\input{missing-part}\n\\end{document}\n";
    std::fs::write(&tex, broken).unwrap();
    let second = build::build(&tex, Duration::from_secs(60), &runner, false, &cancel)
        .await
        .unwrap();
    assert_eq!(second.status, BuildStatus::Failed);
    assert!(!second.pdf_is_new);
    assert_eq!(std::fs::read(&pdf).unwrap(), before, "the last good PDF is kept");
    let err = second
        .problems
        .iter()
        .find(|p| p.severity == Severity::Error)
        .expect("an error");
    assert_eq!(err.line, Some(4));
    assert!(
        err.message.contains("File `missing-part.tex' not found"),
        "{}",
        err.message
    );
}

/// A paper with citations, references and one error pdflatex recovers from (a stray brace
/// in math, as in v1's gan_diffusion paper): all passes run, as in v1's chain, so the PDF
/// is built with everything resolved, and the one real error is reported at its line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_recoverable_error_still_builds_the_paper_with_its_citations() {
    let dir = tempfile::tempdir().unwrap();
    let tex = dir.path().join("paper.tex");
    let src = std::fs::read_to_string(fixtures().join("recoverable_error.tex")).unwrap();
    std::fs::write(&tex, &src).unwrap();
    let runner = LocalRunner::new(8 << 20);
    let cancel = CancellationToken::new();
    let out = build::build(&tex, Duration::from_secs(120), &runner, false, &cancel)
        .await
        .unwrap();
    for p in &out.problems {
        eprintln!("{:?}:{:?} {:?} {}", p.file, p.line, p.severity, p.message);
    }
    assert_eq!(out.status, BuildStatus::Built, "{:?}", out.problems);
    assert!(out.pdf_is_new);
    let pdf = out.pdf.clone().unwrap();
    assert_eq!(pdf, tex.with_extension("pdf"));
    let errors: Vec<_> = out
        .problems
        .iter()
        .filter(|p| p.severity == Severity::Error)
        .collect();
    assert_eq!(errors.len(), 1, "exactly the real error: {errors:?}");
    let bad_line = src.lines().position(|l| l.starts_with("$\\left( x")).unwrap() as u32 + 1;
    assert_eq!(errors[0].line, Some(bad_line), "{:?}", errors[0]);
    assert_eq!(errors[0].source, "latex");
    let undefined: Vec<_> = out
        .problems
        .iter()
        .filter(|p| p.message.contains("is undefined in the built PDF"))
        .collect();
    assert!(undefined.is_empty(), "phantom undefined: {undefined:?}");
    let text = pdftotext(&pdf);
    assert!(!text.contains("[?]") && !text.contains("??"), "{text}");
    assert!(
        text.contains("Alpha [2020]") && text.contains("Section 2"),
        "{text}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_build_is_stopped_at_its_limit() {
    let dir = tempfile::tempdir().unwrap();
    let tex = dir.path().join("loop.tex");
    std::fs::write(
        &tex,
        "\\documentclass{article}\n\\begin{document}\n\\def\\x{\\x}\\x\n\\end{document}\n",
    )
    .unwrap();
    let runner = LocalRunner::new(8 << 20);
    let t = std::time::Instant::now();
    let out = build::build(
        &tex,
        Duration::from_secs(3),
        &runner,
        false,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, BuildStatus::TimedOut);
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
    assert!(out.pdf.is_none());
}

/// A project's latexmkrc is Perl that latexmk runs: outside a trusted folder it is not read
/// (the build says which file it passed over); in a trusted one it is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_project_latexmkrc_runs_only_when_the_folder_is_trusted() {
    let dir = tempfile::tempdir().unwrap();
    let latex = dir.path().join("latex");
    std::fs::create_dir_all(&latex).unwrap();
    let tex = latex.join("template.tex");
    std::fs::write(
        &tex,
        "\\documentclass{article}\n\\begin{document}\nHi.\n\\end{document}\n",
    )
    .unwrap();
    let marker = dir.path().join("rc-ran");
    std::fs::write(
        latex.join("latexmkrc"),
        format!("open(my $f, '>', '{}'); close($f);\n", marker.display()),
    )
    .unwrap();
    let runner = LocalRunner::new(8 << 20);
    let out = build::build(
        &tex,
        Duration::from_secs(60),
        &runner,
        false,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, BuildStatus::Built, "{:?}", out.problems);
    assert!(!marker.exists(), "the untrusted latexmkrc ran");
    assert_eq!(out.ignored_rc, Some(latex.join("latexmkrc")));
    let out = build::build(
        &tex,
        Duration::from_secs(60),
        &runner,
        true,
        &CancellationToken::new(),
    )
    .await
    .unwrap();
    assert_eq!(out.status, BuildStatus::Built, "{:?}", out.problems);
    assert!(marker.exists(), "a trusted folder's latexmkrc is read");
    assert_eq!(out.ignored_rc, None);
}
