//! The experiment stage through the protocol, in-process: "Run baseline" on a template
//! without `run_0/`, "Implement idea" with a scripted model (edits to the open
//! experiment.py as versioned `workspace/applyEdit`, a failing run's traceback as a
//! diagnostic, run headlines as code lenses), cancelling a sleeping run, and the
//! missing-key error before anything is created. Real `python3` runs the copied
//! stdlib template `templates/tiny_mlp`; the model is a local fake of the OpenAI API.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::{fixtures, tiny_mlp_without_ideas};
use crate::support::lsp_client::{file_uri, TestClient};
use crate::support::run_queue;

const IDEA: &str = "init_scale_regimes";

/// tiny_mlp copied to `<dir>/templates/tiny_mlp` (idea folders go to `<dir>/results/`).
fn template_copy(dir: &Path) -> PathBuf {
    tiny_mlp_without_ideas(&dir.join("templates/tiny_mlp"))
        .canonicalize()
        .unwrap()
}

fn caps() -> Value {
    json!({
        "window": { "workDoneProgress": true, "showDocument": { "support": true } },
        "workspace": {
            "applyEdit": true,
            "workspaceEdit": { "documentChanges": true },
            "codeLens": { "refreshSupport": true }
        }
    })
}

fn options(dir: &Path, llm: Value) -> Value {
    json!({
        "llm": llm,
        "experiment": { "timeout_secs": 30, "max_attempts": 3, "plot_timeout_secs": 30 },
        "literature": { "cache_dir": dir.join("lit-cache") }
    })
}

fn fake_model(fake: &FakeLlm) -> Value {
    json!({ "provider": "vllm", "base_url": fake.v1(), "model": "local-model", "stream": false, "max_retries": 0 })
}

fn completion(text: &str) -> Reply {
    Reply::chat_completion("chatcmpl-exp", text, 1500, 200)
}

fn block(path: &str, search: &str, replace: &str) -> String {
    format!("{path}\n```python\n<<<<<<< SEARCH\n{search}=======\n{replace}>>>>>>> REPLACE\n```\n")
}

const RAISE: &str = "    raise ValueError(\"shapes do not match\")\n";

/// The scripted conversation of a whole stage (`tests/fixtures/experiment/`): run 1
/// widens the layer; run 2 first raises inside `run()`, then is fixed; ALL_COMPLETED;
/// plot; notes.
fn stage_replies() -> Vec<String> {
    let dir = fixtures().join("experiment");
    ["1_wider", "2_failing", "3_fix", "4_done", "5_plot", "6_notes"]
        .iter()
        .map(|n| std::fs::read_to_string(dir.join(format!("{n}.md"))).unwrap())
        .collect()
}

fn progress_of(c: &TestClient, kind: &str) -> Vec<Value> {
    c.messages("$/progress")
        .into_iter()
        .filter(|m| m["params"]["value"]["kind"] == kind)
        .collect()
}

/// Waits for a received message at index `from` or later that satisfies `pred`.
async fn wait_from(
    c: &TestClient,
    from: usize,
    what: &str,
    secs: u64,
    pred: impl Fn(&Value) -> bool,
) -> (usize, Value) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    loop {
        {
            let got = c.received.lock().unwrap();
            if let Some((i, m)) = got.iter().enumerate().skip(from).find(|(_, m)| pred(m)) {
                return (i, m.clone());
            }
        }
        if Instant::now() >= deadline {
            let got = c.received.lock().unwrap().clone();
            panic!(
                "timed out waiting for {what}; received: {}",
                serde_json::to_string_pretty(&got).unwrap()
            );
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn diagnostics_for<'a>(m: &'a Value, uri: &str) -> Option<&'a Vec<Value>> {
    (m["method"] == "textDocument/publishDiagnostics" && m["params"]["uri"] == uri)
        .then(|| m["params"]["diagnostics"].as_array().unwrap())
}

fn mentions(diags: &[Value], text: &str) -> bool {
    diags
        .iter()
        .any(|d| d["message"].as_str().unwrap_or("").contains(text))
}

async fn lens_titles(c: &TestClient, path: &Path) -> Vec<String> {
    let lenses = c
        .request(
            "textDocument/codeLens",
            json!({ "textDocument": { "uri": file_uri(path) } }),
        )
        .await;
    lenses
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .map(|l| l["command"]["title"].as_str().unwrap().to_owned())
        .collect()
}

