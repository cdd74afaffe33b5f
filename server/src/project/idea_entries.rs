//! The ideas of an `ideas.json` text with their byte spans (for lenses and hovers).

use serde_json::Value;

use super::{spans, SpanKind};

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
