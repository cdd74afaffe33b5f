//! Protocol tests: the real server over an in-process duplex pipe.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::lsp_client::{file_uri, TestClient};

/// A minimal valid template in a temporary folder.
fn template(dir: &Path) -> PathBuf {
    let t = dir.join("tmpl");
    std::fs::create_dir_all(t.join("run_0")).unwrap();
    std::fs::write(
        t.join("experiment.py"),
        "import argparse\n\np = argparse.ArgumentParser()\np.add_argument('--out_dir', default='run_0')\n\n\ndef main():\n    pass\n",
    )
    .unwrap();
    std::fs::write(
        t.join("prompt.json"),
        r#"{"system": "You are a scientist.", "task_description": "Study tiny nets."}"#,
    )
    .unwrap();
    std::fs::write(t.join("seed_ideas.json"), "[]").unwrap();
    std::fs::write(
        t.join("run_0/final_info.json"),
        r#"{"toy": {"means": {"acc": 0.9}}}"#,
    )
    .unwrap();
    t
}

fn diagnostics_for<'a>(msgs: &'a [Value], uri: &str) -> Option<&'a Value> {
    msgs.iter()
        .rev()
        .find(|m| m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri)
}

#[tokio::test]
async fn negotiates_utf8_when_offered_and_utf16_otherwise() {
    let c = TestClient::start(Value::Null);
    let r = c
        .initialize(
            json!({ "general": { "positionEncodings": ["utf-16", "utf-8"] } }),
            Value::Null,
        )
        .await;
    assert_eq!(r["capabilities"]["positionEncoding"], "utf-8");
    assert_eq!(r["capabilities"]["textDocumentSync"]["change"], 2);
    let cmds = r["capabilities"]["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap();
    assert!(cmds.iter().any(|c| c == "aisci.generateIdeas"));

    let c = TestClient::start(Value::Null);
    let r = c.initialize(json!({}), Value::Null).await;
    assert_eq!(r["capabilities"]["positionEncoding"], "utf-16");
}

#[tokio::test]
async fn exit_ends_the_server_while_input_stays_open() {
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    c.request("shutdown", Value::Null).await;
    c.notify("exit", Value::Null).await;
    let code = tokio::time::timeout(Duration::from_secs(2), c.server)
        .await
        .expect("server did not exit")
        .unwrap();
    assert_eq!(code, 0);
}

#[tokio::test]
async fn exit_without_shutdown_reports_failure() {
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    c.notify("exit", Value::Null).await;
    let code = tokio::time::timeout(Duration::from_secs(2), c.server)
        .await
        .expect("server did not exit")
        .unwrap();
    assert_eq!(code, 1);
}

#[tokio::test]
async fn malformed_params_get_a_json_rpc_error_and_the_server_lives_on() {
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    let r = c
        .request_raw("textDocument/hover", json!({ "nonsense": true }))
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.generateIdeas", "arguments": [] }),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    assert!(r["error"]["message"].as_str().unwrap().contains("template"));
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.cancel", "arguments": ["x"] }),
        )
        .await;
    assert_eq!(r["error"]["code"], -32602, "{r}");
    c.send_raw("{\"jsonrpc\":\"2.0\",\"id\":99,\"method\":").await;
    // Still answering.
    let r = c
        .request("workspace/executeCommand", json!({ "command": "aisci.cancel" }))
        .await;
    assert_eq!(r["cancelled"], json!([]));
}

