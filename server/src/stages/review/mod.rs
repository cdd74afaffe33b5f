//! The review stage as the CLI and the language server run it: the paper's text (from its
//! PDF with `pdftotext`, else its LaTeX source), the few-shot examples, the reviewer
//! model (`review.model` when set), and the files: `review.json` (the review with its
//! anchors, members, means, both decisions and the scores of earlier reviews) and v1's
//! `review.txt` (or `review_improved.txt` after a revision).

pub mod agent;
pub mod aggregate;
pub mod figures;
pub mod form;
pub mod v1;

/// The title this stage's job has in the job registry (the editor shows it).
pub const TITLE: &str = "Review the paper";
pub const REVISE_TITLE: &str = "Revise for the review";

use std::path::{Path, PathBuf};
use std::time::SystemTime;

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::fsutil::write_atomic;
use crate::latex::anchor::{Anchor, Anchorer};
use crate::latex::syntax;
use crate::llm::Llm;
use crate::stages;
use crate::stages::host::StageHost;
use crate::stages::review::agent::{
    review_paper, CommentKind, Decision, Example, Means, Review, ReviewCtx, ReviewError, ReviewPlan,
    ReviewReport,
};

pub const REVIEW_JSON: &str = "review.json";
pub const REVIEW_TXT: &str = "review.txt";
pub const REVIEW_IMPROVED_TXT: &str = "review_improved.txt";
/// Below this many characters a PDF's text is taken as unreadable (v1's rule).
const MIN_PDF_TEXT: usize = 100;

/// Where the paper's text came from.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PaperInfo {
    /// "pdf" or "tex".
    pub source: String,
    pub path: PathBuf,
}

