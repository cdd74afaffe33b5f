//! Turns at the process's run queue. The library keeps one GPU/CPU slot queue per
//! process, for the latest run settings (`stages::scheduled_runner`), and servers run
//! in-process share it: a test that launches runs through `lsp_client::TestClient` takes
//! a turn here for as long as its runs may be queued. Tests that need the queue to
//! themselves (their own slot count, places in the queue) take an [`exclusive`] turn;
//! the others a [`shared`] one, and run beside each other as they did in their own test
//! binaries.

use tokio::sync::{RwLock, RwLockReadGuard, RwLockWriteGuard};

static QUEUE: RwLock<()> = RwLock::const_new(());

/// The queue to this test alone (until the guard is dropped).
pub async fn exclusive() -> RwLockWriteGuard<'static, ()> {
    QUEUE.write().await
}

/// The queue beside other `shared` holders, never beside an `exclusive` one.
pub async fn shared() -> RwLockReadGuard<'static, ()> {
    QUEUE.read().await
}
