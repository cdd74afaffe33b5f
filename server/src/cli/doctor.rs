//! `aisci doctor`: what this machine and configuration give aisci — the experiment
//! interpreter and the packages a template imports, the TeX tools, GPUs, Slurm, the API
//! key variables (set or not; never their values) and whether the model and literature
//! endpoints answer. Protocol-free: the CLI prints it, an editor can show it.

use std::process::ExitCode;

use crate::config::{self, Sources};
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::config::{RunnerKind, Settings};

const TOOL_TIMEOUT: Duration = Duration::from_secs(10);
const NET_TIMEOUT: Duration = Duration::from_secs(5);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Ok,
    /// Works without it, with less (no GPU, no chktex, no key for an optional engine).
    Warn,
    /// Something the configured setup needs is missing.
    Missing,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub section: &'static str,
    pub name: String,
    pub status: Status,
    pub detail: String,
}

impl Check {
    fn new(
        section: &'static str,
        name: impl Into<String>,
        status: Status,
        detail: impl Into<String>,
    ) -> Self {
        Self {
            section,
            name: name.into(),
            status,
            detail: detail.into(),
        }
    }

    /// `✓ name: detail` (✗ missing, ! warning).
    pub fn line(&self) -> String {
        let mark = match self.status {
            Status::Ok => "✓",
            Status::Warn => "!",
            Status::Missing => "✗",
        };
        format!("{mark} {}: {}", self.name, self.detail)
    }
}

/// Runs `program args` (bounded) and returns the first line of its output.
async fn first_line(program: &str, args: &[&str]) -> Result<String, String> {
    let out = tokio::time::timeout(
        TOOL_TIMEOUT,
        tokio::process::Command::new(program)
            .args(args)
            .stdin(std::process::Stdio::null())
            .kill_on_drop(true)
            .output(),
    )
    .await
    .map_err(|_| format!("{program} did not answer within {} s", TOOL_TIMEOUT.as_secs()))?
    .map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => "not found".to_owned(),
        _ => e.to_string(),
    })?;
    let text = if out.stdout.is_empty() {
        out.stderr
    } else {
        out.stdout
    };
    Ok(String::from_utf8_lossy(&text)
        .lines()
        .next()
        .unwrap_or("")
        .trim()
        .to_owned())
}

/// Top-level modules a Python file imports (`import a.b`, `from a import b`), in order.
pub fn imported_modules(src: &str) -> Vec<String> {
    // Parsed, not read line by line: an "import x" inside a docstring or a string is text.
    let Some(tree) = crate::workspace::syntax::parse_python(src, None) else {
        return Vec::new();
    };
    let mut out: Vec<String> = Vec::new();
    let mut add = |node: tree_sitter::Node| {
        // `a.b.c` → `a`; a relative import (`from . import x`) names no installed module.
        if node.kind() != "dotted_name" {
            return;
        }
        if let Some(first) = node.named_child(0) {
            let top = &src[first.byte_range()];
            if !out.iter().any(|o| o == top) {
                out.push(top.to_owned());
            }
        }
    };
    let mut stack = vec![tree.root_node()];
    while let Some(node) = stack.pop() {
        match node.kind() {
            "import_statement" => {
                let mut c = node.walk();
                for name in node.children_by_field_name("name", &mut c) {
                    // `import numpy as np` is an aliased_import holding the dotted name.
                    add(name.child_by_field_name("name").unwrap_or(name));
                }
            }
            "import_from_statement" => {
                if let Some(m) = node.child_by_field_name("module_name") {
                    add(m);
                }
            }
            _ => {
                let mut c = node.walk();
                // Children in reverse so the stack yields them in source order.
                let children: Vec<_> = node.named_children(&mut c).collect();
                stack.extend(children.into_iter().rev());
            }
        }
    }
    out
}

/// Every check, for the templates under (or at) `dir`.
pub async fn run(settings: &Settings, dir: &Path) -> Vec<Check> {
    let mut out = vec![Check::new(
        "aisci",
        "aisci",
        Status::Ok,
        env!("CARGO_PKG_VERSION"),
    )];
    out.extend(python(settings, dir).await);
    out.extend(tex().await);
    out.extend(compute(settings).await);
    out.extend(keys_and_services(settings).await);
    out
}

