//! `aisci.listJobs` and `aisci/status` through the protocol: the running job with its
//! latest progress, its end, and what this session spent (earlier sessions' ledger
//! entries left out).

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::tiny_mlp_without_ideas;
use crate::support::lsp_client::TestClient;

/// A copy of the demo template (with its recording), without generated ideas.
fn demo_copy(dir: &Path) -> PathBuf {
    tiny_mlp_without_ideas(&dir.join("tiny_mlp"))
}

async fn list_jobs(c: &TestClient) -> Value {
    c.request(
        "workspace/executeCommand",
        json!({ "command": "aisci.listJobs", "arguments": [] }),
    )
    .await
}

#[tokio::test]
async fn status_follows_a_job_and_counts_only_this_sessions_spending() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().canonicalize().unwrap();
    let t = demo_copy(&t);
    // A call from an earlier session: in the ledger, not in this session's spending.
    let ledger = t.join(".aisci/usage.jsonl");
    std::fs::write(
        &ledger,
        r#"{"at":"2020-01-01T00:00:00+00:00","stage":"ideas","idea":null,"provider":"openai","model":"gpt-4o","usage":{"input_tokens":1,"cached_input_tokens":0,"cache_write_tokens":0,"output_tokens":1},"cost_usd":100.0,"price_known":true,"attempts":1,"elapsed_ms":1,"finish_reason":"stop"}"#
            .to_owned()
            + "\n",
    )
    .unwrap();
    let recording: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join(".aisci/replay/ideas.json")).unwrap()).unwrap();
    let answer = |i: usize| {
        let text = recording["exchanges"][i]["response"]["text"].as_str().unwrap();
        Reply::chat_completion("chatcmpl-test", text, 2000, 300)
    };
    // One quick answer, then a slow model: the job stays running long enough to be listed.
    let fake = FakeLlm::start(vec![answer(0), answer(1).delayed(Duration::from_secs(20))]).await;
    let c = TestClient::start(Value::Null);
    let options = json!({
        "llm": { "provider": "vllm", "base_url": fake.v1(), "model": "gpt-4o", "stream": false },
        "ideas": { "num_ideas": 2, "num_reflections": 3 }
    });
    let init = c
        .initialize(json!({ "window": { "workDoneProgress": true } }), options)
        .await;
    let commands = &init["capabilities"]["executeCommandProvider"]["commands"];
    assert!(
        commands.as_array().unwrap().contains(&json!("aisci.listJobs")),
        "{commands}"
    );

    let idle = list_jobs(&c).await;
    assert_eq!(idle["jobs"], json!([]));
    assert_eq!(idle["spentUsd"], json!(0.0));
    assert_eq!(idle["calls"], json!(0));
    chrono::DateTime::parse_from_rfc3339(idle["since"].as_str().unwrap()).expect("since is RFC 3339");

    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": t }] }),
        )
        .await;
    let job = r["job"].as_u64().unwrap();
    let started = c
        .wait_for("status with the job", 10, |m| {
            m["method"] == "aisci/status" && m["params"]["jobs"][0]["id"] == job
        })
        .await;
    assert_eq!(started["params"]["jobs"][0]["title"], "Generate ideas");
    assert_eq!(started["params"]["jobs"][0]["target"], t.display().to_string());

    c.wait_for("round 2 report", 10, |m| {
        m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("round 2"))
    })
    .await;
    let running = list_jobs(&c).await;
    let jobs = running["jobs"].as_array().unwrap();
    assert_eq!(jobs.len(), 1, "{running}");
    assert_eq!(jobs[0]["id"], job);
    assert!(
        jobs[0]["message"].as_str().unwrap().contains("round 2"),
        "the latest progress report is listed: {running}"
    );
    let elapsed = jobs[0]["elapsedMs"].as_u64().unwrap();
    assert!(elapsed < 60_000, "{running}");
    chrono::DateTime::parse_from_rfc3339(jobs[0]["startedAt"].as_str().unwrap()).expect("RFC 3339");

    let cancelled = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.cancel", "arguments": [job] }),
        )
        .await;
    assert_eq!(cancelled["cancelled"], json!([job]));
    let ended = c
        .wait_for("status without jobs", 10, |m| {
            m["method"] == "aisci/status" && m["params"]["jobs"] == json!([])
        })
        .await;

    // The one answered call of this session, as the ledger recorded it; the old one left out.
    let lines: Vec<Value> = std::fs::read_to_string(&ledger)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    // The stage's estimate line is beside its calls, and counts as no call.
    assert!(
        lines.last().unwrap()["estimate"]["expected"]["stage"] == "ideas",
        "{lines:?}"
    );
    let lines: Vec<Value> = lines
        .into_iter()
        .filter(|l| l.get("estimate").is_none())
        .collect();
    assert_eq!(lines.len(), 2, "{lines:?}");
    let cost = lines[1]["cost_usd"].as_f64().unwrap();
    assert!(cost > 0.0, "gpt-4o has a price: {lines:?}");
    assert_eq!(ended["params"]["calls"], json!(1));
    assert!(
        (ended["params"]["spentUsd"].as_f64().unwrap() - cost).abs() < 1e-9,
        "{ended}"
    );
    let after = list_jobs(&c).await;
    assert_eq!(after["jobs"], json!([]));
    assert_eq!(after["spentUsd"], ended["params"]["spentUsd"]);
    assert_eq!(fake.hits(), 2);
}
