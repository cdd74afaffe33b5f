//! `aisci experiment`: one idea implemented in its folder (several at once: `batch`).

use std::path::PathBuf;
use std::process::ExitCode;

use super::{baseline_means, job, open_template, report, Terminal};
use crate::agent::edit_sink::DiskSink;
use crate::config::{self, Sources};
use crate::stages;
use crate::stages::experiment::ExperimentRequest;
use crate::stages::host::StageHost;

#[derive(clap::Args)]
pub struct Args {
    /// An idea folder (results/<template>/<YYYYmmdd_HHMMSS>_<Name>/).
    #[arg(long, conflicts_with_all = ["template", "idea"])]
    idea_folder: Option<PathBuf>,
    /// Or: a template and the Name of one of its ideas (repeat --idea for several);
    /// each idea gets a new idea folder.
    #[arg(long, requires = "idea")]
    template: Option<PathBuf>,
    /// The Name of an idea in the template's ideas.json (with --template); repeat it for
    /// several ideas.
    #[arg(long, requires = "template")]
    idea: Vec<String>,
    /// How many ideas run at once, each in its own folder with its own conversation;
    /// their runs share the GPU queue (one GPU each while they run). Default: one
    /// per GPU slot (or CPU slot).
    #[arg(long, requires = "template", value_parser = clap::value_parser!(u32).range(1..))]
    parallel: Option<u32>,
    /// Print the expected tokens and cost, and stop (no model call, no run).
    #[arg(long)]
    estimate: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.estimate {
        use crate::stages::estimate::Stage;
        let (dir, idea_folder) = match (&a.idea_folder, &a.template) {
            (Some(f), _) => (f.clone(), true),
            (None, Some(t)) => (t.clone(), false),
            (None, None) => {
                return report(Err(anyhow::anyhow!(
                    "--estimate needs --idea-folder or --template"
                )))
            }
        };
        let ideas = a.idea.len().max(1) as u32;
        return report(super::print_estimate(
            &dir,
            model,
            idea_folder,
            &[Stage::Experiment],
            ideas,
            |_| {},
        ));
    }
    if a.idea.len() > 1 || a.parallel.is_some() {
        let template = a.template.expect("clap: --parallel requires --template");
        report(super::batch::experiments_in_parallel(&template, a.idea, a.parallel, model).await)
    } else {
        report(experiment(a.idea_folder, a.template, a.idea.into_iter().next(), model).await)
    }
}

async fn experiment(
    folder: Option<PathBuf>,
    template: Option<PathBuf>,
    idea_name: Option<String>,
    model: Option<String>,
) -> anyhow::Result<()> {
    use crate::project::{self, IdeaFolder};
    // Settings and the model client come first, so a missing key stops us before
    // anything is created or run.
    let existing = match &folder {
        Some(dir) => {
            let dir = std::fs::canonicalize(dir).unwrap_or(dir.clone());
            Some(IdeaFolder::from_path(&dir).ok_or_else(|| {
                anyhow::anyhow!(
                    "{} is not an idea folder (results/<template>/<YYYYmmdd_HHMMSS>_<Name>/)",
                    dir.display()
                )
            })?)
        }
        None => None,
    };
    let template = match (&existing, template) {
        (None, Some(t)) => Some(open_template(&t, None)?.0),
        (None, None) => anyhow::bail!("give --idea-folder DIR, or --template DIR --idea NAME"),
        _ => None,
    };
    let root = existing
        .as_ref()
        .map(|f| f.root.clone())
        .or(template.as_ref().map(|t| t.root.clone()))
        .unwrap();
    let mut src = Sources::from_system(Some(&root));
    src.cli_model = model;
    let loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    let s = &loaded.settings;
    let llm = stages::services::llm_for(s, &root)?;
    let (folder, idea) = match (existing, template, idea_name) {
        (Some(f), _, _) => {
            let idea = stages::experiment::idea_of_folder(&f)?;
            (f, idea)
        }
        (None, Some(template), Some(name)) => {
            let idea = stages::experiment::idea_in_template(&template, &name)?;
            let now = chrono::Local::now().naive_local();
            let f = project::create_idea_folder(
                &template,
                &project::default_results_root(&template),
                &idea,
                now,
            )?;
            eprintln!("aisci: created {}", f.root.display());
            (f, idea)
        }
        _ => anyhow::bail!("give --idea-folder DIR, or --template DIR --idea NAME"),
    };
    eprintln!(
        "aisci: implementing {} in {} with {} via {}",
        idea.name,
        folder.root.display(),
        llm.provider().model(),
        llm.provider().name()
    );
    let terminal = Terminal {
        baseline: baseline_means(&folder.root),
        ..Default::default()
    };
    let job = job(stages::experiment::TITLE, &folder.root)?;
    let cancel = job.cancel.clone();
    let host = StageHost::new(&DiskSink, &terminal, &cancel);
    let req = ExperimentRequest {
        folder: &folder,
        idea: &idea,
        settings: s,
        llm: &llm,
    };
    let outcome = stages::experiment::run(req, &host).await?;
    println!("{}", outcome.summary());
    if s.experiment.search == config::SearchMode::Tree {
        // The tree itself, as `aisci runs list` prints it.
        if let Ok(c) = crate::runs::checkpoint::list(&folder.root, &s.experiment.tree) {
            print!("{}", crate::runs::checkpoint::render_text(&c));
        }
    }
    Ok(())
}
