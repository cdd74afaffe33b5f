//! Where things are in the repository, and copies of its templates for tests to change:
//! the one copy of `copy_dir` and of the paths that tests used to build from
//! `CARGO_MANIFEST_DIR` (which is `server/`, the package that owns the `aisci` binary).

use std::path::{Path, PathBuf};

/// The repository's root folder.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("the aisci package lies in a folder of the repository")
        .to_path_buf()
}

/// `tests/fixtures/` at the repository root.
pub fn fixtures() -> PathBuf {
    repo_root().join("tests/fixtures")
}

/// `templates/` at the repository root.
pub fn templates() -> PathBuf {
    repo_root().join("templates")
}

/// The demo template, `templates/tiny_mlp` (the original: copy it before changing anything).
pub fn tiny_mlp() -> PathBuf {
    templates().join("tiny_mlp")
}

/// Copies the folder `from` to `to`, recursively (`to` and its parents are created).
pub fn copy_dir(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for e in std::fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        let target = to.join(e.file_name());
        if e.file_type().unwrap().is_dir() {
            copy_dir(&e.path(), &target);
        } else {
            std::fs::copy(e.path(), target).unwrap();
        }
    }
}

/// A copy of the demo template `templates/tiny_mlp` at `to`.
pub fn copy_tiny_mlp(to: &Path) {
    copy_dir(&tiny_mlp(), to);
}

/// [`copy_tiny_mlp`] to `to`, without any `ideas.json`; returns `to`.
pub fn tiny_mlp_without_ideas(to: &Path) -> PathBuf {
    copy_tiny_mlp(to);
    let _ = std::fs::remove_file(to.join("ideas.json"));
    to.to_path_buf()
}

/// [`copy_tiny_mlp`] to `to` with ideas.json = its seed ideas, unchecked; returns `to`.
pub fn tiny_mlp_with_seed_ideas(to: &Path) -> PathBuf {
    copy_tiny_mlp(to);
    std::fs::copy(to.join("seed_ideas.json"), to.join("ideas.json")).unwrap();
    to.to_path_buf()
}
