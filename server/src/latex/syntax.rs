//! What a `.tex` file holds, read from its tree-sitter tree: the section map, citation
//! keys, labels and references, included graphics and where they are searched, the
//! environments (and which are left open), `filecontents` blocks (v1 keeps its
//! bibliography in one), the `\title`. All positions are byte ranges into the source.
//!
//! The grammar recovers from errors, so a half-typed document still yields everything
//! outside the broken part; environments are matched by walking `\begin`/`\end` in order
//! rather than trusting the tree's nesting, which breaks at the first unclosed one.

use std::ops::Range;

use tree_sitter::{Node, Parser, Tree};

/// One `\section`-like heading and the text it governs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Section {
    /// 0 `\part`, 1 `\chapter`, 2 `\section`, 3 `\subsection`, 4 `\subsubsection`,
    /// 5 `\paragraph`, 6 `\subparagraph`.
    pub level: u8,
    /// The heading's text as written (LaTeX markup kept).
    pub title: String,
    /// `\section{...}` itself.
    pub heading: Range<usize>,
    /// From the heading to the next heading of the same or a higher level, `\end{document}`,
    /// the bibliography, or the end of the file.
    pub body: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Citation {
    pub key: String,
    /// The key itself.
    pub span: Range<usize>,
    /// The whole `\cite{...}` command.
    pub command: Range<usize>,
}

/// A name with where it is written (`\label{name}`, `\ref{name}`, a graphic's path).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Named {
    pub name: String,
    pub span: Range<usize>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Environment {
    pub name: String,
    pub begin: Range<usize>,
    /// None: never closed.
    pub end: Option<Range<usize>>,
}

/// `\begin{filecontents}{name} ... \end{filecontents}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileContents {
    pub name: String,
    /// The text between the opening line and `\end{filecontents}`.
    pub body: Range<usize>,
}

/// An `\end{...}` whose name does not match the innermost open environment.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StrayEnd {
    pub name: String,
    pub span: Range<usize>,
    /// The environment that was open instead (None: nothing was open).
    pub expected: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TexFacts {
    pub sections: Vec<Section>,
    pub citations: Vec<Citation>,
    pub labels: Vec<Named>,
    pub references: Vec<Named>,
    pub graphics: Vec<Named>,
    /// The folders of `\graphicspath{{a/}{b/}}`, in order.
    pub graphics_paths: Vec<String>,
    pub environments: Vec<Environment>,
    pub stray_ends: Vec<StrayEnd>,
    pub filecontents: Vec<FileContents>,
    /// `\bibliography{a,b}` names (without `.bib`).
    pub bibliographies: Vec<Named>,
    /// The `\title{...}` command.
    pub title: Option<Range<usize>>,
    /// The source has `\end{document}` at this range.
    pub end_document: Option<Range<usize>>,
}

pub fn parse(src: &str) -> Tree {
    let mut parser = Parser::new();
    parser
        .set_language(&codebook_tree_sitter_latex::LANGUAGE.into())
        .expect("the LaTeX grammar matches the tree-sitter version");
    parser
        .parse(src, None)
        .expect("a parser with a language always parses")
}

/// Everything [`TexFacts`] holds, from a tree of `src`.
pub fn facts(tree: &Tree, src: &str) -> TexFacts {
    facts_cached(tree, src, &mut FactsCache::default())
}

/// What the walk collects, before environments are paired and sections measured. Kept
/// per section in a [`FactsCache`] with positions relative to the section's start.
#[derive(Debug, Clone, Default)]
struct Raw {
    headings: Vec<(u8, String, Range<usize>)>,
    citations: Vec<Citation>,
    labels: Vec<Named>,
    references: Vec<Named>,
    graphics: Vec<Named>,
    graphics_paths: Vec<String>,
    /// `\begin` (true) and `\end` (false) with their names, in document order.
    env_tokens: Vec<(bool, String, Range<usize>)>,
    filecontents: Vec<FileContents>,
    bibliographies: Vec<Named>,
    bib_start: Option<usize>,
    title: Option<Range<usize>>,
}

