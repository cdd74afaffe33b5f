//! The edit protocol of the experiment loop: aider-style SEARCH/REPLACE blocks in a
//! model reply are read (`parse_reply`), applied to file texts in memory, all or
//! none (`apply_blocks`), and explained back to the model when they fail
//! (`feedback_for`). Nothing here writes except `apply_reply_to_folder`; the
//! experiment stage hands `FileEdit`s to an `EditSink`.

mod apply;
mod confined;
mod folder;
mod matching;
mod parse;
mod pycheck;
mod text;

pub use apply::{apply_blocks, feedback_for, ApplyOptions, BlockError, FileEdit};
pub(crate) use apply::{apply_inner, normalise};
pub use folder::{apply_reply_to_folder, block_of, unified_diff, ApplyReport};
pub use parse::{parse_reply, EditBlock, ParsedReply};
pub use text::line_diff;
