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
    if !is_open(b, &file) {
        let r = checkpoint::restore(&folder, id).map_err(refused)?;
        return Ok(json!({ "restored": true, "file": r.file, "kept": r.aside }));
    }
    restore_in_editor(b, &folder, id).await?;
    Ok(json!({ "restored": true, "file": file }))
}

fn is_open(b: &Backend, file: &Path) -> bool {
    b.state.docs.lock().unwrap().contains_key(file)
}

/// `id`'s code into the open experiment.py, as one undoable edit (written to disk too).
async fn restore_in_editor(b: &Backend, folder: &Path, id: CheckpointId) -> Result<(), CommandError> {
    let file = folder.join("experiment.py");
    let (_, code) = checkpoint::code(folder, id).map_err(refused)?;
    let sink = EditorSink::direct(b.clone(), format!("aisci: restore {id}"));
    let base = sink
        .read(&file)
        .await
        .map_err(|e| CommandError::CannotStart(e.to_string()))?;
    sink.write(&file, &base, &code)
        .await
        .map_err(|e| CommandError::CannotStart(format!("experiment.py was not changed: {e}")))
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
    // A line's branch puts the run's code into experiment.py: through the editor first
    // when it is open, so the buffer and the file agree and undo takes it back.
    if matches!(id, CheckpointId::Run(_))
        && is_open(b, &folder.join("experiment.py"))
        && Tree::load(&folder).is_none()
    {
        restore_in_editor(b, &folder, id).await?;
    }
    let done = tokio::task::spawn_blocking(move || checkpoint::branch(&folder, id))
        .await
        .map_err(|e| CommandError::CannotStart(e.to_string()))?
        .map_err(refused)?;
    Ok(json!({ "branched": true, "message": done.message }))
}

/// `aisci/searchChanged {folder, node}`: a node of the folder's search changed state, so
/// that tree views refresh while the search runs.
pub enum SearchChanged {}

impl tower_lsp::lsp_types::notification::Notification for SearchChanged {
    type Params = Value;
    const METHOD: &'static str = "aisci/searchChanged";
}

pub fn notify_changed(b: &Backend, folder: &Path, node: u32) {
    let client = b.client.clone();
    let params = json!({ "folder": folder, "node": format!("node_{node}") });
    tokio::spawn(async move { client.send_notification::<SearchChanged>(params).await });
}

/// Line runs offered as code actions (the latest ones).
const LINE_ACTIONS: usize = 8;

/// On an idea folder's experiment.py: after a search, restore the best node's code (when
/// the file holds other code) and branch from it; after a line of runs, restore any run's
/// code and branch from any run but the last.
pub fn code_actions(b: &Backend, path: &Path) -> Vec<CodeActionOrCommand> {
    let Some(ProjectFolder::Idea(f)) = b.state.folder_of(path) else {
        return Vec::new();
    };
    let current = b.state.text_of(path).ok();
    let differs = |code: &Path| {
        let kept = std::fs::read_to_string(code).ok();
        kept.is_some() && kept != current
    };
    let mut out = Vec::new();
    let mut offer = |id: &str, what: &str, restore: bool, branch: bool| {
        let args = json!({ "folder": f.root, "id": id });
        if restore {
            out.push(command_action(
                format!("Restore experiment.py to {what}"),
                "source.aisci.restoreCheckpoint",
                "Restore a checkpoint",
                commands::RESTORE_CHECKPOINT,
                args.clone(),
            ));
        }
        if branch {
            out.push(command_action(
                format!("Branch from {what}"),
                "source.aisci.branchFrom",
                "Branch from a checkpoint",
                commands::BRANCH_FROM,
                args,
            ));
        }
    };
    if let Some(tree) = Tree::load(&f.root) {
        let Some(best) = tree.best.filter(|b| *b != 0).and_then(|id| tree.node(id)) else {
            return Vec::new();
        };
        let id = format!("node_{}", best.id);
        let what = match (&tree.metric, best.score) {
            (Some(m), Some(s)) => format!("the search's best ({id}, {} {s:.4})", m.name),
            _ => format!("the search's best ({id})"),
        };
        offer(&id, &what, differs(&node_code(&f.root, best.id)), true);
        return out;
    }
    let runs: Vec<_> = crate::project::completed_runs(&f.root)
        .into_iter()
        .filter(|r| r.run >= 1)
        .collect();
    let last = runs.last().map_or(0, |r| r.run);
    for r in runs.iter().skip(runs.len().saturating_sub(LINE_ACTIONS)) {
        let id = format!("run_{}", r.run);
        let restore = differs(&checkpoint::run_code(&f.root, r));
        offer(&id, &id, restore, r.run < last);
    }
    out
}

/// The search's lens on experiment.py: one line about its tree, opening its summary.
pub fn search_lens(folder: &Path) -> Option<(String, PathBuf)> {
    let tree = Tree::load(folder)?;
    let summary = folder
        .join(crate::stages::search::tree::TREE_DIR)
        .join("summary.md");
    let open = if summary.is_file() {
        summary
    } else {
        folder.join(crate::stages::search::tree::TREE_FILE)
    };
    let mut title = crate::stages::search::tree_line(&tree);
    if let Some(b) = crate::stages::search::tree::pending_branch(folder) {
        title.push_str(&format!(" · next: from node_{b}"));
    }
    Some((title, open))
}
