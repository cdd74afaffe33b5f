//! The plotting stage: after the runs, the model fills in `plot.py` and aisci runs it
//! (up to `experiment.plot_attempts` times, its failures going back to the model). It
//! continues the experiment stage's conversation, as v1 does, so the model plots what it
//! just ran; a failure is never fatal (as in v1): it ends up in the report.

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, SystemTime};

use tokio_util::sync::CancellationToken;

use crate::agent::conversation::Applied;
use crate::agent::prompt::fill;
use crate::config::ExperimentSettings;
use crate::jobs::Progress;
use crate::project::figures::FigureCatalog;
use crate::project::RunRecord;
use crate::runner::{ExitKind, RunSpec, Runner};
use crate::runs::attempt::failure_message;
use crate::stages::experiment::agent::{Fatal, EDIT_FAILED_PROMPT};
use crate::stages::experiment::conversation::Dialogue;

const PLOT_PROMPT: &str = include_str!("prompts/plot.txt");
/// Runs `plot.py` and records what each saved figure shows (see the file's header).
const FIGURE_HOOK: &str = include_str!("figure_hook.py");
const FIGURE_HOOK_FILE: &str = "figure_hook.py";
const FIGURE_LOG_FILE: &str = "figures.jsonl";
const FAILED_PROMPT: &str = include_str!("prompts/failed.txt");

/// Where `python plot.py` writes its output, inside the idea folder.
pub const PLOT_LOG_DIR: &str = ".aisci/plot";

#[derive(Debug, Clone, PartialEq, Default)]
pub struct PlotReport {
    /// `python plot.py` exited 0 on some attempt.
    pub succeeded: bool,
    pub attempts: u32,
    /// PNG files in the folder root made or changed by the plot stage, sorted.
    pub figures: Vec<String>,
    /// Why the last attempt failed, when none succeeded.
    pub error: Option<String>,
    /// Why `plot.py` succeeded without a figure ("matplotlib is not installed for python3").
    pub no_figure: Option<String>,
}

/// What plotting works on.
pub(crate) struct PlotRequest<'a> {
    /// The idea folder (plot.py, run_<i>/).
    pub root: &'a Path,
    /// The runs to plot beside the baseline.
    pub completed: &'a [RunRecord],
    pub settings: &'a ExperimentSettings,
    pub python: &'a str,
    pub runner: &'a dyn Runner,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancellationToken,
}

