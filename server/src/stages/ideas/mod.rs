//! The ideas stage: new research ideas for a template, appended to its `ideas.json`.

pub mod agent;

/// The title this stage's job has in the job registry (the editor shows it).
pub const TITLE: &str = "Generate ideas";

use crate::config::Settings;
use crate::llm::Llm;
use crate::project::{Idea, Template};
use crate::stages::host::StageHost;
use crate::stages::{prompt_and_code, read_json, record_usage, Spend, StageError};
use agent::{generate_ideas, IdeaInputs, IdeaOptions, IdeaReport};

/// What the ideas stage works on.
pub struct IdeasRequest<'a> {
    pub template: &'a Template,
    pub settings: &'a Settings,
    pub llm: &'a Llm,
    /// The editor's buffer of experiment.py when open (saved or not).
    pub experiment_text: Option<String>,
}

/// What a finished idea run reports.
pub struct IdeasOutcome {
    pub report: IdeaReport,
    /// What the stage's model calls cost.
    pub spend: Spend,
    /// Models that answered without a known price (their calls count as $0).
    pub unpriced_models: Vec<String>,
}

impl IdeasOutcome {
    /// One paragraph for a person: what came out and what it cost.
    pub fn summary(&self) -> String {
        let r = &self.report;
        let mut s = format!("{} new idea(s) in {}", r.accepted.len(), r.ideas_path.display());
        if !r.dropped.is_empty() {
            let reasons: Vec<String> = r
                .dropped
                .iter()
                .map(|d| {
                    format!(
                        "#{} {}: {}",
                        d.index,
                        d.name.as_deref().unwrap_or("(unnamed)"),
                        d.reason
                    )
                })
                .collect();
            s.push_str(&format!("; {} dropped ({})", r.dropped.len(), reasons.join("; ")));
        }
        if r.cancelled {
            s.push_str("; cancelled, ideas finished before that are kept");
        }
        s.push_str(&format!(". {}", self.spend.line()));
        s
    }
}

/// Generates ideas for `template`, appending them to its `ideas.json`.
/// `experiment_text` is the editor's buffer when open (saved or not).
pub async fn run(req: IdeasRequest<'_>, host: &StageHost<'_>) -> Result<IdeasOutcome, StageError> {
    let IdeasRequest {
        template,
        settings,
        llm,
        experiment_text,
    } = req;
    let (prompt, experiment_py) = prompt_and_code(template, experiment_text)?;
    let seeds: Vec<Idea> = if template.seed_ideas_json().exists() {
        read_json(&template.seed_ideas_json())?
    } else {
        Vec::new()
    };
    let opts = IdeaOptions::from_settings(&settings.ideas, &settings.llm);
    let expected = crate::stages::estimate::estimate(
        settings,
        &crate::stages::estimate::Sizes::of_folder(&template.root),
        crate::stages::estimate::Stage::Ideas,
    );
    let inputs = IdeaInputs {
        prompt: &prompt,
        seeds: &seeds,
        experiment_py: &experiment_py,
    };
    let result = generate_ideas(llm, inputs, &opts, &template.ideas_json(), host, host.cancel).await;
    // What was spent is recorded whether or not the stage succeeded.
    record_usage(&template.root, &llm.records(), Some(expected), host);
    let report = result?;
    let snapshot = llm.ledger_snapshot();
    Ok(IdeasOutcome {
        report,
        spend: Spend::of(llm),
        unpriced_models: snapshot.unpriced_models.into_iter().collect(),
    })
}
