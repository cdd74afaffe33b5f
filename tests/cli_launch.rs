//! `aisci launch` as a user runs it: the built binary on a copy of tiny_mlp with its two
//! seed ideas, a fake OpenAI-style model (one script per idea, chosen by the idea's title)
//! and a fake Semantic Scholar: novelty, then both ideas side by side through real
//! experiment runs, the paper (real TeX Live) and the review. The first launch is killed
//! (SIGKILL) while the second idea's paper is being written; `--resume` finishes it
//! without redoing what was done, and prints v1's summary table.

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_lit::FakeLit;
use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::{fixtures, tiny_mlp_with_seed_ideas};

const A: (&str, &str) = ("learning_rate_warmup", "Warmup versus Constant SGD");
const B: (&str, &str) = ("init_scale_regimes", "Lazy or Rich?");

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-launch", text, 1500, 200)
}

fn fixture(dir: &str, name: &str) -> String {
    std::fs::read_to_string(fixtures().join(dir).join(name)).unwrap()
}

fn novelty(title: &str) -> Vec<Reply> {
    vec![
        completion(&format!(
            "THOUGHT:\nSearch.\n\nRESPONSE:\n```json\n{{\"Query\": \"{title} tiny mlp\"}}\n```"
        )),
        completion(&format!(
            "THOUGHT:\nNothing close.\nDecision made: novel.\n\nRESPONSE:\n```json\n{}\n```",
            json!({"Reason": "No paper studies this on these toy tasks.", "Closest": []})
        )),
    ]
}

fn experiments() -> Vec<Reply> {
    ["1_wider", "2_failing", "3_fix", "4_done", "5_plot", "6_notes"]
        .iter()
        .map(|n| completion(&fixture("experiment", &format!("{n}.md"))))
        .collect()
}

/// The paper: a title that names the idea (so the review of it reaches this idea's
/// script), the other parts from the writing fixtures, no refinement.
fn paper(title: &str) -> Vec<Reply> {
    let mut out = vec![completion(&fixture("writeup", "01_title_abstract.txt").replace(
        "Wider Hidden Layers for Tiny MLPs on Toy Datasets",
        &format!("{title} A Study"),
    ))];
    for n in [
        "02_intro",
        "03_background",
        "04_method",
        "05_setup",
        "06_results",
        "07_conclusion",
        "08_related",
        "15_no_changes",
    ] {
        out.push(completion(&fixture("writeup", &format!("{n}.txt"))));
    }
    out
}

fn review(overall: u8) -> Reply {
    let j = json!({
        "Summary": "s", "Strengths": ["clear"], "Weaknesses": [{"text": "small", "section": "Results"}],
        "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 2, "Questions": [], "Limitations": [],
        "Ethical Concerns": false, "Soundness": 2, "Presentation": 3, "Contribution": 2, "Overall": overall,
        "Confidence": 4, "Decision": "Reject"
    });
    completion(&format!("THOUGHT:\nok\n\nREVIEW JSON:\n```json\n{j}\n```\n"))
}

fn template(dir: &Path) -> PathBuf {
    tiny_mlp_with_seed_ideas(&dir.join("tiny_mlp"))
}

fn command(dir: &Path, llm: &FakeLlm, lit: &FakeLit, args: &[&str]) -> tokio::process::Command {
    let cfg = dir.join("user-config.toml");
    std::fs::write(
        &cfg,
        format!(
            "[llm]\nprovider = \"vllm\"\nbase_url = \"{}\"\nmodel = \"local-model\"\nstream = false\nmax_retries = 0\n\n\
             [literature]\ncache_dir = {:?}\ns2_rate_per_sec = 100.0\ns2_rate_per_sec_no_key = 100.0\nmax_retries = 0\n\n\
             [experiment]\ntimeout_secs = 30\nmax_attempts = 3\nplot_timeout_secs = 30\n\n[run]\ngpus = []\ncpu_slots = 2\n\n\
             [writeup]\ncitation_rounds = 0\nfix_rounds = 0\nbuild_timeout_secs = 60\n\n[review]\nensemble = 1\nreflection_rounds = 0\n",
            llm.v1(),
            dir.join("lit-cache").display().to_string()
        ),
    )
    .unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.arg("launch")
        .args(args)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AISCI_CONFIG", &cfg)
        .env("AISCI_S2_URL", lit.s2_url())
        .env("AISCI_ENGINES", "semanticscholar")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    cmd
}

fn journal(t: &Path) -> Value {
    std::fs::read_to_string(t.join(".aisci/launch.json"))
        .ok()
        .and_then(|s| serde_json::from_str(&s).ok())
        .unwrap_or(Value::Null)
}

