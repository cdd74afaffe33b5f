//! What a document shows: diagnostics, lenses, hovers, code actions, notifications.

pub mod experiment;
pub mod ideas;
pub mod jobs;
pub mod paper;
pub mod review;
pub mod run_output;
pub mod runs;

use serde_json::Value;
use tower_lsp::lsp_types::{CodeAction, CodeActionKind, CodeActionOrCommand, Command};

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
