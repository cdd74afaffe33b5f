//! The model's part of the search: proposing a variant (draft, debug, improve) as
//! SEARCH/REPLACE edits of its parent's code, and choosing the metric once when the
//! template names none. Each proposal is its own short conversation: the variant's code
//! and what it needs to know, not the history of the whole tree.

use std::path::Path;

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::agent::conversation::{apply_reply, Applied, Conversation, EditTarget, NoVet};
use crate::agent::edit_sink::DiskSink;
use crate::agent::prompt::fill;
use crate::config::Direction;
use crate::llm::{CallTag, Llm, LlmError};

use super::score::{guess_direction, metric_keys};
use super::tree::{Metric, MetricSource};

const SYSTEM: &str = include_str!("prompts/system.txt");
pub(super) const DRAFT: &str = include_str!("prompts/draft.txt");
pub(super) const IMPROVE: &str = include_str!("prompts/improve.txt");
pub(super) const DEBUG: &str = include_str!("prompts/debug.txt");
const METRIC: &str = include_str!("prompts/metric.txt");
const RETRY: &str = include_str!("prompts/retry.txt");

/// Model turns one proposal may take (the first and the retries after edits that did
/// not apply).
const TURNS: u32 = 2;

pub(super) struct Asker<'a> {
    pub llm: &'a Llm,
    pub cancel: &'a CancellationToken,
    pub idea: &'a str,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
}

/// A proposed variant, its code written to the node's `experiment.py`.
pub(super) struct Proposal {
    pub plan: String,
    /// Why no usable code came of it (edits that never applied, no edits).
    pub error: Option<String>,
    pub cost_usd: f64,
}

impl Asker<'_> {
    fn conversation(&self) -> Conversation<'_> {
        Conversation::new(
            self.llm,
            self.cancel,
            CallTag::new("experiment", Some(self.idea)),
            SYSTEM,
            self.temperature,
            self.max_tokens,
        )
    }

    /// Asks for the change `prompt` describes to `code` (already written to `file`, the
    /// node's copy) and applies it there, all or none.
    pub async fn propose(&self, prompt: String, file: &Path) -> Result<Proposal, LlmError> {
        let before = self.llm.totals().cost_usd;
        let mut conv = self.conversation();
        let mut prompt = prompt;
        let mut plan = String::new();
        let mut error = None;
        for _ in 0..TURNS {
            let reply = conv.ask(prompt).await?;
            if plan.is_empty() {
                plan = plan_of(&reply);
            }
            let target = EditTarget {
                sink: &DiskSink,
                files: vec![("experiment.py", file.to_path_buf())],
                check_python: true,
            };
            let problem = match apply_reply(&target, &reply, &mut NoVet).await {
                Ok(Applied::Done(_)) => {
                    error = None;
                    break;
                }
                Ok(Applied::NoBlocks(problems)) => {
                    error = Some("the model's answer had no edits".to_string());
                    let why = if problems.is_empty() {
                        String::new()
                    } else {
                        format!(" ({})", problems.join("; "))
                    };
                    format!("Your answer had no SEARCH/REPLACE block for experiment.py{why}.")
                }
                Ok(Applied::Failed(feedback)) => {
                    error = Some("the model's edits did not apply".to_string());
                    format!("Your edits were not applied, none of them:\n{feedback}")
                }
                Err(e) => {
                    error = Some(format!("the variant's code could not be written: {e}"));
                    break;
                }
            };
            let code = std::fs::read_to_string(file).unwrap_or_default();
            prompt = fill(RETRY, &[("problem", &problem), ("code", code.trim_end())]);
        }
        Ok(Proposal {
            plan,
            error,
            cost_usd: (self.llm.totals().cost_usd - before).max(0.0),
        })
    }

    /// The metric the model chooses from the baseline's results; a reply that names no
    /// key of them falls back to the first key, with a direction from its name.
    pub async fn choose_metric(
        &self,
        title: &str,
        experiment: &str,
        baseline: &Value,
    ) -> Result<Metric, LlmError> {
        let keys = metric_keys(baseline);
        let fallback = |why: String| {
            let name = keys.first().cloned().unwrap_or_else(|| "score".to_string());
            Metric {
                direction: guess_direction(&name),
                name,
                source: MetricSource::Model,
                reason: Some(why),
            }
        };
        let prompt = fill(
            METRIC,
            &[
                ("title", title),
                ("experiment", experiment),
                ("baseline", &crate::project::py_repr(baseline)),
            ],
        );
        let reply = self.conversation().ask(prompt).await?;
        let Some(v) = crate::agent::json_extract::extract_first(&reply) else {
            return Ok(fallback("the model's answer held no JSON; chosen by name".into()));
        };
        let name = v.get("metric").and_then(Value::as_str).unwrap_or_default().trim();
        if !keys.iter().any(|k| k == name) {
            return Ok(fallback(format!(
                "the model named {name:?}, which the baseline does not report; chosen by name"
            )));
        }
        let direction = match v.get("direction").and_then(Value::as_str).map(str::trim) {
            Some("min") => Direction::Min,
            Some("max") => Direction::Max,
            _ => guess_direction(name),
        };
        Ok(Metric {
            name: name.to_string(),
            direction,
            source: MetricSource::Model,
            reason: v.get("reason").and_then(Value::as_str).map(str::to_owned),
        })
    }
}

/// The plan: the paragraph after "PLAN:", else the text before the first edit block,
/// at most 600 characters.
pub(super) fn plan_of(reply: &str) -> String {
    let start = reply.find("PLAN:").map_or(0, |i| i + "PLAN:".len());
    let rest = &reply[start..];
    let mut lines = Vec::new();
    for line in rest.lines() {
        let t = line.trim();
        if t == "experiment.py" || t.starts_with("```") || t.starts_with("<<<<<<<") {
            break;
        }
        if t.is_empty() && !lines.is_empty() {
            break;
        }
        if !t.is_empty() {
            lines.push(t);
        }
    }
    let plan = lines.join(" ");
    match plan.char_indices().nth(600) {
        Some((i, _)) => format!("{}…", &plan[..i]),
        None => plan,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_plan_is_the_paragraph_before_the_blocks() {
        let reply = "PLAN: Use a cosine schedule\nwith warmup.\n\nexperiment.py\n```python\n<<<<<<< SEARCH\n";
        assert_eq!(plan_of(reply), "Use a cosine schedule with warmup.");
        assert_eq!(plan_of("Lower the lr.\nexperiment.py\n```"), "Lower the lr.");
        assert_eq!(
            plan_of(&format!("PLAN: {}", "x".repeat(700))).chars().count(),
            601
        );
    }
}