fn idea<'a>(j: &'a Value, name: &str) -> &'a Value {
    j["ideas"]
        .as_array()
        .unwrap()
        .iter()
        .find(|i| i["name"] == name)
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_two_ideas_killed_then_resumed() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let lit = FakeLit::start().await;
    let held = Reply::Delay(Duration::from_secs(300), Box::new(completion("never")));
    let mut a = novelty(A.1);
    a.extend(experiments());
    a.extend(paper(A.1));
    a.push(review(5));
    let mut b = novelty(B.1);
    b.extend(experiments());
    b.push(held);
    let llm = FakeLlm::start_routed(vec![], vec![(A.1.into(), a), (B.1.into(), b)]).await;
    let t_arg = t.to_str().unwrap();
    let mut child = command(
        dir.path(),
        &llm,
        &lit,
        &["--template", t_arg, "--skip-idea-generation", "--parallel", "2"],
    )
    .spawn()
    .unwrap();
    // Wait until A is reviewed and B's paper has been asked for, then kill -9.
    let started = Instant::now();
    loop {
        let j = journal(&t);
        let a_done = j["ideas"].is_array() && idea(&j, A.0)["review"]["state"] == "done";
        let b_writing = llm.seen().iter().any(|s| {
            let body = s.body.to_string();
            body.contains(B.1) && body.contains("Write the part")
        });
        if a_done && b_writing {
            break;
        }
        if let Ok(Some(status)) = child.try_wait() {
            let out = child.wait_with_output().await.unwrap();
            panic!(
                "the launch ended early ({status}):\n{}\n{}\n{j:#}",
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
        assert!(started.elapsed() < Duration::from_secs(120), "stuck: {j:#}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    child.start_kill().unwrap();
    let _ = child.wait().await;
    let j = journal(&t);
    assert_eq!(j["novelty_checked"]["state"], "done");
    assert_eq!(idea(&j, B.0)["experiments"]["state"], "done");
    assert_eq!(idea(&j, B.0)["writeup"]["state"], "pending");
    let b_folder = PathBuf::from(idea(&j, B.0)["folder"].as_str().unwrap());

    // Resume with a model that has only B's paper and review left to say.
    let mut b2 = paper(B.1);
    b2.push(review(6));
    let llm2 = FakeLlm::start_routed(vec![], vec![(B.1.into(), b2)]).await;
    let out = command(dir.path(), &llm2, &lit, &["--template", t_arg, "--resume"])
        .output()
        .await
        .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    // Only B's remaining work was asked for: 9 writing turns and one review.
    assert_eq!(llm2.hits(), 10, "{stderr}");
    let j = journal(&t);
    for (name, overall) in [(A.0, 5), (B.0, 6)] {
        let i = idea(&j, name);
        assert_eq!(i["novel"], true);
        assert_eq!(i["experiments"]["state"], "done", "{i:#}");
        assert_eq!(i["runs_completed"], 2);
        assert_eq!(i["review"]["state"], "done", "{i:#}");
        assert_eq!(i["overall"], overall);
        assert_eq!(i["improvement"]["state"], "skipped");
    }
    assert_eq!(
        PathBuf::from(idea(&j, B.0)["folder"].as_str().unwrap()),
        b_folder,
        "B kept its folder"
    );
    assert!(b_folder.join("review.json").is_file() && b_folder.join("review.txt").is_file());
    // The v1 summary row: 2 ideas, 2 novel, 2 with results, mean 5.5, max 6.
    let row = stdout
        .lines()
        .skip_while(|l| !l.starts_with("| Total Ideas"))
        .nth(2)
        .unwrap_or_default();
    let cells: Vec<&str> = row.split('|').map(str::trim).filter(|c| !c.is_empty()).collect();
    assert_eq!(&cells[..3], ["2", "2", "2"], "{stdout}");
    assert_eq!(&cells[4..6], ["5.50", "6"], "{stdout}");
    assert!(
        stdout.contains("Cost by stage:") && stdout.contains("review $"),
        "{stdout}"
    );
    // Exactly two idea folders: the resume made no new ones.
    assert_eq!(
        std::fs::read_dir(dir.path().join("results/tiny_mlp"))
            .unwrap()
            .count(),
        2
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_stops_starting_stages_when_the_budget_is_spent() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let lit = FakeLit::start().await;
    let llm = FakeLlm::start_routed(
        vec![],
        vec![(A.1.into(), novelty(A.1)), (B.1.into(), novelty(B.1))],
    )
    .await;
    let cfg_model = |cmd: &mut tokio::process::Command| {
        // A priced model: the fake's token counts cost money.
        cmd.env("AISCI_MODEL", "gpt-4o-2024-11-20");
    };
    let mut cmd = command(
        dir.path(),
        &llm,
        &lit,
        &[
            "--template",
            t.to_str().unwrap(),
            "--skip-idea-generation",
            "--budget-usd",
            "0.001",
        ],
    );
    cfg_model(&mut cmd);
    let out = cmd.output().await.unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stdout}\n{stderr}");
    assert!(stdout.contains("the budget is spent"), "{stdout}\n{stderr}");
    // Novelty began: its first call cost $0.0057 (over the $0.001), the second was
    // refused; no experiment started, and the novelty step is left for a resumed launch.
    assert_eq!(llm.hits(), 1, "{stderr}");
    assert_eq!(journal(&t)["novelty_checked"]["state"], "pending");
    let j = journal(&t);
    for name in [A.0, B.0] {
        assert_eq!(idea(&j, name)["experiments"]["state"], "pending");
    }
    assert!(
        !dir.path().join("results").exists()
            || std::fs::read_dir(dir.path().join("results/tiny_mlp"))
                .map(|d| d.count())
                .unwrap_or(0)
                <= 2
    );
}
