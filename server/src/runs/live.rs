//! The runs this process watches right now (queued, running, re-attached): their state
//! as it changes, faster than the records on disk, and their output fanned out to
//! whoever subscribed (the editor). Process-wide, since every stage of the process
//! shares one run queue.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, LazyLock, Mutex, Weak};
use std::time::SystemTime;

use super::output::OutputFeed;
use crate::project::RunState;
use crate::runner::Stream;

/// A watched run.
#[derive(Debug, Clone, PartialEq)]
pub struct LiveRun {
    /// The folder it runs in.
    pub folder: PathBuf,
    pub run: u32,
    pub attempt: u32,
    /// Queued or Running.
    pub state: RunState,
    /// Runs queued before it.
    pub ahead: Option<usize>,
    /// The GPU it waits for and who holds it (another aisci process).
    pub held_by: Option<String>,
    /// Its slot's `CUDA_VISIBLE_DEVICES` (`""`: CPU).
    pub gpu: Option<String>,
    pub job_id: Option<String>,
    pub pid: Option<i32>,
    pub queued_at: SystemTime,
    pub running_since: Option<SystemTime>,
    /// Watched again after an aisci restart.
    pub reattached: bool,
}

impl LiveRun {
    pub fn new(folder: &Path, run: u32, attempt: u32) -> Self {
        Self {
            folder: folder.to_path_buf(),
            run,
            attempt,
            state: RunState::Queued,
            ahead: None,
            held_by: None,
            gpu: None,
            job_id: None,
            pid: None,
            queued_at: SystemTime::now(),
            running_since: None,
            reattached: false,
        }
    }
}

type Key = (PathBuf, u32);

struct Registry {
    runs: Mutex<BTreeMap<Key, LiveRun>>,
    feeds: Mutex<Vec<Weak<OutputFeed>>>,
    changed: tokio::sync::watch::Sender<u64>,
}

static REGISTRY: LazyLock<Registry> = LazyLock::new(|| Registry {
    runs: Mutex::new(BTreeMap::new()),
    feeds: Mutex::new(Vec::new()),
    changed: tokio::sync::watch::channel(0).0,
});

fn runs() -> std::sync::MutexGuard<'static, BTreeMap<Key, LiveRun>> {
    REGISTRY.runs.lock().unwrap_or_else(|p| p.into_inner())
}

fn bump() {
    REGISTRY.changed.send_modify(|n| *n += 1);
}

/// Held while a run is watched; dropping it (however the watcher ends) forgets the run.
#[must_use = "the run is forgotten when the guard is dropped"]
pub struct LiveGuard {
    key: Key,
}

impl Drop for LiveGuard {
    fn drop(&mut self) {
        runs().remove(&self.key);
        bump();
    }
}

/// Starts watching `run`. A run already watched (by another task) is replaced.
pub fn begin(run: LiveRun) -> LiveGuard {
    let key = (run.folder.clone(), run.run);
    runs().insert(key.clone(), run);
    bump();
    LiveGuard { key }
}

/// Changes a watched run (nothing if it is not watched).
pub fn update(folder: &Path, run: u32, f: impl FnOnce(&mut LiveRun)) {
    let changed = match runs().get_mut(&(folder.to_path_buf(), run)) {
        Some(r) => {
            f(r);
            true
        }
        None => false,
    };
    if changed {
        bump();
    }
}

pub fn get(folder: &Path, run: u32) -> Option<LiveRun> {
    runs().get(&(folder.to_path_buf(), run)).cloned()
}

/// The watched runs of one folder, by run number.
pub fn in_folder(folder: &Path) -> Vec<LiveRun> {
    runs()
        .range((folder.to_path_buf(), 0)..=(folder.to_path_buf(), u32::MAX))
        .map(|(_, r)| r.clone())
        .collect()
}

pub fn all() -> Vec<LiveRun> {
    runs().values().cloned().collect()
}

/// Ticks at every change of a watched run (started, queued, got a slot, ended).
pub fn changes() -> tokio::sync::watch::Receiver<u64> {
    REGISTRY.changed.subscribe()
}

/// A feed that receives the output of every watched run until it is dropped.
pub fn subscribe(max_bytes: usize) -> Arc<OutputFeed> {
    let feed = Arc::new(OutputFeed::new(max_bytes));
    let mut feeds = REGISTRY.feeds.lock().unwrap_or_else(|p| p.into_inner());
    feeds.retain(|w| w.strong_count() > 0);
    feeds.push(Arc::downgrade(&feed));
    feed
}

/// Output of a watched run, to every feed.
pub fn output(folder: &Path, run: u32, stream: Stream, text: &str) {
    let feeds: Vec<Arc<OutputFeed>> = REGISTRY
        .feeds
        .lock()
        .unwrap_or_else(|p| p.into_inner())
        .iter()
        .filter_map(Weak::upgrade)
        .collect();
    for f in feeds {
        f.push(folder, run, stream, text);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn guard_forgets_and_feeds_fan_out() {
        let folder = Path::new("/live-test/a");
        let mut changes = changes();
        let g = begin(LiveRun::new(folder, 4, 1));
        assert!(changes.has_changed().unwrap());
        changes.mark_unchanged();
        update(folder, 4, |r| {
            r.state = RunState::Running;
            r.gpu = Some("1".into());
        });
        assert!(changes.has_changed().unwrap());
        assert_eq!(in_folder(folder)[0].gpu.as_deref(), Some("1"));
        assert!(in_folder(Path::new("/live-test/b")).is_empty());

        let f1 = subscribe(100);
        let f2 = subscribe(100);
        output(folder, 4, Stream::Stdout, "hi");
        assert_eq!(f1.drain()[0].text, "hi");
        drop(f2);
        output(folder, 4, Stream::Stdout, "again");
        assert_eq!(f1.drain()[0].text, "again");
        drop(g);
        assert!(get(folder, 4).is_none());
    }
}
