//! The paper-writing stage (v1's `perform_writeup`, with our own prompts): one
//! conversation in which the model fills in the paper's parts (title and abstract,
//! introduction, background, method, experimental setup, results, conclusion, a sketch
//! of the related work), adds citations found in the literature, refines the whole, and
//! then fixes what the static checks, chktex and the LaTeX build report.
//!
//! Every change is a SEARCH/REPLACE edit of the `.tex` (the experiment agent's
//! protocol), delivered through an [`EditSink`] (undoable editor edits in the LSP).
//! Beyond v1:
//! - edits that would drop `\begin{document}`/`\end{document}` or bring in HTML tags are
//!   refused before anything is written, and the model is told why ([`guard`]);
//! - a turn whose edits do not apply or are refused is retried with the reason, at most
//!   `max_attempts_per_section` turns per part; a part that never applies is reported
//!   and the file keeps its last good text;
//! - citation keys are made unique against the bibliography (a work already there keeps
//!   its key) and shown to the model before it cites;
//! - builds have a time limit and run in their own process group; a failed or hung build
//!   never replaces the last good PDF (see `latex::build`);
//! - hardware and versions come only from the runs' `env.json`.

mod citations;
mod cite_rounds;
mod fixes;
mod guard;
mod inputs;
mod plan;
mod vet;

use std::path::{Path, PathBuf};
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use crate::agent::conversation::{apply_reply, Applied, ContextPolicy, Conversation, EditTarget};
use crate::agent::edit_sink::{EditSink, SinkError, Snapshot};
use crate::agent::edits::parse_reply;
use crate::agent::prompt::fill;
use crate::config::WriteupSettings;
use crate::jobs::Progress;
use crate::latex::build::{BuildError, BuildStatus};
use crate::latex::syntax;
use crate::literature::PaperSearch;
use crate::llm::{CallTag, Llm, LlmError, Message};
use crate::runner::Runner;

pub use citations::{candidates, Candidate};
pub use cite_rounds::QUERIES_PER_CALL;
pub use guard::{html_tags, problems as guard_problems};
pub use plan::{part_for, Part, PARTS};
use vet::PaperVet;

const SYSTEM_PROMPT: &str = include_str!("prompts/system.txt");
const INPUTS_PROMPT: &str = include_str!("prompts/inputs.txt");
const TURN_PROMPT: &str = include_str!("prompts/turn.txt");
const SECTION_PROMPT: &str = include_str!("prompts/section.txt");
const SECTION_AT_PROMPT: &str = include_str!("prompts/section_at.txt");
const EDIT_FAILED_PROMPT: &str = include_str!("prompts/edit_failed.txt");
const NO_EDITS_PROMPT: &str = include_str!("prompts/no_edits.txt");
const REFINE_PROMPT: &str = include_str!("prompts/refine.txt");
const FIX_PROMPT: &str = include_str!("prompts/fix.txt");
const REVISE_PROMPT: &str = include_str!("prompts/revise.txt");

/// The model's word for ending the citation rounds.
/// What a writing call carries besides the current `.tex` (which comes with every turn):
/// the inputs (first, unchanged, so a provider's prefix cache serves them) and the last
/// exchange (a refused edit being corrected). Earlier parts' replies are not resent:
/// what they wrote is in the `.tex`.
const HISTORY: ContextPolicy = ContextPolicy::Window { head: 2, tail: 2 };

pub const NO_MORE_CITATIONS: &str = "No more citations needed";
/// The model's word for a refinement that changes nothing.
pub const NO_CHANGES: &str = "No changes needed";

/// What to write.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WriteScope {
    /// Every part, then citations, refinement and fix rounds.
    Paper,
    /// One section, then fix rounds.
    Section(SectionRef),
    /// Changes that address review comments (the request names them and their passages),
    /// then fix rounds.
    Revise(String),
}

/// A section of the paper. By position is what the editor sends (the section under the
/// cursor): it stays right when two headings share a title.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SectionRef {
    /// The `index`-th (0-based) heading of `level` (2 `\section`, 3 `\subsection`, ...)
    /// in document order.
    At { level: u8, index: usize },
    /// The heading with this title (as written, compared without case); it must name one
    /// section. "Abstract" and "Title" name the title-and-abstract part.
    Title(String),
}

impl From<&str> for SectionRef {
    fn from(title: &str) -> Self {
        SectionRef::Title(title.to_string())
    }
}

