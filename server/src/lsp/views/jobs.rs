//! The running jobs and what this session has spent, for status bars and job lists:
//! the `aisci.listJobs` command and the `aisci/status` notification, sent whenever a
//! job starts or ends. Stages record their model calls in the project's ledger
//! (`.aisci/usage.jsonl`) as they end, so a job's end is also when spending changes.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::SystemTime;

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use tower_lsp::lsp_types::notification::Notification;
use tower_lsp::Client;

use crate::jobs::JobInfo;
use crate::lsp::backend::Backend;
use crate::lsp::state::State;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobView {
    pub id: u64,
    pub title: String,
    pub target: String,
    /// RFC 3339.
    pub started_at: String,
    pub elapsed_ms: u64,
    /// The job's latest progress report, if it made one.
    pub message: Option<String>,
    pub percent: Option<u32>,
}

/// `aisci/status` and the result of `aisci.listJobs`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusParams {
    pub jobs: Vec<JobView>,
    /// Model calls recorded since this server started, in the ledgers of the folders
    /// its jobs worked on (a CLI run in one of them meanwhile counts too).
    pub spent_usd: f64,
    pub calls: u64,
    /// When this server started (RFC 3339).
    pub since: String,
}

pub enum Status {}

impl Notification for Status {
    type Params = StatusParams;
    const METHOD: &'static str = "aisci/status";
}

fn view(job: &JobInfo, now: SystemTime) -> JobView {
    let (message, percent) = match &job.progress {
        Some((m, p)) => (Some(m.clone()), *p),
        None => (None, None),
    };
    JobView {
        id: job.id,
        title: job.title.clone(),
        target: job.target.clone(),
        started_at: DateTime::<Utc>::from(job.started).to_rfc3339(),
        elapsed_ms: now.duration_since(job.started).unwrap_or_default().as_millis() as u64,
        message,
        percent,
    }
}

/// Only the ledger fields the sum needs, so a record written by a newer aisci still counts.
#[derive(Deserialize)]
struct LedgerLine {
    at: String,
    cost_usd: f64,
}

/// Calls and dollars recorded in `root`'s ledger at or after `since`. A line that does
/// not parse (a ledger being written by an older aisci, a hand edit) is left out.
fn spent_in(root: &Path, since: DateTime<Utc>) -> (u64, f64) {
    let Ok(text) = std::fs::read_to_string(crate::stages::usage_path(root)) else {
        return (0, 0.0);
    };
    text.lines()
        .filter_map(|l| serde_json::from_str::<LedgerLine>(l).ok())
        .filter(|r| DateTime::parse_from_rfc3339(&r.at).is_ok_and(|at| at >= since))
        .fold((0, 0.0), |(n, usd), r| (n + 1, usd + r.cost_usd))
}

/// The jobs running now and what this session spent (reads the ledgers: call off the
/// async threads).
pub fn status(state: &State) -> StatusParams {
    let now = SystemTime::now();
    let jobs = state.jobs.list().iter().map(|j| view(j, now)).collect();
    let since = state.session.started;
    let (mut calls, mut spent_usd) = (0, 0.0);
    // Targets that are not folders (a paper build's "build:<file>") have no ledger.
    for root in state
        .jobs
        .targets()
        .into_iter()
        .map(PathBuf::from)
        .filter(|p| p.is_dir())
    {
        let (n, usd) = spent_in(&root, since);
        calls += n;
        spent_usd += usd;
    }
    StatusParams {
        jobs,
        spent_usd,
        calls,
        since: since.to_rfc3339(),
    }
}

pub async fn list(backend: &Backend) -> StatusParams {
    let state = backend.state.clone();
    match tokio::task::spawn_blocking(move || status(&state)).await {
        Ok(s) => s,
        // The runtime is shutting down: answer from here rather than not at all.
        Err(_) => status(&backend.state),
    }
}

/// Sends `aisci/status` whenever a job starts or ends, until the server is gone.
/// Starts and ends in quick succession coalesce into one notification of the latest state.
pub fn watch(client: Client, state: &Arc<State>) {
    let weak: Weak<State> = Arc::downgrade(state);
    let mut changes = state.jobs.subscribe();
    tokio::spawn(async move {
        // Ends with an error once the registry (the server's state) is dropped.
        while changes.changed().await.is_ok() {
            let Some(state) = weak.upgrade() else { return };
            let params = match tokio::task::spawn_blocking(move || status(&state)).await {
                Ok(p) => p,
                Err(_) => return,
            };
            client.send_notification::<Status>(params).await;
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_only_this_sessions_parseable_ledger_lines() {
        let dir = tempfile::tempdir().unwrap();
        let ledger = crate::stages::usage_path(dir.path());
        std::fs::create_dir_all(ledger.parent().unwrap()).unwrap();
        std::fs::write(
            &ledger,
            concat!(
                r#"{"at":"2020-01-01T00:00:00+00:00","cost_usd":5.0}"#,
                "\n",
                r#"{"at":"2030-01-01T00:00:00+00:00","cost_usd":0.25,"stage":"ideas"}"#,
                "\n",
                "not json\n",
                r#"{"at":"2030-01-02T01:00:00+01:00","cost_usd":0.5}"#,
                "\n",
            ),
        )
        .unwrap();
        let since = DateTime::parse_from_rfc3339("2025-06-01T00:00:00Z")
            .unwrap()
            .to_utc();
        assert_eq!(spent_in(dir.path(), since), (2, 0.75));
        assert_eq!(spent_in(&dir.path().join("missing"), since), (0, 0.0));
    }
}
