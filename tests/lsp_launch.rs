//! "Launch run" on an experiment.py: the buffer is saved, the next run_i runs through
//! the queue, its record and env.json are written, a failure becomes a diagnostic.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};

use crate::support::lsp_client::{file_uri, TestClient};
use crate::support::run_queue;

const OK_SCRIPT: &str = "import argparse, json, os\n\np = argparse.ArgumentParser()\np.add_argument('--out_dir', default='run_0')\nargs = p.parse_args()\nos.makedirs(args.out_dir, exist_ok=True)\nACC = 0.5\nwith open(os.path.join(args.out_dir, 'final_info.json'), 'w') as f:\n    json.dump({'toy': {'means': {'acc': ACC}}}, f)\n";

fn folder(dir: &Path, script: &str) -> PathBuf {
    let t = dir.join("exp");
    std::fs::create_dir_all(t.join("run_0")).unwrap();
    std::fs::write(t.join("experiment.py"), script).unwrap();
    std::fs::write(
        t.join("prompt.json"),
        r#"{"system": "s", "task_description": "t"}"#,
    )
    .unwrap();
    std::fs::write(
        t.join("run_0/final_info.json"),
        r#"{"toy": {"means": {"acc": 0.4}}}"#,
    )
    .unwrap();
    t
}

fn options(dir: &Path) -> Value {
    json!({ "run": { "gpus": [] }, "literature": { "cache_dir": dir.join("cache") } })
}

async fn launch(c: &TestClient, t: &Path) -> Value {
    let uri = file_uri(&t.join("experiment.py"));
    let range = json!({ "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } });
    let actions = c
        .request(
            "textDocument/codeAction",
            json!({ "textDocument": { "uri": uri }, "range": range, "context": { "diagnostics": [] } }),
        )
        .await;
    let action = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["command"]["command"] == "aisci.launchRun")
        .unwrap_or_else(|| panic!("no Launch run action: {actions}"))
        .clone();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.launchRun", "arguments": action["command"]["arguments"] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    c.wait_for("progress end", 20, |m| {
        m["params"]["token"] == token.as_str() && m["params"]["value"]["kind"] == "end"
    })
    .await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn launch_saves_the_buffer_and_records_the_run() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = folder(dir.path(), OK_SCRIPT);
    let c = TestClient::start(Value::Null);
    c.initialize(
        json!({ "window": { "workDoneProgress": true } }),
        options(dir.path()),
    )
    .await;
    // Unsaved in the editor: the run must use this text.
    let edited = OK_SCRIPT.replace("ACC = 0.5", "ACC = 0.6");
    c.open(&file_uri(&t.join("experiment.py")), "python", &edited)
        .await;
    let end = launch(&c, &t).await;
    let msg = end["params"]["value"]["message"].as_str().unwrap();
    assert!(msg.starts_with("run_1 ✓ acc 0.6 (+50% vs baseline)"), "{msg}");
    assert_eq!(
        std::fs::read_to_string(t.join("experiment.py")).unwrap(),
        edited,
        "the buffer was saved first"
    );
    let fi: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("run_1/final_info.json")).unwrap()).unwrap();
    assert_eq!(fi["toy"]["means"]["acc"], 0.6);
    let record: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("run_1/aisci_run.json")).unwrap()).unwrap();
    assert_eq!(record["completed"], true);
    let env: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("run_1/env.json")).unwrap()).unwrap();
    assert_eq!(env["gpus"], json!([]));
    // The next launch takes the next number.
    launch(&c, &t).await;
    assert!(t.join("run_2/final_info.json").exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_launch_points_at_the_failing_line() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let script = OK_SCRIPT.replace("ACC = 0.5\n", "ACC = 0.5\nraise ValueError('bad shape')\n");
    let t = folder(dir.path(), &script);
    let c = TestClient::start(Value::Null);
    c.initialize(
        json!({ "window": { "workDoneProgress": true } }),
        options(dir.path()),
    )
    .await;
    let uri = file_uri(&t.join("experiment.py"));
    c.open(&uri, "python", &script).await;
    let end = launch(&c, &t).await;
    let msg = end["params"]["value"]["message"].as_str().unwrap();
    assert!(msg.starts_with("run_1 ✗ ValueError: bad shape"), "{msg}");
    let raise_line = script.lines().position(|l| l.starts_with("raise")).unwrap() as u64;
    let d = c
        .wait_for("the traceback diagnostic", 10, |m| {
            m["method"] == "textDocument/publishDiagnostics"
                && m["params"]["uri"] == uri.as_str()
                && m["params"]["diagnostics"]
                    .as_array()
                    .is_some_and(|a| a.iter().any(|d| d["severity"] == 1))
        })
        .await;
    let err = d["params"]["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .find(|d| d["severity"] == 1)
        .unwrap()
        .clone();
    assert_eq!(err["range"]["start"]["line"], raise_line, "{err}");
    assert!(
        err["message"]
            .as_str()
            .unwrap()
            .contains("ValueError: bad shape (run_1, attempt 1)"),
        "{err}"
    );
}
