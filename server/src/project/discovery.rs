//! Finding templates and idea folders on disk.
//!
//! A template is a folder with `experiment.py` and `prompt.json`. An idea folder is
//! `results/<template>/<YYYYmmdd_HHMMSS>_<Name>/` (a copy of the template, made when
//! an idea is implemented).

use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;

/// A research template folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Template {
    pub root: PathBuf,
}

impl Template {
    /// `dir` as a template, if it has both `experiment.py` and `prompt.json`.
    pub fn open(dir: &Path) -> Option<Template> {
        (dir.join("experiment.py").is_file() && dir.join("prompt.json").is_file()).then(|| Template {
            root: dir.to_path_buf(),
        })
    }

    /// The folder name, which v1 uses as the experiment name (`--experiment`).
    pub fn name(&self) -> String {
        dir_name(&self.root)
    }

    pub fn experiment_py(&self) -> PathBuf {
        self.root.join("experiment.py")
    }
    pub fn plot_py(&self) -> PathBuf {
        self.root.join("plot.py")
    }
    pub fn prompt_json(&self) -> PathBuf {
        self.root.join("prompt.json")
    }
    pub fn seed_ideas_json(&self) -> PathBuf {
        self.root.join("seed_ideas.json")
    }
    pub fn ideas_json(&self) -> PathBuf {
        self.root.join("ideas.json")
    }
    pub fn latex_template(&self) -> PathBuf {
        self.root.join("latex").join("template.tex")
    }
    pub fn baseline_final_info(&self) -> PathBuf {
        self.root.join("run_0").join("final_info.json")
    }
}

/// The folder an idea is implemented in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeaFolder {
    pub root: PathBuf,
    /// The `<template>` part of `results/<template>/...`.
    pub template: String,
    pub timestamp: NaiveDateTime,
    /// The idea's `Name`.
    pub name: String,
}

/// The layout v1 uses for the timestamp in folder names.
pub const FOLDER_TIMESTAMP: &str = "%Y%m%d_%H%M%S";

/// Split `20240802_090035_adaptive_dual_scale_denoising` into its timestamp and name.
pub fn parse_idea_folder_name(name: &str) -> Option<(NaiveDateTime, String)> {
    // The timestamp is exactly 15 ASCII bytes, then `_`, then a non-empty name.
    let ts = name.get(..15)?;
    let rest = name.get(15..)?.strip_prefix('_')?;
    if rest.is_empty() {
        return None;
    }
    let when = NaiveDateTime::parse_from_str(ts, FOLDER_TIMESTAMP).ok()?;
    Some((when, rest.to_string()))
}

/// The folder name for an idea started at `when`.
pub fn idea_folder_name(when: NaiveDateTime, name: &str) -> String {
    format!("{}_{name}", when.format(FOLDER_TIMESTAMP))
}

impl IdeaFolder {
    /// The idea's name of a folder: its `<Name>` when it is an idea folder, else the
    /// folder's own name (a paper folder laid out by hand).
    pub fn idea_name_of(dir: &Path) -> String {
        IdeaFolder::from_path(dir)
            .map(|f| f.name)
            .unwrap_or_else(|| dir.file_name().unwrap_or_default().to_string_lossy().into_owned())
    }

    /// `dir` as an idea folder, judged by its path alone (`results/<t>/<ts>_<Name>`),
    /// so that a half-copied folder is still recognised.
    pub fn from_path(dir: &Path) -> Option<IdeaFolder> {
        let (timestamp, name) = parse_idea_folder_name(dir.file_name()?.to_str()?)?;
        let template_dir = dir.parent()?;
        let results = template_dir.parent()?;
        if results.file_name()?.to_str()? != "results" {
            return None;
        }
        Some(IdeaFolder {
            root: dir.to_path_buf(),
            template: template_dir.file_name()?.to_str()?.to_string(),
            timestamp,
            name,
        })
    }

    /// `run_<i>` of this idea.
    pub fn run_dir(&self, i: u32) -> PathBuf {
        self.root.join(format!("run_{i}"))
    }
}

