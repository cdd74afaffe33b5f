//! `aisci demo` (README command one) as a user runs it, offline: the recorded model and
//! literature answers, real experiment runs of tiny_mlp, the paper built with the real TeX
//! Live, the review and its comments placed in the paper.

use std::process::Stdio;
use std::time::Duration;

use serde_json::Value;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_demo_runs_the_whole_loop_offline() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("demo");
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.arg("demo")
        .arg("--out")
        .arg(&out)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir.path())
        // Any proxy would be a way out; the demo needs none.
        .env("HTTPS_PROXY", "http://127.0.0.1:9")
        .env("HTTP_PROXY", "http://127.0.0.1:9")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    let o = tokio::time::timeout(Duration::from_secs(120), cmd.output())
        .await
        .expect("the demo finished within 120 s")
        .unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout);
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("not a live model"), "{stdout}");
    // Two ideas, one novel, its experiments passed, its paper built, reviewed 3/10.
    assert!(
        stdout.contains("| 2 | 1 | 1 | 1 | 3.00 | 3 |"),
        "{stdout}\n{stderr}"
    );
    let template = out.join("tiny_mlp");
    let ideas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(template.join("ideas.json")).unwrap()).unwrap();
    let verdict = |name: &str| ideas.iter().find(|i| i["Name"] == name).unwrap()["novel"].clone();
    assert_eq!(verdict("edge_of_stability_tiny_mlp"), true);
    assert_eq!(verdict("margin_curriculum"), false);
    let results = out.join("results/tiny_mlp");
    let folders: Vec<_> = std::fs::read_dir(&results)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "only the novel idea is pursued");
    let idea = &folders[0];
    for f in [
        "run_1/final_info.json",
        "run_2/final_info.json",
        "notes.txt",
        "latex/template.pdf",
        "review.json",
        "review.txt",
    ] {
        assert!(idea.join(f).is_file(), "{f} missing in {}", idea.display());
    }
    // The review's comments, placed in the paper as the editor shows them.
    let tex = idea.join("latex/template.tex");
    let src = std::fs::read_to_string(&tex).unwrap();
    let weakness = stdout
        .lines()
        .find(|l| l.contains("warning: Weakness: Only two runs"))
        .unwrap_or_else(|| panic!("{stdout}"));
    let line: usize = weakness
        .trim()
        .strip_prefix(&format!("{}:", tex.display()))
        .unwrap()
        .split(':')
        .next()
        .unwrap()
        .parse()
        .unwrap();
    assert!(
        src.lines()
            .nth(line - 1)
            .unwrap()
            .contains("wider layer reaches a mean validation accuracy"),
        "{weakness}"
    );
    assert!(stdout.contains("hint: Limitation:"), "{stdout}");
}