/// Frames and bodies that used to end the session (tower-lsp's decoder gave up), or to
/// make it drop every later message, one after another; the server still answers, and a
/// bad request with an id gets -32600.
#[tokio::test]
async fn no_message_ends_the_session() {
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    let framed = |body: &[u8]| {
        let mut f = format!("Content-Length: {}\r\n\r\n", body.len()).into_bytes();
        f.extend_from_slice(body);
        f
    };
    let bad: Vec<Vec<u8>> = vec![
        framed(br#"{"foo":1}"#),
        framed(b"[1,2,3]"),
        framed(b"42"),
        framed(b"null"),
        framed(br#"[{"jsonrpc":"2.0","id":1,"method":"shutdown"}]"#),
        framed(&[0xff, 0xfe, 0xfd]),
        framed(br#"{"jsonrpc":"2.0","method":"textDocument/didOpen","params":{"t":"\ud800"}}"#),
        b"Content-Length: abc\r\n\r\n{}".to_vec(),
        b"Content-Length: -5\r\n\r\n".to_vec(),
        b"Content-Length: 99999999999\r\n\r\n".to_vec(),
        b"X-Nothing: here\r\n\r\n".to_vec(),
        b"Content-Length: 30\r\n\r\n".to_vec(),
    ];
    for b in &bad {
        c.send_bytes(b).await;
    }
    c.send_raw(r#"{"jsonrpc":"1.0","id":9001,"method":"shutdown"}"#)
        .await;
    let answer = c
        .wait_for("the InvalidRequest answer", 10, |m| m["id"] == 9001)
        .await;
    assert_eq!(answer["error"]["code"], -32600, "{answer}");
    // `"arguments": null` is read as no arguments.
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.cancel", "arguments": null }),
        )
        .await;
    assert_eq!(r["cancelled"], json!([]));
}

#[tokio::test]
async fn template_problems_are_diagnostics_and_follow_edits() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    std::fs::remove_file(t.join("run_0/final_info.json")).unwrap();
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;

    let prompt_uri = file_uri(&t.join("prompt.json"));
    let exp_uri = file_uri(&t.join("experiment.py"));
    // A broken prompt.json in the editor, unsaved: the error is at the JSON error's place.
    let broken = "{\n  \"system\": \"x\",\n  \"task_description\": \"é😀\" oops\n}";
    c.open(&prompt_uri, "json", broken).await;
    let d = c
        .wait_for("prompt.json diagnostics", 5, |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == prompt_uri.as_str()
                && !m["params"]["diagnostics"].as_array().unwrap().is_empty()
        })
        .await;
    let diag = &d["params"]["diagnostics"][0];
    assert_eq!(diag["range"]["start"]["line"], 2, "{diag}");
    // UTF-16: `  "task_description": "é😀" ` puts `oops` at column 28 (byte column 31).
    assert_eq!(diag["range"]["start"]["character"], 28, "{diag}");
    assert_eq!(diag["severity"], 1);

    // The missing baseline is reported on experiment.py, with how to make it.
    let msgs = c.received.lock().unwrap().clone();
    let exp = diagnostics_for(&msgs, &exp_uri).expect("experiment.py diagnostics");
    let text = exp["params"]["diagnostics"].to_string();
    assert!(
        text.contains("--out_dir run_0") || text.contains("--out_dir=run_0"),
        "{text}"
    );

    // Fix it with an incremental edit: remove ` oops`.
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": prompt_uri, "version": 2 },
            "contentChanges": [{ "range": { "start": { "line": 2, "character": 27 }, "end": { "line": 2, "character": 32 } }, "text": "" }]
        }),
    )
    .await;
    c.wait_for("cleared prompt.json diagnostics", 5, |m| {
        m["method"] == "textDocument/publishDiagnostics"
            && m["params"]["uri"] == prompt_uri.as_str()
            && m["params"]["diagnostics"].as_array().unwrap().is_empty()
    })
    .await;
}

#[tokio::test]
async fn stale_versions_and_out_of_range_edits_do_not_corrupt() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    let uri = file_uri(&t.join("prompt.json"));
    c.open(&uri, "json", "{\"system\": \"s\", \"task_description\": \"t\"}")
        .await;
    // An edit far past the end is clamped to the end: appending garbage makes it invalid.
    let far = json!({ "start": { "line": 99, "character": 99 }, "end": { "line": 99, "character": 99 } });
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 3 }, "contentChanges": [{ "range": far, "text": "x" }] }),
    )
    .await;
    c.wait_for("diagnostic after clamped edit", 5, |m| {
        m["params"]["uri"] == uri.as_str()
            && !m["params"]["diagnostics"]
                .as_array()
                .map(|a| a.is_empty())
                .unwrap_or(true)
    })
    .await;
    // A stale version (2 < 3) is ignored: the document keeps its trailing `x`.
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{ "text": "{\"system\": \"s\", \"task_description\": \"t\"}" }] }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let msgs = c.received.lock().unwrap().clone();
    let last = diagnostics_for(&msgs, &uri).unwrap();
    assert!(
        !last["params"]["diagnostics"].as_array().unwrap().is_empty(),
        "stale full-text change was applied"
    );
}

#[tokio::test]
async fn experiment_py_offers_generate_ideas_as_action_and_lens_with_its_cost() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), json!({ "llm": { "model": "gpt-4o" } }))
        .await;
    let uri = file_uri(&t.join("experiment.py"));
    c.open(
        &uri,
        "python",
        &std::fs::read_to_string(t.join("experiment.py")).unwrap(),
    )
    .await;
    let range = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } });
    let actions = c
        .request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [] } }),
        )
        .await;
    assert_eq!(
        actions[0]["command"]["command"], "aisci.generateIdeas",
        "{actions}"
    );
    let quickfix_only = c
        .request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [], "only": ["quickfix"] } }),
        )
        .await;
    assert!(quickfix_only.is_null(), "{quickfix_only}");
    let lenses = c
        .request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }))
        .await;
    let lens = lenses[0]["command"]["title"].as_str().unwrap().to_string();
    // The same words on the action and the lens, with what the stage will cost.
    assert_eq!(actions[0]["title"], lens.as_str(), "{actions}");
    let usd: f64 = lens
        .strip_prefix("Generate ideas (~$")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or_else(|| panic!("{lens}"))
        .parse()
        .unwrap();
    // What the editor shows is what `aisci ideas --estimate` prints for the same settings.
    let cfg = dir.path().join("config.toml");
    std::fs::write(&cfg, "[llm]\nmodel = \"gpt-4o\"\n").unwrap();
    let mut cmd = crate::support::cli::aisci(dir.path(), &cfg);
    cmd.args(["ideas", "--template"]).arg(&t).arg("--estimate");
    let out = String::from_utf8_lossy(&cmd.output().await.unwrap().stdout).to_string();
    let printed: f64 = out
        .lines()
        .find(|l| l.starts_with("ideas"))
        .and_then(|l| l.split_whitespace().last())
        .and_then(|c| c.trim_start_matches('$').parse().ok())
        .unwrap_or_else(|| panic!("{out}"));
    assert!(
        usd > 0.0 && (usd - printed).abs() <= 0.0051,
        "lens {usd}, cli {printed}\n{out}"
    );
    // On the first definition (`def main`, line 6), found with the syntax tree.
    assert_eq!(lenses[0]["range"]["start"]["line"], 6, "{lenses}");
}

