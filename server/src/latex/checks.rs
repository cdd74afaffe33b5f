//! Static checks of a paper, cheap enough to run after every keystroke: citations and
//! references that resolve to nothing, BibTeX duplicates, figures that are missing or
//! included twice, repeated sections, environments left open, template placeholders left
//! in, and numbers in the Results section that no run produced. Each problem may carry
//! the obvious fix.

use std::collections::{HashMap, HashSet};
use std::ops::Range;
use std::path::{Path, PathBuf};

use super::bib::{self, BibFile, BibItem, Duplicate};
use super::syntax::TexFacts;
use crate::project::Severity;

/// A problem in the `.tex` or in one of its `.bib` files.
#[derive(Debug, Clone, PartialEq)]
pub struct TexProblem {
    pub path: PathBuf,
    pub span: Range<usize>,
    pub severity: Severity,
    /// Stable identifier of the check (`undefined-citation`, ...), for filtering and tests.
    pub code: &'static str,
    pub message: String,
    pub fix: Option<Fix>,
}

/// Replace `span` (in the problem's file) by `replacement`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    pub title: String,
    pub span: Range<usize>,
    pub replacement: String,
}

/// A `.bib` file the paper uses, with its text.
pub struct BibSource {
    pub path: PathBuf,
    pub text: String,
}

pub struct Inputs<'a> {
    pub tex_path: &'a Path,
    pub src: &'a str,
    pub facts: &'a TexFacts,
    /// The `.bib` files named by `\bibliography` that exist (not `filecontents` ones whose
    /// block is in the `.tex`: those are read from `src`).
    pub bibs: &'a [BibSource],
    /// Whether a file exists (a function, so tests and the editor's open buffers can answer).
    pub exists: &'a dyn Fn(&Path) -> bool,
    /// The runs' results, for the integrity checks of the numbers the paper claims.
    pub runs: &'a crate::integrity::RunData,
}

impl Inputs<'_> {
    /// The idea folder the runs are read from (the folder above `latex/`, as v1 lays it
    /// out), normalised as [`find_graphic`] normalises what it finds.
    fn runs_folder(&self) -> PathBuf {
        let folder = crate::latex::paper::runs_folder(self.tex_path);
        crate::runner::local::absolutize(Path::new(""), &folder)
    }
}

/// Extensions LaTeX tries for `\includegraphics{name}` without one (pdflatex).
const GRAPHIC_EXTS: [&str; 6] = ["pdf", "png", "jpg", "jpeg", "eps", "PNG"];

