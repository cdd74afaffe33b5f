//! One paper as the editor sees it: the `.tex` (its current text, saved or not), the
//! `.bib` files it names, and the runs whose results it reports (v1's layout:
//! `<idea>/latex/template.tex` beside `<idea>/run_*/`). Gathers what the static checks
//! need, and answers "what is this citation" for hovers and completion.

use std::ops::Range;
use std::path::{Path, PathBuf};

use super::bib::{self, BibItem};
use super::checks::{self, BibSource, TexProblem};
use super::syntax::{self, TexFacts};

/// Reads a file's current text (an open buffer's, else the disk's); None when absent.
pub type ReadText<'a> = &'a dyn Fn(&Path) -> Option<String>;

/// The folder whose `run_*/final_info.json` the paper reports: the idea folder above a
/// `latex/` folder, else the `.tex`'s own folder.
pub fn runs_folder(tex: &Path) -> PathBuf {
    let dir = tex.parent().unwrap_or(Path::new("."));
    match (dir.file_name(), dir.parent()) {
        (Some(n), Some(parent)) if n == "latex" => parent.to_path_buf(),
        _ => dir.to_path_buf(),
    }
}

/// The `.bib` files `\bibliography{...}` names (relative to the `.tex`, `.bib` added), as
/// their current text; missing ones are left out (the build reports them).
pub fn bib_sources(tex: &Path, facts: &TexFacts, read: ReadText) -> Vec<BibSource> {
    let dir = tex.parent().unwrap_or(Path::new("."));
    let mut out: Vec<BibSource> = Vec::new();
    for b in &facts.bibliographies {
        let name = if b.name.ends_with(".bib") {
            b.name.clone()
        } else {
            format!("{}.bib", b.name)
        };
        let path = crate::runner::local::absolutize(dir, Path::new(&name));
        if out.iter().any(|s| s.path == path) {
            continue;
        }
        if let Some(text) = read(&path) {
            out.push(BibSource { path, text });
        }
    }
    out
}

/// The facts and the static-check problems of the paper `tex` whose text is `src`.
pub fn check_paper(
    tex: &Path,
    src: &str,
    tree: &tree_sitter::Tree,
    read: ReadText,
) -> (TexFacts, Vec<TexProblem>) {
    check_paper_cached(tex, src, tree, &mut syntax::FactsCache::default(), read)
}

/// [`check_paper`] reusing the facts of unchanged sections from `cache` (one per document).
pub fn check_paper_cached(
    tex: &Path,
    src: &str,
    tree: &tree_sitter::Tree,
    cache: &mut syntax::FactsCache,
    read: ReadText,
) -> (TexFacts, Vec<TexProblem>) {
    let facts = syntax::facts_cached(tree, src, cache);
    let bibs = bib_sources(tex, &facts, read);
    let runs = crate::integrity::RunData::load_cached(&runs_folder(tex));
    let exists = |p: &Path| p.is_file();
    let problems = checks::check(&checks::Inputs {
        tex_path: tex,
        src,
        facts: &facts,
        bibs: &bibs,
        exists: &exists,
        runs: &runs,
    });
    (facts, problems)
}

/// Every bibliography entry the paper can cite: its `filecontents` blocks, then the
/// `.bib` files it names (a block that writes a named file stands for that file).
pub fn bib_items(tex: &Path, src: &str, facts: &TexFacts, read: ReadText) -> Vec<BibItem> {
    let mut items = Vec::new();
    let mut written = Vec::new();
    for fc in facts.filecontents.iter().filter(|f| f.name.ends_with(".bib")) {
        written.push(fc.name.clone());
        items.extend(bib::parse(&src[fc.body.clone()]).items);
    }
    for b in bib_sources(tex, facts, read) {
        let name = b.path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| written.contains(&n)) {
            continue;
        }
        items.extend(bib::parse(&b.text).items);
    }
    items
}

/// The citation key under byte `offset`, with its range.
pub fn citation_at(facts: &TexFacts, offset: usize) -> Option<(&str, Range<usize>)> {
    facts
        .citations
        .iter()
        .find(|c| c.span.start <= offset && offset <= c.span.end)
        .map(|c| (c.key.as_str(), c.span.clone()))
}

