//! How `ideas.json` looks in the editor: a code lens and a hover per idea.

use serde_json::Value;

use crate::project::{spans, SpanKind};

/// One idea entry of an `ideas.json` text with its byte span.
pub struct IdeaEntry {
    pub index: usize,
    pub start: usize,
    pub end: usize,
    pub value: Value,
}

/// The entries of an ideas archive; empty when the text is not a JSON array.
pub fn entries(text: &str) -> Vec<IdeaEntry> {
    let Ok(Value::Array(items)) = serde_json::from_str::<Value>(text) else {
        return Vec::new();
    };
    let Some(root) = spans(text) else {
        return Vec::new();
    };
    let SpanKind::Array(nodes) = root.kind else {
        return Vec::new();
    };
    items
        .into_iter()
        .zip(nodes)
        .enumerate()
        .map(|(index, (value, node))| IdeaEntry {
            index,
            start: node.start,
            end: node.end,
            value,
        })
        .collect()
}

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

fn score(v: &Value, key: &str) -> String {
    match field(v, key) {
        Value::Null => "?".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn novelty_verdict(v: &Value) -> &'static str {
    match field(v, "novel") {
        Value::Bool(true) => " · novel",
        Value::Bool(false) => " · not novel",
        _ => "",
    }
}

/// The short line a code lens shows above an idea.
pub fn lens_title(v: &Value) -> String {
    format!(
        "Interestingness {} · Feasibility {} · Novelty {}{}",
        score(v, "Interestingness"),
        score(v, "Feasibility"),
        score(v, "Novelty"),
        novelty_verdict(v)
    )
}

/// Markdown for hovering an idea.
pub fn hover_markdown(v: &Value) -> String {
    let text = |k: &str| field(v, k).as_str().unwrap_or("").to_owned();
    let mut out = format!(
        "**{}**\n\n`{}`{}\n\n",
        text("Title"),
        text("Name"),
        novelty_verdict(v)
    );
    out.push_str(&format!(
        "| Interestingness | Feasibility | Novelty |\n|:-:|:-:|:-:|\n| {} / 10 | {} / 10 | {} / 10 |\n\n",
        score(v, "Interestingness"),
        score(v, "Feasibility"),
        score(v, "Novelty")
    ));
    let exp = text("Experiment");
    if !exp.is_empty() {
        out.push_str(&format!("**Experiment.** {exp}\n"));
    }
    if let Some(s) = v.get("Score") {
        out.push_str(&format!("\n**Review score:** {s}\n"));
    }
    out
}

/// Plain text of an idea, for a message window.
pub fn plain_summary(v: &Value) -> String {
    let text = |k: &str| field(v, k).as_str().unwrap_or("").to_owned();
    format!(
        "{} ({}): {}. {}",
        text("Title"),
        text("Name"),
        lens_title(v),
        text("Experiment")
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_spans_and_titles() {
        let text = r#"[
    {"Name": "a_b", "Title": "T1", "Experiment": "E", "Interestingness": 8, "Feasibility": 7, "Novelty": 6},
    {"Name": "c", "Title": "T2", "novel": false}
]"#;
        let e = entries(text);
        assert_eq!(e.len(), 2);
        assert!(text[e[1].start..e[1].end].starts_with("{\"Name\": \"c\""));
        assert_eq!(
            lens_title(&e[0].value),
            "Interestingness 8 · Feasibility 7 · Novelty 6"
        );
        assert!(lens_title(&e[1].value).ends_with("· not novel"));
        let md = hover_markdown(&e[0].value);
        assert!(md.starts_with("**T1**"), "{md}");
        assert!(md.contains("| 8 / 10 | 7 / 10 | 6 / 10 |"));
        assert!(entries("{not json").is_empty());
    }
}
