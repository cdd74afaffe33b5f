//! The `LanguageServer` implementation. Handlers convert, touch state briefly and
//! return; anything slow is spawned.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use serde_json::{json, Value};
use tower_lsp::jsonrpc::{Error as RpcError, Result as RpcResult};
use tower_lsp::lsp_types::*;
use tower_lsp::{Client, LanguageServer};

use super::convert::{self, path_of, uri_of};
use super::progress::{job_of_token, CLIENT_REPLY_TIMEOUT};
use super::state::{ClientCaps, OpenDoc, State};
use crate::lsp::jobs::review as review_job;
use crate::lsp::jobs::writeup as writeup_job;
use crate::lsp::views::ideas as ideas_view;
use crate::lsp::views::paper as paper_view;
use crate::lsp::views::review as review_view;
use crate::project::{check_template, find_enclosing, Problem, ProjectFolder};
use crate::workspace::{python, Document, Language};

pub const CMD_GENERATE_IDEAS: &str = "aisci.generateIdeas";
pub const CMD_CANCEL: &str = "aisci.cancel";
pub const CMD_SHOW_IDEA: &str = "aisci.showIdea";
pub const CMD_CHECK_NOVELTY: &str = "aisci.checkNovelty";
pub const CMD_IMPLEMENT_IDEA: &str = "aisci.implementIdea";
pub const CMD_RUN_EXPERIMENTS: &str = "aisci.runExperiments";
pub const CMD_RUN_BASELINE: &str = "aisci.runBaseline";
pub const CMD_OPEN_RUN: &str = "aisci.openRun";
pub const CMD_LAUNCH_RUN: &str = "aisci.launchRun";
pub const CMD_LIST_RUNS: &str = "aisci.listRuns";
pub const COMMANDS: &[&str] = &[
    CMD_LIST_RUNS,
    CMD_GENERATE_IDEAS,
    CMD_CANCEL,
    CMD_SHOW_IDEA,
    CMD_CHECK_NOVELTY,
    CMD_IMPLEMENT_IDEA,
    CMD_RUN_EXPERIMENTS,
    CMD_RUN_BASELINE,
    CMD_OPEN_RUN,
    CMD_LAUNCH_RUN,
    paper_view::CMD_BUILD_PAPER,
    writeup_job::CMD_WRITE_PAPER,
    review_view::CMD_REVIEW_PAPER,
    review_view::CMD_REVISE_COMMENT,
    review_view::CMD_REVISE_ALL,
    crate::lsp::views::jobs::CMD_LIST_JOBS,
];

/// Time to wait after the last edit before re-checking a project.
const CHECK_DEBOUNCE: Duration = Duration::from_millis(150);

#[derive(Clone)]
pub struct Backend {
    pub client: Client,
    pub state: Arc<State>,
}

impl Backend {
    pub fn new(client: Client) -> Self {
        Self {
            client,
            state: Arc::new(State::default()),
        }
    }

    async fn show_new_warnings(&self, loaded: &crate::config::Loaded) {
        for w in self.state.new_warnings(loaded) {
            self.client
                .show_message(MessageType::WARNING, format!("aisci: {w}"))
                .await;
        }
    }

    /// Re-checks a project folder once edits to it have paused for `CHECK_DEBOUNCE`.
    /// One waiting task per folder: later edits only push its deadline back.
    pub fn schedule_check(&self, root: PathBuf) {
        let deadline = tokio::time::Instant::now() + CHECK_DEBOUNCE;
        {
            let mut pending = self.state.pending_checks.lock().unwrap();
            if pending.insert(root.clone(), deadline).is_some() {
                return;
            }
        }
        let this = self.clone();
        tokio::spawn(async move {
            let mut until = deadline;
            loop {
                tokio::time::sleep_until(until).await;
                let mut pending = this.state.pending_checks.lock().unwrap();
                match pending.get(&root) {
                    Some(d) if *d > until => until = *d,
                    _ => {
                        pending.remove(&root);
                        break;
                    }
                }
            }
            this.publish_checks(&root).await;
        });
    }

