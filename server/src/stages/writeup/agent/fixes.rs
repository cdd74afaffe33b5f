//! One check of the paper for a fix round: the static checks, chktex and a build, their
//! errors as lines the model can act on, with the integrity and figure checks (numbers
//! without a source, figures left out or criticised); other warnings and chktex's style
//! notes are left out.

use std::path::Path;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::latex::build::{self, BuildError, BuildOutcome, BuildStatus};
use crate::latex::{paper, syntax};
use crate::project::Severity;
use crate::runner::Runner;

/// `src` is the text of `tex` as it is on disk now.
pub async fn check_and_build(
    tex: &Path,
    src: &str,
    timeout: Duration,
    runner: &dyn Runner,
    project_rc: bool,
    cancel: &CancellationToken,
) -> Result<(Vec<String>, BuildOutcome), BuildError> {
    let line_of = |offset: usize| src[..offset.min(src.len())].matches('\n').count() + 1;
    let mut out = Vec::new();
    let read_disk = |p: &Path| std::fs::read_to_string(p).ok();
    let tree = syntax::parse(src);
    let (_, problems) = paper::check_paper(tex, src, &tree, &read_disk);
    let for_the_writer = |p: &&crate::latex::checks::TexProblem| {
        p.severity == Severity::Error
            || crate::integrity::is_integrity(p.code)
            || crate::latex::checks::is_figure_check(p.code)
    };
    for p in problems.iter().filter(for_the_writer) {
        out.push(format!(
            "line {}: {} [{}]",
            line_of(p.span.start),
            p.message,
            p.code
        ));
    }
    if let Some(found) = build::chktex(tex, timeout).await {
        for p in found.iter().filter(|p| p.severity == Severity::Error) {
            out.push(format!("line {}: chktex: {}", p.line.unwrap_or(0), p.message));
        }
    }
    let outcome = build::build(tex, timeout, runner, project_rc, cancel).await?;
    match outcome.status {
        BuildStatus::Cancelled => {}
        BuildStatus::TimedOut => out.push(format!(
            "the LaTeX build did not finish within {} s: look for a macro that expands forever \
             (a \\def that calls itself) or a loop",
            timeout.as_secs()
        )),
        BuildStatus::Built | BuildStatus::Failed => {
            let tex_name = tex.file_name();
            for p in outcome.problems.iter().filter(|p| p.severity == Severity::Error) {
                let in_tex = p.file.as_ref().is_none_or(|f| f.file_name() == tex_name);
                let place = match (&p.file, in_tex, p.line) {
                    (_, true, Some(l)) => format!("line {l}: "),
                    (Some(f), false, Some(l)) => format!("{} line {l}: ", f.display()),
                    _ => String::new(),
                };
                out.push(format!("{place}{}: {}", p.source, p.message));
            }
            if outcome.status == BuildStatus::Failed
                && outcome.problems.iter().all(|p| p.severity != Severity::Error)
            {
                out.push("the LaTeX build failed without a readable error; check the preamble".into());
            }
        }
    }
    out.dedup();
    Ok((out, outcome))
}
