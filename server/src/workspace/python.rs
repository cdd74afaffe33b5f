//! Facts read from a Python syntax tree.
//!
//! An open `experiment.py` keeps these facts, not its tree: the tree of a 5,000-line
//! file holds ~8 MB, for two answers (where the lens goes, whether `--out_dir` is
//! declared) that a parse per checked version gives as well.

use std::path::Path;

use tree_sitter::{Node, Tree};

use crate::project::{Problem, Severity};

/// Whether the program mentions `--out_dir` (or `--out-dir`) as a string literal,
/// which is how argparse/click/typer options are declared.
pub fn declares_out_dir(tree: &Tree, src: &str) -> bool {
    fn walk(node: Node, src: &[u8]) -> bool {
        if node.kind() == "string_content" {
            if let Ok(s) = node.utf8_text(src) {
                if s == "--out_dir" || s == "--out-dir" {
                    return true;
                }
            }
        }
        let mut cursor = node.walk();
        let found = node.children(&mut cursor).any(|c| walk(c, src));
        found
    }
    walk(tree.root_node(), src.as_bytes())
}

/// The line (0-based) of the first top-level `def`/`class`, where a code lens reads well.
pub fn first_definition_line(tree: &Tree) -> Option<u32> {
    let root = tree.root_node();
    let mut cursor = root.walk();
    let line = root
        .children(&mut cursor)
        .find(|n| {
            matches!(
                n.kind(),
                "function_definition" | "class_definition" | "decorated_definition"
            )
        })
        .map(|n| n.start_position().row as u32);
    line
}

/// What requests and checks read from a Python document.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PyFacts {
    /// See [`first_definition_line`].
    pub first_definition: Option<u32>,
    /// The text has syntax errors (a file being typed: no `--out_dir` verdict then).
    pub has_error: bool,
    pub declares_out_dir: bool,
    /// Bytes of the first line, where the missing `--out_dir` is said.
    pub first_line_len: usize,
}

impl PyFacts {
    pub fn of_tree(tree: &Tree, src: &str) -> Self {
        Self {
            first_definition: first_definition_line(tree),
            has_error: tree.root_node().has_error(),
            declares_out_dir: declares_out_dir(tree, src),
            first_line_len: src.find('\n').unwrap_or(src.len()),
        }
    }

    /// Parses `src` (None only if the parser is unavailable).
    pub fn of_source(src: &str) -> Option<Self> {
        let tree = crate::workspace::syntax::parse_python(src, None)?;
        Some(Self::of_tree(&tree, src))
    }
}

/// A template's `experiment.py` must accept `--out_dir`: aisci runs it as
/// `python experiment.py --out_dir=run_i`. Said once, on the first line, when the
/// file parses but never names the option.
pub fn out_dir_problem(path: &Path, facts: &PyFacts) -> Option<Problem> {
    if facts.has_error || facts.declares_out_dir {
        return None;
    }
    let first_line_end = facts.first_line_len;
    Some(Problem {
        path: path.to_path_buf(),
        span: Some((0, first_line_end)),
        severity: Severity::Warning,
        message: "experiment.py does not declare an --out_dir option; aisci runs it as \
                  `python experiment.py --out_dir=run_i` and reads run_i/final_info.json"
            .into(),
        code: None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::workspace::syntax::parse_python;

    #[test]
    fn finds_out_dir_option() {
        let src = "import argparse\np = argparse.ArgumentParser()\np.add_argument(\"--out_dir\", default=\"run_0\")\n";
        let tree = parse_python(src, None).unwrap();
        assert!(declares_out_dir(&tree, src));
        assert!(out_dir_problem(Path::new("e.py"), &PyFacts::of_tree(&tree, src)).is_none());
    }

    #[test]
    fn missing_out_dir_is_a_warning_on_line_one() {
        let src = "import sys\n\ndef main():\n    print('hi')\n";
        let tree = parse_python(src, None).unwrap();
        let p = out_dir_problem(Path::new("e.py"), &PyFacts::of_source(src).unwrap()).unwrap();
        assert_eq!(p.span, Some((0, 10)));
        assert_eq!(first_definition_line(&tree), Some(2));
    }
}
