//! The paper's outline (`textDocument/documentSymbol`): its sections, nested, each with
//! its state, so a person or an agent can walk an agent-written paper: still the
//! template's placeholder or empty, written (how many words), open review comments,
//! integrity problems of its numbers.

use std::ops::Range;
use std::path::Path;
use std::sync::Arc;

use tower_lsp::lsp_types::{DocumentSymbol, SymbolKind};

use crate::latex::syntax::Section;
use crate::lsp::backend::Backend;
use crate::lsp::convert;
use crate::lsp::tex_view::TexView;

/// What the outline counts in a section.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct SectionState {
    pub placeholder: bool,
    pub words: usize,
    pub open_comments: usize,
    pub integrity: usize,
}

impl SectionState {
    /// "placeholder", "empty", "412 words", then "· 2 open review comments", "· 1 integrity problem".
    pub fn describe(&self) -> String {
        let mut s = if self.placeholder {
            "placeholder".to_string()
        } else if self.words == 0 {
            "empty".to_string()
        } else {
            format!("{} words", self.words)
        };
        let plural = |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        if self.open_comments > 0 {
            s.push_str(&format!(
                " · {}",
                plural(self.open_comments, "open review comment", "open review comments")
            ));
        }
        if self.integrity > 0 {
            s.push_str(&format!(
                " · {}",
                plural(self.integrity, "integrity problem", "integrity problems")
            ));
        }
        s
    }
}

/// The outline of the paper `path` (None for a file that is not a paper).
pub fn symbols(b: &Backend, path: &Path) -> Option<Vec<DocumentSymbol>> {
    let view = b.state.tex_view(path)?;
    let comments = view.open_comments(path);
    let problems = super::paper::kept_problems(b, path);
    if let Some(k) = view.outline.lock().unwrap().as_ref() {
        if same(&k.review, &comments) && same(&k.problems, &problems) {
            return Some(k.symbols.clone());
        }
    }
    let spans: Vec<Range<usize>> = comments
        .iter()
        .flat_map(|c| c.iter().map(|p| p.anchor.span.clone()))
        .collect();
    let symbols = make(b, &view, path, &spans, problems.as_deref());
    *view.outline.lock().unwrap() = Some(crate::lsp::tex_view::OutlineKept {
        review: comments,
        problems,
        symbols: symbols.clone(),
    });
    Some(symbols)
}

/// Whether two kept inputs are the same one (not merely equal).
fn same<T>(a: &Option<Arc<T>>, b: &Option<Arc<T>>) -> bool {
    match (a, b) {
        (Some(a), Some(b)) => Arc::ptr_eq(a, b),
        (None, None) => true,
        _ => false,
    }
}