/// The section the stage writes, found in the current text.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Target {
    /// The heading's title as written (the part's name for the abstract).
    title: String,
    /// Where it is, for the prompt: `None` for the title-and-abstract part.
    heading: Option<(String, usize)>,
}

/// Everything the stage works with.
pub struct WriteupCtx<'a> {
    pub llm: &'a Llm,
    pub sink: &'a dyn EditSink,
    /// Runs the LaTeX builds (own process group, time limit).
    pub runner: &'a dyn Runner,
    /// None: no citation rounds (reported as a warning).
    pub search: Option<&'a dyn PaperSearch>,
    /// The idea folder: notes.txt, experiment.py, run_<i>/, figures.
    pub root: &'a Path,
    /// For the usage ledger.
    pub idea: &'a str,
    /// The paper (absolute), normally `<root>/latex/template.tex`.
    pub tex: &'a Path,
    pub settings: &'a WriteupSettings,
    /// Whether the project's latexmk rc files may be read (a trusted folder only).
    pub project_rc: bool,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancellationToken,
}

/// The last build.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildSummary {
    pub status: BuildStatus,
    /// The PDF beside the `.tex`: this build's, else the last good one.
    pub pdf: Option<PathBuf>,
    pub pdf_is_new: bool,
}

#[derive(Debug, Clone, PartialEq, Default)]
pub struct WriteupReport {
    /// Parts whose edits were applied, in order.
    pub sections_written: Vec<String>,
    /// Parts whose edits never applied (the file kept its text).
    pub sections_failed: Vec<String>,
    /// Keys of the entries added to the bibliography.
    pub citations_added: Vec<String>,
    pub citation_rounds: u32,
    /// The refinement pass changed the paper.
    pub refined: bool,
    /// Fix rounds in which the model was asked to repair problems.
    pub fix_rounds: u32,
    pub build: Option<BuildSummary>,
    /// Problems left after the last fix round (errors only).
    pub remaining_problems: Vec<String>,
    /// Edits refused by the guards (document markers, HTML tags).
    pub refused_edits: u32,
    pub calls: u32,
    pub warnings: Vec<String>,
    pub cancelled: bool,
}

