//! What a running stage is given by its front end (the CLI, the language server,
//! `aisci launch`): where edits land, one callback for everything it reports, and the
//! cancellation token. What it reports is a closed set of events, so every front end
//! renders the same things and a new event is a compile error in each until handled.

use tokio_util::sync::CancellationToken;

use crate::agent::edit_sink::EditSink;
use crate::jobs::Progress;
use crate::project::RunRecord;
use crate::stages::experiment::agent::ExperimentEvents;

/// Everything a stage tells its front end while it runs.
#[derive(Debug, Clone, PartialEq)]
pub enum StageEvent {
    /// What it is doing now, with how far along it is when known.
    Progress { message: String, percent: Option<u32> },
    /// Something the user should hear at once (a literature engine switched).
    Notice(String),
    /// Something went wrong that the stage worked around.
    Warning(String),
    /// The model's edits were written; paths relative to the stage's folder.
    EditsApplied { files: Vec<String> },
    /// `python experiment.py --out_dir=run_<run>` is about to start.
    RunStarted { run: u32, attempt: u32 },
    /// A run ended (completed or not); its record is saved already.
    RunFinished(Box<RunRecord>),
    /// A node of a tree search changed state (`ended`: done, failed or not run); `line`
    /// says it in one line ("node_3 debug ✓ loss 0.1600 (+83.5% vs baseline)").
    NodeChanged { node: u32, line: String, ended: bool },
}

/// Whoever shows a stage's events (a terminal, an editor job, a launch's log).
pub trait StageEvents: Send + Sync {
    fn event(&self, event: StageEvent);
}

impl<F: Fn(StageEvent) + Send + Sync> StageEvents for F {
    fn event(&self, event: StageEvent) {
        self(event)
    }
}

/// A stage's connection to whoever started it.
#[derive(Clone, Copy)]
pub struct StageHost<'a> {
    pub sink: &'a dyn EditSink,
    pub events: &'a dyn StageEvents,
    pub cancel: &'a CancellationToken,
}

impl<'a> StageHost<'a> {
    pub fn new(sink: &'a dyn EditSink, events: &'a dyn StageEvents, cancel: &'a CancellationToken) -> Self {
        StageHost { sink, events, cancel }
    }

    pub fn emit(&self, event: StageEvent) {
        self.events.event(event)
    }
}

// The agents below report through these traits; the host turns them into events.
impl Progress for StageHost<'_> {
    fn report(&self, message: &str, percent: Option<u32>) {
        self.emit(StageEvent::Progress {
            message: message.to_owned(),
            percent,
        });
    }
}

impl ExperimentEvents for StageHost<'_> {
    fn run_started(&self, run: u32, attempt: u32) {
        self.emit(StageEvent::RunStarted { run, attempt });
    }
    fn run_finished(&self, record: &RunRecord) {
        self.emit(StageEvent::RunFinished(Box::new(record.clone())));
    }
    fn edits_applied(&self, files: &[String]) {
        self.emit(StageEvent::EditsApplied {
            files: files.to_vec(),
        });
    }
    fn node_changed(&self, node: u32, line: &str, ended: bool) {
        self.emit(StageEvent::NodeChanged {
            node,
            line: line.to_owned(),
            ended,
        });
    }
}

/// Literature search whose engine notices ("S2 is rate limiting, switching to
/// OpenAlex") reach the host as soon as a search produced them.
pub struct NoticedSearch<'a> {
    pub lit: &'a crate::literature::Literature,
    pub host: &'a StageHost<'a>,
}

#[async_trait::async_trait]
impl crate::literature::PaperSearch for NoticedSearch<'_> {
    async fn search(
        &self,
        query: &str,
        limit: usize,
        cancel: &CancellationToken,
    ) -> Result<crate::literature::SearchResult, crate::literature::LitError> {
        let out = self.lit.search(query, limit, cancel).await;
        for n in self.lit.notices() {
            self.host.emit(StageEvent::Notice(n.to_string()));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    #[test]
    fn the_agents_reports_become_events() {
        let seen = Mutex::new(Vec::new());
        let events = |e: StageEvent| seen.lock().unwrap().push(e);
        let cancel = CancellationToken::new();
        let host = StageHost::new(&crate::agent::edit_sink::DiskSink, &events, &cancel);
        host.report("Writing: Results", Some(40));
        host.run_started(2, 1);
        host.edits_applied(&["experiment.py".into()]);
        assert_eq!(
            *seen.lock().unwrap(),
            vec![
                StageEvent::Progress {
                    message: "Writing: Results".into(),
                    percent: Some(40)
                },
                StageEvent::RunStarted { run: 2, attempt: 1 },
                StageEvent::EditsApplied {
                    files: vec!["experiment.py".into()]
                },
            ]
        );
    }
}
