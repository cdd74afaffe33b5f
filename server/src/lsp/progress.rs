//! `$/progress` for a job, as a `jobs::Progress` sink. Reports go through a channel
//! to one forwarding task so they reach the client in order, and the progress is
//! ended when the sink is dropped, however the job ends.

use std::time::Duration;

use tokio::sync::mpsc;
use tower_lsp::lsp_types::{
    notification::Progress as ProgressNotification, request::WorkDoneProgressCreate, NumberOrString,
    ProgressParams, ProgressParamsValue, WorkDoneProgress, WorkDoneProgressBegin,
    WorkDoneProgressCreateParams, WorkDoneProgressEnd, WorkDoneProgressReport,
};
use tower_lsp::Client;

use crate::jobs::{JobId, Progress};

/// How long a client gets to answer a server request before we go on without it.
pub const CLIENT_REPLY_TIMEOUT: Duration = Duration::from_secs(5);

pub fn token_for(job: JobId) -> String {
    format!("aisci-job-{job}")
}

pub fn job_of_token(token: &NumberOrString) -> Option<JobId> {
    match token {
        NumberOrString::String(s) => s.strip_prefix("aisci-job-")?.parse().ok(),
        NumberOrString::Number(_) => None,
    }
}

enum Msg {
    Report(String, Option<u32>),
    End(String),
}

pub struct LspProgress {
    tx: Option<mpsc::UnboundedSender<Msg>>,
    forwarder: Option<tokio::task::JoinHandle<()>>,
}

impl LspProgress {
    /// Creates the token (when the client supports it) and sends `begin`. A client that
    /// does not answer in time gets no progress, and the job runs anyway.
    pub async fn begin(client: &Client, enabled: bool, job: JobId, title: &str) -> Self {
        let token = NumberOrString::String(token_for(job));
        let created = enabled
            && matches!(
                tokio::time::timeout(
                    CLIENT_REPLY_TIMEOUT,
                    client.send_request::<WorkDoneProgressCreate>(WorkDoneProgressCreateParams {
                        token: token.clone()
                    }),
                )
                .await,
                Ok(Ok(()))
            );
        if !created {
            return Self {
                tx: None,
                forwarder: None,
            };
        }
        let (tx, mut rx) = mpsc::unbounded_channel();
        let client = client.clone();
        let begin = WorkDoneProgress::Begin(WorkDoneProgressBegin {
            title: title.to_owned(),
            cancellable: Some(true),
            message: None,
            percentage: Some(0),
        });
        let forwarder = tokio::spawn(async move {
            send(&client, &token, begin).await;
            // A progress that began with a percentage keeps one: VS Code's client drops
            // a report without it, message and all.
            let mut at = 0;
            while let Some(msg) = rx.recv().await {
                let (value, last) = match msg {
                    Msg::Report(message, percentage) => (
                        WorkDoneProgress::Report(WorkDoneProgressReport {
                            cancellable: Some(true),
                            message: Some(message),
                            percentage: {
                                at = percentage.unwrap_or(at);
                                Some(at)
                            },
                        }),
                        false,
                    ),
                    Msg::End(message) => (
                        WorkDoneProgress::End(WorkDoneProgressEnd {
                            message: Some(message),
                        }),
                        true,
                    ),
                };
                send(&client, &token, value).await;
                if last {
                    break;
                }
            }
        });
        Self {
            tx: Some(tx),
            forwarder: Some(forwarder),
        }
    }

    /// Ends the progress with `message` and waits until the client has been sent
    /// everything, so that what the caller says next arrives after the `end`.
    pub async fn finish(mut self, message: String) {
        if let Some(tx) = self.tx.take() {
            let _ = tx.send(Msg::End(message));
        }
        if let Some(f) = self.forwarder.take() {
            let _ = f.await;
        }
    }
}

async fn send(client: &Client, token: &NumberOrString, value: WorkDoneProgress) {
    client
        .send_notification::<ProgressNotification>(ProgressParams {
            token: token.clone(),
            value: ProgressParamsValue::WorkDone(value),
        })
        .await;
}

impl Progress for LspProgress {
    fn report(&self, message: &str, percent: Option<u32>) {
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::Report(message.to_owned(), percent.map(|p| p.min(100))));
        }
    }
}

impl Drop for LspProgress {
    fn drop(&mut self) {
        // Ended without `finish` (a panic unwinding the job): close the progress anyway.
        if let Some(tx) = &self.tx {
            let _ = tx.send(Msg::End("stopped".into()));
        }
    }
}
