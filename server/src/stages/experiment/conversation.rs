//! The one conversation of an idea's experiment stage, and delivering the edits
//! its replies carry.
//!
//! Like aider, the model sees its whole history, and the current text of the
//! editable files is put in front of each new prompt (not kept in the history,
//! where it would go stale).

use std::collections::HashMap;
use std::path::Path;

use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::{EditSink, SinkError, Snapshot};
use crate::agent::prompt::fill;
use crate::llm::{CallTag, ChatRequest, Llm, Message};

use super::agent::{ExperimentEvents, Fatal, EDITABLE};
use crate::agent::edits::{apply_blocks, feedback_for, parse_reply, ApplyOptions};

const FILES_PROMPT: &str = include_str!("prompts/files.txt");

pub(super) struct Conversation<'a> {
    pub llm: &'a Llm,
    pub sink: &'a dyn EditSink,
    pub events: &'a dyn ExperimentEvents,
    pub cancel: &'a CancellationToken,
    pub root: &'a Path,
    pub idea: &'a str,
    pub system: String,
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    pub history: Vec<Message>,
    pub calls: u32,
}

/// What became of the edits in a reply.
pub(super) enum Applied {
    /// No block could be read; the parser's complaints, if any.
    NoBlocks(Vec<String>),
    /// Nothing was applied; the message for the model.
    Failed(String),
    /// Applied; the files that changed.
    Done(Vec<String>),
}

impl Conversation<'_> {
    /// Send `prompt` (after the current files) and return the reply.
    pub async fn ask(&mut self, prompt: String) -> Result<String, Fatal> {
        if self.cancel.is_cancelled() {
            return Err(Fatal::Cancelled);
        }
        let files = self.files_text().await?;
        let mut messages = self.history.clone();
        messages.push(Message::user(fill(
            FILES_PROMPT,
            &[("files", &files), ("prompt", &prompt)],
        )));
        let req = ChatRequest {
            system: Some(self.system.clone()),
            messages,
            temperature: self.temperature,
            max_tokens: self.max_tokens,
        };
        self.calls += 1;
        let resp = tokio::select! {
            biased;
            _ = self.cancel.cancelled() => return Err(Fatal::Cancelled),
            r = self.llm.chat(CallTag::new("experiment", Some(self.idea)), &req, self.cancel) => r.map_err(Fatal::from)?,
        };
        self.history.push(Message::user(prompt));
        self.history.push(Message::assistant(resp.text.clone()));
        Ok(resp.text)
    }

    async fn files_text(&self) -> Result<String, Fatal> {
        let mut out = String::new();
        for name in EDITABLE {
            let snap = self.read(name).await?;
            let fence = if snap.text.contains("```") { "````" } else { "```" };
            let lang = if name.ends_with(".py") { "python" } else { "" };
            out.push_str(&format!("{name}\n{fence}{lang}\n{}", snap.text));
            if !snap.text.ends_with('\n') {
                out.push('\n');
            }
            out.push_str(&format!("{fence}\n\n"));
        }
        Ok(out.trim_end().to_string())
    }

    async fn read(&self, name: &str) -> Result<Snapshot, Fatal> {
        self.sink.read(&self.root.join(name)).await.map_err(Fatal::Sink)
    }

    /// Apply the reply's SEARCH/REPLACE blocks through the sink: all or none. When
    /// the user edits a file between our read and our write (`SinkError::Changed`),
    /// the blocks not yet delivered are applied once more to a fresh read.
    pub async fn apply(&mut self, reply: &str) -> Result<Applied, Fatal> {
        let parsed = parse_reply(reply);
        if parsed.blocks.is_empty() {
            return Ok(Applied::NoBlocks(parsed.problems));
        }
        if !parsed.problems.is_empty() {
            // Applying the readable blocks alone would leave a half-made change.
            return Ok(Applied::Failed(parsed.problems.join("\n")));
        }
        let opts = ApplyOptions {
            allowed: &EDITABLE,
            check_python: true,
        };
        let mut pending = parsed.blocks;
        let mut written: Vec<String> = Vec::new();
        for pass in 0..2 {
            let mut snaps: HashMap<&str, Snapshot> = HashMap::new();
            for name in EDITABLE {
                snaps.insert(name, self.read(name).await?);
            }
            let mut read = |p: &str| snaps.get(normal(p)).map(|s| s.text.clone());
            let edits = match apply_blocks(&pending, &mut read, &opts) {
                Ok(edits) => edits,
                Err(errors) => {
                    if !written.is_empty() {
                        // Part of the reply is in; say so rather than pretend none is.
                        return Ok(Applied::Failed(format!(
                            "{} was changed while your edits were applied; {} got your edits, the rest did not:\n{}",
                            pending[0].path,
                            written.join(", "),
                            feedback_for(&errors)
                        )));
                    }
                    return Ok(Applied::Failed(feedback_for(&errors)));
                }
            };
            let mut changed = false;
            for e in edits.iter().filter(|e| e.before != e.after) {
                let base = &snaps[normal(&e.path)];
                match self.sink.write(&self.root.join(&e.path), base, &e.after).await {
                    Ok(()) => written.push(e.path.clone()),
                    Err(SinkError::Changed(_)) if pass == 0 => {
                        changed = true;
                        break;
                    }
                    Err(err) => return Err(Fatal::Sink(err)),
                }
            }
            if !changed {
                break;
            }
            pending.retain(|b| !written.iter().any(|w| w == normal(&b.path)));
        }
        self.events.edits_applied(&written);
        Ok(Applied::Done(written))
    }
}

/// `./experiment.py` → `experiment.py`.
fn normal(p: &str) -> &str {
    let p = p.trim();
    p.strip_prefix("./").unwrap_or(p)
}
