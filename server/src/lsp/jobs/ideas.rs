//! "Generate ideas" as an editor job.

use std::path::PathBuf;

use crate::agent::edit_sink::DiskSink;
use crate::jobs::JobId;
use crate::lsp::backend::Backend;
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::project::Template;
use crate::stages::host::StageHost;
use crate::stages::ideas::IdeasRequest;
use crate::stages::{self, StageError};

use crate::stages::ideas::TITLE;

/// Starts the job and returns its id at once. Errors that need no model call (not a
/// template, already running, missing API key, unsaved ideas.json) come back at once.
pub fn start(backend: Backend, dir: PathBuf) -> Result<JobId, String> {
    let template = Template::open(&dir).ok_or_else(|| StageError::NotATemplate(dir.clone()).to_string())?;
    stage_job::require_saved(&backend, &template.ideas_json())?;
    let loaded = backend.state.settings_for(Some(&template.root));
    let llm = stages::services::llm_for(&loaded.settings, &template.root).map_err(|e| e.to_string())?;
    // The open buffer, saved or not, is what the ideas are about.
    let experiment = backend.state.open_text(&template.experiment_py());
    let settings = loaded.settings.clone();
    let t = template.clone();
    stage_job::spawn(backend, TITLE, &template.root, loaded, move |ctx| async move {
        let host = StageHost::new(&DiskSink, &ctx, &ctx.cancel);
        let req = IdeasRequest {
            template: &t,
            settings: &settings,
            llm: &llm,
            experiment_text: experiment,
        };
        let outcome = stages::ideas::run(req, &host).await.map_err(|e| e.to_string())?;
        Ok(StageDone {
            summary: outcome.summary(),
            empty: outcome.report.accepted.is_empty(),
            show: Some(outcome.report.ideas_path.clone()),
        })
    })
}
