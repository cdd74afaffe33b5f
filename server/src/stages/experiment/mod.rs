//! The experiment stage: the model edits experiment.py, aisci runs it, then plot.py
//! and notes.txt.

pub mod agent;
pub(crate) mod conversation;
pub mod launch;

/// The title this stage's job has in the job registry (the editor shows it).
pub const TITLE: &str = "Run experiments";
pub const BASELINE_TITLE: &str = "Run baseline";
pub const LAUNCH_TITLE: &str = "Launch run";
pub const RESUME_TITLE: &str = "Re-attach runs";

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::llm::Llm;
use crate::project::{Idea, IdeaFolder, RunRecord, Template};
use crate::stages::host::StageHost;
use crate::stages::services::shared_runner;
use crate::stages::{record_usage, Spend, StageError};
use agent::{run_baseline, run_experiments, ExperimentCtx, ExperimentReport, RunsEnd};

/// The idea named `name` in a template's ideas.json, else in its seed_ideas.json.
pub fn idea_in_template(template: &Template, name: &str) -> Result<Idea, StageError> {
    for path in [template.ideas_json(), template.seed_ideas_json()] {
        let Ok(entries) = crate::project::read_ideas_archive(&path) else {
            continue;
        };
        if let Some(v) = entries
            .iter()
            .find(|e| crate::project::entry_name(e) == Some(name))
        {
            return Idea::from_value(v).map_err(|issues| StageError::Input {
                path: path.clone(),
                message: format!(
                    "idea {name} is not usable: {}",
                    issues
                        .iter()
                        .map(|i| i.message.clone())
                        .collect::<Vec<_>>()
                        .join("; ")
                ),
            });
        }
    }
    Err(StageError::UnknownIdea {
        folder: template.root.clone(),
        name: name.to_owned(),
    })
}

/// The idea an idea folder implements: from the archive copied into it (by the
/// folder's Name), else rebuilt from the title and description in notes.txt.
pub fn idea_of_folder(folder: &IdeaFolder) -> Result<Idea, StageError> {
    let unknown = || StageError::UnknownIdea {
        folder: folder.root.clone(),
        name: folder.name.clone(),
    };
    if let Ok(entries) = crate::project::read_ideas_archive(&folder.root.join("ideas.json")) {
        if let Some(v) = entries
            .iter()
            .find(|e| crate::project::entry_name(e) == Some(folder.name.as_str()))
        {
            if let Ok(idea) = Idea::from_value(v) {
                return Ok(idea);
            }
        }
    }
    let notes = std::fs::read_to_string(folder.root.join("notes.txt")).map_err(|_| unknown())?;
    let field = |prefix: &str| {
        notes
            .lines()
            .find_map(|l| l.strip_prefix(prefix))
            .map(str::trim)
            .map(str::to_owned)
    };
    let (Some(title), Some(experiment)) = (field("# Title:"), field("# Experiment description:")) else {
        return Err(unknown());
    };
    let v = serde_json::json!({
        "Name": folder.name, "Title": title, "Experiment": experiment,
        "Interestingness": 5, "Feasibility": 5, "Novelty": 5
    });
    Idea::from_value(&v).map_err(|_| unknown())
}

/// What a finished experiment stage reports.
pub struct ExperimentOutcome {
    pub report: ExperimentReport,
    /// What the stage's model calls cost.
    pub spend: Spend,
}

impl ExperimentOutcome {
    pub fn summary(&self) -> String {
        let r = &self.report;
        let done: Vec<String> = r.completed.iter().map(|c| format!("run_{}", c.run)).collect();
        let mut s = match done.len() {
            0 => "no run completed".to_owned(),
            n => format!("{n} run(s) completed ({})", done.join(", ")),
        };
        if !r.failed.is_empty() {
            s.push_str(&format!(", {} failed attempt(s)", r.failed.len()));
        }
        s.push_str(match r.end {
            RunsEnd::AllCompleted => "; the model finished (ALL_COMPLETED)",
            RunsEnd::MaxRuns => "; all runs used",
            RunsEnd::AttemptsExhausted { .. } => {
                "; stopped: a run used up its attempts (completed runs are kept)"
            }
            RunsEnd::Cancelled => "; cancelled (completed runs are kept)",
            RunsEnd::Searched => "",
        });
        if let Some(t) = &r.tree {
            s.push_str(&format!("; {}", crate::stages::search::tree_line(t)));
        }
        if let Some(p) = &r.plot {
            if p.succeeded {
                s.push_str(&format!(
                    "; plots: {}",
                    match (p.figures.is_empty(), &p.no_figure) {
                        (false, _) => p.figures.join(", "),
                        (true, Some(why)) => format!("none ({why})"),
                        (true, None) => "none".into(),
                    }
                ));
            } else {
                s.push_str(&format!("; plotting failed after {} attempt(s)", p.attempts));
            }
            if let Some(c) = &p.critique {
                s.push_str(&format!("; {c}"));
            }
        }
        if r.notes_updated {
            s.push_str("; notes.txt updated");
        }
        for w in &r.warnings {
            s.push_str(&format!("; {w}"));
        }
        s.push_str(&format!(". {}", self.spend.line()));
        s
    }
}

/// What the experiment stage works on.
pub struct ExperimentRequest<'a> {
    pub folder: &'a IdeaFolder,
    pub idea: &'a Idea,
    pub settings: &'a Settings,
    pub llm: &'a Llm,
}

/// Runs the experiment loop, plotting and notes in the idea folder; edits go to the
/// host's sink, runs and edits are reported as events.
pub async fn run(req: ExperimentRequest<'_>, host: &StageHost<'_>) -> Result<ExperimentOutcome, StageError> {
    let ExperimentRequest {
        folder,
        idea,
        settings,
        llm,
    } = req;
    let runner = shared_runner(settings).await;
    let expected = crate::stages::estimate::estimate(
        settings,
        &crate::stages::estimate::Sizes::of_folder(&folder.root),
        crate::stages::estimate::Stage::Experiment,
    );
    let ctx = ExperimentCtx {
        llm,
        sink: host.sink,
        runner: runner.as_ref(),
        folder,
        idea,
        settings: &settings.experiment,
        python: &settings.run.python,
        temperature: Some(settings.llm.temperature),
        max_tokens: settings.llm.max_tokens,
        progress: host,
        events: host,
        cancel: host.cancel,
    };
    let result = run_experiments(&ctx).await;
    record_usage(&folder.root, &llm.records(), Some(expected), host);
    Ok(ExperimentOutcome {
        report: result?,
        spend: Spend::of(llm),
    })
}

/// `python experiment.py --out_dir=run_0` in the template (no model).
pub async fn baseline(
    template: &Template,
    settings: &Settings,
    cancel: &CancellationToken,
) -> Result<RunRecord, StageError> {
    let runner = shared_runner(settings).await;
    Ok(run_baseline(
        template,
        runner.as_ref(),
        &settings.experiment,
        &settings.run.python,
        cancel,
    )
    .await?)
}