/// The one idea folder under `<dir>/results/tiny_mlp/`.
fn idea_folder(dir: &Path) -> PathBuf {
    let parent = dir.join("results/tiny_mlp");
    let mut found: Vec<PathBuf> = std::fs::read_dir(&parent)
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(found.len(), 1, "{found:?}");
    found.pop().unwrap()
}

/// Byte offset of an LSP position (UTF-16 columns) in `text`.
fn offset(text: &str, line: u64, character: u64) -> usize {
    let mut start = 0;
    for _ in 0..line {
        match text[start..].find('\n') {
            Some(i) => start += i + 1,
            None => return text.len(),
        }
    }
    let line_text = &text[start..];
    let line_text = &line_text[..line_text.find('\n').unwrap_or(line_text.len())];
    let mut units = 0;
    for (i, ch) in line_text.char_indices() {
        if units >= character {
            return start + i;
        }
        units += ch.len_utf16() as u64;
    }
    start + line_text.len()
}

/// Applies LSP text edits (non-overlapping, as one batch) to `text`.
fn apply_edits(text: &str, edits: &[Value]) -> String {
    let mut spans: Vec<(usize, usize, &str)> = edits
        .iter()
        .map(|e| {
            let r = &e["range"];
            let s = offset(
                text,
                r["start"]["line"].as_u64().unwrap(),
                r["start"]["character"].as_u64().unwrap(),
            );
            let t = offset(
                text,
                r["end"]["line"].as_u64().unwrap(),
                r["end"]["character"].as_u64().unwrap(),
            );
            (s, t, e["newText"].as_str().unwrap())
        })
        .collect();
    spans.sort_by_key(|s| s.0);
    let mut out = text.to_owned();
    for (s, t, new) in spans.into_iter().rev() {
        out.replace_range(s..t, new);
    }
    out
}

/// One `workspace/applyEdit` the editor side applied.
#[derive(Debug, Clone)]
struct Applied {
    version: i64,
    label: String,
    edits: Vec<Value>,
    before: String,
    after: String,
}

