//! BibTeX read tolerantly: the text is cut into entries by brace matching first, then
//! each entry is parsed on its own with the `biblatex` crate, so one broken entry is one
//! error at its place and every other entry still counts (the crate alone stops at the
//! first error). Positions are byte ranges into the text given, which may be a
//! `references.bib` or the body of a `filecontents` block (then offset by the caller).

use std::collections::HashMap;
use std::ops::Range;

use biblatex::{RawBibliography, RawChunk};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BibItem {
    pub key: String,
    pub key_span: Range<usize>,
    /// Lower-case entry type (`article`, `inproceedings`, ...).
    pub kind: String,
    /// Field names in lower case, values as written inside their braces or quotes.
    pub fields: Vec<(String, String)>,
    /// The whole entry, `@` to its closing brace.
    pub span: Range<usize>,
}

impl BibItem {
    pub fn field(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BibError {
    pub span: Range<usize>,
    pub message: String,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BibFile {
    pub items: Vec<BibItem>,
    pub errors: Vec<BibError>,
}

/// A duplicate found in one or more bibliographies.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Duplicate {
    /// The same key again (BibTeX compares keys ignoring case); `first` is the index of
    /// the entry it repeats.
    Key { index: usize, first: usize },
    /// Another key for the same work (same title, ignoring case, markup and punctuation).
    Entry { index: usize, first: usize },
}

pub fn parse(src: &str) -> BibFile {
    let mut out = BibFile::default();
    for range in split_entries(src, &mut out.errors) {
        let text = &src[range.clone()];
        match RawBibliography::parse(text) {
            Ok(raw) => {
                // One entry per chunk (an `@string` or `@comment` chunk has none).
                for e in raw.entries {
                    let entry = e.v;
                    let fields = entry
                        .fields
                        .iter()
                        .map(|p| (p.key.v.to_ascii_lowercase(), field_text(&p.value.v)))
                        .collect();
                    out.items.push(BibItem {
                        key: entry.key.v.to_owned(),
                        key_span: range.start + entry.key.span.start..range.start + entry.key.span.end,
                        kind: entry.kind.v.to_ascii_lowercase(),
                        fields,
                        span: range.clone(),
                    });
                }
            }
            Err(err) => {
                let start = (range.start + err.span.start).min(range.end);
                let end = (range.start + err.span.end).clamp(start, range.end);
                out.errors.push(BibError {
                    span: if start == end {
                        range.start..range.start + 1
                    } else {
                        start..end
                    },
                    message: format!("broken BibTeX entry: {}", err.kind),
                });
            }
        }
    }
    out
}

fn field_text(chunks: &[biblatex::Spanned<RawChunk>]) -> String {
    chunks
        .iter()
        .map(|c| match c.v {
            RawChunk::Normal(s) | RawChunk::Abbreviation(s) => s,
        })
        .collect::<Vec<_>>()
        .concat()
}

/// The ranges of the `@type{...}` entries of `src`, each from its `@` to its closing
/// brace. An entry whose braces never close ends where the next entry starts (an error
/// is recorded for it). Text between entries is a comment, as for BibTeX.
fn split_entries(src: &str, errors: &mut Vec<BibError>) -> Vec<Range<usize>> {
    let bytes = src.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while let Some(at) = src[i..].find('@').map(|p| p + i) {
        let Some(open) = src[at..].find(['{', '(']).map(|p| p + at) else {
            break;
        };
        // `@type` must be a word; otherwise this `@` is comment text.
        let kind = src[at + 1..open].trim();
        if kind.is_empty() || !kind.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            i = at + 1;
            continue;
        }
        let mut end = None;
        let mut depth = 0i32;
        if bytes[open] == b'{' {
            for (j, &b) in bytes.iter().enumerate().skip(open) {
                match b {
                    b'{' => depth += 1,
                    b'}' => {
                        depth -= 1;
                        if depth == 0 {
                            end = Some(j + 1);
                            break;
                        }
                    }
                    _ => {}
                }
            }
        } else {
            for (j, &b) in bytes.iter().enumerate().skip(open + 1) {
                match b {
                    b'{' => depth += 1,
                    b'}' => depth -= 1,
                    b')' if depth == 0 => {
                        end = Some(j + 1);
                        break;
                    }
                    _ => {}
                }
            }
        }
        let next_entry = next_line_start_at(src, open);
        match end {
            // A closing brace beyond the next entry's start means this entry never closed.
            Some(e) if next_entry.is_none_or(|n| e <= n) => {
                out.push(at..e);
                i = e;
            }
            _ => {
                let stop = next_entry.unwrap_or(src.len());
                errors.push(BibError {
                    span: at..open + 1,
                    message: format!("BibTeX entry @{kind} is never closed (its braces do not balance)"),
                });
                i = stop;
            }
        }
    }
    out
}

/// The position of the next `@` that starts a line after `from`.
fn next_line_start_at(src: &str, from: usize) -> Option<usize> {
    let mut pos = from;
    while let Some(nl) = src[pos..].find('\n') {
        let line = pos + nl + 1;
        let rest = &src[line..];
        let trimmed = rest.trim_start_matches([' ', '\t']);
        if trimmed.starts_with('@') {
            return Some(line + rest.len() - trimmed.len());
        }
        pos = line;
    }
    None
}

/// The title reduced to lower-case letters and digits, for comparing works.
pub fn title_fingerprint(title: &str) -> String {
    title
        .chars()
        .filter(|c| c.is_alphanumeric())
        .flat_map(char::to_lowercase)
        .collect()
}

/// Repeated keys and repeated works among `items` (in order; each repeat points at the
/// first occurrence).
pub fn duplicates(items: &[&BibItem]) -> Vec<Duplicate> {
    let mut keys: HashMap<String, usize> = HashMap::new();
    let mut titles: HashMap<String, usize> = HashMap::new();
    let mut out = Vec::new();
    for (index, item) in items.iter().enumerate() {
        match keys.get(&item.key.to_lowercase()) {
            Some(&first) => {
                out.push(Duplicate::Key { index, first });
                continue;
            }
            None => {
                keys.insert(item.key.to_lowercase(), index);
            }
        }
        let Some(title) = item
            .field("title")
            .map(title_fingerprint)
            .filter(|t| t.len() >= 8)
        else {
            continue;
        };
        match titles.get(&title) {
            Some(&first) => out.push(Duplicate::Entry { index, first }),
            None => {
                titles.insert(title, index);
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_with_spans() {
        let src = "% comment with @ sign\n@article{ddpm,\n  title = {Denoising {D}iffusion},\n  year = 2020,\n}\n\n@misc{b, title = \"Two\"}\n";
        let f = parse(src);
        assert!(f.errors.is_empty(), "{:?}", f.errors);
        assert_eq!(f.items.len(), 2);
        assert_eq!(f.items[0].key, "ddpm");
        assert_eq!(&src[f.items[0].key_span.clone()], "ddpm");
        assert_eq!(f.items[0].kind, "article");
        assert_eq!(f.items[0].field("title"), Some("Denoising {D}iffusion"));
        assert_eq!(f.items[1].field("title"), Some("Two"));
        assert!(
            src[f.items[0].span.clone()].starts_with("@article{")
                && src[f.items[0].span.clone()].ends_with('}')
        );
    }

    #[test]
    fn a_broken_entry_is_one_error_and_the_rest_still_counts() {
        let src = "@article{a,\n title = {Open\n\n@book{b,\n title = {Fine},\n}\n@misc{c title = {x}}\n";
        let f = parse(src);
        let keys: Vec<&str> = f.items.iter().map(|i| i.key.as_str()).collect();
        assert_eq!(keys, ["b"], "{:?}", f.errors);
        assert_eq!(f.errors.len(), 2, "{:?}", f.errors);
        assert!(f.errors[0].message.contains("never closed"));
        assert_eq!(f.errors[0].span.start, 0);
        assert!(f.errors[1].span.start >= src.find("@misc").unwrap());
    }

    #[test]
    fn duplicate_keys_and_works() {
        let src = "@article{a, title={Attention Is All You Need}}\n@article{A, title={Other}}\n@inproceedings{vaswani2017, title={Attention is all you need.}}\n";
        let f = parse(src);
        let items: Vec<&BibItem> = f.items.iter().collect();
        assert_eq!(
            duplicates(&items),
            [
                Duplicate::Key { index: 1, first: 0 },
                Duplicate::Entry { index: 2, first: 0 }
            ]
        );
    }
}
