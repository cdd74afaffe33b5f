//! Runs from a real editor: headless Neovim with the plugin in `editors/nvim` launches a
//! run of a template's experiment.py (real `python3`, a script that runs until stopped),
//! sees its lens say it runs, lists it with `:AisciRuns`, follows its output with
//! `:AisciRunOutput`, and cancels it with `:AisciCancel`: the run's process is gone and
//! its record says it was cancelled. The editor side is `tests/nvim/runs.lua`.

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fs::copy_tiny_mlp;
use crate::support::nvim::{plugin_dir, server_bin, Finished, NvimRun};

/// Writes its pid, then prints a tick every 50 ms for a minute.
const FOREVER: &str = "import os, sys, time\nout = sys.argv[1].split('=')[1]\nos.makedirs(out, exist_ok=True)\nopen('run.pid', 'w').write(str(os.getpid()))\nfor i in range(1200):\n    print(f'tick {i}', flush=True)\n    time.sleep(0.05)\n";

fn alive(pid: i32) -> bool {
    // A zombie (exited, not yet reaped) has an empty cmdline.
    std::fs::read(format!("/proc/{pid}/cmdline")).is_ok_and(|c| !c.is_empty())
}

/// Runs `tests/nvim/runs.lua` on a template whose experiment.py runs until stopped;
/// returns the report and the template (in the temp folder kept alive by the caller).
async fn run_nvim() -> (Value, std::path::PathBuf, tempfile::TempDir) {
    let tmp = tempfile::tempdir().unwrap();
    let tmp_path = tmp.path().canonicalize().unwrap();
    let template = tmp_path.join("tiny_mlp");
    copy_tiny_mlp(&template);
    std::fs::write(template.join("experiment.py"), FOREVER).unwrap();
    let report_path = tmp_path.join("report.json");
    let settings = json!({
        "run": { "gpus": [] },
        "experiment": { "timeout_secs": 120 },
        "literature": { "cache_dir": tmp_path.join("lit-cache") },
    });
    let Finished { report, .. } = NvimRun {
        script: "runs.lua",
        args: vec![
            plugin_dir().into(),
            server_bin().into(),
            template.clone().into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: &tmp_path,
        report: &report_path,
        who: "Neovim".into(),
        name: "nvim runs".into(),
        env: vec![],
        env_remove: &[],
    }
    .run()
    .await;
    (report, template, tmp)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_launches_lists_and_cancels_a_run() {
    let (r, template, _tmp) = run_nvim().await;
    let running = r["running_lens"].as_str().unwrap();
    assert!(
        running.starts_with("run_1 ⏳ running ") && running.ends_with("(CPU)"),
        "{running}"
    );

    // :AisciRuns: the run, opening its stdout.txt.
    let qf = r["quickfix"].as_array().unwrap();
    assert_eq!(qf.len(), 1, "{qf:#?}");
    assert_eq!(qf[0]["file"], template.join("run_1/stdout.txt").to_str().unwrap());
    assert!(
        qf[0]["text"].as_str().unwrap().starts_with("run_1 ⏳ running"),
        "{qf:#?}"
    );
    assert!(r["output_buffer"].as_str().unwrap().ends_with("/run_1/output"));

    // Cancelled: the process is gone, the record says so, and the lens too.
    let end = r["end_message"].as_str().unwrap();
    assert!(end.contains("cancelled"), "{end}");
    let pid: i32 = std::fs::read_to_string(template.join("run.pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while alive(pid) {
        assert!(
            Instant::now() < deadline,
            "the run (pid {pid}) survived the cancel"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let rec: Value =
        serde_json::from_str(&std::fs::read_to_string(template.join("run_1/aisci_run.json")).unwrap())
            .unwrap();
    assert_eq!(rec["state"], "done", "{rec:#}");
    assert_eq!(rec["exit"]["kind"], "cancelled", "{rec:#}");
    assert_eq!(rec["error"], "cancelled");
    assert!(
        r["ended_lens"].as_str().unwrap().starts_with("run_1 ✗ cancelled"),
        "{r:#}"
    );
    let printed = std::fs::read_to_string(template.join("run_1/stdout.txt")).unwrap();
    assert!(printed.contains("tick 0"), "{printed}");
    assert!(!Path::new(&template.join("run_2")).exists());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_shows_a_runs_live_output() {
    let (r, _template, _tmp) = run_nvim().await;
    assert!(r["output_buffer"].as_str().unwrap().ends_with("/run_1/output"));
    let shown: Vec<&str> = r["output_lines"]
        .as_array()
        .unwrap()
        .iter()
        .map(|l| l.as_str().unwrap())
        .collect();
    assert!(shown.contains(&"tick 5"), "live output in the buffer: {shown:?}");
}
