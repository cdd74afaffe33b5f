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
use crate::llm::{CallTag, Llm};
use crate::project::figures::{Critique, Figure, FigureCatalog};
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
const REVISE_PROMPT: &str = include_str!("prompts/revise.txt");

mod critique;

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
    /// What the figure critique found or why it was skipped (None: critique off).
    pub critique: Option<String>,
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
    /// The model the figure critique asks (None: no critique).
    pub llm: Option<&'a Llm>,
    /// The idea, for the ledger.
    pub idea: Option<&'a str>,
}

/// Have the model fill in plot.py and run it, up to `plot_attempts` times; then, when
/// the model takes images, have each figure critiqued and revised (see [`critique`]).
/// Never fatal (as in v1): failures end up in the report.
pub(crate) async fn run(req: &PlotRequest<'_>, dialogue: &mut Dialogue<'_>) -> Result<PlotReport, Fatal> {
    let root = req.root.to_path_buf();
    let before = png_state(&root);
    let mut runs = vec!["run_0 (the baseline)".to_string()];
    runs.extend(req.completed.iter().map(|r| format!("run_{}", r.run)));
    let prompt = fill(PLOT_PROMPT, &[("runs", &runs.join(", "))]);
    let mut report = PlotReport::default();
    let tried = attempts(req, dialogue, prompt, "plot").await?;
    report.succeeded = tried.succeeded;
    report.attempts = tried.attempts;
    report.error = tried.error;
    let mut catalog = record(&root, &before);
    if report.succeeded {
        let drawn = changed(&before, &png_state(&root));
        if !drawn.is_empty() {
            report.critique = critique_rounds(req, dialogue, &root, &mut catalog, drawn).await?;
        }
    }
    report.figures = changed(&before, &png_state(&root));
    if let Err(e) = catalog.save(&root) {
        tracing::warn!(folder = %root.display(), %e, "cannot write the figure catalog");
    }
    if report.succeeded && report.figures.is_empty() {
        report.no_figure = Some(why_no_figure(req.python, &root.join(PLOT_LOG_DIR)).await);
    }
    Ok(report)
}

/// What a series of plot attempts came to.
struct Tried {
    succeeded: bool,
    attempts: u32,
    error: Option<String>,
}

/// Ask with `prompt`, apply the reply and run plot.py, sending failures back, up to
/// `plot_attempts` times.
async fn attempts(
    req: &PlotRequest<'_>,
    dialogue: &mut Dialogue<'_>,
    mut prompt: String,
    what: &str,
) -> Result<Tried, Fatal> {
    let max = req.settings.plot_attempts.max(1);
    let mut tried = Tried {
        succeeded: false,
        attempts: 0,
        error: None,
    };
    for attempt in 1..=max {
        let label = match what {
            "plot" => format!("Plotting: attempt {attempt}/{max}"),
            _ => format!("Plotting: {what}, attempt {attempt}/{max}"),
        };
        req.progress.report(&label, None);
        tried.attempts = attempt;
        let reply = dialogue.ask(prompt).await?;
        if let Applied::Failed(feedback) = dialogue.apply(&reply).await? {
            let note = format!("{what} attempt {attempt} of {max}");
            tried.error = Some(feedback.clone());
            prompt = fill(
                EDIT_FAILED_PROMPT,
                &[("attempt_note", &note), ("feedback", &feedback)],
            );
            continue;
        }
        let error = match run_plot(req, req.root).await {
            Ok(None) => {
                tried.succeeded = true;
                tried.error = None;
                break;
            }
            Ok(Some(error)) => error,
            Err(Fatal::Run(e)) => {
                tried.error = Some(e.to_string());
                break;
            }
            Err(e) => return Err(e),
        };
        tried.error = Some(error.clone());
        prompt = fill(FAILED_PROMPT, &[("error", &error)]);
    }
    Ok(tried)
}

