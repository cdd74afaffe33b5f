//! Idea generation, v1's protocol with sturdier edges.
//!
//! For each of N ideas: a fresh conversation whose prompt holds the task, the
//! experiment code and the archive (seeds, earlier ideas, ideas made in this run);
//! then reflection rounds 2..=R, stopping early when a response says `I am done`
//! (that response's JSON still counts). The last JSON seen is checked against the
//! idea schema; if it fails (or no JSON was ever found) the model gets ONE repair
//! prompt saying what was wrong, and the idea is dropped with its reason if that
//! fails too. One idea therefore costs at most R + 1 calls (R rounds and the
//! repair), however badly the model formats its answers.
//!
//! Names: obvious near-misses (`Adaptive LR-Warmup`) are normalised silently to
//! `adaptive_lr_warmup`; anything else invalid, and a Name already in the archive,
//! goes to the repair prompt.
//!
//! Every accepted idea is appended to `ideas.json` (v1 format: a JSON array with
//! indent 4) and the file is rewritten atomically at once, so a crash loses nothing.
//! An existing `ideas.json` is the starting archive; its entries are kept verbatim,
//! and seeds it lacks are put in front.

use crate::agent::prompt::fill;
use std::collections::HashSet;
use std::path::{Path, PathBuf};

use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::agent::conversation::Conversation;
use crate::config::{IdeaSettings, LlmSettings};
use crate::jobs::Progress;
use crate::llm::{CallTag, Llm, LlmError};
use crate::project::{is_valid_idea_name, normalize_idea_name, validate_idea, Idea, PromptJson};

use crate::agent::json_extract::extract_idea_json;

const FIRST_PROMPT: &str = include_str!("prompts/first.txt");
const REFLECT_PROMPT: &str = include_str!("prompts/reflect.txt");
const REPAIR_PROMPT: &str = include_str!("prompts/repair.txt");

/// The sentinel that ends reflection early (v1's convention, matched as a substring).
pub const DONE_MARKER: &str = "I am done";

/// What idea generation reads. The experiment code is passed as text so that the
/// editor's unsaved buffer can be used.
#[derive(Debug, Clone, Copy)]
pub struct IdeaInputs<'a> {
    pub prompt: &'a PromptJson,
    pub seeds: &'a [Idea],
    pub experiment_py: &'a str,
}

/// How many ideas, how many rounds, and the sampling settings.
#[derive(Debug, Clone, PartialEq)]
pub struct IdeaOptions {
    pub num_ideas: u32,
    /// Rounds per idea including the first (v1: 3). 0 is treated as 1.
    pub num_reflections: u32,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
}

impl IdeaOptions {
    pub fn from_settings(ideas: &IdeaSettings, llm: &LlmSettings) -> Self {
        Self {
            num_ideas: ideas.num_ideas,
            num_reflections: ideas.num_reflections,
            temperature: Some(llm.temperature),
            max_tokens: llm.max_tokens,
        }
    }
}

/// An idea that did not make it, and why.
#[derive(Debug, Clone, PartialEq)]
pub struct DroppedIdea {
    /// 1-based position among the ideas of this run.
    pub index: u32,
    /// The last Name the model gave, if any.
    pub name: Option<String>,
    pub reason: String,
    pub calls: u32,
}

/// The outcome of a generation run.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IdeaReport {
    pub accepted: Vec<Idea>,
    pub dropped: Vec<DroppedIdea>,
    /// Model calls made (including failed ones that returned an error).
    pub calls: u32,
    /// True when the run stopped on the cancellation token.
    pub cancelled: bool,
    pub ideas_path: PathBuf,
}

#[derive(Debug, thiserror::Error)]
pub enum IdeaError {
    #[error("{}: the existing ideas.json cannot be used ({message}); fix or move it so that its ideas are not lost", path.display())]
    ExistingArchive { path: PathBuf, message: String },
    #[error("writing {}: {source}", path.display())]
    Write { path: PathBuf, source: std::io::Error },
    /// A model call failed for good (after the client's retries). The ideas accepted
    /// before it are in `report` and already on disk.
    #[error("idea generation stopped after {} accepted idea(s): {source}", report.accepted.len())]
    Llm {
        source: LlmError,
        report: Box<IdeaReport>,
    },
}

/// The archive to start from: `ideas.json` if it exists (kept verbatim), with any
/// seed it lacks (by Name) put in front; otherwise the seeds.
pub fn load_archive(ideas_path: &Path, seeds: &[Idea]) -> Result<Vec<Value>, IdeaError> {
    let bad = |message: String| IdeaError::ExistingArchive {
        path: ideas_path.to_path_buf(),
        message,
    };
    let mut entries: Vec<Value> = match std::fs::read(ideas_path) {
        Ok(bytes) => {
            let text = String::from_utf8(bytes).map_err(|e| bad(e.to_string()))?;
            match serde_json::from_str::<Value>(&text).map_err(|e| bad(e.to_string()))? {
                Value::Array(items) => items,
                _ => return Err(bad("it is not a JSON array".into())),
            }
        }
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Vec::new(),
        Err(e) => return Err(bad(e.to_string())),
    };
    with_seeds(&mut entries, seeds);
    Ok(entries)
}

