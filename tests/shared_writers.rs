//! Several aisci processes writing one template's `ideas.json` at once, as an editor's
//! server and terminal commands do, and a writer killed with SIGKILL midway: no idea, no
//! novelty verdict is lost, and the file is always valid JSON.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_lit::FakeLit;
use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::tiny_mlp_with_seed_ideas;

fn idea_reply(name: &str) -> Reply {
    let idea = json!({"Name": name, "Title": format!("Title of {name}"),
        "Experiment": "Change the code and compare.",
        "Interestingness": 6, "Feasibility": 8, "Novelty": 5});
    let text = format!(
        "THOUGHT:\nA new direction.\n\nNEW IDEA JSON:\n```json\n{}\n```",
        serde_json::to_string_pretty(&idea).unwrap()
    );
    // Slow enough that the writers overlap.
    Reply::chat_completion("chatcmpl-ideas", &text, 1000, 100).delayed(Duration::from_millis(150))
}

fn config(dir: &Path, name: &str, llm: &FakeLlm, extra: &str) -> PathBuf {
    let cfg = dir.join(format!("{name}.toml"));
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\n\
             max_retries = 0\n\n[ideas]\nnum_reflections = 1\n\n{extra}",
            llm.v1()
        ),
    )
    .unwrap();
    cfg
}

fn aisci(dir: &Path, cfg: &Path, args: &[&str], env: &[(&str, String)]) -> tokio::process::Command {
    let mut cmd = crate::support::cli::aisci(dir, cfg);
    cmd.args(args);
    for (k, v) in env {
        cmd.env(k, v);
    }
    cmd
}

async fn finish(mut cmd: tokio::process::Command) -> Output {
    let child = cmd.spawn().unwrap();
    tokio::time::timeout(Duration::from_secs(60), child.wait_with_output())
        .await
        .expect("finished within 60 s")
        .unwrap()
}

fn ideas(t: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(t.join("ideas.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ideas.json is not valid JSON ({e}):\n{text}"))
}

fn names(t: &Path) -> Vec<String> {
    ideas(t)
        .iter()
        .map(|i| i["Name"].as_str().unwrap().to_owned())
        .collect()
}

