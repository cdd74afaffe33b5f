//! `aisci run` as a user runs it: the built binary on a copy of `templates/tiny_mlp`
//! (real `python3`), with an empty user config named by `AISCI_CONFIG`.

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::{Duration, Instant};

use crate::support::fs::copy_tiny_mlp;

/// tiny_mlp without its run folders, in `<dir>/exp`.
fn tiny_mlp(dir: &Path) -> PathBuf {
    let t = dir.join("exp");
    copy_tiny_mlp(&t);
    for e in std::fs::read_dir(&t).unwrap() {
        let p = e.unwrap().path();
        if p.file_name().unwrap().to_string_lossy().starts_with("run_") {
            std::fs::remove_dir_all(p).unwrap();
        }
    }
    t
}

/// An experiment folder whose experiment.py is `code`.
fn script(dir: &Path, code: &str) -> PathBuf {
    let t = dir.join("exp");
    std::fs::create_dir_all(&t).unwrap();
    std::fs::write(t.join("experiment.py"), code).unwrap();
    t
}

fn aisci_run(home: &Path, cwd: &Path, args: &[&str]) -> Output {
    aisci_run_with(home, cwd, args, None)
}

/// A stand-in `nvidia-smi` in its own folder: prints `stdout` and exits with `code`.
fn fake_nvidia_smi(home: &Path, stdout: &str, code: i32) -> PathBuf {
    use std::os::unix::fs::PermissionsExt;
    let bin = home.join("fake-bin");
    std::fs::create_dir_all(&bin).unwrap();
    let path = bin.join("nvidia-smi");
    std::fs::write(&path, format!("#!/bin/sh\nprintf '%s' '{stdout}'\nexit {code}\n")).unwrap();
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
    bin
}

/// `aisci run`, with `bin` (e.g. a fake nvidia-smi) ahead of PATH.
fn aisci_run_with(home: &Path, cwd: &Path, args: &[&str], bin: Option<&Path>) -> Output {
    let cfg = home.join("config.toml");
    if !cfg.exists() {
        std::fs::write(&cfg, "").unwrap();
    }
    std::process::Command::new(env!("CARGO_BIN_EXE_aisci"))
        .arg("run")
        .args(args)
        .current_dir(cwd)
        .env_clear()
        .env(
            "PATH",
            match bin {
                Some(b) => format!("{}:{}", b.display(), std::env::var("PATH").unwrap_or_default()),
                None => std::env::var("PATH").unwrap_or_default(),
            },
        )
        .env("HOME", home)
        .env("XDG_CONFIG_HOME", home.join("xdg-config"))
        .env("AISCI_CONFIG", &cfg)
        // GPU slots are machine-wide: each test's own lock folder (shared within a test).
        .env("AISCI_RUNTIME_DIR", home.join("runtime"))
        .output()
        .unwrap()
}

fn text(b: &[u8]) -> String {
    String::from_utf8_lossy(b).into_owned()
}

#[test]
fn tiny_mlp_runs_as_run_1_then_run_2() {
    let home = tempfile::tempdir().unwrap();
    let exp = tiny_mlp(home.path());
    let out = aisci_run(home.path(), &exp, &[]);
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    // Streamed to the terminal and kept in the run folder.
    assert!(stdout.contains("blobs: val_acc="), "{stdout}");
    let kept = std::fs::read_to_string(exp.join("run_1/stdout.txt")).unwrap();
    assert_eq!(kept, stdout);
    assert!(exp.join("run_1/final_info.json").is_file());
    let env: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exp.join("run_1/env.json")).unwrap()).unwrap();
    assert!(env["python"]["version"].is_string());
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exp.join("run_1/aisci_run.json")).unwrap()).unwrap();
    assert_eq!(record["exit"]["kind"], "success");
    assert_eq!(record["completed"], true);
    assert!(stderr.contains("run_1 done"), "{stderr}");

    // The next one, from elsewhere with DIR.
    let out = aisci_run(home.path(), home.path(), &["exp"]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(exp.join("run_2/final_info.json").is_file());
}

#[test]
fn failing_script_exits_non_zero_with_its_traceback() {
    let home = tempfile::tempdir().unwrap();
    let exp = script(
        home.path(),
        "import sys\nprint('starting')\ndef f():\n    raise ValueError('bad shape')\nf()\n",
    );
    let out = aisci_run(home.path(), &exp, &[]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("Traceback (most recent call last)"), "{stderr}");
    assert!(stderr.contains("ValueError: bad shape"), "{stderr}");
    let record: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(exp.join("run_1/aisci_run.json")).unwrap()).unwrap();
    assert_eq!(record["exit"], serde_json::json!({"kind": "failed", "code": 1}));
    assert_eq!(record["error"], "ValueError: bad shape");
    assert_eq!(record["frames"].as_array().unwrap().len(), 2);
    assert!(exp.join("run_1/env.json").is_file());
}

