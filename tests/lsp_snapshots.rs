//! Snapshot tests of what documents show: code lenses, code actions, hovers and
//! diagnostics. Each fixture in `fixtures/snapshots/<name>.txt` is a small project
//! written as files (`//- path` starts a file; `$0` marks the cursor in the file opened,
//! the first one); what the server answers there is rendered as text and compared with
//! `fixtures/snapshots/<name>.snap`. After a deliberate change, `UPDATE_EXPECT=1 cargo
//! test -p aisci --test e2e -- lsp_snapshots::` rewrites the snapshots; review the diff.

use std::path::Path;
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fs::fixtures;
use crate::support::lsp_client::{file_uri, TestClient};

struct Fixture {
    files: Vec<(String, String)>,
    /// In the first file: (line, UTF-16 column) of `$0`.
    cursor: (u32, u32),
}

fn read_fixture(text: &str) -> Fixture {
    let mut files: Vec<(String, String)> = Vec::new();
    for line in text.split_inclusive('\n') {
        if let Some(path) = line.strip_prefix("//- ") {
            files.push((path.trim().to_string(), String::new()));
        } else if let Some((_, body)) = files.last_mut() {
            body.push_str(line);
        }
    }
    let (_, first) = files.first_mut().expect("a fixture has at least one file");
    let at = first.find("$0").expect("the first file marks the cursor with $0");
    let before = &first[..at];
    let line = before.matches('\n').count() as u32;
    let col = before[before.rfind('\n').map_or(0, |i| i + 1)..]
        .encode_utf16()
        .count() as u32;
    first.replace_range(at..at + 2, "");
    Fixture {
        files,
        cursor: (line, col),
    }
}

/// The answers, with the temporary folder written as `$DIR`.
fn render(dir: &Path, lenses: &Value, actions: &Value, hover: &Value, diags: &Value) -> String {
    let mut out = String::from("## code lenses\n");
    for l in lenses.as_array().into_iter().flatten() {
        let c = &l["command"];
        out.push_str(&format!(
            "{}: {} -> {} {}\n",
            l["range"]["start"]["line"], c["title"], c["command"], c["arguments"]
        ));
    }
    out.push_str("## code actions\n");
    for a in actions.as_array().into_iter().flatten() {
        let cmd = if a["command"].is_object() {
            &a["command"]
        } else {
            a
        };
        out.push_str(&format!(
            "[{}] {} -> {} {}\n",
            a["kind"].as_str().unwrap_or("-"),
            a["title"],
            cmd["command"],
            cmd["arguments"]
        ));
    }
    out.push_str("## hover\n");
    match hover["contents"]["value"].as_str() {
        Some(v) => {
            out.push_str(v.trim_end());
            out.push('\n');
        }
        None => out.push_str("none\n"),
    }
    out.push_str("## diagnostics\n");
    for d in diags.as_array().into_iter().flatten() {
        out.push_str(&format!(
            "{}:{}-{}:{} [{}] {}\n",
            d["range"]["start"]["line"],
            d["range"]["start"]["character"],
            d["range"]["end"]["line"],
            d["range"]["end"]["character"],
            d["severity"],
            d["message"].as_str().unwrap_or_default()
        ));
    }
    let dir = dir.canonicalize().unwrap();
    out.replace(&dir.display().to_string(), "$DIR")
}

async fn check(name: &str) {
    let text = std::fs::read_to_string(fixtures().join(format!("snapshots/{name}.txt"))).unwrap();
    let fx = read_fixture(&text);
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().canonicalize().unwrap();
    for (path, body) in &fx.files {
        let p = dir.join(path);
        std::fs::create_dir_all(p.parent().unwrap()).unwrap();
        std::fs::write(&p, body).unwrap();
    }
    let (first, body) = &fx.files[0];
    let path = dir.join(first);
    let uri = file_uri(&path);
    let language = match path.extension().and_then(|e| e.to_str()) {
        Some("py") => "python",
        Some("tex") => "latex",
        Some("json") => "json",
        _ => "plaintext",
    };
    let c = TestClient::start(Value::Null);
    c.initialize(json!({}), json!({ "latex": { "build_on_save": false } }))
        .await;
    c.notify("initialized", json!({})).await;
    c.open(&uri, language, body).await;
    let at = json!({ "line": fx.cursor.0, "character": fx.cursor.1 });
    // Checks settle after their debounce (a clean file may get no publish at all); the
    // last publish is the one shown.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let diags = c
        .messages("textDocument/publishDiagnostics")
        .into_iter()
        .rfind(|m| m["params"]["uri"] == uri)
        .unwrap_or(Value::Null);
    let lenses = c
        .request("textDocument/codeLens", json!({ "textDocument": { "uri": uri } }))
        .await;
    let actions = c
        .request(
            "textDocument/codeAction",
            json!({
                "textDocument": { "uri": uri },
                "range": { "start": at, "end": at },
                "context": { "diagnostics": [] }
            }),
        )
        .await;
    let hover = c
        .request(
            "textDocument/hover",
            json!({ "textDocument": { "uri": uri }, "position": at }),
        )
        .await;
    let got = render(&dir, &lenses, &actions, &hover, &diags["params"]["diagnostics"]);
    expect_test::expect_file![fixtures().join(format!("snapshots/{name}.snap"))].assert_eq(&got);
}

#[tokio::test]
async fn template_experiment_py() {
    check("template_experiment").await;
}

#[tokio::test]
async fn ideas_json_with_a_verdict() {
    check("ideas_json").await;
}

#[tokio::test]
async fn paper_with_two_results_sections() {
    check("paper_two_results").await;
}

#[tokio::test]
async fn paper_with_a_review() {
    check("paper_with_review").await;
}