fn temp_files(t: &Path) -> Vec<String> {
    std::fs::read_dir(t)
        .unwrap()
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|n| n.ends_with(".tmp"))
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_idea_writers_at_once_keep_every_idea() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_with_seed_ideas(&dir.path().join("tiny_mlp"));
    let seeds = names(&t);
    let new: Vec<String> = (1..=8).map(|i| format!("concurrent_idea_{i}")).collect();
    let llm = FakeLlm::start(new.iter().map(|n| idea_reply(n)).collect()).await;
    let cfg = config(dir.path(), "user", &llm, "");
    let template = t.to_str().unwrap();
    let args = ["ideas", "--template", template, "-n", "4"];
    let (a, b) = tokio::join!(
        finish(aisci(dir.path(), &cfg, &args, &[])),
        finish(aisci(dir.path(), &cfg, &args, &[]))
    );
    for out in [&a, &b] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let got = names(&t);
    for n in seeds.iter().chain(&new) {
        assert!(got.contains(n), "{n} lost: {got:?}");
    }
    assert_eq!(got.len(), seeds.len() + 8, "{got:?}");
    assert!(temp_files(&t).is_empty(), "{:?}", temp_files(&t));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn new_ideas_beside_a_novelty_check_keep_its_verdict() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_with_seed_ideas(&dir.path().join("tiny_mlp"));
    let checked = names(&t)[1].clone();
    let slow = |text: &str| {
        Reply::chat_completion("chatcmpl-nov", text, 1000, 100).delayed(Duration::from_millis(400))
    };
    let novelty_llm = FakeLlm::start(vec![
        slow("THOUGHT:\nLet me search.\n\nRESPONSE:\n```json\n{\"Query\": \"tiny mlp initialisation\"}\n```"),
        slow("THOUGHT:\nNothing close.\nDecision made: novel.\n\nRESPONSE:\n```json\n{\"Reason\": \"No paper does this.\", \"Closest\": []}\n```"),
    ])
    .await;
    let new: Vec<String> = (1..=4).map(|i| format!("beside_novelty_{i}")).collect();
    let ideas_llm = FakeLlm::start(new.iter().map(|n| idea_reply(n)).collect()).await;
    let lit = FakeLit::start().await;
    let literature = format!(
        "[literature]\ncache_dir = {:?}\ns2_rate_per_sec = 100.0\ns2_rate_per_sec_no_key = 100.0\n\
         max_retries = 0\n\n[novelty]\nmax_rounds = 4\n",
        dir.path().join("lit-cache").display().to_string()
    );
    let nov_cfg = config(dir.path(), "novelty", &novelty_llm, &literature);
    let ideas_cfg = config(dir.path(), "ideas", &ideas_llm, "");
    let template = t.to_str().unwrap();
    let env = [
        ("AISCI_S2_URL", lit.s2_url()),
        ("AISCI_ENGINES", "semanticscholar".to_string()),
    ];
    let (nov, gen) = tokio::join!(
        finish(aisci(
            dir.path(),
            &nov_cfg,
            &["novelty", "--template", template, "--idea", &checked],
            &env
        )),
        finish(aisci(
            dir.path(),
            &ideas_cfg,
            &["ideas", "--template", template, "-n", "4"],
            &[]
        ))
    );
    for out in [&nov, &gen] {
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    }
    let all = ideas(&t);
    let verdict = all.iter().find(|i| i["Name"] == checked.as_str()).unwrap();
    assert_eq!(verdict["novel"], true, "{verdict}");
    assert_eq!(verdict["novelty"]["queries"], json!(["tiny mlp initialisation"]));
    let got = names(&t);
    for n in &new {
        assert!(got.contains(n), "{n} lost: {got:?}");
    }
}

/// SIGKILL at moments spread over a writer's life, five times: every idea written before
/// is still there, the file is valid JSON each time, and the temporary files a killed
/// writer left are gone once the next writer has written.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_writer_killed_at_any_moment_loses_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = tiny_mlp_with_seed_ideas(&dir.path().join("tiny_mlp"));
    let mut before = names(&t);
    let replies: Vec<Reply> = (1..=40)
        .map(|i| {
            let r = idea_reply(&format!("killed_writer_{i}"));
            // Varied delays, so kills land before, during and after writes.
            r.delayed(Duration::from_millis((i % 4) as u64 * 40))
        })
        .collect();
    let llm = FakeLlm::start(replies).await;
    let cfg = config(dir.path(), "user", &llm, "");
    let template = t.to_str().unwrap();
    for (round, after_ms) in [250u64, 420, 600, 780, 1000].into_iter().enumerate() {
        let mut child = aisci(
            dir.path(),
            &cfg,
            &["ideas", "--template", template, "-n", "8"],
            &[],
        )
        .spawn()
        .unwrap();
        tokio::time::sleep(Duration::from_millis(after_ms)).await;
        let pid = child.id().expect("still running") as i32;
        rustix::process::kill_process(
            rustix::process::Pid::from_raw(pid).unwrap(),
            rustix::process::Signal::KILL,
        )
        .unwrap();
        let _ = child.wait().await;
        let now = names(&t);
        for n in &before {
            assert!(now.contains(n), "round {round}: {n} lost: {now:?}");
        }
        assert!(now.len() >= before.len());
        before = now;
    }
    // A writer that runs to its end cleans up what the killed ones left.
    let out = finish(aisci(
        dir.path(),
        &cfg,
        &["ideas", "--template", template, "-n", "1"],
        &[],
    ))
    .await;
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    assert!(temp_files(&t).is_empty(), "{:?}", temp_files(&t));
    assert!(names(&t).len() > before.len());
}
