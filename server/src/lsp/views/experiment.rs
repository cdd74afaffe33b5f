//! What `experiment.py` shows: its code actions (generate ideas, launch a run, run the
//! baseline) and its lenses (the job running on it, every run's state, the next step).

use std::path::Path;

use serde_json::json;
use tower_lsp::lsp_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::commands;
use crate::lsp::views::{command_action, with_cost};
use crate::project::ProjectFolder;
use crate::stages::estimate::Stage;

/// The code actions of an `experiment.py`.
pub fn code_actions(b: &Backend, path: &Path) -> Vec<CodeActionOrCommand> {
    let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
    let launch = command_action(
        "Launch run (python experiment.py --out_dir=run_i)",
        "source.aisci.launchRun",
        "Launch run",
        commands::LAUNCH_RUN,
        json!({ "folder": dir }),
    );
    let Some(ProjectFolder::Template(t)) = b.state.folder_of(path) else {
        let mut actions = vec![launch];
        actions.extend(super::checkpoints::code_actions(b, path));
        return actions;
    };
    let mut actions = vec![command_action(
        with_cost(b, "Generate ideas", &t.root, Stage::Ideas),
        "source.aisci.generateIdeas",
        "Generate ideas",
        commands::GENERATE_IDEAS,
        json!({ "template": t.root }),
    )];
    actions.push(launch);
    if !t.baseline_final_info().exists() {
        actions.push(command_action(
            "Run baseline (python experiment.py --out_dir=run_0)",
            "source.aisci.runBaseline",
            "Run baseline",
            commands::RUN_BASELINE,
            json!({ "template": t.root }),
        ));
    }
    actions
}

/// The lenses of an `experiment.py`, at its first definition.
pub async fn lenses(b: &Backend, path: &Path) -> Vec<CodeLens> {
    let folder = b.state.folder_of(path);
    // Kept facts answer at once; only a version not parsed yet goes to a blocking thread.
    let facts = match b.state.kept_python_facts(path) {
        Some(f) => Some(f),
        None => {
            let (state, path) = (b.state.clone(), path.to_path_buf());
            tokio::task::spawn_blocking(move || state.python_facts(&path).ok().flatten())
                .await
                .ok()
                .flatten()
        }
    };
    let line = facts.and_then(|f| f.first_definition).unwrap_or(0);
    let range = Range::new(Position::new(line, 0), Position::new(line, 0));
    let lens = |command: Command| CodeLens {
        range,
        command: Some(command),
        data: None,
    };
    let root = match &folder {
        Some(f) => f.root().to_path_buf(),
        None => path.parent().map(Path::to_path_buf).unwrap_or_default(),
    };
    let target = root.display().to_string();
    let running = b.state.jobs.list().into_iter().find(|j| j.target == target);
    let mut lenses = Vec::new();
    if let Some(job) = &running {
        lenses.push(lens(Command {
            title: format!("{}… (cancel)", job.title),
            command: commands::CANCEL.into(),
            arguments: Some(vec![json!(job.id)]),
        }));
    }
    let idea_folder = matches!(folder, Some(ProjectFolder::Idea(_)));
    let run_root = root.clone();
    let runs = tokio::task::spawn_blocking(move || {
        let mut items = super::runs::lens_items(&run_root, idea_folder);
        if idea_folder {
            items.extend(super::checkpoints::search_lens(&run_root));
        }
        items
    })
    .await
    .unwrap_or_default();
    for (title, open) in runs {
        lenses.push(lens(Command {
            title,
            command: commands::OPEN_RUN.into(),
            arguments: Some(vec![json!({ "path": open })]),
        }));
    }
    match &folder {
        Some(ProjectFolder::Template(t)) if running.is_none() => {
            lenses.push(lens(Command {
                title: with_cost(b, "Generate ideas", &t.root, Stage::Ideas),
                command: commands::GENERATE_IDEAS.into(),
                arguments: Some(vec![json!({ "template": t.root })]),
            }));
            if !t.baseline_final_info().exists() {
                lenses.push(lens(Command {
                    title: "Run baseline".into(),
                    command: commands::RUN_BASELINE.into(),
                    arguments: Some(vec![json!({ "template": t.root })]),
                }));
            }
        }
        Some(ProjectFolder::Idea(f)) if running.is_none() => {
            lenses.push(lens(Command {
                title: with_cost(b, "Run experiments", &f.root, Stage::Experiment),
                command: commands::RUN_EXPERIMENTS.into(),
                arguments: Some(vec![json!({ "folder": f.root })]),
            }));
        }
        _ => {}
    }
    lenses
}
