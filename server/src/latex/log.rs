//! Problems from a LaTeX build: the `.log` of pdflatex (run with `-file-line-error` and a
//! long `max_print_line`, so messages are not wrapped) and the output of chktex.

use std::path::{Path, PathBuf};

use crate::project::Severity;

/// One problem the build reported, at a 1-based line of a file (relative to the build
/// folder as LaTeX printed it), or of the main file when the log names none.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogProblem {
    pub file: Option<PathBuf>,
    /// 1-based; None when the log gives no line.
    pub line: Option<u32>,
    /// 1-based column, from chktex.
    pub column: Option<u32>,
    /// Characters the problem covers, from chktex.
    pub length: Option<u32>,
    pub severity: Severity,
    pub message: String,
    /// `latex`, `bibtex` or `chktex`.
    pub source: &'static str,
}

impl LogProblem {
    fn latex(file: Option<PathBuf>, line: Option<u32>, severity: Severity, message: String) -> Self {
        Self {
            file,
            line,
            column: None,
            length: None,
            severity,
            message,
            source: "latex",
        }
    }
}

/// Problems in a pdflatex log. Errors (`./paper.tex:12: Undefined control sequence.` or
/// `! ...` with its `l.12` line), undefined citations and references (warnings), and
/// overfull boxes (hints). Repeats are reported once.
pub fn parse_latex_log(log: &str) -> Vec<LogProblem> {
    let lines: Vec<&str> = log.lines().collect();
    let mut out: Vec<LogProblem> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if let Some((file, lineno, message)) = file_line_error(line) {
            let message = with_context(message, &lines[i + 1..]);
            out.push(LogProblem::latex(
                Some(file),
                Some(lineno),
                Severity::Error,
                message,
            ));
        } else if let Some(message) = line.strip_prefix("! ") {
            // Without -file-line-error: the line number follows as `l.<n> <text>`.
            let lineno = lines[i + 1..]
                .iter()
                .take(12)
                .find_map(|l| l.strip_prefix("l.").and_then(leading_number));
            let message = with_context(message, &lines[i + 1..]);
            out.push(LogProblem::latex(None, lineno, Severity::Error, message));
        } else if let Some(p) = undefined_warning(line) {
            out.push(p);
        } else if let Some(rest) = line.strip_prefix("Overfull \\hbox (") {
            // `Overfull \hbox (12.3pt too wide) in paragraph at lines 10--12`
            let amount = rest.split(')').next().unwrap_or("").to_owned();
            let lineno = rest
                .rsplit_once("at lines ")
                .or_else(|| rest.rsplit_once("at line "))
                .and_then(|(_, n)| leading_number(n));
            out.push(LogProblem::latex(
                None,
                lineno,
                Severity::Hint,
                format!("overfull \\hbox ({amount}): text runs into the margin"),
            ));
        }
        i += 1;
    }
    let mut seen = std::collections::HashSet::new();
    out.retain(|p| seen.insert((p.file.clone(), p.line, p.message.clone())));
    out
}

/// TeX gave up (`! Emergency stop.`, a file error in nonstop mode, or no PDF at all): any
/// PDF it left holds only the pages before the stop, so it is not a build of the paper.
pub fn stopped_fatally(log: &str) -> bool {
    log.lines().any(|l| {
        l.starts_with("! Emergency stop")
            || l.starts_with("*** (job aborted")
            || l.contains("Fatal error occurred, no output PDF file produced")
    })
}

/// The pass asks for another run: labels, citations or page numbers were not settled yet.
pub fn asks_rerun(log: &str) -> bool {
    log.lines().any(|l| {
        (l.starts_with("LaTeX Warning: ") || l.starts_with("Package ")) && l.contains("Rerun")
            || l.contains("may have changed")
    })
}

/// `./paper.tex:12: Undefined control sequence.` → (file, 12, message).
fn file_line_error(line: &str) -> Option<(PathBuf, u32, &str)> {
    let (file, rest) = line.split_once(':')?;
    if !(file.ends_with(".tex") || file.ends_with(".sty") || file.ends_with(".cls") || file.ends_with(".bbl"))
    {
        return None;
    }
    let (num, message) = rest.split_once(':')?;
    let n: u32 = num.parse().ok()?;
    Some((PathBuf::from(file), n, message.trim()))
}

