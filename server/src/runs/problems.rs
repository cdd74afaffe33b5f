//! A failed run's traceback as problems on the project's files (the editor shows them as
//! diagnostics).

use std::path::{Path, PathBuf};

use crate::project::{Problem, RunRecord, Severity};

/// A diagnostic from a failed run, kept by line number: the traceback's lines are
/// those of the file that ran, and the span is taken on whatever text is shown
/// when it is published (the buffer may have moved on since).
#[derive(Debug, Clone, PartialEq)]
pub struct RunProblem {
    pub path: PathBuf,
    /// 1-based, as Python prints it.
    pub line: u32,
    pub severity: Severity,
    pub message: String,
}

impl RunProblem {
    pub fn resolve(&self, text: &str) -> Option<Problem> {
        let span = line_span(text, self.line)?;
        Some(Problem {
            path: self.path.clone(),
            span: Some(span),
            severity: self.severity,
            message: self.message.clone(),
            code: None,
        })
    }
}

/// Diagnostics for a failed run: the innermost frame inside the project folder
/// carries the error; the other frames there say they led to it.
pub fn traceback_problems(root: &Path, record: &RunRecord) -> Vec<RunProblem> {
    let error = record.error.as_deref().unwrap_or("the run failed");
    let error = error
        .lines()
        .rev()
        .find(|l| !l.trim().is_empty())
        .unwrap_or(error)
        .trim();
    let root = std::fs::canonicalize(root).unwrap_or_else(|_| root.to_path_buf());
    let mut in_root: Vec<(PathBuf, u32)> = Vec::new();
    for f in &record.frames {
        let p = Path::new(&f.file);
        let path = if p.is_absolute() {
            p.to_path_buf()
        } else {
            root.join(p)
        };
        let path = std::fs::canonicalize(&path).unwrap_or(path);
        // A line reached twice (recursion, a decorator) is said once.
        if path.starts_with(&root) && !in_root.contains(&(path.clone(), f.line)) {
            in_root.push((path, f.line));
        }
    }
    let last = in_root.len().saturating_sub(1);
    in_root
        .into_iter()
        .enumerate()
        .map(|(i, (path, line))| {
            let (severity, message) = if i == last {
                (
                    Severity::Error,
                    format!("{error} (run_{}, attempt {})", record.run, record.attempt),
                )
            } else {
                (
                    Severity::Info,
                    format!("run_{} failed below this call: {error}", record.run),
                )
            };
            RunProblem {
                path,
                line,
                severity,
                message,
            }
        })
        .collect()
}

/// Byte span of the text of 1-based `line`, without its indentation and line break.
fn line_span(text: &str, line: u32) -> Option<(usize, usize)> {
    let mut start = 0;
    for (i, l) in text.split_inclusive('\n').enumerate() {
        if i + 1 == line as usize {
            let body = l.trim_end_matches(['\n', '\r']);
            let indent = body.len() - body.trim_start().len();
            return Some((start + indent, start + body.len()));
        }
        start += l.len();
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_skip_indentation() {
        let text = "def f():\n    raise ValueError('x')\r\n";
        assert_eq!(line_span(text, 2), Some((13, 34)));
        assert_eq!(&text[13..34], "raise ValueError('x')");
        assert_eq!(line_span(text, 9), None);
    }
}
