//! BibTeX: building entries from metadata, stable citation keys, escaping, and
//! normalising the entries engines hand us (Semantic Scholar's are not always valid).

use unicode_normalization::UnicodeNormalization;

use super::Paper;

/// One BibTeX entry. `fields` keep their order; values are already escaped BibTeX.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BibEntry {
    /// Lower-case entry type without `@`: `article`, `inproceedings`, `misc`, ...
    pub kind: String,
    pub key: String,
    pub fields: Vec<(String, String)>,
}

impl BibEntry {
    pub fn new(kind: &str, key: impl Into<String>) -> Self {
        Self {
            kind: kind.to_owned(),
            key: key.into(),
            fields: Vec::new(),
        }
    }

    /// Adds a field from plain text (escaped here); empty values are skipped.
    pub fn text(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            self.fields.push((name.to_owned(), escape(v)));
        }
        self
    }

    /// Adds a field whose value is already BibTeX (author lists, URLs, DOIs).
    pub fn raw(&mut self, name: &str, value: Option<&str>) -> &mut Self {
        if let Some(v) = value.map(str::trim).filter(|v| !v.is_empty()) {
            self.fields.push((name.to_owned(), v.to_owned()));
        }
        self
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.fields
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// Renders with aligned `=` (names padded to at least the width of `booktitle`)
    /// and a trailing newline.
    pub fn render(&self) -> String {
        let width = self.fields.iter().map(|(k, _)| k.len()).max().unwrap_or(0).max(9);
        let mut out = format!("@{}{{{}", self.kind, self.key);
        for (k, v) in &self.fields {
            out.push_str(&format!(",\n  {k:<width$} = {{{v}}}"));
        }
        out.push_str("\n}\n");
        out
    }
}

/// Title words that do not make a citation key.
const STOPWORDS: &[&str] = &[
    "a", "an", "the", "on", "of", "in", "for", "to", "and", "or", "with", "by", "from", "at", "is", "are",
    "as", "via", "towards", "toward", "into", "do", "does", "can", "how", "what", "why", "when", "we", "our",
    "its", "it", "this", "that", "be",
];

/// ASCII letters and digits only, lower-case, accents folded (`Lála` → `lala`).
pub fn ascii_fold(s: &str) -> String {
    s.nfd()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// The family name of a display name: "Andres M. Bran" → "Bran", "Bran, Andres" → "Bran".
pub fn last_name(name: &str) -> &str {
    let name = name.trim();
    if let Some((last, _)) = name.split_once(',') {
        return last.trim();
    }
    name.split_whitespace().last().unwrap_or("")
}

/// `lastname + year + first meaningful title word`, lower-case ASCII; "anon" and
/// "nd" stand in for a missing author or year.
pub fn make_key(first_author: Option<&str>, year: Option<i32>, title: &str) -> String {
    let mut key = first_author.map(|a| ascii_fold(last_name(a))).unwrap_or_default();
    if key.is_empty() {
        key.push_str("anon");
    }
    match year {
        Some(y) => key.push_str(&y.to_string()),
        None => key.push_str("nd"),
    }
    let word = title
        .split(|c: char| c.is_whitespace() || c == '-' || c == '/')
        .map(ascii_fold)
        .find(|w| !w.is_empty() && !STOPWORDS.contains(&w.as_str()));
    if let Some(w) = word {
        key.push_str(&w);
    }
    key
}

/// Makes keys unique within a set, in order: the first keeps its key, later clashes
/// get `b`, `c`, ... so that adding a paper never renames one already cited. BibTeX
/// compares keys without regard to case, and so does this.
pub fn dedupe_keys<'a>(keys: impl IntoIterator<Item = &'a mut String>) {
    let mut taken = std::collections::HashSet::new();
    for key in keys {
        if taken.contains(&key.to_lowercase()) {
            let base = key.clone();
            let mut n = 1;
            *key = loop {
                let candidate = format!("{base}{}", suffix(n));
                if !taken.contains(&candidate.to_lowercase()) {
                    break candidate;
                }
                n += 1;
            };
        }
        taken.insert(key.to_lowercase());
    }
}

/// One `.bib` text from entries gathered from several searches, keys made unique
/// (see `dedupe_keys`). Returns the text and each input's final key; an entry that
/// does not parse is left out and gets `None`.
pub fn bibliography<S: AsRef<str>>(entries: &[S]) -> (String, Vec<Option<String>>) {
    let mut parsed: Vec<Option<BibEntry>> = entries
        .iter()
        .map(|e| sanitize(e.as_ref()).ok().and_then(|s| parse_entry(&s).ok()))
        .collect();
    dedupe_keys(parsed.iter_mut().flatten().map(|e| &mut e.key));
    let text = parsed
        .iter()
        .flatten()
        .map(BibEntry::render)
        .collect::<Vec<_>>()
        .join("\n");
    (text, parsed.into_iter().map(|e| e.map(|e| e.key)).collect())
}

