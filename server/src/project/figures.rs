//! The idea folder's figures and what each one shows: `.aisci/figures.json`, made by the
//! plot stage from what matplotlib drew when `plot.py` saved each figure (panels, axis
//! labels, series and their values), plus a vision model's critique of it. The notes,
//! the writer (captions), the paper checks and the reviewer read it; a figure it does not
//! know (v1 folders, a PNG made another way) is described by its file name alone.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// Where the catalog lives, relative to the idea folder.
pub const CATALOG_FILE: &str = ".aisci/figures.json";

/// Longest hook log read: it is written by `plot.py`'s process, which is untrusted.
const MAX_LOG_BYTES: u64 = 4 << 20;
/// Longest label kept from the log.
const MAX_LABEL: usize = 200;

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct FigureCatalog {
    pub figures: Vec<Figure>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Figure {
    /// File name in the idea folder (`val_acc.png`).
    pub file: String,
    pub panels: Vec<Panel>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub critique: Option<Critique>,
}

/// One matplotlib axes.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Panel {
    pub title: String,
    pub xlabel: String,
    pub ylabel: String,
    pub legend: Vec<String>,
    pub series: Vec<Series>,
}

/// One line, bar group, scatter or image in a panel, summarised.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Series {
    /// `line`, `bars`, `scatter`, `image`.
    pub kind: String,
    pub label: String,
    pub points: usize,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub first: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub last: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_at_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_at_max: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_min: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub x_max: Option<f64>,
    /// Bar heights, in order (bars only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub values: Vec<f64>,
    /// Bar tick labels, in order (bars only).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub categories: Vec<String>,
}

/// What a vision model said about a figure.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct Critique {
    pub model: String,
    /// Critique rounds this figure went through.
    pub rounds: u32,
    /// The figure is fine as it is.
    pub ok: bool,
    /// What is still wrong with it, one problem per entry.
    pub issues: Vec<String>,
}

/// One line of the hook's log: a figure saved to `path`.
#[derive(Deserialize)]
struct Saved {
    path: String,
    #[serde(default)]
    panels: Vec<Panel>,
}

impl FigureCatalog {
    /// The folder's catalog; empty when there is none or it cannot be read.
    pub fn load(folder: &Path) -> FigureCatalog {
        std::fs::read_to_string(folder.join(CATALOG_FILE))
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or_default()
    }

    /// The figures in `folder` now (its `*.png`, sorted), described by the saved catalog
    /// where it knows them: a figure deleted since is gone, one made another way is listed.
    pub fn for_folder(folder: &Path) -> FigureCatalog {
        let saved = FigureCatalog::load(folder);
        let mut files: Vec<String> = std::fs::read_dir(folder)
            .into_iter()
            .flatten()
            .flatten()
            .filter(|e| e.path().is_file())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .filter(|n| n.to_ascii_lowercase().ends_with(".png"))
            .collect();
        files.sort();
        let figures = files
            .into_iter()
            .map(|file| {
                saved.get(&file).cloned().unwrap_or(Figure {
                    file,
                    ..Figure::default()
                })
            })
            .collect();
        FigureCatalog { figures }
    }

    pub fn save(&self, folder: &Path) -> std::io::Result<()> {
        let path = folder.join(CATALOG_FILE);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)?;
        }
        let text = serde_json::to_string_pretty(self).map_err(std::io::Error::other)?;
        crate::fsutil::write_atomic(&path, text.as_bytes())
    }

    /// The catalog of the figures `files` (in the idea folder `folder`), from the hook log
    /// `log`: the last save of each file wins; files the log does not mention get no panels.
    pub fn from_log(folder: &Path, log: &Path, files: &[String]) -> FigureCatalog {
        let mut saved: Vec<(String, Vec<Panel>)> = Vec::new();
        let text = std::fs::File::open(log)
            .ok()
            .map(|f| {
                use std::io::Read;
                let mut s = String::new();
                let _ = f.take(MAX_LOG_BYTES).read_to_string(&mut s);
                s
            })
            .unwrap_or_default();
        // plot.py's process names files from its working directory, symlinks resolved.
        let folder = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
        for line in text.lines() {
            let Ok(entry) = serde_json::from_str::<Saved>(line) else {
                continue;
            };
            let path = Path::new(&entry.path);
            if path.parent().and_then(|p| std::fs::canonicalize(p).ok()).as_ref() != Some(&folder) {
                continue;
            }
            let Some(name) = path.file_name().map(|n| n.to_string_lossy().into_owned()) else {
                continue;
            };
            saved.retain(|(n, _)| *n != name);
            saved.push((name, entry.panels));
        }
        let figures = files
            .iter()
            .map(|file| Figure {
                file: file.clone(),
                panels: saved
                    .iter()
                    .find(|(n, _)| n == file)
                    .map(|(_, p)| p.iter().map(Panel::capped).collect())
                    .unwrap_or_default(),
                critique: None,
            })
            .collect();
        FigureCatalog { figures }
    }

    pub fn get(&self, file: &str) -> Option<&Figure> {
        self.figures.iter().find(|f| f.file == file)
    }

    pub fn get_mut(&mut self, file: &str) -> Option<&mut Figure> {
        self.figures.iter_mut().find(|f| f.file == file)
    }

    /// Every figure described for a prompt, one paragraph each.
    pub fn describe_all(&self) -> String {
        self.figures
            .iter()
            .map(Figure::describe)
            .collect::<Vec<_>>()
            .join("\n")
    }
}

