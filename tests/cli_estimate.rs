//! `--estimate` as a user runs it: the cost of a launch or a stage, per stage, for the
//! configured model, before anything is spent. No API key is set and no server exists:
//! an estimate calls nothing, starts nothing and writes nothing.

use crate::support::cli::aisci;
use crate::support::fs::tiny_mlp_without_ideas;

fn row<'a>(out: &'a str, stage: &str) -> Vec<&'a str> {
    out.lines()
        .find(|l| l.starts_with(stage))
        .unwrap_or_else(|| panic!("no {stage} row in:\n{out}"))
        .split_whitespace()
        .collect()
}

fn usd(cell: &str) -> f64 {
    cell.trim_start_matches('$').parse().unwrap()
}

#[tokio::test]
async fn a_launch_is_estimated_per_stage_for_the_configured_model_and_nothing_happens() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_without_ideas(&dir.path().join("tiny_mlp"));
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[llm]\nmodel = \"gpt-4o\"\nbase_url = \"http://127.0.0.1:9/v1\"\n",
    )
    .unwrap();
    let before: Vec<_> = std::fs::read_dir(&t)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    let run = |ideas: &'static str| {
        let mut cmd = aisci(dir.path(), &cfg);
        cmd.args(["launch", "--template"])
            .arg(&t)
            .args(["--num-ideas", ideas, "--estimate"]);
        cmd.output()
    };
    let one = run("1").await.unwrap();
    let out = String::from_utf8_lossy(&one.stdout).to_string();
    assert!(
        one.status.success(),
        "{out}\n{}",
        String::from_utf8_lossy(&one.stderr)
    );
    for stage in ["ideas", "novelty", "experiment", "writeup", "review", "total"] {
        let cells = row(&out, stage);
        assert!(cells.last().unwrap().starts_with('$'), "{out}");
    }
    assert_eq!(row(&out, "writeup")[1], "gpt-4o");
    let total = usd(row(&out, "total").last().unwrap());
    assert!(total > 0.1 && total < 5.0, "{out}");
    // Two ideas: every stage but idea generation twice.
    let two = String::from_utf8_lossy(&run("2").await.unwrap().stdout).to_string();
    let w = |o: &str| usd(row(o, "writeup").last().unwrap());
    assert!((w(&two) - 2.0 * w(&out)).abs() < 0.011, "{out}\n{two}");
    let after: Vec<_> = std::fs::read_dir(&t)
        .unwrap()
        .flatten()
        .map(|e| e.file_name())
        .collect();
    assert_eq!(before, after, "nothing written");
}

#[tokio::test]
async fn a_stage_is_estimated_for_its_own_model_and_an_unpriced_one_says_so() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_without_ideas(&dir.path().join("tiny_mlp"));
    let cfg = dir.path().join("config.toml");
    std::fs::write(
        &cfg,
        "[llm]\nmodel = \"a-local-model\"\nprovider = \"ollama\"\n\n[review]\nmodel = \"claude-sonnet-4-5\"\nensemble = 5\n",
    )
    .unwrap();
    let mut cmd = aisci(dir.path(), &cfg);
    cmd.args(["review", "--idea-folder"]).arg(&t).arg("--estimate");
    let out = cmd.output().await.unwrap();
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let review = row(&text, "review");
    assert_eq!(review[1], "claude-sonnet-4-5");
    // Anthropic has no `n`: five reviewers, the meta-review and the reflections.
    assert!(review[2].parse::<u32>().unwrap() >= 6, "{text}");
    let mut cmd = aisci(dir.path(), &cfg);
    cmd.args(["writeup", "--idea-folder"]).arg(&t).arg("--estimate");
    let text = String::from_utf8_lossy(&cmd.output().await.unwrap().stdout).to_string();
    assert!(row(&text, "writeup").contains(&"no"), "{text}");
    assert!(row(&text, "total").iter().any(|c| c.starts_with('≥')), "{text}");
}
