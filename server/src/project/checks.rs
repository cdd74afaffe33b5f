//! Static checks of a template's files. Each returns `Problem`s with byte spans; the
//! caller's overlay (open editor buffers, path → text) takes precedence over disk so
//! that unsaved edits are what gets checked.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use serde_json::Value;

use super::formats::{kind_of, validate_idea, FinalInfo};
use super::json_spans::{spans, SpanNode};
use super::{Problem, Severity};

/// Open buffers: absolute path → current text.
pub type Overlay = HashMap<PathBuf, String>;

/// A file's text, from the overlay or from disk.
#[derive(Debug)]
pub enum Source {
    Text(String),
    Missing,
    /// The file exists but is not UTF-8; the problem already says where.
    NotUtf8(Problem),
    Unreadable(Problem),
}

/// Read `path` through the overlay. Non-UTF-8 content is reported, not a crash.
pub fn read_source(path: &Path, overlay: &Overlay) -> Source {
    if let Some(text) = overlay.get(path) {
        return Source::Text(text.clone());
    }
    match std::fs::read(path) {
        Ok(bytes) => match String::from_utf8(bytes) {
            Ok(s) => Source::Text(s),
            Err(e) => {
                let at = e.utf8_error().valid_up_to();
                let byte = e.as_bytes()[at];
                Source::NotUtf8(problem(
                    path,
                    Some((at, at + 1)),
                    Severity::Error,
                    format!(
                        "{} is not valid UTF-8 (byte 0x{byte:02x} at offset {at}); save it as UTF-8",
                        file_name(path)
                    ),
                ))
            }
        },
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Source::Missing,
        Err(e) => Source::Unreadable(problem(
            path,
            None,
            Severity::Error,
            format!("cannot read {}: {e}", file_name(path)),
        )),
    }
}

/// Every check of the template at `root`.
pub fn check_template(root: &Path, overlay: &Overlay) -> Vec<Problem> {
    let mut out = Vec::new();
    let experiment = root.join("experiment.py");
    let prompt = root.join("prompt.json");
    // Missing-file problems need a file to hang on; pick one that exists.
    let anchor = |preferred: &Path| -> PathBuf {
        [preferred, &experiment, &prompt]
            .into_iter()
            .find(|p| overlay.contains_key(*p) || p.is_file())
            .unwrap_or(root)
            .to_path_buf()
    };

    match read_source(&experiment, overlay) {
        Source::Missing => out.push(problem(
            &anchor(&prompt),
            None,
            Severity::Error,
            "experiment.py is missing: a template needs an experiment.py that accepts --out_dir and writes <out_dir>/final_info.json".into(),
        )),
        Source::NotUtf8(p) | Source::Unreadable(p) => out.push(p),
        Source::Text(_) => {}
    }

    match read_source(&prompt, overlay) {
        Source::Missing => out.push(problem(
            &anchor(&experiment),
            None,
            Severity::Error,
            "prompt.json is missing: a template needs {\"system\": ..., \"task_description\": ...}".into(),
        )),
        Source::NotUtf8(p) | Source::Unreadable(p) => out.push(p),
        Source::Text(t) => out.extend(check_prompt_json(&prompt, &t)),
    }

    let seeds = root.join("seed_ideas.json");
    match read_source(&seeds, overlay) {
        Source::Missing => out.push(problem(
            &anchor(&prompt),
            None,
            Severity::Warning,
            "seed_ideas.json is missing: idea generation works best with one or two example ideas".into(),
        )),
        Source::NotUtf8(p) | Source::Unreadable(p) => out.push(p),
        Source::Text(t) => out.extend(check_ideas_json(&seeds, &t)),
    }

    let ideas = root.join("ideas.json");
    match read_source(&ideas, overlay) {
        Source::Missing => {}
        Source::NotUtf8(p) | Source::Unreadable(p) => out.push(p),
        Source::Text(t) => out.extend(check_ideas_json(&ideas, &t)),
    }

    for (file, why) in [
        (
            "plot.py",
            "plot.py is missing: the plotting stage will have nothing to run",
        ),
        (
            "latex/template.tex",
            "latex/template.tex is missing: the write-up stage needs a paper skeleton",
        ),
    ] {
        let p = root.join(file);
        if !overlay.contains_key(&p) && !p.is_file() {
            out.push(problem(&anchor(&experiment), None, Severity::Warning, why.into()));
        }
    }

    let baseline = root.join("run_0").join("final_info.json");
    match read_source(&baseline, overlay) {
        Source::Missing => out.push(problem(
            &anchor(&experiment),
            None,
            Severity::Warning,
            "no baseline yet: run_0/final_info.json is missing. Create it in this folder with `python experiment.py --out_dir run_0` (then `python plot.py`)".into(),
        )),
        Source::NotUtf8(p) | Source::Unreadable(p) => out.push(p),
        Source::Text(t) => out.extend(check_final_info(&baseline, &t)),
    }
    out
}