/// Plays the editor for one open document: applies each `workspace/applyEdit` aimed
/// at it to its text and reports the change back with `didChange` (the test client
/// itself only answers `{"applied": true}`).
fn play_editor(
    c: Arc<TestClient>,
    uri: String,
    text: String,
    from: usize,
) -> (tokio::task::JoinHandle<()>, Arc<std::sync::Mutex<Vec<Applied>>>) {
    let log: Arc<std::sync::Mutex<Vec<Applied>>> = Default::default();
    let l = log.clone();
    let handle = tokio::spawn(async move {
        let mut seen = from;
        let mut text = text;
        let mut version = 1;
        loop {
            let new: Vec<Value> = {
                let got = c.received.lock().unwrap();
                let new = got[seen.min(got.len())..].to_vec();
                seen = got.len();
                new
            };
            for m in new {
                if m["method"] != "workspace/applyEdit" {
                    continue;
                }
                for change in m["params"]["edit"]["documentChanges"].as_array().unwrap() {
                    if change["textDocument"]["uri"] != uri.as_str() {
                        continue;
                    }
                    let edits = change["edits"].as_array().unwrap().clone();
                    let after = apply_edits(&text, &edits);
                    l.lock().unwrap().push(Applied {
                        version: change["textDocument"]["version"].as_i64().unwrap_or(-1),
                        label: m["params"]["label"].as_str().unwrap_or("").to_owned(),
                        edits,
                        before: text.clone(),
                        after: after.clone(),
                    });
                    text = after;
                    version += 1;
                    c.notify(
                        "textDocument/didChange",
                        json!({
                            "textDocument": { "uri": uri, "version": version },
                            "contentChanges": [{ "text": text }]
                        }),
                    )
                    .await;
                }
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
    });
    (handle, log)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_baseline_makes_run_0_and_clears_its_diagnostic() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    std::fs::remove_dir_all(t.join("run_0")).unwrap();
    let exp = t.join("experiment.py");
    let exp_uri = file_uri(&exp);
    let c = TestClient::start(Value::Null);
    let fake = FakeLlm::start(vec![]).await;
    c.initialize(caps(), options(dir.path(), fake_model(&fake))).await;
    c.open(&exp_uri, "python", &std::fs::read_to_string(&exp).unwrap())
        .await;

    // Before: the missing baseline is said on experiment.py, with a lens and an action.
    let (_, before) = wait_from(&c, 0, "the missing-baseline diagnostic", 5, |m| {
        diagnostics_for(m, &exp_uri).is_some_and(|d| mentions(d, "no baseline yet"))
    })
    .await;
    let d = diagnostics_for(&before, &exp_uri).unwrap();
    assert!(mentions(d, "run_0/final_info.json is missing"), "{d:#?}");
    let titles = lens_titles(&c, &exp).await;
    assert!(titles.iter().any(|t| *t == "Run baseline"), "{titles:?}");
    let actions = c
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": exp_uri },
                "range": { "start": { "line": 0, "character": 0 }, "end": { "line": 0, "character": 0 } },
                "context": { "diagnostics": [] }
            }),
        )
        .await;
    let action = actions
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["command"]["command"] == "aisci.runBaseline")
        .unwrap_or_else(|| panic!("no Run baseline action: {actions:#}"))
        .clone();
    assert!(action["title"].as_str().unwrap().starts_with("Run baseline"));

    // Run it as the editor would: the action's own command.
    let started = Instant::now();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": action["command"]["command"], "arguments": action["command"]["arguments"] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let (end_at, end) = wait_from(&c, 0, "progress end", 10, |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    })
    .await;
    let took = started.elapsed();
    let begin = progress_of(&c, "begin");
    assert_eq!(begin[0]["params"]["value"]["title"], "Run baseline", "{begin:#?}");
    let end_message = end["params"]["value"]["message"].as_str().unwrap();
    assert!(end_message.starts_with("baseline (run_0) ✓"), "{end_message}");
    assert!(t.join("run_0/final_info.json").is_file());
    assert!(t.join("run_0/aisci_run.json").is_file());
    let final_info: Value =
        serde_json::from_str(&std::fs::read_to_string(t.join("run_0/final_info.json")).unwrap()).unwrap();
    assert!(final_info["blobs"]["means"]["final_val_acc_mean"].is_number());

    // After: experiment.py is published again without that diagnostic.
    wait_from(&c, end_at, "experiment.py cleared", 5, |m| {
        diagnostics_for(m, &exp_uri).is_some_and(|d| !mentions(d, "no baseline yet"))
    })
    .await;
    let msg = c
        .wait_for("summary", 5, |m| m["method"] == "window/showMessage")
        .await;
    assert_eq!(msg["params"]["type"], 3, "{msg}");
    assert!(msg["params"]["message"]
        .as_str()
        .unwrap()
        .contains("baseline (run_0) ✓"));
    let titles = lens_titles(&c, &exp).await;
    assert!(!titles.iter().any(|t| *t == "Run baseline"), "{titles:?}");
    assert_eq!(fake.hits(), 0, "the baseline asks no model");
    eprintln!("baseline job: {took:?}");
    assert!(took < Duration::from_secs(8), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn implement_idea_edits_the_open_file_runs_and_shows_results() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    // The first answer waits a little so the editor has opened the file it was shown.
    let mut script: Vec<Reply> = stage_replies().iter().map(|r| completion(r)).collect();
    script[0] = script[0].clone().delayed(Duration::from_millis(700));
    let fake = FakeLlm::start(script).await;
    let c = Arc::new(TestClient::start(Value::Null));
    c.initialize(caps(), options(dir.path(), fake_model(&fake))).await;

    let started = Instant::now();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.implementIdea", "arguments": [{ "template": t, "idea": IDEA }] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let folder = idea_folder(dir.path());
    assert!(folder
        .file_name()
        .unwrap()
        .to_str()
        .unwrap()
        .ends_with(&format!("_{IDEA}")));
    let exp = folder.join("experiment.py");
    let exp_uri = file_uri(&exp);

    // The editor is asked to show the idea folder's experiment.py; it opens it.
    let (shown_at, shown) =
        wait_from(&c, 0, "showDocument", 5, |m| m["method"] == "window/showDocument").await;
    assert_eq!(shown["params"]["uri"], exp_uri.as_str());
    assert_eq!(shown["params"]["takeFocus"], true);
    let original = std::fs::read_to_string(&exp).unwrap();
    c.open(&exp_uri, "python", &original).await;
    let (editor, applied) = play_editor(c.clone(), exp_uri.clone(), original.clone(), shown_at);

    // The failed run 2: an Error at the raise, with the exception.
    let (error_at, error) = wait_from(&c, 0, "the traceback diagnostic", 15, |m| {
        diagnostics_for(m, &exp_uri).is_some_and(|d| mentions(d, "ValueError: shapes do not match"))
    })
    .await;
    // (The fix may already be in: take the buffer as the failing edit left it.)
    let buffer_then = applied
        .lock()
        .unwrap()
        .iter()
        .find(|a| a.after.contains(RAISE))
        .expect("the failing edit reached the buffer")
        .after
        .clone();
    let raise_line = buffer_then
        .lines()
        .position(|l| l.contains("raise ValueError(\"shapes do not match\")"))
        .expect("the raise is in the buffer") as u64;
    let diags = diagnostics_for(&error, &exp_uri).unwrap();
    let err = diags
        .iter()
        .find(|d| d["severity"] == 1)
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(err["range"]["start"]["line"], raise_line, "{diags:#?}");
    assert_eq!(
        err["range"]["start"]["character"], 4,
        "the span skips indentation"
    );
    assert_eq!(
        err["message"], "ValueError: shapes do not match (run_2, attempt 1)",
        "{diags:#?}"
    );
    // The callers in experiment.py say they led to it.
    assert!(
        diags
            .iter()
            .any(|d| d["severity"] == 3 && mentions(std::slice::from_ref(d), "run_2 failed below this call")),
        "{diags:#?}"
    );

    // The fix clears it.
    let (_, cleared) = wait_from(&c, error_at + 1, "the diagnostic cleared", 15, |m| {
        diagnostics_for(m, &exp_uri).is_some_and(|d| !mentions(d, "ValueError"))
    })
    .await;
    assert!(
        diagnostics_for(&cleared, &exp_uri).unwrap().is_empty(),
        "{cleared:#}"
    );

    let (_, end) = wait_from(&c, 0, "progress end", 20, |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    })
    .await;
    let took = started.elapsed();
    editor.abort();
    let begin = progress_of(&c, "begin");
    assert_eq!(begin.len(), 1);
    assert_eq!(begin[0]["params"]["value"]["title"], "Run experiments");
    let reports: Vec<String> = progress_of(&c, "report")
        .iter()
        .filter_map(|m| m["params"]["value"]["message"].as_str().map(str::to_owned))
        .collect();
    assert!(
        reports
            .iter()
            .any(|m| m.starts_with("Experiment: run 2/5, attempt 2/3")),
        "{reports:#?}"
    );
    let end_message = end["params"]["value"]["message"].as_str().unwrap();
    assert!(
        end_message.starts_with("2 run(s) completed (run_1, run_2), 1 failed attempt(s); the model finished (ALL_COMPLETED); plots: summary.png; figure critique skipped: local-model takes no images (set llm.vision = \"yes\" if it does); notes.txt updated."),
        "{end_message}"
    );
    let summary = c
        .wait_for("summary message", 5, |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("run(s) completed")
        })
        .await;
    assert_eq!(summary["params"]["type"], 3, "{summary}");
    let summary = summary["params"]["message"].as_str().unwrap();
    assert!(
        summary.contains("6 model call(s)") && summary.contains("local-model via vllm"),
        "{summary}"
    );

    // The three edits to experiment.py came as versioned applyEdits of the changed lines.
    let applied = applied.lock().unwrap().clone();
    assert_eq!(applied.len(), 3, "{applied:#?}");
    for (i, a) in applied.iter().enumerate() {
        assert_eq!(
            a.version,
            1 + i as i64,
            "edit {i} is against the buffer's version"
        );
        assert_eq!(a.label, format!("aisci: {IDEA}"));
        assert_eq!(a.edits.len(), 1, "one hunk: {a:#?}");
        let expected_base = if i == 0 { &original } else { &applied[i - 1].after };
        assert_eq!(&a.before, expected_base, "edit {i} applies to the previous text");
    }
    let cfg_line = original.lines().position(|l| l.contains("cfg = {")).unwrap() as u64;
    assert_eq!(applied[0].edits[0]["range"]["start"]["line"], cfg_line);
    assert_eq!(applied[0].edits[0]["range"]["end"]["line"], cfg_line + 1);
    assert!(applied[0].after.contains("\"hidden\": 16"));
    assert!(applied[1].after.contains(RAISE));
    assert!(!applied[2].after.contains("raise ValueError(\"shapes"));
    assert!(applied[2].after.contains("init_scale=0.3"));
    // The run read what the buffer held: disk equals the buffer.
    assert_eq!(std::fs::read_to_string(&exp).unwrap(), applied[2].after);

    // Lenses: the completed runs with their headline, then "Run experiments".
    let titles = lens_titles(&c, &exp).await;
    assert_eq!(titles.len(), 3, "{titles:?}");
    assert!(titles[0].starts_with("run_1 ✓ "), "{titles:?}");
    assert!(titles[1].starts_with("run_2 ✓ "), "{titles:?}");
    assert!(titles[1].ends_with("baseline)"), "{titles:?}");
    assert!(titles[2].starts_with("Run experiments (~"), "{titles:?}");

    // On disk: completed runs, their code, the notes in v1's layout.
    for i in [1, 2] {
        assert!(folder.join(format!("run_{i}/final_info.json")).is_file());
        assert!(folder.join(format!("run_{i}.py")).is_file());
    }
    assert!(!folder.join("run_3").exists());
    assert!(std::fs::read_to_string(folder.join("run_1.py"))
        .unwrap()
        .contains("\"hidden\": 16"));
    let notes = std::fs::read_to_string(folder.join("notes.txt")).unwrap();
    assert!(
        notes.starts_with("# Title: Lazy or Rich? How Initialisation Scale Changes What a Tiny MLP Learns\n# Experiment description: "),
        "{notes}"
    );
    assert!(
        notes.contains("## Run 0: Baseline\nResults: {'blobs': "),
        "{notes}"
    );
    assert!(
        notes.contains("## Run 2: init_scale 0.3\nFigure summary.png"),
        "{notes}"
    );
    assert!(folder.join("summary.png").is_file());
    assert_eq!(fake.hits(), 6);
    eprintln!("implement idea job: {took:?}");
    assert!(took < Duration::from_secs(14), "{took:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_kills_a_sleeping_run_and_the_lens_comes_back() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let pid_file = dir.path().join("run.pid");
    let sleepy = format!(
        "Run 1: wait for the data to settle.\n\n{}",
        block(
            "experiment.py",
            "    os.makedirs(args.out_dir, exist_ok=True)\n",
            &format!(
                "    os.makedirs(args.out_dir, exist_ok=True)\n    with open({:?}, \"w\") as f:\n        f.write(str(os.getpid()))\n    time.sleep(30)\n",
                pid_file.display().to_string()
            )
        )
    );
    let fake = FakeLlm::start(vec![completion(&sleepy)]).await;
    let c = TestClient::start(Value::Null);
    c.initialize(caps(), options(dir.path(), fake_model(&fake))).await;
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.implementIdea", "arguments": [{ "template": t, "idea": IDEA }] }),
        )
        .await;
    let job = r["job"].as_u64().unwrap();
    let token = format!("aisci-job-{job}");
    let folder = idea_folder(dir.path());
    let exp = folder.join("experiment.py");

    // The run started and wrote its pid.
    let deadline = Instant::now() + Duration::from_secs(10);
    let pid = loop {
        if let Some(pid) = std::fs::read_to_string(&pid_file)
            .ok()
            .and_then(|s| s.trim().parse::<u32>().ok())
        {
            break pid;
        }
        assert!(Instant::now() < deadline, "the run never wrote its pid");
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert!(alive(pid), "the run is running");
    // While it runs: its status and the cancel lens.
    let lenses = c
        .request(
            "textDocument/codeLens",
            json!({ "textDocument": { "uri": file_uri(&exp) } }),
        )
        .await;
    let titles: Vec<&str> = lenses
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l["command"]["title"].as_str().unwrap())
        .collect();
    assert!(titles.contains(&"Run experiments… (cancel)"), "{titles:?}");
    assert!(
        titles.iter().any(|t| t.starts_with("run_1 ⏳ running ")),
        "{titles:?}"
    );
    assert!(
        !titles.iter().any(|t| t.starts_with("Run experiments (")),
        "{titles:?}"
    );

    // Cancel with the lens's own command.
    let cancel = lenses
        .as_array()
        .unwrap()
        .iter()
        .find(|l| l["command"]["title"] == "Run experiments… (cancel)")
        .unwrap()["command"]
        .clone();
    assert_eq!(cancel["command"], "aisci.cancel");
    let asked = Instant::now();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": cancel["command"], "arguments": cancel["arguments"] }),
        )
        .await;
    assert_eq!(r["cancelled"], json!([job]));
    let (_, end) = wait_from(&c, 0, "progress end", 5, |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    })
    .await;
    let took = asked.elapsed();
    assert!(took < Duration::from_secs(2), "cancel took {took:?}");
    assert!(!alive(pid), "python (pid {pid}) outlived the cancel");
    let end_message = end["params"]["value"]["message"].as_str().unwrap();
    assert!(end_message.contains("cancelled"), "{end_message}");
    assert!(!folder.join("run_1").exists());
    let titles = lens_titles(&c, &exp).await;
    assert_eq!(titles.len(), 1, "{titles:?}");
    assert!(titles[0].starts_with("Run experiments (~"), "{titles:?}");
    assert_eq!(fake.hits(), 1);
    eprintln!("cancel took {took:?}");
}

