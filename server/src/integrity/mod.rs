//! Papers you can check: every number a paper claims as a result traced to the run,
//! metric and dataset it comes from and how it was derived, with diagnostics where the
//! words and the runs disagree. Protocol-free: the editor shows the traces as hovers and
//! go-to-definition, the writing stage gets the diagnostics in its fix rounds.

pub mod check;
pub mod claims;
pub mod env;
pub mod sources;
pub mod trace;

use std::ops::Range;
use std::path::PathBuf;

pub use check::{check, is_integrity, SOURCE};
pub use sources::RunData;

use crate::latex::syntax::TexFacts;
use trace::{resolve, Outcome, Trace};

/// What the number at a position of the paper comes from.
#[derive(Debug, Clone, PartialEq)]
pub struct Explained {
    pub span: Range<usize>,
    pub markdown: String,
    /// The file and byte offset of its first source (go-to-definition).
    pub target: Option<(PathBuf, usize)>,
}

/// The trace of the claimed number at byte `at` of `src`.
pub fn explain_at(src: &str, facts: &TexFacts, data: &RunData, at: usize) -> Option<Explained> {
    explain_in(&claims::claims(src, facts), data, at)
}

/// [`explain_at`] over the paper's claims found before (in order, as [`claims::claims`]
/// gives them): an editor keeps them per version, so a hover is a lookup.
pub fn explain_in(claimed: &[claims::Claim], data: &RunData, at: usize) -> Option<Explained> {
    // Sorted by start: the last claim starting at or before `at` is the only candidate.
    let i = claimed.partition_point(|c| c.span.start <= at).checked_sub(1)?;
    let claim = claimed.get(i).filter(|c| at <= c.span.end)?.clone();
    let (traces, head) = match resolve(&claim, data) {
        Outcome::Traced(t) => (t, format!("**{}** comes from the runs:", claim.written)),
        Outcome::Elsewhere { named, found } => (
            found,
            format!(
                "**{}** is not what the runs give for {named}; the runs have it as:",
                claim.written
            ),
        ),
        Outcome::Name(metric) => {
            return Some(Explained {
                span: claim.span,
                markdown: format!("**{}** is part of the metric's name, `{metric}`", claim.written),
                target: None,
            })
        }
        Outcome::Untraced => {
            return Some(Explained {
                span: claim.span,
                markdown: format!("**{}**: no run's results give this number", claim.written),
                target: None,
            })
        }
    };
    let mut md = head;
    for t in traces.iter().take(5) {
        md.push_str(&format!("\n- {}", t.explain(data)));
    }
    if traces.len() > 5 {
        md.push_str(&format!("\n- … and {} more", traces.len() - 5));
    }
    Some(Explained {
        span: claim.span,
        target: traces.first().and_then(|t| target(t, data)),
        markdown: md,
    })
}

/// Where a trace's first source is written.
fn target(t: &Trace, data: &RunData) -> Option<(PathBuf, usize)> {
    if let trace::How::Code(line) = t.how {
        let file = data.code_file.clone()?;
        let text = std::fs::read_to_string(&file).ok()?;
        let at = text.split_inclusive('\n').take(line - 1).map(str::len).sum();
        return Some((file, at));
    }
    let s = &data.sources[*t.sources().first()?];
    let text = std::fs::read_to_string(&s.file).ok()?;
    Some((s.file.clone(), json_offset(&text, &s.path)))
}

/// The byte offset of the value at `path` in JSON `text`: each key found in turn after
/// the last (array positions stop the walk at the array's key).
pub fn json_offset(text: &str, path: &[String]) -> usize {
    let mut at = 0;
    for key in path {
        if key.parse::<usize>().is_ok() {
            break;
        }
        let quoted = serde_json::to_string(key).unwrap_or_default();
        match text[at..].find(&quoted) {
            Some(i) => at += i,
            None => break,
        }
    }
    at
}