impl Raw {
    /// `other` with every position moved by `by` bytes, appended.
    fn append_shifted(&mut self, other: &Raw, by: isize) {
        let sh = |r: &Range<usize>| (r.start as isize + by) as usize..(r.end as isize + by) as usize;
        let named = |n: &Named| Named {
            name: n.name.clone(),
            span: sh(&n.span),
        };
        self.headings
            .extend(other.headings.iter().map(|(l, t, r)| (*l, t.clone(), sh(r))));
        self.citations.extend(other.citations.iter().map(|c| Citation {
            key: c.key.clone(),
            span: sh(&c.span),
            command: sh(&c.command),
        }));
        self.labels.extend(other.labels.iter().map(named));
        self.references.extend(other.references.iter().map(named));
        self.graphics.extend(other.graphics.iter().map(named));
        self.graphics_paths.extend(other.graphics_paths.iter().cloned());
        self.env_tokens
            .extend(other.env_tokens.iter().map(|(b, n, r)| (*b, n.clone(), sh(r))));
        self.filecontents
            .extend(other.filecontents.iter().map(|f| FileContents {
                name: f.name.clone(),
                body: sh(&f.body),
            }));
        self.bibliographies.extend(other.bibliographies.iter().map(named));
        if self.bib_start.is_none() {
            self.bib_start = other.bib_start.map(|b| (b as isize + by) as usize);
        }
        if other.title.is_some() {
            self.title = other.title.as_ref().map(sh);
        }
    }
}

/// What earlier walks found in each section, keyed by the section's text (and shape),
/// so that after a keystroke only the edited section is walked again. Keep one per
/// document.
#[derive(Debug, Default)]
pub struct FactsCache {
    chunks: std::collections::HashMap<u64, Raw>,
    used: std::collections::HashSet<u64>,
}

/// Like [`facts`], reusing what `cache` holds for sections whose text did not change.
pub fn facts_cached(tree: &Tree, src: &str, cache: &mut FactsCache) -> TexFacts {
    let mut raw = Raw::default();
    cache.used.clear();
    walk(tree.root_node(), src, &mut raw, Some(cache));
    let used = std::mem::take(&mut cache.used);
    cache.chunks.retain(|k, _| used.contains(k));
    cache.used = used;
    assemble(raw, src)
}

/// Sections, and big environments other than `document` (v1 keeps its whole bibliography
/// in a `filecontents` block), are cached as a whole.
fn is_chunk(node: Node, src: &str) -> bool {
    match node.kind() {
        "part" | "chapter" | "section" => true,
        "generic_environment" => {
            node.byte_range().len() > 4096
                && node
                    .child_by_field_name("begin")
                    .and_then(|b| b.child_by_field_name("name"))
                    .is_some_and(|n| inner_text(n, src) != "document")
        }
        _ => false,
    }
}

fn chunk_key(node: Node, src: &str) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    node.kind_id().hash(&mut h);
    node.child_count().hash(&mut h);
    src[node.byte_range()].hash(&mut h);
    h.finish()
}

/// Collects the facts of `top`'s subtree into `raw`. With a cache, whole sections are
/// taken from it when their text, kind and number of children are unchanged (the tree
/// of the same text parses the same; tests compare cached and fresh facts on the v1
/// paper, whose sections hold recovered syntax errors).
fn walk(top: Node, src: &str, raw: &mut Raw, mut cache: Option<&mut FactsCache>) {
    // Pre-order, children left to right, with one cursor (no allocation per node: a
    // paper has a node per word).
    let mut cursor = top.walk();
    'walk: loop {
        let node = cursor.node();
        let chunk = node != top && is_chunk(node, src);
        if let (true, Some(c)) = (chunk, cache.as_deref_mut()) {
            let key = chunk_key(node, src);
            c.chunks.entry(key).or_insert_with(|| {
                let mut sub = Raw::default();
                walk(node, src, &mut sub, None);
                let mut rel = Raw::default();
                rel.append_shifted(&sub, -(node.start_byte() as isize));
                rel
            });
            c.used.insert(key);
            raw.append_shifted(&c.chunks[&key], node.start_byte() as isize);
        } else {
            visit(node, src, raw);
            // Comments and verbatim-like blocks hold no LaTeX structure.
            let opaque = matches!(
                node.kind(),
                "line_comment" | "block_comment" | "comment_environment" | "verbatim_environment"
            );
            if !opaque && cursor.goto_first_child() {
                continue;
            }
        }
        loop {
            if cursor.node() == top {
                break 'walk;
            }
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                break 'walk;
            }
        }
    }
}

