//! What every model-driven stage shares: edits, JSON extraction, prompt filling.

pub mod edit_sink;
pub mod edits;
pub mod json_extract;

pub mod prompt;
