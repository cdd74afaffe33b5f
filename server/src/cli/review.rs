//! `aisci review`: the paper of an idea folder reviewed (and with --improvement revised and reviewed again).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{job, open_idea_folder, report, Terminal};
use crate::agent::edit_sink::DiskSink;
use crate::stages::host::StageHost;
use crate::stages::review::{self as review_stage, ReviewRequest, ReviseRequest};

#[derive(clap::Args)]
pub struct Args {
    /// The idea folder whose paper is reviewed (its latex/template.pdf, else the .tex).
    #[arg(long)]
    idea_folder: PathBuf,
    /// Then revise the paper for every comment and review it again
    /// (review_improved.txt beside the first review).
    #[arg(long)]
    improvement: bool,
    /// Print the expected tokens and cost, and stop (no model call).
    #[arg(long)]
    estimate: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.estimate {
        use crate::stages::estimate::Stage;
        // --improvement: a revision per comment (a writeup turn each) and a second review.
        let stages: &[Stage] = if a.improvement {
            &[Stage::Review, Stage::Writeup, Stage::Review]
        } else {
            &[Stage::Review]
        };
        return report(super::print_estimate(
            &a.idea_folder,
            model,
            true,
            stages,
            1,
            |_| {},
        ));
    }
    report(review(&a.idea_folder, a.improvement, model).await)
}

/// `aisci review --idea-folder DIR [--improvement]`.
async fn review(dir: &Path, improvement: bool, model: Option<String>) -> anyhow::Result<()> {
    let flag_model = model.is_some();
    let (root, idea, mut loaded) = open_idea_folder(dir, model)?;
    if flag_model {
        // --model names the model for this command, over review.model too.
        loaded.settings.review.model = None;
        loaded.settings.writeup.model = None;
    }
    let s = &loaded.settings;
    let llm = crate::stages::services::llm_for_role(s, &root, crate::stages::services::ModelRole::Reviewer)?;
    let job = job(review_stage::TITLE, &root)?;
    let cancel = job.cancel.clone();
    eprintln!(
        "aisci: reviewing {} with {} via {} ({} reviewer(s), {} reflection round(s))",
        root.display(),
        llm.provider().model(),
        llm.provider().name(),
        s.review.ensemble,
        s.review.reflection_rounds
    );
    let terminal = Terminal::default();
    let host = StageHost::new(&DiskSink, &terminal, &cancel);
    let review = |improved| ReviewRequest {
        root: &root,
        idea: &idea,
        settings: s,
        llm: &llm,
        improved,
    };
    let first = review_stage::run(review(false), &host).await?;
    println!("{}", first.summary());
    if !improvement {
        return Ok(());
    }
    let writer = crate::stages::services::llm_for_role(s, &root, crate::stages::services::ModelRole::Writer)?;
    let revision = ReviseRequest {
        root: &root,
        idea: &idea,
        settings: s,
        llm: &writer,
        only: None,
    };
    let revised = review_stage::revise(revision, &host).await?;
    println!("revision: {}", revised.summary());
    let second = review_stage::run(review(true), &host).await?;
    println!("after the revision:\n{}", second.summary());
    Ok(())
}
