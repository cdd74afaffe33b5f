//! The v1 corpus (fixtures/v1, see its PROVENANCE.txt) loads and passes the checks.

use std::path::{Path, PathBuf};

use aisci::project::{
    check_final_info, check_ideas_json, check_prompt_json, check_template, ideas_to_json, FinalInfo, Idea,
    Overlay, PromptJson, Severity,
};
use serde_json::Value;

use crate::support::fs::{self, tiny_mlp};

fn fixtures() -> PathBuf {
    fs::fixtures().join("v1")
}

fn folders() -> Vec<PathBuf> {
    let f = fixtures();
    vec![
        f.join("templates/2d_diffusion"),
        f.join("templates/grokking"),
        f.join("templates/nanoGPT"),
        f.join("example_papers/adaptive_dual_scale_denoising"),
    ]
}

fn read(p: &Path) -> String {
    std::fs::read_to_string(p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

#[test]
fn v1_files_load() {
    for dir in folders() {
        let prompt: PromptJson = serde_json::from_str(&read(&dir.join("prompt.json"))).unwrap();
        assert!(!prompt.task_description.is_empty());
        for file in ["seed_ideas.json", "ideas.json"] {
            let text = read(&dir.join(file));
            let ideas: Vec<Idea> = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: {e}"));
            assert!(!ideas.is_empty());
            // Round trip: the same values back, in v1's layout.
            let values: Vec<Value> = ideas.iter().map(Idea::to_value).collect();
            let original: Value = serde_json::from_str(&text).unwrap();
            assert_eq!(Value::Array(values.clone()), original, "{}", dir.display());
            if file == "ideas.json" {
                assert!(ideas.iter().all(|i| i.novel.is_some()));
                assert_eq!(
                    ideas_to_json(&values).trim_end(),
                    text.trim_end(),
                    "{}",
                    dir.display()
                );
            }
        }
        let runs: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.file_name().unwrap().to_str().unwrap().starts_with("run_"))
            .collect();
        assert!(!runs.is_empty());
        for run in runs {
            let fi = FinalInfo::parse(&read(&run.join("final_info.json"))).unwrap();
            assert!(fi.mean_count() > 0, "{}", run.display());
            assert!(fi.means_by_dataset().values().all(Value::is_object));
        }
    }
}

#[test]
fn grokking_baseline_has_stderrs_and_per_seed_values() {
    let fi = FinalInfo::parse(&read(
        &fixtures().join("templates/grokking/run_0/final_info.json"),
    ))
    .unwrap();
    let names: Vec<_> = fi.datasets.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(names, ["x_div_y", "x_minus_y", "x_plus_y", "permutation"]);
    let (_, d) = &fi.datasets[0];
    assert!(d.stderrs.is_some());
    assert_eq!(
        d.final_info_dict.as_ref().unwrap()["step_val_acc_99"]
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(d.means["final_val_acc_mean"], 1.0);
}

#[test]
fn v1_files_pass_the_checks() {
    for dir in folders() {
        let p = |f: &str| dir.join(f);
        assert_eq!(
            check_prompt_json(&p("prompt.json"), &read(&p("prompt.json"))),
            vec![]
        );
        assert_eq!(
            check_ideas_json(&p("seed_ideas.json"), &read(&p("seed_ideas.json"))),
            vec![]
        );
        // v1's own archives repeat some Names: warnings, never errors.
        let ideas = check_ideas_json(&p("ideas.json"), &read(&p("ideas.json")));
        assert!(ideas.iter().all(|x| x.severity == Severity::Warning), "{ideas:?}");
        assert_eq!(
            check_final_info(&p("run_0/final_info.json"), &read(&p("run_0/final_info.json"))),
            vec![]
        );
    }
    let grokking = check_ideas_json(
        &fixtures().join("templates/grokking/ideas.json"),
        &read(&fixtures().join("templates/grokking/ideas.json")),
    );
    assert_eq!(
        grokking.len(),
        2,
        "noisy_grokking and mutual_information_grokking repeat"
    );
}

#[test]
fn whole_template_check_reports_only_what_is_truly_missing() {
    // The corpus leaves out code and LaTeX; those are the only complaints.
    for dir in folders() {
        let probs = check_template(&dir, &Overlay::new());
        for p in &probs {
            let m = &p.message;
            assert!(
                m.starts_with("experiment.py is missing")
                    || m.starts_with("plot.py is missing")
                    || m.starts_with("latex/template.tex is missing")
                    || (p.severity == Severity::Warning && m.contains("is already used by idea")),
                "{}: {p:?}",
                dir.display()
            );
        }
        assert!(probs
            .iter()
            .any(|p| p.message.starts_with("experiment.py is missing")));
    }
}

#[test]
fn demo_template_is_clean() {
    let dir = tiny_mlp();
    let probs = check_template(&dir, &Overlay::new());
    assert_eq!(probs, vec![]);
    let fi = FinalInfo::parse(&read(&dir.join("run_0/final_info.json"))).unwrap();
    let names: Vec<_> = fi.datasets.iter().map(|d| d.0.as_str()).collect();
    assert_eq!(names, ["blobs", "moons", "circles"]);
}

/// v1's runs have no aisci record: they still count as completed runs (with their means
/// and v1's `run_<i>.py` snapshot), so an experiment stage on a v1 idea folder goes on
/// after them instead of starting again at run 1.
#[test]
fn v1_runs_count_as_completed() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("adaptive_dual_scale_denoising");
    fs::copy_dir(
        &fixtures().join("example_papers/adaptive_dual_scale_denoising"),
        &folder,
    );
    std::fs::write(folder.join("run_1.py"), "# v1's snapshot of run 1\n").unwrap();
    let runs = aisci::project::completed_runs(&folder);
    let numbers: Vec<u32> = runs.iter().map(|r| r.run).collect();
    assert_eq!(numbers, [0, 1, 2, 3, 4, 5]);
    let run_1 = &runs[1];
    assert!(run_1.completed);
    assert_eq!(run_1.code.as_deref(), Some(Path::new("run_1.py")));
    assert_eq!(runs[2].code, None);
    let info = aisci::project::read_run_results(&folder.join("run_1"), None).unwrap();
    assert_eq!(run_1.means, Some(Value::Object(info.means_by_dataset())));
    // Nothing was written into v1's folders.
    assert!(!folder.join("run_1/aisci_run.json").exists());
}