/// What one node contributes.
fn visit(node: Node, src: &str, f: &mut Raw) {
    let text = |n: Node| src[n.byte_range()].to_owned();
    match node.kind() {
        "part" | "chapter" | "section" | "subsection" | "subsubsection" | "paragraph" | "subparagraph" => {
            let title = node.child_by_field_name("text");
            let heading_end = title.map(|t| t.end_byte()).unwrap_or(node.start_byte());
            f.headings.push((
                level_of(node.kind()),
                title.map(|t| inner_text(t, src)).unwrap_or_default(),
                node.start_byte()..heading_end.max(node.start_byte() + 1),
            ));
        }
        "citation" => {
            if let Some(keys) = node.child_by_field_name("keys") {
                // The group's text split at commas: the grammar cuts a key at `_`.
                for k in list_items(keys, src) {
                    f.citations.push(Citation {
                        key: k.name,
                        span: k.span,
                        command: node.byte_range(),
                    });
                }
            }
        }
        "label_definition" => {
            // From the source, not the node: the grammar ends the name at `_`.
            if let Some(name) = braced_after(src, node.start_byte()) {
                f.labels.push(name);
            }
        }
        "label_reference" | "label_reference_range" => {
            let mut c = node.walk();
            for names in node.children_by_field_name("names", &mut c) {
                f.references.extend(list_items(names, src));
            }
        }
        "graphics_include" => {
            if let Some(p) = node.child_by_field_name("path") {
                f.graphics.push(named_inner(p, src));
            }
        }
        "bibtex_include" => {
            if f.bib_start.is_none() {
                f.bib_start = Some(node.start_byte());
            }
            if let Some(p) = node.child_by_field_name("paths") {
                let mut c = p.walk();
                for path in p.children_by_field_name("path", &mut c) {
                    f.bibliographies.push(Named {
                        name: text(path).trim().to_owned(),
                        span: path.byte_range(),
                    });
                }
            }
        }
        "title_declaration" => f.title = Some(node.byte_range()),
        "generic_command" => {
            let name = node.child_by_field_name("command").map(text).unwrap_or_default();
            if name == "\\graphicspath" {
                f.graphics_paths.extend(graphics_paths(node, src));
            }
        }
        "begin" | "end" => {
            let name = node
                .child_by_field_name("name")
                .map(|n| inner_text(n, src))
                .unwrap_or_default();
            let begin = node.kind() == "begin";
            if begin && (name == "filecontents" || name == "filecontents*") {
                if let Some(fc) = filecontents(node, src) {
                    f.filecontents.push(fc);
                }
            }
            f.env_tokens.push((begin, name, node.byte_range()));
        }
        _ => {}
    }
}

/// Pairs the environments and measures the sections.
fn assemble(raw: Raw, src: &str) -> TexFacts {
    let mut f = TexFacts {
        citations: raw.citations,
        labels: raw.labels,
        references: raw.references,
        graphics: raw.graphics,
        graphics_paths: raw.graphics_paths,
        filecontents: raw.filecontents,
        bibliographies: raw.bibliographies,
        title: raw.title,
        ..TexFacts::default()
    };
    let mut open: Vec<usize> = Vec::new();
    for (begin, name, span) in raw.env_tokens {
        if begin {
            open.push(f.environments.len());
            f.environments.push(Environment {
                name,
                begin: span,
                end: None,
            });
            continue;
        }
        if name == "document" {
            f.end_document = Some(span.clone());
        }
        match open.iter().rposition(|i| f.environments[*i].name == name) {
            // Closes the innermost open one (anything opened inside it stays open).
            Some(pos) => {
                let i = open[pos];
                f.environments[i].end = Some(span);
                open.truncate(pos);
            }
            None => f.stray_ends.push(StrayEnd {
                name,
                span,
                expected: open.last().map(|i| f.environments[*i].name.clone()),
            }),
        }
    }
    let doc_end = f
        .end_document
        .as_ref()
        .map(|r| r.start)
        .into_iter()
        .chain(raw.bib_start)
        .min()
        .unwrap_or(src.len());
    let headings = raw.headings;
    for (i, (level, title, heading)) in headings.iter().enumerate() {
        let end = headings[i + 1..]
            .iter()
            .find(|(l, _, h)| *l <= *level && h.start > heading.start)
            .map(|(_, _, h)| h.start)
            .unwrap_or(doc_end)
            .max(heading.end);
        f.sections.push(Section {
            level: *level,
            title: title.clone(),
            heading: heading.clone(),
            body: heading.start..end,
        });
    }
    f
}

fn level_of(kind: &str) -> u8 {
    match kind {
        "part" => 0,
        "chapter" => 1,
        "section" => 2,
        "subsection" => 3,
        "subsubsection" => 4,
        "paragraph" => 5,
        _ => 6,
    }
}