impl WriteupReport {
    /// Everything was written and the paper built without errors.
    pub fn succeeded(&self) -> bool {
        !self.cancelled
            && self.sections_failed.is_empty()
            && self.remaining_problems.is_empty()
            && self
                .build
                .as_ref()
                .is_some_and(|b| b.status == BuildStatus::Built)
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WriteupError {
    #[error("{}: no paper to write (expected the template's latex/template.tex)", .0.display())]
    NoTex(PathBuf),
    #[error("no section {what} in the paper (sections: {available})")]
    UnknownSection { what: String, available: String },
    #[error("{count} sections are titled \"{title}\": name one by its position (`aisci writeup --section N` for the N-th \\section; in the editor, \"Write this section\" in it)")]
    AmbiguousSection { title: String, count: usize },
    #[error("the writing stage stopped: {source}")]
    Llm {
        source: LlmError,
        report: Box<WriteupReport>,
    },
    #[error("the model's edit could not be written: {source}")]
    Edit {
        source: SinkError,
        report: Box<WriteupReport>,
    },
    #[error("the paper could not be built: {source}")]
    Build {
        source: BuildError,
        report: Box<WriteupReport>,
    },
}

enum Fatal {
    Cancelled,
    Llm(LlmError),
    Sink(SinkError),
    Build(BuildError),
}

impl From<LlmError> for Fatal {
    fn from(e: LlmError) -> Self {
        match e {
            LlmError::Cancelled => Fatal::Cancelled,
            e => Fatal::Llm(e),
        }
    }
}

/// Writes the paper (or one section of it) at `ctx.tex`. Cancellation is not an error:
/// the report says `cancelled`, and what was written stays.
pub async fn write_paper(ctx: &WriteupCtx<'_>, scope: &WriteScope) -> Result<WriteupReport, WriteupError> {
    let snap = ctx
        .sink
        .read(ctx.tex)
        .await
        .map_err(|source| WriteupError::Edit {
            source,
            report: Box::default(),
        })?;
    if snap.text.trim().is_empty() {
        return Err(WriteupError::NoTex(ctx.tex.to_path_buf()));
    }
    let target_section = match scope {
        WriteScope::Section(at) => Some(find_section(&snap.text, at)?),
        WriteScope::Paper | WriteScope::Revise(_) => None,
    };
    let inputs = inputs::gather(ctx.root);
    let tex_rel = ctx
        .tex
        .strip_prefix(ctx.root)
        .map(|p| p.to_string_lossy().replace('\\', "/"))
        .unwrap_or_else(|_| {
            ctx.tex
                .file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        });
    let system = fill(SYSTEM_PROMPT, &[("tex", &tex_rel)]);
    let context = fill(
        INPUTS_PROMPT,
        &[
            ("notes", inputs.notes.trim_end()),
            ("results", &inputs.results_text()),
            ("figures", &inputs.figures_text()),
            ("facts", &inputs.facts_text()),
            ("code", inputs.code.trim_end()),
        ],
    );
    let conv = Conversation::new(
        ctx.llm,
        ctx.cancel,
        CallTag::new("writeup", Some(ctx.idea)),
        system,
        ctx.temperature,
        ctx.max_tokens,
    )
    .with_history(vec![
        Message::user(context),
        Message::assistant("Understood. I will write from these inputs only."),
    ])
    .with_policy(HISTORY);
    let mut stage = Stage {
        ctx,
        tex_rel,
        conv,
        report: WriteupReport::default(),
    };
    let result = match (scope, target_section) {
        (WriteScope::Revise(request), _) => stage.revise(request).await,
        (_, None) => stage.paper().await,
        (_, Some(target)) => stage.one_section(&target).await,
    };
    stage.report.calls = stage.conv.calls();
    match result {
        Ok(()) => Ok(stage.report),
        Err(Fatal::Cancelled) => {
            stage.report.cancelled = true;
            Ok(stage.report)
        }
        Err(Fatal::Llm(source)) => Err(WriteupError::Llm {
            source,
            report: Box::new(stage.report),
        }),
        Err(Fatal::Sink(source)) => Err(WriteupError::Edit {
            source,
            report: Box::new(stage.report),
        }),
        Err(Fatal::Build(source)) => Err(WriteupError::Build {
            source,
            report: Box::new(stage.report),
        }),
    }
}

/// The section `at` names in `src`.
fn find_section(src: &str, at: &SectionRef) -> Result<Target, WriteupError> {
    let facts = syntax::facts(&syntax::parse(src), src);
    let available = || {
        facts
            .sections
            .iter()
            .filter(|s| s.level == 2)
            .map(|s| s.title.clone())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let target = |s: &syntax::Section| {
        let line = src[..s.heading.start].matches('\n').count() + 1;
        Target {
            title: s.title.clone(),
            heading: Some((src[s.heading.clone()].to_string(), line)),
        }
    };
    match at {
        SectionRef::At { level, index } => facts
            .sections
            .iter()
            .filter(|s| s.level == *level)
            .nth(*index)
            .map(target)
            .ok_or_else(|| WriteupError::UnknownSection {
                what: format!("number {} of level {level}", index + 1),
                available: available(),
            }),
        SectionRef::Title(title) => {
            let want = title.trim().to_lowercase();
            let named = |level: Option<u8>| -> Vec<&syntax::Section> {
                facts
                    .sections
                    .iter()
                    .filter(|s| level.is_none_or(|l| s.level == l) && s.title.trim().to_lowercase() == want)
                    .collect()
            };
            // A \section first: a \subsection of the same name does not make it ambiguous.
            let mut found = named(Some(2));
            if found.is_empty() {
                found = named(None);
            }
            match found.as_slice() {
                [one] => Ok(target(one)),
                [] if plan::part_for(title).is_some_and(|p| p.name == PARTS[0].name) => Ok(Target {
                    title: PARTS[0].name.to_string(),
                    heading: None,
                }),
                [] => Err(WriteupError::UnknownSection {
                    what: format!("titled \"{title}\""),
                    available: available(),
                }),
                many => Err(WriteupError::AmbiguousSection {
                    title: title.to_string(),
                    count: many.len(),
                }),
            }
        }
    }
}

struct Stage<'a> {
    ctx: &'a WriteupCtx<'a>,
    tex_rel: String,
    conv: Conversation<'a>,
    report: WriteupReport,
}

impl Stage<'_> {
    async fn paper(&mut self) -> Result<(), Fatal> {
        let n = PARTS.len() as u32;
        for (i, part) in PARTS.iter().enumerate() {
            self.progress(&format!("Writing: {}", part.name), i as u32 * 60 / n);
            self.write_part(part.name, part.guidance).await?;
        }
        self.cite().await?;
        self.progress("Writing: refining the paper", 75);
        self.refine().await?;
        self.fix_rounds().await
    }

    async fn one_section(&mut self, target: &Target) -> Result<(), Fatal> {
        let title = target.title.as_str();
        self.progress(&format!("Writing: {title}"), 0);
        let guidance = plan::part_for(title).map(|p| p.guidance).unwrap_or(
            "Write it so that it fits the rest of the paper and reports only what the inputs support.",
        );
        // The heading and its line pin the section down when another one has the same title.
        let at = target.heading.as_ref().map(|(heading, line)| {
            fill(
                SECTION_AT_PROMPT,
                &[
                    ("heading", heading),
                    ("line", &line.to_string()),
                    ("tex", &self.tex_rel),
                ],
            )
        });
        self.write_part_at(title, guidance, at.as_deref().unwrap_or(""))
            .await?;
        self.fix_rounds().await
    }

    async fn revise(&mut self, request: &str) -> Result<(), Fatal> {
        self.progress("Revising the paper for the review", 0);
        let prompt = fill(
            REVISE_PROMPT,
            &[("request", request.trim()), ("tex", &self.tex_rel)],
        );
        if self.edit_turn(prompt, Some(NO_CHANGES)).await? {
            self.report.sections_written.push("revision".to_string());
        }
        self.fix_rounds().await
    }

    fn progress(&self, message: &str, percent: u32) {
        self.ctx.progress.report(message, Some(percent.min(100)));
    }

    /// One model call; the current `.tex` goes in front of `prompt` (not kept in the
    /// history, where it would go stale).
    async fn ask(&mut self, prompt: String) -> Result<String, Fatal> {
        // No read for a cancelled stage.
        self.conv.check_cancelled()?;
        let text = self.read().await?.text;
        let sent = fill(
            TURN_PROMPT,
            &[("tex", &self.tex_rel), ("text", &text), ("prompt", &prompt)],
        );
        Ok(self.conv.ask_with_context(sent, prompt).await?)
    }

    async fn read(&self) -> Result<Snapshot, Fatal> {
        self.ctx.sink.read(self.ctx.tex).await.map_err(Fatal::Sink)
    }

    /// Applies the reply's blocks to the `.tex` (and `entries` for the bibliography),
    /// all or nothing, guarded; retried once on a fresh read when the user typed in
    /// between. `must_cite`: keys the edits have to cite.
    async fn apply(
        &mut self,
        reply: &str,
        entries: &[String],
        must_cite: &[String],
    ) -> Result<Applied, Fatal> {
        let target = EditTarget {
            sink: self.ctx.sink,
            files: vec![(self.tex_rel.as_str(), self.ctx.tex.to_path_buf())],
            check_python: false,
        };
        let mut vet = PaperVet {
            tex: self.ctx.tex,
            tex_rel: &self.tex_rel,
            entries,
            must_cite,
            refused: &mut self.report.refused_edits,
        };
        apply_reply(&target, reply, &mut vet).await.map_err(Fatal::Sink)
    }

    /// Asks for `prompt` and applies the reply, retrying with the reason up to the
    /// attempt budget. Returns whether an edit was written; `done_word` is a reply that
    /// ends the turn without edits.
    async fn edit_turn(&mut self, mut prompt: String, done_word: Option<&str>) -> Result<bool, Fatal> {
        let attempts = self.ctx.settings.max_attempts_per_section.max(1);
        for _ in 0..attempts {
            let reply = self.ask(prompt).await?;
            if done_word.is_some_and(|w| reply.contains(w)) && parse_reply(&reply).blocks.is_empty() {
                return Ok(false);
            }
            match self.apply(&reply, &[], &[]).await? {
                Applied::Done(_) => return Ok(true),
                Applied::Failed(why) => {
                    prompt = fill(EDIT_FAILED_PROMPT, &[("problems", &why)]);
                }
                Applied::NoBlocks(problems) => {
                    prompt = fill(
                        NO_EDITS_PROMPT,
                        &[("problems", &problems.join("\n")), ("tex", &self.tex_rel)],
                    );
                }
            }
        }
        Ok(false)
    }

    async fn write_part(&mut self, name: &str, guidance: &str) -> Result<(), Fatal> {
        self.write_part_at(name, guidance, "").await
    }

    /// Writes one part; `at` (may be empty) says where it is in the `.tex`.
    async fn write_part_at(&mut self, name: &str, guidance: &str, at: &str) -> Result<(), Fatal> {
        let prompt = fill(
            SECTION_PROMPT,
            &[
                ("section", name),
                ("guidance", guidance),
                ("at", at),
                ("tex", &self.tex_rel),
            ],
        );
        if self.edit_turn(prompt, None).await? {
            self.report.sections_written.push(name.to_string());
        } else {
            self.report.sections_failed.push(name.to_string());
        }
        Ok(())
    }

    async fn refine(&mut self) -> Result<(), Fatal> {
        self.report.refined = self
            .edit_turn(REFINE_PROMPT.to_string(), Some(NO_CHANGES))
            .await?;
        Ok(())
    }

    /// Static checks, chktex and a build; their errors go back to the model, at most
    /// `fix_rounds` times. The last build is recorded in the report.
    async fn fix_rounds(&mut self) -> Result<(), Fatal> {
        let rounds = self.ctx.settings.fix_rounds;
        let timeout = Duration::from_secs(self.ctx.settings.build_timeout_secs.max(1));
        let mut round = 0;
        loop {
            self.progress(
                &format!("Writing: checking and building the paper (fix round {round}/{rounds})"),
                85 + round * 15 / rounds.max(1),
            );
            let problems = self.check_and_build(timeout).await?;
            self.report.remaining_problems = problems.clone();
            if problems.is_empty() || round >= rounds {
                return Ok(());
            }
            round += 1;
            self.report.fix_rounds = round;
            let prompt = fill(
                FIX_PROMPT,
                &[
                    ("round", &round.to_string()),
                    ("rounds", &rounds.to_string()),
                    ("problems", &problems.join("\n")),
                    ("tex", &self.tex_rel),
                ],
            );
            self.edit_turn(prompt, None).await?;
        }
    }

    /// The errors that block a clean paper, as lines for the model; records the build.
    /// A build reads the file from disk: when the sink holds newer text (an editor
    /// buffer with the model's edits), that text is saved first.
    async fn check_and_build(&mut self, timeout: Duration) -> Result<Vec<String>, Fatal> {
        let tex = self.ctx.tex;
        let src = self.read().await?.text;
        if std::fs::read_to_string(tex).ok().as_deref() != Some(src.as_str()) {
            crate::fsutil::write_atomic(tex, src.as_bytes()).map_err(|source| {
                Fatal::Sink(SinkError::Io {
                    path: tex.display().to_string(),
                    source,
                })
            })?;
        }
        let (problems, outcome) = fixes::check_and_build(
            tex,
            &src,
            timeout,
            self.ctx.runner,
            self.ctx.project_rc,
            self.ctx.cancel,
        )
        .await
        .map_err(Fatal::Build)?;
        self.report.build = Some(BuildSummary {
            status: outcome.status,
            pdf: outcome.pdf.clone(),
            pdf_is_new: outcome.pdf_is_new,
        });
        if outcome.status == BuildStatus::Cancelled {
            return Err(Fatal::Cancelled);
        }
        Ok(problems)
    }
}

#[cfg(test)]
mod section_tests {
    use super::*;

