//! tower-lsp 0.20 only stops serving when stdin closes, even after `exit`. This
//! wrapper notices `exit` going through the service and signals the process to end.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};

use tokio::sync::Notify;
use tower::Service;
use tower_lsp::jsonrpc::{Request, Response};

pub struct ExitWatch<S> {
    inner: S,
    exit: Arc<Notify>,
}

impl<S> ExitWatch<S> {
    pub fn new(inner: S, exit: Arc<Notify>) -> Self {
        Self { inner, exit }
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
        let is_exit = req.method() == "exit";
        let fut = self.inner.call(req);
        let exit = self.exit.clone();
        Box::pin(async move {
            let out = fut.await;
            if is_exit {
                exit.notify_one();
            }
            out
        })
    }
}