/// Have the model fill in plot.py and run it, up to `plot_attempts` times.
/// Never fatal (as in v1): failures end up in the report.
pub(crate) async fn run(req: &PlotRequest<'_>, dialogue: &mut Dialogue<'_>) -> Result<PlotReport, Fatal> {
    let s = req.settings;
    let root = req.root.to_path_buf();
    let before = png_state(&root);
    let mut runs = vec!["run_0 (the baseline)".to_string()];
    runs.extend(req.completed.iter().map(|r| format!("run_{}", r.run)));
    let mut prompt = fill(PLOT_PROMPT, &[("runs", &runs.join(", "))]);
    let mut report = PlotReport::default();
    let attempts = s.plot_attempts.max(1);
    for attempt in 1..=attempts {
        req.progress
            .report(&format!("Plotting: attempt {attempt}/{attempts}"), None);
        report.attempts = attempt;
        let reply = dialogue.ask(prompt).await?;
        if let Applied::Failed(feedback) = dialogue.apply(&reply).await? {
            let note = format!("plot attempt {attempt} of {attempts}");
            report.error = Some(feedback.clone());
            prompt = fill(
                EDIT_FAILED_PROMPT,
                &[("attempt_note", &note), ("feedback", &feedback)],
            );
            continue;
        }
        let error = match run_plot(req, &root).await {
            Ok(None) => {
                report.succeeded = true;
                report.error = None;
                break;
            }
            Ok(Some(error)) => error,
            Err(Fatal::Run(e)) => {
                report.error = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        report.error = Some(error.clone());
        prompt = fill(FAILED_PROMPT, &[("error", &error)]);
    }
    let after = png_state(&root);
    report.figures = after
        .iter()
        .filter(|(name, state)| before.get(*name) != Some(state))
        .map(|(name, _)| name.clone())
        .collect();
    let all: Vec<String> = after.keys().cloned().collect();
    let catalog = catalog(&root, &all, &report.figures);
    if let Err(e) = catalog.save(&root) {
        tracing::warn!(folder = %root.display(), %e, "cannot write the figure catalog");
    }
    if report.succeeded && report.figures.is_empty() {
        report.no_figure = Some(why_no_figure(req.python, &root.join(PLOT_LOG_DIR)).await);
    }
    Ok(report)
}

/// Why a successful `plot.py` made no figure: matplotlib missing for the interpreter, else
/// the last thing `plot.py` printed.
async fn why_no_figure(python: &str, logs: &Path) -> String {
    if crate::runner::facts::can_import(python, "matplotlib").await == Ok(false) {
        return format!("matplotlib is not installed for {python}");
    }
    let said = ["stdout.txt", "stderr.txt"].iter().find_map(|f| {
        let text = std::fs::read_to_string(logs.join(f)).ok()?;
        text.lines()
            .rev()
            .map(str::trim)
            .find(|l| !l.is_empty())
            .map(str::to_string)
    });
    match said {
        Some(line) => format!(
            "plot.py wrote no PNG; it said: {}",
            line.chars().take(200).collect::<String>()
        ),
        None => "plot.py wrote no PNG and printed nothing".into(),
    }
}

/// The catalog of the folder's figures `all`: what the last plot run recorded for the
/// figures it saved (`changed`), what the earlier catalog said of the others.
fn catalog(root: &Path, all: &[String], changed: &[String]) -> FigureCatalog {
    let mut cat = FigureCatalog::from_log(root, &root.join(PLOT_LOG_DIR).join(FIGURE_LOG_FILE), all);
    let before = FigureCatalog::load(root);
    for f in cat.figures.iter_mut() {
        if changed.contains(&f.file) {
            continue;
        }
        if let Some(old) = before.get(&f.file) {
            *f = old.clone();
        }
    }
    cat
}

/// `python plot.py`, through the figure hook; Ok(None) on success, Ok(Some(message)) on failure.
async fn run_plot(req: &PlotRequest<'_>, root: &Path) -> Result<Option<String>, Fatal> {
    let s = req.settings;
    let logs = root.join(PLOT_LOG_DIR);
    std::fs::create_dir_all(&logs).map_err(|e| Fatal::io(&logs, e))?;
    let hook = logs.join(FIGURE_HOOK_FILE);
    crate::fsutil::write_atomic(&hook, FIGURE_HOOK.as_bytes()).map_err(|e| Fatal::io(&hook, e))?;
    let log = logs.join(FIGURE_LOG_FILE);
    if let Err(e) = std::fs::remove_file(&log) {
        if e.kind() != std::io::ErrorKind::NotFound {
            return Err(Fatal::io(&log, e));
        }
    }
    let log = crate::runner::local::absolutize(&std::env::current_dir().unwrap_or_default(), &log);
    let spec = RunSpec {
        program: req.python.to_string(),
        args: vec![format!("{PLOT_LOG_DIR}/{FIGURE_HOOK_FILE}"), "plot.py".into()],
        cwd: root.to_path_buf(),
        timeout: Duration::from_secs(s.plot_timeout_secs),
        stdout_path: logs.join("stdout.txt"),
        stderr_path: logs.join("stderr.txt"),
        env: vec![("AISCI_FIGURE_LOG".into(), log.display().to_string())],
        watch_dir: None,
    };
    let outcome = req.runner.run(&spec, req.cancel).await.map_err(Fatal::Run)?;
    Ok(match outcome.exit {
        ExitKind::Success => None,
        ExitKind::Cancelled => return Err(Fatal::Cancelled),
        ExitKind::TimedOut => Some(format!(
            "Plotting timed out after {} seconds.",
            s.plot_timeout_secs
        )),
        ExitKind::LimitExceeded(limit) => Some(format!("Plotting was stopped: {limit}.")),
        ExitKind::Failed(_) | ExitKind::Signaled(_) => Some(failure_message(
            "Plotting",
            &outcome,
            s.stderr_tail_chars as usize,
        )),
    })
}

/// PNG files in `root` (not below it) with their modification time and size.
pub(crate) fn png_state(root: &Path) -> BTreeMap<String, (Option<SystemTime>, u64)> {
    std::fs::read_dir(root)
        .into_iter()
        .flatten()
        .filter_map(|e| e.ok())
        .filter_map(|e| {
            let name = e.file_name().to_str()?.to_string();
            let meta = e.metadata().ok()?;
            (meta.is_file() && name.to_ascii_lowercase().ends_with(".png"))
                .then(|| (name, (meta.modified().ok(), meta.len())))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::PermissionsExt;

    /// An interpreter stand-in: `import matplotlib` fails or works as told.
    fn python(dir: &Path, has_matplotlib: bool) -> String {
        let path = dir.join(if has_matplotlib { "py-with" } else { "py-without" });
        let code = if has_matplotlib { 0 } else { 1 };
        std::fs::write(&path, format!("#!/bin/sh\nexit {code}\n")).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).unwrap();
        path.display().to_string()
    }

    #[tokio::test]
    async fn a_plot_without_figures_says_why() {
        let dir = tempfile::tempdir().unwrap();
        let logs = dir.path().join("logs");
        std::fs::create_dir_all(&logs).unwrap();
        let without = python(dir.path(), false);
        assert_eq!(
            why_no_figure(&without, &logs).await,
            format!("matplotlib is not installed for {without}")
        );
        let with = python(dir.path(), true);
        assert_eq!(
            why_no_figure(&with, &logs).await,
            "plot.py wrote no PNG and printed nothing"
        );
        std::fs::write(
            logs.join("stdout.txt"),
            "reading runs\nwrote results_table.txt only\n\n",
        )
        .unwrap();
        assert_eq!(
            why_no_figure(&with, &logs).await,
            "plot.py wrote no PNG; it said: wrote results_table.txt only"
        );
    }
}
