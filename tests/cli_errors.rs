//! How the terminal reports a failure: the final error once, on one line, naming the
//! endpoint's origin (scheme, host, port), whatever chain of causes it came from.

use std::path::Path;
use std::process::{Output, Stdio};
use std::time::Duration;

use crate::support::fs::tiny_mlp_without_ideas;

/// Runs `aisci ideas` with a user config whose model endpoint is `base_url`, no retries.
async fn ideas_against(dir: &Path, base_url: &str) -> Output {
    let t = tiny_mlp_without_ideas(&dir.join("tiny_mlp"));
    let cfg = dir.join("user-config.toml");
    std::fs::write(
        &cfg,
        format!("[llm]\nmodel = \"gpt-4o\"\nbase_url = \"{base_url}\"\nmax_retries = 0\n"),
    )
    .unwrap();
    let child = tokio::process::Command::new(env!("CARGO_BIN_EXE_aisci"))
        .args(["ideas", "-n", "1", "--template"])
        .arg(&t)
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", dir)
        .env("AISCI_CONFIG", &cfg)
        .env("OPENAI_API_KEY", "sk-test")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    tokio::time::timeout(Duration::from_secs(30), child.wait_with_output())
        .await
        .expect("aisci ideas finished within 30 s")
        .unwrap()
}

fn assert_said_once(out: &Output, origin: &str, cause: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert_eq!(stderr.matches("idea generation stopped").count(), 1, "{stderr}");
    assert_eq!(stderr.matches(cause).count(), 1, "{stderr}");
    assert_eq!(stderr.matches(origin).count(), 1, "{stderr}");
    // The path of the endpoint is not shown, only its origin.
    assert!(!stderr.contains("/v1"), "{stderr}");
}

#[tokio::test]
async fn an_unresolvable_endpoint_is_reported_once() {
    let dir = tempfile::tempdir().unwrap();
    let out = ideas_against(dir.path(), "http://nonexistent.invalid:9/v1").await;
    assert_said_once(&out, "http://nonexistent.invalid:9", "dns error");
}

#[tokio::test]
async fn a_refused_connection_is_reported_once() {
    // A port nobody listens on: bound, then released.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let origin = format!("http://127.0.0.1:{port}");
    let out = ideas_against(dir.path(), &format!("{origin}/v1")).await;
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.matches("idea generation stopped").count(), 1, "{stderr}");
    assert_eq!(stderr.matches(&origin).count(), 1, "{stderr}");
}