/// The text inside a `{...}` group, trimmed.
fn inner_text(group: Node, src: &str) -> String {
    let s = &src[group.byte_range()];
    let s = s.strip_prefix('{').unwrap_or(s);
    let s = s.strip_suffix('}').unwrap_or(s);
    s.trim().to_owned()
}

/// A `{name}` group as a [`Named`] whose span covers the name only.
/// The trimmed text of the first `{…}` group from `from` (nested braces kept), with its
/// span.
pub(crate) fn braced_after(src: &str, from: usize) -> Option<Named> {
    let open = from + src.get(from..)?.find('{')?;
    let mut depth = 0usize;
    for (i, c) in src[open..].char_indices() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth == 0 {
                    let inner = &src[open + 1..open + i];
                    let lead = inner.len() - inner.trim_start().len();
                    let name = inner.trim();
                    let start = open + 1 + lead;
                    return Some(Named {
                        name: name.to_owned(),
                        span: start..start + name.len(),
                    });
                }
            }
            '\n' if depth == 1 && src[open..open + i].ends_with("\n") => return None,
            _ => {}
        }
    }
    None
}

/// The comma-separated items of a `{a, b_c}` group, each with its span, whole: the
/// grammar reads `_` in a key as a subscript and splits the key there.
fn list_items(group: Node, src: &str) -> Vec<Named> {
    let Some(whole) = braced_after(src, group.start_byte()) else {
        return Vec::new();
    };
    let mut out = Vec::new();
    let mut at = whole.span.start;
    for item in whole.name.split(',') {
        let lead = item.len() - item.trim_start().len();
        let name = item.trim();
        if !name.is_empty() {
            out.push(Named {
                name: name.to_owned(),
                span: at + lead..at + lead + name.len(),
            });
        }
        at += item.len() + 1;
    }
    out
}

fn named_inner(group: Node, src: &str) -> Named {
    let r = group.byte_range();
    let raw = &src[r.clone()];
    let (start, end) = match (raw.starts_with('{'), raw.ends_with('}') && raw.len() > 1) {
        (true, true) => (r.start + 1, r.end - 1),
        (true, false) => (r.start + 1, r.end),
        _ => (r.start, r.end),
    };
    let inner = &src[start..end];
    let lead = inner.len() - inner.trim_start().len();
    let name = inner.trim();
    Named {
        name: name.to_owned(),
        span: start + lead..start + lead + name.len(),
    }
}

fn graphics_paths(node: Node, src: &str) -> Vec<String> {
    let Some(arg) = node.child_by_field_name("arg") else {
        return Vec::new();
    };
    let mut c = arg.walk();
    let inner: Vec<String> = arg
        .named_children(&mut c)
        .filter(|n| n.kind() == "curly_group")
        .map(|n| inner_text(n, src))
        .collect();
    if inner.is_empty() {
        // `\graphicspath{dir/}` (one folder without its own braces).
        let one = inner_text(arg, src);
        return if one.is_empty() { Vec::new() } else { vec![one] };
    }
    inner
}

