//! env.json facts on this machine (no GPU needed: a CPU-only run records `gpus: []`).

use aisci::runner::facts;

#[tokio::test]
async fn env_json_on_a_cpu_run() {
    let dir = tempfile::tempdir().unwrap();
    let f = facts::collect("python3", Some("")).await;
    facts::write(dir.path(), &f).unwrap();
    let text = std::fs::read_to_string(dir.path().join(facts::ENV_FILE)).unwrap();
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let version = v["python"]["version"].as_str().expect("python version recorded");
    assert!(version.starts_with('3'), "{version}");
    assert!(v["python"]["executable"].as_str().is_some());
    assert_eq!(v["gpus"], serde_json::json!([]));
    assert_eq!(v["cuda_visible_devices"], "");
    assert_eq!(v["python_command"], "python3");
    // Packages the interpreter lacks are null, not errors.
    for pkg in ["torch", "numpy"] {
        assert!(v["python"][pkg].is_null() || v["python"][pkg].is_string());
    }
    assert!(v["cpu_model"].is_string() || v["cpu_model"].is_null());
    assert!(v["hostname"].is_string());
    // No temporary file left behind.
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1);
}
