//! Long work (model calls, literature queries, runs, builds) runs as jobs: each has a
//! cancellation token and reports events that the LSP layer or the CLI renders.

/// Where a running stage reports how far it got. The LSP layer turns reports into
/// `$/progress`; the CLI prints them.
pub trait Progress: Send + Sync {
    fn report(&self, message: &str, percent: Option<u32>);
}

/// A sink that drops every report (tests, quiet CLI runs).
pub struct NoProgress;

impl Progress for NoProgress {
    fn report(&self, _message: &str, _percent: Option<u32>) {}
}