/// The file name and body of a `filecontents` environment from its `\begin` node.
fn filecontents(begin: Node, src: &str) -> Option<FileContents> {
    let env = begin.parent()?;
    let name = begin
        .next_named_sibling()
        .filter(|n| n.kind() == "curly_group")
        .map(|n| (inner_text(n, src), n.end_byte()))?;
    let end = env
        .child_by_field_name("end")
        .map(|e| e.start_byte())
        .or_else(|| src[name.1..].find("\\end{filecontents").map(|i| name.1 + i))?;
    // The body starts on the line after the opening.
    let start = src[name.1..end]
        .find('\n')
        .map(|i| name.1 + i + 1)
        .unwrap_or(name.1);
    Some(FileContents {
        name: name.0,
        body: start..end.max(start),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn of(src: &str) -> TexFacts {
        facts(&parse(src), src)
    }

    const SAMPLE: &str = r#"\documentclass{article}
\graphicspath{{../}{figs/}}
\begin{filecontents}{references.bib}
@article{a1,
 title = {X},
}
\end{filecontents}
\title{My Title}
\begin{document}
\maketitle
\section{Introduction}
\label{sec:intro}
Text \cite{a1, b2} and \citet{c3}. See Fig.~\ref{fig:x} and \cref{fig:generated_samples,tab:a_b}.
\begin{figure}[h]
  \includegraphics[width=\textwidth]{generated_images.png}
  \caption{Cap}\label{fig:x}\label{fig:generated_images}
Also \citep{ho_denoising_2020}.
\end{figure}
\subsection{Sub}
More.
\section{Results}
% \cite{commented}
Done.
\bibliography{references}
\end{document}
"#;

    #[test]
    fn reads_structure() {
        let f = of(SAMPLE);
        let keys: Vec<&str> = f.citations.iter().map(|c| c.key.as_str()).collect();
        assert_eq!(keys, ["a1", "b2", "c3", "ho_denoising_2020"]);
        assert_eq!(&SAMPLE[f.citations[1].span.clone()], "b2");
        assert_eq!(f.graphics_paths, ["../", "figs/"]);
        assert_eq!(f.graphics.len(), 1);
        assert_eq!(f.graphics[0].name, "generated_images.png");
        assert_eq!(&SAMPLE[f.graphics[0].span.clone()], "generated_images.png");
        let labels: Vec<&str> = f.labels.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(labels, ["sec:intro", "fig:x", "fig:generated_images"]);
        // Whole keys: `_` does not end a label, a reference or a citation key.
        let refs: Vec<&str> = f.references.iter().map(|r| r.name.as_str()).collect();
        assert_eq!(refs, ["fig:x", "fig:generated_samples", "tab:a_b"]);
        assert_eq!(&SAMPLE[f.references[2].span.clone()], "tab:a_b");
        assert_eq!(&SAMPLE[f.citations[3].span.clone()], "ho_denoising_2020");
        assert_eq!(f.bibliographies[0].name, "references");
        assert_eq!(f.filecontents.len(), 1);
        assert_eq!(f.filecontents[0].name, "references.bib");
        assert!(SAMPLE[f.filecontents[0].body.clone()].starts_with("@article{a1,"));
        assert!(SAMPLE[f.filecontents[0].body.clone()].ends_with("}\n"));
        assert!(f.title.is_some());
        assert!(f.stray_ends.is_empty());
        assert!(
            f.environments.iter().all(|e| e.end.is_some()),
            "{:?}",
            f.environments
        );
    }

    #[test]
    fn sections_cover_their_text() {
        let f = of(SAMPLE);
        let titles: Vec<(&str, u8)> = f.sections.iter().map(|s| (s.title.as_str(), s.level)).collect();
        assert_eq!(titles, [("Introduction", 2), ("Sub", 3), ("Results", 2)]);
        let intro = &SAMPLE[f.sections[0].body.clone()];
        assert!(intro.starts_with("\\section{Introduction}"));
        assert!(intro.contains("\\subsection{Sub}") && !intro.contains("Results"));
        let results = &SAMPLE[f.sections[2].body.clone()];
        assert!(results.contains("Done.") && !results.contains("\\bibliography"));
    }

    #[test]
    fn cached_facts_equal_fresh_ones_after_edits() {
        let mut cache = FactsCache::default();
        let mut src = SAMPLE.to_owned();
        let first = facts_cached(&parse(&src), &src, &mut cache);
        assert_eq!(first, of(&src));
        // Edits in one section, before all sections, and one that adds a citation.
        for (needle, insert) in [
            ("More.", "Typed "),
            ("\\title", "% a comment\n"),
            ("Done.", "\\cite{new1} "),
            ("\\section{Results}", "\\begin{itemize}\n"),
        ] {
            let at = src.find(needle).unwrap();
            src.insert_str(at, insert);
            let cached = facts_cached(&parse(&src), &src, &mut cache);
            assert_eq!(cached, of(&src), "after inserting {insert:?}");
        }
        assert!(of(&src).citations.iter().any(|c| c.key == "new1"));
        assert!(cache.chunks.len() <= 3);
    }

    #[test]
    fn unclosed_and_mismatched_environments() {
        let src = "\\begin{document}\n\\begin{itemize}\n\\item x\n\\begin{table}\n\\end{itemize}\n\\end{figure}\n\\end{document}\n";
        let f = of(src);
        let open: Vec<&str> = f
            .environments
            .iter()
            .filter(|e| e.end.is_none())
            .map(|e| e.name.as_str())
            .collect();
        assert_eq!(open, ["table"]);
        assert_eq!(f.stray_ends.len(), 1);
        assert_eq!(f.stray_ends[0].name, "figure");
        assert_eq!(f.stray_ends[0].expected.as_deref(), Some("document"));
    }
}
