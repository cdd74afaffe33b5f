//! An idea folder's checkpoints in the editor (see `runs::checkpoint`): `aisci.listNodes`
//! answers the tree (or line) as JSON for the editors' tree views, `aisci.restoreCheckpoint`
//! puts a checkpoint's code into experiment.py as one undoable edit, `aisci.branchFrom`
//! makes it where the next experiment goes on from; and the code actions of an
//! experiment.py offer both for the best node of its search.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tower_lsp::lsp_types::CodeActionOrCommand;

use crate::agent::edit_sink::EditSink;
use crate::lsp::backend::Backend;
use crate::lsp::commands::{self, CheckpointArgs, CommandError};
use crate::lsp::edit_sink::EditorSink;
use crate::lsp::views::command_action;
use crate::project::ProjectFolder;
use crate::runs::checkpoint::{self, CheckpointError, CheckpointId};
use crate::stages::search::tree::{node_code, Tree};

fn refused(e: CheckpointError) -> CommandError {
    match e {
        CheckpointError::BadId(_) => CommandError::BadArguments(e.to_string()),
        e => CommandError::CannotStart(e.to_string()),
    }
}

/// The folder as the registry and the documents know it (the editor may send a path
/// with `..` or a link in it).
fn canonical(folder: &Path) -> PathBuf {
    std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf())
}

/// `aisci.listNodes`.
pub async fn list(b: &Backend, folder: PathBuf) -> Result<Value, CommandError> {
    let folder = canonical(&folder);
    if !folder.join("experiment.py").is_file() {
        return Err(CommandError::CannotStart(format!(
            "{} is not an idea folder (it has no experiment.py)",
            folder.display()
        )));
    }
    let tree_settings = b.state.settings_for(Some(&folder)).settings.experiment.tree;
    let listed = tokio::task::spawn_blocking(move || checkpoint::list(&folder, &tree_settings))
        .await
        .map_err(|e| CommandError::CannotStart(e.to_string()))?
        .map_err(refused)?;
    serde_json::to_value(listed).map_err(|e| CommandError::CannotStart(e.to_string()))
}

/// `aisci.restoreCheckpoint`: an open experiment.py gets the code as an editor edit (the
/// user's undo takes it back); a closed one is written on disk, the old file kept.
pub async fn restore(b: &Backend, a: CheckpointArgs) -> Result<Value, CommandError> {
    let folder = canonical(&a.folder);
    let id = CheckpointId::parse(&a.id).map_err(refused)?;
    let file = folder.join("experiment.py");
    let open = b.state.docs.lock().unwrap().contains_key(&file);
    if !open {
        let r = checkpoint::restore(&folder, id).map_err(refused)?;
        return Ok(json!({ "restored": true, "file": r.file, "kept": r.aside }));
    }
    let (_, code) = checkpoint::code(&folder, id).map_err(refused)?;
    let sink = EditorSink {
        backend: b.clone(),
        label: format!("aisci: restore {id}"),
    };
    let base = sink
        .read(&file)
        .await
        .map_err(|e| CommandError::CannotStart(e.to_string()))?;
    sink.write(&file, &base, &code)
        .await
        .map_err(|e| CommandError::CannotStart(format!("experiment.py was not changed: {e}")))?;
    Ok(json!({ "restored": true, "file": file }))
}

/// `aisci.branchFrom`: refused while a job works on the folder (its search or runs would
/// race the change).
pub async fn branch(b: &Backend, a: CheckpointArgs) -> Result<Value, CommandError> {
    let folder = canonical(&a.folder);
    let id = CheckpointId::parse(&a.id).map_err(refused)?;
    let target = folder.display().to_string();
    if let Some(job) = b.state.jobs.list().into_iter().find(|j| j.target == target) {
        return Err(CommandError::CannotStart(format!(
            "{} is running on this folder (job {}): cancel it or wait, then branch",
            job.title, job.id
        )));
    }
    let done = tokio::task::spawn_blocking(move || checkpoint::branch(&folder, id))
        .await
        .map_err(|e| CommandError::CannotStart(e.to_string()))?
        .map_err(refused)?;
    Ok(json!({ "branched": true, "message": done.message }))
}

/// On an idea folder's experiment.py after a search: restore the best node's code (when
/// the file holds other code) and branch from it.
pub fn code_actions(b: &Backend, path: &Path) -> Vec<CodeActionOrCommand> {
    let Some(ProjectFolder::Idea(f)) = b.state.folder_of(path) else {
        return Vec::new();
    };
    let Some(tree) = Tree::load(&f.root) else {
        return Vec::new();
    };
    let Some(best) = tree.best.filter(|b| *b != 0).and_then(|id| tree.node(id)) else {
        return Vec::new();
    };
    let id = format!("node_{}", best.id);
    let what = match (&tree.metric, best.score) {
        (Some(m), Some(s)) => format!("{id}, {} {s:.4}", m.name),
        _ => id.clone(),
    };
    let args = json!({ "folder": f.root, "id": id });
    let mut out = Vec::new();
    let current = b.state.text_of(path).ok();
    let best_code = std::fs::read_to_string(node_code(&f.root, best.id)).ok();
    if best_code.is_some() && current != best_code {
        out.push(command_action(
            format!("Restore the search's best code ({what})"),
            "source.aisci.restoreCheckpoint",
            "Restore a checkpoint",
            commands::RESTORE_CHECKPOINT,
            args.clone(),
        ));
    }
    out.push(command_action(
        format!("Branch the search from its best ({what})"),
        "source.aisci.branchFrom",
        "Branch from a checkpoint",
        commands::BRANCH_FROM,
        args,
    ));
    out
}