/// The message plus what TeX printed of the offending line (`l.12 \foo` → "at \foo").
fn with_context(message: &str, after: &[&str]) -> String {
    let context = after
        .iter()
        .take(8)
        .find_map(|l| l.strip_prefix("l."))
        .and_then(|r| r.split_once(' ').map(|(_, text)| text.trim()))
        .filter(|t| !t.is_empty());
    match context {
        Some(t) => format!("{} (at: {t})", message.trim()),
        None => message.trim().to_owned(),
    }
}

fn leading_number(s: &str) -> Option<u32> {
    let digits: String = s.chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// `LaTeX Warning: Citation `key' on page 1 undefined on input line 45.` (and the natbib
/// and reference variants).
fn undefined_warning(line: &str) -> Option<LogProblem> {
    let body = line
        .strip_prefix("LaTeX Warning: ")
        .or_else(|| line.strip_prefix("Package natbib Warning: "))?;
    let (what, rest) = if let Some(r) = body.strip_prefix("Citation `") {
        ("citation", r)
    } else if let Some(r) = body.strip_prefix("Reference `") {
        ("reference", r)
    } else {
        return None;
    };
    let (name, rest) = rest.split_once('\'')?;
    if !rest.contains("undefined") {
        return None;
    }
    let lineno = rest
        .rsplit_once("input line ")
        .and_then(|(_, n)| leading_number(n));
    Some(LogProblem::latex(
        None,
        lineno,
        Severity::Warning,
        format!("{what} {name:?} is undefined in the built PDF"),
    ))
}

/// Problems from `bibtex`'s output (`.blg`): errors with their `.bib` line.
/// `I was expecting a `,' or a `}'---line 12 of file references.bib`.
pub fn parse_bibtex_log(blg: &str) -> Vec<LogProblem> {
    let mut out = Vec::new();
    for l in blg.lines() {
        if let Some((message, rest)) = l.split_once("---line ") {
            let lineno = leading_number(rest);
            let file = rest
                .rsplit_once(" of file ")
                .map(|(_, f)| PathBuf::from(f.trim()));
            out.push(LogProblem {
                file,
                line: lineno,
                column: None,
                length: None,
                severity: Severity::Error,
                message: format!("BibTeX: {}", message.trim()),
                source: "bibtex",
            });
        } else if let Some(w) = l.strip_prefix("Warning--") {
            out.push(LogProblem {
                file: None,
                line: None,
                column: None,
                length: None,
                severity: Severity::Warning,
                message: format!("BibTeX: {}", w.trim()),
                source: "bibtex",
            });
        }
    }
    out
}

/// The chktex output format aisci asks for: file, line, column, length, kind, number,
/// message (chktex needs a real newline at the end of the format).
pub const CHKTEX_FORMAT: &str = "%f:%l:%c:%d:%k:%n:%m\n";

/// Lines of `chktex -q -f CHKTEX_FORMAT file.tex`.
pub fn parse_chktex(output: &str, main: &Path) -> Vec<LogProblem> {
    output
        .lines()
        .filter_map(|l| {
            let mut parts = l.splitn(7, ':');
            let file = parts.next()?;
            let line: u32 = parts.next()?.parse().ok()?;
            let column: u32 = parts.next()?.parse().ok()?;
            let length: u32 = parts.next()?.parse().ok()?;
            let kind = parts.next()?;
            let number = parts.next()?;
            let message = parts.next()?.trim();
            let severity = match kind {
                "Error" => Severity::Error,
                // chktex's warnings are style advice.
                _ => Severity::Info,
            };
            Some(LogProblem {
                file: Some(if file == "stdin" {
                    main.to_path_buf()
                } else {
                    PathBuf::from(file)
                }),
                line: Some(line),
                column: Some(column),
                length: Some(length),
                severity,
                message: format!("{message} (chktex {number})"),
                source: "chktex",
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const LOG: &str = r"This is pdfTeX, Version 3.141592653-2.6-1.40.24 (TeX Live 2022/Debian)
(./paper.tex
LaTeX2e <2022-11-01> patch level 1
./paper.tex:12: Undefined control sequence.
l.12 Some \foo
              bar.
./paper.tex:40: LaTeX Error: File `missing.png' not found.

See the LaTeX manual or LaTeX Companion for explanation.
Type  H <return>  for immediate help.
l.40 \includegraphics{missing.png}

LaTeX Warning: Citation `nokey' on page 1 undefined on input line 22.

Package natbib Warning: Citation `other' on page 2 undefined on input line 31.

LaTeX Warning: Reference `fig:x' on page 1 undefined on input line 25.

Overfull \hbox (15.3pt too wide) in paragraph at lines 50--52
[]\T1/ptm/m/n/10 long text

LaTeX Warning: Citation `nokey' on page 1 undefined on input line 22.

LaTeX Warning: There were undefined references.
";

    #[test]
    fn latex_log() {
        let ps = parse_latex_log(LOG);
        let summary: Vec<(Option<u32>, Severity, &str)> = ps
            .iter()
            .map(|p| (p.line, p.severity, p.message.as_str()))
            .collect();
        assert_eq!(
            summary,
            [
                (
                    Some(12),
                    Severity::Error,
                    "Undefined control sequence. (at: Some \\foo)"
                ),
                (
                    Some(40),
                    Severity::Error,
                    "LaTeX Error: File `missing.png' not found. (at: \\includegraphics{missing.png})"
                ),
                (
                    Some(22),
                    Severity::Warning,
                    "citation \"nokey\" is undefined in the built PDF"
                ),
                (
                    Some(31),
                    Severity::Warning,
                    "citation \"other\" is undefined in the built PDF"
                ),
                (
                    Some(25),
                    Severity::Warning,
                    "reference \"fig:x\" is undefined in the built PDF"
                ),
                (
                    Some(50),
                    Severity::Hint,
                    "overfull \\hbox (15.3pt too wide): text runs into the margin"
                ),
            ]
        );
        assert_eq!(ps[0].file.as_deref(), Some(Path::new("./paper.tex")));
    }

    #[test]
    fn fatal_stops_and_rerun_requests() {
        assert!(stopped_fatally(
            "./p.tex:4: LaTeX Error: File `x.tex' not found.\n! Emergency stop.\n<read *>\n*** (job aborted, file error in nonstop mode)\n"
        ));
        assert!(!stopped_fatally(LOG), "recoverable errors are not a stop");
        assert!(asks_rerun(
            "LaTeX Warning: Label(s) may have changed. Rerun to get cross-references right.\n"
        ));
        assert!(asks_rerun(
            "Package natbib Warning: Citation(s) may have changed.\n"
        ));
        assert!(!asks_rerun(LOG));
    }

    #[test]
    fn plain_error_format() {
        let ps = parse_latex_log("! Missing $ inserted.\n<inserted text>\n$\nl.7 x^\n2\n");
        assert_eq!(ps.len(), 1);
        assert_eq!(ps[0].line, Some(7));
        assert_eq!(ps[0].file, None);
    }

    #[test]
    fn chktex_lines() {
        let out = "paper.tex:28:31:1:Warning:37:You should avoid spaces after parenthesis.\nstdin:3:2:1:Error:9:`}' expected, found `)'.\ngarbage\n";
        let ps = parse_chktex(out, Path::new("/p/paper.tex"));
        assert_eq!(ps.len(), 2);
        assert_eq!(
            (ps[0].line, ps[0].column, ps[0].length),
            (Some(28), Some(31), Some(1))
        );
        assert_eq!(ps[0].severity, Severity::Info);
        assert_eq!(
            ps[0].message,
            "You should avoid spaces after parenthesis. (chktex 37)"
        );
        assert_eq!(ps[1].file.as_deref(), Some(Path::new("/p/paper.tex")));
        assert_eq!(ps[1].severity, Severity::Error);
    }

    #[test]
    fn bibtex_blg() {
        let blg = "I was expecting a `,' or a `}'---line 12 of file references.bib\n :  title = {x}\nWarning--empty journal in ddpm\n";
        let ps = parse_bibtex_log(blg);
        assert_eq!(ps.len(), 2);
        assert_eq!(ps[0].line, Some(12));
        assert_eq!(ps[0].file.as_deref(), Some(Path::new("references.bib")));
        assert_eq!(ps[1].severity, Severity::Warning);
    }
}
