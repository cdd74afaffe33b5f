//! The integration tests of `aisci`, as one test binary (`e2e`, the `[[test]]` target of
//! `server/Cargo.toml`): one module per area, sharing `support` (fakes of the model and
//! literature services, the in-process LSP client, the Neovim harness, repository paths).
//! Fixtures are in `tests/fixtures/`, the Neovim scripts in `tests/nvim/`.
//!
//! All of it runs in one process, with a hermetic environment (`support::env`); no test
//! may change the process's environment or current folder. Run it all, one module, or
//! one test by its full name:
//!
//! ```text
//! cargo test -p aisci --test e2e
//! cargo test -p aisci --test e2e -- edits_corpus::
//! cargo test -p aisci --test e2e -- edits_corpus::every_block_in_the_transcript_parses --exact
//! ```
//!
//! `scripts/test` first installs what the editor, paper, template and Slurm modules need.

mod support;

mod cli_apply;
mod cli_demo;
mod cli_doctor;
mod cli_errors;
mod cli_estimate;
mod cli_experiment;
mod cli_launch;
mod cli_next_steps;
mod cli_novelty;
mod cli_review;
mod cli_review_bench;
mod cli_run;
mod edits_corpus;
mod edits_protocol;
mod experiment_loop;
mod ideas_generation;
mod ideas_replay_demo;
mod literature_search;
mod llm_retry;
mod llm_wire;
mod lsp_bad_input;
mod lsp_experiment;
mod lsp_ideas;
mod lsp_jobs;
mod lsp_launch;
mod lsp_novelty;
mod lsp_paper;
mod lsp_protocol;
mod lsp_review_v1;
mod lsp_runs;
mod lsp_snapshots;
mod lsp_trust;
mod novelty_check;
mod nvim_agent_edits;
mod nvim_e2e;
mod nvim_experiment;
mod nvim_novelty;
mod nvim_paper;
mod nvim_plugin;
mod nvim_review;
mod nvim_runs;
mod nvim_tree;
mod nvim_trust;
mod paper_build;
mod paper_checks;
mod paper_integrity;
mod project_v1_compat;
mod review_api;
mod run_resume;
mod runner_facts;
mod runner_faults;
mod runner_local;
mod runner_scheduler;
mod runner_slurm;
mod search_tree;
mod shared_writers;
mod templates_smoke;
mod untrusted_text_fuzz;
mod writeup_api;
mod writeup_stage;