/// When `offset` is inside the braces of a `\cite`-like command (`\cite{`, `\citet{a,`,
/// `\citep[p.~3]{`), the byte range of the key being typed there.
pub fn cite_key_being_typed(src: &str, offset: usize) -> Option<Range<usize>> {
    let before = &src[..offset.min(src.len())];
    let line_start = before.rfind('\n').map(|i| i + 1).unwrap_or(0);
    let line = &before[line_start..];
    let open = line.rfind('{')?;
    if line[open..].contains('}') {
        return None;
    }
    // The command before the brace, allowing optional [..] arguments in between.
    let mut head = line[..open].trim_end();
    while head.ends_with(']') {
        head = head[..head.rfind('[')?].trim_end();
    }
    let cmd_start = head.rfind('\\')?;
    let cmd = &head[cmd_start + 1..];
    let is_cite = cmd.starts_with("cite") || cmd.starts_with("Cite") || cmd == "nocite";
    if !is_cite || !cmd.chars().all(|c| c.is_ascii_alphabetic() || c == '*') {
        return None;
    }
    let keys = &line[open + 1..];
    let key_start = keys.rfind(',').map(|i| i + 1).unwrap_or(0);
    let lead = keys[key_start..].len() - keys[key_start..].trim_start().len();
    let start = line_start + open + 1 + key_start + lead;
    Some(start..offset)
}

/// What a hover says about a bibliography entry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CiteInfo {
    pub key: String,
    pub title: Option<String>,
    pub authors: Option<String>,
    pub venue: Option<String>,
    pub year: Option<String>,
    pub abstract_excerpt: Option<String>,
    pub link: Option<String>,
}

pub fn cite_info(item: &BibItem) -> CiteInfo {
    let clean = |s: &str| {
        let t: String = s.chars().filter(|c| *c != '{' && *c != '}').collect();
        t.split_whitespace().collect::<Vec<_>>().join(" ")
    };
    let field = |names: &[&str]| {
        names
            .iter()
            .find_map(|n| item.field(n))
            .map(clean)
            .filter(|s| !s.is_empty())
    };
    let authors = item.field("author").map(|a| {
        let names: Vec<String> = a.split(" and ").map(clean).collect();
        match names.len() {
            0..=4 => names.join(", "),
            n => format!("{}, … ({n} authors)", names[..3].join(", ")),
        }
    });
    let link = field(&["url"]).or_else(|| field(&["doi"]).map(|d| format!("https://doi.org/{d}")));
    let abstract_excerpt = field(&["abstract"]).map(|a| {
        let mut s: String = a.chars().take(400).collect();
        if a.chars().count() > 400 {
            s.push('…');
        }
        s
    });
    CiteInfo {
        key: item.key.clone(),
        title: field(&["title"]),
        authors,
        venue: field(&["journal", "booktitle", "publisher", "howpublished", "eprint"]),
        year: field(&["year"]),
        abstract_excerpt,
        link,
    }
}

impl CiteInfo {
    /// Markdown for an editor hover.
    pub fn markdown(&self) -> String {
        let mut s = format!("**{}**", self.title.as_deref().unwrap_or(&self.key));
        if let Some(a) = &self.authors {
            s.push_str(&format!("\n\n{a}"));
        }
        let venue_year: Vec<&str> = [self.venue.as_deref(), self.year.as_deref()]
            .into_iter()
            .flatten()
            .collect();
        if !venue_year.is_empty() {
            s.push_str(&format!("\n\n*{}*", venue_year.join(", ")));
        }
        if let Some(x) = &self.abstract_excerpt {
            s.push_str(&format!("\n\n{x}"));
        }
        if let Some(l) = &self.link {
            s.push_str(&format!("\n\n[{l}]({l})"));
        }
        s.push_str(&format!("\n\n`{}`", self.key));
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn runs_folder_of_v1_layout() {
        assert_eq!(
            runs_folder(Path::new("/r/idea/latex/template.tex")),
            PathBuf::from("/r/idea")
        );
        assert_eq!(
            runs_folder(Path::new("/r/paper/main.tex")),
            PathBuf::from("/r/paper")
        );
    }

    #[test]
    fn key_being_typed() {
        let src = "See \\citep[p.~3]{ddpm, ed";
        let r = cite_key_being_typed(src, src.len()).unwrap();
        assert_eq!(&src[r], "ed");
        let src2 = "\\cite{";
        assert_eq!(cite_key_being_typed(src2, src2.len()), Some(6..6));
        assert_eq!(cite_key_being_typed("\\section{Intro", 14), None);
        assert_eq!(cite_key_being_typed("\\cite{a} and {", 14), None);
    }

    #[test]
    fn hover_text() {
        let f = bib::parse("@article{k, title={Denoising {D}iffusion}, author={Ho, Jonathan and Jain, Ajay and Abbeel, Pieter}, journal={NeurIPS}, year={2020}, url={https://arxiv.org/abs/2006.11239}}");
        let info = cite_info(&f.items[0]);
        assert_eq!(info.title.as_deref(), Some("Denoising Diffusion"));
        assert_eq!(
            info.authors.as_deref(),
            Some("Ho, Jonathan, Jain, Ajay, Abbeel, Pieter")
        );
        let md = info.markdown();
        assert!(md.starts_with("**Denoising Diffusion**"));
        assert!(md.contains("*NeurIPS, 2020*"));
        assert!(md.contains("[https://arxiv.org/abs/2006.11239]("));
    }
}