impl Panel {
    fn capped(&self) -> Panel {
        let cap = |s: &str| s.chars().take(MAX_LABEL).collect::<String>();
        Panel {
            title: cap(&self.title),
            xlabel: cap(&self.xlabel),
            ylabel: cap(&self.ylabel),
            legend: self.legend.iter().take(30).map(|l| cap(l)).collect(),
            series: self
                .series
                .iter()
                .take(30)
                .map(|s| Series {
                    kind: cap(&s.kind),
                    label: cap(&s.label),
                    values: s.values.iter().take(30).copied().collect(),
                    categories: s.categories.iter().take(30).map(|c| cap(c)).collect(),
                    ..s.clone()
                })
                .collect(),
        }
    }
}

/// `0.9517`, `12`, `1.2e-05`: short, but exact to four significant digits.
fn num(v: f64) -> String {
    crate::project::short_number(v)
}

impl Figure {
    /// What the figure shows, as a caption writer needs it: each panel's title and axes,
    /// and each series with its first, last and extreme values.
    pub fn describe(&self) -> String {
        let mut out = format!("{}:", self.file);
        if self.panels.is_empty() {
            out.push_str(" (what it plots was not recorded; read plot.py)");
            return out;
        }
        for (i, p) in self.panels.iter().enumerate() {
            let name = if p.title.is_empty() {
                format!("panel {}", i + 1)
            } else {
                format!("panel {} \"{}\"", i + 1, p.title)
            };
            out.push_str(&format!("\n  {name}"));
            if !p.xlabel.is_empty() || !p.ylabel.is_empty() {
                let or_none = |s: &str| {
                    if s.is_empty() {
                        "(unlabelled)".to_string()
                    } else {
                        format!("\"{s}\"")
                    }
                };
                out.push_str(&format!(", x: {}, y: {}", or_none(&p.xlabel), or_none(&p.ylabel)));
            } else {
                out.push_str(", axes unlabelled");
            }
            if p.series.is_empty() {
                out.push_str("; nothing plotted");
            }
            for s in &p.series {
                out.push_str(&format!("\n    {}", s.describe()));
            }
        }
        out
    }
}

impl Series {
    fn describe(&self) -> String {
        let label = if self.label.is_empty() {
            "unlabelled".to_string()
        } else {
            format!("\"{}\"", self.label)
        };
        match self.kind.as_str() {
            "bars" => {
                let bars: Vec<String> = self
                    .values
                    .iter()
                    .enumerate()
                    .map(|(i, v)| match self.categories.get(i) {
                        Some(c) => format!("{c} {}", num(*v)),
                        None => num(*v),
                    })
                    .collect();
                format!("bars {label}: {}", bars.join(", "))
            }
            "image" => format!("image {}", self.label),
            kind => {
                let mut d = format!("{kind} {label}, {} points", self.points);
                if let (Some(a), Some(b)) = (self.x_min, self.x_max) {
                    d.push_str(&format!(", x {}..{}", num(a), num(b)));
                }
                if let (Some(f), Some(l)) = (self.first, self.last) {
                    d.push_str(&format!(", y first {} last {}", num(f), num(l)));
                }
                if let (Some(lo), Some(hi)) = (self.min, self.max) {
                    let at = |x: Option<f64>| x.map(|x| format!(" at x={}", num(x))).unwrap_or_default();
                    d.push_str(&format!(
                        ", min {}{}, max {}{}",
                        num(lo),
                        at(self.x_at_min),
                        num(hi),
                        at(self.x_at_max)
                    ));
                }
                d
            }
        }
    }
}