/// Whether process `pid` exists (`kill -0`).
fn alive(pid: u32) -> bool {
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_missing_key_fails_before_any_idea_folder_is_made() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let fake = FakeLlm::start(vec![]).await;
    let c = TestClient::start(Value::Null);
    let llm = json!({
        "provider": "openai", "base_url": fake.v1(), "model": "gpt-4o-2024-11-20",
        "api_key_env": "AISCI_TEST_EXPERIMENT_KEY_NOT_SET"
    });
    c.initialize(caps(), options(dir.path(), llm)).await;
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.implementIdea", "arguments": [{ "template": t, "idea": IDEA }] }),
        )
        .await;
    let msg = r["error"]["message"].as_str().unwrap_or_else(|| panic!("{r}"));
    assert!(msg.contains("AISCI_TEST_EXPERIMENT_KEY_NOT_SET"), "{msg}");
    assert!(!dir.path().join("results").exists(), "no idea folder");
    assert_eq!(fake.hits(), 0);
    assert!(c.messages("$/progress").is_empty());
    assert!(c.messages("window/showDocument").is_empty());
}

/// Two lines of tiny_mlp's experiment.py far apart (two hunks), and what the review
/// tests' model makes of them.
const STEP: &str = "            model.sgd_step(train_x[i], train_y[i], cfg[\"lr\"])\n";
const STEP_X: &str = "            model.sgd_step(train_x[i], train_y[i], cfg[\"lr\"] * 1.0)\n";
const CFG: &str =
    "    cfg = {\"n_train\": 200, \"n_val\": 200, \"hidden\": 8, \"lr\": 0.01, \"epochs\": 40}\n";
