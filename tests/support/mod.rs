//! What the test modules share: local fakes of the model APIs (`fake_llm`) and of the
//! literature services (`fake_lit`) with their common HTTP plumbing (`fake_http`), the
//! in-process LSP client (`lsp_client`), the headless-Neovim harness (`nvim`), a
//! hand-made PNG (`png`), repository paths and template copies (`fs`), the hermetic
//! environment of the whole binary (`env`) and turns at the process's run queue
//! (`run_queue`).

pub mod cli;
pub mod env;
pub mod fake_http;
pub mod fake_lit;
pub mod fake_llm;
pub mod fs;
pub mod lsp_client;
pub mod nvim;
pub mod png;
pub mod run_queue;
