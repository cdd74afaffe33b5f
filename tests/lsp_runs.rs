//! Runs in the editor, through the in-process LSP client with real `python3`: the
//! run-state lens of any experiment.py follows a launched run (queued, running, done),
//! `aisci.listRuns` lists it with its place, elapsed time, exit and logs, and a run
//! printing a flood reaches the editor as a bounded number of bounded
//! `aisci/runOutput` notifications.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::lsp_client::{file_uri, TestClient};
use crate::support::run_queue;

/// Waits for a file `go` beside it, then writes its results.
const GATED: &str = "import json, os, sys, time\nout = sys.argv[1].split('=')[1]\nos.makedirs(out, exist_ok=True)\nprint('waiting', flush=True)\nwhile not os.path.exists('go'):\n    time.sleep(0.02)\njson.dump({'toy': {'means': {'acc': 0.5}}}, open(os.path.join(out, 'final_info.json'), 'w'))\n";

/// A bare experiment folder (no prompt.json: not a template) at `<dir>/<name>`.
fn folder(dir: &Path, name: &str, script: &str) -> PathBuf {
    let t = dir.join(name);
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("experiment.py"), script).unwrap();
    t.canonicalize().unwrap()
}

/// Settings with `cpu_slots` CPU slots. The process keeps one run queue, for the latest
/// settings: each test takes it to itself (`run_queue::exclusive`) for its slot count.
fn options(dir: &Path, cpu_slots: u32) -> Value {
    json!({
        "run": { "gpus": [], "cpu_slots": cpu_slots },
        "literature": { "cache_dir": dir.join("cache") }
    })
}

async fn start(dir: &Path, cpu_slots: u32) -> TestClient {
    let c = TestClient::start(Value::Null);
    let root = file_uri(dir);
    c.request(
        "initialize",
        json!({
            "capabilities": { "window": { "workDoneProgress": true } },
            "initializationOptions": options(dir, cpu_slots),
            "workspaceFolders": [{ "uri": root, "name": "ws" }],
        }),
    )
    .await;
    c.notify("initialized", json!({})).await;
    c
}

async fn launch(c: &TestClient, t: &Path) -> String {
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.launchRun", "arguments": [{ "folder": t }] }),
        )
        .await;
    format!("aisci-job-{}", r["job"])
}

async fn lenses(c: &TestClient, t: &Path) -> Vec<String> {
    let l = c
        .request(
            "textDocument/codeLens",
            json!({ "textDocument": { "uri": file_uri(&t.join("experiment.py")) } }),
        )
        .await;
    l.as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| l["command"]["title"].as_str().unwrap().to_owned())
        .collect()
}

/// Polls the lenses until one satisfies `pred`.
async fn lens_when(c: &TestClient, t: &Path, what: &str, pred: impl Fn(&str) -> bool) -> String {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        let titles = lenses(c, t).await;
        if let Some(found) = titles.iter().find(|l| pred(l)) {
            return found.clone();
        }
        assert!(Instant::now() < deadline, "no lens {what}: {titles:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn list(c: &TestClient, folder: Option<&Path>) -> Vec<Value> {
    let args = match folder {
        Some(f) => json!([{ "folder": f }]),
        None => json!([]),
    };
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.listRuns", "arguments": args }),
        )
        .await;
    r["runs"].as_array().unwrap().clone()
}

