//! `aisci check`: the paper's static checks as a linter prints them, `file:line:col:
//! severity: message [code]`, so a script or CI can hold a paper to them.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use crate::latex::checks::TexProblem;
use crate::latex::{paper, syntax};
use crate::project::Severity;

#[derive(clap::Args)]
pub struct Args {
    /// The paper: a `.tex` file, or an idea folder (its latex/template.tex).
    path: PathBuf,
    /// Only the integrity checks (numbers traced to the runs, hardware and versions to
    /// env.json) and the figure checks.
    #[arg(long)]
    integrity: bool,
}

/// Exit 0 when nothing was found, 1 when something was, 2 when the paper cannot be read.
pub fn command(a: Args) -> ExitCode {
    let tex = if a.path.is_dir() {
        crate::stages::writeup::paper_tex(&a.path)
    } else {
        a.path.clone()
    };
    let src = match std::fs::read_to_string(&tex) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("aisci: cannot read the paper {}: {e}", tex.display());
            return ExitCode::from(2);
        }
    };
    let tex = std::path::absolute(&tex).unwrap_or(tex);
    let problems = paper_problems(&tex, &src, a.integrity);
    let shown = display_base(&a.path, &tex);
    for line in lines(&problems, &tex, &src, &shown) {
        println!("{line}");
    }
    if problems.is_empty() {
        eprintln!("aisci: {}: no problems found", shown.display());
        ExitCode::SUCCESS
    } else {
        eprintln!("aisci: {}: {} problem(s)", shown.display(), problems.len());
        ExitCode::from(1)
    }
}

/// The problems of the paper `tex` (text `src`), only integrity and figure ones if asked.
pub fn paper_problems(tex: &Path, src: &str, integrity_only: bool) -> Vec<TexProblem> {
    let read_disk = |p: &Path| std::fs::read_to_string(p).ok();
    let tree = syntax::parse(src);
    let (_, mut problems) = paper::check_paper(tex, src, &tree, &read_disk);
    if integrity_only {
        problems.retain(|p| {
            crate::integrity::is_integrity(p.code) || crate::latex::checks::is_figure_check(p.code)
        });
    }
    problems.sort_by_key(|p| (p.path.clone(), p.span.start));
    problems
}

/// How to name the paper in messages: as the user named it where that is shorter.
fn display_base(given: &Path, tex: &Path) -> PathBuf {
    if given.is_dir() {
        given.join(
            tex.strip_prefix(std::path::absolute(given).unwrap_or_default())
                .unwrap_or(tex),
        )
    } else {
        given.to_path_buf()
    }
}

/// One `file:line:col: severity: message [code]` per problem (1-based, columns in characters).
pub fn lines(problems: &[TexProblem], tex: &Path, src: &str, shown: &Path) -> Vec<String> {
    let mut other: std::collections::HashMap<PathBuf, String> = Default::default();
    problems
        .iter()
        .map(|p| {
            let (name, text) = if p.path == tex {
                (shown.display().to_string(), src)
            } else {
                let t = other
                    .entry(p.path.clone())
                    .or_insert_with(|| std::fs::read_to_string(&p.path).unwrap_or_default());
                (p.path.display().to_string(), t.as_str())
            };
            let at = p.span.start.min(text.len());
            let at = (0..=at).rev().find(|i| text.is_char_boundary(*i)).unwrap_or(0);
            let line = text[..at].matches('\n').count() + 1;
            let col = text[..at]
                .rsplit('\n')
                .next()
                .map(|l| l.chars().count())
                .unwrap_or(0)
                + 1;
            let severity = match p.severity {
                Severity::Error => "error",
                Severity::Warning => "warning",
                Severity::Info => "info",
                Severity::Hint => "hint",
            };
            format!("{name}:{line}:{col}: {severity}: {} [{}]", p.message, p.code)
        })
        .collect()
}
