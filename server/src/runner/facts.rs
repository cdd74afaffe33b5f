//! Facts about the machine a run ran on, written to `run_<i>/env.json` so that a paper
//! states the hardware and versions that were used instead of inventing them.
//!
//! Every probe is bounded in time and may fail: a missing fact is `null`, with the reason
//! in `notes`.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::env;
use super::gpus::NVIDIA_SMI_TIMEOUT;

/// The file name inside a run folder.
pub const ENV_FILE: &str = "env.json";
/// How long the interpreter probe may take (importing torch can take seconds).
pub const PYTHON_PROBE_TIMEOUT: Duration = Duration::from_secs(60);

/// Prints the versions as one JSON object; a package that cannot be imported is null.
const PYTHON_PROBE: &str = r#"
import json, platform, sys
def version(name):
    try:
        return getattr(__import__(name), "__version__", None)
    except Exception:
        return None
out = {"version": platform.python_version(), "executable": sys.executable,
       "numpy": version("numpy"), "torch": version("torch"), "torch_cuda": None}
if out["torch"] is not None:
    try:
        import torch
        out["torch_cuda"] = torch.version.cuda
    except Exception:
        pass
print(json.dumps(out))
"#;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GpuFact {
    pub index: String,
    pub name: String,
    pub memory_mib: Option<u64>,
}

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
pub struct PythonFacts {
    pub version: Option<String>,
    pub executable: Option<String>,
    pub numpy: Option<String>,
    pub torch: Option<String>,
    /// The CUDA version torch was built with.
    pub torch_cuda: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EnvFacts {
    pub hostname: Option<String>,
    pub os: String,
    pub kernel: Option<String>,
    pub cpu_model: Option<String>,
    pub cpu_count: Option<usize>,
    /// The GPUs the run could use (those in its `CUDA_VISIBLE_DEVICES`, else all).
    pub gpus: Vec<GpuFact>,
    /// The run's `CUDA_VISIBLE_DEVICES` (`""`: CPU only), when aisci set or passed one.
    pub cuda_visible_devices: Option<String>,
    pub driver_version: Option<String>,
    /// The CUDA version the driver supports (nvidia-smi's "CUDA Version").
    pub cuda_version: Option<String>,
    /// The interpreter command the run used.
    pub python_command: String,
    pub python: PythonFacts,
    /// Why facts are missing.
    pub notes: Vec<String>,
}

/// Gathers the facts for a run of `python` that had `cuda_visible_devices`.
pub async fn collect(python: &str, cuda_visible_devices: Option<&str>) -> EnvFacts {
    collect_all(python).await.for_devices(cuda_visible_devices)
}

impl EnvFacts {
    /// These facts as they are for a run that saw only `cuda_visible_devices`.
    pub fn for_devices(mut self, cuda_visible_devices: Option<&str>) -> Self {
        if let Some(visible) = cuda_visible_devices {
            let wanted: Vec<&str> = visible
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
                .collect();
            self.gpus.retain(|g| wanted.contains(&g.index.as_str()));
        }
        self.cuda_visible_devices = cuda_visible_devices.map(str::to_string);
        self
    }
}

/// The facts of the machine and `python`, every GPU listed: they do not depend on the
/// run, so they can be gathered while it runs.
pub async fn collect_all(python: &str) -> EnvFacts {
    let mut notes = Vec::new();
    let (python_facts, smi, smi_version) = tokio::join!(
        probe_python(python),
        output(
            "nvidia-smi",
            &[
                "--query-gpu=index,name,memory.total,driver_version",
                "--format=csv,noheader,nounits",
            ],
            NVIDIA_SMI_TIMEOUT
        ),
        output("nvidia-smi", &[], NVIDIA_SMI_TIMEOUT),
    );
    let python_facts = python_facts.unwrap_or_else(|e| {
        notes.push(format!("python: {e}"));
        PythonFacts::default()
    });
    let (gpus, driver_version) = match smi {
        Ok(text) => parse_gpu_facts(&text),
        Err(e) => {
            notes.push(format!("nvidia-smi: {e}"));
            (Vec::new(), None)
        }
    };
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").unwrap_or_default();
    EnvFacts {
        hostname: read_trimmed("/proc/sys/kernel/hostname")
            .or_else(|| std::env::var("HOSTNAME").ok().filter(|h| !h.is_empty())),
        os: std::env::consts::OS.to_string(),
        kernel: read_trimmed("/proc/sys/kernel/osrelease"),
        cpu_model: cpu_model(&cpuinfo),
        cpu_count: std::thread::available_parallelism().ok().map(|n| n.get()),
        gpus,
        cuda_visible_devices: None,
        driver_version,
        cuda_version: smi_version.ok().and_then(|t| cuda_version(&t)),
        python_command: python.to_string(),
        python: python_facts,
        notes,
    }
}

/// Writes `facts` as `dir/env.json`, atomically.
pub fn write(dir: &Path, facts: &EnvFacts) -> std::io::Result<()> {
    let mut text = serde_json::to_string_pretty(facts).map_err(std::io::Error::other)?;
    text.push('\n');
    crate::fsutil::write_atomic(&dir.join(ENV_FILE), text.as_bytes())
}

fn read_trimmed(path: &str) -> Option<String> {
    std::fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
}

/// `model name` (x86) or `Model`/`CPU part` style lines (ARM) of /proc/cpuinfo.
pub fn cpu_model(cpuinfo: &str) -> Option<String> {
    ["model name", "Model", "Hardware", "cpu model"]
        .iter()
        .find_map(|key| {
            cpuinfo.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == *key && !v.trim().is_empty()).then(|| v.trim().to_string())
            })
        })
}

