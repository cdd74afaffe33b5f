//! "Generate ideas" through the protocol: progress, result, cost, cancellation and
//! the errors that must come before any model call.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::tiny_mlp_without_ideas;
use crate::support::lsp_client::{file_uri, TestClient};

/// A copy of the demo template (with its recording), without any generated ideas.json.
fn demo_copy(dir: &Path) -> PathBuf {
    tiny_mlp_without_ideas(&dir.join("tiny_mlp"))
}

fn caps() -> Value {
    json!({ "window": { "workDoneProgress": true, "showDocument": { "support": true } } })
}

fn progress_of(c: &TestClient, kind: &str) -> Vec<Value> {
    c.messages("$/progress")
        .into_iter()
        .filter(|m| m["params"]["value"]["kind"] == kind)
        .collect()
}

#[tokio::test]
async fn generates_ideas_with_progress_cost_and_show_document() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_copy(dir.path());
    let c = TestClient::start(Value::Null);
    let options = json!({
        "llm": { "provider": "replay", "replay_file": t.join(".aisci/replay/ideas.json") },
        "ideas": { "num_ideas": 2, "num_reflections": 3 }
    });
    c.initialize(caps(), options).await;
    // The open, unsaved buffer is what the model sees.
    let exp = t.join("experiment.py");
    let text = std::fs::read_to_string(&exp).unwrap() + "\n# unsaved edit\n";
    c.open(&file_uri(&exp), "python", &text).await;

    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": t }] }),
        )
        .await;
    let job = r["job"].as_u64().unwrap();
    let end = c
        .wait_for("progress end", 10, |m| m["params"]["value"]["kind"] == "end")
        .await;
    assert_eq!(end["params"]["token"], format!("aisci-job-{job}"));
    let begin = progress_of(&c, "begin");
    assert_eq!(begin.len(), 1);
    assert_eq!(begin[0]["params"]["value"]["title"], "Generate ideas");
    let reports: Vec<String> = progress_of(&c, "report")
        .iter()
        .map(|m| m["params"]["value"]["message"].as_str().unwrap().to_owned())
        .collect();
    assert!(reports.iter().any(|m| m.starts_with("Idea 1/2")), "{reports:?}");
    assert!(reports.iter().any(|m| m.starts_with("Idea 2/2")), "{reports:?}");
    // The create request came before begin.
    assert_eq!(c.messages("window/workDoneProgress/create").len(), 1);

    let shown = c
        .wait_for("showDocument", 5, |m| m["method"] == "window/showDocument")
        .await;
    assert_eq!(shown["params"]["uri"], file_uri(&t.join("ideas.json")));
    let msg = c
        .wait_for("summary message", 5, |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("model call")
        })
        .await;
    let summary = msg["params"]["message"].as_str().unwrap();
    assert!(summary.contains("2 new idea(s)"), "{summary}");
    assert!(summary.contains("5 model call(s)"), "{summary}");
    assert!(summary.contains("recorded conversation"), "{summary}");
    assert!(summary.contains('$'), "{summary}");

    let ideas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(t.join("ideas.json")).unwrap()).unwrap();
    let names: Vec<&str> = ideas.iter().map(|i| i["Name"].as_str().unwrap()).collect();
    assert_eq!(
        names,
        [
            "learning_rate_warmup",
            "init_scale_regimes",
            "edge_of_stability_tiny_mlp",
            "margin_curriculum"
        ]
    );
}

#[tokio::test]
async fn cancel_from_progress_stops_the_job_and_keeps_the_archive_valid() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_copy(dir.path());
    let recording: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join(".aisci/replay/ideas.json")).unwrap()).unwrap();
    let answer = |i: usize| {
        let text = recording["exchanges"][i]["response"]["text"].as_str().unwrap();
        Reply::chat_completion("chatcmpl-test", text, 2000, 300)
    };
    // First answer quick, then the model becomes slow.
    let fake = FakeLlm::start(vec![
        answer(0),
        answer(1).delayed(Duration::from_secs(20)),
        answer(2).delayed(Duration::from_secs(20)),
    ])
    .await;
    let c = TestClient::start(Value::Null);
    let options = json!({
        "llm": { "provider": "vllm", "base_url": fake.v1(), "model": "local-model", "stream": false },
        "ideas": { "num_ideas": 2, "num_reflections": 3 }
    });
    c.initialize(caps(), options).await;
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [t.display().to_string()] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    c.wait_for("round 2 report", 10, |m| {
        m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("round 2"))
    })
    .await;
    // A second start for the same template is refused while the first runs.
    let again = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": t }] }),
        )
        .await;
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap()
            .contains("already running"),
        "{again}"
    );
    let asked = Instant::now();
    c.notify("window/workDoneProgress/cancel", json!({ "token": token }))
        .await;
    c.wait_for("progress end", 5, |m| m["params"]["value"]["kind"] == "end")
        .await;
    assert!(
        asked.elapsed() < Duration::from_secs(3),
        "cancel took {:?}",
        asked.elapsed()
    );
    assert_eq!(fake.hits(), 2, "no call after the cancel");
    // Nothing was accepted, so nothing was written; a present file must be valid.
    if let Ok(text) = std::fs::read_to_string(t.join("ideas.json")) {
        serde_json::from_str::<Value>(&text).expect("ideas.json stays valid JSON");
    }
    // The job is gone: the lens offers generation again.
    let lenses = c
        .request(
            "textDocument/codeLens",
            json!({ "textDocument": { "uri": file_uri(&t.join("experiment.py")) } }),
        )
        .await;
    assert_eq!(lenses[0]["command"]["command"], "aisci.generateIdeas", "{lenses}");
}

