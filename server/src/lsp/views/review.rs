//! The review in the editor: each open weakness, question and limitation of the idea
//! folder's review (`review.json`, else v1's `review.txt`) as a diagnostic where it
//! applies in the paper (source "aisci review"; weaknesses warnings, questions
//! information, limitations hints), a
//! quick fix on each that revises the passage, "Revise for all comments", "Review the
//! paper", the scores as a lens at the top and a hover on `\title`.

use std::path::{Path, PathBuf};

use serde_json::json;
use tower_lsp::lsp_types::*;

use crate::latex::anchor::AnchorHow;
use crate::latex::paper::runs_folder;
use crate::lsp::backend::Backend;
use crate::lsp::convert;
use crate::lsp::views::with_cost;
use crate::stages::estimate::Stage;
use crate::stages::review::agent::CommentKind;
use crate::stages::review::{self as review_stage, Placed, ReviewFile};

pub const SOURCE: &str = "aisci review";

/// The idea folder whose paper `tex` is, when it is one.
pub fn idea_root(tex: &Path) -> Option<PathBuf> {
    let root = runs_folder(tex);
    (crate::stages::writeup::paper_tex(&root) == tex).then_some(root)
}

/// The review of the paper `tex` (None without one).
pub fn review_of(tex: &Path) -> Option<(PathBuf, ReviewFile)> {
    let root = idea_root(tex)?;
    let file = review_stage::read_review(&root)?;
    Some((root, file))
}

fn severity(kind: CommentKind) -> DiagnosticSeverity {
    match kind {
        CommentKind::Weakness => DiagnosticSeverity::WARNING,
        CommentKind::Question => DiagnosticSeverity::INFORMATION,
        CommentKind::Limitation => DiagnosticSeverity::HINT,
    }
}

fn message(p: &Placed) -> String {
    let whereabouts = match p.anchor.how {
        AnchorHow::Quote | AnchorHow::Normalized => "",
        AnchorHow::Section => " (shown at the section it names)",
        AnchorHow::Title | AnchorHow::Document => " (about the whole paper)",
    };
    format!("{}: {}{whereabouts}", p.kind.label(), p.text)
}

/// The open comments placed in `text` (the paper as it reads now).
pub fn placed(tex: &Path, text: &str) -> Option<(PathBuf, ReviewFile, Vec<Placed>)> {
    let (root, file) = review_of(tex)?;
    let placed = review_stage::place_comments(&file, text)
        .into_iter()
        .filter(|p| !p.addressed)
        .collect();
    Some((root, file, placed))
}

/// Diagnostics of the review on `tex`.
pub fn diagnostics(b: &Backend, tex: &Path, text: &str) -> Vec<Diagnostic> {
    let Some((_, _, placed)) = placed(tex, text) else {
        return Vec::new();
    };
    let rope = ropey::Rope::from_str(text);
    let enc = b.state.encoding();
    placed.iter().map(|p| diagnostic(p, &rope, enc)).collect()
}

fn diagnostic(p: &Placed, rope: &ropey::Rope, enc: crate::workspace::PosEncoding) -> Diagnostic {
    Diagnostic {
        range: convert::byte_range(rope, Some((p.anchor.span.start, p.anchor.span.end)), enc),
        severity: Some(severity(p.kind)),
        code: Some(NumberOrString::String(p.id.clone())),
        source: Some(SOURCE.into()),
        message: message(p),
        ..Default::default()
    }
}