/// What encloses a file: an idea folder or a template.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ProjectFolder {
    Template(Template),
    Idea(IdeaFolder),
}

impl ProjectFolder {
    pub fn root(&self) -> &Path {
        match self {
            ProjectFolder::Template(t) => &t.root,
            ProjectFolder::Idea(i) => &i.root,
        }
    }
}

/// The innermost template or idea folder containing `path` (a file or a folder;
/// the path need not exist yet). Idea folders are copies of a template, so an idea
/// folder wins over the template test at the same level.
pub fn find_enclosing(path: &Path) -> Option<ProjectFolder> {
    for dir in path.ancestors() {
        if let Some(idea) = IdeaFolder::from_path(dir) {
            return Some(ProjectFolder::Idea(idea));
        }
        if let Some(t) = Template::open(dir) {
            return Some(ProjectFolder::Template(t));
        }
    }
    None
}

/// Templates directly under `dir` (e.g. a `templates/` folder), sorted by name.
pub fn list_templates(dir: &Path) -> std::io::Result<Vec<Template>> {
    let mut out: Vec<Template> = std::fs::read_dir(dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| Template::open(&e.path()))
        .collect();
    out.sort_by(|a, b| a.root.cmp(&b.root));
    Ok(out)
}

/// Idea folders of `results/<template>/`, oldest first.
pub fn list_idea_folders(results_template_dir: &Path) -> std::io::Result<Vec<IdeaFolder>> {
    let mut out: Vec<IdeaFolder> = std::fs::read_dir(results_template_dir)?
        .filter_map(|e| e.ok())
        .filter(|e| e.path().is_dir())
        .filter_map(|e| IdeaFolder::from_path(&e.path()))
        .collect();
    out.sort_by(|a, b| (a.timestamp, &a.name).cmp(&(b.timestamp, &b.name)));
    Ok(out)
}

fn dir_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_folder_names() {
        let (ts, name) = parse_idea_folder_name("20240802_090035_adaptive_dual_scale_denoising").unwrap();
        assert_eq!(name, "adaptive_dual_scale_denoising");
        assert_eq!(
            idea_folder_name(ts, &name),
            "20240802_090035_adaptive_dual_scale_denoising"
        );
        assert!(parse_idea_folder_name("20241302_090035_x").is_none());
        assert!(parse_idea_folder_name("20240802_090035_").is_none());
        assert!(parse_idea_folder_name("notes").is_none());
        assert!(parse_idea_folder_name("2024080é_090035_x").is_none());
    }

    #[test]
    fn finds_enclosing_folders() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path().join("templates/toy");
        std::fs::create_dir_all(t.join("latex")).unwrap();
        std::fs::write(t.join("experiment.py"), "").unwrap();
        std::fs::write(t.join("prompt.json"), "{}").unwrap();
        let idea = tmp.path().join("results/toy/20240101_120000_my_idea");
        std::fs::create_dir_all(idea.join("run_1")).unwrap();
        std::fs::write(idea.join("experiment.py"), "").unwrap();
        std::fs::write(idea.join("prompt.json"), "{}").unwrap();

        match find_enclosing(&t.join("latex/template.tex")).unwrap() {
            ProjectFolder::Template(found) => assert_eq!(found.name(), "toy"),
            other => panic!("{other:?}"),
        }
        match find_enclosing(&idea.join("run_1/final_info.json")).unwrap() {
            ProjectFolder::Idea(found) => {
                assert_eq!(found.template, "toy");
                assert_eq!(found.name, "my_idea");
                assert_eq!(found.root, idea);
            }
            other => panic!("{other:?}"),
        }
        assert!(find_enclosing(&tmp.path().join("elsewhere/x.py")).is_none());
        assert_eq!(list_templates(&tmp.path().join("templates")).unwrap().len(), 1);
        assert_eq!(
            list_idea_folders(&tmp.path().join("results/toy")).unwrap().len(),
            1
        );
    }
}
