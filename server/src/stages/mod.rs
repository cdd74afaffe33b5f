//! Stages as the CLI and the language server run them: load the project's inputs,
//! build the model client from settings, run the agent, summarise what it cost.

pub mod estimate;
pub mod experiment;
pub mod host;
pub mod ideas;
pub mod notes;
pub mod novelty;
pub mod plot;
pub mod review;
pub mod search;
pub mod services;
pub mod writeup;

use std::path::{Path, PathBuf};

use crate::literature::LitError;
use crate::llm::{CallRecord, Llm, LlmError, Totals};
use crate::project::{PromptJson, Template};
use crate::stages::experiment::agent::{BaselineError, ExperimentError};
use crate::stages::ideas::agent::IdeaError;
use crate::stages::novelty::agent::NoveltyError;

#[derive(Debug, thiserror::Error)]
pub enum StageError {
    #[error("{} is not a template: it needs experiment.py and prompt.json", .0.display())]
    NotATemplate(PathBuf),
    #[error("{}: {message}", path.display())]
    Input { path: PathBuf, message: String },
    #[error(transparent)]
    Llm(#[from] LlmError),
    #[error(transparent)]
    Ideas(#[from] IdeaError),
    #[error(transparent)]
    Novelty(#[from] NoveltyError),
    #[error(transparent)]
    Literature(#[from] LitError),
    #[error(transparent)]
    Experiment(#[from] ExperimentError),
    #[error(transparent)]
    Baseline(#[from] BaselineError),
    #[error(transparent)]
    Busy(#[from] crate::jobs::Busy),
    #[error("{}: no idea named {name} in its ideas.json or notes.txt", folder.display())]
    UnknownIdea { folder: PathBuf, name: String },
}

pub(crate) fn read_json<T: serde::de::DeserializeOwned>(path: &Path) -> Result<T, StageError> {
    let text = std::fs::read_to_string(path).map_err(|e| StageError::Input {
        path: path.to_path_buf(),
        message: e.to_string(),
    })?;
    serde_json::from_str(&text).map_err(|e| StageError::Input {
        path: path.to_path_buf(),
        message: e.to_string(),
    })
}

/// What a stage's model calls cost, and with which model.
#[derive(Debug, Clone, PartialEq)]
pub struct Spend {
    pub totals: Totals,
    pub provider: String,
    pub model: String,
}

impl Spend {
    pub fn of(llm: &Llm) -> Spend {
        Spend {
            totals: llm.ledger_snapshot().total,
            provider: llm.provider().name().to_owned(),
            model: llm.provider().model().to_owned(),
        }
    }

    /// See [`cost_line`].
    pub fn line(&self) -> String {
        cost_line(&self.totals, &self.provider, &self.model)
    }
}

/// "12 calls, 34,567 input (1,200 cached) + 2,345 output tokens, $0.1234 (gpt-4o via openai)".
pub fn cost_line(t: &Totals, provider: &str, model: &str) -> String {
    let recording = if provider == "replay" {
        ", a recorded conversation, not a live model"
    } else {
        ""
    };
    format!(
        "{} model call(s), {} input ({} cached) + {} output tokens, ${:.4} ({model} via {provider}{recording})",
        t.calls,
        group(t.usage.input_tokens),
        group(t.usage.cached_input_tokens),
        group(t.usage.output_tokens),
        t.cost_usd
    )
}

fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// Loads what every model stage of a template reads: prompt.json and the code
/// (the editor's buffer when given).
pub(crate) fn prompt_and_code(
    template: &Template,
    experiment_text: Option<String>,
) -> Result<(PromptJson, String), StageError> {
    let prompt: PromptJson = read_json(&template.prompt_json())?;
    let code = match experiment_text {
        Some(t) => t,
        None => std::fs::read_to_string(template.experiment_py()).map_err(|e| StageError::Input {
            path: template.experiment_py(),
            message: e.to_string(),
        })?,
    };
    Ok((prompt, code))
}

/// Records what `llm` spent under the project, whatever the stage's outcome; a ledger
/// that cannot be written is said (the spend shown later would be short).
pub(crate) fn record_usage(
    root: &Path,
    records: &[CallRecord],
    expected: Option<estimate::Estimate>,
    host: &host::StageHost<'_>,
) {
    let lines = expected
        .map(|e| EstimateLine::new(e, records))
        .into_iter()
        .collect::<Vec<_>>();
    if let Err(e) = append_usage(root, records).and_then(|()| append_lines(root, &lines)) {
        let path = usage_path(root);
        host.emit(host::StageEvent::Warning(format!(
            "the usage ledger {} could not be written: {e}",
            path.display()
        )));
    }
}

/// A ledger line beside a stage's call records: what was expected before it ran and what
/// it spent, so estimates can be checked (`{"estimate": {...}}`; readers of call records
/// skip it, as it is no `CallRecord`).
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EstimateLine {
    pub estimate: EstimateRecord,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct EstimateRecord {
    pub at: String,
    pub idea: Option<String>,
    pub expected: estimate::Estimate,
    pub actual: Totals,
}

impl EstimateLine {
    fn new(expected: estimate::Estimate, records: &[CallRecord]) -> Self {
        EstimateLine {
            estimate: EstimateRecord {
                at: chrono::Utc::now().to_rfc3339(),
                idea: records.iter().find_map(|r| r.idea.clone()),
                expected,
                actual: Totals::of(records),
            },
        }
    }
}

/// The project's usage ledger: one JSON line per model call, kept across runs.
pub fn usage_path(root: &Path) -> PathBuf {
    root.join(".aisci").join("usage.jsonl")
}

/// Adds `records` to the project's ledger (rewritten atomically: a crash leaves the
/// old ledger or the new one).
pub fn append_usage(root: &Path, records: &[CallRecord]) -> std::io::Result<()> {
    append_lines(root, records)
}

/// Adds one JSON line per item to the ledger.
fn append_lines<T: serde::Serialize>(root: &Path, items: &[T]) -> std::io::Result<()> {
    if items.is_empty() {
        return Ok(());
    }
    // Stages of this process and other aisci processes may finish together.
    crate::fsutil::update_shared(&usage_path(root), |current| {
        let mut text = current.unwrap_or_default();
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        for item in items {
            text.push_str(&serde_json::to_string(item).map_err(std::io::Error::other)?);
            text.push('\n');
        }
        Ok((Some(text), ()))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn groups_thousands() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1234567), "1,234,567");
    }

    #[test]
    fn a_ledger_that_cannot_be_written_is_a_warning() {
        let dir = tempfile::tempdir().unwrap();
        // A file where the ledger's folder should be.
        std::fs::write(dir.path().join(".aisci"), "").unwrap();
        let seen = std::sync::Mutex::new(Vec::new());
        let events = |e: host::StageEvent| seen.lock().unwrap().push(e);
        let cancel = tokio_util::sync::CancellationToken::new();
        let h = host::StageHost::new(&crate::agent::edit_sink::DiskSink, &events, &cancel);
        let rec = CallRecord {
            at: "2026-11-26T00:00:00Z".into(),
            stage: "ideas".into(),
            idea: None,
            provider: "openai".into(),
            model: "gpt-4o".into(),
            usage: Default::default(),
            cost_usd: 0.5,
            price_known: true,
            attempts: 1,
            elapsed_ms: 3,
            finish_reason: None,
        };
        record_usage(dir.path(), &[rec], None, &h);
        let seen = seen.lock().unwrap();
        assert!(
            matches!(&seen[..], [host::StageEvent::Warning(w)] if w.contains("usage ledger")),
            "{seen:?}"
        );
    }

    #[test]
    fn usage_ledger_appends_across_runs() {
        let dir = tempfile::tempdir().unwrap();
        let rec = |stage: &str| CallRecord {
            at: "2026-11-26T00:00:00Z".into(),
            stage: stage.into(),
            idea: Some("idea-1".into()),
            provider: "openai".into(),
            model: "gpt-4o".into(),
            usage: Default::default(),
            cost_usd: 0.5,
            price_known: true,
            attempts: 1,
            elapsed_ms: 3,
            finish_reason: Some("stop".into()),
        };
        append_usage(dir.path(), &[rec("ideas")]).unwrap();
        append_usage(dir.path(), &[]).unwrap();
        append_usage(dir.path(), &[rec("ideas"), rec("novelty")]).unwrap();
        let text = std::fs::read_to_string(usage_path(dir.path())).unwrap();
        let lines: Vec<CallRecord> = text.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
        assert_eq!(lines.len(), 3);
        assert_eq!(lines[2].stage, "novelty");
    }
}
