//! The language server: a thin layer over the core. Protocol types stay in here.

mod backend;
mod convert;
mod exit;
mod ideas_job;
mod ideas_view;
mod progress;
mod state;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::Notify;
use tower_lsp::{LspService, Server};

pub use backend::{Backend, COMMANDS};

/// Serves LSP on the given streams until the client sends `exit` (or closes the input).
/// Returns the process exit code the LSP spec asks for: 0 after `shutdown`, else 1.
pub async fn serve<I, O>(input: I, output: O) -> i32
where
    I: AsyncRead + Unpin,
    O: AsyncWrite,
{
    let (service, socket) = LspService::build(Backend::new)
        .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
        .finish();
    let exit = Arc::new(Notify::new());
    let service = exit::ExitWatch::new(service, exit.clone());
    let server = Server::new(input, output, socket);
    tokio::select! {
        _ = server.serve(service) => {}
        _ = exit.notified() => {}
    }
    0
}
