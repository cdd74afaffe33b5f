//! The experiment stage: the model edits experiment.py, aisci runs it, then plot.py
//! and notes.txt.

pub mod agent;
mod conversation;
