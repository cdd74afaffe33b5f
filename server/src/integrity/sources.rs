//! What the runs measured, each number with where it comes from: the run, its path in
//! `final_info.json` (dataset, `means`, metric) and what kind of statistic it is (a mean
//! over seeds, a standard error, one seed's value), plus the run titles `notes.txt`
//! gives and the machine facts of `env.json`.

use std::path::{Path, PathBuf};

use serde_json::Value;

/// What kind of statistic a number is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stat {
    /// A mean over seeds (`means`, `*_mean`).
    Mean,
    StdErr,
    /// One seed's value (an element of a per-seed list).
    Seed(usize),
    /// A number with nothing saying what it aggregates.
    Value,
}

/// One number a run produced.
#[derive(Debug, Clone, PartialEq)]
pub struct Source {
    /// `run_3`.
    pub run: String,
    pub file: PathBuf,
    /// Keys from the top of `final_info.json` (array positions as their index).
    pub path: Vec<String>,
    pub value: f64,
    pub stat: Stat,
}

/// Words of a metric name that say how it aggregates, not what it measures.
const STAT_WORDS: &[&str] = &[
    "mean", "means", "stderr", "stderrs", "std", "avg", "final", "dict", "info",
];

impl Source {
    /// The metric: the last key that is not an array position.
    pub fn metric(&self) -> &str {
        self.path
            .iter()
            .rev()
            .find(|k| k.parse::<usize>().is_err())
            .map(String::as_str)
            .unwrap_or("")
    }

    /// The dataset: the first key, where the file is keyed by dataset (v1's layout).
    pub fn dataset(&self) -> Option<&str> {
        (self.path.len() >= 3 || (self.path.len() == 2 && self.stat != Stat::Value))
            .then(|| self.path[0].as_str())
            .filter(|k| !STAT_WORDS.contains(&k.to_lowercase().as_str()))
    }

    /// The same quantity in another run has this key (run left out).
    pub fn series(&self) -> String {
        self.path.join("/")
    }

    /// "run_1 blobs final_val_acc_mean" (and the seed for one seed's value).
    pub fn describe(&self) -> String {
        let mut out = format!("{} ", self.run);
        if let Some(d) = self.dataset() {
            out.push_str(d);
            out.push(' ');
        }
        out.push_str(self.metric());
        if let Stat::Seed(i) = self.stat {
            out.push_str(&format!(" (seed {i})"));
        }
        out
    }
}

/// The runs of an idea folder.
#[derive(Debug, Clone, Default)]
pub struct RunData {
    pub sources: Vec<Source>,
    /// `run_0`, `run_1`, … in order.
    pub runs: Vec<String>,
    /// Top-level keys that are datasets.
    pub datasets: Vec<String>,
    /// `(run_1, "Dual-scale processing with fixed weighting")` from `notes.txt`.
    pub titles: Vec<(String, String)>,
    /// Each run's `env.json`, where one was written.
    pub env: Vec<(String, Value)>,
    /// Numeric literals of `experiment.py` with their line (1-based): hyperparameters a
    /// paper may state.
    pub code: Vec<(f64, usize)>,
    pub code_file: Option<PathBuf>,
    /// The plot stage's figure catalog, where aisci's plot stage made one.
    pub figures: Option<crate::project::figures::FigureCatalog>,
}

/// Run folders `run_<i>` under `folder`, in order.
fn run_dirs(folder: &Path) -> Vec<(usize, PathBuf)> {
    let mut out: Vec<(usize, PathBuf)> = std::fs::read_dir(folder)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let name = e.file_name().to_string_lossy().to_string();
            let n = name.strip_prefix("run_")?.parse().ok()?;
            Some((n, e.path()))
        })
        .collect();
    out.sort();
    out
}

/// What the loaded files were: each path with its modification time and size.
type Stamp = Vec<(PathBuf, Option<std::time::SystemTime>, u64)>;