pub fn check(inp: &Inputs) -> Vec<TexProblem> {
    let mut out = Vec::new();
    let tex = inp.tex_path.to_path_buf();
    let problem = |span: Range<usize>, severity, code, message: String| TexProblem {
        path: tex.clone(),
        span,
        severity,
        code,
        message,
        fix: None,
    };

    // The bibliography: filecontents blocks (positions shifted into the .tex), then files.
    let mut parsed: Vec<(PathBuf, BibFile)> = Vec::new();
    let written_by_tex: HashSet<String> = inp.facts.filecontents.iter().map(|f| f.name.clone()).collect();
    for fc in &inp.facts.filecontents {
        if !fc.name.ends_with(".bib") {
            continue;
        }
        let mut file = bib::parse(&inp.src[fc.body.clone()]);
        let shift = |r: &mut Range<usize>| *r = r.start + fc.body.start..r.end + fc.body.start;
        for i in &mut file.items {
            shift(&mut i.key_span);
            shift(&mut i.span);
        }
        for e in &mut file.errors {
            shift(&mut e.span);
        }
        parsed.push((tex.clone(), file));
    }
    for b in inp.bibs {
        let name = b
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        // v1 writes references.bib from the .tex's filecontents block: the block is the truth.
        if written_by_tex.contains(&name) {
            continue;
        }
        parsed.push((b.path.clone(), bib::parse(&b.text)));
    }
    for (path, file) in &parsed {
        for e in &file.errors {
            out.push(TexProblem {
                path: path.clone(),
                span: e.span.clone(),
                severity: Severity::Error,
                code: "bibtex-syntax",
                message: e.message.clone(),
                fix: None,
            });
        }
    }
    let items: Vec<(&PathBuf, &BibItem)> = parsed
        .iter()
        .flat_map(|(p, f)| f.items.iter().map(move |i| (p, i)))
        .collect();
    let refs: Vec<&BibItem> = items.iter().map(|(_, i)| *i).collect();
    for d in bib::duplicates(&refs) {
        let (index, first, code, what) = match d {
            Duplicate::Key { index, first } => (index, first, "duplicate-bib-key", "duplicate BibTeX key"),
            Duplicate::Entry { index, first } => {
                (index, first, "duplicate-bib-entry", "duplicate BibTeX entry")
            }
        };
        let (path, item) = items[index];
        let (_, first_item) = items[first];
        let message = match d {
            Duplicate::Key { .. } => format!(
                "{what} {:?} (first defined as {:?}); BibTeX keeps only the first",
                item.key, first_item.key
            ),
            Duplicate::Entry { .. } => format!(
                "{what}: {:?} is the same work as {:?} (same title)",
                item.key, first_item.key
            ),
        };
        let fix = match d {
            // Deleting the repeat changes nothing BibTeX would have used.
            Duplicate::Key { .. } => Some(Fix {
                title: format!("Remove the repeated entry {:?}", item.key),
                span: item.span.clone(),
                replacement: String::new(),
            }),
            Duplicate::Entry { .. } => None,
        };
        out.push(TexProblem {
            path: path.clone(),
            span: item.key_span.clone(),
            severity: Severity::Warning,
            code,
            message,
            fix,
        });
    }

    // Citations.
    let keys: HashMap<String, &str> = refs
        .iter()
        .map(|i| (i.key.to_lowercase(), i.key.as_str()))
        .collect();
    let exact: HashSet<&str> = refs.iter().map(|i| i.key.as_str()).collect();
    let have_bib = !refs.is_empty() || !inp.facts.bibliographies.is_empty() || !parsed.is_empty();
    for c in &inp.facts.citations {
        if c.key.is_empty() || exact.contains(c.key.as_str()) || !have_bib {
            continue;
        }
        let suggestion = keys
            .get(&c.key.to_lowercase())
            .copied()
            .or_else(|| closest(&c.key, refs.iter().map(|i| i.key.as_str())));
        let mut p = problem(
            c.span.clone(),
            Severity::Error,
            "undefined-citation",
            format!("citation {:?} is not in the bibliography", c.key),
        );
        if let Some(s) = suggestion {
            p.message.push_str(&format!(" (did you mean {s:?}?)"));
            p.fix = Some(Fix {
                title: format!("Change to {s:?}"),
                span: c.span.clone(),
                replacement: s.to_owned(),
            });
        }
        out.push(p);
    }

    // References.
    let labels: HashSet<&str> = inp.facts.labels.iter().map(|l| l.name.as_str()).collect();
    for r in &inp.facts.references {
        if !labels.contains(r.name.as_str()) {
            let mut p = problem(
                r.span.clone(),
                Severity::Warning,
                "undefined-reference",
                format!("\\ref to {:?}, which no \\label defines", r.name),
            );
            if let Some(s) = closest(&r.name, labels.iter().copied()) {
                p.fix = Some(Fix {
                    title: format!("Change to {s:?}"),
                    span: r.span.clone(),
                    replacement: s.to_owned(),
                });
            }
            out.push(p);
        }
    }

    // Figures.
    let base = inp.tex_path.parent().unwrap_or(Path::new("."));
    let mut seen: HashMap<PathBuf, Range<usize>> = HashMap::new();
    for g in &inp.facts.graphics {
        match find_graphic(base, &inp.facts.graphics_paths, &g.name, inp.exists) {
            Some(found) => {
                if let Some(first) = seen.get(&found) {
                    let line = inp.src[..first.start].matches('\n').count() + 1;
                    out.push(problem(
                        g.span.clone(),
                        Severity::Warning,
                        "figure-twice",
                        format!("{} is already included (line {line})", g.name),
                    ));
                } else {
                    seen.insert(found, g.span.clone());
                }
            }
            None => {
                let searched: Vec<String> = std::iter::once(".".to_owned())
                    .chain(inp.facts.graphics_paths.iter().cloned())
                    .collect();
                out.push(problem(
                    g.span.clone(),
                    Severity::Error,
                    "missing-figure",
                    format!(
                        "figure file {:?} not found (searched {} from {})",
                        g.name,
                        searched.join(", "),
                        base.display()
                    ),
                ));
            }
        }
    }

    out.extend(figure_checks(inp, base, &problem));

    // Sections repeated at the same level.
    let mut titles: HashMap<(u8, String), usize> = HashMap::new();
    for s in &inp.facts.sections {
        let key = (s.level, s.title.trim().to_lowercase());
        if key.1.is_empty() {
            continue;
        }
        if let Some(first) = titles.get(&key) {
            let line = inp.src[..*first].matches('\n').count() + 1;
            out.push(problem(
                s.heading.clone(),
                Severity::Warning,
                "duplicate-section",
                format!("section {:?} appears twice (first at line {line})", s.title),
            ));
        } else {
            titles.insert(key, s.heading.start);
        }
    }

    // Environments.
    for e in inp.facts.environments.iter().filter(|e| e.end.is_none()) {
        out.push(problem(
            e.begin.clone(),
            Severity::Error,
            "unclosed-environment",
            format!("\\begin{{{}}} is never closed", e.name),
        ));
    }
    for s in &inp.facts.stray_ends {
        let message = match &s.expected {
            Some(open) => format!("\\end{{{}}} does not match the open \\begin{{{open}}}", s.name),
            None => format!("\\end{{{}}} without a \\begin{{{}}}", s.name, s.name),
        };
        out.push(problem(s.span.clone(), Severity::Error, "unmatched-end", message));
    }

    // Placeholders from the template.
    for span in placeholders(inp.src) {
        out.push(problem(
            span.clone(),
            Severity::Warning,
            "placeholder",
            format!("template placeholder {:?} is still here", &inp.src[span]),
        ));
    }

    // Numbers the paper claims, traced to the runs.
    out.extend(crate::integrity::check(
        inp.tex_path,
        inp.src,
        inp.facts,
        inp.runs,
    ));
    out
}

