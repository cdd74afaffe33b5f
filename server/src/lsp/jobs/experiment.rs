//! Experiments from the editor: "Implement idea" (idea folder + loop), "Run
//! experiments" on an idea folder, "Run baseline" on a template. Edits land in open
//! buffers as undoable edits; a failed run's traceback becomes diagnostics.

use std::path::PathBuf;

use crate::jobs::JobId;
use crate::lsp::backend::Backend;
use crate::lsp::edit_sink::{EditorSink, ReviewCtx};
use crate::lsp::jobs::stage::{self as stage_job, StageDone};
use crate::project::{self, IdeaFolder, RunRecord, Template};
use crate::runs::problems::traceback_problems;
use crate::stages::experiment::agent::BaselineError;
use crate::stages::experiment::ExperimentRequest;
use crate::stages::host::{StageEvent, StageEvents, StageHost};
use crate::stages::{self, StageError};

use crate::stages::experiment::{BASELINE_TITLE, LAUNCH_TITLE, TITLE};

/// Run results as the editor shows them: diagnostics and code lenses.
struct EditorEvents {
    backend: Backend,
    root: PathBuf,
}

impl EditorEvents {
    /// `now`: publish at once (a run's result is about the text that just ran, which
    /// the agent may change a moment later); otherwise through the debounced check.
    fn refresh(&self, now: bool) {
        let b = self.backend.clone();
        let root = self.root.clone();
        if now {
            // Taken here, synchronously, before the agent can go on: its next edit
            // waits for this publication (see `EditorSink::write`).
            let gate = b.state.publish_gate(&root).try_lock_owned().ok();
            tokio::spawn(async move {
                b.publish_checks(&root).await;
                drop(gate);
                b.refresh_lenses().await;
            });
        } else {
            b.schedule_check(root);
            tokio::spawn(async move { b.refresh_lenses().await });
        }
    }
}

impl EditorEvents {
    fn run_started(&self) {
        // Its lens comes from the run registry.
        self.refresh(false);
    }

    fn run_finished(&self, record: &RunRecord) {
        let problems = if record.completed {
            Vec::new()
        } else {
            traceback_problems(&self.root, record)
        };
        self.backend
            .state
            .run_problems
            .lock()
            .unwrap()
            .insert(self.root.clone(), problems);
        self.refresh(true);
    }
}

/// Creates the idea folder for `idea` of `template`, opens its experiment.py and
/// starts the experiments there.
pub async fn implement(backend: Backend, template_dir: PathBuf, idea: String) -> Result<JobId, String> {
    let template = Template::open(&template_dir)
        .ok_or_else(|| StageError::NotATemplate(template_dir.clone()).to_string())?;
    let idea = stages::experiment::idea_in_template(&template, &idea).map_err(|e| e.to_string())?;
    // Check the model client before creating anything.
    let loaded = backend.state.settings_for(Some(&template.root));
    stages::services::llm_for(&loaded.settings, &template.root).map_err(|e| e.to_string())?;
    let now = chrono::Local::now().naive_local();
    let folder =
        project::create_idea_folder(&template, &project::default_results_root(&template), &idea, now)
            .map_err(|e| e.to_string())?;
    run(
        backend,
        folder.root.clone(),
        Some(folder.root.join("experiment.py")),
    )
}

