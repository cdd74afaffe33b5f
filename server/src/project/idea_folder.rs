//! Creating the folder an idea is implemented in (v1's `do_idea` preamble): a copy
//! of the template at `<results root>/<template>/<YYYYmmdd_HHMMSS>_<Name>/` with a
//! fresh `notes.txt` that starts with the baseline results.

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use serde_json::Value;

use super::discovery::{idea_folder_name, IdeaFolder, Template};
use super::formats::{is_valid_idea_name, Idea};
use super::pyrepr::py_repr;
use super::runs::{read_baseline, ResultsError};

/// Entries of a template that are not copied: aisci's own state, results of
/// earlier ideas (when the results root is inside the template), version control
/// and Python caches. v1 copies everything (`copytree`).
const SKIPPED: [&str; 4] = [".aisci", "results", ".git", "__pycache__"];

#[derive(Debug, thiserror::Error)]
pub enum IdeaFolderError {
    #[error(
        "the idea name {0:?} cannot be used as a folder name: only lowercase letters, digits and underscores"
    )]
    BadName(String),
    #[error("{} already exists", .0.display())]
    Exists(PathBuf),
    #[error("the template has no usable baseline ({0}); run the baseline first: python experiment.py --out_dir=run_0 in the template")]
    NoBaseline(ResultsError),
    #[error("{}: {source}", path.display())]
    Io { path: PathBuf, source: std::io::Error },
}

/// Where idea folders go by default: `results/` beside the folder holding the
/// template — v1's layout (`templates/<t>` and `results/<t>/...` under one root).
/// A template that is not in a folder of its own gets `results/` beside it.
pub fn default_results_root(template: &Template) -> PathBuf {
    let parent = template.root.parent().unwrap_or(Path::new("."));
    match parent.parent() {
        Some(grand) if parent.file_name().is_some_and(|n| n == "templates") => grand.join("results"),
        _ => parent.join("results"),
    }
}

/// `notes.txt` as v1 writes it before the first run; `baseline` is `{dataset: means}`.
pub fn initial_notes(idea: &Idea, baseline: &Value) -> String {
    format!(
        "# Title: {}\n# Experiment description: {}\n## Run 0: Baseline\nResults: {}\nDescription: Baseline results.\n",
        idea.title,
        idea.experiment,
        py_repr(baseline)
    )
}

/// Copy `template` to `<results_root>/<template name>/<now>_<Name>/` and write its
/// `notes.txt`. Refuses when the folder exists or the template has no baseline
/// (`run_0/final_info.json`, needed for the notes and every prompt). Discovery
/// (`IdeaFolder::from_path`) recognises the folder when `results_root` is named
/// `results`. On a failed copy the partial folder is removed.
pub fn create_idea_folder(
    template: &Template,
    results_root: &Path,
    idea: &Idea,
    now: NaiveDateTime,
) -> Result<IdeaFolder, IdeaFolderError> {
    if !is_valid_idea_name(&idea.name) {
        return Err(IdeaFolderError::BadName(idea.name.clone()));
    }
    let baseline = read_baseline(&template.root).map_err(IdeaFolderError::NoBaseline)?;
    let parent = results_root.join(template.name());
    let root = parent.join(idea_folder_name(now, &idea.name));
    let io = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdeaFolderError::Io { path, source }
    };
    std::fs::create_dir_all(&parent).map_err(io(&parent))?;
    // create_dir (not _all) fails if the folder exists, also when two start at once.
    match std::fs::create_dir(&root) {
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Err(IdeaFolderError::Exists(root)),
        other => other.map_err(io(&root))?,
    }
    let filled = copy_tree(&template.root, &root, &root).and_then(|_| {
        let notes = root.join("notes.txt");
        std::fs::write(
            &notes,
            initial_notes(idea, &Value::Object(baseline.means_by_dataset())),
        )
        .map_err(io(&notes))
    });
    if let Err(e) = filled {
        let _ = std::fs::remove_dir_all(&root);
        return Err(e);
    }
    Ok(IdeaFolder {
        root,
        template: template.name(),
        timestamp: now,
        name: idea.name.clone(),
    })
}