fn make(
    b: &Backend,
    view: &TexView,
    path: &Path,
    comments: &[Range<usize>],
    problems: Option<&Vec<crate::latex::TexProblem>>,
) -> Vec<DocumentSymbol> {
    let integrity: Vec<Range<usize>> = problems
        .map(|p| {
            p.iter()
                .filter(|p| p.path == path && crate::integrity::is_integrity(p.code))
                .map(|p| p.span.clone())
                .collect()
        })
        .unwrap_or_default();
    let placeholders = crate::latex::checks::placeholders(&view.text);
    let state_of = |body: &Range<usize>| {
        let within = |r: &Range<usize>| body.start <= r.start && r.start < body.end.max(body.start + 1);
        SectionState {
            placeholder: placeholders.iter().any(within),
            words: words(view, body),
            open_comments: comments.iter().filter(|r| within(r)).count(),
            integrity: integrity.iter().filter(|r| within(r)).count(),
        }
    };
    let enc = b.state.encoding();
    let symbol =
        |name: String, kind: SymbolKind, range: &Range<usize>, pick: &Range<usize>, detail: String| {
            #[allow(deprecated)]
            DocumentSymbol {
                name,
                detail: Some(detail),
                kind,
                tags: None,
                deprecated: None,
                range: convert::byte_range(&view.rope, Some((range.start, range.end)), enc),
                selection_range: convert::byte_range(&view.rope, Some((pick.start, pick.end)), enc),
                children: None,
            }
        };
    let mut top: Vec<DocumentSymbol> = Vec::new();
    if let Some(t) = &view.facts.title {
        // `\title{A Paper}`: the name is what the braces hold.
        let written = &view.text[t.clone()];
        let name = match (written.find('{'), written.rfind('}')) {
            (Some(a), Some(z)) if a < z => &written[a + 1..z],
            _ => written,
        };
        let name = name.trim().to_string();
        top.push(symbol(name, SymbolKind::FILE, t, t, "title".into()));
    }
    for e in view.facts.environments.iter().filter(|e| e.name == "abstract") {
        let body = e.begin.end..e.end.as_ref().map(|r| r.start).unwrap_or(view.text.len());
        let range = e.begin.start..e.end.as_ref().map(|r| r.end).unwrap_or(view.text.len());
        top.push(symbol(
            "Abstract".into(),
            SymbolKind::STRING,
            &range,
            &e.begin,
            state_of(&body).describe(),
        ));
    }
    // Sections nest by level: a stack of the open ancestors.
    let mut stack: Vec<(u8, DocumentSymbol)> = Vec::new();
    let close = |stack: &mut Vec<(u8, DocumentSymbol)>, top: &mut Vec<DocumentSymbol>| {
        let (_, done) = stack.pop().expect("a section is open");
        match stack.last_mut() {
            Some((_, parent)) => parent.children.get_or_insert_with(Vec::new).push(done),
            None => top.push(done),
        }
    };
    for s in &view.facts.sections {
        while stack.last().is_some_and(|(level, _)| *level >= s.level) {
            close(&mut stack, &mut top);
        }
        stack.push((
            s.level,
            section_symbol(s, &state_of(&(s.heading.end..s.body.end)), &symbol),
        ));
    }
    while !stack.is_empty() {
        close(&mut stack, &mut top);
    }
    top
}

/// Makes a symbol: name, kind, its whole range, the range to select, detail.
type MakeSymbol<'a> = dyn Fn(String, SymbolKind, &Range<usize>, &Range<usize>, String) -> DocumentSymbol + 'a;

fn section_symbol(s: &Section, state: &SectionState, symbol: &MakeSymbol) -> DocumentSymbol {
    let name = s.title.trim().to_string();
    let name = if name.is_empty() {
        "(untitled)".to_string()
    } else {
        name
    };
    symbol(name, SymbolKind::MODULE, &s.body, &s.heading, state.describe())
}

/// Words of prose in `body`: comments, headings of the sections inside it, and the
/// arguments of key-like commands (labels, citations, files) aside.
fn words(view: &TexView, body: &Range<usize>) -> usize {
    let mut text = view.text[body.clone()].to_string();
    // Blank what is not prose, keeping offsets (headings inside the body first).
    let blank = |t: &mut String, r: Range<usize>| {
        if r.start < r.end && r.end <= t.len() && t.is_char_boundary(r.start) && t.is_char_boundary(r.end) {
            t.replace_range(r.clone(), &" ".repeat(r.len()));
        }
    };
    for s in &view.facts.sections {
        if body.start <= s.heading.start && s.heading.end <= body.end {
            blank(
                &mut text,
                s.heading.start - body.start..s.heading.end - body.start,
            );
        }
    }
    let mut i = 0;
    while let Some(at) = text[i..].find('\\').map(|k| k + i) {
        let name_end = text[at + 1..]
            .find(|c: char| !c.is_ascii_alphabetic())
            .map_or(text.len(), |k| at + 1 + k);
        let name = text[at + 1..name_end].trim_end_matches('*');
        i = name_end.max(at + 1);
        if crate::latex::anchor::SKIP_ARGS.contains(&name) {
            // Optional arguments, then the braced one.
            let mut j = name_end;
            while text[j..].starts_with('[') {
                j = text[j..].find(']').map_or(text.len(), |k| j + k + 1);
            }
            if text[j..].starts_with('{') {
                let end = text[j..].find('}').map_or(text.len(), |k| j + k + 1);
                blank(&mut text, at..end);
                i = end;
            }
        }
    }
    let prose: String = text
        .lines()
        .map(|l| match l.find('%') {
            Some(i) if i == 0 || l.as_bytes()[i - 1] != b'\\' => &l[..i],
            _ => l,
        })
        .collect::<Vec<_>>()
        .join("\n");
    crate::integrity::claims::words_of(&prose)
        .split(' ')
        .filter(|w| w.chars().any(|c| c.is_alphabetic()))
        .count()
}
