//! "Check novelty" as an editor job.

use std::path::PathBuf;

use crate::jobs::JobId;
use crate::lsp::backend::Backend;
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::project::Template;
use crate::stages::services::NoticedSearch;
use crate::stages::{self, StageError};
use tower_lsp::lsp_types::MessageType;

pub const TITLE: &str = crate::lsp::commands::CHECK_NOVELTY_TITLE;

/// What to check: every unchecked idea, or these names; `force` rechecks.
pub struct NoveltyRequest {
    pub template: PathBuf,
    pub names: Option<Vec<String>>,
    pub force: bool,
}

pub fn start(backend: Backend, req: NoveltyRequest) -> Result<JobId, String> {
    let template = Template::open(&req.template)
        .ok_or_else(|| StageError::NotATemplate(req.template.clone()).to_string())?;
    if !template.ideas_json().exists() {
        return Err(format!(
            "{} has no ideas.json yet; generate ideas first",
            template.root.display()
        ));
    }
    stage_job::require_saved(&backend, &template.ideas_json())?;
    let loaded = backend.state.settings_for(Some(&template.root));
    let llm = stages::services::llm_for(&loaded.settings, &template.root).map_err(|e| e.to_string())?;
    let search = stages::services::literature_for(&loaded.settings).map_err(|e| e.to_string())?;
    let experiment = backend
        .state
        .docs
        .lock()
        .unwrap()
        .get(&template.experiment_py())
        .map(|d| d.doc.text());
    let settings = loaded.settings.clone();
    let t = template.clone();
    let client = backend.client.clone();
    stage_job::spawn(backend, TITLE, &template.root, loaded, move |ctx| async move {
        // Engine switches (rate limits, budgets) are said once each, as they happen.
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel::<String>();
        let shown = tokio::spawn(async move {
            while let Some(notice) = rx.recv().await {
                client
                    .show_message(MessageType::WARNING, format!("aisci: {notice}"))
                    .await;
            }
        });
        let on_notice = move |n: String| {
            let _ = tx.send(n);
        };
        let noticed = NoticedSearch {
            lit: search.as_ref(),
            on_notice: &on_notice,
        };
        let outcome = stages::novelty::run_novelty(
            &t,
            &settings,
            &llm,
            &noticed,
            experiment,
            req.names.as_deref(),
            req.force,
            ctx.progress.as_ref(),
            &ctx.cancel,
        )
        .await;
        drop(on_notice);
        let _ = shown.await;
        let outcome = outcome.map_err(|e| e.to_string())?;
        Ok(StageDone {
            summary: outcome.summary(),
            empty: outcome.report.results.iter().all(|r| r.verdict.novel.is_none()),
            show: None,
        })
    })
}