/// The files `RunData::load` reads, as they are now.
fn stamp(folder: &Path) -> Stamp {
    let mut files: Vec<PathBuf> = vec![
        folder.join("notes.txt"),
        folder.join("experiment.py"),
        folder.join(crate::project::figures::CATALOG_FILE),
    ];
    for (_, dir) in run_dirs(folder) {
        files.push(dir.join("final_info.json"));
        files.push(dir.join(crate::runner::facts::ENV_FILE));
    }
    files
        .into_iter()
        .map(|f| {
            let meta = std::fs::metadata(&f).ok();
            let modified = meta.as_ref().and_then(|m| m.modified().ok());
            let len = meta.map(|m| m.len()).unwrap_or(0);
            (f, modified, len)
        })
        .collect()
}

impl RunData {
    /// [`RunData::load`], read again only when one of its files changed: the editor checks
    /// the paper on every keystroke and hover, and the runs rarely change meanwhile.
    pub fn load_cached(folder: &Path) -> std::sync::Arc<RunData> {
        type Cache = std::collections::HashMap<PathBuf, (Stamp, std::sync::Arc<RunData>)>;
        static CACHE: std::sync::Mutex<Option<Cache>> = std::sync::Mutex::new(None);
        let now = stamp(folder);
        if let Some((was, data)) = CACHE
            .lock()
            .unwrap()
            .get_or_insert_with(Default::default)
            .get(folder)
        {
            if *was == now {
                return data.clone();
            }
        }
        let data = std::sync::Arc::new(RunData::load(folder));
        CACHE
            .lock()
            .unwrap()
            .get_or_insert_with(Default::default)
            .insert(folder.to_path_buf(), (now, data.clone()));
        data
    }

    pub fn load(folder: &Path) -> RunData {
        let mut data = RunData::default();
        for (n, dir) in run_dirs(folder) {
            let run = format!("run_{n}");
            let file = dir.join("final_info.json");
            let Some(v) = std::fs::read_to_string(&file)
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            else {
                continue;
            };
            data.add_final_info(&run, &file, &v);
            if let Some(env) = std::fs::read_to_string(dir.join(crate::runner::facts::ENV_FILE))
                .ok()
                .and_then(|t| serde_json::from_str::<Value>(&t).ok())
            {
                data.env.push((run.clone(), env));
            }
            data.runs.push(run);
        }
        if let Ok(notes) = std::fs::read_to_string(folder.join("notes.txt")) {
            data.titles = run_titles(&notes);
        }
        let code = folder.join("experiment.py");
        if let Ok(text) = std::fs::read_to_string(&code) {
            data.code = code_numbers(&text);
            data.code_file = Some(code);
        }
        if folder.join(crate::project::figures::CATALOG_FILE).is_file() {
            data.figures = Some(crate::project::figures::FigureCatalog::load(folder));
        }
        data
    }

    /// Adds the numbers of one run's `final_info.json`.
    pub fn add_final_info(&mut self, run: &str, file: &Path, v: &Value) {
        if let Some(o) = v.as_object() {
            for (k, d) in o {
                let keyed = d.as_object().is_some_and(|m| m.values().any(Value::is_object));
                if keyed && !self.datasets.contains(k) {
                    self.datasets.push(k.clone());
                }
            }
        }
        let mut path = Vec::new();
        walk(v, &mut path, &mut |path, value, seed| {
            self.sources.push(Source {
                run: run.to_string(),
                file: file.to_path_buf(),
                path: path.to_vec(),
                value,
                stat: stat_of(path, seed),
            });
        });
    }
}

/// Called with each number's path, value and seed position (in a per-seed list).
type Visit<'a> = dyn FnMut(&[String], f64, Option<usize>) + 'a;

fn walk(v: &Value, path: &mut Vec<String>, out: &mut Visit) {
    match v {
        Value::Number(n) => {
            if let Some(x) = n.as_f64().filter(|x| x.is_finite()) {
                out(path, x, None);
            }
        }
        Value::Array(a) => {
            for (i, e) in a.iter().enumerate() {
                path.push(i.to_string());
                match e.as_f64() {
                    Some(x) if x.is_finite() => out(path, x, Some(i)),
                    _ => walk(e, path, out),
                }
                path.pop();
            }
        }
        Value::Object(o) => {
            for (k, e) in o {
                path.push(k.clone());
                walk(e, path, out);
                path.pop();
            }
        }
        _ => {}
    }
}

