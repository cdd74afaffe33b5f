//! "Check novelty" as an editor job.

use crate::agent::edit_sink::DiskSink;
use crate::jobs::JobId;
use crate::lsp::backend::Backend;
use crate::lsp::commands::NoveltyArgs;
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::project::Template;
use crate::stages::host::StageHost;
use crate::stages::novelty::NoveltyRequest;
use crate::stages::{self, StageError};

use crate::stages::novelty::TITLE;

pub fn start(backend: Backend, req: NoveltyArgs) -> Result<JobId, String> {
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
    let experiment = backend.state.open_text(&template.experiment_py());
    let settings = loaded.settings.clone();
    let t = template.clone();
    stage_job::spawn(backend, TITLE, &template.root, loaded, move |ctx| async move {
        // Engine switches (rate limits, budgets) are said once each, as they happen.
        let host = StageHost::new(&DiskSink, &ctx, &ctx.cancel);
        let stage = NoveltyRequest {
            template: &t,
            settings: &settings,
            llm: &llm,
            literature: search.as_ref(),
            experiment_text: experiment,
            only: req.ideas.as_deref(),
            force: req.force,
        };
        let outcome = stages::novelty::run(stage, &host).await;
        let outcome = outcome.map_err(|e| e.to_string())?;
        Ok(StageDone {
            summary: outcome.summary(),
            empty: outcome.report.results.iter().all(|r| r.verdict.novel.is_none()),
            show: None,
        })
    })
}
