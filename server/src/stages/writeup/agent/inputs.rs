//! What the paper is written from, read once from the idea folder: `notes.txt`, every
//! completed run's `final_info.json`, the figures that exist, `experiment.py`, and the
//! facts in the runs' `env.json` (the only source for hardware and versions).

use std::path::Path;

use crate::project::figures::FigureCatalog;
use crate::runner::facts::EnvFacts;

pub struct Inputs {
    pub notes: String,
    /// One line per completed run: `run_1: {...}`.
    pub results: String,
    /// The `*.png` in the idea folder, sorted, with what each plots where it was recorded.
    pub figures: FigureCatalog,
    pub code: String,
    /// Facts from env.json, one per line; empty when no run recorded any.
    pub facts: Vec<String>,
}

/// Longest text of one input shown to the model.
const MAX_CHARS: usize = 20_000;

fn read_capped(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    if text.chars().count() <= MAX_CHARS {
        return text;
    }
    let mut s: String = text.chars().take(MAX_CHARS).collect();
    s.push_str("\n[... cut ...]\n");
    s
}

/// `run_<i>` folders under `root`, by `i`.
fn run_dirs(root: &Path) -> Vec<(u32, std::path::PathBuf)> {
    let mut out: Vec<(u32, std::path::PathBuf)> = std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().into_owned();
            let n = name.strip_prefix("run_")?.parse::<u32>().ok()?;
            e.path().is_dir().then(|| (n, e.path()))
        })
        .collect();
    out.sort();
    out
}

pub fn gather(root: &Path) -> Inputs {
    let mut results = String::new();
    let mut facts: Vec<String> = Vec::new();
    for (n, dir) in run_dirs(root) {
        if let Ok(text) = std::fs::read_to_string(dir.join("final_info.json")) {
            let compact = serde_json::from_str::<serde_json::Value>(&text)
                .map(|v| v.to_string())
                .unwrap_or_else(|_| text.trim().to_string());
            results.push_str(&format!("run_{n}: {compact}\n"));
        }
        if let Ok(text) = std::fs::read_to_string(dir.join("env.json")) {
            if let Ok(env) = serde_json::from_str::<EnvFacts>(&text) {
                for f in env_lines(&env) {
                    let line = format!("run_{n}: {f}");
                    // Runs on one machine repeat the same facts: state each once.
                    if !facts
                        .iter()
                        .any(|l| l.split_once(": ").map(|x| x.1) == Some(f.as_str()))
                    {
                        facts.push(line);
                    }
                }
            }
        }
    }
    let figures = FigureCatalog::for_folder(root);
    Inputs {
        notes: read_capped(&root.join("notes.txt")),
        results,
        figures,
        code: read_capped(&root.join("experiment.py")),
        facts,
    }
}

/// The facts of one env.json worth stating in a paper.
fn env_lines(env: &EnvFacts) -> Vec<String> {
    let mut out = Vec::new();
    let cpu_only = env.cuda_visible_devices.as_deref() == Some("");
    if cpu_only || env.gpus.is_empty() {
        if let Some(cpu) = &env.cpu_model {
            let count = env
                .cpu_count
                .map(|c| format!(" ({c} logical CPUs)"))
                .unwrap_or_default();
            out.push(format!("CPU: {cpu}{count}; no GPU was used"));
        }
    } else {
        let names: Vec<String> = env
            .gpus
            .iter()
            .map(|g| match g.memory_mib {
                Some(m) => format!("{} ({} GiB)", g.name, m / 1024),
                None => g.name.clone(),
            })
            .collect();
        out.push(format!("GPU: {}", names.join(", ")));
        if let Some(c) = &env.cuda_version {
            out.push(format!("CUDA (driver): {c}"));
        }
    }
    let p = &env.python;
    for (name, v) in [
        ("Python", &p.version),
        ("NumPy", &p.numpy),
        ("PyTorch", &p.torch),
        ("PyTorch CUDA", &p.torch_cuda),
    ] {
        if let Some(v) = v {
            out.push(format!("{name}: {v}"));
        }
    }
    out.push(format!("OS: {}", env.os));
    out
}

impl Inputs {
    pub fn figures_text(&self) -> String {
        if self.figures.figures.is_empty() {
            "(none: the paper has no figure)".into()
        } else {
            self.figures.describe_all()
        }
    }

    pub fn facts_text(&self) -> String {
        if self.facts.is_empty() {
            "(none recorded: do not mention hardware or software versions)".into()
        } else {
            self.facts.join("\n")
        }
    }

    pub fn results_text(&self) -> String {
        if self.results.is_empty() {
            "(no completed run)".into()
        } else {
            self.results.trim_end().to_string()
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hardware_comes_only_from_env_json() {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        std::fs::create_dir_all(r.join("run_1")).unwrap();
        std::fs::write(
            r.join("run_1/final_info.json"),
            r#"{"d": {"means": {"acc": 0.5}}}"#,
        )
        .unwrap();
        std::fs::write(r.join("fig.png"), b"x").unwrap();
        let none = gather(r);
        assert!(none.facts.is_empty());
        assert!(none.facts_text().contains("do not mention hardware"));
        assert_eq!(none.results, "run_1: {\"d\":{\"means\":{\"acc\":0.5}}}\n");
        assert_eq!(none.figures.figures.len(), 1);
        assert!(none
            .figures_text()
            .starts_with("fig.png: (what it plots was not recorded"));
        std::fs::write(
            r.join("run_1/env.json"),
            r#"{"hostname":"h","os":"linux","kernel":null,"cpu_model":"Xeon","cpu_count":8,
               "gpus":[{"index":"0","name":"NVIDIA H200","memory_mib":143771}],
               "cuda_visible_devices":"0","driver_version":"550","cuda_version":"12.4",
               "python_command":"python3","python":{"version":"3.11.2","executable":null,
               "numpy":"1.26.4","torch":null,"torch_cuda":null},"notes":[]}"#,
        )
        .unwrap();
        let some = gather(r);
        assert!(
            some.facts
                .contains(&"run_1: GPU: NVIDIA H200 (140 GiB)".to_string()),
            "{:?}",
            some.facts
        );
        assert!(some.facts.contains(&"run_1: Python: 3.11.2".to_string()));
        assert!(!some.facts.iter().any(|f| f.contains("PyTorch")));
    }
}
