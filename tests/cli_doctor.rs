//! `aisci doctor` as a user runs it: the built binary, a user config naming a local model
//! endpoint, a template whose experiment imports a module that does not exist.

use std::path::Path;
use std::process::Stdio;

use crate::support::fake_llm::FakeLlm;

async fn doctor(dir: &Path, config: &str, key: Option<&str>) -> (i32, String) {
    doctor_logged(dir, config, key, None).await
}

async fn doctor_logged(dir: &Path, config: &str, key: Option<&str>, log: Option<&str>) -> (i32, String) {
    let cfg = dir.join("user-config.toml");
    std::fs::write(&cfg, config).unwrap();
    let mut cmd = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"));
    cmd.args(["doctor", "templates"])
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AISCI_CONFIG", &cfg)
        .current_dir(dir)
        .stdin(Stdio::null())
        .kill_on_drop(true);
    if let Some(k) = key {
        cmd.env("OPENAI_API_KEY", k);
    }
    if let Some(l) = log {
        cmd.env("AISCI_LOG", l);
    }
    let out = cmd.output().await.unwrap();
    let text = format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    (out.status.code().unwrap_or(-1), text)
}

fn template(dir: &Path, name: &str, experiment: &str) {
    let t = dir.join("templates").join(name);
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("experiment.py"), experiment).unwrap();
    std::fs::write(
        t.join("prompt.json"),
        r#"{"system": "s", "task_description": "t"}"#,
    )
    .unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn doctor_reports_without_revealing_keys() {
    let dir = tempfile::tempdir().unwrap();
    template(dir.path(), "fine", "import json, os\nimport argparse\n");
    let fake = FakeLlm::start(vec![]).await;
    let config = format!(
        "[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o\"\n\n[literature]\nengines = []\n\n[run]\ngpus = []\n",
        fake.v1()
    );
    let secret = "sk-test-do-not-print-4242";
    let (code, text) = doctor(dir.path(), &config, Some(secret)).await;
    assert!(!text.contains(secret), "the key's value was printed:\n{text}");
    assert!(
        text.contains("✓ model: gpt-4o via openai at http://127.0.0.1:"),
        "{text}"
    );
    assert!(text.contains("key in $OPENAI_API_KEY (set)"), "{text}");
    assert!(text.contains("✓ model endpoint: http://127.0.0.1:"), "{text}");
    assert!(text.contains("✓ template fine: json, os, argparse"), "{text}");
    assert!(text.contains("! GPUs: CPU only"), "{text}");
    for tool in ["pdflatex", "bibtex"] {
        assert!(text.contains(&format!("✓ {tool}: ")), "{tool}: {text}");
    }
    assert_eq!(code, 0, "{text}");

    // A missing key and an experiment that imports what is not installed: exit 1.
    template(dir.path(), "broken", "import numpy_that_does_not_exist_42\n");
    let (code, text) = doctor(dir.path(), &config, None).await;
    assert_eq!(code, 1, "{text}");
    assert!(
        text.contains("✗ model: gpt-4o: missing API key: set the environment variable OPENAI_API_KEY"),
        "{text}"
    );
    assert!(
        text.contains(
            "✗ template broken: python3 cannot import numpy_that_does_not_exist_42 (experiment.py)"
        ),
        "{text}"
    );
}

/// Logs going to a pipe or a file carry no terminal colour codes.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redirected_logs_have_no_colour_codes() {
    let dir = tempfile::tempdir().unwrap();
    template(dir.path(), "fine", "import json\n");
    let fake = FakeLlm::start(vec![]).await;
    let config = format!(
        "[llm]\nprovider = \"openai\"\nbase_url = \"{}\"\nmodel = \"gpt-4o\"\n\n[literature]\nengines = []\n\n[run]\ngpus = []\n",
        fake.v1()
    );
    let (_, text) = doctor_logged(dir.path(), &config, Some("sk-x"), Some("debug")).await;
    assert!(text.contains("DEBUG"), "debug logging was on:\n{text}");
    assert!(
        !text.contains('\u{1b}'),
        "colour codes in a redirected log:\n{text}"
    );
}
