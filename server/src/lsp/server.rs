//! The `LanguageServer` handlers. Each converts, touches state briefly and returns;
//! anything slow is spawned. The features live in `views/` (what a document shows) and
//! `jobs/` (stages started for the editor); commands are read in `commands.rs`.

use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tower_lsp::jsonrpc::Result as RpcResult;
use tower_lsp::lsp_types::*;
use tower_lsp::LanguageServer;

use super::backend::Backend;
use super::commands::{self, Command, CommandError, SectionArg};
use super::convert::{self, path_of};
use super::progress::{job_of_token, CLIENT_REPLY_TIMEOUT};
use super::state::{ClientCaps, OpenDoc};
use super::views::paper as paper_view;
use super::{jobs, views};
use crate::project::find_enclosing;
use crate::workspace::{Document, Language};

fn is_file(path: &Path, name: &str) -> bool {
    path.file_name().and_then(|n| n.to_str()) == Some(name)
}

/// After a document changed: the paper's facts and the project's checks.
fn after_edit(b: &Backend, path: &Path) {
    paper_view::after_edit(b, path);
    if let Some(folder) = b.state.folder_of(path) {
        b.schedule_check(folder.root().to_path_buf());
    }
}

/// What a folder's `aisci.toml` set that was passed over because it is not trusted.
fn ignored_for_trust(root: &Path, loaded: &crate::config::Loaded) -> Vec<String> {
    if loaded.untrusted_ignored.is_empty() {
        return Vec::new();
    }
    let keys = loaded.untrusted_ignored.join(", ");
    vec![format!("{keys} in {}", root.join("aisci.toml").display())]
}

