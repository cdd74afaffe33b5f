//! What every model-driven stage shares: the conversation, edits, JSON extraction,
//! prompt filling.

pub mod conversation;
pub mod edit_sink;
pub mod edits;
pub mod json_extract;

pub mod prompt;
