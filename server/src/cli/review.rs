//! `aisci review`: the paper of an idea folder reviewed (and with --improvement revised and reviewed again).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{ctrl_c_token, open_idea_folder, report, Stderr};

#[derive(clap::Args)]
pub struct Args {
    #[arg(long)]
    idea_folder: PathBuf,
    #[arg(long)]
    improvement: bool,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    report(review(&a.idea_folder, a.improvement, model).await)
}

/// `aisci review --idea-folder DIR [--improvement]`.
async fn review(dir: &Path, improvement: bool, model: Option<String>) -> anyhow::Result<()> {
    use crate::stages::review::{self as review_stage, ReviewDeps};
    let flag_model = model.is_some();
    let (root, idea, mut loaded) = open_idea_folder(dir, model)?;
    if flag_model {
        // --model names the model for this command, over review.model too.
        loaded.settings.review.model = None;
        loaded.settings.writeup.model = None;
    }
    let s = &loaded.settings;
    let llm = review_stage::reviewer_llm(s, &root)?;
    let cancel = ctrl_c_token();
    eprintln!(
        "aisci: reviewing {} with {} via {} ({} reviewer(s), {} reflection round(s))",
        root.display(),
        llm.provider().model(),
        llm.provider().name(),
        s.review.ensemble,
        s.review.reflection_rounds
    );
    let deps = || ReviewDeps {
        llm: &llm,
        progress: &Stderr,
        cancel: &cancel,
    };
    let first = review_stage::run_review(&root, &idea, s, deps(), false).await?;
    println!("{}", first.summary());
    if !improvement {
        return Ok(());
    }
    let writer = crate::stages::writeup::writeup_llm(s, &root)?;
    let revised = review_stage::revise_for_review(
        &root,
        &idea,
        s,
        None,
        crate::stages::writeup::WriteupDeps {
            llm: &writer,
            sink: &crate::agent::edit_sink::DiskSink,
            search: None,
            progress: &Stderr,
            cancel: &cancel,
        },
    )
    .await?;
    println!("revision: {}", revised.summary());
    let second = review_stage::run_review(&root, &idea, s, deps(), true).await?;
    println!("after the revision:\n{}", second.summary());
    Ok(())
}