/// 1 → "b", 2 → "c", ... 25 → "z", 26 → "ba" (base 26 on letters, "a" being the bare key).
fn suffix(mut n: u32) -> String {
    let mut out = Vec::new();
    while n > 0 {
        out.push((b'a' + (n % 26) as u8) as char);
        n /= 26;
    }
    out.iter().rev().collect()
}

/// `Andres M. Bran` → `Bran, Andres M.`; names that already have a comma are kept.
pub fn last_first(name: &str) -> String {
    let name = name.split_whitespace().collect::<Vec<_>>().join(" ");
    if name.contains(',') {
        return name;
    }
    match name.rsplit_once(' ') {
        Some((first, last)) => format!("{last}, {first}"),
        None => name,
    }
}

/// A BibTeX author list from display names.
pub fn author_list<S: AsRef<str>>(names: &[S]) -> String {
    names
        .iter()
        .map(|n| escape(&last_first(&fix_author(n.as_ref()))))
        .filter(|n| !n.is_empty())
        .collect::<Vec<_>>()
        .join(" and ")
}

/// Escapes plain text for a braced BibTeX value: `& % # _` get a backslash, literal
/// braces are escaped when balanced and spelled out when not (BibTeX counts braces
/// even after a backslash, so an unbalanced one would swallow the rest of the file).
pub fn escape(s: &str) -> String {
    let balanced = braces_balanced(s);
    let mut out = String::with_capacity(s.len() + 8);
    let mut prev = '\0';
    for c in s.chars() {
        match c {
            '&' | '%' | '#' | '_' if prev != '\\' => {
                out.push('\\');
                out.push(c);
            }
            '{' | '}' if !balanced => out.push_str(if c == '{' {
                "\\textbraceleft{}"
            } else {
                "\\textbraceright{}"
            }),
            '{' | '}' if prev != '\\' => {
                out.push('\\');
                out.push(c);
            }
            '\n' | '\r' | '\t' => out.push(' '),
            _ => out.push(c),
        }
        prev = c;
    }
    out
}

fn braces_balanced(s: &str) -> bool {
    let mut depth = 0i32;
    for c in s.chars() {
        match c {
            '{' => depth += 1,
            '}' => {
                depth -= 1;
                if depth < 0 {
                    return false;
                }
            }
            _ => {}
        }
    }
    depth == 0
}

/// Cleans a value that is already BibTeX (from an engine): unescaped `& % #` get a
/// backslash, unbalanced braces are dropped, whitespace is collapsed.
fn clean_value(v: &str) -> String {
    let v = v.split_whitespace().collect::<Vec<_>>().join(" ");
    let v = if braces_balanced(&v) {
        v
    } else {
        v.replace(['{', '}'], "")
    };
    let mut out = String::with_capacity(v.len());
    let mut prev = '\0';
    for c in v.chars() {
        if matches!(c, '&' | '%' | '#') && prev != '\\' {
            out.push('\\');
        }
        out.push(c);
        prev = c;
    }
    out
}

/// Repairs one author string. Semantic Scholar sometimes merges transliterations into
/// one name (`Kyriacos, Κυριάκος, Athanasiou, Αθανασίου`), which BibTeX rejects ("too
/// many commas"); the Latin parts are kept, in order.
pub fn fix_author(name: &str) -> String {
    let name = name.trim();
    let parts: Vec<&str> = name.split(',').map(str::trim).filter(|p| !p.is_empty()).collect();
    if parts.len() <= 2 {
        return parts.join(", ");
    }
    let latin: Vec<&str> = parts.iter().copied().filter(|p| is_latin(p)).collect();
    // What is left reads "First, Last" (S2's order), so it is joined with spaces.
    let keep = if latin.is_empty() { parts } else { latin };
    keep.join(" ")
}

fn is_latin(s: &str) -> bool {
    s.chars()
        .filter(|c| c.is_alphabetic())
        .all(|c| (c as u32) < 0x0250)
}

/// Why an entry could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid BibTeX: {0}")]
pub struct BibtexError(pub String);