    /// Runs the checks of one project folder and publishes the result for every file
    /// concerned, clearing files that became clean.
    pub async fn publish_checks(&self, root: &Path) {
        let overlay = self.state.overlay_under(root);
        let state = self.state.clone();
        let root_owned = root.to_path_buf();
        let problems = tokio::task::spawn_blocking(move || {
            let mut problems = check_template(&root_owned, &overlay);
            problems.extend(experiment_syntax_problems(&state, &root_owned));
            problems
        })
        .await
        .unwrap_or_default();

        let run_problems = self
            .state
            .run_problems
            .lock()
            .unwrap()
            .get(root)
            .cloned()
            .unwrap_or_default();
        // Run problems are placed by line on the text shown now.
        let run_problems = run_problems
            .iter()
            .filter_map(|rp| rp.resolve(&self.state.text_of(&rp.path).ok()?));
        let mut by_file: std::collections::BTreeMap<PathBuf, Vec<Problem>> = Default::default();
        for p in problems.into_iter().chain(run_problems) {
            by_file.entry(p.path.clone()).or_default().push(p);
        }
        let before = self
            .state
            .published
            .lock()
            .unwrap()
            .insert(root.to_path_buf(), by_file.keys().cloned().collect())
            .unwrap_or_default();
        let enc = self.state.encoding();
        for (path, problems) in &by_file {
            let Some(uri) = uri_of(path) else { continue };
            let rope = match self.state.text_of(path) {
                Ok(t) => ropey::Rope::from_str(&t),
                Err(_) => ropey::Rope::new(),
            };
            let diags = problems
                .iter()
                .map(|p| convert::diagnostic(p, &rope, enc))
                .collect();
            self.client.publish_diagnostics(uri, diags, None).await;
        }
        for gone in before.iter().filter(|p| !by_file.contains_key(*p)) {
            if let Some(uri) = uri_of(gone) {
                self.client.publish_diagnostics(uri, Vec::new(), None).await;
            }
        }
    }

    /// Asks the client to show `path` (when it can), off the caller's path.
    pub fn show_document(&self, path: &Path) {
        if !self.state.caps().show_document {
            return;
        }
        let Some(uri) = uri_of(path) else { return };
        let client = self.client.clone();
        tokio::spawn(async move {
            let params = ShowDocumentParams {
                uri,
                external: Some(false),
                take_focus: Some(true),
                selection: None,
            };
            let _ = tokio::time::timeout(CLIENT_REPLY_TIMEOUT, client.show_document(params)).await;
        });
    }