#[tower_lsp::async_trait]
impl LanguageServer for Backend {
    async fn initialize(&self, params: InitializeParams) -> RpcResult<InitializeResult> {
        let enc = convert::negotiate_encoding(&params.capabilities);
        *self.state.encoding.write().unwrap() = enc;
        let caps = &params.capabilities;
        *self.state.caps.write().unwrap() = ClientCaps {
            work_done_progress: caps
                .window
                .as_ref()
                .and_then(|w| w.work_done_progress)
                .unwrap_or(false),
            show_document: caps
                .window
                .as_ref()
                .and_then(|w| w.show_document.as_ref())
                .map(|s| s.support)
                .unwrap_or(false),
            configuration: caps
                .workspace
                .as_ref()
                .and_then(|w| w.configuration)
                .unwrap_or(false),
            code_lens_refresh: caps
                .workspace
                .as_ref()
                .and_then(|w| w.code_lens.as_ref())
                .and_then(|c| c.refresh_support)
                .unwrap_or(false),
            change_annotations: caps
                .workspace
                .as_ref()
                .and_then(|w| w.workspace_edit.as_ref())
                .and_then(|e| e.change_annotation_support.as_ref())
                .is_some(),
            edit_review: caps
                .experimental
                .as_ref()
                .and_then(|e| e.get("aisciEditReview"))
                .and_then(Value::as_bool)
                .unwrap_or(false),
        };
        let mut roots: Vec<PathBuf> = params
            .workspace_folders
            .iter()
            .flatten()
            .filter_map(|f| path_of(&f.uri))
            .collect();
        if roots.is_empty() {
            #[allow(deprecated)]
            if let Some(p) = params.root_uri.as_ref().and_then(path_of) {
                roots.push(p);
            }
        }
        *self.state.roots.write().unwrap() = roots;
        self.state
            .set_editor_settings(Some(params.initialization_options), None);

        Ok(InitializeResult {
            capabilities: ServerCapabilities {
                position_encoding: Some(convert::encoding_kind(enc)),
                text_document_sync: Some(TextDocumentSyncCapability::Options(TextDocumentSyncOptions {
                    open_close: Some(true),
                    change: Some(TextDocumentSyncKind::INCREMENTAL),
                    save: Some(TextDocumentSyncSaveOptions::Supported(true)),
                    ..Default::default()
                })),
                code_action_provider: Some(CodeActionProviderCapability::Options(CodeActionOptions {
                    code_action_kinds: Some(vec![CodeActionKind::SOURCE, CodeActionKind::QUICKFIX]),
                    ..Default::default()
                })),
                code_lens_provider: Some(CodeLensOptions {
                    resolve_provider: Some(false),
                }),
                hover_provider: Some(HoverProviderCapability::Simple(true)),
                document_symbol_provider: Some(OneOf::Left(true)),
                definition_provider: Some(OneOf::Left(true)),
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec!["{".into(), ",".into()]),
                    ..Default::default()
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: commands::COMMANDS.iter().map(|c| c.to_string()).collect(),
                    ..Default::default()
                }),
                ..Default::default()
            },
            server_info: Some(ServerInfo {
                name: "aisci".into(),
                version: Some(env!("CARGO_PKG_VERSION").into()),
            }),
        })
    }

    async fn initialized(&self, _: InitializedParams) {
        // Settings warnings for each workspace root, said once, after initialization
        // (messages sent earlier would be dropped).
        let roots = self.state.roots.read().unwrap().clone();
        if roots.is_empty() {
            let loaded = self.state.settings_for(None);
            self.show_new_warnings(&loaded).await;
        }
        for root in roots {
            let loaded = self.state.settings_for(Some(&root));
            self.show_new_warnings(&loaded).await;
            super::trust::offer(self, &root, ignored_for_trust(&root, &loaded));
        }
        views::run_output::start(self.client.clone(), &self.state);
        views::runs::refresh_lenses_on_changes(self);
        // Runs an earlier aisci left running are watched again (the workspace is known now).
        jobs::resume::resume_workspace(self);
    }

    async fn shutdown(&self) -> RpcResult<()> {
        self.state.jobs.cancel_all();
        Ok(())
    }

    async fn did_open(&self, params: DidOpenTextDocumentParams) {
        let td = params.text_document;
        let Some(path) = path_of(&td.uri) else { return };
        let language = Language::detect(&td.language_id, &path);
        let folder = find_enclosing(&path);
        let doc = Document::new(&td.text, td.version, language);
        self.state.docs.lock().unwrap().insert(
            path.clone(),
            OpenDoc::new(doc, folder, std::fs::read_to_string(&path).ok().as_deref()),
        );
        after_edit(self, &path);
    }

    async fn did_change(&self, params: DidChangeTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else {
            return;
        };
        let enc = self.state.encoding();
        let result = {
            let mut docs = self.state.docs.lock().unwrap();
            let Some(open) = docs.get_mut(&path) else { return };
            let changes: Vec<_> = params
                .content_changes
                .into_iter()
                .map(convert::change_from)
                .collect();
            open.doc.apply(params.text_document.version, &changes, enc)
        };
        match result {
            Ok(()) => after_edit(self, &path),
            Err(e) => {
                tracing::warn!("{}: {e}", path.display());
            }
        }
    }

    async fn did_save(&self, params: DidSaveTextDocumentParams) {
        // A save may have created the file that makes a folder a template.
        self.state.refresh_folders();
        if let Some(path) = path_of(&params.text_document.uri) {
            if let Some(d) = self.state.docs.lock().unwrap().get_mut(&path) {
                d.mark_saved();
            }
            after_edit(self, &path);
            if paper_view::is_tex(&path)
                && self
                    .state
                    .settings_for(Some(&crate::latex::paper::runs_folder(&path)))
                    .settings
                    .latex
                    .build_on_save
            {
                paper_view::spawn_build(self, path.clone());
            }
        }
    }

    async fn did_close(&self, params: DidCloseTextDocumentParams) {
        let Some(path) = path_of(&params.text_document.uri) else {
            return;
        };
        let removed = self.state.docs.lock().unwrap().remove(&path);
        if let Some(folder) = removed.and_then(|d| d.folder) {
            // Disk content replaces the closed buffer's in the checks.
            self.schedule_check(folder.root().to_path_buf());
        }
    }

    async fn did_change_configuration(&self, params: DidChangeConfigurationParams) {
        let settings = params.settings;
        let pull = settings.is_null() || settings.as_object().is_some_and(|o| o.is_empty());
        if !pull {
            self.state.set_editor_settings(None, Some(settings));
            let loaded = self.state.settings_for(None);
            self.show_new_warnings(&loaded).await;
            return;
        }
        if !self.state.caps().configuration {
            return;
        }
        // Pull model: ask for our section, off the handler path and with a timeout.
        let this = self.clone();
        tokio::spawn(async move {
            let item = ConfigurationItem {
                scope_uri: None,
                section: Some("aisci".into()),
            };
            let reply =
                tokio::time::timeout(CLIENT_REPLY_TIMEOUT, this.client.configuration(vec![item])).await;
            if let Ok(Ok(mut values)) = reply {
                if let Some(v) = values.pop().filter(|v| !v.is_null()) {
                    this.state.set_editor_settings(None, Some(json!({ "aisci": v })));
                    let loaded = this.state.settings_for(None);
                    this.show_new_warnings(&loaded).await;
                }
            }
        });
    }

    async fn code_action(&self, params: CodeActionParams) -> RpcResult<Option<CodeActionResponse>> {
        let Some(path) = path_of(&params.text_document.uri) else {
            return Ok(None);
        };
        if let Some(only) = &params.context.only {
            let quickfix = paper_view::is_tex(&path) || path.extension().is_some_and(|e| e == "bib");
            if !only
                .iter()
                .any(|k| "source.aisci".starts_with(k.as_str()) || (quickfix && k.as_str() == "quickfix"))
            {
                return Ok(None);
            }
        }
        let agent_edits = views::agent_edits::code_actions(self, &path);
        if paper_view::is_tex(&path) || path.extension().is_some_and(|e| e == "bib") {
            let mut actions = paper_view::code_actions(self, &path, params.range);
            actions.extend(agent_edits);
            let only = params.context.only.as_ref();
            let actions = actions
                .into_iter()
                .filter(|a| match (a, only) {
                    (CodeActionOrCommand::CodeAction(a), Some(only)) => a
                        .kind
                        .as_ref()
                        .is_some_and(|k| only.iter().any(|o| k.as_str().starts_with(o.as_str()))),
                    _ => true,
                })
                .collect();
            return Ok(Some(actions));
        }
        if !is_file(&path, "experiment.py") {
            return Ok((!agent_edits.is_empty()).then_some(agent_edits));
        }
        let mut actions = views::experiment::code_actions(self, &path);
        actions.extend(agent_edits);
        Ok(Some(actions))
    }

    async fn code_lens(&self, params: CodeLensParams) -> RpcResult<Option<Vec<CodeLens>>> {
        let Some(path) = path_of(&params.text_document.uri) else {
            return Ok(None);
        };
        if paper_view::is_tex(&path) {
            return Ok(Some(views::review::lenses(self, &path)));
        }
        if is_file(&path, "experiment.py") {
            return Ok(Some(views::experiment::lenses(self, &path).await));
        }
        if is_file(&path, "ideas.json") {
            return Ok(views::ideas::lenses(self, &path));
        }
        Ok(None)
    }

    async fn hover(&self, params: HoverParams) -> RpcResult<Option<Hover>> {
        let tdp = params.text_document_position_params;
        let Some(path) = path_of(&tdp.text_document.uri) else {
            return Ok(None);
        };
        if paper_view::is_tex(&path) {
            if let Some(h) = paper_view::review_hover(self, &path, tdp.position) {
                return Ok(Some(h));
            }
            return Ok(paper_view::hover(self, &path, tdp.position));
        }
        if !is_file(&path, "ideas.json") {
            return Ok(None);
        }
        Ok(views::ideas::hover(self, &path, tdp.position))
    }

    async fn document_symbol(
        &self,
        params: DocumentSymbolParams,
    ) -> RpcResult<Option<DocumentSymbolResponse>> {
        let Some(path) = path_of(&params.text_document.uri) else {
            return Ok(None);
        };
        if !paper_view::is_tex(&path) {
            return Ok(None);
        }
        Ok(views::outline::symbols(self, &path).map(DocumentSymbolResponse::Nested))
    }

    async fn goto_definition(
        &self,
        params: GotoDefinitionParams,
    ) -> RpcResult<Option<GotoDefinitionResponse>> {
        let tdp = params.text_document_position_params;
        let Some(path) = path_of(&tdp.text_document.uri) else {
            return Ok(None);
        };
        Ok(paper_view::definition(self, &path, tdp.position).map(GotoDefinitionResponse::Scalar))
    }

    async fn completion(&self, params: CompletionParams) -> RpcResult<Option<CompletionResponse>> {
        let tdp = params.text_document_position;
        let Some(path) = path_of(&tdp.text_document.uri) else {
            return Ok(None);
        };
        Ok(paper_view::completion(self, &path, tdp.position))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> RpcResult<Option<Value>> {
        let command = Command::parse(&params.command, &params.arguments)?;
        Ok(execute(self, command).await?)
    }
}

