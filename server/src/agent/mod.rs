//! Prompts and stages of the research loop.

pub mod edit_sink;
pub mod edits;
pub mod experiment;
pub mod ideas;
pub mod json_extract;
pub mod novelty;
pub mod writeup;

pub mod prompt;
pub mod review;
