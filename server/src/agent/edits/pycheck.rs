//! Catching broken Python before anything runs: a failed parse costs the model one
//! round trip, a failed run costs an attempt of the experiment budget.

use tree_sitter::Node;

use super::BlockError;
use crate::workspace::syntax::parse_python;

/// Up to this many errors per file; the first few are what the model can act on.
const MAX_PER_FILE: usize = 3;

fn collect(node: Node, src: &str, out: &mut Vec<(usize, String)>) {
    if out.len() >= MAX_PER_FILE || !node.has_error() {
        return;
    }
    if node.is_missing() {
        out.push((
            node.start_position().row + 1,
            format!("missing `{}`", node.kind()),
        ));
        return;
    }
    let found = out.len();
    let mut cursor = node.walk();
    for child in node.children(&mut cursor) {
        collect(child, src, out);
    }
    // An ERROR node often wraps everything from the file's start; a nested error
    // points at the real place.
    if node.is_error() && out.len() == found {
        let text = node.utf8_text(src.as_bytes()).unwrap_or("");
        let first = text.lines().next().unwrap_or("").trim();
        let snippet: String = first.chars().take(60).collect();
        // The node may begin with the previous line's stray punctuation (`:`).
        let at = node.named_child(0).unwrap_or(node);
        out.push((
            at.start_position().row + 1,
            if snippet.is_empty() {
                "invalid syntax".into()
            } else {
                format!("invalid syntax near `{snippet}`")
            },
        ));
    }
}

fn errors_of(src: &str) -> Option<Vec<(usize, String)>> {
    let tree = parse_python(src, None)?;
    let mut out = Vec::new();
    collect(tree.root_node(), src, &mut out);
    Some(out)
}

/// Errors in `after`, unless `before` was already as broken: a file that did not
/// parse before the edit should not block an edit that does not make it worse.
pub(crate) fn new_syntax_errors(path: &str, before: &str, after: &str) -> Vec<BlockError> {
    let Some(now) = errors_of(after) else {
        return Vec::new();
    };
    if now.is_empty() {
        return Vec::new();
    }
    let was = if before.is_empty() {
        0
    } else {
        errors_of(before).map_or(0, |e| e.len())
    };
    if was >= now.len() {
        return Vec::new();
    }
    now.into_iter()
        .map(|(line, message)| BlockError::SyntaxError {
            path: path.to_string(),
            line,
            message,
        })
        .collect()
}