/// Copy the contents of `from` into the existing folder `to`. Symlinked files are
/// copied as files; symlinked folders (typically large datasets) stay links, to
/// their absolute target so that the deeper folder still reaches them. `dest_root`
/// is never copied into itself (a results root inside the template).
fn copy_tree(from: &Path, to: &Path, dest_root: &Path) -> Result<(), IdeaFolderError> {
    let err = |path: &Path| {
        let path = path.to_path_buf();
        move |source| IdeaFolderError::Io { path, source }
    };
    for entry in std::fs::read_dir(from).map_err(err(from))? {
        let entry = entry.map_err(err(from))?;
        let src = entry.path();
        let name = entry.file_name();
        if SKIPPED.iter().any(|s| name == *s) || src == dest_root {
            continue;
        }
        let dst = to.join(&name);
        let ty = entry.file_type().map_err(err(&src))?;
        if ty.is_symlink() {
            let target = std::fs::canonicalize(&src).map_err(err(&src))?;
            if target.is_dir() {
                #[cfg(unix)]
                std::os::unix::fs::symlink(&target, &dst).map_err(err(&dst))?;
                #[cfg(not(unix))]
                copy_dir(&target, &dst, dest_root)?;
            } else {
                std::fs::copy(&target, &dst).map_err(err(&dst))?;
            }
        } else if ty.is_dir() {
            copy_dir(&src, &dst, dest_root)?;
        } else {
            std::fs::copy(&src, &dst).map_err(err(&dst))?;
        }
    }
    Ok(())
}

fn copy_dir(from: &Path, to: &Path, dest_root: &Path) -> Result<(), IdeaFolderError> {
    std::fs::create_dir(to).map_err(|source| IdeaFolderError::Io {
        path: to.to_path_buf(),
        source,
    })?;
    copy_tree(from, to, dest_root)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn idea() -> Idea {
        Idea::from_value(
            &json!({"Name": "wide_mlp", "Title": "Wider MLPs", "Experiment": "Double the width.",
            "Interestingness": 5, "Feasibility": 9, "Novelty": 3}),
        )
        .unwrap()
    }

    #[test]
    fn creates_a_v1_idea_folder() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("templates/toy");
        std::fs::create_dir_all(t.join("run_0")).unwrap();
        std::fs::create_dir_all(t.join(".aisci")).unwrap();
        std::fs::create_dir_all(t.join("latex")).unwrap();
        std::fs::write(t.join("experiment.py"), "print(1)\n").unwrap();
        std::fs::write(t.join("prompt.json"), "{}").unwrap();
        std::fs::write(t.join("latex/template.tex"), "x").unwrap();
        std::fs::write(
            t.join("run_0/final_info.json"),
            r#"{"circle": {"means": {"loss": 0.5, "t": 1e-05, "n": 3}, "stderrs": {}}}"#,
        )
        .unwrap();
        let template = Template::open(&t).unwrap();
        let root = default_results_root(&template);
        assert_eq!(root, tmp.path().join("results"));
        let now = NaiveDateTime::parse_from_str("20240802_090035", "%Y%m%d_%H%M%S").unwrap();
        let folder = create_idea_folder(&template, &root, &idea(), now).unwrap();
        assert_eq!(
            folder.root,
            tmp.path().join("results/toy/20240802_090035_wide_mlp")
        );
        assert_eq!(IdeaFolder::from_path(&folder.root), Some(folder.clone()));
        assert!(folder.root.join("latex/template.tex").is_file());
        assert!(folder.root.join("run_0/final_info.json").is_file());
        assert!(!folder.root.join(".aisci").exists());
        assert_eq!(
            std::fs::read_to_string(folder.root.join("notes.txt")).unwrap(),
            "# Title: Wider MLPs\n# Experiment description: Double the width.\n## Run 0: Baseline\n\
             Results: {'circle': {'loss': 0.5, 't': 1e-05, 'n': 3}}\nDescription: Baseline results.\n"
        );
        assert!(matches!(
            create_idea_folder(&template, &root, &idea(), now),
            Err(IdeaFolderError::Exists(_))
        ));
        std::fs::remove_file(t.join("run_0/final_info.json")).unwrap();
        let later = now + chrono::Duration::seconds(1);
        assert!(matches!(
            create_idea_folder(&template, &root, &idea(), later),
            Err(IdeaFolderError::NoBaseline(_))
        ));
    }
}