/// Puts any seed the archive lacks (by Name) in front of it.
fn with_seeds(entries: &mut Vec<Value>, seeds: &[Idea]) {
    let present: HashSet<String> = entries.iter().filter_map(entry_name).collect();
    let missing: Vec<Value> = seeds
        .iter()
        .filter(|s| !present.contains(&s.name))
        .map(Idea::to_value)
        .collect();
    entries.splice(0..0, missing);
}

/// Adds `idea` to the archive as it is on disk now, under the shared-file lock, so ideas
/// another writer (a second `aisci ideas`, the editor, the novelty check) added or changed
/// meanwhile are kept. A Name another writer took meanwhile gets a suffix. Returns the
/// archive as written and the idea as added.
fn append_idea(ideas_path: &Path, seeds: &[Idea], mut idea: Idea) -> Result<(Vec<Value>, Idea), IdeaError> {
    let mut written = Vec::new();
    crate::project::update_archive(ideas_path, true, |entries| {
        with_seeds(entries, seeds);
        let taken: HashSet<String> = entries.iter().filter_map(entry_name).collect();
        if taken.contains(&idea.name) {
            let base = idea.name.clone();
            idea.name = (2..)
                .map(|k| format!("{base}_{k}"))
                .find(|n| !taken.contains(n))
                .expect("a free Name");
        }
        entries.push(idea.to_value());
        written = entries.clone();
        true
    })
    .map_err(|e| match e {
        crate::project::ArchiveError::Write { path, source } => IdeaError::Write { path, source },
        crate::project::ArchiveError::Unreadable { path, message } => {
            IdeaError::ExistingArchive { path, message }
        }
    })?;
    Ok((written, idea))
}

fn entry_name(v: &Value) -> Option<String> {
    v.get("Name").and_then(Value::as_str).map(str::to_owned)
}

/// Generate ideas and append them to `ideas_path` (normally the template's
/// `ideas.json`). See the module docs for the protocol.
pub async fn generate_ideas(
    llm: &Llm,
    inputs: IdeaInputs<'_>,
    opts: &IdeaOptions,
    ideas_path: &Path,
    progress: &dyn Progress,
    cancel: &CancellationToken,
) -> Result<IdeaReport, IdeaError> {
    let mut archive = load_archive(ideas_path, inputs.seeds)?;
    let mut report = IdeaReport {
        ideas_path: ideas_path.to_path_buf(),
        ..Default::default()
    };
    let rounds = opts.num_reflections.max(1);
    let n = opts.num_ideas;

    for index in 1..=n {
        if cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        let mut gen = IdeaRun {
            conv: Conversation::new(
                llm,
                cancel,
                CallTag::new("ideas", Some(&format!("idea-{index}"))),
                inputs.prompt.system.as_str(),
                opts.temperature,
                opts.max_tokens,
            ),
            name: None,
            index,
        };
        let outcome = gen.run(&inputs, &archive, rounds, n, progress).await;
        report.calls += gen.conv.calls();
        match outcome {
            Ok(Ok(idea)) => {
                // The next idea is asked for against the archive as it is now, others'
                // ideas included.
                let (now, idea) = append_idea(ideas_path, inputs.seeds, idea)?;
                archive = now;
                report.accepted.push(idea);
            }
            Ok(Err(reason)) => report.dropped.push(DroppedIdea {
                index,
                name: gen.name.clone(),
                reason,
                calls: gen.conv.calls(),
            }),
            Err(LlmError::Cancelled) => {
                report.cancelled = true;
                break;
            }
            Err(source) => {
                return Err(IdeaError::Llm {
                    source,
                    report: Box::new(report),
                })
            }
        }
    }
    progress.report(
        &format!(
            "Ideas: {} accepted, {} dropped, {} model call(s)",
            report.accepted.len(),
            report.dropped.len(),
            report.calls
        ),
        Some(100),
    );
    Ok(report)
}

/// One idea's conversation.
struct IdeaRun<'a> {
    conv: Conversation<'a>,
    /// The latest Name seen, for the report (calls are booked to it as well).
    name: Option<String>,
    index: u32,
}

/// Why the idea JSON is not accepted, for the repair prompt.
enum Flaw {
    /// No JSON object at all.
    NoJson,
    /// The problems with the last one, as sentences.
    Invalid(Vec<String>),
}

impl Flaw {
    fn problems(&self) -> Vec<String> {
        match self {
            Flaw::NoJson => vec!["no JSON object was found after \"NEW IDEA JSON:\"".to_string()],
            Flaw::Invalid(problems) => problems.clone(),
        }
    }
}

