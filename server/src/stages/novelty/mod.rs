//! The novelty stage.

pub mod agent;