pub struct PaperText {
    pub text: String,
    pub info: PaperInfo,
    pub notes: Vec<String>,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewStageError {
    #[error("{}: no paper to review (expected latex/template.tex or a PDF)", .0.display())]
    NoPaper(PathBuf),
    #[error(transparent)]
    Review(#[from] ReviewError),
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
}

/// The paper's text: the PDF beside the `.tex` (or v1's `<folder>/<Name>.pdf`) when it is
/// at least as new as the `.tex` and `pdftotext` reads it, else the LaTeX source from
/// `\begin{document}` on. Why a source was passed over is in the notes.
pub async fn paper_text(
    root: &Path,
    tex: &Path,
    cancel: &CancellationToken,
) -> Result<PaperText, ReviewStageError> {
    let mut notes = Vec::new();
    let tex_time = modified(tex);
    let mut pdfs = vec![tex.with_extension("pdf")];
    if let Some(f) = crate::project::IdeaFolder::from_path(root) {
        pdfs.push(root.join(format!("{}.pdf", f.name)));
    }
    for pdf in pdfs.into_iter().filter(|p| p.is_file()) {
        if let (Some(t), Some(p)) = (tex_time, modified(&pdf)) {
            if p < t {
                notes.push(format!(
                    "{} is older than the .tex; the LaTeX source is reviewed instead",
                    pdf.display()
                ));
                continue;
            }
        }
        match pdftotext(&pdf, cancel).await {
            Ok(text) if text.trim().chars().count() >= MIN_PDF_TEXT => {
                return Ok(PaperText {
                    text,
                    info: PaperInfo {
                        source: "pdf".into(),
                        path: pdf,
                    },
                    notes,
                })
            }
            Ok(_) => notes.push(format!(
                "{} has no readable text; the LaTeX source is reviewed",
                pdf.display()
            )),
            Err(e) => notes.push(format!("{}: {e}; the LaTeX source is reviewed", pdf.display())),
        }
    }
    let src = std::fs::read_to_string(tex).map_err(|_| ReviewStageError::NoPaper(root.to_path_buf()))?;
    let body = src.find("\\begin{document}").map(|i| &src[i..]).unwrap_or(&src);
    // The title is often set in the preamble.
    let title = syntax::facts(&syntax::parse(&src), &src)
        .title
        .map(|r| format!("{}\n", &src[r]))
        .unwrap_or_default();
    Ok(PaperText {
        text: format!("{title}{body}"),
        info: PaperInfo {
            source: "tex".into(),
            path: tex.to_path_buf(),
        },
        notes,
    })
}

fn modified(p: &Path) -> Option<SystemTime> {
    std::fs::metadata(p).and_then(|m| m.modified()).ok()
}

/// `pdftotext -enc UTF-8 FILE -`, bounded in time.
pub async fn pdftotext(pdf: &Path, cancel: &CancellationToken) -> Result<String, String> {
    let args = vec!["-enc".into(), "UTF-8".into(), pdf.into(), "-".into()];
    let out = figures::poppler("pdftotext", args, cancel).await?;
    Ok(String::from_utf8_lossy(&out).into_owned())
}

/// The few-shot examples named in `review.examples`. A relative path is looked up from
/// the idea folder upwards (so a project keeps them at its root). Unreadable ones are
/// left out with a note.
pub async fn load_examples(
    settings: &Settings,
    root: &Path,
    cancel: &CancellationToken,
) -> (Vec<Example>, Vec<String>) {
    let mut out = Vec::new();
    let mut notes = Vec::new();
    for ex in &settings.review.examples {
        let (paper, review) = match (find_up(root, &ex.paper), find_up(root, &ex.review)) {
            (Some(p), Some(r)) => (p, r),
            (p, _) => {
                let missing = if p.is_none() { &ex.paper } else { &ex.review };
                notes.push(format!("review example {missing} not found; left out"));
                continue;
            }
        };
        let paper_text = if paper.extension().is_some_and(|e| e == "pdf") {
            pdftotext(&paper, cancel).await
        } else {
            std::fs::read_to_string(&paper).map_err(|e| e.to_string())
        };
        let review_text = std::fs::read_to_string(&review)
            .map_err(|e| e.to_string())
            .and_then(|t| example_review(&t));
        match (paper_text, review_text) {
            (Ok(p), Ok(r)) => out.push(Example { paper: p, review: r }),
            (Err(e), _) | (_, Err(e)) => notes.push(format!("review example {}: {e}; left out", ex.paper)),
        }
    }
    (out, notes)
}

/// An example review as JSON text: the review object itself, or v1's `{"review": "<JSON>"}`.
fn example_review(text: &str) -> Result<String, String> {
    let v: Value = serde_json::from_str(text).map_err(|e| format!("not JSON: {e}"))?;
    let inner = match v.get("review") {
        Some(Value::String(s)) => {
            serde_json::from_str(s).map_err(|e| format!("\"review\" is not JSON: {e}"))?
        }
        Some(obj @ Value::Object(_)) => obj.clone(),
        _ => v,
    };
    Review::from_value(&inner).map_err(|p| format!("not a review: {}", p.join("; ")))?;
    Ok(serde_json::to_string_pretty(&inner).unwrap_or_default())
}

fn find_up(root: &Path, name: &str) -> Option<PathBuf> {
    let p = crate::config::expand_home(name);
    if p.is_absolute() {
        return p.is_file().then_some(p);
    }
    root.ancestors().map(|d| d.join(&p)).find(|c| c.is_file())
}

/// A review's scores and decisions, kept when the paper is reviewed again.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ScoreSnapshot {
    pub created: String,
    pub overall: u8,
    pub decision: Decision,
    pub calibrated_decision: Decision,
    pub scores: Map<String, Value>,
}

/// `review.json`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ReviewFile {
    pub created: String,
    pub review: Review,
    /// The model's decision.
    pub decision: Decision,
    /// Overall ≥ threshold.
    pub calibrated_decision: Decision,
    pub threshold: u8,
    pub ensemble: EnsembleInfo,
    pub reflections: u32,
    pub reflection_done: bool,
    pub notes: Vec<String>,
    pub paper: PaperInfo,
    pub model: String,
    pub provider: String,
    pub calls: u32,
    pub cost_usd: f64,
    /// Earlier reviews of this paper, oldest first.
    #[serde(default)]
    pub previous: Vec<ScoreSnapshot>,
    /// Comments a revision addressed ("weakness-2", ...).
    #[serde(default)]
    pub addressed: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EnsembleInfo {
    pub requested: u32,
    pub used: u32,
    pub meta_reviewed: bool,
    /// Exact means of the members' scores.
    pub means: Map<String, Value>,
    pub rounding: String,
    pub members: Vec<Review>,
}

impl ReviewFile {
    pub fn snapshot(&self) -> ScoreSnapshot {
        ScoreSnapshot {
            created: self.created.clone(),
            overall: self.review.overall,
            decision: self.decision,
            calibrated_decision: self.calibrated_decision,
            scores: scores_map(&self.review),
        }
    }