impl IdeaRun<'_> {
    /// Ok(Ok(idea)) accepted, Ok(Err(reason)) dropped, Err(e) the model failed.
    async fn run(
        &mut self,
        inputs: &IdeaInputs<'_>,
        archive: &[Value],
        rounds: u32,
        n: u32,
        progress: &dyn Progress,
    ) -> Result<Result<Idea, String>, LlmError> {
        let percent = Some((self.index - 1) * 100 / n.max(1));
        let archive_text = archive
            .iter()
            .map(|v| serde_json::to_string(v).expect("JSON values serialise"))
            .collect::<Vec<_>>()
            .join("\n\n");
        let taken: HashSet<String> = archive.iter().filter_map(entry_name).collect();

        let mut last: Option<Value> = None;
        for round in 1..=rounds {
            progress.report(
                &format!("Idea {}/{n}: round {round}/{rounds}", self.index),
                percent,
            );
            let prompt = if round == 1 {
                fill(
                    FIRST_PROMPT,
                    &[
                        ("task_description", &inputs.prompt.task_description),
                        ("code", inputs.experiment_py),
                        ("archive", &archive_text),
                        ("num_reflections", &rounds.to_string()),
                    ],
                )
            } else {
                fill(
                    REFLECT_PROMPT,
                    &[
                        ("round", &round.to_string()),
                        ("num_reflections", &rounds.to_string()),
                    ],
                )
            };
            let text = self.conv.ask(prompt).await?;
            if let Some(v) = extract_idea_json(&text) {
                if let Some(name) = entry_name(&v) {
                    self.conv.set_idea(&name);
                    self.name = Some(name);
                }
                last = Some(v);
            }
            if text.contains(DONE_MARKER) {
                break;
            }
        }

        let flaw = match &last {
            Some(v) => match accept(v, &taken) {
                Ok(idea) => return Ok(Ok(idea)),
                Err(p) => Flaw::Invalid(p),
            },
            None => Flaw::NoJson,
        };

        progress.report(
            &format!("Idea {}/{n}: repairing the idea JSON", self.index),
            percent,
        );
        let before = flaw.problems().join("; ");
        let name = &mut self.name;
        let parse = |text: &str| {
            let v = extract_idea_json(text).ok_or(Flaw::NoJson)?;
            if let Some(n) = entry_name(&v) {
                *name = Some(n);
            }
            accept(&v, &taken).map_err(Flaw::Invalid)
        };
        let repair = |flaw: &Flaw| {
            let listed = flaw
                .problems()
                .iter()
                .map(|p| format!("- {p}"))
                .collect::<Vec<_>>()
                .join("\n");
            fill(REPAIR_PROMPT, &[("problems", &listed)])
        };
        // One repair prompt: an idea costs at most R + 1 calls.
        Ok(match self.conv.repair(flaw, 1, parse, repair).await? {
            Ok(idea) => Ok(idea),
            Err(Flaw::NoJson) => Err(format!(
                "no valid idea JSON after the repair prompt (before it: {before})"
            )),
            Err(Flaw::Invalid(p)) => Err(format!("still invalid after the repair prompt: {}", p.join("; "))),
        })
    }
}

/// Normalise the Name's obvious near-misses, then validate, including that the Name
/// is new to the archive. Err: each problem as a sentence for the repair prompt.
fn accept(v: &Value, taken: &HashSet<String>) -> Result<Idea, Vec<String>> {
    let mut v = v.clone();
    if let Some(obj) = v.as_object_mut() {
        if let Some(Value::String(name)) = obj.get("Name") {
            let norm = normalize_idea_name(name);
            // Only when that fixes it: otherwise the repair prompt quotes the original.
            if is_valid_idea_name(&norm) {
                obj.insert("Name".into(), Value::String(norm));
            }
        }
    }
    let mut problems: Vec<String> = validate_idea(&v).into_iter().map(|i| i.message).collect();
    if let Some(name) = entry_name(&v) {
        if taken.contains(&name) {
            problems.push(format!(
                "the Name \"{name}\" is already used by an idea in the archive; propose a different idea or at least a distinct Name"
            ));
        }
    }
    if !problems.is_empty() {
        return Err(problems);
    }
    Idea::from_value(&v).map_err(|issues| issues.into_iter().map(|i| i.message).collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn prompts_keep_the_protocol_sentinels() {
        for p in [FIRST_PROMPT, REFLECT_PROMPT, REPAIR_PROMPT] {
            assert!(p.contains("THOUGHT:") && p.contains("NEW IDEA JSON:") && p.contains("```json"));
        }
        assert!(REFLECT_PROMPT.starts_with("Round {round}/{num_reflections}."));
        assert!(REFLECT_PROMPT.contains("\"I am done\""));
    }

    #[test]
    fn accept_normalises_names_and_rejects_duplicates() {
        let taken: HashSet<String> = ["lr_warmup".to_string()].into();
        let v = serde_json::json!({"Name": "Cosine-Decay Study", "Title": "t", "Experiment": "e",
            "Interestingness": 5, "Feasibility": 5, "Novelty": 5});
        assert_eq!(accept(&v, &taken).unwrap().name, "cosine_decay_study");
        let mut dup = v.clone();
        dup["Name"] = "LR warmup".into();
        let err = accept(&dup, &taken).unwrap_err();
        assert!(err[0].contains("already used"), "{err:?}");
    }
}
