//! The novelty stage: each idea of a template checked against the literature, the
//! verdicts recorded in its `ideas.json`.

pub mod agent;

use tokio_util::sync::CancellationToken;

use crate::config::Settings;
use crate::jobs::Progress;
use crate::literature::PaperSearch;
use crate::llm::{Llm, Totals};
use crate::project::Template;
use crate::stages::{cost_line, prompt_and_code, record_usage, StageError};
use agent::{check_archive, NoveltyInputs, NoveltyOptions, NoveltyReport};

/// What a finished novelty run reports.
pub struct NoveltyOutcome {
    pub report: NoveltyReport,
    pub totals: Totals,
    pub provider: String,
    pub model: String,
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
        s.push_str(&format!(
            ". {}",
            cost_line(&self.totals, &self.provider, &self.model)
        ));
        s
    }
}

/// Checks the novelty of the ideas in `template`'s ideas.json (`only`: these
/// names; `force`: also ideas already checked), writing each verdict as it comes.
#[allow(clippy::too_many_arguments)] // the stage's distinct inputs
pub async fn run_novelty(
    template: &Template,
    settings: &Settings,
    llm: &Llm,
    search: &dyn PaperSearch,
    experiment_text: Option<String>,
    only: Option<&[String]>,
    force: bool,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<NoveltyOutcome, StageError> {
    let (prompt, code) = prompt_and_code(template, experiment_text)?;
    let opts = NoveltyOptions::from_settings(&settings.novelty, &settings.llm);
    let inputs = NoveltyInputs {
        prompt: &prompt,
        experiment_py: &code,
    };
    let result = check_archive(
        llm,
        search,
        inputs,
        &template.ideas_json(),
        &opts,
        only,
        force,
        progress,
        cancel,
    )
    .await;
    record_usage(&template.root, llm);
    Ok(NoveltyOutcome {
        report: result?,
        totals: llm.ledger_snapshot().total,
        provider: llm.provider().name().to_owned(),
        model: llm.provider().model().to_owned(),
    })
}