    /// "Overall 5/10 · Reject (calibrated: Reject, ≥ 6) · Soundness 3 · Presentation 3 ·
    /// Contribution 3", with the previous review's Overall when there is one.
    pub fn headline(&self) -> String {
        let r = &self.review;
        let before = self
            .previous
            .last()
            .map(|p| format!(" (was {})", p.overall))
            .unwrap_or_default();
        format!(
            "Overall {}/10{before} · {} (calibrated: {}, ≥ {}) · Soundness {} · Presentation {} · Contribution {} · Confidence {}",
            r.overall,
            self.decision.as_str(),
            self.calibrated_decision.as_str(),
            self.threshold,
            r.soundness,
            r.presentation,
            r.contribution,
            r.confidence
        )
    }
}

fn scores_map(r: &Review) -> Map<String, Value> {
    crate::stages::review::form::SCORES
        .iter()
        .map(|(n, _, _)| (n.to_string(), Value::from(r.score(n).unwrap())))
        .collect()
}

fn means_map(m: &Means) -> Map<String, Value> {
    m.0.iter()
        .map(|(n, v)| (n.clone(), Value::from((v * 1000.0).round() / 1000.0)))
        .collect()
}

/// The id of a comment in `review.json` ("weakness-0").
pub fn comment_id(kind: CommentKind, index: usize) -> String {
    format!("{}-{index}", kind.label().to_lowercase())
}

/// The paper's review: aisci's `review.json`, else (when there is none) the `review.txt`
/// that v1 wrote.
pub fn read_review(root: &Path) -> Option<ReviewFile> {
    match std::fs::read_to_string(root.join(REVIEW_JSON)) {
        Ok(text) => serde_json::from_str(&text).ok(),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => v1::read(root),
        Err(_) => None,
    }
}

/// Writes a new review in place of the one there (through the shared-file lock): the
/// earlier review's scores, read under that lock, go into `file.previous` (v1's
/// `review.txt` is the earlier review when aisci has written none).
pub fn write_review(root: &Path, file: &mut ReviewFile) -> Result<(), ReviewStageError> {
    let path = root.join(REVIEW_JSON);
    crate::fsutil::update_shared(&path, |old| {
        let old = match old {
            Some(t) => serde_json::from_str::<ReviewFile>(&t).ok(),
            None => v1::read(root),
        };
        if let Some(old) = old {
            file.previous = old.previous.clone();
            file.previous.push(old.snapshot());
        }
        let text = serde_json::to_string_pretty(&*file).expect("a review file serialises");
        Ok::<_, std::io::Error>((Some(text), ()))
    })
    .map_err(|source| ReviewStageError::Io {
        path: path.display().to_string(),
        source,
    })
}

impl ReviewPlan {
    /// The review as `[review]` and the model settings ask for it.
    pub fn from_settings(settings: &Settings) -> ReviewPlan {
        let rs = &settings.review;
        ReviewPlan {
            ensemble: rs.ensemble,
            reflection_rounds: rs.reflection_rounds,
            max_attempts: rs.max_attempts,
            ensemble_temperature: Some(rs.temperature),
            temperature: Some(settings.llm.temperature),
            max_tokens: settings.llm.max_tokens,
            accept_threshold: rs.accept_threshold,
        }
    }
}

/// What the review stage works on.
pub struct ReviewRequest<'a> {
    /// The idea folder (its PDF, else latex/template.tex).
    pub root: &'a Path,
    pub idea: &'a str,
    pub settings: &'a Settings,
    /// The reviewer (`review.model` when set).
    pub llm: &'a Llm,
    /// A review after a revision: written as review_improved.txt beside the first.
    pub improved: bool,
}

/// What a revision for the review works on.
pub struct ReviseRequest<'a> {
    pub root: &'a Path,
    pub idea: &'a str,
    pub settings: &'a Settings,
    /// The writer (`writeup.model` when set).
    pub llm: &'a Llm,
    /// One comment by id; `None`: every open one.
    pub only: Option<&'a str>,
}

pub struct ReviewOutcome {
    pub file: ReviewFile,
    pub report: ReviewReport,
    pub json_path: PathBuf,
    pub txt_path: PathBuf,
}

