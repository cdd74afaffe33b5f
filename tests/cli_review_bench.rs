//! `aisci review-bench --reviews` as a user runs it: v1's stored reviews of its ICLR 2022
//! set (`tests/fixtures/iclr2022_review_bench/`) scored against the labels. No API key is
//! set and the configured model endpoint does not exist: scoring stored reviews calls
//! nothing.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use crate::support::fs::fixtures;

const BEST: &str = "gpt-4o-2024-05-13_temp_0_1_fewshot_1_reflect_5_ensemble_5_pages_all.csv";

fn bench() -> PathBuf {
    fixtures().join("iclr2022_review_bench")
}

fn reviews(name: &str) -> PathBuf {
    bench().join("llm_reviews").join(name)
}

/// `aisci review-bench --labels <fixture labels> ARGS` in `dir`, with a model that
/// would fail at once if anything called it.
async fn review_bench(dir: &Path, args: &[&dyn AsRef<std::ffi::OsStr>]) -> Output {
    let cfg = dir.join("user-config.toml");
    std::fs::write(
        &cfg,
        "[llm]\nmodel = \"gpt-4o\"\nbase_url = \"http://127.0.0.1:9/v1\"\nmax_retries = 0\n",
    )
    .unwrap();
    let mut cmd = crate::support::cli::aisci(dir, &cfg);
    cmd.arg("review-bench")
        .arg("--labels")
        .arg(bench().join("ratings_subset.tsv"))
        .args(args)
        .current_dir(dir);
    tokio::time::timeout(Duration::from_secs(60), cmd.output())
        .await
        .expect("review-bench finishes")
        .unwrap()
}

fn text(o: &[u8]) -> String {
    String::from_utf8_lossy(o).into_owned()
}

/// The cells after `name` on the first line of `block` that starts with it.
fn cells(block: &str, name: &str) -> Vec<String> {
    let line = block
        .lines()
        .find(|l| l.starts_with(name))
        .unwrap_or_else(|| panic!("no {name} row in:\n{block}"));
    line[name.len()..].split_whitespace().map(String::from).collect()
}

#[tokio::test]
async fn stored_reviews_reproduce_v1s_known_figures_without_a_model() {
    let dir = tempfile::tempdir().unwrap();
    let json = dir.path().join("bench.json");
    let other = reviews("gpt-4o-2024-05-13_temp_0_1_pages_all.csv");
    let out = review_bench(
        dir.path(),
        &[
            &"--reviews",
            &reviews(BEST),
            &"--reviews",
            &other,
            &"--json",
            &json,
        ],
    )
    .await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert_eq!(text(&out.stderr), "", "no warning, no model, no key asked for");
    // One block per file, in the order given, each under its file's path.
    let (best, rest) = stdout.split_once("\n\n").expect("two blocks");
    assert!(best.starts_with(&reviews(BEST).display().to_string()), "{stdout}");
    assert!(rest.starts_with(&other.display().to_string()), "{stdout}");
    assert!(
        best.contains("500 papers (184 accepted, 316 rejected)"),
        "{stdout}"
    );
    // n, bal.acc, accuracy, F1, AUC, FPR, FNR.
    let decision = cells(best, "model's Decision");
    assert_eq!(
        (decision[0].as_str(), decision[1].as_str(), decision[3].as_str()),
        ("500", "0.602", "0.372")
    );
    assert_eq!(decision[4], "-", "a yes/no Decision has no AUC");
    let overall = cells(best, "calibrated (Overall >= 6)");
    assert_eq!(
        (overall[0].as_str(), overall[1].as_str()),
        ("500", "0.651"),
        "{stdout}"
    );
    assert!(!stdout.contains("skipped"), "every row is usable: {stdout}");
    // The JSON holds the same figures, unrounded, per file.
    let j: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let first = &j[0];
    assert_eq!(first["file"], reviews(BEST).display().to_string());
    let at3 = |v: &serde_json::Value| (v.as_f64().unwrap() * 1000.0).round() / 1000.0;
    assert_eq!(at3(&first["decision"]["balanced_accuracy"]), 0.602);
    assert_eq!(at3(&first["decision"]["f1"]), 0.372);
    assert_eq!(at3(&first["calibrated"]["balanced_accuracy"]), 0.651);
    assert_eq!(first["threshold"], 6);
    assert_eq!(first["skipped"]["duplicate"], 0);
    assert_eq!(j.as_array().unwrap().len(), 2);
}

#[tokio::test]
async fn unusable_rows_are_skipped_and_counted_and_a_threshold_is_taken() {
    let dir = tempfile::tempdir().unwrap();
    // Two real papers (accepted xZ6H7wydGl, rejected tDirSp3pczB), one unknown, one
    // without Overall and one listed twice: the second tDirSp3pczB row is not used.
    let csv = dir.path().join("mine.csv");
    std::fs::write(
        &csv,
        "paper_id,Summary,Overall,Decision\n\
         xZ6H7wydGl,\"A summary\non two lines\",7,Accept\n\
         tDirSp3pczB,Short.,5,Reject\n\
         not-a-paper,x,9,Accept\n\
         YDud6vPh2V,x,,Reject\n\
         tDirSp3pczB,Again.,9,Accept\n",
    )
    .unwrap();
    let out = review_bench(dir.path(), &[&"--reviews", &csv, &"--threshold", &"8"]).await;
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", text(&out.stderr));
    assert!(
        stdout.contains("skipped 3 rows: 1 no label, 1 no Overall, 1 duplicate paper"),
        "{stdout}"
    );
    assert!(stdout.contains("2 papers (1 accepted, 1 rejected)"), "{stdout}");
    assert!(
        stdout.contains("498 labelled paper(s) have no scored row"),
        "{stdout}"
    );
    // Decision right on both; Overall ≥ 8 accepts neither.
    assert_eq!(cells(&stdout, "model's Decision")[1], "1.000", "{stdout}");
    assert_eq!(
        cells(&stdout, "calibrated (Overall >= 8)")[1..4],
        ["0.500", "0.500", "0.000"],
        "{stdout}"
    );
}

#[tokio::test]
async fn a_missing_file_or_column_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let gone = dir.path().join("gone.csv");
    let out = review_bench(dir.path(), &[&"--reviews", &reviews(BEST), &"--reviews", &gone]).await;
    assert!(!out.status.success());
    assert_eq!(text(&out.stdout), "", "no partial report");
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: No such file", gone.display())),
        "{stderr}"
    );

    let bad = dir.path().join("no_overall.csv");
    std::fs::write(&bad, "paper_id,Score,Decision\nxZ6H7wydGl,7,Accept\n").unwrap();
    let out = review_bench(dir.path(), &[&"--reviews", &bad]).await;
    assert!(!out.status.success());
    let stderr = text(&out.stderr);
    assert!(
        stderr.contains(&format!("{}: no Overall column", bad.display())),
        "{stderr}"
    );
}
