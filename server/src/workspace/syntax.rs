//! Syntax trees with tree-sitter. A paper's LaTeX tree is kept current lazily: edits are
//! recorded on the old tree as they arrive (cheap), and the reparse happens when someone
//! asks for the tree, reusing the unchanged parts. Python documents keep facts instead of
//! a tree (see `workspace::python`).

use ropey::Rope;
use tree_sitter::{InputEdit, Parser, Point, Tree};

/// A kept LaTeX tree (None: not parsed yet) and whether edits arrived since it was parsed.
#[derive(Default)]
pub struct LatexSyntax {
    tree: Option<Tree>,
    dirty: bool,
}

thread_local! {
    static PARSER: std::cell::RefCell<Option<Parser>> = const { std::cell::RefCell::new(None) };
    static LATEX_PARSER: std::cell::RefCell<Option<Parser>> = const { std::cell::RefCell::new(None) };
}

/// Parses `text` with a per-thread LaTeX parser, reusing `old` when given.
pub fn parse_latex(text: &str, old: Option<&Tree>) -> Option<Tree> {
    LATEX_PARSER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut p = Parser::new();
            p.set_language(&codebook_tree_sitter_latex::LANGUAGE.into())
                .ok()?;
            *slot = Some(p);
        }
        slot.as_mut()?.parse(text, old)
    })
}

/// Parses `text` with a per-thread Python parser, reusing `old` when given.
pub fn parse_python(text: &str, old: Option<&Tree>) -> Option<Tree> {
    PARSER.with(|cell| {
        let mut slot = cell.borrow_mut();
        if slot.is_none() {
            let mut p = Parser::new();
            p.set_language(&tree_sitter_python::LANGUAGE.into()).ok()?;
            *slot = Some(p);
        }
        slot.as_mut()?.parse(text, old)
    })
}

fn point_at(rope: &Rope, char_idx: usize) -> (usize, Point) {
    let byte = rope.char_to_byte(char_idx);
    let line = rope.char_to_line(char_idx);
    (byte, Point::new(line, byte - rope.line_to_byte(line)))
}

impl LatexSyntax {
    pub fn invalidate(&mut self) {
        self.tree = None;
    }

    /// Records on the old tree that chars `start..end` of `before` become `new_text`.
    pub fn edit(&mut self, before: &Rope, start: usize, end: usize, new_text: &str) {
        self.dirty = true;
        let Some(tree) = &mut self.tree else { return };
        let (start_byte, start_position) = point_at(before, start);
        let (old_end_byte, old_end_position) = point_at(before, end);
        let new_end_byte = start_byte + new_text.len();
        let new_end_position = match new_text.rfind('\n') {
            Some(nl) => Point::new(
                start_position.row + new_text.matches('\n').count(),
                new_text.len() - nl - 1,
            ),
            None => Point::new(start_position.row, start_position.column + new_text.len()),
        };
        tree.edit(&InputEdit {
            start_byte,
            old_end_byte,
            new_end_byte,
            start_position,
            old_end_position,
            new_end_position,
        });
    }

    pub fn tree(&mut self, text: &Rope) -> Option<&Tree> {
        if self.dirty || self.tree.is_none() {
            let source = text.to_string();
            self.tree = parse_latex(&source, self.tree.as_ref());
            self.dirty = false;
        }
        self.tree.as_ref()
    }
}