#[tokio::test]
async fn ideas_json_has_hover_and_lenses_per_idea() {
    let dir = tempfile::tempdir().unwrap();
    let t = template(dir.path());
    let text = r#"[
    {"Name": "seed_one", "Title": "First", "Experiment": "Do A.", "Interestingness": 6, "Feasibility": 9, "Novelty": 4},
    {"Name": "second", "Title": "Second idea", "Experiment": "Do B.", "Interestingness": 8, "Feasibility": 7, "Novelty": 6, "novel": true}
]"#;
    std::fs::write(t.join("ideas.json"), text).unwrap();
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    let uri = file_uri(&t.join("ideas.json"));
    c.open(&uri, "json", text).await;
    let lenses = c
        .request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }))
        .await;
    // Titles that start a paid stage end with its cost: " (~$0.02)" or " (~3k tokens)".
    let costed = |t: &str| t.rsplit_once(" (~").map(|(head, _)| head.to_string());
    let titles: Vec<(u64, String, &str)> = lenses
        .as_array()
        .unwrap()
        .iter()
        .map(|l| {
            let title = l["command"]["title"].as_str().unwrap();
            (
                l["range"]["start"]["line"].as_u64().unwrap(),
                costed(title).unwrap_or_else(|| title.to_string()),
                l["command"]["command"].as_str().unwrap(),
            )
        })
        .collect();
    let with_cost: Vec<&str> = lenses
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|l| l["command"]["title"].as_str().filter(|t| costed(t).is_some()))
        .collect();
    assert_eq!(with_cost.len(), 4, "{with_cost:?}");
    let titles: Vec<(u64, &str, &str)> = titles.iter().map(|(l, t, c)| (*l, t.as_str(), *c)).collect();
    assert_eq!(
        titles,
        [
            (0, "Check novelty of all unchecked ideas", "aisci.checkNovelty"),
            (
                1,
                "Interestingness 6 · Feasibility 9 · Novelty 4",
                "aisci.showIdea"
            ),
            (1, "Check novelty", "aisci.checkNovelty"),
            (1, "Implement idea", "aisci.implementIdea"),
            (
                2,
                "Interestingness 8 · Feasibility 7 · Novelty 6 · novel",
                "aisci.showIdea"
            ),
            (2, "novel ✓", "aisci.showIdea"),
            (2, "Implement idea", "aisci.implementIdea"),
        ]
    );
    assert_eq!(lenses[2]["command"]["arguments"][0]["ideas"], json!(["seed_one"]));
    let hover = c
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 2, "character": 20 } }),
        )
        .await;
    let md = hover["contents"]["value"].as_str().unwrap();
    assert!(md.starts_with("**Second idea**"), "{md}");
    assert!(md.contains("Do B."));
    let none = c
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 0, "character": 0 } }),
        )
        .await;
    assert!(none.is_null());
    // An edit is seen at once (parsed entries are cached per version).
    let title_at = text.lines().nth(2).unwrap().find("Second idea").unwrap() as u32;
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": uri, "version": 2 }, "contentChanges": [{
            "range": { "start": { "line": 2, "character": title_at }, "end": { "line": 2, "character": title_at + 6 } },
            "text": "Renamed" }] }),
    )
    .await;
    let hover = c
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": { "line": 2, "character": 20 } }),
        )
        .await;
    assert!(
        hover["contents"]["value"]
            .as_str()
            .unwrap()
            .starts_with("**Renamed idea**"),
        "{hover}"
    );
    // Clicking the lens shows the idea.
    c.request("workspace/executeCommand", lenses[1]["command"].clone())
        .await;
    c.wait_for("showMessage of the idea", 5, |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("First (seed_one)")
    })
    .await;
}

#[tokio::test]
async fn invalid_settings_warn_once_and_keep_defaults() {
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), json!({ "llm": { "temperature": "hot" } }))
        .await;
    c.wait_for("settings warning", 5, |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("llm.temperature")
    })
    .await;
    c.notify(
        "workspace/didChangeConfiguration",
        json!({ "settings": { "llm": { "temperature": "hot" } } }),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    let warnings = c
        .messages("window/showMessage")
        .into_iter()
        .filter(|m| {
            m["params"]["message"]
                .as_str()
                .unwrap_or("")
                .contains("llm.temperature")
        })
        .count();
    assert_eq!(warnings, 1);
}
