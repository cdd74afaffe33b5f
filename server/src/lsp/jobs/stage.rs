//! Running a stage as an editor job: one job per stage and project, progress with
//! cancel, the outcome as a message (and a document to show), code lenses and
//! diagnostics refreshed, a panic reported rather than lost.

use std::future::Future;
use std::path::PathBuf;
use std::sync::Arc;

use tokio_util::sync::CancellationToken;
use tower_lsp::lsp_types::MessageType;

use crate::config::Loaded;
use crate::jobs::{JobId, Progress};
use crate::lsp::backend::Backend;
use crate::lsp::progress::LspProgress;
use crate::stages::host::{StageEvent, StageEvents};

/// How a stage ended, for the person at the editor.
pub struct StageDone {
    pub summary: String,
    /// Nothing useful came out (a warning rather than information).
    pub empty: bool,
    /// A file to bring up when something useful came out.
    pub show: Option<PathBuf>,
}

/// What the stage's body gets.
pub struct StageCtx {
    pub progress: Arc<dyn Progress>,
    pub cancel: CancellationToken,
    /// Messages for the user, shown in order by a task of their own, so a stage never
    /// waits on the client.
    messages: tokio::sync::mpsc::UnboundedSender<(MessageType, String)>,
}

/// A stage's event as the editor shows it: progress on the job's progress (and in the
/// registry), notices and warnings as messages. Runs and edits show through the documents
/// they change (diagnostics, lenses, buffers), so the jobs that care handle them before
/// passing the event on.
impl StageEvents for StageCtx {
    fn event(&self, event: StageEvent) {
        match event {
            StageEvent::Progress { message, percent } => self.progress.report(&message, percent),
            StageEvent::Notice(n) => {
                let _ = self.messages.send((MessageType::WARNING, format!("aisci: {n}")));
            }
            StageEvent::Warning(w) => {
                let _ = self.messages.send((MessageType::WARNING, format!("aisci: {w}")));
            }
            StageEvent::EditsApplied { .. }
            | StageEvent::RunStarted { .. }
            | StageEvent::RunFinished(_)
            | StageEvent::NodeChanged { .. } => {}
        }
    }
}

/// Refuses when the editor holds unsaved changes to `path`: the stage rewrites the
/// file on disk and those edits would be lost.
pub fn require_saved(backend: &Backend, path: &std::path::Path) -> Result<(), String> {
    let disk = std::fs::read_to_string(path).ok();
    let docs = backend.state.docs.lock().unwrap();
    let dirty = docs
        .get(path)
        .is_some_and(|d| d.has_unsaved_edits(disk.as_deref()));
    drop(docs);
    if dirty {
        return Err(format!(
            "{} has unsaved changes; save it first so nothing is lost",
            path.display()
        ));
    }
    Ok(())
}

/// Registers the job (one per title and project folder) and runs `body` in the background.
/// Returns the job id at once.
pub fn spawn<F, Fut>(
    backend: Backend,
    title: &'static str,
    root: &std::path::Path,
    loaded: Loaded,
    body: F,
) -> Result<JobId, String>
where
    F: FnOnce(StageCtx) -> Fut + Send + 'static,
    Fut: Future<Output = Result<StageDone, String>> + Send + 'static,
{
    let guard = backend
        .state
        .jobs
        .start(title, &root.display().to_string())
        .map_err(|e| e.to_string())?;
    let id = guard.info.id;
    let root = root.to_path_buf();
    let b = backend.clone();
    let work = tokio::spawn(async move {
        for w in b.state.new_warnings(&loaded) {
            b.client
                .show_message(MessageType::WARNING, format!("aisci: {w}"))
                .await;
        }
        let caps = b.state.caps();
        let progress = Arc::new(LspProgress::begin(&b.client, caps.work_done_progress, id, title).await);
        refresh_lenses(&b).await;
        let (messages, mut to_show) = tokio::sync::mpsc::unbounded_channel::<(MessageType, String)>();
        let client = b.client.clone();
        let shown = tokio::spawn(async move {
            while let Some((kind, text)) = to_show.recv().await {
                client.show_message(kind, text).await;
            }
        });
        let ctx = StageCtx {
            // The registry keeps the latest report too, for `aisci.listJobs`.
            progress: Arc::new(crate::jobs::TrackedProgress {
                jobs: b.state.jobs.clone(),
                id,
                inner: progress.clone(),
            }),
            cancel: guard.cancel.clone(),
            messages,
        };
        let outcome = body(ctx).await;
        // The stage's own messages come before its end.
        let _ = shown.await;
        let end = match &outcome {
            Ok(done) => done.summary.clone(),
            Err(e) => format!("{title} failed: {e}"),
        };
        // Out of the registry before the client hears "end": a job started right after
        // it (the next run) must not be refused as already running.
        drop(guard);
        if let Ok(p) = Arc::try_unwrap(progress) {
            p.finish(end.clone()).await;
        }
        refresh_lenses(&b).await;
        match outcome {
            Ok(done) => {
                let kind = if done.empty {
                    MessageType::WARNING
                } else {
                    MessageType::INFO
                };
                b.client
                    .show_message(kind, format!("aisci: {}", done.summary))
                    .await;
                if let Some(path) = done.show.as_deref().filter(|_| !done.empty) {
                    b.show_document(path);
                }
                b.publish_checks(&root).await;
            }
            Err(_) => {
                b.client
                    .show_message(MessageType::ERROR, format!("aisci: {end}"))
                    .await
            }
        }
    });
    tokio::spawn(async move {
        if let Err(e) = work.await {
            if e.is_panic() {
                backend
                    .client
                    .show_message(
                        MessageType::ERROR,
                        format!("aisci: \"{title}\" crashed; see the log"),
                    )
                    .await;
                tracing::error!("{title} job panicked: {e}");
            }
        }
    });
    Ok(id)
}

async fn refresh_lenses(b: &Backend) {
    b.refresh_lenses().await;
}
