//! `Backend`: the client handle and the server's state, with the helpers every feature
//! uses to talk to the client (publish diagnostics, show a document, refresh lenses).
//! It imports no feature: the handlers (`server.rs`) and the features (`views/`,
//! `jobs/`) import it.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use tower_lsp::lsp_types::*;
use tower_lsp::Client;

use super::convert::{self, uri_of};
use super::progress::CLIENT_REPLY_TIMEOUT;
use super::state::State;
use crate::project::{check_template, Problem};
use crate::workspace::python;

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

    pub async fn show_new_warnings(&self, loaded: &crate::config::Loaded) {
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
}

/// Problems found in the syntax of an open `experiment.py` (the open buffer's tree).
fn experiment_syntax_problems(state: &State, root: &Path) -> Vec<Problem> {
    let path = root.join("experiment.py");
    // Not open: read and parse the file.
    let facts = match state.python_facts(&path) {
        Ok(facts) => facts,
        Err(_) => match std::fs::read_to_string(&path) {
            Ok(src) => python::PyFacts::of_source(&src),
            Err(_) => return Vec::new(),
        },
    };
    facts
        .and_then(|f| python::out_dir_problem(&path, &f))
        .into_iter()
        .collect()
}