/// Starts (or restarts) the experiments in an idea folder; `show` is opened in the
/// editor first, so the model's edits land in its buffer.
pub fn run(backend: Backend, dir: PathBuf, show: Option<PathBuf>) -> Result<JobId, String> {
    let folder = IdeaFolder::from_path(&dir).ok_or_else(|| {
        format!(
            "{} is not an idea folder (results/<template>/<YYYYmmdd_HHMMSS>_<Name>/)",
            dir.display()
        )
    })?;
    let idea = stages::experiment::idea_of_folder(&folder).map_err(|e| e.to_string())?;
    let loaded = backend.state.settings_for(Some(&folder.root));
    let llm = stages::services::llm_for(&loaded.settings, &folder.root).map_err(|e| e.to_string())?;
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let root = folder.root.clone();
    stage_job::spawn(backend, TITLE, &root, loaded, move |ctx| async move {
        if let Some(path) = show {
            b.show_document_and_wait(&path).await;
        }
        let sink = EditorSink {
            backend: b.clone(),
            label: format!("aisci: {}", idea.name),
            review: (settings.edits.review >= crate::config::ReviewMode::Experiment)
                .then(|| ReviewCtx::new(ctx.progress.clone(), ctx.cancel.clone())),
        };
        let events = EditorEvents {
            backend: b.clone(),
            root: folder.root.clone(),
        };
        let show = |e: StageEvent| {
            match &e {
                StageEvent::RunStarted { .. } => events.run_started(),
                StageEvent::RunFinished(record) => events.run_finished(record),
                StageEvent::NodeChanged { node, .. } => {
                    crate::lsp::views::checkpoints::notify_changed(&b, &folder.root, *node)
                }
                _ => {}
            }
            ctx.event(e);
        };
        let host = StageHost::new(&sink, &show, &ctx.cancel);
        let req = ExperimentRequest {
            folder: &folder,
            idea: &idea,
            settings: &settings,
            llm: &llm,
        };
        let outcome = stages::experiment::run(req, &host).await;
        let outcome = outcome.map_err(|e| e.to_string())?;
        Ok(StageDone {
            summary: outcome.summary(),
            empty: outcome.report.completed.is_empty(),
            show: None,
        })
    })
}

/// Runs the template's baseline; its diagnostic clears when it succeeds.
pub fn baseline(backend: Backend, dir: PathBuf) -> Result<JobId, String> {
    let template = Template::open(&dir).ok_or_else(|| StageError::NotATemplate(dir.clone()).to_string())?;
    let loaded = backend.state.settings_for(Some(&template.root));
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let root = template.root.clone();
    stage_job::spawn(backend, BASELINE_TITLE, &root, loaded, move |ctx| async move {
        ctx.progress.report("python experiment.py --out_dir=run_0", None);
        let result = stages::experiment::baseline(&template, &settings, &ctx.cancel).await;
        let problems = match &result {
            Err(StageError::Baseline(BaselineError::Failed { record, .. })) => {
                traceback_problems(&template.root, record)
            }
            _ => Vec::new(),
        };
        b.state
            .run_problems
            .lock()
            .unwrap()
            .insert(template.root.clone(), problems);
        let record = result.map_err(|e| e.to_string())?;
        Ok(StageDone {
            summary: project::headline(&record, None).replacen("run_0", "baseline (run_0)", 1),
            empty: false,
            show: None,
        })
    })
}

/// "Launch run" on any experiment.py: the editor's text is saved first (what runs
/// is what the user sees), then the next `run_i` goes through the GPU queue.
pub fn launch(backend: Backend, dir: PathBuf) -> Result<JobId, String> {
    let root = std::fs::canonicalize(&dir).unwrap_or(dir);
    let exp = root.join("experiment.py");
    if !exp.is_file() {
        return Err(format!("{} has no experiment.py", root.display()));
    }
    let buffer = backend.state.docs.lock().unwrap().get(&exp).map(|d| d.doc.text());
    if let Some(text) = buffer {
        if std::fs::read_to_string(&exp).ok().as_deref() != Some(text.as_str()) {
            crate::fsutil::write_atomic(&exp, text.as_bytes())
                .map_err(|e| format!("{}: {e}", exp.display()))?;
            if let Some(d) = backend.state.docs.lock().unwrap().get_mut(&exp) {
                d.mark_saved();
            }
        }
    }
    let loaded = backend.state.settings_for(Some(&root));
    let settings = loaded.settings.clone();
    let b = backend.clone();
    let job_root = root.clone();
    stage_job::spawn(backend, LAUNCH_TITLE, &job_root, loaded, move |ctx| async move {
        ctx.progress.report("python experiment.py --out_dir=run_i", None);
        let launched = stages::experiment::launch::launch_run(
            &root,
            &settings,
            stages::experiment::launch::LaunchOptions::default(),
            &ctx.cancel,
        )
        .await
        .map_err(|e| e.to_string())?;
        let record = &launched.record;
        let problems = if record.completed {
            Vec::new()
        } else {
            traceback_problems(&root, record)
        };
        b.state
            .run_problems
            .lock()
            .unwrap()
            .insert(root.clone(), problems);
        let baseline = project::read_baseline(&root)
            .ok()
            .map(|f| serde_json::Value::Object(f.means_by_dataset()));
        Ok(StageDone {
            summary: format!(
                "{} ({})",
                project::headline(record, baseline.as_ref()),
                launched.gpus
            ),
            empty: !record.completed,
            show: None,
        })
    })
}
