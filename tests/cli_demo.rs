//! `aisci demo` (README command one) as a user runs it, offline: the recorded model and
//! literature answers, real experiment runs of tiny_mlp, the paper built with the real TeX
//! Live, the review and its comments placed in the paper.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

/// Runs `aisci demo` with a clean environment; `python` becomes `run.python` in the
/// user's config when given.
async fn demo(dir: &std::path::Path, python: Option<&str>) -> (std::path::PathBuf, String) {
    let out = dir.join("demo");
    if let Some(py) = python {
        let config = dir.join(".config/aisci");
        std::fs::create_dir_all(&config).unwrap();
        std::fs::write(config.join("config.toml"), format!("[run]\npython = {py:?}\n")).unwrap();
    }
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.arg("demo")
        .arg("--out")
        .arg(&out)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        // Any proxy would be a way out; the demo needs none.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let o = tokio::time::timeout(Duration::from_secs(180), cmd.output())
        .await
        .expect("the demo finished within 180 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    // Progress goes to stderr; the checks read both, as the user does.
    (out, format!("{stdout}\n{stderr}"))
}

fn idea_folder(out: &std::path::Path) -> std::path::PathBuf {
    let results = out.join("results/tiny_mlp");
    let folders: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "only the novel idea is pursued");
    folders[0].clone()
}

/// The line of a printed `file:line:col:` diagnostic of `tex` whose text has `needle`.
fn diagnostic_line(stdout: &str, tex: &std::path::Path, needle: &str) -> usize {
    let found = stdout
        .lines()
        .find(|l| l.contains(needle))
        .unwrap_or_else(|| panic!("no {needle:?} in\n{stdout}"));
    found
        .trim()
        .strip_prefix(&format!("{}:", tex.display()))
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_loop_offline() {
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout) = demo(dir.path(), None).await;
    assert!(stdout.contains("not a live model"), "{stdout}");
    assert!(stdout.contains("run with python3 (run.python)"), "{stdout}");
    // Two ideas, one novel, its experiments passed, its paper built, reviewed 4/10.
    assert!(stdout.contains("| 2 | 1 | 1 | 1 | 4.00 | 4 |"), "{stdout}");
    let template = out.join("tiny_mlp");
    let ideas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(template.join("ideas.json")).unwrap()).unwrap();
    let verdict = |name: &str| ideas.iter().find(|i| i["Name"] == name).unwrap()["novel"].clone();
    assert_eq!(verdict("edge_of_stability_tiny_mlp"), true);
    assert_eq!(verdict("margin_curriculum"), false);
    let idea = idea_folder(&out);
    for f in [
        "run_1/final_info.json",
        "run_2/final_info.json",
        "run_3/final_info.json",
        "notes.txt",
        "latex/template.pdf",
        "review.json",
        "review.txt",
    ] {
        assert!(idea.join(f).is_file(), "{f} missing in {}", idea.display());
    }
    // The runs test the idea: the probe's metric is in every run after the baseline.
    let run1: Value =
        serde_json::from_str(&std::fs::read_to_string(idea.join("run_1/final_info.json")).unwrap()).unwrap();
    assert!(
        run1["moons"]["means"]["final_sharpness_mean"].is_number(),
        "{run1}"
    );
    // Every number of the paper traced to its run.
    assert!(
        stdout.contains("integrity of edge_of_stability_tiny_mlp: every number traced to its run"),
        "{stdout}"
    );
    let tex = idea.join("latex/template.tex");
    let src = std::fs::read_to_string(&tex).unwrap();
    if !idea.join("sharpness.png").exists() {
        // No matplotlib for python3: the console says why, and the paper cites no figure.
        assert!(
            stdout.contains("plots: none (matplotlib is not installed for python3"),
            "{stdout}"
        );
        assert!(!src.contains("\\includegraphics"), "{src}");
    }
    // The review's comments, placed in the paper as the editor shows them: a quote field
    // on its sentence, a plain-string weakness on the sentence it quotes inline.
    let line = diagnostic_line(&stdout, &tex, "warning: Weakness: The sweep and the single");
    assert!(
        src.lines()
            .nth(line - 1)
            .unwrap()
            .contains("does not raise the sharpness towards it"),
        "line {line}\n{src}"
    );
    let line = diagnostic_line(
        &stdout,
        &tex,
        "warning: Weakness: The sentence \"The probe measures",
    );
    assert!(
        src.lines()
            .nth(line - 1)
            .unwrap()
            .contains("The probe measures sharpness once"),
        "line {line}\n{src}"
    );
    assert!(stdout.contains("hint: Limitation:"), "{stdout}");
    // It ends by saying where the results are and how to open them.
    let next = &stdout[stdout
        .find("What to look at now:")
        .unwrap_or_else(|| panic!("{stdout}"))..];
    assert!(
        next.contains(&format!(
            "the paper    {}",
            idea.join("latex/template.pdf").display()
        )),
        "{next}"
    );
    assert!(
        next.contains("review.txt") && next.contains("in Neovim") && next.contains("in VS Code"),
        "{next}"
    );
}

/// With `run.python` naming a Python that has matplotlib (scripts/test's torch venv), the
/// demo draws the figures and the paper includes them, traced like every number.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_honours_run_python_and_puts_its_figures_in_the_paper() {
    let py = std::env::var("AISCI_TEMPLATE_PYTHON").unwrap_or_default();
    assert!(
        !py.is_empty(),
        "AISCI_TEMPLATE_PYTHON is not set: it must name a Python with matplotlib (scripts/test sets it)"
    );
    let dir = tempfile::tempdir().unwrap();
    let (out, stdout) = demo(dir.path(), Some(&py)).await;
    assert!(
        stdout.contains(&format!("run with {py} (run.python)")),
        "{stdout}"
    );
    let idea = idea_folder(&out);
    let src = std::fs::read_to_string(idea.join("latex/template.tex")).unwrap();
    for png in ["sharpness.png", "steps_to_90.png", "val_acc.png"] {
        assert!(idea.join(png).is_file(), "{png} was not drawn\n{stdout}");
        assert!(
            src.contains(&format!("{{{png}}}")),
            "{png} is not in the paper\n{src}"
        );
    }
    // The recorded vision model found the legend on the moons bars; plot.py was revised
    // once and every redrawn figure passed.
    assert!(
        stdout.contains("figures critiqued by gpt-4o-2024-11-20: 3 of 3 fine after 1 revision(s)"),
        "{stdout}"
    );
    let plot = std::fs::read_to_string(idea.join("plot.py")).unwrap();
    assert!(plot.contains("bbox_to_anchor"), "{plot}");
    let catalog = aisci::project::figures::FigureCatalog::load(&idea);
    let c = catalog.get("val_acc.png").unwrap().critique.clone().unwrap();
    assert!(c.ok && c.rounds == 2, "{c:?}");
    let notes = std::fs::read_to_string(idea.join("notes.txt")).unwrap();
    assert!(notes.contains("Figure sharpness.png:"), "{notes}");
    assert!(!notes.contains("summary.png"), "{notes}");
    assert!(
        stdout.contains(
            "integrity of edge_of_stability_tiny_mlp: every number traced to its run, no figure problem"
        ),
        "{stdout}"
    );
}