/// Figures aisci's plot stage made that the paper leaves out, and the open critiques of
/// those it includes (on their `\includegraphics`).
fn figure_checks(
    inp: &Inputs,
    base: &Path,
    problem: &dyn Fn(Range<usize>, Severity, &'static str, String) -> TexProblem,
) -> Vec<TexProblem> {
    let mut out = Vec::new();
    let Some(catalog) = &inp.runs.figures else {
        return out;
    };
    let folder = inp.runs_folder();
    let mut included: HashSet<String> = HashSet::new();
    for g in &inp.facts.graphics {
        let Some(found) = find_graphic(base, &inp.facts.graphics_paths, &g.name, inp.exists) else {
            continue;
        };
        if found.parent() != Some(folder.as_path()) {
            continue;
        }
        let Some(file) = found.file_name().map(|n| n.to_string_lossy().into_owned()) else {
            continue;
        };
        if let Some(c) = catalog.get(&file).and_then(|f| f.critique.as_ref()) {
            if !c.ok && !c.issues.is_empty() {
                out.push(problem(
                    g.span.clone(),
                    Severity::Warning,
                    code::FIGURE_CRITIQUE,
                    format!("{file}, as {} sees it: {}", c.model, c.issues.join("; ")),
                ));
            }
        }
        included.insert(file);
    }
    let at = inp
        .facts
        .sections
        .iter()
        .find(|s| {
            let t = s.title.to_lowercase();
            t.contains("result") || t.contains("experiment")
        })
        .map(|s| s.heading.clone())
        .or_else(|| inp.facts.title.clone())
        .unwrap_or(0..0);
    for f in &catalog.figures {
        if included.contains(&f.file) || !(inp.exists)(&folder.join(&f.file)) {
            continue;
        }
        out.push(problem(
            at.clone(),
            Severity::Info,
            code::FIGURE_LEFT_OUT,
            format!("{}, made by plot.py, is not in the paper", f.file),
        ));
    }
    out
}

/// Codes of the figure checks (shown with the source [`FIGURES_SOURCE`]).
pub mod code {
    pub const FIGURE_CRITIQUE: &str = "figure-critique";
    pub const FIGURE_LEFT_OUT: &str = "figure-not-in-paper";
}

/// The source name editors show for the figure checks.
pub const FIGURES_SOURCE: &str = "aisci figures";

/// Whether a problem code is one of the figure checks.
pub fn is_figure_check(code: &str) -> bool {
    [code::FIGURE_CRITIQUE, code::FIGURE_LEFT_OUT].contains(&code)
}

/// Where `name` resolves: relative to the `.tex` folder, then each `\graphicspath` entry;
/// a name without an extension tries LaTeX's.
pub(crate) fn find_graphic(
    base: &Path,
    paths: &[String],
    name: &str,
    exists: &dyn Fn(&Path) -> bool,
) -> Option<PathBuf> {
    let has_ext = Path::new(name).extension().is_some();
    let dirs = std::iter::once(String::new()).chain(paths.iter().cloned());
    for d in dirs {
        let dir = base.join(&d);
        let candidates: Vec<PathBuf> = if has_ext {
            vec![dir.join(name)]
        } else {
            GRAPHIC_EXTS
                .iter()
                .map(|e| dir.join(format!("{name}.{e}")))
                .collect()
        };
        // `latex/../a.png` and `a.png` from the parent are the same file.
        let mut normal = candidates
            .iter()
            .map(|c| crate::runner::local::absolutize(base, c));
        if let Some(found) = normal.find(|c| exists(c)) {
            return Some(found);
        }
    }
    None
}

/// The closest of `options` to `word` by edit distance, when it is close (at most a
/// third of the word's length, and at most 3).
fn closest<'a>(word: &str, options: impl Iterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    options
        .map(|o| (edit_distance(&word.to_lowercase(), &o.to_lowercase()), o))
        .filter(|(d, _)| *d <= limit)
        .min_by_key(|(d, _)| *d)
        .map(|(_, o)| o)
}

fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut cur = vec![i + 1; b.len() + 1];
        for (j, cb) in b.iter().enumerate() {
            cur[j + 1] = (prev[j] + usize::from(ca != *cb))
                .min(prev[j + 1] + 1)
                .min(cur[j] + 1);
        }
        prev = cur;
    }
    prev[b.len()]
}

/// v1's template placeholders: upper-case words ending in `HERE` (`INTRO HERE`,
/// `PLEASE FILL IN CAPTION HERE`), outside comments.
pub fn placeholders(src: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut line_start = 0;
    for line in src.split_inclusive('\n') {
        let code = match line.find('%') {
            Some(i) if i == 0 || line.as_bytes()[i - 1] != b'\\' => &line[..i],
            _ => line,
        };
        let mut from = 0;
        while let Some(i) = code[from..].find("HERE").map(|i| i + from) {
            from = i + 4;
            let after_ok = code[from..].chars().next().is_none_or(|c| !c.is_alphanumeric());
            let before = &code[..i];
            let words = before.trim_end_matches(' ');
            let start = words
                .char_indices()
                .rev()
                .take_while(|(_, c)| c.is_ascii_uppercase() || *c == ' ')
                .last()
                .map(|(j, _)| j)
                .unwrap_or(words.len());
            let lead = &code[start..i];
            let lead_trim = lead.trim_start();
            let start = start + (lead.len() - lead_trim.len());
            // At least one upper-case word before HERE, and HERE ends a word.
            if after_ok && lead_trim.trim().len() >= 2 && before.ends_with(' ') {
                out.push(line_start + start..line_start + from);
            }
        }
        line_start += line.len();
    }
    out
}