/// The critique of the figures `drawn`, and up to `figure_critique_rounds` revisions of
/// plot.py for those with issues. Each figure's last verdict goes into `catalog`; the
/// returned line says what happened (None when critique is off).
async fn critique_rounds(
    req: &PlotRequest<'_>,
    dialogue: &mut Dialogue<'_>,
    root: &Path,
    catalog: &mut FigureCatalog,
    drawn: Vec<String>,
) -> Result<Option<String>, Fatal> {
    let rounds = req.settings.figure_critique_rounds;
    if rounds == 0 {
        return Ok(None);
    }
    let Some(llm) = req.llm else {
        return Ok(None);
    };
    if !llm.accepts_images() {
        return Ok(Some(format!(
            "figure critique skipped: {} takes no images (set llm.vision = \"yes\" if it does)",
            llm.model()
        )));
    }
    let critic = critique::Critic {
        llm,
        tag: CallTag::new("experiment", req.idea),
        cancel: req.cancel,
    };
    let mut verdicts: BTreeMap<String, Critique> = BTreeMap::new();
    let mut notes: Vec<String> = Vec::new();
    let mut look_at = drawn;
    let mut revisions = 0;
    'rounds: loop {
        for (i, file) in look_at.iter().enumerate() {
            req.progress.report(
                &format!("Figures: critiquing {file} ({}/{})", i + 1, look_at.len()),
                None,
            );
            let figure = catalog.get(file).cloned().unwrap_or_else(|| Figure {
                file: file.clone(),
                ..Figure::default()
            });
            match critic.look(root, &figure).await? {
                critique::Look::Seen { ok, issues } => {
                    let v = verdicts.entry(file.clone()).or_insert_with(|| Critique {
                        model: critic.model(),
                        ..Critique::default()
                    });
                    v.rounds += 1;
                    v.ok = ok;
                    v.issues = issues;
                }
                critique::Look::Skipped(note) => notes.push(note),
                critique::Look::Stop(note) => {
                    notes.push(note);
                    break 'rounds;
                }
            }
        }
        let open: Vec<(&str, &Critique)> = verdicts
            .iter()
            .filter(|(_, c)| !c.ok)
            .map(|(f, c)| (f.as_str(), c))
            .collect();
        if open.is_empty() || revisions >= rounds {
            break;
        }
        revisions += 1;
        let prompt = fill(REVISE_PROMPT, &[("issues", &critique::issues_text(&open))]);
        let before = png_state(root);
        let tried = attempts(req, dialogue, prompt, &format!("revision {revisions}/{rounds}")).await?;
        *catalog = record(root, &before);
        if !tried.succeeded {
            notes.push(format!(
                "the revised plot.py did not run ({}); the figures are those of the last run that worked",
                tried.error.as_deref().unwrap_or("no reason given")
            ));
            break;
        }
        look_at = changed(&before, &png_state(root));
        if look_at.is_empty() {
            notes.push("the revised plot.py changed no figure".into());
            break;
        }
    }
    for (file, verdict) in &verdicts {
        if let Some(f) = catalog.get_mut(file) {
            f.critique = Some(verdict.clone());
        }
    }
    let fine = verdicts.values().filter(|c| c.ok).count();
    let mut line = format!(
        "figures critiqued by {}: {fine} of {} fine",
        critic.model(),
        verdicts.len()
    );
    if revisions > 0 {
        line.push_str(&format!(" after {revisions} revision(s)"));
    }
    let open: Vec<&str> = verdicts
        .iter()
        .filter(|(_, c)| !c.ok)
        .map(|(f, _)| f.as_str())
        .collect();
    if !open.is_empty() {
        line.push_str(&format!(
            " (issues left on {}, shown on the paper)",
            open.join(", ")
        ));
    }
    for n in notes {
        line.push_str(&format!("; {n}"));
    }
    Ok(Some(line))
}

/// PNG files whose state differs between `before` and `after`, sorted.
fn changed(
    before: &BTreeMap<String, (Option<SystemTime>, u64)>,
    after: &BTreeMap<String, (Option<SystemTime>, u64)>,
) -> Vec<String> {
    after
        .iter()
        .filter(|(name, state)| before.get(*name) != Some(state))
        .map(|(name, _)| name.clone())
        .collect()
}

/// The catalog after a plot run that started at `before`, saved so the next run keeps
/// what it says of figures that run leaves alone.
fn record(root: &Path, before: &BTreeMap<String, (Option<SystemTime>, u64)>) -> FigureCatalog {
    let after = png_state(root);
    let all: Vec<String> = after.keys().cloned().collect();
    let cat = catalog(root, &all, &changed(before, &after));
    if let Err(e) = cat.save(root) {
        tracing::warn!(folder = %root.display(), %e, "cannot write the figure catalog");
    }
    cat
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
