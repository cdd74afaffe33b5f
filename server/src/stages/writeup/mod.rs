//! The writing stage as the CLI and the language server run it: the model (with the
//! stage's own model when `writeup.model` is set), the literature engines, a runner for
//! LaTeX builds, the usage ledger.

pub mod agent;

/// The title this stage's job has in the job registry (the editor shows it).
pub const TITLE: &str = "Write the paper";

use std::path::{Path, PathBuf};

use crate::config::Settings;
use crate::latex::build::BuildStatus;
use crate::literature::{Literature, PaperSearch};
use crate::llm::Llm;
use crate::stages;
use crate::stages::host::{NoticedSearch, StageHost};
use crate::stages::writeup::agent::{write_paper, WriteScope, WriteupCtx, WriteupError, WriteupReport};
use crate::stages::Spend;

/// Where an idea folder's paper is (v1's layout).
pub fn paper_tex(idea_root: &Path) -> PathBuf {
    idea_root.join("latex").join("template.tex")
}

/// What the writing stage works on.
pub struct WriteupRequest<'a> {
    /// The idea folder (notes.txt, experiment.py, run_<i>/, latex/template.tex).
    pub root: &'a Path,
    pub idea: &'a str,
    pub scope: &'a WriteScope,
    pub settings: &'a Settings,
    pub llm: &'a Llm,
    /// None: the citation rounds are skipped (with a warning in the report).
    pub literature: Option<&'a Literature>,
}

pub struct WriteupOutcome {
    pub report: WriteupReport,
    pub tex: PathBuf,
    /// What the stage's model calls cost.
    pub spend: Spend,
}

impl WriteupOutcome {
    pub fn summary(&self) -> String {
        let r = &self.report;
        let mut s = format!("{} part(s) written", r.sections_written.len());
        if !r.sections_failed.is_empty() {
            s.push_str(&format!(
                " ({} not: {})",
                r.sections_failed.len(),
                r.sections_failed.join(", ")
            ));
        }
        if r.citation_rounds > 0 || !r.citations_added.is_empty() {
            s.push_str(&format!(
                "; {} citation(s) added in {} round(s){}",
                r.citations_added.len(),
                r.citation_rounds,
                if r.citations_added.is_empty() {
                    String::new()
                } else {
                    format!(" ({})", r.citations_added.join(", "))
                }
            ));
        }
        if r.refined {
            s.push_str("; refined");
        }
        s.push_str(&format!("; {} fix round(s)", r.fix_rounds));
        if r.refused_edits > 0 {
            s.push_str(&format!("; {} edit(s) refused", r.refused_edits));
        }
        match &r.build {
            Some(b) => {
                let status = match b.status {
                    BuildStatus::Built => "built",
                    BuildStatus::Failed => "failed",
                    BuildStatus::TimedOut => "timed out",
                    BuildStatus::Cancelled => "cancelled",
                };
                s.push_str(&format!("; build {status}"));
                match (&b.pdf, b.pdf_is_new) {
                    (Some(p), true) => s.push_str(&format!(": {}", p.display())),
                    (Some(p), false) => s.push_str(&format!(" (the previous PDF is kept: {})", p.display())),
                    (None, _) => s.push_str(" (no PDF)"),
                }
            }
            None => s.push_str("; not built"),
        }
        if !r.remaining_problems.is_empty() {
            s.push_str(&format!(
                "; {} problem(s) left:\n  {}",
                r.remaining_problems.len(),
                r.remaining_problems.join("\n  ")
            ));
        }
        for w in &r.warnings {
            s.push_str(&format!("\nwarning: {w}"));
        }
        if r.cancelled {
            s.push_str("\ncancelled (what was written is kept)");
        }
        s.push_str(&format!("\n{}", self.spend.line()));
        s
    }
}

/// Writes the paper of the idea folder (or one section of it); edits go to the host's
/// sink, engine switches are notices.
pub async fn run(req: WriteupRequest<'_>, host: &StageHost<'_>) -> Result<WriteupOutcome, WriteupError> {
    let WriteupRequest {
        root,
        idea,
        scope,
        settings,
        llm,
        literature,
    } = req;
    let tex = paper_tex(root);
    // The estimate is of the whole paper; a section or a revision is a part of it.
    let expected = matches!(scope, WriteScope::Paper).then(|| {
        crate::stages::estimate::estimate(
            settings,
            &crate::stages::estimate::Sizes::of_folder(root),
            crate::stages::estimate::Stage::Writeup,
        )
    });
    let runner = stages::services::runner_for(settings);
    let search = literature.map(|lit| NoticedSearch { lit, host });
    let ctx = WriteupCtx {
        llm,
        sink: host.sink,
        runner: &runner,
        search: search.as_ref().map(|s| s as &dyn PaperSearch),
        root,
        idea,
        tex: &tex,
        settings: &settings.writeup,
        project_rc: settings.latex.project_rc,
        temperature: Some(settings.llm.temperature),
        max_tokens: settings.llm.max_tokens,
        progress: host,
        cancel: host.cancel,
    };
    let result = write_paper(&ctx, scope).await;
    stages::record_usage(root, &llm.records(), expected, host);
    Ok(WriteupOutcome {
        report: result?,
        tex,
        spend: Spend::of(llm),
    })
}
