//! What the server knows between messages. Locks are std locks held only for
//! short, await-free sections, so `didChange` is applied in arrival order.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, RwLock};

use serde_json::Value;

use crate::config::{self, Loaded, Sources};
use crate::jobs::Jobs;
use crate::project::idea_entries::{entries, IdeaEntry};
use crate::project::{find_enclosing, Overlay, ProjectFolder};
use crate::workspace::python::PyFacts;
use crate::workspace::{Document, PosEncoding};

/// An estimate and when it was worked out.
pub type Estimated = (std::time::Instant, crate::stages::estimate::Estimate);

/// What the client said it can do.
#[derive(Debug, Clone, Copy, Default)]
pub struct ClientCaps {
    pub work_done_progress: bool,
    pub show_document: bool,
    pub configuration: bool,
    pub code_lens_refresh: bool,
    /// `workspace.workspaceEdit.changeAnnotationSupport`: edits needing confirmation are
    /// shown for review (VS Code's refactor preview).
    pub change_annotations: bool,
    /// `experimental.aisciEditReview`: the client reviews `aisci/editProposed` itself
    /// (the Neovim plugin's hunk review).
    pub edit_review: bool,
}

pub struct OpenDoc {
    pub doc: Document,
    /// The template or idea folder the file belongs to, found when it was opened.
    pub folder: Option<ProjectFolder>,
    /// For an ideas archive: its entries, parsed once per document version.
    pub ideas: Option<(i32, Arc<Vec<IdeaEntry>>)>,
    /// For a paper: what requests read, made once per document version.
    pub tex: Option<Arc<super::tex_view::TexView>>,
    /// Hash of the text when the buffer last matched the file (open, save): the
    /// buffer has unsaved edits exactly when its text differs from that.
    saved: u64,
}

