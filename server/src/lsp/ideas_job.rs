//! "Generate ideas" as an editor job: progress, cancellation, the result shown.

use std::path::PathBuf;
use std::time::Duration;

use tower_lsp::lsp_types::{MessageType, ShowDocumentParams};

use super::backend::Backend;
use super::convert::uri_of;
use super::progress::{LspProgress, CLIENT_REPLY_TIMEOUT};
use crate::jobs::JobId;
use crate::project::Template;
use crate::stages::{self, StageError};

pub const TITLE: &str = "Generate ideas";

/// Starts the job and returns its id at once. Errors that need no model call (not a
/// template, already running, missing API key) come back immediately.
pub fn start(backend: Backend, dir: PathBuf) -> Result<JobId, String> {
    let template = Template::open(&dir).ok_or_else(|| StageError::NotATemplate(dir.clone()).to_string())?;
    // The archive is appended on disk; unsaved edits to it in the editor would be
    // overwritten or lost, so they must be saved first.
    let ideas = template.ideas_json();
    if let Some(open) = backend.state.docs.lock().unwrap().get(&ideas) {
        let disk = std::fs::read_to_string(&ideas).unwrap_or_default();
        if open.doc.text() != disk {
            return Err(format!(
                "{} has unsaved changes; save it first so no idea is lost",
                ideas.display()
            ));
        }
    }
    let loaded = backend.state.settings_for(Some(&template.root));
    let llm = stages::llm_for(&loaded.settings, &template.root).map_err(|e| e.to_string())?;
    let guard = backend
        .state
        .jobs
        .start(TITLE, &template.root.display().to_string())
        .map_err(|e| e.to_string())?;
    let id = guard.info.id;

    let b = backend.clone();
    let work = tokio::spawn(async move {
        for w in b.state.new_warnings(&loaded) {
            b.client
                .show_message(MessageType::WARNING, format!("aisci: {w}"))
                .await;
        }
        let caps = b.state.caps();
        let progress = LspProgress::begin(&b.client, caps.work_done_progress, id, TITLE).await;
        refresh_lenses(&b).await;
        // The open buffer, saved or not, is what the ideas are about.
        let experiment = b
            .state
            .docs
            .lock()
            .unwrap()
            .get(&template.experiment_py())
            .map(|d| d.doc.text());
        let result = stages::run_ideas(
            &template,
            &loaded.settings,
            &llm,
            experiment,
            &progress,
            &guard.cancel,
        )
        .await;
        match result {
            Ok(outcome) => {
                let summary = outcome.summary();
                progress.finish(summary.clone()).await;
                drop(guard);
                refresh_lenses(&b).await;
                let kind = if outcome.report.accepted.is_empty() {
                    MessageType::WARNING
                } else {
                    MessageType::INFO
                };
                b.client.show_message(kind, format!("aisci: {summary}")).await;
                if caps.show_document && !outcome.report.accepted.is_empty() {
                    if let Some(uri) = uri_of(&outcome.report.ideas_path) {
                        let params = ShowDocumentParams {
                            uri,
                            external: Some(false),
                            take_focus: Some(true),
                            selection: None,
                        };
                        let _ =
                            tokio::time::timeout(CLIENT_REPLY_TIMEOUT, b.client.show_document(params)).await;
                    }
                }
                b.publish_checks(&template.root).await;
            }
            Err(e) => {
                let msg = format!("aisci: generating ideas failed: {e}");
                progress.finish(msg.clone()).await;
                drop(guard);
                refresh_lenses(&b).await;
                b.client.show_message(MessageType::ERROR, msg).await;
            }
        }
    });
    // A panic in the job is reported, not lost.
    let b = backend;
    tokio::spawn(async move {
        if let Err(e) = work.await {
            if e.is_panic() {
                b.client
                    .show_message(MessageType::ERROR, "aisci: the idea job crashed; see the log")
                    .await;
                tracing::error!("idea job panicked: {e}");
            }
        }
    });
    Ok(id)
}

async fn refresh_lenses(b: &Backend) {
    if b.state.caps().code_lens_refresh {
        let _ = tokio::time::timeout(Duration::from_secs(2), b.client.code_lens_refresh()).await;
    }
}