/// Numbers written in `range` of `src` that claim a measured value: with a decimal point
/// or a percent sign (counts such as "4 datasets" or "Figure 2" are left alone), outside
/// comments, labels, references, citations and figure file names.
pub(crate) fn numbers_in(src: &str, range: Range<usize>, facts: &TexFacts) -> Vec<(Range<usize>, String)> {
    let skip: Vec<Range<usize>> = facts
        .labels
        .iter()
        .chain(&facts.references)
        .chain(&facts.graphics)
        .map(|n| n.span.clone())
        .chain(facts.citations.iter().map(|c| c.command.clone()))
        .collect();
    let text = &src[range.clone()];
    let bytes = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    let mut in_comment = false;
    while i < bytes.len() {
        let b = bytes[i];
        if b == b'\n' {
            in_comment = false;
        } else if b == b'%' && (i == 0 || bytes[i - 1] != b'\\') && !in_comment {
            in_comment = true;
        }
        let prev_ok = i == 0 || !(bytes[i - 1].is_ascii_alphanumeric() || bytes[i - 1] == b'_');
        if in_comment || !b.is_ascii_digit() || !prev_ok {
            i += 1;
            continue;
        }
        let start = i;
        while i < bytes.len()
            && (bytes[i].is_ascii_digit()
                || (bytes[i] == b'.' && i + 1 < bytes.len() && bytes[i + 1].is_ascii_digit()))
        {
            i += 1;
        }
        let num = &text[start..i];
        let rest = &text[i..];
        let percent = rest.starts_with("\\%") || rest.starts_with('%');
        let followed_by_word = rest.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_');
        let abs = range.start + start..range.start + i;
        if (num.contains('.') || percent)
            && !followed_by_word
            && !is_layout(&text[..start], rest)
            && !skip.iter().any(|s| s.start <= abs.start && abs.end <= s.end)
        {
            let shown = if percent {
                format!("{num}%")
            } else {
                num.to_owned()
            };
            out.push((abs, shown));
        }
    }
    out
}