#[test]
fn timeout_exits_124() {
    let home = tempfile::tempdir().unwrap();
    let exp = script(
        home.path(),
        "import time\nprint('sleeping', flush=True)\ntime.sleep(60)\n",
    );
    let t = Instant::now();
    let out = aisci_run(home.path(), &exp, &["--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    assert!(text(&out.stdout).contains("sleeping"));
    assert!(text(&out.stderr).contains("timed out after 1 s"));
}

#[test]
fn gpus_flag_sets_cuda_visible_devices_and_signals_map_to_128_plus_n() {
    let home = tempfile::tempdir().unwrap();
    let exp = script(
        home.path(),
        "import os, signal\nprint(repr(os.environ['CUDA_VISIBLE_DEVICES']), flush=True)\n\
         if os.environ['CUDA_VISIBLE_DEVICES'] == '':\n    os.kill(os.getpid(), signal.SIGTERM)\n",
    );
    // A machine whose nvidia-smi lists GPUs 0 to 3.
    let rows = "index, name, memory.total [MiB]\n0, NVIDIA H100, 81559 MiB\n1, NVIDIA H100, 81559 MiB\n2, NVIDIA H100, 81559 MiB\n3, NVIDIA H100, 81559 MiB\n";
    let bin = fake_nvidia_smi(home.path(), rows, 0);
    let out = aisci_run_with(home.path(), &exp, &["--gpus", "3"], Some(&bin));
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "'3'\n");
    assert!(
        text(&out.stderr).contains("started on GPU 3"),
        "{}",
        text(&out.stderr)
    );
    assert!(!text(&out.stderr).contains("warning"), "{}", text(&out.stderr));
    let out = aisci_run(home.path(), &exp, &["--gpus", ""]);
    assert_eq!(out.status.code(), Some(128 + 15), "{}", text(&out.stderr));
    assert_eq!(text(&out.stdout), "''\n");
    assert!(exp.join("run_2/aisci_run.json").is_file());
}

#[test]
fn folder_without_experiment_is_an_error() {
    let home = tempfile::tempdir().unwrap();
    let out = aisci_run(home.path(), home.path(), &[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("has no experiment.py"),
        "{}",
        text(&out.stderr)
    );
}

/// Two aisci processes (as the editor's server and a terminal would be), two folders, one
/// GPU: the second run waits for the GPU the first holds, says who holds it, then runs.
#[test]
fn two_aisci_processes_take_turns_on_one_gpu() {
    let home = tempfile::tempdir().unwrap();
    let code = "import time, sys\nt0 = time.time()\ntime.sleep(1.5)\n\
                print(f'{t0} {time.time()}', flush=True)\n";
    let a = script(&home.path().join("a"), code);
    let b = script(&home.path().join("b"), code);
    let (ha, hb) = (home.path().to_path_buf(), home.path().to_path_buf());
    let first = std::thread::spawn(move || aisci_run(&ha, &a, &["--gpus", "0"]));
    std::thread::sleep(Duration::from_millis(300));
    let second = std::thread::spawn(move || aisci_run(&hb, &b, &["--gpus", "0"]));
    let (first, second) = (first.join().unwrap(), second.join().unwrap());
    for out in [&first, &second] {
        assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    }
    let span = |o: &Output| -> (f64, f64) {
        let t: Vec<f64> = text(&o.stdout)
            .split_whitespace()
            .map(|x| x.parse().unwrap())
            .collect();
        (t[0], t[1])
    };
    let (a, b) = (span(&first), span(&second));
    let (early, late) = if a.0 <= b.0 { (a, b) } else { (b, a) };
    assert!(late.0 >= early.1, "the runs overlapped on GPU 0: {a:?} {b:?}");
    let waited = if a.0 <= b.0 { &second } else { &first };
    let said = text(&waited.stderr);
    assert!(
        said.contains("queued: GPU 0 is held by aisci pid") && said.contains("waiting for it"),
        "{said}"
    );
}

#[test]
fn gpus_named_on_a_machine_without_gpus_are_warned_about_not_claimed() {
    let home = tempfile::tempdir().unwrap();
    let exp = script(
        home.path(),
        "import os\nprint(repr(os.environ['CUDA_VISIBLE_DEVICES']), flush=True)\n",
    );
    // nvidia-smi on a machine with no device: its message and exit status 6.
    let bin = fake_nvidia_smi(home.path(), "No devices were found", 6);
    let out = aisci_run_with(home.path(), &exp, &["--gpus", "0"], Some(&bin));
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{err}");
    assert!(
        err.contains("warning: --gpus 0: no GPU is visible here (nvidia-smi failed"),
        "{err}"
    );
    assert!(err.contains("For a CPU run use --gpus \"\""), "{err}");
    assert!(
        err.contains("started with CUDA_VISIBLE_DEVICES=0 (no GPU is visible)"),
        "{err}"
    );
    assert!(!err.contains("started on GPU 0"), "{err}");
    // A GPU nvidia-smi does not list is named.
    let bin = fake_nvidia_smi(
        home.path(),
        "index, name, memory.total [MiB]\n0, NVIDIA H100, 81559 MiB\n",
        0,
    );
    let out = aisci_run_with(home.path(), &exp, &["--gpus", "5"], Some(&bin));
    let err = text(&out.stderr);
    assert!(err.contains("warning: --gpus 5: GPU 5 is not among those nvidia-smi lists (GPUs from nvidia-smi: 0 (NVIDIA H100))"), "{err}");
}