/// Check `prompt.json`: an object with string `system` and `task_description`.
pub fn check_prompt_json(path: &Path, text: &str) -> Vec<Problem> {
    let (value, tree) = match parse(path, text) {
        Ok(v) => v,
        Err(p) => return vec![p],
    };
    let Some(obj) = value.as_object() else {
        return vec![problem(
            path,
            Some(tree.head()),
            Severity::Error,
            format!("prompt.json must be an object, not {}", kind_of(&value)),
        )];
    };
    let mut out = Vec::new();
    for key in ["system", "task_description"] {
        match obj.get(key) {
            None => out.push(problem(
                path,
                Some(tree.head()),
                Severity::Error,
                format!("prompt.json has no \"{key}\" (a string)"),
            )),
            Some(Value::String(_)) => {}
            Some(v) => out.push(problem(
                path,
                tree.value(key).map(|n| (n.start, n.end)),
                Severity::Error,
                format!("\"{key}\" must be a string, not {}", kind_of(v)),
            )),
        }
    }
    out
}

/// Check an idea archive (`seed_ideas.json` or `ideas.json`): a JSON array of ideas
/// that pass the idea schema, with distinct names (duplicates are a warning: v1's own
/// archives have them).
pub fn check_ideas_json(path: &Path, text: &str) -> Vec<Problem> {
    let (value, tree) = match parse(path, text) {
        Ok(v) => v,
        Err(p) => return vec![p],
    };
    let Some(items) = value.as_array() else {
        return vec![problem(
            path,
            Some(tree.head()),
            Severity::Error,
            format!(
                "{} must be a JSON array of ideas, not {}",
                file_name(path),
                kind_of(&value)
            ),
        )];
    };
    let mut out = Vec::new();
    let mut seen: HashMap<&str, usize> = HashMap::new();
    for (i, item) in items.iter().enumerate() {
        let node = tree.element(i).expect("span tree matches value");
        for issue in validate_idea(item) {
            let span = issue
                .field
                .as_deref()
                .and_then(|f| node.value(f))
                .map(|n| (n.start, n.end))
                .unwrap_or(node.head());
            out.push(problem(
                path,
                Some(span),
                Severity::Error,
                format!("idea {}: {}", i + 1, issue.message),
            ));
        }
        if let Some(name) = item.get("Name").and_then(Value::as_str) {
            if let Some(first) = seen.insert(name, i) {
                let span = node
                    .value("Name")
                    .map(|n| (n.start, n.end))
                    .unwrap_or(node.head());
                out.push(problem(
                    path,
                    Some(span),
                    Severity::Warning,
                    format!(
                        "idea {}: the Name \"{name}\" is already used by idea {}; idea folders are named after it",
                        i + 1,
                        first + 1
                    ),
                ));
            }
        }
    }
    out
}

/// Check a run's `final_info.json`: an object of datasets with at least one mean.
pub fn check_final_info(path: &Path, text: &str) -> Vec<Problem> {
    let (_, tree) = match parse(path, text) {
        Ok(v) => v,
        Err(p) => return vec![p],
    };
    match FinalInfo::parse(text) {
        Err(e) => vec![problem(path, Some(tree.head()), Severity::Error, e.to_string())],
        Ok(fi) if fi.mean_count() == 0 => vec![problem(
            path,
            Some(tree.head()),
            Severity::Error,
            "final_info.json has no \"means\" entries: expected {\"<dataset>\": {\"means\": {\"<metric>\": value, ...}}}".into(),
        )],
        Ok(_) => Vec::new(),
    }
}

fn parse(path: &Path, text: &str) -> Result<(Value, SpanNode), Problem> {
    match serde_json::from_str::<Value>(text) {
        Ok(v) => {
            let tree = spans(text).expect("serde_json accepted it, so the span scanner does too");
            Ok((v, tree))
        }
        Err(e) => Err(problem(
            path,
            Some(error_span(text, e.line(), e.column())),
            Severity::Error,
            format!("invalid JSON in {}: {e}", file_name(path)),
        )),
    }
}

/// Byte span for a serde_json error at 1-based `line` and byte `column` (the column
/// of the byte that failed; 0 when the error is at the start of a line). The span
/// covers the token there: a word, a number, a string, or one character; at the end
/// of the text, the last non-blank character.
pub fn error_span(text: &str, line: usize, column: usize) -> (usize, usize) {
    let line_start = text
        .match_indices('\n')
        .nth(line.saturating_sub(2))
        .map(|(i, _)| i + 1)
        .filter(|_| line > 1)
        .unwrap_or(0);
    // Column 0 means the newline ending the previous line.
    let mut at = if column == 0 {
        line_start.saturating_sub(1)
    } else {
        (line_start + column - 1).min(text.len())
    };
    while !text.is_char_boundary(at) {
        at -= 1;
    }
    let b = text.as_bytes();
    let mut at_end = false;
    if at >= text.len() || b[at].is_ascii_whitespace() {
        // The parser stopped after the bad token (or at EOF): mark the last thing
        // written before that point.
        let trimmed = text[..at.min(text.len())].trim_end();
        if trimmed.is_empty() {
            return (0, 0);
        }
        at = trimmed.char_indices().last().map(|(i, _)| i).unwrap_or(0);
        at_end = true;
    }
    let word = |c: u8| c.is_ascii_alphanumeric() || matches!(c, b'_' | b'-' | b'+' | b'.');
    if b[at] == b'"' && !at_end {
        let mut j = at + 1;
        while j < b.len() && b[j] != b'"' && b[j] != b'\n' {
            j += if b[j] == b'\\' { 2 } else { 1 };
        }
        return (at, (j + 1).min(b.len()));
    }
    if word(b[at]) {
        let mut s = at;
        while s > 0 && word(b[s - 1]) {
            s -= 1;
        }
        let mut e = at;
        while e < b.len() && word(b[e]) {
            e += 1;
        }
        return (s, e);
    }
    let len = text[at..].chars().next().map_or(1, char::len_utf8);
    (at, at + len)
}

