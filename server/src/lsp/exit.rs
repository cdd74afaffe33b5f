//! A thin tower layer in front of tower-lsp's service:
//! - tower-lsp 0.20 only stops serving when stdin closes, even after `exit`; this
//!   notices `exit` and signals the process to end, with the exit code the spec
//!   asks for (0 after `shutdown`, 1 without);
//! - `"params": null` (sent by some clients for param-less methods such as
//!   `shutdown`) is treated as absent instead of being rejected.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tower::Service;
use tower_lsp::jsonrpc::{Request, Response};

#[derive(Default)]
pub struct ExitSignal {
    pub notify: Notify,
    shutdown_seen: AtomicBool,
}

impl ExitSignal {
    /// The process exit code: 0 when `shutdown` came before the end, 1 otherwise.
    pub fn code(&self) -> i32 {
        if self.shutdown_seen.load(Ordering::SeqCst) {
            0
        } else {
            1
        }
    }
}

pub struct ExitWatch<S> {
    inner: S,
    signal: Arc<ExitSignal>,
}

impl<S> ExitWatch<S> {
    pub fn new(inner: S, signal: Arc<ExitSignal>) -> Self {
        Self { inner, signal }
    }
}

impl<S> Service<Request> for ExitWatch<S>
where
    S: Service<Request, Response = Option<Response>>,
    S::Future: Send + 'static,
{
    type Response = Option<Response>;
    type Error = S::Error;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request) -> Self::Future {
        let req = if req.params().is_some_and(|p| p.is_null()) {
            let (method, id, _) = req.into_parts();
            let b = Request::build(method);
            match id {
                Some(id) => b.id(id).finish(),
                None => b.finish(),
            }
        } else {
            req
        };
        let method = req.method().to_owned();
        if method == "shutdown" {
            self.signal.shutdown_seen.store(true, Ordering::SeqCst);
        }
        let fut = self.inner.call(req);
        let signal = self.signal.clone();
        Box::pin(async move {
            let out = fut.await;
            if method == "exit" {
                signal.notify.notify_one();
            }
            out
        })
    }
}
