//! The run registry: every run aisci launches (editor "Launch run", the experiment
//! loop, a baseline, `aisci run`) is recorded from the moment it is queued, in its
//! `aisci_run.json` (see `project::runs`), rewritten atomically as it gets a slot, starts
//! and ends. On top of the records: the runs this process watches now ([`live`]), their
//! output for an editor ([`output`]), a workspace-wide list ([`listing`]), and the
//! settling of runs an earlier aisci left in flight ([`resume`]).

pub mod attempt;
pub mod checkpoint;
pub mod finish;
pub mod listing;
pub mod live;
pub mod output;
pub mod problems;
pub mod resume;
pub mod tracked;

pub use listing::{clock, list, runs_in, RunView};
pub use live::LiveRun;
pub use output::{OutputChunk, OutputFeed};
pub use resume::{pending, resume_folder, Reattacher, ResumeCtx, Resumed};
pub use tracked::{run_tracked, TrackedEnd};