/// Waits until `<dir>/aisci_run.json` satisfies `pred`.
async fn record_when(dir: &Path, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let rec: Option<Value> = std::fs::read_to_string(dir.join("aisci_run.json"))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok());
        if let Some(r) = rec.filter(|r| pred(r)) {
            return r;
        }
        assert!(
            Instant::now() < deadline,
            "record in {} never got there",
            dir.display()
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

async fn ended(c: &TestClient, token: &str) -> Value {
    c.wait_for("progress end", 20, |m| {
        m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_launched_run_is_followed_by_its_lens_and_the_run_list() {
    let _turn = run_queue::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    let t = folder(&ws, "bare", GATED);
    let c = start(&ws, 4).await;
    c.open(&file_uri(&t.join("experiment.py")), "python", GATED).await;

    let token = launch(&c, &t).await;
    let running = lens_when(&c, &t, "running", |l| l.starts_with("run_1 ⏳ running ")).await;
    assert!(running.ends_with("(CPU)"), "{running}");
    let runs = list(&c, None).await;
    assert_eq!(runs.len(), 1, "{runs:#?}");
    let r = &runs[0];
    assert_eq!(
        (r["run"].as_u64(), r["state"].as_str()),
        (Some(1), Some("running")),
        "{r:#}"
    );
    assert_eq!(r["place"], "CPU");
    assert_eq!(r["watched"], true);
    assert_eq!(r["folder"], t.to_str().unwrap());
    assert_eq!(r["stdout"], t.join("run_1/stdout.txt").to_str().unwrap());
    assert!(
        r["title"].as_str().unwrap().starts_with("run_1 ⏳ running"),
        "{r:#}"
    );
    // The record on disk says so too (written by its own task, a moment later).
    let rec = record_when(&t.join("run_1"), |r| r["state"] == "running").await;
    assert_eq!(rec["gpu"], "");

    std::fs::write(t.join("go"), "").unwrap();
    ended(&c, &token).await;
    let done = lens_when(&c, &t, "done", |l| l.starts_with("run_1 ✓")).await;
    assert_eq!(done, "run_1 ✓ acc 0.5");
    assert!(!lenses(&c, &t).await.iter().any(|l| l.contains("running")));
    let runs = list(&c, Some(&t)).await;
    let r = &runs[0];
    assert_eq!(r["state"], "done");
    assert_eq!(r["exit"]["kind"], "success");
    assert_eq!(r["completed"], true);
    assert_eq!(r["watched"], false);
    assert!(r["elapsed_secs"].as_f64().unwrap() > 0.0, "{r:#}");
    let log = std::fs::read_to_string(r["stdout"].as_str().unwrap()).unwrap();
    assert!(log.contains("waiting"), "{log}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_run_waiting_for_a_slot_shows_queued_then_runs() {
    let _turn = run_queue::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    // One CPU slot: b waits for a.
    let a = folder(&ws, "a", GATED);
    let b = folder(&ws, "b", GATED.replace("'go'", "'../go'").as_str());
    let c = start(&ws, 1).await;
    let ta = launch(&c, &a).await;
    lens_when(&c, &a, "a running", |l| l.starts_with("run_1 ⏳ running")).await;
    let tb = launch(&c, &b).await;
    let queued = lens_when(&c, &b, "b queued", |l| l.contains("queued")).await;
    assert_eq!(queued, "run_1 ⏸ queued (0 ahead)");
    // Recorded from the moment it is queued.
    let rec = record_when(&b.join("run_1"), |r| r["queued_ahead"] == 0).await;
    assert_eq!(rec["state"], "queued", "{rec:#}");
    let states: Vec<(String, String)> = list(&c, None)
        .await
        .iter()
        .map(|r| {
            (
                r["folder"].as_str().unwrap().to_owned(),
                r["state"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    assert!(
        states.contains(&(a.display().to_string(), "running".into())),
        "{states:?}"
    );
    assert!(
        states.contains(&(b.display().to_string(), "queued".into())),
        "{states:?}"
    );

    std::fs::write(a.join("go"), "").unwrap();
    ended(&c, &ta).await;
    lens_when(&c, &b, "b running", |l| l.starts_with("run_1 ⏳ running")).await;
    std::fs::write(ws.join("go"), "").unwrap();
    ended(&c, &tb).await;
    lens_when(&c, &b, "b done", |l| l.starts_with("run_1 ✓")).await;
}

/// Prints about 30 MB as fast as it can, in numbered lines.
const FLOOD: &str = "import os, sys\nout = sys.argv[1].split('=')[1]\nos.makedirs(out, exist_ok=True)\nline = 'x' * 90\nw = sys.stdout.write\nfor i in range(300000):\n    w(f'{i:08d} {line}\\n')\nsys.stdout.flush()\nsys.stderr.write('the end\\n')\n";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_output_reaches_the_editor_throttled_and_bounded() {
    let _turn = run_queue::exclusive().await;
    let dir = tempfile::tempdir().unwrap();
    let ws = dir.path().canonicalize().unwrap();
    let t = folder(&ws, "flood", FLOOD);
    let c = start(&ws, 3).await;
    let began = Instant::now();
    let token = launch(&c, &t).await;
    ended(&c, &token).await;
    let took = began.elapsed().as_secs_f64();
    // The last chunk may come up to one period after the end.
    tokio::time::sleep(Duration::from_millis(400)).await;
    let mine: Vec<Value> = c
        .messages("aisci/runOutput")
        .into_iter()
        .filter(|m| m["params"]["folder"] == t.to_str().unwrap())
        .map(|m| m["params"].clone())
        .collect();
    let out: Vec<&Value> = mine.iter().filter(|p| p["stream"] == "stdout").collect();
    let err: Vec<&Value> = mine.iter().filter(|p| p["stream"] == "stderr").collect();
    assert!(!out.is_empty(), "no stdout notifications");
    // At most 10 per second per stream (+1 for the partial periods at both ends).
    let bound = (took * 10.0).ceil() as usize + 2;
    assert!(
        out.len() <= bound,
        "{} stdout notifications in {took:.1} s",
        out.len()
    );
    let max = 8 * 1024 + 64;
    for p in &mine {
        assert!(
            p["text"].as_str().unwrap().len() <= max,
            "a notification of {} bytes",
            p["text"].as_str().unwrap().len()
        );
        assert_eq!(p["run"], 1);
    }
    let total: u64 = out.iter().map(|p| p["text"].as_str().unwrap().len() as u64).sum();
    assert!(
        total < 30_000_000 / 10,
        "the flood was not cut: {total} bytes sent"
    );
    assert!(
        out.iter().any(|p| p["skipped"].as_u64().unwrap() > 0
            && p["text"].as_str().unwrap().contains("bytes skipped …]")),
        "no skip marker"
    );
    // Its beginning and its end arrive.
    assert!(
        out[0]["text"].as_str().unwrap().starts_with("00000000 xxx"),
        "{}",
        out[0]["text"]
    );
    assert!(out.last().unwrap()["text"]
        .as_str()
        .unwrap()
        .contains("00299999 "));
    assert_eq!(
        err.iter()
            .map(|p| p["text"].as_str().unwrap())
            .collect::<String>(),
        "the end\n"
    );
}