fn problem(path: &Path, span: Option<(usize, usize)>, severity: Severity, message: String) -> Problem {
    Problem {
        path: path.to_path_buf(),
        span,
        severity,
        message,
        code: None,
    }
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn span_of(text: &str) -> (usize, usize) {
        let e = serde_json::from_str::<Value>(text).unwrap_err();
        error_span(text, e.line(), e.column())
    }

    #[test]
    fn json_errors_point_at_the_token() {
        let t = "{\n  \"system\": \"a\",\n  \"task\": tru\n}";
        let (s, e) = span_of(t);
        assert_eq!(&t[s..e], "tru");
        let t = "[1, 2,]";
        let (s, e) = span_of(t);
        assert_eq!(&t[s..e], "]");
        let t = "{\"a\": 1\n\n";
        let (s, e) = span_of(t);
        assert_eq!(&t[s..e], "1");
        let t = "{\"é\": 1 \"b\": 2}";
        let (s, e) = span_of(t);
        assert_eq!(&t[s..e], "\"b\"");
        assert_eq!(span_of(""), (0, 0));
    }

    #[test]
    fn prompt_fields_are_checked_with_spans() {
        let p = Path::new("/t/prompt.json");
        let t = r#"{"system": 3}"#;
        let probs = check_prompt_json(p, t);
        assert_eq!(probs.len(), 2, "{probs:?}");
        let (s, e) = probs[0].span.unwrap();
        assert_eq!(&t[s..e], "3");
        assert_eq!(probs[1].span, Some((0, 1)));
        assert!(check_prompt_json(p, r#"{"system": "", "task_description": ""}"#).is_empty());
    }

    #[test]
    fn idea_problems_point_at_fields() {
        let p = Path::new("/t/seed_ideas.json");
        let t = r#"[{"Name": "Bad Name", "Title": "t", "Experiment": "e",
                     "Interestingness": 0, "Feasibility": 5, "Novelty": 5},
                    {"Name": "Bad Name", "Title": "t"}]"#;
        let probs = check_ideas_json(p, t);
        let texts: Vec<_> = probs
            .iter()
            .map(|p| (p.severity, &t[p.span.unwrap().0..p.span.unwrap().1]))
            .collect();
        assert!(texts.contains(&(Severity::Error, "\"Bad Name\"")), "{texts:?}");
        assert!(texts.contains(&(Severity::Error, "0")), "{texts:?}");
        assert!(texts.contains(&(Severity::Error, "{")), "{texts:?}");
        assert!(texts.contains(&(Severity::Warning, "\"Bad Name\"")), "{texts:?}");
    }

    #[test]
    fn final_info_without_means_is_an_error() {
        let p = Path::new("/t/run_0/final_info.json");
        assert_eq!(check_final_info(p, r#"{"d": {"means": {}}}"#).len(), 1);
        assert!(check_final_info(p, r#"{"d": {"means": {"x": 1.5}}}"#).is_empty());
    }

    #[test]
    fn template_checks_use_overlay_and_report_missing_baseline() {
        let tmp = tempfile::tempdir().unwrap();
        let root = tmp.path();
        std::fs::write(root.join("experiment.py"), "print('hi')\n").unwrap();
        std::fs::write(root.join("prompt.json"), "{broken").unwrap();
        std::fs::write(root.join("seed_ideas.json"), b"[\"\xff\"]").unwrap();
        let mut overlay = Overlay::new();
        overlay.insert(
            root.join("prompt.json"),
            r#"{"system": "s", "task_description": "t"}"#.into(),
        );
        let probs = check_template(root, &overlay);
        assert!(
            !probs.iter().any(|p| p.path.ends_with("prompt.json")),
            "{probs:?}"
        );
        let utf8 = probs.iter().find(|p| p.message.contains("UTF-8")).unwrap();
        assert_eq!(utf8.span, Some((2, 3)));
        let baseline = probs.iter().find(|p| p.message.contains("baseline")).unwrap();
        assert!(baseline.path.ends_with("experiment.py"));
        assert!(baseline.message.contains("python experiment.py --out_dir run_0"));
    }
}
