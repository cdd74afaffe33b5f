//! Live run output for the editor: `aisci/runOutput` notifications `{folder, run,
//! stream, text, skipped}`, at most one per run and stream every 100 ms and at most
//! 8 KiB each (a flood keeps its beginning and end, with "[… N bytes skipped …]" where
//! the middle was). Sent from its own task: runs never wait for the editor, and the
//! editor's requests never wait for runs.

use std::sync::{Arc, Weak};
use std::time::Duration;

use serde::{Deserialize, Serialize};
use tower_lsp::lsp_types::notification::Notification;
use tower_lsp::Client;

use crate::lsp::state::State;
use crate::runner::Stream;

pub const METHOD: &str = "aisci/runOutput";
/// The most text one notification carries.
pub const MAX_BYTES: usize = 8 * 1024;
/// The least time between two notifications of one run's stream.
pub const EVERY: Duration = Duration::from_millis(100);

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct RunOutputParams {
    pub folder: String,
    pub run: u32,
    pub stream: Stream,
    pub text: String,
    /// Bytes left out of the middle of `text`.
    pub skipped: u64,
}

pub enum RunOutput {}

impl Notification for RunOutput {
    type Params = RunOutputParams;
    const METHOD: &'static str = METHOD;
}

/// Starts forwarding the output of every run this process watches; stops once the
/// server (its state) is gone.
pub fn start(client: Client, state: &Arc<State>) {
    let weak: Weak<State> = Arc::downgrade(state);
    let feed = crate::runs::live::subscribe(MAX_BYTES);
    tokio::spawn(async move {
        loop {
            let _ = tokio::time::timeout(Duration::from_secs(1), feed.ready()).await;
            if weak.upgrade().is_none() {
                return;
            }
            for chunk in feed.drain() {
                let params = RunOutputParams {
                    folder: chunk.folder.display().to_string(),
                    run: chunk.run,
                    stream: chunk.stream,
                    text: chunk.text,
                    skipped: chunk.skipped,
                };
                client.send_notification::<RunOutput>(params).await;
            }
            tokio::time::sleep(EVERY).await;
        }
    });
}