    const TWICE: &str = "\\documentclass{article}\n\\begin{document}\n\\section{Results}\nA.\n\\section{Method}\n\\subsection{Method}\nB.\n\\section{Results}\nC.\n\\end{document}\n";

    #[test]
    fn a_section_by_position_is_the_one_at_that_place() {
        let t = find_section(TWICE, &SectionRef::At { level: 2, index: 2 }).unwrap();
        assert_eq!(t.title, "Results");
        assert_eq!(t.heading, Some(("\\section{Results}".to_string(), 8)));
        let first = find_section(TWICE, &SectionRef::At { level: 2, index: 0 }).unwrap();
        assert_eq!(first.heading.unwrap().1, 3);
        assert!(matches!(
            find_section(TWICE, &SectionRef::At { level: 2, index: 3 }),
            Err(WriteupError::UnknownSection { .. })
        ));
    }

    #[test]
    fn a_title_must_name_one_section() {
        assert!(matches!(
            find_section(TWICE, &"results".into()),
            Err(WriteupError::AmbiguousSection { count: 2, .. })
        ));
        // The \subsection of the same name does not make the \section ambiguous.
        let m = find_section(TWICE, &"Method".into()).unwrap();
        assert_eq!(m.heading.unwrap().1, 5);
        assert!(find_section(TWICE, &"Appendix".into()).is_err());
    }
}
