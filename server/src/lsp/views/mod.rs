//! What a document shows: diagnostics, lenses, hovers, code actions, notifications.

pub mod agent_edits;
pub mod checkpoints;
pub mod experiment;
pub mod ideas;
pub mod jobs;
pub mod outline;
pub mod paper;
pub mod review;
pub mod run_output;
pub mod runs;

use std::path::Path;
use std::time::{Duration, Instant};

use serde_json::Value;
use tower_lsp::lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, Command};

use crate::lsp::backend::Backend;
use crate::stages::estimate::{self, Estimate, Sizes, Stage};

/// How long a worked-out estimate is reused: the folder's sizes and settings rarely change
/// between two requests, and working it out reads the settings files.
const ESTIMATE_TTL: Duration = Duration::from_secs(5);

/// What `stage` is expected to cost on `folder` (a template or an idea folder) for the
/// settings that apply there.
pub fn cost_of(b: &Backend, folder: &Path, stage: Stage) -> Estimate {
    let key = (folder.to_path_buf(), stage.name());
    let cached = b
        .state
        .estimates
        .lock()
        .unwrap()
        .get(&key)
        .filter(|(at, _)| at.elapsed() < ESTIMATE_TTL)
        .map(|(_, e)| e.clone());
    cached.unwrap_or_else(|| {
        let settings = b.state.settings_for(Some(folder)).settings;
        let e = estimate::estimate(&settings, &Sizes::of_folder(folder), stage);
        b.state
            .estimates
            .lock()
            .unwrap()
            .insert(key, (Instant::now(), e.clone()));
        e
    })
}

/// `title (~$0.40)`: a title that starts a paid stage on `folder`, with its expected cost.
pub fn with_cost(b: &Backend, title: &str, folder: &Path, stage: Stage) -> String {
    format!("{title} ({})", estimate::short(&cost_of(b, folder, stage)))
}

/// A code action of `kind` (`source.aisci.*`) that runs one of the server's commands with
/// one argument.
pub fn command_action(
    title: impl Into<String>,
    kind: &str,
    command_title: &str,
    command: &str,
    argument: Value,
) -> CodeActionOrCommand {
    CodeActionOrCommand::CodeAction(CodeAction {
        title: title.into(),
        kind: Some(CodeActionKind::from(kind.to_string())),
        command: Some(Command {
            title: command_title.into(),
            command: command.into(),
            arguments: Some(vec![argument]),
        }),
        ..Default::default()
    })
}
