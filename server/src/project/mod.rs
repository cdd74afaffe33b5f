//! The research-project model: templates, idea folders and their file formats.
//! Protocol-free: the LSP layer converts `Problem`s to diagnostics.

mod archive;
mod checks;
mod discovery;
pub mod figures;
mod formats;
mod headline;
pub mod idea_entries;
mod idea_folder;
pub mod journal;
mod json_spans;
mod problem;
mod pyrepr;
mod runs;

pub use archive::{
    entry_name, read_ideas_archive, record_novelty, update_archive, update_idea_by_name, ArchiveError,
    EvidencePaper, NoveltyEvidence, NOVELTY_KEY,
};
pub use checks::{
    check_final_info, check_ideas_json, check_prompt_json, check_template, error_span, read_source, Overlay,
    Source,
};
pub use discovery::{
    find_enclosing, idea_folder_name, list_idea_folders, list_templates, parse_idea_folder_name, IdeaFolder,
    ProjectFolder, Template, FOLDER_TIMESTAMP,
};
pub use formats::{
    ideas_to_json, is_valid_idea_name, normalize_idea_name, python_json_dumps, validate_idea, DatasetResult,
    FinalInfo, FormatError, Idea, IdeaIssue, PromptJson, IDEA_FIELDS,
};
pub use headline::{headline, short_number};
pub use idea_folder::{create_idea_folder, default_results_root, initial_notes, IdeaFolderError};
pub use json_spans::{spans, SpanKind, SpanNode};
pub use problem::{Problem, Severity};
pub use pyrepr::{parse_python_json, py_float, py_repr, py_str, PY_INF, PY_NAN, PY_NEG_INF};
pub use runs::{
    attempt_dir, completed_runs, now_rfc3339, read_baseline, read_run_results, ResultsError, RunExit,
    RunOrigin, RunRecord, RunState, TraceFrame, Watcher, ATTEMPTS_DIR, RUN_RECORD_FILE,
};
