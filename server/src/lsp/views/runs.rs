//! Runs in the editor: run-state code lenses on any experiment.py, the workspace's run
//! list (`aisci.listRuns`), watching again at startup the runs an earlier aisci left
//! running, and lenses refreshed as runs change state.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Weak};
use std::time::Duration;

use serde_json::{json, Value};

use crate::lsp::backend::Backend;
use crate::lsp::state::State;
use crate::project::{headline, read_baseline, RunRecord, RunState};
use crate::runs::{self, clock, RunView};

/// Ended runs of a template (or any folder that is not an idea folder) shown as lenses.
const ENDED_LENSES: usize = 3;

/// "run_3 ⏳ running 0:42 (GPU 1)", "run_3 ⏸ queued (2 ahead)", or the headline of an ended run.
pub fn title(v: &RunView, baseline: Option<&Value>) -> String {
    let name = format!("run_{}", v.run);
    match v.state {
        RunState::Running => {
            let mut t = format!("{name} ⏳ running {}", clock(v.elapsed_secs));
            match (&v.place, v.watched) {
                (Some(p), true) => t.push_str(&format!(" ({p})")),
                (Some(p), false) => t.push_str(&format!(" ({p}, not watched)")),
                (None, false) => t.push_str(" (not watched)"),
                (None, true) => {}
            }
            t
        }
        RunState::Queued => match (&v.held_by, v.ahead) {
            (Some(h), _) => format!("{name} ⏸ queued ({h})"),
            (None, Some(n)) => format!("{name} ⏸ queued ({n} ahead)"),
            (None, None) => format!("{name} ⏸ queued"),
        },
        RunState::Failed | RunState::Lost => format!(
            "{name} ✗ {}: {}",
            v.state.as_str(),
            v.error.as_deref().unwrap_or("no exit status")
        ),
        RunState::Done => match RunRecord::load(v.record.parent().unwrap_or(Path::new(""))) {
            Some(r) => headline(&r, baseline),
            None => format!("{name} ended"),
        },
    }
}

/// The run lenses of the experiment.py in `folder`: (title, file it opens). An idea
/// folder shows its completed runs; any other folder its last few ended runs; both show
/// the runs queued or running.
pub fn lens_items(folder: &Path, idea_folder: bool) -> Vec<(String, PathBuf)> {
    let views = runs::runs_in(folder);
    let baseline = read_baseline(folder)
        .ok()
        .map(|b| Value::Object(b.means_by_dataset()));
    let main_run = |v: &RunView| v.record.starts_with(folder.join(format!("run_{}", v.run)));
    let ended: Vec<&RunView> = views
        .iter()
        .filter(|v| !v.state.in_flight() && main_run(v))
        .filter(|v| !idea_folder || v.completed)
        .collect();
    let ended = if idea_folder {
        ended
    } else {
        ended[ended.len().saturating_sub(ENDED_LENSES)..].to_vec()
    };
    let mut items: Vec<(String, PathBuf)> = ended
        .into_iter()
        .map(|v| {
            let open = if v.completed {
                folder.join(format!("run_{}/final_info.json", v.run))
            } else {
                v.stderr.clone()
            };
            (title(v, baseline.as_ref()), open)
        })
        .collect();
    items.extend(
        views
            .iter()
            .filter(|v| v.state.in_flight())
            .map(|v| (title(v, None), v.stdout.clone())),
    );
    items
}

/// `aisci.listRuns`: every run under `folders` (the workspace folders when empty), as JSON.
pub fn list_json(folders: &[PathBuf]) -> Value {
    let views = runs::list(folders);
    let entries: Vec<Value> = views
        .iter()
        .map(|v| {
            let mut e = serde_json::to_value(v).unwrap_or(Value::Null);
            let place = v.place.as_deref().map(|p| format!(" [{p}]")).unwrap_or_default();
            e["title"] = json!(format!("{}{place}", title(v, None)));
            e["elapsed"] = json!(clock(v.elapsed_secs));
            e
        })
        .collect();
    json!({ "runs": entries })
}

/// Asks the client to refresh its code lenses whenever a watched run changes state
/// (queued, got a slot, ended), at most every 200 ms.
pub fn refresh_lenses_on_changes(backend: &Backend) {
    let weak: Weak<State> = Arc::downgrade(&backend.state);
    let client = backend.client.clone();
    let mut changes = runs::live::changes();
    tokio::spawn(async move {
        while changes.changed().await.is_ok() {
            tokio::time::sleep(Duration::from_millis(200)).await;
            changes.mark_unchanged();
            let Some(state) = weak.upgrade() else { return };
            let b = Backend {
                client: client.clone(),
                state,
            };
            b.refresh_lenses().await;
        }
    });
}
