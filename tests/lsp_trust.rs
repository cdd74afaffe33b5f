//! The trust prompt: a folder whose `aisci.toml` or latexmkrc was passed over because it
//! is not trusted is asked about once (`window/showMessageRequest`); trusting it records
//! it in the user config (comments kept) and the next build reads the rc. The server runs
//! as a child process, so the user config it writes is the test's own.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::lsp_client::{file_uri, TestClient};

const USER_CONFIG: &str = "# my own settings\n[llm]\nmodel = \"gpt-4o\" # the usual one\n";

/// `<dir>/idea/latex/template.tex` with a latexmkrc that leaves `<dir>/rc-ran` when read.
fn idea(dir: &Path, aisci_toml: Option<&str>) -> (PathBuf, PathBuf, PathBuf) {
    let idea = dir.join("idea");
    let latex = idea.join("latex");
    std::fs::create_dir_all(&latex).unwrap();
    let tex = latex.join("template.tex");
    std::fs::write(
        &tex,
        "\\documentclass{article}\n\\begin{document}\nHi.\n\\end{document}\n",
    )
    .unwrap();
    let marker = dir.join("rc-ran");
    std::fs::write(
        latex.join("latexmkrc"),
        format!("open(my $f, '>', '{}'); close($f);\n", marker.display()),
    )
    .unwrap();
    if let Some(t) = aisci_toml {
        std::fs::write(idea.join("aisci.toml"), t).unwrap();
    }
    (std::fs::canonicalize(&idea).unwrap(), tex, marker)
}

async fn start(dir: &Path, idea: &Path) -> TestClient {
    let cfg = dir.join("user-config.toml");
    std::fs::write(&cfg, USER_CONFIG).unwrap();
    let c = TestClient::spawn(
        Value::Null,
        &[
            ("AISCI_CONFIG", cfg.as_os_str()),
            ("HOME", dir.as_os_str()),
            ("XDG_CACHE_HOME", dir.join("cache").as_os_str()),
        ],
    );
    c.request(
        "initialize",
        json!({ "capabilities": {}, "workspaceFolders": [{ "uri": file_uri(idea), "name": "idea" }] }),
    )
    .await;
    c
}

async fn build(c: &TestClient, tex: &Path, nth: usize) {
    c.request(
        "workspace/executeCommand",
        json!({ "command": "aisci.buildPaper", "arguments": [{ "tex": tex }] }),
    )
    .await;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(90);
    while c.messages("aisci/pdfBuilt").len() < nth {
        assert!(
            tokio::time::Instant::now() < deadline,
            "build {nth} did not finish"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

fn requests(c: &TestClient) -> Vec<Value> {
    c.messages("window/showMessageRequest")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn trusting_a_folder_records_it_and_the_next_build_reads_its_rc() {
    let dir = tempfile::tempdir().unwrap();
    let (idea, tex, marker) = idea(
        dir.path(),
        Some("[llm]\nbase_url = \"https://proxy.example/v1\"\n"),
    );
    let c = start(dir.path(), &idea).await;
    c.answer_message_requests_with(Some("Trust this folder"));
    c.notify("initialized", json!({})).await;

    let asked = c
        .wait_for("the trust question", 20, |m| {
            m["method"] == "window/showMessageRequest"
        })
        .await;
    let text = asked["params"]["message"].as_str().unwrap();
    assert!(
        text.contains("llm.base_url") && text.contains(&idea.display().to_string()),
        "{text}"
    );
    let titles: Vec<_> = asked["params"]["actions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["title"].clone())
        .collect();
    assert_eq!(titles, [json!("Trust this folder"), json!("Not now")]);
    c.wait_for("the trust confirmation", 20, |m| {
        m["method"] == "window/showMessage"
            && m["params"]["message"]
                .as_str()
                .is_some_and(|s| s.contains("is trusted now"))
    })
    .await;

    let written = std::fs::read_to_string(dir.path().join("user-config.toml")).unwrap();
    assert!(written.contains("# my own settings\n"), "{written}");
    assert!(
        written.contains("model = \"gpt-4o\" # the usual one\n"),
        "{written}"
    );
    let parsed: toml::Table = written.parse().unwrap();
    assert_eq!(
        parsed["trusted_folders"].as_array().unwrap(),
        &vec![toml::Value::String(idea.display().to_string())]
    );

    build(&c, &tex, 1).await;
    assert!(marker.exists(), "the trusted folder's latexmkrc was read");
    let said_ignored = c.messages("window/showMessage").iter().any(|m| {
        m["params"]["message"]
            .as_str()
            .is_some_and(|s| s.contains("was not read"))
    });
    assert!(!said_ignored, "{:?}", c.messages("window/showMessage"));
    assert_eq!(requests(&c).len(), 1);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn not_now_changes_nothing_and_is_not_asked_again() {
    let dir = tempfile::tempdir().unwrap();
    let (idea, tex, marker) = idea(dir.path(), None);
    let c = start(dir.path(), &idea).await;
    c.answer_message_requests_with(Some("Not now"));
    c.notify("initialized", json!({})).await;

    // Nothing in the folder's settings was passed over: the rc of the first build is.
    build(&c, &tex, 1).await;
    let asked = c
        .wait_for("the trust question", 20, |m| {
            m["method"] == "window/showMessageRequest"
        })
        .await;
    assert!(
        asked["params"]["message"].as_str().unwrap().contains("latexmkrc"),
        "{asked}"
    );
    assert!(!marker.exists());

    build(&c, &tex, 2).await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(!marker.exists(), "the rc stays unread");
    assert_eq!(requests(&c).len(), 1, "asked again");
    assert_eq!(
        std::fs::read_to_string(dir.path().join("user-config.toml")).unwrap(),
        USER_CONFIG
    );
}