fn text_hash(text: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

impl OpenDoc {
    /// `disk`: the file's text when it was opened (None: no file yet), so a buffer
    /// opened with unsaved content counts as edited.
    pub fn new(doc: Document, folder: Option<ProjectFolder>, disk: Option<&str>) -> Self {
        let saved = match disk {
            Some(text) => text_hash(text),
            None => text_hash(&doc.text()),
        };
        Self {
            doc,
            folder,
            ideas: None,
            tex: None,
            saved,
        }
    }

    /// The buffer was just saved: its text is the file's.
    pub fn mark_saved(&mut self) {
        self.saved = text_hash(&self.doc.text());
    }

    /// Whether the buffer holds edits that are not in the file `disk` (its current
    /// text, if any): changed since it was opened or saved, and not merely reloaded.
    /// A file rewritten by aisci while the buffer was left alone is not "unsaved edits".
    pub fn has_unsaved_edits(&self, disk: Option<&str>) -> bool {
        let text = self.doc.text();
        text_hash(&text) != self.saved && disk != Some(text.as_str())
    }
}

/// The document asked about is not open in the editor.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct NotOpen;

#[derive(Default)]
pub struct State {
    pub docs: Mutex<HashMap<PathBuf, OpenDoc>>,
    pub encoding: RwLock<PosEncoding>,
    pub caps: RwLock<ClientCaps>,
    pub roots: RwLock<Vec<PathBuf>>,
    /// `initializationOptions` then the latest `didChangeConfiguration` settings.
    pub editor_settings: Mutex<(Option<Value>, Option<Value>)>,
    pub jobs: Arc<Jobs>,
    /// Settings warnings already shown, so each is said once.
    pub warned: Mutex<HashSet<String>>,
    /// Folders asked about this session whether to trust them (canonical paths).
    pub trust_asked: Mutex<HashSet<PathBuf>>,
    /// Per project root: when its pending re-check is due.
    pub pending_checks: Mutex<HashMap<PathBuf, tokio::time::Instant>>,
    /// Per project root: problems found by runs (tracebacks), shown until the next
    /// successful run replaces them.
    pub run_problems: Mutex<HashMap<PathBuf, Vec<crate::runs::problems::RunProblem>>>,
    /// Per project folder: held while a run's result is being published, so the
    /// agent's next edit waits until the editor has the diagnostics about the text
    /// that ran.
    pub publish_gates: Mutex<HashMap<PathBuf, Arc<tokio::sync::Mutex<()>>>>,
    /// Per project root: files that currently carry our diagnostics.
    pub published: Mutex<HashMap<PathBuf, HashSet<PathBuf>>>,
    /// Papers: pending checks, last builds, their diagnostics.
    pub paper: PaperState,
    /// When this session began, for what it spent.
    pub session: Session,
    /// Per folder and stage: the cost shown in the titles that start it, and when it was
    /// worked out (kept briefly, so typing does not reload the settings each time).
    pub estimates: Mutex<HashMap<(PathBuf, &'static str), Estimated>>,
    /// The agent's edits waiting for the user's review (`edits.review`).
    pub reviews: super::edit_review::Reviews,
}

impl State {
    pub fn encoding(&self) -> PosEncoding {
        *self.encoding.read().unwrap()
    }

    pub fn caps(&self) -> ClientCaps {
        *self.caps.read().unwrap()
    }

    /// Settings for a project root (or for no project), with every warning met.
    /// The editor's settings changed: what was worked out from them is stale.
    pub fn set_editor_settings(&self, init: Option<Option<Value>>, changed: Option<Value>) {
        let mut s = self.editor_settings.lock().unwrap();
        if let Some(init) = init {
            s.0 = init;
        }
        if changed.is_some() {
            s.1 = changed;
        }
        self.estimates.lock().unwrap().clear();
    }

    pub fn settings_for(&self, root: Option<&Path>) -> Loaded {
        let mut src = Sources::from_system(root);
        let (init, changed) = self.editor_settings.lock().unwrap().clone();
        src.editor = init.into_iter().chain(changed).collect();
        config::load(&src)
    }

    /// The warnings of `loaded` not yet shown to the user.
    pub fn new_warnings(&self, loaded: &Loaded) -> Vec<String> {
        let mut warned = self.warned.lock().unwrap();
        loaded
            .warnings
            .iter()
            .filter(|w| warned.insert((*w).clone()))
            .cloned()
            .collect()
    }

    pub fn folder_of(&self, path: &Path) -> Option<ProjectFolder> {
        if let Some(d) = self.docs.lock().unwrap().get(path) {
            return d.folder.clone();
        }
        find_enclosing(path)
    }

    /// The open buffers under `root`, path → text: what the checks must see instead of disk.
    pub fn overlay_under(&self, root: &Path) -> Overlay {
        self.docs
            .lock()
            .unwrap()
            .iter()
            .filter(|(p, _)| p.starts_with(root))
            .map(|(p, d)| (p.clone(), d.doc.text()))
            .collect()
    }

    /// The facts kept for the open Python document `path` at its current version.
    pub fn kept_python_facts(&self, path: &Path) -> Option<PyFacts> {
        self.docs.lock().unwrap().get(path)?.doc.python_facts()
    }

    /// The facts of the open Python document `path` at its current version, parsed
    /// (outside the documents lock: a long file takes a while) when not kept yet;
    /// `Err` when `path` is not open. Blocking: call it from a blocking thread.
    pub fn python_facts(&self, path: &Path) -> Result<Option<PyFacts>, NotOpen> {
        let (version, rope) = {
            let docs = self.docs.lock().unwrap();
            let d = docs.get(path).ok_or(NotOpen)?;
            if let Some(f) = d.doc.python_facts() {
                return Ok(Some(f));
            }
            (d.doc.version(), d.doc.rope().clone())
        };
        let text = rope.to_string();
        let facts = PyFacts::of_source(&text);
        crate::workspace::memory::release_after(text.len());
        let Some(facts) = facts else { return Ok(None) };
        if let Some(d) = self.docs.lock().unwrap().get_mut(path) {
            d.doc.keep_python_facts(version, facts);
        }
        Ok(Some(facts))
    }

    /// The editor's text of `path` when it is open (saved or not), else `None`.
    pub fn open_text(&self, path: &Path) -> Option<String> {
        self.docs.lock().unwrap().get(path).map(|d| d.doc.text())
    }

    /// The editor's text of `path` when open, else the file on disk.
    pub fn text_of(&self, path: &Path) -> std::io::Result<String> {
        if let Some(d) = self.docs.lock().unwrap().get(path) {
            return Ok(d.doc.text());
        }
        std::fs::read_to_string(path)
    }

    pub fn publish_gate(&self, root: &Path) -> Arc<tokio::sync::Mutex<()>> {
        self.publish_gates
            .lock()
            .unwrap()
            .entry(root.to_path_buf())
            .or_default()
            .clone()
    }

    /// An open ideas archive's text and entries; parsing happens once per version so
    /// lenses and hovers stay cheap.
    pub fn ideas_of(&self, path: &Path) -> Option<(ropey::Rope, Arc<Vec<IdeaEntry>>)> {
        let mut docs = self.docs.lock().unwrap();
        let open = docs.get_mut(path)?;
        let version = open.doc.version();
        let entries = match &open.ideas {
            Some((v, e)) if *v == version => e.clone(),
            _ => {
                let e = Arc::new(entries(&open.doc.text()));
                open.ideas = Some((version, e.clone()));
                e
            }
        };
        Some((open.doc.rope().clone(), entries))
    }

    /// Re-finds every open document's project folder (files appeared or vanished).
    pub fn refresh_folders(&self) {
        for (path, d) in self.docs.lock().unwrap().iter_mut() {
            d.folder = find_enclosing(path);
        }
    }
}

/// When this server started: ledger entries from before belong to earlier sessions.
pub struct Session {
    pub started: chrono::DateTime<chrono::Utc>,
}

impl Default for Session {
    fn default() -> Self {
        Self {
            started: chrono::Utc::now(),
        }
    }
}

/// The papers' state: pending checks, last build problems, builds in flight.
/// A document's build lock (held while one builds) and the job building it now.
pub(crate) type BuildSlot = (Arc<tokio::sync::Mutex<()>>, Option<crate::jobs::JobId>);

/// A check's problems and the document version they are of (None: the file on disk).
pub(crate) type KeptProblems = (Option<i32>, Arc<Vec<crate::latex::TexProblem>>);

#[derive(Default)]
pub struct PaperState {
    pub(crate) pending: Mutex<HashMap<PathBuf, tokio::time::Instant>>,
    /// The last build's problems (log, bibtex, chktex) per `.tex`.
    pub(crate) build_problems: Mutex<HashMap<PathBuf, Vec<crate::latex::log::LogProblem>>>,
    /// Files each `.tex`'s last publish put diagnostics on.
    pub(crate) published: Mutex<HashMap<PathBuf, HashSet<PathBuf>>>,
    /// Per `.tex`: the lock that serialises its builds and the running build's job.
    pub(crate) builds: Mutex<HashMap<PathBuf, BuildSlot>>,
    pub(crate) tool_missing_said: std::sync::atomic::AtomicBool,
    /// The rc files a build ignored that the user has been told of.
    pub(crate) rc_said: Mutex<HashSet<PathBuf>>,
    /// Per `.tex`: the facts of its sections from the last check.
    pub(crate) facts: Mutex<HashMap<PathBuf, crate::latex::FactsCache>>,
    /// Per open `.tex`: the last check's problems and the document version they are of.
    pub(crate) problems: Mutex<HashMap<PathBuf, KeptProblems>>,
}