    /// Asks the client to show `path` and waits (bounded) until it has opened it, so
    /// what follows edits the buffer rather than the file under it.
    pub async fn show_document_and_wait(&self, path: &Path) {
        if !self.state.caps().show_document {
            return;
        }
        let Some(uri) = uri_of(path) else { return };
        let params = ShowDocumentParams {
            uri,
            external: Some(false),
            take_focus: Some(true),
            selection: None,
        };
        let _ = tokio::time::timeout(CLIENT_REPLY_TIMEOUT, self.client.show_document(params)).await;
        let deadline = tokio::time::Instant::now() + Duration::from_secs(2);
        while !self.state.docs.lock().unwrap().contains_key(path) && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Asks the client to fetch code lenses again (when it can).
    pub async fn refresh_lenses(&self) {
        if self.state.caps().code_lens_refresh {
            let _ = tokio::time::timeout(CLIENT_REPLY_TIMEOUT, self.client.code_lens_refresh()).await;
        }
    }

    fn after_edit(&self, path: &Path) {
        paper_view::after_edit(self, path);
        if let Some(folder) = self.state.folder_of(path) {
            self.schedule_check(folder.root().to_path_buf());
        }
    }
}

/// Problems found in the syntax of an open `experiment.py` (the open buffer's tree).
fn experiment_syntax_problems(state: &State, root: &Path) -> Vec<Problem> {
    let path = root.join("experiment.py");
    {
        let mut docs = state.docs.lock().unwrap();
        if let Some(open) = docs.get_mut(&path) {
            let src = open.doc.text();
            return match open.doc.python_tree() {
                Some(tree) => python::out_dir_problem(&path, tree, &src).into_iter().collect(),
                None => Vec::new(),
            };
        }
    }
    // Not open: read and parse the file without holding the documents lock.
    match std::fs::read_to_string(&path) {
        Ok(src) => crate::workspace::syntax::parse_python(&src, None)
            .and_then(|tree| python::out_dir_problem(&path, &tree, &src))
            .into_iter()
            .collect(),
        Err(_) => Vec::new(),
    }
}

fn is_file(path: &Path, name: &str) -> bool {
    path.file_name().and_then(|n| n.to_str()) == Some(name)
}

/// The template a command argument names: a path, a file URI, or `{ "template": ... }`.
fn template_arg(args: &[Value]) -> Option<PathBuf> {
    let v = args.first()?;
    let s = match v {
        Value::String(s) => s.as_str(),
        Value::Object(o) => o.get("template").or_else(|| o.get("uri"))?.as_str()?,
        _ => return None,
    };
    let path = match Url::parse(s) {
        Ok(u) if u.scheme() == "file" => u.to_file_path().ok()?,
        _ => PathBuf::from(s),
    };
    Some(path)
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
        self.state.editor_settings.lock().unwrap().0 = params.initialization_options;

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
                completion_provider: Some(CompletionOptions {
                    trigger_characters: Some(vec!["{".into(), ",".into()]),
                    ..Default::default()
                }),
                execute_command_provider: Some(ExecuteCommandOptions {
                    commands: COMMANDS.iter().map(|c| c.to_string()).collect(),
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
        }
        crate::lsp::views::run_output::start(self.client.clone(), &self.state);
        crate::lsp::views::runs::refresh_lenses_on_changes(self);
        // Runs an earlier aisci left running are watched again (the workspace is known now).
        crate::lsp::views::runs::resume_workspace(self);
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
        self.after_edit(&path);
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
            Ok(()) => self.after_edit(&path),
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
            self.after_edit(&path);
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
            self.state.editor_settings.lock().unwrap().1 = Some(settings);
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
                    this.state.editor_settings.lock().unwrap().1 = Some(json!({ "aisci": v }));
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
        if paper_view::is_tex(&path) || path.extension().is_some_and(|e| e == "bib") {
            let actions = paper_view::code_actions(self, &path, params.range);
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
            return Ok(None);
        }
        let dir = path.parent().map(Path::to_path_buf).unwrap_or_default();
        let launch = CodeActionOrCommand::CodeAction(CodeAction {
            title: "Launch run (python experiment.py --out_dir=run_i)".into(),
            kind: Some(CodeActionKind::new("source.aisci.launchRun")),
            command: Some(Command {
                title: "Launch run".into(),
                command: CMD_LAUNCH_RUN.into(),
                arguments: Some(vec![json!({ "folder": dir })]),
            }),
            ..Default::default()
        });
        let Some(ProjectFolder::Template(t)) = self.state.folder_of(&path) else {
            return Ok(Some(vec![launch]));
        };
        let mut actions = vec![CodeActionOrCommand::CodeAction(CodeAction {
            title: "Generate research ideas".into(),
            kind: Some(CodeActionKind::new("source.aisci.generateIdeas")),
            command: Some(Command {
                title: "Generate research ideas".into(),
                command: CMD_GENERATE_IDEAS.into(),
                arguments: Some(vec![json!({ "template": t.root })]),
            }),
            ..Default::default()
        })];
        actions.push(launch);
        if !t.baseline_final_info().exists() {
            actions.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: "Run baseline (python experiment.py --out_dir=run_0)".into(),
                kind: Some(CodeActionKind::new("source.aisci.runBaseline")),
                command: Some(Command {
                    title: "Run baseline".into(),
                    command: CMD_RUN_BASELINE.into(),
                    arguments: Some(vec![json!({ "template": t.root })]),
                }),
                ..Default::default()
            }));
        }
        Ok(Some(actions))
    }

    async fn code_lens(&self, params: CodeLensParams) -> RpcResult<Option<Vec<CodeLens>>> {
        let Some(path) = path_of(&params.text_document.uri) else {
            return Ok(None);
        };
        if paper_view::is_tex(&path) {
            return Ok(Some(review_view::lenses(&path)));
        }
        let folder = self.state.folder_of(&path);
        if is_file(&path, "experiment.py") {
            let line = {
                let mut docs = self.state.docs.lock().unwrap();
                docs.get_mut(&path)
                    .and_then(|d| d.doc.python_tree().and_then(python::first_definition_line))
                    .unwrap_or(0)
            };
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
            let running = self.state.jobs.list().into_iter().find(|j| j.target == target);
            let mut lenses = Vec::new();
            if let Some(job) = &running {
                lenses.push(lens(Command {
                    title: format!("{}… (cancel)", job.title),
                    command: CMD_CANCEL.into(),
                    arguments: Some(vec![json!(job.id)]),
                }));
            }
            let idea_folder = matches!(folder, Some(ProjectFolder::Idea(_)));
            let run_root = root.clone();
            let runs = tokio::task::spawn_blocking(move || {
                crate::lsp::views::runs::lens_items(&run_root, idea_folder)
            })
            .await
            .unwrap_or_default();
            for (title, open) in runs {
                lenses.push(lens(Command {
                    title,
                    command: CMD_OPEN_RUN.into(),
                    arguments: Some(vec![json!({ "path": open })]),
                }));
            }
            match &folder {
                Some(ProjectFolder::Template(t)) if running.is_none() => {
                    lenses.push(lens(Command {
                        title: "Generate ideas".into(),
                        command: CMD_GENERATE_IDEAS.into(),
                        arguments: Some(vec![json!({ "template": t.root })]),
                    }));
                    if !t.baseline_final_info().exists() {
                        lenses.push(lens(Command {
                            title: "Run baseline".into(),
                            command: CMD_RUN_BASELINE.into(),
                            arguments: Some(vec![json!({ "template": t.root })]),
                        }));
                    }
                }
                Some(ProjectFolder::Idea(f)) if running.is_none() => {
                    lenses.push(lens(Command {
                        title: "Run experiments".into(),
                        command: CMD_RUN_EXPERIMENTS.into(),
                        arguments: Some(vec![json!({ "folder": f.root })]),
                    }));
                }
                _ => {}
            }
            return Ok(Some(lenses));
        }
        if is_file(&path, "ideas.json") {
            let Some((rope, entries)) = self.state.ideas_of(&path) else {
                return Ok(None);
            };
            let enc = self.state.encoding();
            let template = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
            let running = self.state.jobs.list().into_iter().find(|j| {
                j.title == crate::lsp::jobs::novelty::TITLE && j.target == template.display().to_string()
            });
            let top = Range::new(Position::new(0, 0), Position::new(0, 0));
            let mut lenses = vec![CodeLens {
                range: top,
                command: Some(match &running {
                    Some(job) => Command {
                        title: format!("{}… (cancel)", job.title),
                        command: CMD_CANCEL.into(),
                        arguments: Some(vec![json!(job.id)]),
                    },
                    None => Command {
                        title: "Check novelty of all unchecked ideas".into(),
                        command: CMD_CHECK_NOVELTY.into(),
                        arguments: Some(vec![json!({ "template": template })]),
                    },
                }),
                data: None,
            }];
            for e in entries.iter() {
                let at = convert::byte_range(&rope, Some((e.start, e.start)), enc);
                lenses.push(CodeLens {
                    range: at,
                    command: Some(Command {
                        title: ideas_view::lens_title(&e.value),
                        command: CMD_SHOW_IDEA.into(),
                        arguments: Some(vec![json!({ "file": path, "index": e.index })]),
                    }),
                    data: None,
                });
                let name = e.value.get("Name").and_then(Value::as_str);
                let novelty = match (ideas_view::novelty_lens_title(&e.value), name) {
                    (Some(verdict), _) => Command {
                        title: verdict,
                        command: CMD_SHOW_IDEA.into(),
                        arguments: Some(vec![json!({ "file": path, "index": e.index })]),
                    },
                    (None, Some(name)) if running.is_none() => Command {
                        title: "Check novelty".into(),
                        command: CMD_CHECK_NOVELTY.into(),
                        arguments: Some(vec![json!({ "template": template, "ideas": [name] })]),
                    },
                    _ => continue,
                };
                lenses.push(CodeLens {
                    range: at,
                    command: Some(novelty),
                    data: None,
                });
                // v1 implements only novel ideas; here any idea not judged "not novel" may be.
                if let Some(name) = name.filter(|_| e.value.get("novel") != Some(&Value::Bool(false))) {
                    lenses.push(CodeLens {
                        range: at,
                        command: Some(Command {
                            title: "Implement idea".into(),
                            command: CMD_IMPLEMENT_IDEA.into(),
                            arguments: Some(vec![json!({ "template": template, "idea": name })]),
                        }),
                        data: None,
                    });
                }
            }
            return Ok(Some(lenses));
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
        let Some((rope, entries)) = self.state.ideas_of(&path) else {
            return Ok(None);
        };
        let enc = self.state.encoding();
        let char_idx = crate::workspace::position::to_char(&rope, convert::pos_from(tdp.position), enc);
        let byte = rope.char_to_byte(char_idx);
        let Some(entry) = entries.iter().find(|e| e.start <= byte && byte < e.end) else {
            return Ok(None);
        };
        Ok(Some(Hover {
            contents: HoverContents::Markup(MarkupContent {
                kind: MarkupKind::Markdown,
                value: ideas_view::hover_markdown(&entry.value),
            }),
            range: Some(convert::byte_range(&rope, Some((entry.start, entry.end)), enc)),
        }))
    }

    async fn completion(&self, params: CompletionParams) -> RpcResult<Option<CompletionResponse>> {
        let tdp = params.text_document_position;
        let Some(path) = path_of(&tdp.text_document.uri) else {
            return Ok(None);
        };
        Ok(paper_view::completion(self, &path, tdp.position))
    }

    async fn execute_command(&self, params: ExecuteCommandParams) -> RpcResult<Option<Value>> {
        match params.command.as_str() {
            writeup_job::CMD_WRITE_PAPER => {
                let arg = params.arguments.first().cloned().unwrap_or(Value::Null);
                let tex = arg
                    .get("tex")
                    .and_then(|t| t.as_str())
                    .map(PathBuf::from)
                    .filter(|p| paper_view::is_tex(p))
                    .ok_or_else(|| {
                        RpcError::invalid_params(
                            "aisci.writePaper needs {\"tex\": path of latex/template.tex, \"section\": optional title}",
                        )
                    })?;
                let section = arg.get("section").and_then(|t| t.as_str()).map(str::to_owned);
                match writeup_job::start(self.clone(), tex, section) {
                    Ok(id) => Ok(Some(json!({ "job": id }))),
                    Err(e) => {
                        self.client
                            .show_message(MessageType::ERROR, format!("aisci: {e}"))
                            .await;
                        Ok(None)
                    }
                }
            }
            review_view::CMD_REVIEW_PAPER | review_view::CMD_REVISE_COMMENT | review_view::CMD_REVISE_ALL => {
                let arg = params.arguments.first().cloned().unwrap_or(Value::Null);
                let tex = arg
                    .get("tex")
                    .and_then(|t| t.as_str())
                    .map(PathBuf::from)
                    .filter(|p| paper_view::is_tex(p))
                    .ok_or_else(|| {
                        RpcError::invalid_params(format!(
                            "{} needs {{\"tex\": path of latex/template.tex{}}}",
                            params.command,
                            if params.command == review_view::CMD_REVISE_COMMENT {
                                ", \"comment\": id such as \"weakness-0\""
                            } else {
                                ""
                            }
                        ))
                    })?;
                let started = match params.command.as_str() {
                    review_view::CMD_REVIEW_PAPER => review_job::start_review(self.clone(), tex),
                    review_view::CMD_REVISE_ALL => review_job::start_revise(self.clone(), tex, None),
                    _ => {
                        let Some(id) = arg.get("comment").and_then(|c| c.as_str()) else {
                            return Err(RpcError::invalid_params(
                                "aisci.reviseFromReview needs {\"tex\": path, \"comment\": id such as \"weakness-0\"}",
                            ));
                        };
                        review_job::start_revise(self.clone(), tex, Some(id.to_string()))
                    }
                };
                match started {
                    Ok(id) => Ok(Some(json!({ "job": id }))),
                    Err(e) => {
                        self.client
                            .show_message(MessageType::ERROR, format!("aisci: {e}"))
                            .await;
                        Ok(None)
                    }
                }
            }
            paper_view::CMD_BUILD_PAPER => {
                let tex = params
                    .arguments
                    .first()
                    .and_then(|a| a.get("tex"))
                    .and_then(|t| t.as_str())
                    .map(PathBuf::from)
                    .filter(|p| paper_view::is_tex(p))
                    .ok_or_else(|| {
                        RpcError::invalid_params("aisci.buildPaper needs {\"tex\": path of a .tex file}")
                    })?;
                paper_view::spawn_build(self, tex);
                Ok(None)
            }
            CMD_GENERATE_IDEAS => {
                let Some(dir) = template_arg(&params.arguments) else {
                    return Err(RpcError::invalid_params(
                        "aisci.generateIdeas needs the template folder: [{\"template\": \"/path/to/template\"}]",
                    ));
                };
                let job = crate::lsp::jobs::ideas::start(self.clone(), dir).map_err(|e| RpcError {
                    code: tower_lsp::jsonrpc::ErrorCode::InvalidRequest,
                    message: e.into(),
                    data: None,
                })?;
                Ok(Some(json!({ "job": job })))
            }
            CMD_CHECK_NOVELTY => {
                let Some(dir) = template_arg(&params.arguments) else {
                    return Err(RpcError::invalid_params(
                        "aisci.checkNovelty needs the template folder: [{\"template\": \"/path\", \"ideas\": [names], \"force\": false}]",
                    ));
                };
                let opts = params.arguments.first().cloned().unwrap_or(Value::Null);
                let names = match opts.get("ideas") {
                    None | Some(Value::Null) => None,
                    Some(Value::Array(a)) if a.iter().all(Value::is_string) => {
                        Some(a.iter().filter_map(Value::as_str).map(str::to_owned).collect())
                    }
                    Some(other) => {
                        return Err(RpcError::invalid_params(format!(
                            "aisci.checkNovelty: \"ideas\" must be a list of idea names, not {other}"
                        )))
                    }
                };
                let force = opts.get("force").and_then(Value::as_bool).unwrap_or(false);
                let req = crate::lsp::jobs::novelty::NoveltyRequest {
                    template: dir,
                    names,
                    force,
                };
                let job = crate::lsp::jobs::novelty::start(self.clone(), req).map_err(|e| RpcError {
                    code: tower_lsp::jsonrpc::ErrorCode::InvalidRequest,
                    message: e.into(),
                    data: None,
                })?;
                Ok(Some(json!({ "job": job })))
            }
            CMD_IMPLEMENT_IDEA | CMD_RUN_EXPERIMENTS | CMD_RUN_BASELINE | CMD_LAUNCH_RUN => {
                let arg = params.arguments.first().cloned().unwrap_or(Value::Null);
                let dir = |key: &str| arg.get(key).and_then(Value::as_str).map(PathBuf::from);
                let started = match params.command.as_str() {
                    CMD_IMPLEMENT_IDEA => match (dir("template"), arg.get("idea").and_then(Value::as_str)) {
                        (Some(t), Some(idea)) => {
                            crate::lsp::jobs::experiment::implement(self.clone(), t, idea.to_owned()).await
                        }
                        _ => {
                            return Err(RpcError::invalid_params(
                                "aisci.implementIdea needs {\"template\": path, \"idea\": name}",
                            ))
                        }
                    },
                    CMD_LAUNCH_RUN => match dir("folder") {
                        Some(f) => crate::lsp::jobs::experiment::launch(self.clone(), f),
                        None => {
                            return Err(RpcError::invalid_params(
                                "aisci.launchRun needs {\"folder\": the folder of experiment.py}",
                            ))
                        }
                    },
                    CMD_RUN_EXPERIMENTS => match dir("folder") {
                        Some(f) => crate::lsp::jobs::experiment::run(self.clone(), f, None),
                        None => {
                            return Err(RpcError::invalid_params(
                                "aisci.runExperiments needs {\"folder\": idea folder}",
                            ))
                        }
                    },
                    _ => match template_arg(&params.arguments) {
                        Some(t) => crate::lsp::jobs::experiment::baseline(self.clone(), t),
                        None => {
                            return Err(RpcError::invalid_params(
                                "aisci.runBaseline needs {\"template\": path}",
                            ))
                        }
                    },
                };
                let job = started.map_err(|e| RpcError {
                    code: tower_lsp::jsonrpc::ErrorCode::InvalidRequest,
                    message: e.into(),
                    data: None,
                })?;
                Ok(Some(json!({ "job": job })))
            }
            crate::lsp::views::jobs::CMD_LIST_JOBS => {
                Ok(Some(json!(crate::lsp::views::jobs::list(self).await)))
            }
            CMD_LIST_RUNS => {
                let arg = params.arguments.first().cloned().unwrap_or(Value::Null);
                let folders: Vec<PathBuf> = match arg.get("folder").and_then(Value::as_str) {
                    Some(f) => vec![PathBuf::from(f)],
                    None => self.state.roots.read().unwrap().clone(),
                };
                let list = tokio::task::spawn_blocking(move || crate::lsp::views::runs::list_json(&folders))
                    .await
                    .unwrap_or(Value::Null);
                Ok(Some(list))
            }
            CMD_OPEN_RUN => {
                let Some(path) = params
                    .arguments
                    .first()
                    .and_then(|a| a.get("path"))
                    .and_then(Value::as_str)
                else {
                    return Err(RpcError::invalid_params("aisci.openRun needs {\"path\": file}"));
                };
                self.show_document(Path::new(path));
                Ok(None)
            }
            CMD_CANCEL => {
                let ids: Vec<u64> = match params.arguments.first() {
                    Some(Value::Number(n)) => n.as_u64().into_iter().collect(),
                    Some(other) => {
                        return Err(RpcError::invalid_params(format!(
                            "aisci.cancel takes a job id (a number) or nothing, not {other}"
                        )))
                    }
                    None => self.state.jobs.list().into_iter().map(|j| j.id).collect(),
                };
                let cancelled: Vec<u64> = ids.into_iter().filter(|id| self.state.jobs.cancel(*id)).collect();
                Ok(Some(json!({ "cancelled": cancelled })))
            }
            CMD_SHOW_IDEA => {
                let arg = params.arguments.first().cloned().unwrap_or(Value::Null);
                let (Some(file), Some(index)) = (
                    arg.get("file").and_then(Value::as_str),
                    arg.get("index").and_then(Value::as_u64),
                ) else {
                    return Err(RpcError::invalid_params(
                        "aisci.showIdea needs {\"file\": path, \"index\": n}",
                    ));
                };
                let text = self
                    .state
                    .text_of(Path::new(file))
                    .map_err(|e| RpcError::invalid_params(format!("cannot read {file}: {e}")))?;
                let entry = ideas_view::entries(&text).into_iter().nth(index as usize);
                let Some(entry) = entry else {
                    return Err(RpcError::invalid_params(format!(
                        "{file} has no idea number {index}"
                    )));
                };
                self.client
                    .show_message(MessageType::INFO, ideas_view::plain_summary(&entry.value))
                    .await;
                Ok(None)
            }
            other => Err(RpcError::invalid_params(format!("unknown command {other}"))),
        }
    }
}

impl Backend {
    /// `window/workDoneProgress/cancel`: the user pressed cancel on our progress.
    pub async fn progress_cancel(&self, params: WorkDoneProgressCancelParams) {
        if let Some(job) = job_of_token(&params.token) {
            self.state.jobs.cancel(job);
        }
    }
}
