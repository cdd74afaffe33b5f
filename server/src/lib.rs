//! aisci: the automated-research loop as a library.
//!
//! Everything except `lsp` is protocol-free: the CLI, the language server and the
//! tests all drive the same core.

pub mod agent;
pub mod batch;
pub mod config;
pub mod demo;
pub mod doctor;
pub mod fsutil;
pub mod jobs;
pub mod latex;
pub mod launch;
pub mod literature;
pub mod llm;
pub mod lsp;
pub mod project;
pub mod review_bench;
pub mod review_stage;
pub mod runner;
pub mod runs;
pub mod stages;
pub mod workspace;
pub mod writeup_stage;