/// Parses one `@type{key, name = {value}, ...}` entry (braced, quoted or bare values).
pub fn parse_entry(src: &str) -> Result<BibEntry, BibtexError> {
    let err = |m: &str| BibtexError(m.to_owned());
    let at = src.find('@').ok_or_else(|| err("no @"))?;
    let rest = &src[at + 1..];
    let open = rest.find(['{', '(']).ok_or_else(|| err("no opening brace"))?;
    let kind = normalise_kind(&rest[..open]);
    let body = &rest[open + 1..];
    let comma = body.find(',').ok_or_else(|| err("no key"))?;
    let key = body[..comma].trim().to_owned();
    let mut entry = BibEntry::new(&kind, key);
    let chars: Vec<char> = body[comma + 1..].chars().collect();
    let mut i = 0;
    loop {
        while i < chars.len() && (chars[i].is_whitespace() || chars[i] == ',') {
            i += 1;
        }
        if i >= chars.len() {
            return Err(err("entry is not closed"));
        }
        if chars[i] == '}' || chars[i] == ')' {
            break;
        }
        let start = i;
        while i < chars.len() && chars[i] != '=' && chars[i] != '}' {
            i += 1;
        }
        if i >= chars.len() || chars[i] != '=' {
            return Err(err("field without '='"));
        }
        let name: String = chars[start..i].iter().collect::<String>().trim().to_lowercase();
        if name.is_empty()
            || !name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_".contains(c))
        {
            return Err(BibtexError(format!("bad field name {name:?}")));
        }
        i += 1;
        while i < chars.len() && chars[i].is_whitespace() {
            i += 1;
        }
        let value = match chars.get(i) {
            Some('{') => {
                let mut depth = 0;
                let s = i + 1;
                loop {
                    match chars.get(i) {
                        None => return Err(err("unbalanced braces")),
                        Some('{') => depth += 1,
                        Some('}') => {
                            depth -= 1;
                            if depth == 0 {
                                break;
                            }
                        }
                        _ => {}
                    }
                    i += 1;
                }
                let v: String = chars[s..i].iter().collect();
                i += 1;
                v
            }
            Some('"') => {
                let s = i + 1;
                i += 1;
                while i < chars.len() && chars[i] != '"' {
                    i += 1;
                }
                if i >= chars.len() {
                    return Err(err("unterminated quoted value"));
                }
                let v: String = chars[s..i].iter().collect();
                i += 1;
                v
            }
            Some(_) => {
                let s = i;
                while i < chars.len() && !matches!(chars[i], ',' | '}' | ')') {
                    i += 1;
                }
                chars[s..i].iter().collect::<String>().trim().to_owned()
            }
            None => return Err(err("missing value")),
        };
        entry.fields.push((name, value));
    }
    Ok(entry)
}

/// Maps whatever type an engine wrote (`Article`, `Conference`, S2's historic
/// `['JournalArticle', 'Conference']`) to a standard BibTeX type.
fn normalise_kind(raw: &str) -> String {
    let words: Vec<String> = raw
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(|w| w.to_ascii_lowercase())
        .collect();
    for w in &words {
        let kind = match w.as_str() {
            "article" | "journalarticle" | "review" => "article",
            "inproceedings" | "conference" | "proceedingsarticle" => "inproceedings",
            "book" => "book",
            "inbook" | "booksection" => "inbook",
            "incollection" => "incollection",
            "phdthesis" => "phdthesis",
            "mastersthesis" => "mastersthesis",
            "techreport" => "techreport",
            "proceedings" => "proceedings",
            "misc" | "unpublished" | "online" | "dataset" => "misc",
            _ => continue,
        };
        return kind.to_owned();
    }
    "misc".to_owned()
}

/// Normalises an engine's BibTeX so it can go into a `.bib` file as is: a standard
/// type, a key made of safe characters, repaired author names, escaped specials,
/// `pages` with an en dash. Fails only when the text is not an entry at all.
pub fn sanitize(raw: &str) -> Result<String, BibtexError> {
    let mut entry = parse_entry(raw)?;
    entry.key = entry
        .key
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || "-_:.".contains(*c))
        .collect();
    if entry.key.is_empty() {
        let title = entry.get("title").unwrap_or("").to_owned();
        let year = entry.get("year").and_then(|y| y.trim().parse().ok());
        let author = entry
            .get("author")
            .map(|a| a.split(" and ").next().unwrap_or("").to_owned());
        entry.key = make_key(author.as_deref(), year, &title);
    }
    for (name, value) in entry.fields.iter_mut() {
        *value = match name.as_str() {
            "author" | "editor" => value
                .split(" and ")
                .map(|a| clean_value(&fix_author(a)))
                .filter(|a| !a.is_empty())
                .collect::<Vec<_>>()
                .join(" and "),
            "pages" => clean_value(value)
                .split('-')
                .map(str::trim)
                .filter(|p| !p.is_empty())
                .collect::<Vec<_>>()
                .join("--"),
            "url" | "doi" => value.trim().to_owned(),
            _ => clean_value(value),
        };
    }
    entry.fields.retain(|(_, v)| !v.is_empty());
    if entry.get("title").is_none() {
        return Err(BibtexError("no title".into()));
    }
    Ok(entry.render())
}

