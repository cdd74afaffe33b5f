//! The language server against input no editor sends but a broken or hostile client may: a
//! 50 MB document, 10,000 pipelined requests, junk arguments on every command. The server
//! answers each, stays up, starts nothing and changes no file.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fs::copy_tiny_mlp;
use crate::support::lsp_client::{file_uri, TestClient};

/// Every file under `dir` with its bytes.
fn snapshot(dir: &Path) -> BTreeMap<PathBuf, Vec<u8>> {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d).unwrap().flatten() {
            let p = e.path();
            if p.is_dir() {
                stack.push(p);
            } else {
                out.insert(p.clone(), std::fs::read(&p).unwrap());
            }
        }
    }
    out
}

fn vm_kib(pid: u32, field: &str) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// A 50 MB `experiment.py` opened in the editor: the server keeps answering (hover,
/// code actions on it and on another file) with bounded memory.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_fifty_megabyte_document_leaves_the_server_answering() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tiny_mlp");
    copy_tiny_mlp(&t);
    let c = TestClient::spawn(
        Value::Null,
        &[("AISCI_CONFIG", dir.path().join("none.toml").as_os_str())],
    );
    c.initialize(json!({}), Value::Null).await;
    let pid = c.server_pid.unwrap();
    let line = "x = [1, 2, 3]  # a line of a very long generated experiment file\n";
    let big: String = line.repeat((50 << 20) / line.len());
    let uri = file_uri(&t.join("experiment.py"));
    let started = Instant::now();
    c.open(&uri, "python", &big).await;
    let hover = c
        .request_raw(
            "textDocument/hover",
            json!({"textDocument": {"uri": uri}, "position": {"line": 400000, "character": 2}}),
        )
        .await;
    assert!(
        hover.get("result").is_some() || hover.get("error").is_some(),
        "{hover}"
    );
    let actions = c
        .request_raw(
            "textDocument/codeAction",
            json!({"textDocument": {"uri": uri},
                   "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                   "context": {"diagnostics": []}}),
        )
        .await;
    assert!(actions.get("result").is_some(), "{actions}");
    let answered_in = started.elapsed();
    // Another document is served as usual afterwards.
    let small = file_uri(&t.join("plot.py"));
    c.open(&small, "python", "print('hi')\n").await;
    let r = c
        .request("workspace/executeCommand", json!({"command": "aisci.listJobs"}))
        .await;
    assert!(r.is_array() || r.is_object(), "{r}");
    let (hwm, rss) = (vm_kib(pid, "VmHWM:"), vm_kib(pid, "VmRSS:"));
    eprintln!("50 MB didOpen: answered in {answered_in:?}; server peak RSS {hwm} KiB, now {rss} KiB");
    // The text itself is 50 MiB; a few copies at most, never an unbounded blow-up.
    assert!(hwm < 600 * 1024, "peak RSS {hwm} KiB");
    assert!(answered_in < Duration::from_secs(60), "{answered_in:?}");
}

/// 10,000 requests written at once, without waiting for any answer: every one is answered.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ten_thousand_pipelined_requests_are_all_answered() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tiny_mlp");
    copy_tiny_mlp(&t);
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), Value::Null).await;
    let uri = file_uri(&t.join("experiment.py"));
    let text = std::fs::read_to_string(t.join("experiment.py")).unwrap();
    c.open(&uri, "python", &text).await;
    const N: i64 = 10_000;
    let mut bytes = Vec::new();
    for i in 0..N {
        let method = if i % 2 == 0 {
            "textDocument/hover"
        } else {
            "textDocument/codeAction"
        };
        let params = if i % 2 == 0 {
            json!({"textDocument": {"uri": uri}, "position": {"line": (i % 40) as u32, "character": 4}})
        } else {
            json!({"textDocument": {"uri": uri},
                   "range": {"start": {"line": 0, "character": 0}, "end": {"line": 0, "character": 0}},
                   "context": {"diagnostics": []}})
        };
        let body = serde_json::to_vec(
            &json!({"jsonrpc": "2.0", "id": 1_000_000 + i, "method": method, "params": params}),
        )
        .unwrap();
        bytes.extend_from_slice(format!("Content-Length: {}\r\n\r\n", body.len()).as_bytes());
        bytes.extend_from_slice(&body);
    }
    let started = Instant::now();
    c.send_bytes(&bytes).await;
    let answered = |c: &TestClient| {
        c.received
            .lock()
            .unwrap()
            .iter()
            .filter(|m| m["id"].as_i64().is_some_and(|id| id >= 1_000_000) && m.get("method").is_none())
            .count()
    };
    let deadline = Instant::now() + Duration::from_secs(120);
    while answered(&c) < N as usize {
        assert!(Instant::now() < deadline, "only {} of {N} answered", answered(&c));
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let took = started.elapsed();
    let errors = c
        .received
        .lock()
        .unwrap()
        .iter()
        .filter(|m| m["id"].as_i64().is_some_and(|id| id >= 1_000_000) && m.get("error").is_some())
        .count();
    eprintln!("10,000 pipelined requests answered in {took:?} ({errors} errors)");
    assert_eq!(errors, 0);
    let r = c
        .request("workspace/executeCommand", json!({"command": "aisci.listJobs"}))
        .await;
    assert!(!r.is_null());
}

