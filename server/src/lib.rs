//! aisci: the automated-research loop as a library.
//!
//! Everything except `lsp` is protocol-free: the CLI, the language server and the
//! tests all drive the same core.

pub mod agent;
pub mod cli;
pub mod config;
pub mod fsutil;
pub mod integrity;
pub mod jobs;
pub mod latex;
pub mod literature;
pub mod llm;
pub mod lsp;
pub mod project;
pub mod runner;
pub mod runs;
pub mod stages;
pub mod workspace;
