//! A vision model looks at each figure `plot.py` drew: is it readable (axes, labels,
//! legend), and does it show the data the figure hook recorded for it? Its verdict goes
//! into the figure catalog (`figure-critique` diagnostics on the paper) and, while
//! rounds are left, back to the plot conversation as a revision request.

use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::agent::conversation::Conversation;
use crate::agent::json_extract::extract_all;
use crate::agent::prompt::fill;
use crate::llm::{CallTag, Image, Llm, LlmError};
use crate::project::figures::{Critique, Figure};
use crate::stages::experiment::agent::Fatal;

const SYSTEM: &str = include_str!("prompts/critique_system.txt");
const PROMPT: &str = include_str!("prompts/critique.txt");
/// Enough for a verdict with a few issues; a critique is short.
const MAX_TOKENS: u32 = 1024;

pub(crate) struct Critic<'a> {
    pub llm: &'a Llm,
    pub tag: CallTag,
    pub cancel: &'a CancellationToken,
}

/// What became of one look at a figure.
pub(crate) enum Look {
    Seen {
        ok: bool,
        issues: Vec<String>,
    },
    /// This figure could not be judged (unreadable file, an answer that is not a verdict).
    Skipped(String),
    /// No further critique this stage (budget spent, provider failing).
    Stop(String),
}

#[derive(Deserialize)]
struct Verdict {
    ok: bool,
    #[serde(default)]
    issues: Vec<String>,
}

impl Critic<'_> {
    pub fn model(&self) -> String {
        self.llm.model().to_string()
    }

    /// Show `figure` (the PNG in `root`) and what it records; cancellation is fatal,
    /// anything else a note.
    pub async fn look(&self, root: &std::path::Path, figure: &Figure) -> Result<Look, Fatal> {
        let image = match Image::from_file(root.join(&figure.file)) {
            Ok(i) => i,
            Err(e) => {
                return Ok(Look::Skipped(format!(
                    "{} cannot be read for the critique ({e})",
                    figure.file
                )))
            }
        };
        let text = fill(
            PROMPT,
            &[("file", &figure.file), ("description", &figure.describe())],
        );
        // A conversation of its own: the critique is not part of the plot dialogue.
        let mut conv = Conversation::new(
            self.llm,
            self.cancel,
            self.tag.clone(),
            SYSTEM,
            Some(0.0),
            MAX_TOKENS,
        )
        .with_images(vec![image]);
        let reply = match conv.ask(text).await {
            Ok(r) => r,
            Err(LlmError::Cancelled) => return Err(Fatal::Cancelled),
            Err(e) => return Ok(Look::Stop(format!("the figure critique stopped: {e}"))),
        };
        Ok(parse(&reply).unwrap_or_else(|| {
            Look::Skipped(format!(
                "the critique of {} was not a verdict ({{\"ok\", \"issues\"}}); the figure is kept as it is",
                figure.file
            ))
        }))
    }
}

/// The last `{"ok", "issues"}` object of a reply; "ok" with issues listed counts as not ok
/// (a model that says fine but lists a problem still found one).
fn parse(reply: &str) -> Option<Look> {
    let v = extract_all(reply)
        .into_iter()
        .rev()
        .find_map(|v| serde_json::from_value::<Verdict>(v).ok())?;
    let issues: Vec<String> = v
        .issues
        .into_iter()
        .map(|i| i.trim().to_string())
        .filter(|i| !i.is_empty())
        .collect();
    Some(Look::Seen {
        ok: v.ok && issues.is_empty(),
        issues,
    })
}

/// The revision request for the figures that still have issues.
pub(crate) fn issues_text(open: &[(&str, &Critique)]) -> String {
    open.iter()
        .map(|(file, c)| {
            let list: Vec<String> = c.issues.iter().map(|i| format!("- {i}")).collect();
            format!("{file}:\n{}", list.join("\n"))
        })
        .collect::<Vec<_>>()
        .join("\n\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn verdicts_are_read_from_fenced_or_bare_json() {
        let Some(Look::Seen { ok, issues }) = parse("```json\n{\"ok\": true, \"issues\": []}\n```") else {
            panic!("not seen")
        };
        assert!(ok && issues.is_empty());
        let Some(Look::Seen { ok, issues }) = parse(
            "Looking at it: {\"ok\": true, \"issues\": [\"The legend covers the moons bars.\", \" \"]}",
        ) else {
            panic!("not seen")
        };
        assert!(!ok, "an issue listed means not ok");
        assert_eq!(issues, ["The legend covers the moons bars."]);
        assert!(parse("The figure looks fine to me.").is_none());
        assert!(parse("{\"verdict\": \"fine\"}").is_none());
    }
}
