//! An open document: the editor's text (not the file on disk), its version, for LaTeX its
//! syntax tree and for Python the facts of its last parsed version.

use ropey::Rope;

use super::position::{self, Pos, PosEncoding};
use super::python::PyFacts;
use super::syntax::LatexSyntax;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Language {
    Python,
    Json,
    Latex,
    Other,
}

impl Language {
    pub fn detect(language_id: &str, path: &std::path::Path) -> Self {
        match language_id {
            "python" => return Language::Python,
            "json" | "jsonc" => return Language::Json,
            "latex" | "tex" | "plaintex" => return Language::Latex,
            _ => {}
        }
        match path.extension().and_then(|e| e.to_str()) {
            Some("py") => Language::Python,
            Some("json") => Language::Json,
            Some("tex") => Language::Latex,
            _ => Language::Other,
        }
    }
}

/// One change from the editor: `range` None replaces the whole text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub range: Option<(Pos, Pos)>,
    pub text: String,
}

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum DocError {
    #[error("version {got} is not newer than {have}; change ignored")]
    StaleVersion { have: i32, got: i32 },
}

pub struct Document {
    text: Rope,
    version: i32,
    language: Language,
    syntax: Option<LatexSyntax>,
    /// Python: the facts of the version they were read from.
    py_facts: Option<(i32, PyFacts)>,
}

impl Document {
    pub fn new(text: &str, version: i32, language: Language) -> Self {
        let rope = Rope::from_str(text);
        let syntax = (language == Language::Latex).then(LatexSyntax::default);
        Self {
            text: rope,
            version,
            language,
            syntax,
            py_facts: None,
        }
    }

    pub fn rope(&self) -> &Rope {
        &self.text
    }

    pub fn version(&self) -> i32 {
        self.version
    }

    pub fn language(&self) -> Language {
        self.language
    }

    /// Applies the changes of one `didChange` in order. Versions must increase; an
    /// older or repeated version is rejected and the text stays as it was.
    pub fn apply(&mut self, version: i32, changes: &[Change], enc: PosEncoding) -> Result<(), DocError> {
        if version <= self.version {
            return Err(DocError::StaleVersion {
                have: self.version,
                got: version,
            });
        }
        for ch in changes {
            match ch.range {
                None => {
                    self.text = Rope::from_str(&ch.text);
                    if let Some(s) = &mut self.syntax {
                        s.invalidate();
                    }
                }
                Some((a, b)) => {
                    let mut start = position::to_char(&self.text, a, enc);
                    let mut end = position::to_char(&self.text, b, enc);
                    if end < start {
                        std::mem::swap(&mut start, &mut end);
                    }
                    if let Some(s) = &mut self.syntax {
                        s.edit(&self.text, start, end, &ch.text);
                    }
                    self.text.remove(start..end);
                    self.text.insert(start, &ch.text);
                }
            }
        }
        self.version = version;
        Ok(())
    }

    /// Python: the facts of this version, if they were read already.
    pub fn python_facts(&self) -> Option<PyFacts> {
        self.py_facts.filter(|(v, _)| *v == self.version).map(|(_, f)| f)
    }

    /// Keeps the facts read from `version` (parsed outside the documents lock) unless
    /// the document has moved past it meanwhile.
    pub fn keep_python_facts(&mut self, version: i32, facts: PyFacts) {
        if self.language == Language::Python && version == self.version {
            self.py_facts = Some((version, facts));
        }
    }

    /// The LaTeX tree of a `.tex` document, reparsed incrementally after edits.
    pub fn latex_tree(&mut self) -> Option<&tree_sitter::Tree> {
        if self.language != Language::Latex {
            return None;
        }
        let text = &self.text;
        self.syntax.as_mut().and_then(|s| s.tree(text))
    }

    pub fn text(&self) -> String {
        self.text.to_string()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn change(l0: u32, c0: u32, l1: u32, c1: u32, text: &str) -> Change {
        Change {
            range: Some((Pos::new(l0, c0), Pos::new(l1, c1))),
            text: text.into(),
        }
    }

    #[test]
    fn incremental_changes_in_utf16() {
        let mut d = Document::new("x = '😀'\ny = 2\n", 1, Language::Python);
        // Replace the closing quote after the emoji (UTF-16 column 7).
        d.apply(2, &[change(0, 7, 0, 8, "\"")], PosEncoding::Utf16)
            .unwrap();
        assert_eq!(d.text(), "x = '😀\"\ny = 2\n");
        d.apply(
            3,
            &[change(1, 4, 1, 5, "42"), change(0, 0, 0, 0, "# hi\n")],
            PosEncoding::Utf16,
        )
        .unwrap();
        assert_eq!(d.text(), "# hi\nx = '😀\"\ny = 42\n");
    }

    #[test]
    fn stale_versions_are_rejected_without_change() {
        let mut d = Document::new("abc", 5, Language::Other);
        let err = d
            .apply(5, &[change(0, 0, 0, 0, "x")], PosEncoding::Utf16)
            .unwrap_err();
        assert_eq!(err, DocError::StaleVersion { have: 5, got: 5 });
        assert_eq!(d.text(), "abc");
        d.apply(
            6,
            &[Change {
                range: None,
                text: "new".into(),
            }],
            PosEncoding::Utf16,
        )
        .unwrap();
        assert_eq!(d.text(), "new");
    }

    #[test]
    fn out_of_range_edits_are_clamped() {
        let mut d = Document::new("ab\ncd", 1, Language::Other);
        d.apply(2, &[change(1, 50, 9, 9, "!")], PosEncoding::Utf8)
            .unwrap();
        assert_eq!(d.text(), "ab\ncd!");
    }

    #[test]
    fn syntax_tree_follows_edits() {
        let kinds = |d: &mut Document| {
            let root = d.latex_tree().unwrap().root_node();
            let mut c = root.walk();
            let k: Vec<String> = root.children(&mut c).map(|n| n.kind().to_string()).collect();
            k
        };
        let mut d = Document::new("\\section{A}\nx\n", 1, Language::Latex);
        assert_eq!(kinds(&mut d), ["section"]);
        d.apply(2, &[change(0, 1, 0, 1, "sub")], PosEncoding::Utf16)
            .unwrap();
        assert_eq!(kinds(&mut d), ["subsection"]);
        d.apply(3, &[change(0, 1, 0, 4, "")], PosEncoding::Utf16).unwrap();
        assert_eq!(kinds(&mut d), ["section"]);
    }

    #[test]
    fn python_facts_belong_to_one_version() {
        let src = "import argparse\n\ndef main():\n    pass\n";
        let mut d = Document::new(src, 1, Language::Python);
        assert_eq!(d.python_facts(), None);
        d.keep_python_facts(1, PyFacts::of_source(src).unwrap());
        assert_eq!(d.python_facts().unwrap().first_definition, Some(2));
        d.apply(2, &[change(0, 0, 0, 0, "\n")], PosEncoding::Utf16)
            .unwrap();
        assert_eq!(d.python_facts(), None, "an edit makes them stale");
        d.keep_python_facts(1, PyFacts::of_source(src).unwrap());
        assert_eq!(d.python_facts(), None, "facts of an older version are not kept");
    }
}