/// Figure file names (`*.png`) that `text` mentions but that are not in `existing`.
pub fn phantom_figures(text: &str, existing: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (i, _) in text.match_indices(".png") {
        let start = text[..i]
            .rfind(|c: char| !(c.is_alphanumeric() || "_-.".contains(c)))
            .map(|j| j + 1)
            .unwrap_or(0);
        let name = &text[start..i + 4];
        let end_ok = text[i + 4..]
            .chars()
            .next()
            .is_none_or(|c| !(c.is_alphanumeric() || c == '_'));
        if name.len() > 4 && end_ok && !existing.iter().any(|e| e == name) && !out.iter().any(|o| o == name) {
            out.push(name.to_string());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_log_becomes_a_catalog_of_the_existing_figures() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path();
        let log = root.join("log.jsonl");
        let abs = |n: &str| root.join(n).display().to_string();
        let lines = [
            serde_json::json!({"path": abs("acc.png"), "panels": [{"title": "old", "series": []}]}),
            serde_json::json!({"path": abs("acc.png"), "panels": [{"title": "Validation accuracy",
                "xlabel": "epoch", "ylabel": "accuracy", "legend": ["Baseline"],
                "series": [{"kind": "line", "label": "Baseline", "points": 20, "first": 0.5,
                  "last": 0.9517, "min": 0.5, "max": 0.96, "x_at_min": 1.0, "x_at_max": 18.0,
                  "x_min": 1.0, "x_max": 20.0}]}]}),
            serde_json::json!({"path": abs("sub/elsewhere.png"), "panels": []}),
            serde_json::json!({"path": abs("bars.png"), "panels": [{"series": [{"kind": "bars",
                "label": "", "points": 2, "values": [0.95, 0.97], "categories": ["run_0", "run_1"]}]}]}),
        ];
        let text: String = lines.iter().map(|l| format!("{l}\nnot json\n")).collect();
        std::fs::write(&log, text).unwrap();
        let files = ["acc.png".to_string(), "bars.png".into(), "other.png".into()];
        let cat = FigureCatalog::from_log(root, &log, &files);
        assert_eq!(cat.figures.len(), 3);
        assert_eq!(cat.get("acc.png").unwrap().panels[0].title, "Validation accuracy");
        assert!(cat.get("other.png").unwrap().panels.is_empty());
        let text = cat.describe_all();
        assert!(
            text.contains("acc.png:\n  panel 1 \"Validation accuracy\", x: \"epoch\", y: \"accuracy\"\n    line \"Baseline\", 20 points, x 1..20, y first 0.5 last 0.9517, min 0.5 at x=1, max 0.96 at x=18"),
            "{text}"
        );
        assert!(text.contains("bars unlabelled: run_0 0.95, run_1 0.97"), "{text}");
        assert!(
            text.contains("other.png: (what it plots was not recorded"),
            "{text}"
        );
        cat.save(root).unwrap();
        assert_eq!(FigureCatalog::load(root), cat);
        // Only acc.png and a new one exist now.
        std::fs::write(root.join("acc.png"), b"png").unwrap();
        std::fs::write(root.join("new.png"), b"png").unwrap();
        let now = FigureCatalog::for_folder(root);
        let names: Vec<&str> = now.figures.iter().map(|f| f.file.as_str()).collect();
        assert_eq!(names, ["acc.png", "new.png"]);
        assert_eq!(now.figures[0], cat.figures[0]);
    }

    #[test]
    fn names_of_figures_that_do_not_exist() {
        let existing = ["val_acc.png".to_string()];
        let notes =
            "Figure val_acc.png shows accuracy. summary.png compares runs; see also (loss-curve.png).";
        assert_eq!(
            phantom_figures(notes, &existing),
            ["summary.png", "loss-curve.png"]
        );
        assert!(phantom_figures("val_acc.png and val_acc.png", &existing).is_empty());
        assert!(phantom_figures("a .png file", &existing).is_empty());
    }
}
