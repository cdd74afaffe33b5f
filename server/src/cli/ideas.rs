//! `aisci ideas`: new research ideas for a template, appended to its ideas.json.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{job, open_template, report, Terminal};
use crate::agent::edit_sink::DiskSink;
use crate::config;
use crate::stages;
use crate::stages::host::StageHost;
use crate::stages::ideas::IdeasRequest;

#[derive(clap::Args)]
pub struct Args {
    /// The template folder (experiment.py, prompt.json, seed_ideas.json).
    #[arg(long, default_value = ".")]
    template: PathBuf,
    /// Number of new ideas.
    #[arg(short = 'n', long)]
    num_ideas: Option<u32>,
    /// Rounds per idea, the first included.
    #[arg(long)]
    reflections: Option<u32>,
    /// Print the expected tokens and cost, and stop (no model call).
    #[arg(long)]
    estimate: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.estimate {
        use crate::stages::estimate::Stage;
        let (n, r) = (a.num_ideas, a.reflections);
        return report(super::print_estimate(
            &a.template,
            model,
            false,
            &[Stage::Ideas],
            1,
            |s| {
                if let Some(n) = n {
                    s.ideas.num_ideas = n.max(1);
                }
                if let Some(r) = r {
                    s.ideas.num_reflections = r.max(1);
                }
            },
        ));
    }
    report(ideas(&a.template, model, a.num_ideas, a.reflections, None).await)
}

async fn ideas(
    dir: &Path,
    model: Option<String>,
    num_ideas: Option<u32>,
    reflections: Option<u32>,
    replay: Option<PathBuf>,
) -> anyhow::Result<()> {
    let (template, mut loaded) = open_template(dir, model)?;
    let s = &mut loaded.settings;
    if let Some(n) = num_ideas {
        s.ideas.num_ideas = n.max(1);
    }
    if let Some(r) = reflections {
        s.ideas.num_reflections = r.max(1);
    }
    if let Some(rec) = replay {
        s.llm.provider = config::ProviderKind::Replay;
        s.llm.replay_file = Some(rec);
    }
    let llm = stages::services::llm_for(s, &template.root)?;
    eprintln!(
        "aisci: generating {} idea(s) for {} with {} via {}",
        s.ideas.num_ideas,
        template.root.display(),
        llm.provider().model(),
        llm.provider().name()
    );
    let job = job(stages::ideas::TITLE, &template.root)?;
    let cancel = job.cancel.clone();
    let terminal = Terminal::default();
    let host = StageHost::new(&DiskSink, &terminal, &cancel);
    let req = IdeasRequest {
        template: &template,
        settings: s,
        llm: &llm,
        experiment_text: None,
    };
    let outcome = stages::ideas::run(req, &host).await?;
    for idea in &outcome.report.accepted {
        println!(
            "{}: {} (interestingness {}, feasibility {}, novelty {})",
            idea.name, idea.title, idea.interestingness, idea.feasibility, idea.novelty
        );
    }
    println!("{}", outcome.summary());
    Ok(())
}
