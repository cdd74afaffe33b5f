//! The language server: a thin layer over the core. Protocol types stay in here.

mod backend;
mod commands;
mod convert;
mod edit_review;
mod edit_sink;
mod exit;
mod framing;
mod jobs;
mod progress;
mod server;
mod state;
mod tex_view;
pub(crate) mod trust;
mod views;

use std::sync::Arc;

use tokio::io::{AsyncRead, AsyncWrite};
use tower_lsp::{LspService, Server};

pub use backend::Backend;
pub use commands::COMMANDS;

/// Serves LSP on the given streams until the client sends `exit` (or closes the input).
/// Returns the process exit code the LSP spec asks for: 0 after `shutdown`, else 1.
pub async fn serve<I, O>(input: I, output: O) -> i32
where
    I: AsyncRead + Unpin + Send + 'static,
    O: AsyncWrite,
{
    let (guarded_in, guarded_out) = tokio::io::duplex(1 << 20);
    tokio::spawn(framing::forward_messages(input, guarded_out));
    let (service, socket) = LspService::build(|client| {
        let backend = Backend::new(client);
        views::jobs::watch(backend.client.clone(), &backend.state);
        backend
    })
    .custom_method("window/workDoneProgress/cancel", Backend::progress_cancel)
    .custom_method(framing::INVALID_REQUEST, Backend::invalid_request)
    .finish();
    let signal = Arc::new(exit::ExitSignal::default());
    let service = exit::ExitWatch::new(service, signal.clone());
    let server = Server::new(guarded_in, output, socket);
    tokio::select! {
        _ = server.serve(service) => {}
        _ = signal.notify.notified() => {}
    }
    signal.code()
}