impl Backend {
    /// A request the framing guard found malformed (see `framing`): answered
    /// InvalidRequest with the reason.
    pub async fn invalid_request(&self, params: Value) -> RpcResult<Value> {
        let reason = params
            .get("reason")
            .and_then(Value::as_str)
            .unwrap_or("invalid request");
        Err(tower_lsp::jsonrpc::Error {
            code: tower_lsp::jsonrpc::ErrorCode::InvalidRequest,
            message: reason.to_string().into(),
            data: None,
        })
    }

    /// `window/workDoneProgress/cancel`: the user pressed cancel on our progress.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if let Some(job) = job_of_token(&params.token) {
            self.state.jobs.cancel(job);
        }
    }
}
/// Runs a command read by `Command::parse`. Commands that start a job answer `{"job": id}`.
async fn execute(b: &Backend, command: Command) -> Result<Option<Value>, CommandError> {
    let started = |r: Result<crate::jobs::JobId, String>| match r {
        Ok(id) => Ok(Some(json!({ "job": id }))),
        Err(e) => Err(CommandError::CannotStart(e)),
    };
    match command {
        Command::GenerateIdeas { template } => started(jobs::ideas::start(b.clone(), template)),
        Command::CheckNovelty(a) => started(jobs::novelty::start(b.clone(), a)),
        Command::ImplementIdea(a) => {
            started(jobs::experiment::implement(b.clone(), a.template, a.idea).await)
        }
        Command::RunExperiments(a) => started(jobs::experiment::run(b.clone(), a.folder, None)),
        Command::RunBaseline { template } => started(jobs::experiment::baseline(b.clone(), template)),
        Command::LaunchRun(a) => started(jobs::experiment::launch(b.clone(), a.folder)),
        Command::WritePaper(a) => {
            let section = a.section.map(|s| match s {
                SectionArg::At { level, index, .. } => {
                    crate::stages::writeup::agent::SectionRef::At { level, index }
                }
                SectionArg::Title(t) => crate::stages::writeup::agent::SectionRef::Title(t),
            });
            started(jobs::writeup::start(b.clone(), a.tex, section))
        }
        Command::ReviewPaper(a) => started(jobs::review::start_review(b.clone(), a.tex)),
        Command::ReviseAll(a) => started(jobs::review::start_revise(b.clone(), a.tex, None)),
        Command::ReviseFromReview(a) => {
            started(jobs::review::start_revise(b.clone(), a.tex, Some(a.comment)))
        }
        Command::BuildPaper(a) => {
            paper_view::spawn_build(b, a.tex);
            Ok(None)
        }
        Command::ListJobs => Ok(Some(json!(views::jobs::list(b).await))),
        Command::ListRuns(a) => {
            let folders: Vec<PathBuf> = match a.folder {
                Some(f) => vec![f],
                None => b.state.roots.read().unwrap().clone(),
            };
            let list = tokio::task::spawn_blocking(move || views::runs::list_json(&folders))
                .await
                .unwrap_or(Value::Null);
            Ok(Some(list))
        }
        Command::OpenRun(a) => {
            b.show_document(&a.path);
            Ok(None)
        }
        Command::ListNodes(a) => Ok(Some(views::checkpoints::list(b, a.folder).await?)),
        Command::RestoreCheckpoint(a) => Ok(Some(views::checkpoints::restore(b, a).await?)),
        Command::BranchFrom(a) => Ok(Some(views::checkpoints::branch(b, a).await?)),
        Command::ResolveEdit(a) => Ok(Some(views::agent_edits::resolve(b, a)?)),
        Command::PendingEdits => Ok(Some(json!(b.state.reviews.list()))),
        Command::ApplyReply(a) => Ok(Some(views::agent_edits::apply_reply(b, a.file).await?)),
        Command::Cancel(ids) => {
            let ids: Vec<u64> = match ids {
                Some(ids) => ids,
                None => b.state.jobs.list().into_iter().map(|j| j.id).collect(),
            };
            let cancelled: Vec<u64> = ids.into_iter().filter(|id| b.state.jobs.cancel(*id)).collect();
            Ok(Some(json!({ "cancelled": cancelled })))
        }
        Command::ShowIdea(a) => {
            let file = a.file.display().to_string();
            let text = b
                .state
                .text_of(&a.file)
                .map_err(|e| CommandError::BadArguments(format!("cannot read {file}: {e}")))?;
            let Some(entry) = crate::project::idea_entries::entries(&text)
                .into_iter()
                .nth(a.index)
            else {
                return Err(CommandError::BadArguments(format!(
                    "{file} has no idea number {}",
                    a.index
                )));
            };
            b.client
                .show_message(MessageType::INFO, views::ideas::plain_summary(&entry.value))
                .await;
            Ok(None)
        }
    }
}