const CFG_16: &str =
    "    cfg = {\"n_train\": 200, \"n_val\": 200, \"hidden\": 16, \"lr\": 0.01, \"epochs\": 40}\n";

/// `edits.review = "experiment"` with a client that reviews proposals itself (the Neovim
/// plugin's way): the model's edit waits as `aisci/editProposed` (the job's progress says
/// so) until `aisci.resolveEdit`; the kept hunk lands in the buffer, the rejected one goes
/// back to the model, and when the model proposes it again it is rejected without asking.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewed_edits_land_only_as_kept_and_a_rejected_change_is_not_asked_again() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let code = std::fs::read_to_string(t.join("experiment.py")).unwrap();
    assert!(
        code.contains(STEP) && code.contains(CFG),
        "the template's lines moved"
    );
    let first = format!(
        "Plan: scale the step and widen the layer.\n\n{}\n{}",
        block("experiment.py", STEP, STEP_X),
        block("experiment.py", CFG, CFG_16)
    );
    let again = format!(
        "Plan: scale the step after all.\n\n{}",
        block("experiment.py", STEP, STEP_X)
    );
    let mut script = vec![
        completion(&first).delayed(Duration::from_millis(700)),
        completion(&again),
        completion("ALL_COMPLETED"),
    ];
    script.extend((0..4).map(|_| completion("Nothing to change.")));
    let fake = FakeLlm::start(script).await;
    let c = Arc::new(TestClient::start(Value::Null));
    let mut caps = caps();
    caps["experimental"] = json!({ "aisciEditReview": true });
    let mut opts = options(dir.path(), fake_model(&fake));
    opts["edits"] = json!({ "review": "experiment" });
    c.initialize(caps, opts).await;

    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.implementIdea", "arguments": [{ "template": t, "idea": IDEA }] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let folder = idea_folder(dir.path());
    let exp = folder.join("experiment.py");
    let exp_uri = file_uri(&exp);
    let (shown_at, _) = wait_from(&c, 0, "showDocument", 5, |m| m["method"] == "window/showDocument").await;
    c.open(&exp_uri, "python", &code).await;
    let (editor, applied) = play_editor(c.clone(), exp_uri.clone(), code.clone(), shown_at);

    let (_, proposed) = wait_from(&c, 0, "the proposal", 10, |m| m["method"] == "aisci/editProposed").await;
    let p = &proposed["params"];
    assert_eq!(p["uri"], exp_uri.as_str(), "{p:#}");
    let hunks = p["hunks"].as_array().unwrap();
    assert_eq!(hunks.len(), 2, "{p:#}");
    assert_eq!(
        hunks[0]["new_lines"],
        json!([STEP_X.trim_end_matches('\n')]),
        "{p:#}"
    );
    assert_eq!(
        hunks[1]["new_lines"],
        json!([CFG_16.trim_end_matches('\n')]),
        "{p:#}"
    );
    assert!(
        applied.lock().unwrap().is_empty(),
        "nothing landed before the review"
    );
    let waiting = progress_of(&c, "report").iter().any(|m| {
        m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.starts_with("Waiting for your review of experiment.py (2 change(s))"))
    });
    assert!(waiting, "the job says it waits");
    let pending = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.pendingEdits", "arguments": [] }),
        )
        .await;
    assert_eq!(pending.as_array().unwrap().len(), 1, "{pending:#}");
    // The file's code actions offer keeping or rejecting it.
    let titles = c.code_action_titles(&exp_uri).await;
    assert!(
        titles.iter().any(|t| *t == "Apply agent edits (2 hunk(s))")
            && titles.iter().any(|t| *t == "Reject agent edits"),
        "{titles:?}"
    );

    // Keep the wider layer, reject the scaled step.
    let answer = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.resolveEdit", "arguments": [{ "id": p["id"], "accept": [1] }] }),
        )
        .await;
    assert_eq!(answer, json!({ "applied": [1], "rejected": [0] }));
    wait_from(&c, 0, "progress end", 30, |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    })
    .await;
    editor.abort();
    let log = applied.lock().unwrap().clone();
    assert_eq!(log.len(), 1, "one edit landed: {log:#?}");
    assert!(
        log[0].after.contains(CFG_16) && !log[0].after.contains(STEP_X),
        "{}",
        log[0].after
    );
    let disk = std::fs::read_to_string(&exp).unwrap();
    assert!(
        disk.contains(CFG_16) && disk.contains(STEP),
        "the file agrees with the buffer"
    );
    let proposals = c.messages("aisci/editProposed");
    assert_eq!(
        proposals.len(),
        1,
        "the change proposed again was not shown again: {proposals:#?}"
    );

    // The model heard what was rejected, then that its repeat was rejected unseen.
    let seen = fake.seen();
    let body = |i: usize| seen[i].body.to_string();
    assert!(body(1).contains("1 of 2 change(s) were kept"), "{}", body(1));
    assert!(
        body(1).contains("* 1.0"),
        "the rejected change is quoted: {}",
        body(1)
    );
    assert!(
        body(2).contains("you had proposed before and the user had rejected already"),
        "{}",
        body(2)
    );
}

