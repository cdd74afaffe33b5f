//! Agent edits in the editor as code actions: a buffer holding a model reply with
//! SEARCH/REPLACE blocks (pasted from a chat, or a reply aisci saved) gets "Apply agent
//! edits", which applies every block to its project as one workspace edit (all or none,
//! inside the project, as `aisci apply`), the failing blocks shown as diagnostics on the
//! reply; and a file with an edit waiting for review gets "Apply agent edits (N hunks)"
//! and "Reject agent edits".

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tower_lsp::lsp_types::*;

use crate::agent::edits::{apply_reply_to_folder, block_of, parse_reply, BlockError};
use crate::lsp::backend::Backend;
use crate::lsp::commands::{self, CommandError, ResolveArgs};
use crate::lsp::convert::uri_of;
use crate::lsp::edit_sink::line_edits;
use crate::lsp::views::command_action;

/// Where a reply's blocks apply: its project folder (template or idea folder), else the
/// workspace folder holding it, else its own folder.
fn folder_for(b: &Backend, reply: &Path) -> PathBuf {
    if let Some(f) = b.state.folder_of(reply) {
        return f.root().to_path_buf();
    }
    let roots = b.state.roots.read().unwrap().clone();
    roots
        .into_iter()
        .filter(|r| reply.starts_with(r))
        .max_by_key(|r| r.components().count())
        .unwrap_or_else(|| reply.parent().map(Path::to_path_buf).unwrap_or_default())
}

/// The code actions of any file: a reply's "Apply agent edits", a reviewed edit's
/// "Apply"/"Reject".
pub fn code_actions(b: &Backend, path: &Path) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    if let Some(p) = b.state.reviews.for_file(path) {
        let all: Vec<usize> = (0..p.hunks.len()).collect();
        out.push(command_action(
            format!("Apply agent edits ({} hunk(s))", p.hunks.len()),
            "source.aisci.resolveEdit",
            "Apply agent edits",
            commands::RESOLVE_EDIT,
            json!({ "id": p.id, "accept": all }),
        ));
        out.push(command_action(
            "Reject agent edits",
            "source.aisci.resolveEdit",
            "Reject agent edits",
            commands::RESOLVE_EDIT,
            json!({ "id": p.id, "accept": [] }),
        ));
    }
    // A reply lives in prose or text, never in the files it edits.
    let prose = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| matches!(e, "md" | "markdown" | "txt" | "reply" | "text"));
    if prose {
        if let Ok(text) = b.state.text_of(path) {
            let parsed = parse_reply(&text);
            if !parsed.blocks.is_empty() {
                let mut files: Vec<&str> = parsed.blocks.iter().map(|x| x.path.as_str()).collect();
                files.dedup();
                out.push(command_action(
                    format!(
                        "Apply agent edits ({} block(s) to {})",
                        parsed.blocks.len(),
                        files.join(", ")
                    ),
                    "source.aisci.applyReply",
                    "Apply agent edits",
                    commands::APPLY_REPLY,
                    json!({ "file": path }),
                ));
            }
        }
    }
    out
}

/// The 0-based line of the `n`-th (1-based) block's SEARCH marker in `reply`.
fn block_line(reply: &str, n: usize) -> Option<u32> {
    reply
        .lines()
        .enumerate()
        .filter(|(_, l)| {
            let t = l.trim_start();
            let run = t.chars().take_while(|c| *c == '<').count();
            (5..=9).contains(&run) && t[run..].trim_start().starts_with("SEARCH")
        })
        .nth(n.saturating_sub(1))
        .map(|(i, _)| i as u32)
}

