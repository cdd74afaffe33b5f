//! On start, the runs an earlier aisci left in flight under the workspace folders are
//! watched again: one job per folder.

use std::path::PathBuf;

use crate::lsp::backend::Backend;
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::project::RunState;
use crate::runs::{self, problems::traceback_problems};

use crate::stages::experiment::RESUME_TITLE;

/// Re-attaches, in one job per folder, the runs an earlier aisci left in flight under
/// the workspace folders.
pub fn resume_workspace(backend: &Backend) {
    let roots = backend.state.roots.read().unwrap().clone();
    let b = backend.clone();
    tokio::spawn(async move {
        let folders = tokio::task::spawn_blocking(move || {
            runs::listing::project_folders(&roots)
                .into_iter()
                .filter(|f| !runs::pending(f).is_empty())
                .collect::<Vec<_>>()
        })
        .await
        .unwrap_or_default();
        for folder in folders {
            if let Err(e) = resume_folder(&b, folder.clone()) {
                tracing::warn!(folder = %folder.display(), "cannot re-attach runs: {e}");
            }
        }
    });
}

fn resume_folder(backend: &Backend, folder: PathBuf) -> Result<u64, String> {
    let loaded = backend.state.settings_for(Some(&folder));
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let root = folder.clone();
    stage_job::spawn(
        backend.clone(),
        RESUME_TITLE,
        &root,
        loaded,
        move |ctx| async move {
            ctx.progress.report(
                &format!("watching again the runs left in {}", folder.display()),
                None,
            );
            let results =
                crate::stages::experiment::launch::resume_runs(&folder, &settings, &ctx.cancel).await;
            let mut lines = Vec::new();
            let mut problems = Vec::new();
            for r in results {
                match r {
                    Ok(resumed) => {
                        let record = resumed.record();
                        if !record.completed && record.state == RunState::Done {
                            problems = traceback_problems(&folder, record);
                        }
                        lines.push(resumed.describe());
                    }
                    Err(e) => lines.push(format!("a record could not be written: {e}")),
                }
            }
            if !problems.is_empty() {
                b.state
                    .run_problems
                    .lock()
                    .unwrap()
                    .insert(folder.clone(), problems);
            }
            Ok(StageDone {
                summary: lines.join("; "),
                empty: false,
                show: None,
            })
        },
    )
}
