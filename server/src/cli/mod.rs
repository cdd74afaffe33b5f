//! The terminal front end: one file per command family. Each command parses its
//! arguments (the `Args` beside it), runs its stage and prints what it reports.

pub mod apply;
pub mod batch;
pub mod check;
pub mod contain;
pub mod demo;
pub mod doctor;
pub mod experiment;
pub mod ideas;
pub mod launch;
pub mod novelty;
pub mod review;
pub mod review_bench;
pub mod run;
pub mod runs;
pub mod writeup;

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use std::sync::{Arc, OnceLock};

use crate::jobs::{JobGuard, Jobs};

use crate::config::{self, Sources};
use crate::project::Template;
use crate::stages;
use crate::stages::host::{StageEvent, StageEvents};

/// How a terminal shows a stage's events: progress, notices and the model's edits on
/// stderr, each run's headline on stdout; with a tag (`[idea] `) when several ideas share
/// the terminal.
#[derive(Default)]
pub(crate) struct Terminal {
    /// The baseline's means, to say how each run compares.
    pub baseline: Option<serde_json::Value>,
    pub tag: String,
}

impl StageEvents for Terminal {
    fn event(&self, event: StageEvent) {
        let tag = &self.tag;
        match event {
            StageEvent::Progress { message, percent } => match percent {
                Some(p) => eprintln!("[{p:>3}%] {tag}{message}"),
                None => eprintln!("       {tag}{message}"),
            },
            StageEvent::Notice(n) => eprintln!("aisci: {tag}{n}"),
            StageEvent::Warning(w) => eprintln!("aisci: {tag}warning: {w}"),
            StageEvent::EditsApplied { files } => {
                eprintln!("aisci: {tag}the model edited {}", files.join(", "))
            }
            StageEvent::RunStarted { run, attempt } => eprintln!("aisci: {tag}run_{run}, attempt {attempt}…"),
            StageEvent::RunFinished(record) => {
                println!(
                    "{tag}{}",
                    crate::project::headline(&record, self.baseline.as_ref())
                )
            }
            StageEvent::NodeChanged {
                line, ended: true, ..
            } => println!("{tag}{line}"),
            StageEvent::NodeChanged { .. } => {}
        }
    }
}

/// The baseline's means of an experiment folder, when it has a baseline.
pub(crate) fn baseline_means(root: &Path) -> Option<serde_json::Value> {
    crate::project::read_baseline(root)
        .ok()
        .map(|b| serde_json::Value::Object(b.means_by_dataset()))
}

/// An error and its causes on one line. Many of our errors already show their source in
/// their own text (`"...: {source}"`), so a cause whose text is already there is left
/// out: anyhow's `{:#}` would print it twice.
pub(crate) fn error_line(e: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in e.chain() {
        let text = cause.to_string();
        if line.contains(&text) {
            continue;
        }
        if !line.is_empty() {
            line.push_str(": ");
        }
        line.push_str(&text);
    }
    line
}

pub(crate) fn report(r: anyhow::Result<()>) -> ExitCode {
    match r {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("aisci: {}", error_line(&e));
            ExitCode::FAILURE
        }
    }
}

/// The jobs of this command, in the registry the editor's jobs use: one stage at a time
/// per folder, and Ctrl-C cancels them all (each stage keeps what it finished).
pub(crate) fn registry() -> &'static Arc<Jobs> {
    static JOBS: OnceLock<Arc<Jobs>> = OnceLock::new();
    JOBS.get_or_init(|| {
        let jobs = Jobs::new();
        let on_ctrl_c = jobs.clone();
        tokio::spawn(async move {
            if tokio::signal::ctrl_c().await.is_ok() {
                eprintln!("aisci: cancelling (finished ideas are kept)…");
                on_ctrl_c.cancel_all();
            }
        });
        jobs
    })
}

/// Registers this command's stage as a job on `target` (its folder).
pub(crate) fn job(title: &str, target: &Path) -> anyhow::Result<JobGuard> {
    Ok(registry().start(title, &target.display().to_string())?)
}
/// The idea folder, its idea's name and its settings (warnings printed).
pub(crate) fn open_idea_folder(
    dir: &Path,
    model: Option<String>,
) -> anyhow::Result<(PathBuf, String, config::Loaded)> {
    let root = std::fs::canonicalize(dir).map_err(|e| anyhow::anyhow!("{}: {e}", dir.display()))?;
    let idea = crate::project::IdeaFolder::idea_name_of(&root);
    let mut src = Sources::from_system(Some(&root));
    src.cli_model = model;
    let loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    Ok((root, idea, loaded))
}

/// The template at `dir` and its settings (warnings printed), with `--model` applied.
pub(crate) fn open_template(dir: &Path, model: Option<String>) -> anyhow::Result<(Template, config::Loaded)> {
    let root = std::fs::canonicalize(dir).unwrap_or_else(|_| dir.to_path_buf());
    let template = Template::open(&root).ok_or_else(|| stages::StageError::NotATemplate(root.clone()))?;
    let mut src = Sources::from_system(Some(&template.root));
    src.cli_model = model;
    let loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    Ok((template, loaded))
}

/// `--estimate`: prints what `stages` would cost on the folder at `dir` (an idea folder
/// when `idea_folder`, else a template), `ideas` times for the per-idea stages; nothing
/// is called, started or written, and no API key is needed.
pub(crate) fn print_estimate(
    dir: &Path,
    model: Option<String>,
    idea_folder: bool,
    stages: &[crate::stages::estimate::Stage],
    ideas: u32,
    adjust: impl FnOnce(&mut config::Settings),
) -> anyhow::Result<()> {
    let (mut settings, sizes) = estimate_inputs(dir, model, idea_folder)?;
    adjust(&mut settings);
    let rows = crate::stages::estimate::stages(&settings, &sizes, stages, ideas);
    print!("{}", crate::stages::estimate::table(&rows));
    Ok(())
}

/// The settings (with `--model` applied as the stage commands apply it) and the sizes
/// of the folder at `dir`.
pub(crate) fn estimate_inputs(
    dir: &Path,
    model: Option<String>,
    idea_folder: bool,
) -> anyhow::Result<(config::Settings, crate::stages::estimate::Sizes)> {
    let flag_model = model.is_some();
    let (root, mut loaded) = if idea_folder {
        let (root, _, loaded) = open_idea_folder(dir, model)?;
        (root, loaded)
    } else {
        let (t, loaded) = open_template(dir, model)?;
        (t.root, loaded)
    };
    if flag_model {
        // --model names the model of every stage.
        loaded.settings.review.model = None;
        loaded.settings.writeup.model = None;
    }
    Ok((loaded.settings, crate::stages::estimate::Sizes::of_folder(&root)))
}

/// A `--gpus` list ("0,1"; "" for none) as settings hold it.
pub(crate) fn gpu_list(list: &str) -> Vec<String> {
    list.split(',')
        .map(str::trim)
        .filter(|g| !g.is_empty())
        .map(String::from)
        .collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_cause_already_in_the_message_is_said_once() {
        #[derive(Debug, thiserror::Error)]
        #[error("stage stopped: {source}")]
        struct Stopped {
            source: std::io::Error,
        }
        let e = anyhow::Error::new(Stopped {
            source: std::io::Error::other("host unreachable"),
        });
        assert_eq!(super::error_line(&e), "stage stopped: host unreachable");
        let e = anyhow::Error::new(std::io::Error::other("disk full")).context("writing x");
        assert_eq!(super::error_line(&e), "writing x: disk full");
    }
}
