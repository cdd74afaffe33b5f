//! The tree search (`experiment.search = "tree"`) as a user runs it: `aisci baseline`
//! then `aisci experiment` on a toy template whose loss is a known function of two knobs
//! (so the best variant is known), real `python3` runs, and a fake model that answers
//! each kind of proposal by what its prompt holds (the parent's code names itself with
//! `NAME = '…'`). One draft fails, one is a duplicate of another, the failed one is
//! debugged and its fix improved into the best. A second test kills `aisci` with
//! SIGKILL mid-search and resumes it: finished nodes are not run, nor proposed, again.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::Value;

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::tiny_mlp;

const IDEA: &str = "toy_knobs";

/// The baseline: loss = (LR − 0.5)² + (MOMENTUM − 0.9)² (+ 0.001·seed, + 0.05 in smoke
/// mode); every run appends a line to `LOG` so the test can count runs.
fn experiment_py(log: &Path) -> String {
    format!(
        r#""""Toy experiment for the search tests: the loss is a known function of two knobs.
EXPERIMENT_SMOKE=1 adds a fixed 0.05; EXPERIMENT_SEED=k adds 0.001*k."""
import argparse
import json
import os
import time

NAME = 'base'
LR = 0.1
MOMENTUM = 0.0
PAUSE = 0.0
LOG = {log:?}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out_dir", default="run_0")
    out_dir = parser.parse_args().out_dir
    seed = int(os.environ.get("EXPERIMENT_SEED", "0") or 0)
    smoke = os.environ.get("EXPERIMENT_SMOKE", "") not in ("", "0")
    with open(LOG, "a") as f:
        f.write(f"{{NAME}} seed={{seed}} smoke={{int(smoke)}} start={{time.time():.3f}}\n")
    time.sleep(PAUSE)
    loss = (LR - 0.5) ** 2 + (MOMENTUM - 0.9) ** 2 + 0.001 * seed + (0.05 if smoke else 0.0)
    os.makedirs(out_dir, exist_ok=True)
    with open(os.path.join(out_dir, "final_info.json"), "w") as f:
        json.dump({{"toy": {{"means": {{"loss": loss, "acc": 1.0 - loss}}}}}}, f)
    with open(LOG, "a") as f:
        f.write(f"{{NAME}} seed={{seed}} smoke={{int(smoke)}} end={{time.time():.3f}}\n")


if __name__ == "__main__":
    main()
"#,
        log = log.display().to_string()
    )
}

/// `<dir>/templates/toy`: the toy experiment, tiny_mlp's plot.py and paper, one idea.
fn toy_template(dir: &Path) -> (PathBuf, PathBuf) {
    let t = dir.join("templates/toy");
    std::fs::create_dir_all(&t).unwrap();
    let log = dir.join("runs.log");
    std::fs::write(t.join("experiment.py"), experiment_py(&log)).unwrap();
    std::fs::copy(tiny_mlp().join("plot.py"), t.join("plot.py")).unwrap();
    std::fs::create_dir_all(t.join("latex")).unwrap();
    std::fs::copy(
        tiny_mlp().join("latex/template.tex"),
        t.join("latex/template.tex"),
    )
    .unwrap();
    std::fs::write(
        t.join("prompt.json"),
        r#"{"system": "You are a careful researcher.", "task_description": "A toy with two knobs.", "metric": "loss", "direction": "min"}"#,
    )
    .unwrap();
    std::fs::write(
        t.join("seed_ideas.json"),
        format!(
            r#"[{{"Name": "{IDEA}", "Title": "Tuning Two Knobs", "Experiment": "Find LR and MOMENTUM that minimise the toy loss.", "Interestingness": 2, "Feasibility": 10, "Novelty": 1}}]"#
        ),
    )
    .unwrap();
    (t, log)
}

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-tree", text, 900, 150)
}

/// One SEARCH/REPLACE block for experiment.py.
fn block(search: &str, replace: &str) -> String {
    format!("experiment.py\n```python\n<<<<<<< SEARCH\n{search}\n=======\n{replace}\n>>>>>>> REPLACE\n```\n")
}

fn proposal(plan: &str, blocks: &[(&str, &str)]) -> Reply {
    let mut text = format!("PLAN: {plan}\n\n");
    for (s, r) in blocks {
        text.push_str(&block(s, r));
    }
    completion(&text)
}

const BASE: &str = "NAME = 'base'\nLR = 0.1\nMOMENTUM = 0.0\nPAUSE = 0.0";

/// The fake model's answers, by what the prompt holds (first match wins). Each route
/// has a spare copy, for a proposal a killed search asked for but did not record.
fn routes() -> Vec<(String, Vec<Reply>)> {
    let slow_a = "NAME = 'a'\nLR = 0.3\nMOMENTUM = 0.0\nPAUSE = 3.0";
    let drafts = vec![
        // node_1: better than the baseline, slow (so the failed draft's fix overtakes it).
        proposal("Raise the learning rate to 0.3.", &[(BASE, slow_a)]),
        // node_2: the same change with a comment: a duplicate, never run.
        proposal(
            "Use a larger step of 0.3.",
            &[(BASE, &format!("# a larger step\n{slow_a}"))],
        ),
        // node_3: crashes (time.sleep of a negative length).
        proposal(
            "Add momentum 0.9.",
            &[(BASE, "NAME = 'c'\nLR = 0.1\nMOMENTUM = 0.0\nPAUSE = -1.0")],
        ),
    ];
    let fix = proposal(
        "Set the momentum directly instead of the broken buffer.",
        &[(
            "NAME = 'c'\nLR = 0.1\nMOMENTUM = 0.0\nPAUSE = -1.0",
            "NAME = 'cf'\nLR = 0.1\nMOMENTUM = 0.9\nPAUSE = 0.0",
        )],
    );
    let improve_cf = proposal(
        "Raise the learning rate to 0.5 as well.",
        &[("NAME = 'cf'\nLR = 0.1", "NAME = 'cf2'\nLR = 0.5")],
    );
    let improve_a = proposal(
        "Add some momentum.",
        &[(
            "NAME = 'a'\nLR = 0.3\nMOMENTUM = 0.0",
            "NAME = 'a2'\nLR = 0.3\nMOMENTUM = 0.5",
        )],
    );
    let twice = |r: Reply| vec![r.clone(), r];
    vec![
        ("Write a new implementation".into(), {
            let mut d = drafts.clone();
            d.extend(drafts);
            d
        }),
        ("was meant to do this".into(), twice(fix)),
        ("NAME = 'cf'".into(), twice(improve_cf)),
        ("NAME = 'a'".into(), twice(improve_a)),
    ]
}

/// The plot and notes stages after the search (the unrouted requests).
fn after_search() -> Vec<Reply> {
    let plot = std::fs::read_to_string(crate::support::fs::fixtures().join("experiment/5_plot.md")).unwrap();
    let notes = "notes.txt\n```\n<<<<<<< SEARCH\n## Search over implementations\n=======\n## Search over implementations\nThe search found that both knobs matter.\n>>>>>>> REPLACE\n```\n";
    // Twice: a branched search plots and writes its notes again.
    vec![
        completion(&plot),
        completion(notes),
        completion(&plot),
        completion(notes),
    ]
}

fn config(dir: &Path, fake: &FakeLlm) -> PathBuf {
    let cfg = dir.join("user-config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n\n\
             [run]\ngpus = []\ncpu_slots = 2\n\n\
             [experiment]\nsearch = \"tree\"\ntimeout_secs = 30\nplot_timeout_secs = 30\n\n\
             [experiment.tree]\nmax_nodes = 5\nworkers = 2\ndrafts = 3\nmax_debug = 1\nseeds = 2\nexplore_every = 0\n\n\
             [literature]\ncache_dir = {:?}\n",
            fake.v1(),
            dir.join("lit-cache").display().to_string()
        ),
    )
    .unwrap();
    cfg
}

fn aisci(dir: &Path, cfg: &Path, args: &[&str]) -> tokio::process::Command {
    let mut cmd = crate::support::cli::aisci(dir, cfg);
    cmd.args(args).current_dir(dir);
    cmd
}

async fn finish(cmd: &mut tokio::process::Command) -> Output {
    let child = cmd.spawn().unwrap();
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("aisci finished within 60 s")
        .unwrap()
}

async fn baseline(dir: &Path, cfg: &Path, t: &Path) {
    let out = finish(&mut aisci(
        dir,
        cfg,
        &["baseline", "--template", t.to_str().unwrap()],
    ))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

/// Runs started per variant name: (smoke, full, seeds).
fn log_counts(log: &Path) -> HashMap<String, (u32, u32, Vec<u32>)> {
    let mut out: HashMap<String, (u32, u32, Vec<u32>)> = HashMap::new();
    for line in std::fs::read_to_string(log).unwrap_or_default().lines() {
        if !line.contains(" start=") {
            continue;
        }
        let mut parts = line.split_whitespace();
        let name = parts.next().unwrap().to_string();
        let field = |p: &str| {
            line.split(p)
                .nth(1)
                .unwrap()
                .split(' ')
                .next()
                .unwrap()
                .to_string()
        };
        let seed: u32 = field("seed=").parse().unwrap();
        let smoke = field("smoke=") == "1";
        let e = out.entry(name).or_default();
        if smoke {
            e.0 += 1;
        } else if seed == 0 {
            e.1 += 1;
        } else {
            e.2.push(seed);
            // Seeds run side by side: their order in the log is not theirs.
            e.2.sort_unstable();
        }
    }
    out
}

fn idea_folder(dir: &Path) -> PathBuf {
    let parent = dir.join("results/toy");
    let folders: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(folders.len(), 1, "{folders:?}");
    folders[0].clone()
}

fn tree_json(folder: &Path) -> Option<Value> {
    serde_json::from_str(&std::fs::read_to_string(folder.join(".aisci/tree/tree.json")).ok()?).ok()
}

fn node(tree: &Value, id: u64) -> &Value {
    tree["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["id"] == id)
        .unwrap_or_else(|| panic!("no node {id} in {tree:#}"))
}

/// What a finished search of the toy must show, however its runs interleaved.
fn check_finished(folder: &Path, log: &Path, stdout: &str) {
    let tree = tree_json(folder).expect("tree.json");
    assert_eq!(tree["finished"], true, "{tree:#}");
    assert_eq!(tree["metric"]["name"], "loss");
    assert_eq!(
        tree["nodes"].as_array().unwrap().len(),
        6,
        "baseline + max_nodes: {tree:#}"
    );
    let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
    assert!(close(&node(&tree, 0)["score"], 0.97), "{tree:#}");
    let a = node(&tree, 1);
    assert_eq!(a["state"], "done", "{a:#}");
    assert!(
        close(&a["score"], 0.85) && close(&a["smoke_score"], 0.90),
        "{a:#}"
    );
    let dup = node(&tree, 2);
    assert_eq!(dup["state"], "duplicate", "{dup:#}");
    assert_eq!(dup["duplicate_of"], 1, "{dup:#}");
    let c = node(&tree, 3);
    assert_eq!(c["state"], "failed", "{c:#}");
    assert!(
        c["feedback"]
            .as_str()
            .unwrap()
            .contains("sleep length must be non-negative"),
        "{c:#}"
    );
    let cf = node(&tree, 4);
    assert_eq!(
        (cf["kind"].as_str(), cf["parent"].as_u64()),
        (Some("debug"), Some(3)),
        "{cf:#}"
    );
    assert!(close(&cf["score"], 0.16), "{cf:#}");
    let best = node(&tree, 5);
    assert_eq!(
        (best["kind"].as_str(), best["parent"].as_u64()),
        (Some("improve"), Some(4)),
        "{best:#}"
    );
    assert!(close(&best["score"], 0.0), "{best:#}");
    assert_eq!(tree["best"], 5, "{tree:#}");
    let seeds = &tree["seeds"];
    assert_eq!(seeds["node"], 5, "{tree:#}");
    let scores: Vec<f64> = seeds["scores"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_f64().unwrap())
        .collect();
    assert_eq!(scores.len(), 2, "{seeds:#}");
    assert!(
        (scores[0] - 0.001).abs() < 1e-9 && (scores[1] - 0.002).abs() < 1e-9,
        "{seeds:#}"
    );

    // The duplicate never ran: only node_1 ran as 'a' (once smoke, once full).
    let counts = log_counts(log);
    assert_eq!(counts["a"].0, 1, "{counts:?}");
    assert_eq!(counts["a"].1, 1, "{counts:?}");
    assert!(!folder.join(".aisci/tree/node_2/run_1").exists());
    assert_eq!(
        counts["c"],
        (1, 0, vec![]),
        "failed in smoke, never at full size: {counts:?}"
    );
    assert_eq!(counts["cf2"].2, vec![1, 2], "seed reruns of the best: {counts:?}");

    // The best line (node_4 → node_5) is the folder's runs; its code the experiment.
    let code = std::fs::read_to_string(folder.join("experiment.py")).unwrap();
    assert!(
        code.contains("NAME = 'cf2'") && code.contains("LR = 0.5"),
        "{code}"
    );
    let info: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join("run_2/final_info.json")).unwrap())
            .unwrap();
    assert!(
        info["toy"]["means"]["loss"].as_f64().unwrap().abs() < 1e-9,
        "{info}"
    );
    assert!(std::fs::read_to_string(folder.join("run_1.py"))
        .unwrap()
        .contains("NAME = 'cf'"));
    assert!(folder.join("run_2/seeds.json").is_file());
    let notes = std::fs::read_to_string(folder.join("notes.txt")).unwrap();
    assert!(notes.contains("## Search over implementations"), "{notes}");
    assert!(notes.contains("node_2") || notes.contains("duplicate"), "{notes}");
    assert!(
        stdout.contains("tree search: 5 variant(s) tried, best node_5 loss 0.0000 (baseline 0.9700)"),
        "{stdout}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn tree_search_finds_the_best_variant_and_never_runs_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let (t, log) = toy_template(dir.path());
    let fake = FakeLlm::start_routed(after_search(), routes()).await;
    let cfg = config(dir.path(), &fake);
    baseline(dir.path(), &cfg, &t).await;
    std::fs::remove_file(&log).unwrap();
    let started = Instant::now();
    let out = finish(&mut aisci(
        dir.path(),
        &cfg,
        &["experiment", "--template", t.to_str().unwrap(), "--idea", IDEA],
    ))
    .await;
    let took = started.elapsed();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);
    let folder = idea_folder(dir.path());
    check_finished(&folder, &log, &stdout);
    // Five proposals, then the plot and the notes; the template names the metric.
    assert_eq!(fake.hits(), 7, "{stderr}");
    assert!(
        stdout.contains("\n      node_5 improve · loss 0.0000"),
        "the tree is printed: {stdout}"
    );
    // Each node as it ends, one line each.
    for line in [
        "node_2 draft = a duplicate of node_1, not run",
        "node_4 debug ✓ loss 0.1600 (+83.5% vs baseline)",
        "node_1 draft ✓ loss 0.8500 (+12.4% vs baseline)",
    ] {
        assert!(stdout.lines().any(|l| l == line), "{line:?} in {stdout}");
    }
    assert!(
        stdout.lines().any(|l| l.starts_with("node_3 draft ✗ ")),
        "{stdout}"
    );
    // node_1's slow runs overlapped the others: two workers.
    let lines = std::fs::read_to_string(&log).unwrap();
    // The first start and the first end of a variant: its smoke run.
    let span = |name: &str| {
        let at = |p: &str| -> f64 {
            let l = lines
                .lines()
                .find(|l| l.starts_with(&format!("{name} ")) && l.contains(p))
                .unwrap();
            l.split(p).nth(1).unwrap().trim().parse().unwrap()
        };
        (at("start="), at("end="))
    };
    let (a0, a1) = span("a");
    let (c0, _) = span("cf");
    assert!(a0 < c0 && c0 < a1, "node_4 ran while node_1 did: {lines}");
    eprintln!("tree search of the toy: {took:?}");

    // `aisci runs list` prints the tree, children under their parent.
    let f = folder.to_str().unwrap();
    let out = finish(&mut aisci(dir.path(), &cfg, &["runs", "list", f])).await;
    let list = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{list}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let rows: Vec<&str> = list.lines().collect();
    assert_eq!(rows[0], "node_0 baseline · loss 0.9700", "{list}");
    assert!(
        rows[1].starts_with("  node_1 draft · loss 0.8500 (+12.4% vs baseline) — Raise"),
        "{list}"
    );
    assert!(rows[2].starts_with("  node_2 draft · duplicate — "), "{list}");
    assert!(
        rows[3].starts_with("  node_3 draft · failed — Add momentum 0.9. [")
            && rows[3].contains("ValueError"),
        "{list}"
    );
    assert!(
        rows[4].starts_with("    node_4 debug · loss 0.1600 (+83.5% vs baseline)"),
        "{list}"
    );
    assert!(
        rows[5].starts_with("      node_5 improve · loss 0.0000 (+100.0% vs baseline) ★"),
        "{list}"
    );
    assert!(
        rows[6].starts_with(
            "metric: loss (lower is better, template); best: node_5; node_5 over 2 seeds: 0.0015 ± 0.0005"
        ),
        "{list}"
    );
    let out = finish(&mut aisci(dir.path(), &cfg, &["runs", "list", f, "--json"])).await;
    let json: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        (json["mode"].as_str(), json["best"].as_str()),
        (Some("tree"), Some("node_5")),
        "{json:#}"
    );
    assert_eq!(json["nodes"][5]["parent"], "node_4", "{json:#}");

    // Restore node_1's code; the replaced experiment.py is kept.
    let out = finish(&mut aisci(dir.path(), &cfg, &["runs", "restore", f, "node_1"])).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success()
            && said.starts_with("experiment.py is node_1's code; the replaced file is kept in "),
        "{said}"
    );
    assert!(std::fs::read_to_string(folder.join("experiment.py"))
        .unwrap()
        .contains("NAME = 'a'"));
    let bad = finish(&mut aisci(dir.path(), &cfg, &["runs", "restore", f, "run_9"])).await;
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        String::from_utf8_lossy(&bad.stderr).contains("its experiment was a tree search: name a node_<n>")
    );

    // Branch from node_1: the next search improves it first, past max_nodes, and the
    // best line is installed again (node_5 still wins); finished nodes do not run again.
    let before = log_counts(&log);
    let out = finish(&mut aisci(dir.path(), &cfg, &["runs", "branch", f, "node_1"])).await;
    let said = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && said.starts_with("branched from node_1: the next search"),
        "{said}"
    );
    let out = finish(&mut aisci(dir.path(), &cfg, &["experiment", "--idea-folder", f])).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{stdout}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let tree = tree_json(&folder).unwrap();
    let a2 = node(&tree, 6);
    assert_eq!(
        (a2["kind"].as_str(), a2["parent"].as_u64()),
        (Some("improve"), Some(1)),
        "{a2:#}"
    );
    assert!((a2["score"].as_f64().unwrap() - 0.20).abs() < 1e-9, "{a2:#}");
    assert_eq!(tree["best"], 5);
    assert!(
        stdout.contains("tree search: 6 variant(s) tried, best node_5"),
        "{stdout}"
    );
    let after = log_counts(&log);
    for name in ["a", "cf", "cf2"] {
        assert_eq!(
            after[name], before[name],
            "{name} ran again after the branch: {after:?}"
        );
    }
    assert!(std::fs::read_to_string(folder.join("experiment.py"))
        .unwrap()
        .contains("NAME = 'cf2'"));
    assert_eq!(fake.hits(), 7 + 3, "one proposal, the plot and the notes");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_tree_search_resumes_without_rerunning_finished_nodes() {
    let dir = tempfile::tempdir().unwrap();
    let (t, log) = toy_template(dir.path());
    let fake = FakeLlm::start_routed(after_search(), routes()).await;
    let cfg = config(dir.path(), &fake);
    baseline(dir.path(), &cfg, &t).await;
    std::fs::remove_file(&log).unwrap();
    let mut child = aisci(
        dir.path(),
        &cfg,
        &["experiment", "--template", t.to_str().unwrap(), "--idea", IDEA],
    )
    .spawn()
    .unwrap();
    // Kill it once every variant is proposed and node_4 is done, while node_1 (slow)
    // still runs.
    let deadline = Instant::now() + Duration::from_secs(30);
    let folder = loop {
        assert!(Instant::now() < deadline, "the search never reached node_5");
        tokio::time::sleep(Duration::from_millis(25)).await;
        let Some(folder) = std::fs::read_dir(dir.path().join("results/toy"))
            .ok()
            .and_then(|mut d| d.next())
            .map(|e| e.unwrap().path())
        else {
            continue;
        };
        let Some(tree) = tree_json(&folder) else {
            continue;
        };
        let nodes = tree["nodes"].as_array().unwrap();
        let state = |id: u64| nodes.iter().find(|n| n["id"] == id).map(|n| n["state"].clone());
        if nodes.len() == 6 && state(4) == Some("done".into()) && state(1) != Some("done".into()) {
            break folder;
        }
    };
    child.start_kill().unwrap();
    let killed = child.wait().await.unwrap();
    assert!(!killed.success());
    let hits_before = fake.hits();
    assert_eq!(hits_before, 5, "every variant was proposed before the kill");
    let before = log_counts(&log);
    // The orphaned run of node_1 ends on its own; give it time, so that its log line
    // is counted before the resume.
    tokio::time::sleep(Duration::from_millis(3500)).await;

    let out = finish(&mut aisci(
        dir.path(),
        &cfg,
        &["experiment", "--idea-folder", folder.to_str().unwrap()],
    ))
    .await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "exit {}\n{stdout}\n{stderr}", out.status);
    // Nothing was proposed again: only the plot and the notes were asked for.
    assert_eq!(fake.hits(), hits_before + 2, "{stderr}");
    let after = log_counts(&log);
    for name in ["c", "cf"] {
        assert_eq!(
            after[name], before[name],
            "{name} ran again after the resume: {after:?}"
        );
    }
    // node_1's interrupted runs ran again (so 'a' may have run more than once in all);
    // everything else is as in an uninterrupted search.
    let tree = tree_json(&folder).unwrap();
    assert_eq!(tree["finished"], true, "{tree:#}");
    assert_eq!(tree["best"], 5, "{tree:#}");
    assert_eq!(node(&tree, 1)["state"], "done", "{tree:#}");
    assert_eq!(node(&tree, 2)["state"], "duplicate", "{tree:#}");
    assert_eq!(after["cf2"].2, vec![1, 2], "{after:?}");
    assert!(
        stdout.contains("tree search: 5 variant(s) tried, best node_5 loss 0.0000 (baseline 0.9700)"),
        "{stdout}"
    );
}

/// The in-process server, initialized by a client that applies edits, on the workspace `dir`.
async fn editor_on(dir: &Path) -> crate::support::lsp_client::TestClient {
    let c = crate::support::lsp_client::TestClient::start(Value::Null);
    c.request(
        "initialize",
        serde_json::json!({
            "capabilities": { "workspace": { "applyEdit": true } },
            "workspaceFolders": [{ "uri": crate::support::lsp_client::file_uri(dir), "name": "ws" }],
        }),
    )
    .await;
    c.notify("initialized", serde_json::json!({})).await;
    c
}

/// The editor's side of a searched folder: `aisci.listNodes` answers the tree as the
/// views need it, experiment.py's code actions offer the best node, restoring it is one
/// undoable editor edit of the open file, and branching says what the next search does.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_lists_restores_and_branches_search_nodes() {
    use crate::support::lsp_client::file_uri;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let (t, log) = toy_template(dir.path());
    let fake = FakeLlm::start_routed(after_search(), routes()).await;
    let cfg = config(dir.path(), &fake);
    baseline(dir.path(), &cfg, &t).await;
    let out = finish(&mut aisci(
        dir.path(),
        &cfg,
        &["experiment", "--template", t.to_str().unwrap(), "--idea", IDEA],
    ))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = idea_folder(dir.path()).canonicalize().unwrap();
    let _ = log;

    let c = editor_on(dir.path()).await;
    let command = |name: &str, arg: Value| json!({ "command": name, "arguments": [arg] });

    let nodes = c
        .request(
            "workspace/executeCommand",
            command("aisci.listNodes", json!({ "folder": folder })),
        )
        .await;
    assert_eq!(nodes["mode"], "tree", "{nodes:#}");
    assert_eq!(nodes["best"], "node_5", "{nodes:#}");
    assert_eq!(
        nodes["metric"],
        json!({"name": "loss", "direction": "min", "source": "template"})
    );
    assert_eq!(nodes["seeds"]["node"], "node_5");
    let list = nodes["nodes"].as_array().unwrap();
    assert_eq!(list.len(), 6);
    let by_id = |id: &str| list.iter().find(|n| n["id"] == id).unwrap().clone();
    let n5 = by_id("node_5");
    assert_eq!(
        (n5["parent"].as_str(), n5["kind"].as_str(), n5["state"].as_str()),
        (Some("node_4"), Some("improve"), Some("done"))
    );
    assert!((n5["vs_baseline"].as_f64().unwrap() - 1.0).abs() < 1e-9, "{n5:#}");
    assert!(n5["label"].as_str().unwrap().ends_with("★"), "{n5:#}");
    for key in ["code", "parent_code", "diff", "run"] {
        assert!(Path::new(n5[key].as_str().unwrap()).exists(), "{key}: {n5:#}");
    }
    assert_eq!(by_id("node_2")["state"], "duplicate");
    assert!(by_id("node_3")["error"].as_str().is_some());
    // Parents before children.
    let pos = |id: &str| list.iter().position(|n| n["id"] == id).unwrap();
    for n in list {
        if let Some(p) = n["parent"].as_str() {
            assert!(pos(p) < pos(n["id"].as_str().unwrap()), "{nodes:#}");
        }
    }

    // Open experiment.py holding node_1's code: the actions offer the best node.
    let exp = folder.join("experiment.py");
    let uri = file_uri(&exp);
    let node_1 = std::fs::read_to_string(folder.join(".aisci/tree/node_1/experiment.py")).unwrap();
    std::fs::write(&exp, &node_1).unwrap();
    c.open(&uri, "python", &node_1).await;
    let titles = c.code_action_titles(&uri).await;
    assert!(
        titles
            .iter()
            .any(|t| t == "Restore experiment.py to the search's best (node_5, loss 0.0000)"),
        "{titles:?}"
    );
    assert!(
        titles
            .iter()
            .any(|t| t == "Branch from the search's best (node_5, loss 0.0000)"),
        "{titles:?}"
    );
    let lenses = c
        .request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }))
        .await;
    let lens = lenses
        .as_array()
        .unwrap()
        .iter()
        .find(|l| {
            l["command"]["title"]
                .as_str()
                .unwrap()
                .starts_with("tree search: 5 variant(s) tried, best node_5")
        })
        .unwrap_or_else(|| panic!("no search lens: {lenses:#}"));
    assert!(
        lens["command"]["arguments"][0]["path"]
            .as_str()
            .unwrap()
            .ends_with(".aisci/tree/summary.md"),
        "{lens:#}"
    );

    // Restore: one applyEdit of the open document; the editor applies it and says so.
    let best = std::fs::read_to_string(folder.join(".aisci/tree/node_5/experiment.py")).unwrap();
    let echo = async {
        let edit = c
            .wait_for("the restore's applyEdit", 10, |m| {
                m["method"] == "workspace/applyEdit"
            })
            .await;
        let change = &edit["params"]["edit"]["documentChanges"][0];
        assert_eq!(change["textDocument"]["uri"], uri.as_str(), "{edit:#}");
        assert_eq!(change["textDocument"]["version"], 1, "a versioned edit: {edit:#}");
        assert_eq!(edit["params"]["label"], "aisci: restore node_5");
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": best }] }),
        )
        .await;
    };
    let (answer, ()) = tokio::join!(
        c.request(
            "workspace/executeCommand",
            command(
                "aisci.restoreCheckpoint",
                json!({ "folder": folder, "id": "node_5" })
            ),
        ),
        echo
    );
    assert_eq!(answer["restored"], true, "{answer:#}");
    assert_eq!(std::fs::read_to_string(&exp).unwrap(), best);

    // A bad id is a clear error, not a crash.
    let bad = c
        .request_raw(
            "workspace/executeCommand",
            command(
                "aisci.restoreCheckpoint",
                json!({ "folder": folder, "id": "node_42" }),
            ),
        )
        .await;
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("has no node_42"),
        "{bad:#}"
    );
    let bad = c
        .request_raw(
            "workspace/executeCommand",
            command("aisci.branchFrom", json!({ "folder": folder, "id": "node_2" })),
        )
        .await;
    assert!(
        bad["error"]["message"]
            .as_str()
            .unwrap()
            .contains("duplicate of node_1"),
        "{bad:#}"
    );

    let branched = c
        .request(
            "workspace/executeCommand",
            command("aisci.branchFrom", json!({ "folder": folder, "id": "node_4" })),
        )
        .await;
    assert_eq!(branched["branched"], true, "{branched:#}");
    assert!(
        branched["message"]
            .as_str()
            .unwrap()
            .starts_with("branched from node_4"),
        "{branched:#}"
    );
    assert!(folder.join(".aisci/tree/branch.json").is_file());
}

/// A line of runs (the default experiment) in the editor: each run's code can be put
/// back, and the loop branched from any run but the last; branching sets the later runs
/// aside.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_editor_restores_and_branches_a_line_of_runs() {
    use crate::support::lsp_client::file_uri;
    use serde_json::json;

    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("results/toy/20261207_101500_toy_knobs");
    for (i, loss) in [(0, 0.97), (1, 0.5), (2, 0.8)] {
        let run = folder.join(format!("run_{i}"));
        std::fs::create_dir_all(&run).unwrap();
        std::fs::write(
            run.join("final_info.json"),
            format!(r#"{{"toy": {{"means": {{"loss": {loss}}}}}}}"#),
        )
        .unwrap();
        if i > 0 {
            std::fs::write(folder.join(format!("run_{i}.py")), format!("LR = {i}\n")).unwrap();
        }
    }
    std::fs::write(
        folder.join("prompt.json"),
        r#"{"metric": "loss", "direction": "min"}"#,
    )
    .unwrap();
    std::fs::write(folder.join("experiment.py"), "LR = 2\n").unwrap();
    let folder = folder.canonicalize().unwrap();

    let c = editor_on(dir.path()).await;
    let exp = folder.join("experiment.py");
    let uri = file_uri(&exp);
    c.open(&uri, "python", "LR = 2\n").await;
    let titles = c.code_action_titles(&uri).await;
    assert!(
        titles.iter().any(|t| *t == "Restore experiment.py to run_1"),
        "{titles:?}"
    );
    assert!(titles.iter().any(|t| *t == "Branch from run_1"), "{titles:?}");
    assert!(
        !titles.iter().any(|t| *t == "Restore experiment.py to run_2"),
        "the file is run_2's code: {titles:?}"
    );
    assert!(
        !titles.iter().any(|t| *t == "Branch from run_2"),
        "the last run: {titles:?}"
    );

    let nodes = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.listNodes", "arguments": [{ "folder": folder }] }),
        )
        .await;
    assert_eq!(
        (nodes["mode"].as_str(), nodes["best"].as_str()),
        (Some("line"), Some("run_1")),
        "{nodes:#}"
    );

    // The open buffer gets run_1's code as an editor edit (undoable), then the runs after
    // it are set aside.
    let echo = async {
        let edit = c
            .wait_for("the branch's applyEdit", 10, |m| {
                m["method"] == "workspace/applyEdit"
            })
            .await;
        assert_eq!(edit["params"]["label"], "aisci: restore run_1", "{edit:#}");
        c.notify(
            "textDocument/didChange",
            json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": "LR = 1\n" }] }),
        )
        .await;
    };
    let (branched, ()) = tokio::join!(
        c.request(
            "workspace/executeCommand",
            json!({ "command": "aisci.branchFrom", "arguments": [{ "folder": folder, "id": "run_1" }] }),
        ),
        echo
    );
    let message = branched["message"].as_str().unwrap();
    assert!(message.starts_with("branched from run_1: experiment.py is run_1's code; run_2, run_2.py set aside in .aisci/attempts/branched_"), "{message}");
    assert_eq!(std::fs::read_to_string(&exp).unwrap(), "LR = 1\n");
    assert!(!folder.join("run_2").exists() && folder.join("run_1").exists());
}

/// In real Neovim with the real server: `:AisciTree` shows the searched folder's tree, `r`
/// on node_1 puts its code into the open experiment.py as an edit that `u` undoes, and `b`
/// on node_4 branches the next search from it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_restores_and_branches_search_nodes_as_undoable_edits() {
    use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    let (t, _log) = toy_template(&dir);
    let fake = FakeLlm::start_routed(after_search(), routes()).await;
    let cfg = config(&dir, &fake);
    baseline(&dir, &cfg, &t).await;
    let out = finish(&mut aisci(
        &dir,
        &cfg,
        &["experiment", "--template", t.to_str().unwrap(), "--idea", IDEA],
    ))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let folder = idea_folder(&dir);
    let best = std::fs::read_to_string(folder.join("experiment.py")).unwrap();
    let node_1 = std::fs::read_to_string(folder.join(".aisci/tree/node_1/experiment.py")).unwrap();

    let report_path = dir.join("report.json");
    let settings = serde_json::json!({
        "run": { "gpus": [] },
        "literature": { "cache_dir": dir.join("lit-cache") },
    });
    let Finished { report: r, .. } = NvimRun {
        script: "tree_restore.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            folder.clone().into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: &dir,
        report: &report_path,
        who: "Neovim (tree restore)".into(),
        name: "nvim tree restore".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;

    let tree: Vec<&str> = r["tree_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(tree.iter().any(|l| l.contains("node_5 ★")), "{tree:#?}");
    assert_eq!(r["before"].as_str(), Some(best.as_str()), "{r:#}");
    assert_eq!(r["restored"].as_str(), Some(node_1.as_str()), "{r:#}");
    assert_eq!(
        r["undone"].as_str(),
        Some(best.as_str()),
        "u takes the restore back: {r:#}"
    );
    let notes: Vec<&str> = r["notes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|n| n.as_str().unwrap())
        .collect();
    assert!(
        notes.iter().any(|n| n.contains("now holds the code of node_1")),
        "{notes:#?}"
    );
    assert!(
        notes.iter().any(|n| n.contains("branched from node_4")),
        "{notes:#?}"
    );
    let branch: Value =
        serde_json::from_str(&std::fs::read_to_string(folder.join(".aisci/tree/branch.json")).unwrap())
            .unwrap();
    assert_eq!(branch["node"], 4, "{branch}");
}