async fn python(settings: &Settings, dir: &Path) -> Vec<Check> {
    let py = &settings.run.python;
    let mut out = Vec::new();
    match first_line(py, &["--version"]).await {
        Ok(v) => out.push(Check::new("python", py.clone(), Status::Ok, v)),
        Err(e) => {
            out.push(Check::new(
                "python",
                py.clone(),
                Status::Missing,
                format!("{e}; experiments run with run.python"),
            ));
            return out;
        }
    }
    for t in templates_at(dir) {
        // experiment.py's imports are needed for runs; plot.py's only for the figures.
        let mut modules: Vec<(String, bool)> = Vec::new();
        for (f, needed) in [("experiment.py", true), ("plot.py", false)] {
            if let Ok(src) = std::fs::read_to_string(t.join(f)) {
                for m in imported_modules(&src) {
                    if !modules.iter().any(|(n, _)| *n == m) {
                        modules.push((m, needed));
                    }
                }
            }
        }
        if modules.is_empty() {
            continue;
        }
        let names: Vec<&str> = modules.iter().map(|(m, _)| m.as_str()).collect();
        // One interpreter start for all modules: which of them cannot be found.
        let probe = format!(
            "import importlib.util,sys\nfor m in {names:?}:\n    print(m, 'ok' if importlib.util.find_spec(m) else 'missing')"
        );
        let name = format!(
            "template {}",
            t.file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default()
        );
        let probed = tokio::time::timeout(
            TOOL_TIMEOUT,
            tokio::process::Command::new(py)
                .args(["-c", &probe])
                .current_dir(&t)
                .kill_on_drop(true)
                .output(),
        )
        .await;
        let Ok(Ok(o)) = probed else {
            out.push(Check::new(
                "python",
                name,
                Status::Warn,
                "could not probe its imports",
            ));
            continue;
        };
        let text = String::from_utf8_lossy(&o.stdout);
        let missing: Vec<&str> = text.lines().filter_map(|l| l.strip_suffix(" missing")).collect();
        let (run_missing, plot_missing): (Vec<&str>, Vec<&str>) = missing
            .iter()
            .partition(|m| modules.iter().any(|(n, needed)| n == *m && *needed));
        out.push(match (run_missing.is_empty(), plot_missing.is_empty()) {
            (true, true) => Check::new("python", name, Status::Ok, names.join(", ")),
            (false, _) => Check::new(
                "python",
                name,
                Status::Missing,
                format!("{py} cannot import {} (experiment.py)", run_missing.join(", ")),
            ),
            (true, false) => Check::new(
                "python",
                name,
                Status::Warn,
                if plot_falls_back(&t) {
                    format!(
                        "{py} cannot import {}: plot.py falls back to its text output, so papers get no \
                         figures (runs work; set run.python to a Python that has it, or scripts/torch-up)",
                        plot_missing.join(", ")
                    )
                } else {
                    format!(
                        "{py} cannot import {}: plot.py will fail, so papers get no figures (runs work; \
                         set run.python to a Python that has it, or scripts/torch-up)",
                        plot_missing.join(", ")
                    )
                },
            ),
        });
    }
    out
}

/// Whether the template's plot.py catches a missing import (as tiny_mlp's does, writing
/// a text table instead of figures).
fn plot_falls_back(template: &Path) -> bool {
    std::fs::read_to_string(template.join("plot.py"))
        .is_ok_and(|src| src.contains("except ImportError") || src.contains("except ModuleNotFoundError"))
}

/// `dir` itself when it is a template, else the templates directly under it (and under
/// its `templates/`).
fn templates_at(dir: &Path) -> Vec<PathBuf> {
    let is_template = |p: &Path| p.join("experiment.py").is_file() && p.join("prompt.json").is_file();
    if is_template(dir) {
        return vec![dir.to_path_buf()];
    }
    let mut out = Vec::new();
    for base in [dir.to_path_buf(), dir.join("templates")] {
        let Ok(entries) = std::fs::read_dir(&base) else {
            continue;
        };
        let mut found: Vec<PathBuf> = entries
            .flatten()
            .map(|e| e.path())
            .filter(|p| is_template(p))
            .collect();
        found.sort();
        out.extend(found);
    }
    out
}

async fn tex() -> Vec<Check> {
    let mut out = Vec::new();
    let install = "apt-get install texlive-latex-extra texlive-science latexmk chktex poppler-utils";
    for (tool, arg, needed) in [
        ("latexmk", "-v", false),
        ("pdflatex", "--version", true),
        ("bibtex", "--version", true),
        ("chktex", "--version", false),
        ("pdftotext", "-v", false),
    ] {
        let status_missing = if needed { Status::Missing } else { Status::Warn };
        match first_line(tool, &[arg]).await {
            Ok(v) if !v.is_empty() => out.push(Check::new("tex", tool, Status::Ok, v)),
            Ok(_) => out.push(Check::new("tex", tool, Status::Ok, "present")),
            Err(e) => {
                let why = match tool {
                    "latexmk" => "the pdflatex/bibtex chain is used instead",
                    "chktex" => "no style advice on the paper",
                    "pdftotext" => "the reviewer reads the LaTeX source instead of the PDF",
                    _ => "papers cannot be built",
                };
                out.push(Check::new(
                    "tex",
                    tool,
                    status_missing,
                    format!("{e}: {why} ({install})"),
                ));
            }
        }
    }
    out
}