/// `index, name, memory, driver` rows (no header, no units) and the driver version.
pub fn parse_gpu_facts(text: &str) -> (Vec<GpuFact>, Option<String>) {
    let mut gpus = Vec::new();
    let mut driver = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        let f: Vec<&str> = line.split(',').map(str::trim).collect();
        if f.len() < 4 || !f[0].bytes().all(|b| b.is_ascii_digit()) || f[0].is_empty() {
            continue;
        }
        let n = f.len();
        gpus.push(GpuFact {
            index: f[0].to_string(),
            name: f[1..n - 2].join(", "),
            memory_mib: f[n - 2].trim_end_matches("MiB").trim().parse().ok(),
        });
        driver.get_or_insert_with(|| f[n - 1].to_string());
    }
    (gpus, driver)
}

/// "CUDA Version: 12.4" from nvidia-smi's banner.
pub fn cuda_version(banner: &str) -> Option<String> {
    let at = banner.find("CUDA Version:")? + "CUDA Version:".len();
    let v: String = banner[at..]
        .trim_start()
        .chars()
        .take_while(|c| c.is_ascii_digit() || *c == '.')
        .collect();
    (!v.is_empty()).then_some(v)
}

async fn probe_python(python: &str) -> Result<PythonFacts, String> {
    let mut cmd = tokio::process::Command::new(python);
    cmd.args(["-c", PYTHON_PROBE])
        .env_clear()
        .envs(env::scrub(std::env::vars_os(), &[]));
    let text = run_bounded(cmd, PYTHON_PROBE_TIMEOUT).await?;
    serde_json::from_str(text.trim()).map_err(|e| format!("unexpected answer ({e})"))
}

/// Whether `python` can import `module` (run as the experiments are: scrubbed
/// environment, bounded in time). Err when the interpreter gave no answer.
pub async fn can_import(python: &str, module: &str) -> Result<bool, String> {
    let mut cmd = tokio::process::Command::new(python);
    cmd.args(["-c", &format!("import {module}")])
        .env_clear()
        .envs(env::scrub(std::env::vars_os(), &[]));
    match run_bounded(cmd, PYTHON_PROBE_TIMEOUT).await {
        Ok(_) => Ok(true),
        Err(e) if e.starts_with("failed") => Ok(false),
        Err(e) => Err(e),
    }
}

async fn output(program: &str, args: &[&str], timeout: Duration) -> Result<String, String> {
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(args);
    run_bounded(cmd, timeout).await
}

async fn run_bounded(mut cmd: tokio::process::Command, timeout: Duration) -> Result<String, String> {
    cmd.stdin(std::process::Stdio::null()).kill_on_drop(true);
    let out = match tokio::time::timeout(timeout, cmd.output()).await {
        Err(_) => return Err(format!("no answer within {timeout:?}")),
        Ok(Err(e)) if e.kind() == std::io::ErrorKind::NotFound => return Err("not found".into()),
        Ok(Err(e)) => return Err(e.to_string()),
        Ok(Ok(o)) => o,
    };
    if !out.status.success() {
        let err = String::from_utf8_lossy(&out.stderr);
        let last = err.lines().rfind(|l| !l.trim().is_empty()).unwrap_or("").trim();
        return Err(format!("failed ({}): {last}", out.status));
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_driver_rows_and_banner() {
        // Constructed in nvidia-smi 550's format, not recorded from a machine.
        let (g, d) = parse_gpu_facts(
            "0, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n1, NVIDIA H100 80GB HBM3, 81559, 550.54.15\n",
        );
        assert_eq!(g.len(), 2);
        assert_eq!(g[0].name, "NVIDIA H100 80GB HBM3");
        assert_eq!(g[1].memory_mib, Some(81559));
        assert_eq!(d.as_deref(), Some("550.54.15"));
        let banner = "| NVIDIA-SMI 550.54.15   Driver Version: 550.54.15   CUDA Version: 12.4     |";
        assert_eq!(cuda_version(banner).as_deref(), Some("12.4"));
        assert_eq!(cuda_version("no gpu"), None);
        assert_eq!(parse_gpu_facts("No devices were found").0, vec![]);
    }

    #[test]
    fn cpu_model_lines() {
        let x86 = "processor\t: 0\nvendor_id\t: GenuineIntel\nmodel\t\t: 143\nmodel name\t: Intel(R) Xeon(R) Platinum 8480+\n";
        assert_eq!(cpu_model(x86).as_deref(), Some("Intel(R) Xeon(R) Platinum 8480+"));
        assert_eq!(
            cpu_model("Model\t: Raspberry Pi 4\n").as_deref(),
            Some("Raspberry Pi 4")
        );
        assert_eq!(cpu_model(""), None);
    }

    #[tokio::test]
    async fn missing_python_is_a_note() {
        let f = collect("/nonexistent/python3", Some("")).await;
        assert_eq!(f.python, PythonFacts::default());
        assert!(
            f.notes.iter().any(|n| n.starts_with("python: not found")),
            "{:?}",
            f.notes
        );
        assert!(f.gpus.is_empty());
    }
}