/// `aisci.applyReply {"file"}`: every block of the reply in `file`, or none.
pub async fn apply_reply(b: &Backend, file: PathBuf) -> Result<Value, CommandError> {
    let reply = b
        .state
        .text_of(&file)
        .map_err(|e| CommandError::BadArguments(format!("cannot read {}: {e}", file.display())))?;
    let folder = folder_for(b, &file);
    let uri = uri_of(&file);
    let failed = |errors: Vec<BlockError>| {
        let diags: Vec<Diagnostic> = errors
            .iter()
            .map(|e| {
                let line = match block_of(e) {
                    usize::MAX => 0,
                    n => block_line(&reply, n).unwrap_or(0),
                };
                Diagnostic {
                    range: Range::new(Position::new(line, 0), Position::new(line, u32::MAX)),
                    severity: Some(DiagnosticSeverity::ERROR),
                    source: Some("aisci apply".into()),
                    message: e.to_string(),
                    ..Default::default()
                }
            })
            .collect();
        (errors, diags)
    };
    // Files with unsaved changes would be edited from what is on disk: refuse them.
    let parsed = parse_reply(&reply);
    for blk in &parsed.blocks {
        let target = folder.join(&blk.path);
        if let Err(e) = crate::lsp::jobs::stage::require_saved(b, &target) {
            return Err(CommandError::CannotStart(e));
        }
    }
    let report = match apply_reply_to_folder(&folder, &reply, None, true) {
        Ok(r) if r.files.is_empty() => {
            return Err(CommandError::CannotStart(format!(
                "{} holds no SEARCH/REPLACE block",
                file.display()
            )))
        }
        Ok(r) => r,
        Err(errors) => {
            let (errors, diags) = failed(errors);
            if let Some(uri) = uri.clone() {
                b.client.publish_diagnostics(uri, diags, None).await;
            }
            return Err(CommandError::CannotStart(format!(
                "{} block(s) do not apply; no file was changed: {}",
                errors.len(),
                errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("; ")
            )));
        }
    };
    let enc = b.state.encoding();
    let mut ops = Vec::new();
    for f in &report.files {
        let path = folder.join(&f.path);
        let Some(target) = uri_of(&path) else { continue };
        let version = b.state.docs.lock().unwrap().get(&path).map(|d| d.doc.version());
        if !path.exists() {
            ops.push(DocumentChangeOperation::Op(ResourceOp::Create(CreateFile {
                uri: target.clone(),
                options: None,
                annotation_id: None,
            })));
        }
        ops.push(DocumentChangeOperation::Edit(TextDocumentEdit {
            text_document: OptionalVersionedTextDocumentIdentifier { uri: target, version },
            edits: line_edits(&f.before, &f.after, enc)
                .into_iter()
                .map(OneOf::Left)
                .collect(),
        }));
    }
    let name = file
        .file_name()
        .map_or(String::new(), |n| n.to_string_lossy().into_owned());
    let params = ApplyWorkspaceEditParams {
        label: Some(format!("aisci: apply agent edits from {name}")),
        edit: WorkspaceEdit {
            document_changes: Some(DocumentChanges::Operations(ops)),
            ..Default::default()
        },
    };
    let answer = b
        .client
        .send_request::<request::ApplyWorkspaceEdit>(params)
        .await
        .map_err(|e| CommandError::CannotStart(format!("the editor did not apply the edits: {e}")))?;
    if !answer.applied {
        return Err(CommandError::CannotStart(format!(
            "the editor refused the edits: {}",
            answer.failure_reason.unwrap_or_else(|| "no reason given".into())
        )));
    }
    if let Some(uri) = uri {
        b.client.publish_diagnostics(uri, Vec::new(), None).await;
    }
    let files: Vec<&str> = report.files.iter().map(|f| f.path.as_str()).collect();
    Ok(json!({ "applied": true, "files": files, "folder": folder }))
}

/// `aisci.resolveEdit {id, accept}`: the user's decision reaches the waiting edit; every
/// client hears the proposal is over.
pub fn resolve(b: &Backend, a: ResolveArgs) -> Result<Value, CommandError> {
    let view = b
        .state
        .reviews
        .resolve(a.id, a.accept.clone())
        .map_err(CommandError::CannotStart)?;
    let n = view.hunks.len();
    let kept: Vec<usize> = a.accept.iter().copied().filter(|i| *i < n).collect();
    let rejected: Vec<usize> = (0..n).filter(|i| !kept.contains(i)).collect();
    let client = b.client.clone();
    tokio::spawn(async move {
        client
            .send_notification::<crate::lsp::edit_review::EditResolved>(
                json!({ "id": view.id, "reason": "resolved" }),
            )
            .await
    });
    Ok(json!({ "applied": kept, "rejected": rejected }))
}