async fn compute(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    let found = crate::runner::gpus::detect(&settings.run).await;
    out.push(Check::new(
        "compute",
        "GPUs",
        if found.gpus.is_empty() {
            Status::Warn
        } else {
            Status::Ok
        },
        found.describe(),
    ));
    let slurm_needed = settings.run.runner == RunnerKind::Slurm;
    match first_line("sinfo", &["-h", "-o", "%P %a %D %G"]).await {
        Ok(line) if !line.is_empty() && !line.contains("error") => out.push(Check::new(
            "compute",
            "Slurm",
            Status::Ok,
            format!("sinfo: {line}"),
        )),
        other => {
            let why = match other {
                Ok(l) if !l.is_empty() => l,
                Ok(_) => "sinfo printed nothing".into(),
                Err(e) => format!("sinfo {e}"),
            };
            out.push(Check::new(
                "compute",
                "Slurm",
                if slurm_needed {
                    Status::Missing
                } else {
                    Status::Warn
                },
                if slurm_needed {
                    format!("{why}; run.runner is \"slurm\"")
                } else {
                    format!("{why} (only needed with run.runner = \"slurm\")")
                },
            ))
        }
    }
    out
}

async fn keys_and_services(settings: &Settings) -> Vec<Check> {
    let mut out = Vec::new();
    let model = &settings.llm.model;
    match crate::llm::resolve_endpoint(&settings.llm, &crate::llm::ProcessEnv) {
        Ok(ep) => {
            let key = match &ep.key_var {
                Some(v) => format!("key in ${v} (set)"),
                None => "no key needed".into(),
            };
            out.push(Check::new(
                "keys",
                "model",
                Status::Ok,
                format!(
                    "{model} via {} at {}; {key}",
                    crate::llm::provider_name(ep.kind),
                    crate::llm::url_origin(&ep.base_url)
                ),
            ));
            if settings.llm.provider != crate::config::ProviderKind::Replay {
                out.push(reachable("services", "model endpoint", &ep.base_url, Status::Missing).await);
            }
        }
        Err(e) => out.push(Check::new(
            "keys",
            "model",
            Status::Missing,
            format!("{model}: {e}"),
        )),
    }
    let lit = &settings.literature;
    for (var, what) in [
        (
            &lit.s2_api_key_env,
            "Semantic Scholar key (optional: without it the rate is lower)",
        ),
        (&lit.openalex_api_key_env, "OpenAlex key (optional)"),
    ] {
        let set = std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
        out.push(Check::new(
            "keys",
            format!("${var}"),
            if set { Status::Ok } else { Status::Warn },
            if set {
                format!("set — {what}")
            } else {
                format!("not set — {what}")
            },
        ));
    }
    for engine in &lit.engines {
        let url = match engine.as_str() {
            "semanticscholar" => lit.s2_url.as_deref().unwrap_or(crate::literature::DEFAULT_S2_URL),
            "openalex" => lit
                .openalex_url
                .as_deref()
                .unwrap_or(crate::literature::DEFAULT_OPENALEX_URL),
            "arxiv" => lit
                .arxiv_url
                .as_deref()
                .unwrap_or(crate::literature::DEFAULT_ARXIV_URL),
            _ => continue,
        };
        out.push(reachable("services", engine, url, Status::Warn).await);
    }
    out
}

/// Whether `url` answers HTTP at all (any status counts: the point is the network path).
async fn reachable(section: &'static str, name: &str, url: &str, if_not: Status) -> Check {
    let client = reqwest::Client::builder().timeout(NET_TIMEOUT).build();
    let origin = crate::llm::url_origin(url);
    let result = match client {
        Ok(c) => c.get(url).send().await.map(|r| r.status()),
        Err(e) => Err(e),
    };
    match result {
        Ok(status) => Check::new(
            section,
            name,
            Status::Ok,
            format!("{origin} answers (HTTP {})", status.as_u16()),
        ),
        Err(e) => Check::new(
            section,
            name,
            if_not,
            format!(
                "{origin} unreachable ({})",
                if e.is_timeout() {
                    "timed out".to_owned()
                } else {
                    e.without_url().to_string()
                }
            ),
        ),
    }
}

// The command.

#[derive(clap::Args)]
pub struct Args {
    /// A template, or a folder holding templates (default: the current folder).
    #[arg(default_value = ".")]
    dir: PathBuf,
}

pub async fn command(a: Args) -> ExitCode {
    doctor(&a.dir).await
}

async fn doctor(dir: &Path) -> ExitCode {
    use crate::cli::doctor::Status;
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let loaded = config::load(&Sources::from_system(Some(&root)));
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    let checks = crate::cli::doctor::run(&loaded.settings, &root).await;
    let mut section = "";
    for c in &checks {
        if c.section != section {
            section = c.section;
            println!("{section}");
        }
        println!("  {}", c.line());
    }
    if checks.iter().any(|c| c.status == Status::Missing) {
        ExitCode::FAILURE
    } else {
        ExitCode::SUCCESS
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn imports() {
        let src = "\"\"\"Trains a model.\nfrom x_i we build y.\nimport nothing here\n\"\"\"\nimport os, sys\nimport numpy as np\nfrom torch.nn import functional as F\nif True:\n    import json\nfrom . import x\ns = \"import fake\"\n";
        assert_eq!(imported_modules(src), ["os", "sys", "numpy", "torch", "json"]);
    }
}
