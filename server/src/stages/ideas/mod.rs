//! The ideas stage.

pub mod agent;
