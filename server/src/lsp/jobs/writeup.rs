//! "Write the paper" / "Write this section" from the editor: the writing stage as an
//! editor job whose edits to the `.tex` arrive as undoable editor edits, with engine
//! switches said as they happen; the diagnostics and the build follow.

use std::path::PathBuf;

use crate::jobs::JobId;
use crate::latex::paper::runs_folder;
use crate::lsp::backend::Backend;
use crate::lsp::edit_sink::{EditorSink, ReviewCtx};
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::lsp::views::paper as paper_view;
use crate::stages;
use crate::stages::host::StageHost;
use crate::stages::writeup::agent::{SectionRef, WriteScope};
use crate::stages::writeup::{self as writeup_stage, WriteupRequest};

use crate::stages::writeup::TITLE;

/// Starts writing `tex` (all of it, or one section).
pub fn start(backend: Backend, tex: PathBuf, section: Option<SectionRef>) -> Result<JobId, String> {
    let root = runs_folder(&tex);
    if writeup_stage::paper_tex(&root) != tex {
        return Err(format!(
            "the writing stage works on an idea folder's latex/template.tex; {} is not one",
            tex.display()
        ));
    }
    let idea = crate::project::IdeaFolder::idea_name_of(&root);
    let loaded = backend.state.settings_for(Some(&root));
    let llm = crate::stages::services::llm_for_role(
        &loaded.settings,
        &root,
        crate::stages::services::ModelRole::Writer,
    )
    .map_err(|e| e.to_string())?;
    let lit = stages::services::literature_for(&loaded.settings).ok();
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let scope = match section {
        Some(t) => WriteScope::Section(t),
        None => WriteScope::Paper,
    };
    let job_root = root.clone();
    stage_job::spawn(backend, TITLE, &job_root, loaded, move |ctx| async move {
        b.show_document_and_wait(&tex).await;
        let sink = EditorSink {
            backend: b.clone(),
            label: format!("aisci: writing {idea}"),
            review: (settings.edits.review == crate::config::ReviewMode::All)
                .then(|| ReviewCtx::new(ctx.progress.clone(), ctx.cancel.clone())),
        };
        let host = StageHost::new(&sink, &ctx, &ctx.cancel);
        let req = WriteupRequest {
            root: &root,
            idea: &idea,
            scope: &scope,
            settings: &settings,
            llm: &llm,
            literature: lit.as_deref(),
        };
        let outcome = writeup_stage::run(req, &host).await;
        // The stage built the paper itself; the editor's view of it follows.
        paper_view::publish(&b, &tex).await;
        let outcome = outcome.map_err(|e| e.to_string())?;
        Ok(StageDone {
            summary: outcome.summary(),
            empty: outcome.report.sections_written.is_empty(),
            show: None,
        })
    })
}