/// The same review in VS Code's way: one `workspace/applyEdit` whose changes each carry a
/// change annotation that needs confirmation (its refactor preview, one checkbox per
/// hunk); the user unticks one, the editor applies the other, and the server reads what
/// landed from the buffer.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviewed_edits_in_a_refactor_preview_keep_what_the_user_left_ticked() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let code = std::fs::read_to_string(t.join("experiment.py")).unwrap();
    let first = format!(
        "Plan: scale the step and widen the layer.\n\n{}\n{}",
        block("experiment.py", STEP, STEP_X),
        block("experiment.py", CFG, CFG_16)
    );
    let mut script = vec![
        completion(&first).delayed(Duration::from_millis(700)),
        completion("ALL_COMPLETED"),
    ];
    script.extend((0..4).map(|_| completion("Nothing to change.")));
    let fake = FakeLlm::start(script).await;
    let c = Arc::new(TestClient::start(Value::Null));
    let mut caps = caps();
    caps["workspace"]["workspaceEdit"]["changeAnnotationSupport"] = json!({ "groupsOnLabel": true });
    let mut opts = options(dir.path(), fake_model(&fake));
    opts["edits"] = json!({ "review": "all" });
    c.initialize(caps, opts).await;
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.implementIdea", "arguments": [{ "template": t, "idea": IDEA }] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let folder = idea_folder(dir.path());
    let exp = folder.join("experiment.py");
    let exp_uri = file_uri(&exp);
    wait_from(&c, 0, "showDocument", 5, |m| m["method"] == "window/showDocument").await;
    c.open(&exp_uri, "python", &code).await;

    let (_, edit) = wait_from(&c, 0, "the annotated applyEdit", 10, |m| {
        m["method"] == "workspace/applyEdit"
    })
    .await;
    let we = &edit["params"]["edit"];
    let annotations = we["changeAnnotations"].as_object().expect("change annotations");
    assert_eq!(annotations.len(), 2, "{we:#}");
    assert!(
        annotations.values().all(|a| a["needsConfirmation"] == true),
        "{we:#}"
    );
    let edits = we["documentChanges"][0]["edits"].as_array().unwrap();
    assert!(edits.iter().all(|e| e["annotationId"].is_string()), "{we:#}");
    // The user unticks the scaled step: only the wider layer lands.
    c.notify(
        "textDocument/didChange",
        json!({ "textDocument": { "uri": exp_uri, "version": 2 }, "contentChanges": [{ "text": code.replace(CFG, CFG_16) }] }),
    )
    .await;
    wait_from(&c, 0, "progress end", 30, |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    })
    .await;
    let disk = std::fs::read_to_string(&exp).unwrap();
    assert!(
        disk.contains(CFG_16) && disk.contains(STEP),
        "the file is what the preview let through"
    );
    let seen = fake.seen();
    let next = seen[1].body.to_string();
    assert!(
        next.contains("1 of 2 change(s) were kept") && next.contains("* 1.0"),
        "{next}"
    );
}