impl ReviewOutcome {
    pub fn summary(&self) -> String {
        let f = &self.file;
        let mut s = format!(
            "{}\n{} review(s) of {} used{}; {} reflection round(s){}; {} weakness(es), {} question(s), {} limitation(s)",
            f.headline(),
            f.ensemble.used,
            f.ensemble.requested,
            if f.ensemble.meta_reviewed { ", meta-reviewed" } else { "" },
            f.reflections,
            if f.reflection_done { " (done)" } else { "" },
            f.review.weaknesses.len(),
            f.review.questions.len(),
            f.review.limitations.len(),
        );
        s.push_str(&format!(
            "\nreviewed the {} ({})",
            if f.paper.source == "pdf" {
                "PDF"
            } else {
                "LaTeX source"
            },
            f.paper.path.display()
        ));
        for n in &f.notes {
            s.push_str(&format!("\nnote: {n}"));
        }
        s.push_str(&format!(
            "\nwritten: {} and {}\n{} model call(s), ${:.4} ({} via {})",
            self.json_path.display(),
            self.txt_path.display(),
            f.calls,
            f.cost_usd,
            f.model,
            f.provider
        ));
        s
    }
}

/// Reviews the paper of the idea folder `root` (its `latex/template.tex` and PDF) and
/// writes `review.json` and `review.txt` (`review_improved.txt` when `improved`). An
/// earlier `review.json` becomes the new one's `previous` scores.
pub async fn run(req: ReviewRequest<'_>, host: &StageHost<'_>) -> Result<ReviewOutcome, ReviewStageError> {
    let ReviewRequest {
        root,
        idea,
        settings,
        llm,
        improved,
    } = req;
    let tex = crate::stages::writeup::paper_tex(root);
    let paper = paper_text(root, &tex, host.cancel).await?;
    let pdf = (paper.info.source == "pdf").then_some(paper.info.path.as_path());
    let shown = figures::for_review(&tex, pdf, llm, host.cancel).await;
    let (examples, example_notes) = load_examples(settings, root, host.cancel).await;
    let plan = ReviewPlan::from_settings(settings);
    let expected = crate::stages::estimate::estimate(
        settings,
        &crate::stages::estimate::Sizes::of_folder(root),
        crate::stages::estimate::Stage::Review,
    );
    let cost_before = llm.ledger_snapshot().total.cost_usd;
    let calls_before = llm.records().len();
    let ctx = ReviewCtx {
        llm,
        paper: &paper.text,
        figures: &shown.images,
        examples: &examples,
        plan: &plan,
        idea,
        progress: host,
        cancel: host.cancel,
    };
    let result = review_paper(&ctx).await;
    let records = llm.records();
    stages::record_usage(
        root,
        &records[calls_before.min(records.len())..],
        Some(expected),
        host,
    );
    let report = result?;
    let mut file = ReviewFile {
        created: chrono::Local::now().format("%Y-%m-%dT%H:%M:%S").to_string(),
        review: report.review.clone(),
        decision: report.decision,
        calibrated_decision: report.calibrated_decision,
        threshold: report.threshold,
        ensemble: EnsembleInfo {
            requested: plan.ensemble.max(1),
            used: report.members.len() as u32,
            meta_reviewed: report.meta_reviewed,
            means: means_map(&report.means),
            rounding: "mean of the members, rounded half to even (as v1)".into(),
            members: report.members.clone(),
        },
        reflections: report.reflections,
        reflection_done: report.reflection_done,
        notes: paper
            .notes
            .iter()
            .chain(&shown.notes)
            .chain(&example_notes)
            .chain(&report.notes)
            .cloned()
            .collect(),
        paper: paper.info,
        model: llm.provider().model().to_owned(),
        provider: llm.provider().name().to_owned(),
        calls: report.calls,
        cost_usd: llm.ledger_snapshot().total.cost_usd - cost_before,
        // Filled in from the review it replaces, under the shared-file lock.
        previous: Vec::new(),
        addressed: Vec::new(),
    };
    let current = read_review(root);
    write_review(root, &mut file)?;
    let txt_path = root.join(if improved { REVIEW_IMPROVED_TXT } else { REVIEW_TXT });
    v1::keep_before_overwrite(root, &txt_path, current.as_ref()).map_err(|source| ReviewStageError::Io {
        path: root.join(v1::KEPT_TXT).display().to_string(),
        source,
    })?;
    write_atomic(&txt_path, file.review.to_v1_text().as_bytes()).map_err(|source| ReviewStageError::Io {
        path: txt_path.display().to_string(),
        source,
    })?;
    Ok(ReviewOutcome {
        file,
        report,
        json_path: root.join(REVIEW_JSON),
        txt_path,
    })
}

