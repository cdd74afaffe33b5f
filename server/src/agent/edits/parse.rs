//! Reading SEARCH/REPLACE blocks out of a model reply.
//!
//! Only the three marker lines are structural; fences and file-name lines are
//! decoration that models get wrong often, so they are read leniently:
//! * the file name is the nearest of the (up to 3) non-blank lines before
//!   `<<<<<<< SEARCH` that looks like a path: alone on its line (`experiment.py`,
//!   `**plot.py**`, `` `notes.txt`: ``) or on the fence line (```` ```python experiment.py ````);
//!   a block with no name reuses the previous block's file (as aider does);
//! * fences are optional and their language is ignored; a fence inside the code is content;
//! * CRLF and trailing spaces on marker lines are tolerated; a marker is a line holding
//!   only the marker (`> <<<<<<< SEARCH`, a quoted echo, is not one);
//! * the first `=======` line ends SEARCH; later `=======` lines before
//!   `>>>>>>> REPLACE` are replacement text (e.g. an rst underline). A `=======` line
//!   that belongs to the SEARCH text cannot be told apart and splits the block early;
//! * an empty line just before `=======` or `>>>>>>> REPLACE` is dropped, as aider does.

/// One SEARCH/REPLACE block.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EditBlock {
    /// 1-based order in the reply (broken blocks count too, so problems and errors agree).
    pub index: usize,
    /// As written in the reply, decoration stripped.
    pub path: String,
    /// Lines to find, each ending in `\n`; empty = create a new file.
    pub search: String,
    pub replace: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ParsedReply {
    pub blocks: Vec<EditBlock>,
    /// Blocks that could not be read (left out of `blocks`), e.g.
    /// "block 3 is cut off before >>>>>>> REPLACE".
    pub problems: Vec<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Marker {
    Search,
    Divider,
    Replace,
}

/// 5 to 9 of `ch` (models miscount), then optionally the word.
fn marker_run(line: &str, ch: char, word: &str) -> bool {
    let rest = line.trim_start_matches(ch);
    let n = line.len() - rest.len();
    (5..=9).contains(&n) && rest.trim() == word
}

fn marker(line: &str) -> Option<Marker> {
    let t = line.trim();
    match t.as_bytes().first()? {
        b'<' if marker_run(t, '<', "SEARCH") => Some(Marker::Search),
        b'=' if marker_run(t, '=', "") => Some(Marker::Divider),
        b'>' if marker_run(t, '>', "REPLACE") => Some(Marker::Replace),
        _ => None,
    }
}

/// A token that names a file: no spaces, and a dot or slash so that prose words
/// ("Changes:") and fence languages ("python") are not taken for names.
fn as_path(token: &str) -> Option<String> {
    let t = token
        .trim()
        .trim_start_matches('#')
        .trim()
        .trim_end_matches(':')
        .trim_matches(|c| c == '*' || c == '`' || c == '"' || c == '\'')
        .trim_end_matches(':');
    let plausible = !t.is_empty()
        && !t.chars().any(char::is_whitespace)
        && (t.contains('.') || t.contains('/'))
        && !t.chars().all(|c| c == '.' || c == '/')
        && !t.starts_with("```");
    plausible.then(|| t.to_string())
}

fn path_from_line(line: &str) -> Option<String> {
    let t = line.trim();
    if let Some(info) = t.strip_prefix("```") {
        // ```python experiment.py, ```python:experiment.py, ```experiment.py
        return info
            .split(|c: char| c.is_whitespace() || c == ':')
            .rev()
            .find_map(as_path);
    }
    as_path(t)
}

/// Aider, which v1's replies were written for, drops the empty line that ends a SEARCH
/// or REPLACE text (it splits the text into lines and joins them again), so models end
/// blocks with one freely; kept, it would leave a stray blank line at every such edit.
/// Only one, and only an empty one: aider keeps the rest.
fn drop_closing_blank(text: &mut String) {
    if text == "\n" || text.ends_with("\n\n") {
        text.pop();
    }
}

pub fn parse_reply(reply: &str) -> ParsedReply {
    let lines: Vec<&str> = reply
        .split_inclusive('\n')
        .map(|l| l.trim_end_matches('\n').trim_end_matches('\r'))
        .collect();
    let mut out = ParsedReply::default();
    let mut index = 0;
    let mut last_path: Option<String> = None;
    // Lines before this belong to an earlier block and cannot name the next one.
    let mut floor = 0;
    let mut i = 0;
    while i < lines.len() {
        match marker(lines[i]) {
            Some(Marker::Search) => {}
            Some(m) => {
                let what = if m == Marker::Divider {
                    "======="
                } else {
                    ">>>>>>> REPLACE"
                };
                out.problems.push(format!(
                    "line {}: {what} without a <<<<<<< SEARCH before it",
                    i + 1
                ));
                i += 1;
                floor = i;
                continue;
            }
            None => {
                i += 1;
                continue;
            }
        }
        index += 1;
        let named = lines[floor..i]
            .iter()
            .rev()
            .filter(|l| !l.trim().is_empty())
            .take(3)
            .find_map(|l| path_from_line(l));
        let start = i;
        i += 1;
        let mut search = String::new();
        let mut replace = String::new();
        let mut seen_divider = false;
        let mut problem = None;
        loop {
            let Some(line) = lines.get(i) else {
                problem = Some(if seen_divider {
                    format!("block {index} is cut off before >>>>>>> REPLACE")
                } else {
                    format!("block {index} is cut off before =======")
                });
                break;
            };
            match marker(line) {
                Some(Marker::Search) => {
                    let missing = if seen_divider {
                        ">>>>>>> REPLACE"
                    } else {
                        "======="
                    };
                    problem = Some(format!(
                        "block {index} (line {}) has no {missing} before the next <<<<<<< SEARCH",
                        start + 1
                    ));
                    break; // the next block starts on this line
                }
                Some(Marker::Divider) if !seen_divider => seen_divider = true,
                Some(Marker::Replace) if seen_divider => {
                    i += 1;
                    break;
                }
                Some(Marker::Replace) => {
                    problem = Some(format!(
                        "block {index} (line {}) has no ======= between SEARCH and REPLACE",
                        start + 1
                    ));
                    i += 1;
                    break;
                }
                _ => {
                    let buf = if seen_divider { &mut replace } else { &mut search };
                    buf.push_str(line);
                    buf.push('\n');
                }
            }
            i += 1;
        }
        floor = i;
        // A broken block still names the file for the unnamed blocks after it.
        if named.is_some() {
            last_path.clone_from(&named);
        }
        if let Some(p) = problem {
            out.problems.push(p);
            continue;
        }
        let Some(path) = named.or_else(|| last_path.clone()) else {
            out.problems.push(format!(
                "block {index} (line {}) names no file: put the file name on the line before the fence",
                start + 1
            ));
            continue;
        };
        last_path = Some(path.clone());
        drop_closing_blank(&mut search);
        drop_closing_blank(&mut replace);
        out.blocks.push(EditBlock {
            index,
            path,
            search,
            replace,
        });
    }
    out
}