/// Checks that `src` is one well-formed entry with a type, key and title.
pub fn validate(src: &str) -> Result<(), BibtexError> {
    let entry = parse_entry(src)?;
    if entry.key.is_empty() {
        return Err(BibtexError("empty key".into()));
    }
    if entry.get("title").is_none() {
        return Err(BibtexError("no title".into()));
    }
    if !braces_balanced(src) {
        return Err(BibtexError("unbalanced braces".into()));
    }
    Ok(())
}

/// An entry from a paper's metadata alone, for engines that gave none.
pub fn from_paper(paper: &Paper) -> BibEntry {
    let key = make_key(
        paper.authors.first().map(String::as_str),
        paper.year,
        &paper.title,
    );
    let venue = paper.venue.as_deref().filter(|v| !v.trim().is_empty());
    let is_arxiv_only =
        paper.arxiv_id.is_some() && venue.is_none_or(|v| v.to_ascii_lowercase().starts_with("arxiv"));
    let kind = if is_arxiv_only || venue.is_none() {
        "misc"
    } else {
        "article"
    };
    let mut e = BibEntry::new(kind, key);
    e.text("title", Some(&paper.title));
    e.raw("author", Some(&author_list(&paper.authors)));
    if kind == "article" {
        e.text("journal", venue);
    }
    e.raw("year", paper.year.map(|y| y.to_string()).as_deref());
    if let Some(id) = &paper.arxiv_id {
        e.raw("eprint", Some(id));
        e.raw("archiveprefix", Some("arXiv"));
    }
    e.raw("doi", paper.doi.as_deref());
    e.raw("url", paper.url.as_deref());
    e
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_fold_accents_and_skip_stopwords() {
        assert_eq!(
            make_key(Some("Jakub Lála"), Some(2023), "The PaperQA: agents"),
            "lala2023paperqa"
        );
        assert_eq!(make_key(None, None, "A"), "anonnd");
        assert_eq!(
            make_key(Some("Odhran O'Donoghue"), Some(2020), "On large-scale x"),
            "odonoghue2020large"
        );
    }

    #[test]
    fn dedupe_keeps_first_and_suffixes_later() {
        let mut keys = vec!["a2020x".to_string(), "a2020x".into(), "b".into(), "a2020x".into()];
        dedupe_keys(keys.iter_mut());
        assert_eq!(keys, ["a2020x", "a2020xb", "b", "a2020xc"]);
        // A literal key that looks like a suffixed one is not reused.
        let mut keys = vec!["k".to_string(), "kb".into(), "K".into()];
        dedupe_keys(keys.iter_mut());
        assert_eq!(keys, ["k", "kb", "Kc"]);
    }

    #[test]
    fn escaping() {
        assert_eq!(escape("R&D 100% #1 a_b"), r"R\&D 100\% \#1 a\_b");
        assert_eq!(escape(r"already \& ok"), r"already \& ok");
        assert_eq!(escape("set {x}"), r"set \{x\}");
        assert_eq!(escape("open { only"), r"open \textbraceleft{} only");
        assert!(braces_balanced(&escape("} x {")));
    }

    #[test]
    fn odd_authors_are_repaired() {
        assert_eq!(
            fix_author("Kyriacos, Κυριάκος, Athanasiou, Αθανασίου"),
            "Kyriacos Athanasiou"
        );
        assert_eq!(fix_author("Bran, Andres M"), "Bran, Andres M");
        assert_eq!(last_first("Andres M. Bran"), "Bran, Andres M.");
    }

    #[test]
    fn historic_s2_type_is_mapped() {
        let raw = "@['JournalArticle', 'Conference']{X2020Y,\n title = {T & U},\n pages = {1 - 5},\n year = {2020}\n}\n";
        let out = sanitize(raw).unwrap();
        assert!(out.starts_with("@article{X2020Y,"), "{out}");
        assert!(out.contains(r"{T \& U}"), "{out}");
        assert!(out.contains("{1--5}"), "{out}");
        validate(&out).unwrap();
    }

    #[test]
    fn bibliography_makes_keys_unique() {
        let a = "@article{smith2020deep,\n title = {Deep A},\n year = {2020}\n}\n";
        let b = "@misc{Smith2020deep,\n title = {Deep B},\n year = {2020}\n}\n";
        let (text, keys) = bibliography(&[a, "junk", b]);
        assert_eq!(
            keys,
            [Some("smith2020deep".into()), None, Some("Smith2020deepb".into())]
        );
        assert!(text.contains("@misc{Smith2020deepb,"), "{text}");
        assert_eq!(text.matches('@').count(), 2);
    }

    #[test]
    fn garbage_is_an_error() {
        assert!(sanitize("not bibtex").is_err());
        assert!(sanitize("@article{k, title = {unclosed}").is_err());
    }
}
