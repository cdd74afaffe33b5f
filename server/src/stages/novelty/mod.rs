//! The novelty stage: each idea of a template checked against the literature, the
//! verdicts recorded in its `ideas.json`.

pub mod agent;

/// The title this stage's job has in the job registry (the editor shows it).
pub const TITLE: &str = "Check novelty";

use crate::config::Settings;
use crate::literature::Literature;
use crate::llm::Llm;
use crate::project::Template;
use crate::stages::host::{NoticedSearch, StageHost};
use crate::stages::{prompt_and_code, record_usage, Spend, StageError};
use agent::{check_archive, NoveltyInputs, NoveltyOptions, NoveltyReport};

/// What a finished novelty run reports.
pub struct NoveltyOutcome {
    pub report: NoveltyReport,
    /// What the stage's model calls cost.
    pub spend: Spend,
}

impl NoveltyOutcome {
    pub fn summary(&self) -> String {
        let r = &self.report;
        let checked: Vec<_> = r.results.iter().filter(|v| v.verdict.novel.is_some()).collect();
        let novel = r.novel();
        let mut s = format!(
            "novelty checked for {} idea(s): {} novel",
            checked.len(),
            novel.len()
        );
        if !novel.is_empty() {
            s.push_str(&format!(" ({})", novel.join(", ")));
        }
        let unchecked: Vec<String> = r
            .results
            .iter()
            .filter(|v| v.verdict.novel.is_none())
            .map(|v| {
                format!(
                    "{}: {}",
                    v.name,
                    v.verdict.reason.trim_start_matches("not checked: ")
                )
            })
            .collect();
        if !unchecked.is_empty() {
            s.push_str(&format!("; not checked: {}", unchecked.join("; ")));
        }
        if !r.skipped.is_empty() {
            s.push_str(&format!("; {} already checked, skipped", r.skipped.len()));
        }
        if !r.unknown.is_empty() {
            s.push_str(&format!("; no such idea: {}", r.unknown.join(", ")));
        }
        if r.cancelled {
            s.push_str("; cancelled, verdicts finished before that are kept");
        }
        s.push_str(&format!(". {}", self.spend.line()));
        s
    }
}

/// What the novelty stage works on.
pub struct NoveltyRequest<'a> {
    pub template: &'a Template,
    pub settings: &'a Settings,
    pub llm: &'a Llm,
    pub literature: &'a Literature,
    /// The editor's buffer of experiment.py when open.
    pub experiment_text: Option<String>,
    /// Only these ideas (by Name); `None`: every unchecked one.
    pub only: Option<&'a [String]>,
    /// Check again ideas that already have a verdict.
    pub force: bool,
}

/// Checks the novelty of the ideas in the template's ideas.json, writing each verdict
/// as it comes; engine switches reach the host as notices.
pub async fn run(req: NoveltyRequest<'_>, host: &StageHost<'_>) -> Result<NoveltyOutcome, StageError> {
    let NoveltyRequest {
        template,
        settings,
        llm,
        literature,
        experiment_text,
        only,
        force,
    } = req;
    let search = NoticedSearch {
        lit: literature,
        host,
    };
    let (prompt, code) = prompt_and_code(template, experiment_text)?;
    let per_idea = crate::stages::estimate::estimate(
        settings,
        &crate::stages::estimate::Sizes::of_folder(&template.root),
        crate::stages::estimate::Stage::Novelty,
    );
    let opts = NoveltyOptions::from_settings(&settings.novelty, &settings.llm);
    let inputs = NoveltyInputs {
        prompt: &prompt,
        experiment_py: &code,
    };
    let result = check_archive(
        llm,
        &search,
        inputs,
        &template.ideas_json(),
        &opts,
        only,
        force,
        host,
        host.cancel,
    )
    .await;
    let records = llm.records();
    // Per idea checked.
    let mut checked: Vec<&str> = records.iter().filter_map(|r| r.idea.as_deref()).collect();
    checked.sort_unstable();
    checked.dedup();
    let expected = crate::stages::estimate::stages_of(per_idea, checked.len().max(1) as u64);
    record_usage(&template.root, &records, Some(expected), host);
    Ok(NoveltyOutcome {
        report: result?,
        spend: Spend::of(llm),
    })
}
