//! An open paper as requests read it: its text, rope, facts and claimed numbers, worked
//! out once per document version from the incrementally kept tree, so hover, code
//! actions and go-to-definition answer from kept state instead of parsing again.

use std::path::Path;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::SystemTime;

use std::collections::HashMap;

use crate::integrity::claims::{self, Claim};
use crate::integrity::{Explained, RunData};
use crate::latex::syntax::{self, TexFacts};
use crate::stages::review::Placed;
use crate::workspace::PosEncoding;

use super::state::State;

pub struct TexView {
    pub version: Option<i32>,
    pub text: String,
    pub rope: ropey::Rope,
    pub facts: TexFacts,
    claims: OnceLock<Vec<Claim>>,
    /// The review's comments placed in this text, with the review files' stamps they
    /// were placed from (a new review places them again).
    review: Mutex<Option<(ReviewStamp, Option<Placements>)>>,
    /// A claim's trace (by index), with the run data it was traced in: a hover on the
    /// same number again is a lookup until a run changes.
    explained: Mutex<HashMap<usize, Traced>>,
    /// The outline, with what it was made from (the review's placement, the checks' problems).
    pub(crate) outline: Mutex<Option<OutlineKept>>,
}

/// An outline and the inputs it was made from, compared by identity.
pub(crate) struct OutlineKept {
    pub review: Option<Placements>,
    pub problems: Option<Arc<Vec<crate::latex::TexProblem>>>,
    pub symbols: Vec<tower_lsp::lsp_types::DocumentSymbol>,
}

/// The open review comments placed in the text, shared.
pub type Placements = Arc<Vec<Placed>>;
/// A claim's explanation and the run data it is of.
type Traced = (Arc<RunData>, Option<Explained>);

/// The modification times of `review.json` and `review.txt`.
type ReviewStamp = [Option<SystemTime>; 2];

impl TexView {
    fn new(version: Option<i32>, text: String, rope: ropey::Rope, facts: TexFacts) -> Self {
        Self {
            version,
            text,
            rope,
            facts,
            claims: OnceLock::new(),
            review: Mutex::new(None),
            explained: Mutex::new(HashMap::new()),
            outline: Mutex::new(None),
        }
    }

    /// The trace of the claimed number at `at` in `runs` (None off a number).
    pub fn explain(&self, runs: &Arc<RunData>, at: usize) -> Option<Explained> {
        let claimed = self.claims();
        let i = claimed.partition_point(|c| c.span.start <= at).checked_sub(1)?;
        if at > claimed[i].span.end {
            return None;
        }
        if let Some((data, e)) = self.explained.lock().unwrap().get(&i) {
            if Arc::ptr_eq(data, runs) {
                return e.clone();
            }
        }
        let e = crate::integrity::explain_in(&claimed[i..=i], runs, at);
        self.explained
            .lock()
            .unwrap()
            .insert(i, (runs.clone(), e.clone()));
        e
    }

    /// The review's comments not yet addressed, placed in this text; kept until a review
    /// file changes. None without a review.
    pub fn open_comments(&self, tex: &Path) -> Option<Placements> {
        let root = crate::lsp::views::review::idea_root(tex)?;
        let mtime = |f: &str| std::fs::metadata(root.join(f)).and_then(|m| m.modified()).ok();
        let stamp = [
            mtime(crate::stages::review::REVIEW_JSON),
            mtime(crate::stages::review::REVIEW_TXT),
        ];
        let mut kept = self.review.lock().unwrap();
        if let Some((s, placed)) = kept.as_ref() {
            if *s == stamp {
                return placed.clone();
            }
        }
        let placed = crate::stages::review::read_review(&root).map(|file| {
            let open: Vec<Placed> = crate::stages::review::place_comments_in(&file, &self.text, &self.facts)
                .into_iter()
                .filter(|p| !p.addressed)
                .collect();
            Arc::new(open)
        });
        *kept = Some((stamp, placed.clone()));
        placed
    }

    /// A file that is not a paper (a `.bib`): its text and rope, no facts.
    pub fn plain(text: String, rope: ropey::Rope) -> Self {
        Self::new(None, text, rope, TexFacts::default())
    }

    /// The numbers the paper claims, found on first use.
    pub fn claims(&self) -> &[Claim] {
        self.claims
            .get_or_init(|| claims::claims(&self.text, &self.facts))
    }

    /// The byte offset of an LSP position.
    pub fn byte_at(&self, pos: tower_lsp::lsp_types::Position, enc: PosEncoding) -> usize {
        let ch = crate::workspace::position::to_char(&self.rope, super::convert::pos_from(pos), enc);
        self.rope.char_to_byte(ch)
    }
}

impl State {
    /// The view of `path`: kept per version for an open document, made afresh from disk
    /// for one that is not open.
    pub fn tex_view(&self, path: &Path) -> Option<Arc<TexView>> {
        let open = {
            let mut docs = self.docs.lock().unwrap();
            match docs.get_mut(path) {
                Some(d) => {
                    let version = d.doc.version();
                    if let Some(v) = d.tex.as_ref().filter(|v| v.version == Some(version)) {
                        return Some(v.clone());
                    }
                    let tree = d.doc.latex_tree().cloned();
                    Some((version, d.doc.text(), d.doc.rope().clone(), tree))
                }
                None => None,
            }
        };
        let Some((version, text, rope, tree)) = open else {
            let text = std::fs::read_to_string(path).ok()?;
            let facts = syntax::facts(&syntax::parse(&text), &text);
            let rope = ropey::Rope::from_str(&text);
            return Some(Arc::new(TexView::new(None, text, rope, facts)));
        };
        let tree = tree.unwrap_or_else(|| syntax::parse(&text));
        // Sections whose text did not change keep the facts the last check found.
        let facts = {
            let mut caches = self.paper.facts.lock().unwrap();
            let cache = caches.entry(path.to_path_buf()).or_default();
            syntax::facts_cached(&tree, &text, cache)
        };
        let len = text.len();
        let view = Arc::new(TexView::new(Some(version), text, rope, facts));
        crate::workspace::memory::release_after(len);
        if let Some(d) = self.docs.lock().unwrap().get_mut(path) {
            if d.doc.version() == version {
                d.tex = Some(view.clone());
            }
        }
        Some(view)
    }
}
