//! `aisci novelty`: the ideas of a template checked against the literature.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{job, open_template, report, Terminal};
use crate::agent::edit_sink::DiskSink;
use crate::stages;
use crate::stages::host::StageHost;
use crate::stages::novelty::NoveltyRequest;

#[derive(clap::Args)]
pub struct Args {
    /// The template whose ideas.json is checked.
    #[arg(long, default_value = ".")]
    template: PathBuf,
    /// Only these ideas (by Name); repeatable. Default: every unchecked idea.
    #[arg(long = "idea")]
    ideas: Vec<String>,
    /// Check again ideas that already have a verdict.
    #[arg(long)]
    force: bool,
    /// Print the expected tokens and cost, and stop (no model call, no search).
    #[arg(long)]
    estimate: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.estimate {
        use crate::stages::estimate::Stage;
        // The ideas it would check: those named, else those without a verdict.
        let count = if a.ideas.is_empty() {
            std::fs::read_to_string(a.template.join("ideas.json"))
                .ok()
                .and_then(|t| serde_json::from_str::<Vec<serde_json::Value>>(&t).ok())
                .map(|v| v.iter().filter(|i| a.force || i.get("novel").is_none()).count())
                .unwrap_or(0)
        } else {
            a.ideas.len()
        };
        return report(super::print_estimate(
            &a.template,
            model,
            false,
            &[Stage::Novelty],
            count as u32,
            |_| {},
        ));
    }
    report(novelty(&a.template, model, a.ideas, a.force).await)
}

async fn novelty(dir: &Path, model: Option<String>, ideas: Vec<String>, force: bool) -> anyhow::Result<()> {
    let (template, loaded) = open_template(dir, model)?;
    if !template.ideas_json().exists() {
        anyhow::bail!(
            "{} does not exist: there are no ideas to check yet; generate some first: aisci ideas --template {}",
            template.ideas_json().display(),
            dir.display()
        );
    }
    let s = &loaded.settings;
    let llm = stages::services::llm_for(s, &template.root)?;
    let search = stages::services::literature_for(s)?;
    eprintln!(
        "aisci: checking novelty in {} with {} via {}; engines: {}",
        template.ideas_json().display(),
        llm.provider().model(),
        llm.provider().name(),
        s.literature.engines.join(", ")
    );
    let job = job(stages::novelty::TITLE, &template.root)?;
    let cancel = job.cancel.clone();
    let only = (!ideas.is_empty()).then_some(ideas.as_slice());
    // Engine switches are said as they happen.
    let terminal = Terminal::default();
    let host = StageHost::new(&DiskSink, &terminal, &cancel);
    let req = NoveltyRequest {
        template: &template,
        settings: s,
        llm: &llm,
        literature: search.as_ref(),
        experiment_text: None,
        only,
        force,
    };
    let outcome = stages::novelty::run(req, &host).await?;
    for r in &outcome.report.results {
        let verdict = match r.verdict.novel {
            Some(true) => "novel",
            Some(false) => "not novel",
            None => "not checked",
        };
        println!("{}: {verdict} — {}", r.name, r.verdict.reason);
    }
    println!("{}", outcome.summary());
    Ok(())
}
