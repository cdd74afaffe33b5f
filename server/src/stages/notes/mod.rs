//! The notes stage: after plotting, the model describes each figure in `notes.txt` (one
//! retry when its edits fail), continuing the experiment stage's conversation, so the
//! write-up knows what every figure shows. It is told what each figure plots (the figure
//! catalog), and notes that name a figure file that does not exist go back once.

use std::path::Path;

use crate::agent::conversation::Applied;
use crate::agent::prompt::fill;
use crate::jobs::Progress;
use crate::project::figures::{phantom_figures, FigureCatalog};
use crate::stages::experiment::agent::{Fatal, EDIT_FAILED_PROMPT};
use crate::stages::experiment::conversation::Dialogue;

const NOTES_PROMPT: &str = include_str!("prompts/notes.txt");
const PHANTOM_PROMPT: &str = include_str!("prompts/phantom.txt");

/// What the notes stage did.
pub(crate) struct Notes {
    /// The model edited notes.txt.
    pub updated: bool,
    /// Why notes.txt was not updated, when it was not.
    pub warning: Option<String>,
}

/// Have the model describe each figure in notes.txt (one retry if its edits fail).
pub(crate) async fn run(
    root: &Path,
    catalog: &FigureCatalog,
    dialogue: &mut Dialogue<'_>,
    progress: &dyn Progress,
) -> Result<Notes, Fatal> {
    progress.report("Notes: describing the figures", None);
    let listed = if catalog.figures.is_empty() {
        "none were made; describe the results instead, and name no figure file".to_string()
    } else {
        catalog.describe_all()
    };
    let existing: Vec<String> = catalog.figures.iter().map(|f| f.file.clone()).collect();
    let mut prompt = fill(NOTES_PROMPT, &[("figures", &listed)]);
    let mut updated = false;
    let mut asked_phantoms = false;
    for attempt in 1..=3 {
        let reply = dialogue.ask(prompt).await?;
        match dialogue.apply(&reply).await? {
            Applied::Done(files) => {
                updated |= files.iter().any(|f| f == "notes.txt");
                let notes = std::fs::read_to_string(root.join("notes.txt")).unwrap_or_default();
                let phantoms = phantom_figures(&notes, &existing);
                if phantoms.is_empty() {
                    return Ok(Notes {
                        updated,
                        warning: None,
                    });
                }
                if asked_phantoms {
                    break;
                }
                asked_phantoms = true;
                let existing_list = if existing.is_empty() {
                    "none".to_string()
                } else {
                    existing.join(", ")
                };
                prompt = fill(
                    PHANTOM_PROMPT,
                    &[("phantoms", &phantoms.join(", ")), ("existing", &existing_list)],
                );
            }
            Applied::NoBlocks(_) => break,
            Applied::Failed(feedback) => {
                let note = format!("notes attempt {attempt} of 3");
                prompt = fill(
                    EDIT_FAILED_PROMPT,
                    &[("attempt_note", &note), ("feedback", &feedback)],
                );
            }
        }
    }
    if !updated {
        return Ok(Notes {
            updated,
            warning: Some("notes.txt was not updated with the figure descriptions".into()),
        });
    }
    let notes = std::fs::read_to_string(root.join("notes.txt")).unwrap_or_default();
    let phantoms = phantom_figures(&notes, &existing);
    Ok(Notes {
        updated,
        warning: (!phantoms.is_empty()).then(|| {
            format!(
                "notes.txt names figure files that do not exist: {}",
                phantoms.join(", ")
            )
        }),
    })
}