/// A comment placed in the paper.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placed {
    pub kind: CommentKind,
    pub index: usize,
    pub id: String,
    pub text: String,
    pub anchor: Anchor,
    pub addressed: bool,
}

/// Every weakness, question and limitation of `file` placed in `src` (the `.tex`).
pub fn place_comments(file: &ReviewFile, src: &str) -> Vec<Placed> {
    let facts = syntax::facts(&syntax::parse(src), src);
    place_comments_in(file, src, &facts)
}

/// [`place_comments`] with the paper's facts already at hand.
pub fn place_comments_in(file: &ReviewFile, src: &str, facts: &syntax::TexFacts) -> Vec<Placed> {
    let anchorer = Anchorer::new(src, facts);
    let mut out = Vec::new();
    for kind in CommentKind::ALL {
        for (index, c) in file.review.comments(kind).iter().enumerate() {
            let id = comment_id(kind, index);
            out.push(Placed {
                kind,
                index,
                addressed: file.addressed.contains(&id),
                id,
                text: c.text.clone(),
                anchor: anchorer.place_comment(&c.text, c.quote.as_deref(), c.section.as_deref()),
            });
        }
    }
    out
}

/// Longest passage quoted to the writer for one comment.
const MAX_PASSAGE: usize = 4000;

/// What the writer is asked to address: each comment with the passage it concerns
/// (the anchored lines, or the start of the section it names).
pub fn revision_request(src: &str, placed: &[&Placed]) -> String {
    let mut out = String::new();
    for (i, p) in placed.iter().enumerate() {
        let span = &p.anchor.span;
        let start = src[..span.start].rfind('\n').map(|i| i + 1).unwrap_or(0);
        let end = src[span.end..]
            .find('\n')
            .map(|i| span.end + i)
            .unwrap_or(src.len());
        let mut passage = &src[start..end];
        if passage.len() > MAX_PASSAGE {
            let mut cut = MAX_PASSAGE;
            while !passage.is_char_boundary(cut) {
                cut -= 1;
            }
            passage = &passage[..cut];
        }
        let line = src[..start].matches('\n').count() + 1;
        out.push_str(&format!(
            "Comment {} ({}): {}\nIt concerns this passage of the paper (from line {line}):\n{}\n\n",
            i + 1,
            p.kind.label(),
            p.text,
            passage
        ));
    }
    out
}

/// Records that the comments `ids` were addressed by a revision (the editor stops
/// showing them as open).
pub fn mark_addressed(root: &Path, ids: &[String]) -> Result<(), ReviewStageError> {
    let path = root.join(REVIEW_JSON);
    let io = |source: std::io::Error| ReviewStageError::Io {
        path: path.display().to_string(),
        source,
    };
    // Re-read under the shared-file lock: a review written meanwhile is not undone.
    crate::fsutil::update_shared(&path, |text| {
        // A revision for v1's review is recorded in a review.json that starts from it.
        let file = match text {
            Some(t) => serde_json::from_str::<ReviewFile>(&t).ok(),
            None => v1::read(root),
        };
        let Some(mut file) = file else {
            return Ok((None, ()));
        };
        for id in ids {
            if !file.addressed.contains(id) {
                file.addressed.push(id.clone());
            }
        }
        let text = serde_json::to_string_pretty(&file).expect("a review file serialises");
        Ok::<_, std::io::Error>((Some(text), ()))
    })
    .map_err(io)
}