/// "Revise to address this comment" for the comments on the lines `lo..hi` (bytes), and
/// the paper-wide review actions.
pub fn code_actions(
    b: &Backend,
    tex: &Path,
    view: &crate::lsp::tex_view::TexView,
    lo: usize,
    hi: usize,
) -> Vec<CodeActionOrCommand> {
    let mut out = Vec::new();
    let Some(root) = idea_root(tex) else {
        return out;
    };
    let rope = &view.rope;
    let enc = b.state.encoding();
    let reviewed = view.open_comments(tex);
    if let Some(placed) = &reviewed {
        for p in placed
            .iter()
            .filter(|p| p.anchor.span.start <= hi && p.anchor.span.end >= lo)
        {
            let short: String = p.text.chars().take(60).collect();
            let ellipsis = if p.text.chars().count() > 60 { "…" } else { "" };
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: format!(
                    "Revise to address this comment ({}: {short}{ellipsis})",
                    p.kind.label()
                ),
                kind: Some(CodeActionKind::QUICKFIX),
                diagnostics: Some(vec![diagnostic(p, rope, enc)]),
                command: Some(Command {
                    title: "Revise to address this comment".into(),
                    command: crate::lsp::commands::REVISE_COMMENT.into(),
                    arguments: Some(vec![json!({ "tex": tex, "comment": p.id })]),
                }),
                ..Default::default()
            }));
        }
        if !placed.is_empty() {
            out.push(CodeActionOrCommand::CodeAction(CodeAction {
                title: format!(
                    "Revise for all {} review comments, then review again",
                    placed.len()
                ),
                kind: Some(CodeActionKind::new("source.aisci.reviseAll")),
                command: Some(Command {
                    title: "Revise for all comments".into(),
                    command: crate::lsp::commands::REVISE_ALL.into(),
                    arguments: Some(vec![json!({ "tex": tex })]),
                }),
                ..Default::default()
            }));
        }
    }
    out.push(CodeActionOrCommand::CodeAction(CodeAction {
        title: with_cost(
            b,
            if reviewed.is_some() {
                "Review the paper again"
            } else {
                "Review the paper"
            },
            &root,
            Stage::Review,
        ),
        kind: Some(CodeActionKind::new("source.aisci.reviewPaper")),
        command: Some(Command {
            title: "Review the paper".into(),
            command: crate::lsp::commands::REVIEW_PAPER.into(),
            arguments: Some(vec![json!({ "tex": tex })]),
        }),
        ..Default::default()
    }));
    out
}

/// The scores at the top of the paper: the headline (with the previous Overall), and
/// "Review again" / "Review the paper".
pub fn lenses(b: &Backend, tex: &Path) -> Vec<CodeLens> {
    let Some(root) = idea_root(tex) else {
        return Vec::new();
    };
    let top = Range::new(Position::new(0, 0), Position::new(0, 0));
    let review_cmd = |title: &str| Command {
        title: title.into(),
        command: crate::lsp::commands::REVIEW_PAPER.into(),
        arguments: Some(vec![json!({ "tex": tex })]),
    };
    match review_of(tex) {
        Some((_, file)) => {
            let open = CommentKind::ALL
                .iter()
                .map(|k| file.review.comments(*k).len())
                .sum::<usize>()
                .saturating_sub(file.addressed.len());
            vec![
                CodeLens {
                    range: top,
                    command: Some(review_cmd(&format!(
                        "Review: {} · {open} open comment(s)",
                        file.headline()
                    ))),
                    data: None,
                },
                CodeLens {
                    range: top,
                    command: Some(review_cmd(&with_cost(b, "Review again", &root, Stage::Review))),
                    data: None,
                },
            ]
        }
        None => vec![CodeLens {
            range: top,
            command: Some(review_cmd(&with_cost(
                b,
                "Review the paper",
                &root,
                Stage::Review,
            ))),
            data: None,
        }],
    }
}

/// The review's summary and scores, for a hover on `\title`.
pub fn hover_markdown(file: &ReviewFile) -> String {
    let r = &file.review;
    let mut s = format!(
        "**Review** ({} of {} reviewer(s){}, {})\n\n{}\n\n**Decision**: {} · calibrated (Overall ≥ {}): {}\n\n| Score | |\n|---|---|\n",
        file.ensemble.used,
        file.ensemble.requested,
        if file.ensemble.meta_reviewed { ", meta-reviewed" } else { "" },
        file.model,
        r.summary,
        file.decision.as_str(),
        file.threshold,
        file.calibrated_decision.as_str()
    );
    let before = file.previous.last();
    for (name, _, hi) in crate::stages::review::form::SCORES {
        let now = r.score(name).unwrap_or(0);
        let was = before
            .and_then(|p| p.scores.get(name))
            .and_then(|v| v.as_u64())
            .filter(|w| *w != u64::from(now))
            .map(|w| format!(" (was {w})"))
            .unwrap_or_default();
        s.push_str(&format!("| {name} | {now}/{hi}{was} |\n"));
    }
    if !r.strengths.is_empty() {
        s.push_str("\n**Strengths**\n");
        for st in &r.strengths {
            s.push_str(&format!("- {st}\n"));
        }
    }
    s
}

/// Hover on the `\title` command of a reviewed paper.
pub fn hover(tex: &Path, text: &str, byte: usize) -> Option<Hover> {
    let (_, file) = review_of(tex)?;
    let facts = crate::latex::syntax::facts(&crate::latex::syntax::parse(text), text);
    let title = facts.title?;
    if !(title.start <= byte && byte <= title.end) {
        return None;
    }
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: hover_markdown(&file),
        }),
        range: None,
    })
}
