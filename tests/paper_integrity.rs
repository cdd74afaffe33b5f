//! The integrity checks of a paper's numbers on the runs of the real `templates/tiny_mlp`
//! (its recorded baseline as run_0, and variants of it): each kind of contradiction
//! seeded into a paper is found on its number, correct claims are traced, and the trace
//! says where a number comes from.

use std::path::{Path, PathBuf};

use aisci::integrity::{self, RunData};
use aisci::latex;
use serde_json::Value;

use crate::support::fs::templates;

/// An idea folder with run_0 (the template's baseline), run_1 (the same means: the demo's
/// case, where the wider layer changed nothing) and run_2 (moons validation loss 10%
/// lower, moons accuracy lower), and a CPU-only env.json for run_2.
fn idea(dir: &Path) -> PathBuf {
    let base: Value = serde_json::from_str(
        &std::fs::read_to_string(templates().join("tiny_mlp/run_0/final_info.json")).unwrap(),
    )
    .unwrap();
    let mut changed = base.clone();
    let moons = &mut changed["moons"]["means"];
    moons["final_val_loss_mean"] = (moons["final_val_loss_mean"].as_f64().unwrap() * 0.9).into();
    moons["final_val_acc_mean"] = 0.8612.into();
    for (run, v) in [("run_0", &base), ("run_1", &base), ("run_2", &changed)] {
        std::fs::create_dir_all(dir.join(run)).unwrap();
        std::fs::write(dir.join(run).join("final_info.json"), v.to_string()).unwrap();
    }
    std::fs::write(
        dir.join("run_2/env.json"),
        r#"{"os": "linux", "gpus": [], "python_command": "python3", "python": {"version": "3.11.2", "torch": "2.5.1"}, "notes": []}"#,
    )
    .unwrap();
    dir.to_path_buf()
}

fn paper(body: &str) -> String {
    format!(
        "\\documentclass{{article}}\n\\begin{{document}}\n\\section{{Results}}\n{body}\n\\end{{document}}\n"
    )
}

fn problems(folder: &Path, src: &str) -> Vec<(&'static str, String, String)> {
    let facts = latex::facts(&latex::parse(src), src);
    let runs = RunData::load(folder);
    integrity::check(&folder.join("latex/template.tex"), src, &facts, &runs)
        .into_iter()
        .map(|p| (p.code, src[p.span.clone()].to_string(), p.message))
        .collect()
}

#[test]
fn the_demo_claim_of_a_mean_that_is_one_seed_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let folder = idea(dir.path());
    // What the demo's paper said: the blobs mean is 0.9517 in every run; 0.97 is seed 0's.
    let src = paper("The wider layer raises mean validation accuracy on blobs from 0.95 to 0.97.");
    let found = problems(&folder, &src);
    assert_eq!(found.len(), 1, "{found:#?}");
    let (code, number, message) = &found[0];
    assert_eq!((*code, number.as_str()), ("mean-is-one-seed", "0.97"));
    assert!(message.contains("the mean is 0.9517"), "{message}");
}

#[test]
fn each_kind_of_contradiction_is_found_on_its_number() {
    let dir = tempfile::tempdir().unwrap();
    let folder = idea(dir.path());
    let src = paper(
        "Run 2 reduces the validation loss on moons by 10.0\\% compared to the baseline.\n\
         The wider layer improves validation accuracy on moons from 0.89 to 0.86.\n\
         On circles, the validation loss is 0.254.\n\
         The test loss is 0.777.\n\
         Averaged over the three datasets, validation accuracy is 0.917.\n\
         All runs used one NVIDIA A100 with PyTorch 2.5.\n",
    );
    let found = problems(&folder, &src);
    let got: Vec<(&str, &str)> = found.iter().map(|(c, n, _)| (*c, n.as_str())).collect();
    assert_eq!(
        got,
        [
            ("change-contradicts-runs", "0.86"),
            ("number-from-elsewhere", "0.254"),
            ("number-without-source", "0.777"),
            ("environment-not-recorded", "A100"),
        ],
        "{found:#?}"
    );
    // The message says where the number does come from.
    assert!(found[1].2.contains("moons final_val_loss_mean"), "{}", found[1].2);
    assert!(found[3].2.contains("no GPU"), "{}", found[3].2);
}

#[test]
fn a_trace_names_the_run_the_metric_and_the_computation_and_points_at_the_entry() {
    let dir = tempfile::tempdir().unwrap();
    let folder = idea(dir.path());
    let src = paper("Run 2 reduces the validation loss on moons by 10.0\\% compared to the baseline.");
    let facts = latex::facts(&latex::parse(&src), &src);
    let runs = RunData::load(&folder);
    let at = src.find("10.0").unwrap() + 1;
    let e = integrity::explain_at(&src, &facts, &runs, at).unwrap();
    assert_eq!(&src[e.span.clone()], "10.0");
    assert!(e.markdown.contains("relative change"), "{}", e.markdown);
    assert!(
        e.markdown.contains("run_0 moons final_val_loss_mean"),
        "{}",
        e.markdown
    );
    assert!(
        e.markdown.contains("run_2 moons final_val_loss_mean"),
        "{}",
        e.markdown
    );
    let (file, offset) = e.target.unwrap();
    let text = std::fs::read_to_string(&file).unwrap();
    assert!(file.ends_with("final_info.json"), "{file:?}");
    assert!(
        text[offset..].starts_with("\"final_val_loss_mean\""),
        "{}",
        &text[offset..offset + 30]
    );
    // Inside "moons": the key found after the dataset's, not the first in the file.
    assert!(text[..offset].contains("\"moons\""));
}

#[test]
fn a_number_in_a_metrics_name_is_not_a_claim_and_it_finds_the_sentence_before() {
    let dir = tempfile::tempdir().unwrap();
    let folder = idea(dir.path());
    // "90%" names `steps_to_90_val_acc`; "it is 0.888" means the accuracy named one sentence
    // earlier, although its own sentence names only the steps.
    let src = paper(
        "On moons the mean number of steps to 90\\% validation accuracy is 5533.\n\
         Table 1 lists the final validation accuracy. On moons it is 0.888, reached after 5533 steps.\n\
         On circles the steps to 90\\% validation accuracy average 8888.5.\n",
    );
    let found = problems(&folder, &src);
    let got: Vec<(&str, &str)> = found.iter().map(|(c, n, _)| (*c, n.as_str())).collect();
    // The steps themselves are still checked.
    assert_eq!(got, [("number-without-source", "8888.5")], "{found:#?}");
    let facts = latex::facts(&latex::parse(&src), &src);
    let runs = RunData::load(&folder);
    let e = integrity::explain_at(&src, &facts, &runs, src.find("90").unwrap()).unwrap();
    assert!(
        e.markdown.contains("`steps_to_90_val_acc_mean`"),
        "{}",
        e.markdown
    );
}