/// Every command the server advertises, with arguments of every wrong shape: each gets an
/// answer (an invalid-params error where the arguments cannot be read), no job starts, no
/// file changes, and the server answers afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn junk_arguments_on_every_command_are_refused_and_change_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let t = dir.path().join("tiny_mlp");
    copy_tiny_mlp(&t);
    let before = snapshot(&t);
    let c = TestClient::start(Value::Null);
    let init = c
        .request(
            "initialize",
            json!({"capabilities": {}, "rootUri": file_uri(&t),
                   "workspaceFolders": [{"uri": file_uri(&t), "name": "tiny_mlp"}]}),
        )
        .await;
    c.notify("initialized", json!({})).await;
    let commands: Vec<String> = init["capabilities"]["executeCommandProvider"]["commands"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c.as_str().unwrap().to_owned())
        .collect();
    assert!(commands.len() >= 10, "{commands:?}");
    let huge = "x".repeat(1 << 20);
    let junk = [
        json!([null]),
        json!([42]),
        json!([true, false]),
        json!([[[[[[[[]]]]]]]]),
        json!([{"uri": 5, "idea": [], "run": "one"}]),
        json!([{"uri": "file:///nonexistent/experiment.py", "idea": "x"}]),
        json!([huge]),
        json!(["../../../../etc/passwd", {"folder": "/"}]),
        json!((0..200).map(|i| json!(i)).collect::<Vec<_>>()),
        json!({"not": "a list"}),
        json!("a string"),
    ];
    let read_only = [
        "aisci.cancel",
        "aisci.listJobs",
        "aisci.listRuns",
        "aisci.pendingEdits",
    ];
    for cmd in &commands {
        for args in &junk {
            let r = c
                .request_raw(
                    "workspace/executeCommand",
                    json!({"command": cmd, "arguments": args}),
                )
                .await;
            let short = r.to_string().chars().take(300).collect::<String>();
            match r.get("error") {
                Some(e) => assert!(
                    [-32602, -32600].contains(&e["code"].as_i64().unwrap_or(0)),
                    "{cmd} {}: {short}",
                    args.to_string().chars().take(80).collect::<String>()
                ),
                None => assert!(
                    read_only.contains(&cmd.as_str()),
                    "{cmd} accepted junk {}: {short}",
                    args.to_string().chars().take(80).collect::<String>()
                ),
            }
        }
    }
    let jobs = c
        .request("workspace/executeCommand", json!({"command": "aisci.listJobs"}))
        .await;
    let listed = jobs
        .as_array()
        .or_else(|| jobs["jobs"].as_array())
        .cloned()
        .unwrap_or_default();
    assert!(listed.is_empty(), "junk started jobs: {jobs}");
    assert_eq!(snapshot(&t), before, "a file of the project changed");
}
