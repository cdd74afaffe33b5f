//! A file's text while the blocks of a reply are applied to it, kept as a list of
//! lines so that a block costs work in proportion to the lines it compares and
//! replaces. Rebuilding (and searching) the whole text as one string for every block
//! made a 50-block reply on a 5,000-line file scan and copy about 10 MB.

use std::ops::Range;

pub(crate) struct FileText {
    /// The original text, then every replacement appended after it. Nothing is
    /// removed, so the ranges in `lines` stay valid; a reply adds little.
    buf: String,
    /// The current text, line by line: ranges of `buf`, each ending in `\n`.
    lines: Vec<Range<usize>>,
    /// The text does not end in a newline: its last line got one (so that it matches
    /// like any other line), which `into_string` takes off again.
    no_final_newline: bool,
}

impl FileText {
    pub(crate) fn new(mut text: String) -> Self {
        let no_final_newline = !text.is_empty() && !text.ends_with('\n');
        if no_final_newline {
            text.push('\n');
        }
        let mut lines = Vec::new();
        let mut start = 0;
        for line in text.split_inclusive('\n') {
            lines.push(start..start + line.len());
            start += line.len();
        }
        FileText {
            buf: text,
            lines,
            no_final_newline,
        }
    }

    /// The number of lines.
    pub(crate) fn len(&self) -> usize {
        self.lines.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.lines.is_empty()
    }

    /// Empty or whitespace only.
    pub(crate) fn is_blank(&self) -> bool {
        (0..self.len()).all(|i| self.line(i).trim().is_empty())
    }

    /// Line `i` with its `\n`.
    pub(crate) fn line(&self, i: usize) -> &str {
        &self.buf[self.lines[i].clone()]
    }

    /// Line `i` as `str::lines` gives it: without `\n` or `\r\n`.
    pub(crate) fn bare_line(&self, i: usize) -> &str {
        let l = self.line(i);
        let l = l.strip_suffix('\n').unwrap_or(l);
        l.strip_suffix('\r').unwrap_or(l)
    }

    /// Replaces lines `range` with `new`, which is empty or ends in `\n`.
    pub(crate) fn splice(&mut self, range: Range<usize>, new: &str) {
        debug_assert!(new.is_empty() || new.ends_with('\n'));
        let mut start = self.buf.len();
        self.buf.push_str(new);
        let added: Vec<Range<usize>> = new
            .split_inclusive('\n')
            .map(|line| {
                let r = start..start + line.len();
                start = r.end;
                r
            })
            .collect();
        self.lines.splice(range, added);
        // What the text would be, its final newline taken off again, must read as
        // the next block would have read it from a string: if that text is now empty
        // or ends in a newline after all, it has one of its own.
        if self.no_final_newline {
            match self.lines.last() {
                None => self.no_final_newline = false,
                Some(last) if last.len() == 1 => {
                    self.lines.pop();
                    self.no_final_newline = false;
                }
                Some(_) => {}
            }
        }
    }

    pub(crate) fn into_string(self) -> String {
        let mut s = String::with_capacity(self.lines.iter().map(|r| r.len()).sum());
        for r in &self.lines {
            s.push_str(&self.buf[r.clone()]);
        }
        if self.no_final_newline {
            s.pop();
        }
        s
    }
}

/// A line diff of `old` and `new` that stays fast on any input: patience (cheap when lines
/// are mostly unique, as code is) with a deadline, past which the diff is coarser but still
/// correct. Plain Myers is quadratic in the changed lines (2 s for 10,000 changed lines).
pub fn line_diff<'a>(old: &'a str, new: &'a str) -> similar::TextDiff<'a, 'a, 'a, str> {
    similar::TextDiff::configure()
        .algorithm(similar::Algorithm::Patience)
        .timeout(std::time::Duration::from_millis(200))
        .diff_lines(old, new)
}
