//! "Review the paper", "Revise to address this comment" and "Revise for all comments"
//! as editor jobs: the review writes `review.json` and its comments appear on the paper;
//! a revision's edits arrive as undoable editor edits; revising for all comments then
//! reviews again (v1's `--improvement`), with the new scores beside the old.

use std::path::{Path, PathBuf};

use crate::agent::edit_sink::DiskSink;
use crate::jobs::JobId;
use crate::lsp::backend::Backend;
use crate::lsp::edit_sink::{EditorSink, ReviewCtx};
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::lsp::views::paper as paper_view;
use crate::lsp::views::review::idea_root;
use crate::stages::host::StageHost;
use crate::stages::review::agent::ReviewError;
use crate::stages::review::{self as review_stage, ReviewRequest, ReviewStageError, ReviseRequest};

use crate::stages::review::{REVISE_TITLE, TITLE as REVIEW_TITLE};

fn folder_and_idea(tex: &Path) -> Result<(PathBuf, String), String> {
    let root = idea_root(tex).ok_or_else(|| {
        format!(
            "the review works on an idea folder's latex/template.tex; {} is not one",
            tex.display()
        )
    })?;
    let idea = crate::project::IdeaFolder::idea_name_of(&root);
    Ok((root, idea))
}

/// Reviews the paper `tex` (its PDF when current, else its source).
pub fn start_review(backend: Backend, tex: PathBuf) -> Result<JobId, String> {
    let (root, idea) = folder_and_idea(&tex)?;
    stage_job::require_saved(&backend, &tex)?;
    let loaded = backend.state.settings_for(Some(&root));
    let llm = crate::stages::services::llm_for_role(
        &loaded.settings,
        &root,
        crate::stages::services::ModelRole::Reviewer,
    )
    .map_err(|e| e.to_string())?;
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let job_root = root.clone();
    stage_job::spawn(backend, REVIEW_TITLE, &job_root, loaded, move |ctx| async move {
        let host = StageHost::new(&DiskSink, &ctx, &ctx.cancel);
        let req = ReviewRequest {
            root: &root,
            idea: &idea,
            settings: &settings,
            llm: &llm,
            improved: false,
        };
        let outcome = review_stage::run(req, &host).await;
        paper_view::publish(&b, &tex).await;
        let outcome = match outcome {
            Err(ReviewStageError::Review(ReviewError::Cancelled)) => {
                return Ok(StageDone {
                    summary: "review cancelled; nothing was written (an earlier review is kept)".into(),
                    empty: true,
                    show: None,
                })
            }
            other => other.map_err(|e| e.to_string())?,
        };
        Ok(StageDone {
            summary: outcome.summary(),
            empty: false,
            show: None,
        })
    })
}

/// Revises the paper for one comment (`comment`: its id), or for every open comment and
/// then reviews it again.
pub fn start_revise(backend: Backend, tex: PathBuf, comment: Option<String>) -> Result<JobId, String> {
    let (root, idea) = folder_and_idea(&tex)?;
    if review_stage::read_review(&root).is_none() {
        return Err(format!(
            "{} has no review yet: review the paper first",
            root.display()
        ));
    }
    let loaded = backend.state.settings_for(Some(&root));
    let writer = crate::stages::services::llm_for_role(
        &loaded.settings,
        &root,
        crate::stages::services::ModelRole::Writer,
    )
    .map_err(|e| e.to_string())?;
    let reviewer = match comment {
        Some(_) => None,
        None => Some(
            crate::stages::services::llm_for_role(
                &loaded.settings,
                &root,
                crate::stages::services::ModelRole::Reviewer,
            )
            .map_err(|e| e.to_string())?,
        ),
    };
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let job_root = root.clone();
    stage_job::spawn(backend, REVISE_TITLE, &job_root, loaded, move |ctx| async move {
        b.show_document_and_wait(&tex).await;
        let sink = EditorSink {
            backend: b.clone(),
            label: format!("aisci: revising {idea} for the review"),
            review: (settings.edits.review == crate::config::ReviewMode::All)
                .then(|| ReviewCtx::new(ctx.progress.clone(), ctx.cancel.clone())),
        };
        let host = StageHost::new(&sink, &ctx, &ctx.cancel);
        let req = ReviseRequest {
            root: &root,
            idea: &idea,
            settings: &settings,
            llm: &writer,
            only: comment.as_deref(),
        };
        let revised = review_stage::revise(req, &host).await;
        paper_view::publish(&b, &tex).await;
        let revised = revised.map_err(|e| e.to_string())?;
        let mut summary = format!("revision: {}", revised.summary());
        let changed = !revised.report.sections_written.is_empty();
        if let (Some(reviewer), false) = (&reviewer, revised.report.cancelled) {
            let req = ReviewRequest {
                root: &root,
                idea: &idea,
                settings: &settings,
                llm: reviewer,
                improved: true,
            };
            let again = review_stage::run(req, &host).await;
            paper_view::publish(&b, &tex).await;
            match again {
                Ok(again) => summary.push_str(&format!("\nreviewed again:\n{}", again.summary())),
                Err(ReviewStageError::Review(ReviewError::Cancelled)) => {
                    summary.push_str("\nthe second review was cancelled")
                }
                Err(e) => return Err(format!("{summary}\nthe second review failed: {e}")),
            }
        }
        Ok(StageDone {
            summary,
            empty: !changed,
            show: None,
        })
    })
}