/// Cancelling the job while its edit waits for review ends the wait: the proposal is
/// withdrawn (`aisci/editResolved` "cancelled"), nothing lands, and the job ends.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn cancelling_a_job_that_waits_for_review_withdraws_its_proposal() {
    let _queue = run_queue::shared().await;
    let dir = tempfile::tempdir().unwrap();
    let t = template_copy(dir.path());
    let code = std::fs::read_to_string(t.join("experiment.py")).unwrap();
    let first = reply_text_1_wider();
    let fake = FakeLlm::start(vec![completion(&first).delayed(Duration::from_millis(700))]).await;
    let c = Arc::new(TestClient::start(Value::Null));
    let mut caps = caps();
    caps["experimental"] = json!({ "aisciEditReview": true });
    let mut opts = options(dir.path(), fake_model(&fake));
    opts["edits"] = json!({ "review": "experiment" });
    c.initialize(caps, opts).await;
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.implementIdea", "arguments": [{ "template": t, "idea": IDEA }] }),
        )
        .await;
    let job = r["job"].clone();
    let token = format!("aisci-job-{job}");
    let folder = idea_folder(dir.path());
    let exp = folder.join("experiment.py");
    wait_from(&c, 0, "showDocument", 5, |m| m["method"] == "window/showDocument").await;
    c.open(&file_uri(&exp), "python", &code).await;
    let (_, proposed) = wait_from(&c, 0, "the proposal", 10, |m| m["method"] == "aisci/editProposed").await;
    let id = proposed["params"]["id"].clone();

    c.request(
        "workspace/executeCommand",
        json!({ "command": "aisci.cancel", "arguments": [job] }),
    )
    .await;
    let (_, resolved) = wait_from(&c, 0, "the withdrawal", 10, |m| {
        m["method"] == "aisci/editResolved"
    })
    .await;
    assert_eq!(resolved["params"], json!({ "id": id, "reason": "cancelled" }));
    wait_from(&c, 0, "progress end", 10, |m| {
        m["method"] == "$/progress"
            && m["params"]["token"] == token.as_str()
            && m["params"]["value"]["kind"] == "end"
    })
    .await;
    assert_eq!(std::fs::read_to_string(&exp).unwrap(), code, "nothing landed");
    let pending = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.pendingEdits", "arguments": [] }),
        )
        .await;
    assert_eq!(pending, json!([]));
    assert!(c.messages("workspace/applyEdit").is_empty(), "no edit was sent");
}

fn reply_text_1_wider() -> String {
    std::fs::read_to_string(fixtures().join("experiment/1_wider.md")).unwrap()
}