#[tokio::test]
async fn missing_key_is_one_clear_error_before_any_call() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_copy(dir.path());
    let fake = FakeLlm::start(vec![]).await;
    let c = TestClient::start(Value::Null);
    let options = json!({ "llm": {
        "provider": "openai", "base_url": fake.v1(), "api_key_env": "AISCI_TEST_KEY_THAT_IS_NOT_SET"
    } });
    c.initialize(caps(), options).await;
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": t }] }),
        )
        .await;
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("AISCI_TEST_KEY_THAT_IS_NOT_SET"), "{msg}");
    assert_eq!(fake.hits(), 0);
    assert!(c.messages("$/progress").is_empty());
}

#[tokio::test]
async fn not_a_template_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let c = TestClient::start(Value::Null);
    c.initialize(caps(), Value::Null).await;
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": dir.path() }] }),
        )
        .await;
    assert!(
        r["error"]["message"].as_str().unwrap().contains("not a template"),
        "{r}"
    );
}

#[tokio::test]
async fn unsaved_ideas_json_is_protected() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_copy(dir.path());
    std::fs::write(t.join("ideas.json"), "[]").unwrap();
    let c = TestClient::start(Value::Null);
    let options =
        json!({ "llm": { "provider": "replay", "replay_file": t.join(".aisci/replay/ideas.json") } });
    c.initialize(caps(), options).await;
    c.open(
        &file_uri(&t.join("ideas.json")),
        "json",
        "[{\"Name\": \"typed_but_unsaved\"}]",
    )
    .await;
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": t }] }),
        )
        .await;
    assert!(
        r["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unsaved changes"),
        "{r}"
    );
    assert_eq!(std::fs::read_to_string(t.join("ideas.json")).unwrap(), "[]");
}

/// An OpenAI-style completion whose message is `text`.
fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-broken", text, 1000, 100)
}

#[tokio::test]
async fn a_model_that_never_gives_valid_json_costs_bounded_calls_and_is_reported() {
    let dir = tempfile::tempdir().unwrap();
    let t = demo_copy(dir.path());
    let broken =
        "THOUGHT: great idea\n\nNEW IDEA JSON:\n```json\n{\"Name\": \"x\", \"Title\": \"unterminated";
    // More answers than allowed: the test checks how many were used.
    let fake = FakeLlm::start((0..10).map(|_| completion(broken)).collect()).await;
    let c = TestClient::start(Value::Null);
    let reflections = 3;
    let options = json!({
        "llm": { "provider": "vllm", "base_url": fake.v1(), "model": "local-model", "stream": false },
        "ideas": { "num_ideas": 1, "num_reflections": reflections }
    });
    c.initialize(caps(), options).await;
    c.request(
        "workspace/executeCommand",
        json!({ "command": "aisci.generateIdeas", "arguments": [{ "template": t }] }),
    )
    .await;
    let msg = c
        .wait_for("summary", 10, |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"].as_str().unwrap_or("").contains("dropped")
        })
        .await;
    assert_eq!(msg["params"]["type"], 2, "a run with no idea is a warning: {msg}");
    let text = msg["params"]["message"].as_str().unwrap();
    assert!(text.contains("0 new idea(s)"), "{text}");
    // At most 1 + R + 1 calls for the idea (first answer, reflections, one repair).
    assert!(fake.hits() <= 1 + reflections + 1, "{} calls", fake.hits());
    assert!(
        fake.hits() >= 2,
        "the repair prompt was tried: {} calls",
        fake.hits()
    );
    assert!(
        !t.join("ideas.json").exists(),
        "nothing accepted, nothing written"
    );
}