/// A number that sets the layout rather than claiming a result: a length
/// (`0.48\textwidth`), a key's value (`width=0.9`), or the factor of a scaling command.
fn is_layout(before: &str, rest: &str) -> bool {
    const LENGTHS: [&str; 8] = [
        "\\textwidth",
        "\\linewidth",
        "\\columnwidth",
        "\\textheight",
        "\\hsize",
        "\\paperwidth",
        "\\baselineskip",
        "\\parindent",
    ];
    const SCALERS: [&str; 8] = [
        "\\scalebox{",
        "\\resizebox{",
        "\\arraystretch}{",
        "\\linespread{",
        "\\setstretch{",
        "\\fontsize{",
        "\\stretch{",
        "\\adjustbox{",
    ];
    let before = before.trim_end_matches([' ', '-', '+']);
    LENGTHS.iter().any(|l| rest.starts_with(l))
        || before.ends_with('=')
        || SCALERS.iter().any(|c| before.ends_with(c))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latex::syntax;

    #[test]
    fn layout_numbers_are_not_claims() {
        let src = "\\includegraphics[width=0.48\\textwidth]{a.png} \\scalebox{0.8}{x} \\renewcommand{\\arraystretch}{1.2} \\hspace{-0.5\\linewidth} reaches 0.97 and \\textbf{0.95}";
        let facts = syntax::facts(&syntax::parse(src), src);
        let found: Vec<String> = numbers_in(src, 0..src.len(), &facts)
            .into_iter()
            .map(|(_, n)| n)
            .collect();
        assert_eq!(found, ["0.97", "0.95"]);
    }

    fn run(src: &str, files: &[&str], runs: &crate::integrity::RunData) -> Vec<TexProblem> {
        let facts = syntax::facts(&syntax::parse(src), src);
        let files: Vec<PathBuf> = files.iter().map(PathBuf::from).collect();
        let exists = move |p: &Path| files.iter().any(|f| f == p);
        check(&Inputs {
            tex_path: Path::new("/p/latex/template.tex"),
            src,
            facts: &facts,
            bibs: &[],
            exists: &exists,
            runs,
        })
    }

    fn codes(ps: &[TexProblem]) -> Vec<&'static str> {
        ps.iter().map(|p| p.code).collect()
    }

    const BIB: &str = "\\begin{filecontents}{references.bib}\n@article{ddpm,\n title={Denoising Diffusion Probabilistic Models},\n}\n@article{edm,\n title={Elucidating the Design Space},\n}\n@article{ddpm,\n title={Again},\n}\n\\end{filecontents}\n";

    #[test]
    fn citations_and_duplicates() {
        let src = format!(
            "{BIB}\\begin{{document}}\nAs in \\cite{{ddpm,edn}} and \\cite{{nobody}}.\n\\end{{document}}\n"
        );
        let ps = run(&src, &[], &Default::default());
        assert_eq!(
            codes(&ps),
            ["duplicate-bib-key", "undefined-citation", "undefined-citation"],
            "{ps:#?}"
        );
        let dup = &ps[0];
        assert_eq!(&src[dup.span.clone()], "ddpm");
        assert!(
            src[..dup.span.start].contains("Elucidating"),
            "the second ddpm is flagged"
        );
        let fix = dup.fix.as_ref().unwrap();
        assert!(src[fix.span.clone()].starts_with("@article{ddpm,\n title={Again}"));
        let edn = &ps[1];
        assert_eq!(&src[edn.span.clone()], "edn");
        assert_eq!(edn.fix.as_ref().unwrap().replacement, "edm");
        assert!(ps[2].fix.is_none());
    }

    #[test]
    fn figures_refs_sections_envs_placeholders() {
        let src = "\\graphicspath{{../}}\n\\begin{document}\n\\section{Method}\nINTRO HERE and HERE alone.\n\\includegraphics{a.png}\n\\includegraphics[width=1in]{a.png}\n\\includegraphics{gone}\n\\label{fig:one}\\ref{fig:on}\n\\section{method}\n\\begin{table}\n\\end{document}\n";
        let ps = run(src, &["/p/a.png"], &Default::default());
        assert_eq!(
            codes(&ps),
            [
                "undefined-reference",
                "figure-twice",
                "missing-figure",
                "duplicate-section",
                "unclosed-environment",
                "placeholder"
            ],
            "{ps:#?}"
        );
        assert_eq!(ps[0].fix.as_ref().unwrap().replacement, "fig:one");
        assert_eq!(&src[ps[5].span.clone()], "INTRO HERE");
    }

    #[test]
    fn results_numbers_are_checked_against_runs() {
        let src = "\\begin{document}\n\\section{Results}\nKL 0.35 vs 0.40 (12.5\\% lower), on 4 datasets; see Table~\\ref{t:1}. Loss 0.123. % 9.99 in a comment\n\\section{Method}\n7.77 here is a setting, not a result.\n\\end{document}\n";
        let mut runs = crate::integrity::RunData::default();
        for (run, kl) in [("run_0", 0.4), ("run_1", 0.35)] {
            let v = serde_json::json!({ "toy": { "means": { "kl": kl, "loss": 0.9 } } });
            runs.add_final_info(run, Path::new("final_info.json"), &v);
            runs.runs.push(run.into());
        }
        let ps: Vec<TexProblem> = run(src, &[], &runs)
            .into_iter()
            .filter(|p| crate::integrity::is_integrity(p.code))
            .collect();
        let flagged: Vec<&str> = ps.iter().map(|p| &src[p.span.clone()]).collect();
        assert_eq!(flagged, ["0.123"], "{ps:#?}");
    }

    #[test]
    fn placeholder_rules() {
        let src = "\\title{TITLE HERE}\n% RESULTS HERE in a comment\n\\caption{PLEASE FILL IN CAPTION HERE}\nWe are HERE.\n";
        let found: Vec<&str> = placeholders(src).into_iter().map(|r| &src[r]).collect();
        assert_eq!(found, ["TITLE HERE", "PLEASE FILL IN CAPTION HERE"]);
    }
}
