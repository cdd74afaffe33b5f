//! The one conversation of an idea's experiment stage, and delivering the edits
//! its replies carry.
//!
//! Like aider, the model sees its whole history, and the current text of the
//! editable files is put in front of each new prompt (not kept in the history,
//! where it would go stale).

use std::path::Path;

use crate::agent::conversation::{apply_reply, Applied, Conversation, EditTarget, NoVet};
use crate::agent::edit_sink::EditSink;
use crate::agent::prompt::fill;

use super::agent::{ExperimentEvents, Fatal, EDITABLE};

const FILES_PROMPT: &str = include_str!("prompts/files.txt");

/// The shared conversation, plus the files its replies edit.
pub(crate) struct Dialogue<'a> {
    pub conv: Conversation<'a>,
    pub sink: &'a dyn EditSink,
    pub events: &'a dyn ExperimentEvents,
    pub root: &'a Path,
}

impl Dialogue<'_> {
    pub fn calls(&self) -> u32 {
        self.conv.calls()
    }

    /// Send `prompt` (after the current files) and return the reply.
    pub async fn ask(&mut self, prompt: String) -> Result<String, Fatal> {
        // No read for a cancelled stage.
        self.conv.check_cancelled()?;
        let files = self.files_text().await?;
        let sent = fill(FILES_PROMPT, &[("files", &files), ("prompt", &prompt)]);
        Ok(self.conv.ask_with_context(sent, prompt).await?)
    }

    async fn files_text(&self) -> Result<String, Fatal> {
        let mut out = String::new();
        for name in EDITABLE {
            let snap = self.sink.read(&self.root.join(name)).await.map_err(Fatal::Sink)?;
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

    /// Apply the reply's SEARCH/REPLACE blocks to the editable files (all or none,
    /// Python checked) and tell the editor what changed.
    pub async fn apply(&mut self, reply: &str) -> Result<Applied, Fatal> {
        let target = EditTarget {
            sink: self.sink,
            files: EDITABLE
                .iter()
                .map(|name| (*name, self.root.join(name)))
                .collect(),
            check_python: true,
        };
        let applied = apply_reply(&target, reply, &mut NoVet)
            .await
            .map_err(Fatal::Sink)?;
        if let Applied::Done(written) = &applied {
            self.events.edits_applied(written);
        }
        Ok(applied)
    }
}
