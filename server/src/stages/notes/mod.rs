//! The notes stage: after plotting, the model describes each figure in `notes.txt` (one
//! retry when its edits fail), continuing the experiment stage's conversation, so the
//! write-up knows what every figure shows.

use crate::agent::conversation::Applied;
use crate::agent::prompt::fill;
use crate::jobs::Progress;
use crate::stages::experiment::agent::{Fatal, EDIT_FAILED_PROMPT};
use crate::stages::experiment::conversation::Dialogue;

const NOTES_PROMPT: &str = include_str!("prompts/notes.txt");

/// What the notes stage did.
pub(crate) struct Notes {
    /// The model edited notes.txt.
    pub updated: bool,
    /// Why notes.txt was not updated, when it was not.
    pub warning: Option<String>,
}

/// Have the model describe each figure in notes.txt (one retry if its edits fail).
pub(crate) async fn run(
    figures: &[String],
    dialogue: &mut Dialogue<'_>,
    progress: &dyn Progress,
) -> Result<Notes, Fatal> {
    progress.report("Notes: describing the figures", None);
    let listed = if figures.is_empty() {
        "none were made; describe the results instead".to_string()
    } else {
        figures.join(", ")
    };
    let mut prompt = fill(NOTES_PROMPT, &[("figures", &listed)]);
    for attempt in 1..=2 {
        let reply = dialogue.ask(prompt).await?;
        match dialogue.apply(&reply).await? {
            Applied::Done(files) => {
                return Ok(Notes {
                    updated: files.iter().any(|f| f == "notes.txt"),
                    warning: None,
                })
            }
            Applied::NoBlocks(_) => break,
            Applied::Failed(feedback) => {
                let note = format!("notes attempt {attempt} of 2");
                prompt = fill(
                    EDIT_FAILED_PROMPT,
                    &[("attempt_note", &note), ("feedback", &feedback)],
                );
            }
        }
    }
    Ok(Notes {
        updated: false,
        warning: Some("notes.txt was not updated with the figure descriptions".into()),
    })
}
