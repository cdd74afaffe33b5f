//! What a document shows: diagnostics, lenses, hovers, code actions, notifications.

pub mod experiment;
pub mod ideas;
pub mod jobs;
pub mod paper;
pub mod review;
pub mod run_output;
pub mod runs;