fn stat_of(path: &[String], seed: Option<usize>) -> Stat {
    if let Some(i) = seed {
        return Stat::Seed(i);
    }
    let said = |w: &str| {
        path.iter().any(|k| {
            let k = k.to_lowercase();
            k == w || k == format!("{w}s") || k.ends_with(&format!("_{w}")) || k.starts_with(&format!("{w}_"))
        })
    };
    if said("stderr") || said("std") {
        Stat::StdErr
    } else if said("mean") || said("avg") {
        Stat::Mean
    } else {
        Stat::Value
    }
}

/// `Run 1: <title>` lines of `notes.txt` (v1 writes `## Run 1: …` or `Run 1: …`).
pub fn run_titles(notes: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for line in notes.lines() {
        let l = line.trim_start_matches(|c: char| c == '#' || c == '*' || c.is_whitespace());
        let Some(rest) = l.strip_prefix("Run ").or_else(|| l.strip_prefix("run ")) else {
            continue;
        };
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        let Some(title) = rest[digits.len()..].trim_start().strip_prefix(':') else {
            continue;
        };
        let title = title.trim().trim_matches('*').trim();
        if !digits.is_empty() && !title.is_empty() {
            let run = format!("run_{digits}");
            if !out.iter().any(|(r, _)| *r == run) {
                out.push((run, title.to_string()));
            }
        }
    }
    out
}

/// Numeric literals with a decimal point or exponent in Python code, with their line:
/// learning rates, momenta, dropout, the constants a method section states.
pub fn code_numbers(code: &str) -> Vec<(f64, usize)> {
    let mut out = Vec::new();
    for (i, line) in code.lines().enumerate() {
        let line = line.split('#').next().unwrap_or("");
        for word in line.split(|c: char| !(c.is_ascii_alphanumeric() || c == '.' || c == '-' || c == '+')) {
            let w = word.trim_start_matches(['+', '-']);
            let first = w.chars().next();
            if !first.is_some_and(|c| c.is_ascii_digit() || c == '.') {
                continue;
            }
            if let Ok(x) = w.parse::<f64>() {
                if x.is_finite() {
                    out.push((x, i + 1));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn v1_final_info_becomes_sources_with_their_statistics() {
        let v: Value = serde_json::from_str(
            r#"{"blobs": {"means": {"final_val_acc_mean": 0.9517}, "stderrs": {"final_val_acc_stderr": 0.009},
                "final_info_dict": {"final_val_acc": [0.97, 0.945, 0.94]}}}"#,
        )
        .unwrap();
        let mut d = RunData::default();
        d.add_final_info("run_1", Path::new("run_1/final_info.json"), &v);
        assert_eq!(d.datasets, ["blobs"]);
        let stats: Vec<(Stat, f64)> = d.sources.iter().map(|s| (s.stat, s.value)).collect();
        assert_eq!(
            stats,
            [
                (Stat::Mean, 0.9517),
                (Stat::StdErr, 0.009),
                (Stat::Seed(0), 0.97),
                (Stat::Seed(1), 0.945),
                (Stat::Seed(2), 0.94)
            ]
        );
        assert_eq!(d.sources[2].metric(), "final_val_acc");
        assert_eq!(d.sources[2].dataset(), Some("blobs"));
        assert_eq!(d.sources[2].describe(), "run_1 blobs final_val_acc (seed 0)");
    }

    #[test]
    fn run_titles_and_code_constants() {
        let notes =
            "# Title: X\n## Run 0: Baseline\nResults: ...\nRun 1: Fixed weighting\n**Run 2: Adaptive**\n";
        assert_eq!(
            run_titles(notes),
            [
                ("run_0".to_string(), "Baseline".to_string()),
                ("run_1".into(), "Fixed weighting".into()),
                ("run_2".into(), "Adaptive".into())
            ]
        );
        let code = "lr = 3e-4  # 0.5 in a comment\nmomentum=0.9\nlayers = [64, 64]\n";
        let nums = code_numbers(code);
        assert!(nums.contains(&(3e-4, 1)) && nums.contains(&(0.9, 2)) && nums.contains(&(64.0, 3)));
        assert!(!nums.iter().any(|(x, _)| *x == 0.5));
    }
}