#[derive(Debug, thiserror::Error)]
pub enum ReviseError {
    #[error("{}: no review yet (review the paper first)", .0.display())]
    NoReview(PathBuf),
    #[error("the review has no comment {0}")]
    UnknownComment(String),
    #[error("every comment of the review is already addressed")]
    NothingOpen,
    #[error(transparent)]
    Sink(#[from] crate::agent::edit_sink::SinkError),
    #[error(transparent)]
    Writeup(#[from] crate::stages::writeup::agent::WriteupError),
    #[error(transparent)]
    Stage(#[from] ReviewStageError),
}

/// Revises the paper for the review: the comment `only` (an id like "weakness-2"), or
/// every comment not yet addressed. The writer gets each comment with its passage and
/// answers with SEARCH/REPLACE edits through `deps.sink` (editor edits in the LSP), then
/// the usual checks and build; comments whose revision was written are marked addressed.
pub async fn revise(
    req: ReviseRequest<'_>,
    host: &StageHost<'_>,
) -> Result<crate::stages::writeup::WriteupOutcome, ReviseError> {
    let ReviseRequest {
        root,
        idea,
        settings,
        llm,
        only,
    } = req;
    let file = read_review(root).ok_or_else(|| ReviseError::NoReview(root.to_path_buf()))?;
    let tex = crate::stages::writeup::paper_tex(root);
    let src = host.sink.read(&tex).await?.text;
    let placed = place_comments(&file, &src);
    let chosen: Vec<&Placed> = match only {
        Some(id) => {
            let p = placed
                .iter()
                .find(|p| p.id == id)
                .ok_or_else(|| ReviseError::UnknownComment(id.to_string()))?;
            vec![p]
        }
        None => placed.iter().filter(|p| !p.addressed).collect(),
    };
    if chosen.is_empty() {
        return Err(ReviseError::NothingOpen);
    }
    let ids: Vec<String> = chosen.iter().map(|p| p.id.clone()).collect();
    let request = revision_request(&src, &chosen);
    let scope = crate::stages::writeup::agent::WriteScope::Revise(request);
    let writing = crate::stages::writeup::WriteupRequest {
        root,
        idea,
        scope: &scope,
        settings,
        llm,
        literature: None,
    };
    let outcome = crate::stages::writeup::run(writing, host).await?;
    if !outcome.report.sections_written.is_empty() {
        mark_addressed(root, &ids)?;
    }
    Ok(outcome)
}

#[cfg(test)]
mod tests {
    use super::*;

    const REVIEW: &str = r#"{"Summary": "s", "Strengths": [], "Weaknesses": ["w"], "Originality": 3, "Quality": 3,
        "Clarity": 3, "Significance": 3, "Questions": [], "Limitations": [], "Ethical Concerns": false,
        "Soundness": 3, "Presentation": 3, "Contribution": 3, "Overall": 7, "Confidence": 5, "Decision": "Accept"}"#;

    #[test]
    fn example_reviews_in_v1_and_plain_form() {
        let v1 = serde_json::json!({ "review": REVIEW }).to_string();
        let a = example_review(&v1).unwrap();
        let b = example_review(REVIEW).unwrap();
        assert_eq!(a, b);
        assert!(a.contains("\"Overall\": 7"));
        assert!(example_review("{\"review\": \"not json\"}")
            .unwrap_err()
            .contains("\"review\" is not JSON"));
        assert!(example_review("{\"Summary\": \"s\"}")
            .unwrap_err()
            .contains("not a review"));
    }

    #[tokio::test]
    async fn examples_are_found_from_the_idea_folder_upwards() {
        let dir = tempfile::tempdir().unwrap();
        let idea = dir.path().join("results/t/20260101_000000_x");
        std::fs::create_dir_all(&idea).unwrap();
        std::fs::create_dir_all(dir.path().join("fewshot")).unwrap();
        std::fs::write(dir.path().join("fewshot/p.txt"), "An example paper.").unwrap();
        std::fs::write(dir.path().join("fewshot/r.json"), REVIEW).unwrap();
        let mut s = Settings::default();
        s.review.examples = vec![
            crate::config::ReviewExample {
                paper: "fewshot/p.txt".into(),
                review: "fewshot/r.json".into(),
            },
            crate::config::ReviewExample {
                paper: "fewshot/missing.txt".into(),
                review: "fewshot/r.json".into(),
            },
        ];
        let (ex, notes) = load_examples(&s, &idea, &CancellationToken::new()).await;
        assert_eq!(ex.len(), 1);
        assert_eq!(ex[0].paper, "An example paper.");
        assert!(notes[0].contains("fewshot/missing.txt not found"), "{notes:?}");
    }
}
