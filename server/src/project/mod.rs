//! The research-project model: templates, idea folders and their file formats.

mod problem;
pub use problem::{Problem, Severity};
