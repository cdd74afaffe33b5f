//! The numbers a paper claims as results, each with the words that say what it is: the
//! abstract, the results-like sections, every table and every caption. In prose a
//! number's context is its sentence; in a table, its column header, its row's labels and
//! the caption.

use std::ops::Range;

use crate::latex::checks::numbers_in;
use crate::latex::syntax::{braced_after, TexFacts};

/// One number the paper states.
#[derive(Debug, Clone, PartialEq)]
pub struct Claim {
    pub span: Range<usize>,
    /// As written: `0.97`, `12.5%`.
    pub written: String,
    pub value: f64,
    /// Digits after the point.
    pub decimals: i32,
    pub percent: bool,
    /// Followed by `×`, `x` or "times": a ratio.
    pub ratio: bool,
    /// Lower-case words of its sentence, or of its table header, row and caption.
    pub context: String,
    /// The sentence before, in the same paragraph (prose only): where "it is 0.19" finds
    /// what "it" is.
    pub before: String,
    /// Where the words are a table's: its row label (for the run it names).
    pub row_label: Option<String>,
    /// "from X to <this>": X.
    pub from: Option<f64>,
}

/// Sections whose numbers are results.
fn is_results_title(title: &str) -> bool {
    let t = title.to_lowercase();
    // "Experimental Setup" states settings; they are checked against the code only in tables.
    if [
        "setup",
        "set-up",
        "implementation",
        "detail",
        "hyperparameter",
        "configuration",
    ]
    .iter()
    .any(|w| t.contains(w))
    {
        return false;
    }
    [
        "result",
        "experiment",
        "evaluation",
        "analysis",
        "ablation",
        "discussion",
        "conclusion",
        "finding",
    ]
    .iter()
    .any(|w| t.contains(w))
}

const TABLES: &[&str] = &["tabular", "tabular*", "tabularx", "longtable", "tabulary"];

/// Every claimed number of the paper, in order.
pub fn claims(src: &str, facts: &TexFacts) -> Vec<Claim> {
    let mut regions: Vec<Range<usize>> = Vec::new();
    for e in &facts.environments {
        if e.name == "abstract" || TABLES.contains(&e.name.as_str()) {
            regions.push(e.begin.end..e.end.as_ref().map(|r| r.start).unwrap_or(src.len()));
        }
    }
    for s in facts
        .sections
        .iter()
        .filter(|s| s.level <= 3 && is_results_title(&s.title))
    {
        regions.push(s.heading.end..s.body.end);
    }
    let captions = caption_spans(src);
    regions.extend(captions.iter().cloned());
    let mut seen: Vec<Range<usize>> = Vec::new();
    let mut out = Vec::new();
    for region in regions {
        for (span, written) in numbers_in(src, region.clone(), facts) {
            if seen.contains(&span) || is_version(src, span.start) {
                continue;
            }
            seen.push(span.clone());
            let Some(claim) = claim_at(src, facts, &captions, &region, span, written) else {
                continue;
            };
            out.push(claim);
        }
    }
    out.sort_by_key(|c| c.span.start);
    out
}

fn claim_at(
    src: &str,
    facts: &TexFacts,
    captions: &[Range<usize>],
    region: &Range<usize>,
    span: Range<usize>,
    written: String,
) -> Option<Claim> {
    let num = written.trim_end_matches('%');
    let value: f64 = num.parse().ok()?;
    let decimals = num.split_once('.').map(|(_, d)| d.len()).unwrap_or(0) as i32;
    let after = src[span.end..].trim_start_matches("\\%").trim_start_matches('%');
    let after = after.trim_start_matches(['~', ' ', '$', '{', '}']);
    let ratio = after.starts_with('×')
        || after.starts_with("\\times")
        || after.starts_with("x ")
        || after.starts_with("times")
        || after.starts_with("fold");
    let table = facts.environments.iter().find(|e| {
        TABLES.contains(&e.name.as_str())
            && e.begin.end <= span.start
            && e.end.as_ref().is_some_and(|r| span.end <= r.start)
    });
    let (context, before, row_label) = match table {
        Some(t) => {
            let body = t.begin.end..t.end.as_ref().map(|r| r.start).unwrap_or(src.len());
            let (words, label) = cell_context(src, body, span.start);
            let caption = enclosing_caption(src, facts, captions, span.start).unwrap_or_default();
            (format!("{words} {}", words_of(&caption)), String::new(), label)
        }
        None => {
            let here = sentence(src, span.clone(), region);
            let before = previous_sentence(src, &here, region)
                .map(|r| words_of(&src[r]))
                .unwrap_or_default();
            (words_of(&src[here]), before, None)
        }
    };
    Some(Claim {
        from: from_value(src, span.start),
        percent: written.ends_with('%'),
        span,
        written,
        value,
        decimals,
        ratio,
        context,
        before,
        row_label,
    })
}

/// The sentence that ends where `here` starts, unless a paragraph or list item starts there.
fn previous_sentence(src: &str, here: &Range<usize>, region: &Range<usize>) -> Option<Range<usize>> {
    let head = &src[..here.start];
    if here.start <= region.start + 1 || head.ends_with("\n\n") || head.ends_with("\\item") {
        return None;
    }
    // `here` starts just after the previous sentence's closing mark.
    let mark = here.start - 1;
    let prev = sentence(src, mark..mark, region);
    (prev.start < prev.end).then_some(prev)
}

/// "PyTorch 1.9", "Python 3.11", "v2.1": a version, checked against `env.json` instead.
fn is_version(src: &str, at: usize) -> bool {
    let before = src[..at].trim_end_matches([' ', '~']).to_lowercase();
    before.ends_with('v') && !before[..before.len() - 1].ends_with(|c: char| c.is_alphanumeric())
        || super::env::SOFTWARE.iter().any(|w| before.ends_with(w))
}

/// The lower-case words of LaTeX text (commands' names dropped, `_` a space).
pub fn words_of(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars().peekable();
    while let Some(c) = chars.next() {
        if c == '\\' {
            // A command name is not a word of the text.
            while chars.peek().is_some_and(|c| c.is_ascii_alphabetic()) {
                chars.next();
            }
            out.push(' ');
        } else if c.is_alphanumeric() || c == '.' {
            out.extend(c.to_lowercase());
        } else {
            out.push(' ');
        }
    }
    out.split_whitespace()
        .map(|w| w.trim_matches('.'))
        .filter(|w| !w.is_empty())
        .collect::<Vec<_>>()
        .join(" ")
}

/// The sentence around `span`: from the previous sentence end (". ", "? ", a blank line, a
/// table row end) to the next.
fn sentence(src: &str, span: Range<usize>, region: &Range<usize>) -> Range<usize> {
    let ends = |s: &str, i: usize| -> bool {
        let b = s.as_bytes();
        let next_space = b.get(i + 1).is_none_or(|c| c.is_ascii_whitespace());
        let prev_digit = i > 0 && b[i - 1].is_ascii_digit() && b.get(i + 1).is_some_and(u8::is_ascii_digit);
        matches!(b[i], b'.' | b'?' | b'!') && next_space && !prev_digit
    };
    let bytes = src.as_bytes();
    // A list item is a sentence of its own.
    let item = |s: &str| s.ends_with("\\item") || s.ends_with("\n\n");
    let mut start = span.start;
    while start > region.start {
        if ends(src, start - 1) || item(&src[..start]) {
            break;
        }
        start -= 1;
    }
    let mut end = span.end;
    while end < bytes.len().min(region.end) {
        if ends(src, end) || src[end..].starts_with("\n\n") || src[end..].starts_with("\\item") {
            break;
        }
        end += 1;
    }
    while !src.is_char_boundary(start) {
        start += 1;
    }
    while !src.is_char_boundary(end) {
        end -= 1;
    }
    start..end.max(start)
}

/// "from 0.95 to 0.97": the value after "from", when the number at `at` follows "to".
fn from_value(src: &str, at: usize) -> Option<f64> {
    let before = src[..at].trim_end_matches(['~', ' ', '$']);
    let before = before.strip_suffix("to")?;
    let before = before.trim_end_matches(['~', ' ', '$']);
    let before = before
        .strip_suffix("\\%")
        .or_else(|| before.strip_suffix('%'))
        .unwrap_or(before);
    let digits = before
        .char_indices()
        .rev()
        .take_while(|(_, c)| c.is_ascii_digit() || *c == '.')
        .last()
        .map(|(i, _)| i)?;
    let x: f64 = before[digits..].parse().ok()?;
    before[..digits]
        .trim_end_matches(['~', ' ', '$'])
        .to_lowercase()
        .ends_with("from")
        .then_some(x)
}

/// The `{…}` arguments of every `\caption`.
fn caption_spans(src: &str) -> Vec<Range<usize>> {
    let mut out = Vec::new();
    let mut from = 0;
    while let Some(i) = src[from..].find("\\caption").map(|i| from + i) {
        let arg = src[i + "\\caption".len()..].trim_start_matches(['*', ' ']);
        if arg.starts_with('{') || arg.starts_with('[') {
            if let Some(n) = braced_after(src, i) {
                out.push(n.span);
            }
        }
        from = i + 1;
    }
    out
}

/// The caption of the float around `at`.
fn enclosing_caption(src: &str, facts: &TexFacts, captions: &[Range<usize>], at: usize) -> Option<String> {
    let float = facts.environments.iter().find(|e| {
        matches!(e.name.as_str(), "table" | "table*" | "figure" | "figure*")
            && e.begin.start <= at
            && e.end.as_ref().is_some_and(|r| at <= r.start)
    })?;
    let end = float.end.as_ref()?.start;
    captions
        .iter()
        .find(|c| float.begin.end <= c.start && c.end <= end)
        .map(|c| src[c.clone()].to_string())
}

/// A table cell's words: its column's header, its row's text cells (the row label
/// carried down from the rows above when a `\multirow` left it empty), and the label.
fn cell_context(src: &str, body: Range<usize>, at: usize) -> (String, Option<String>) {
    let rows: Vec<(usize, &str)> = split_rows(&src[body.clone()])
        .into_iter()
        .map(|(off, r)| (body.start + off, r))
        .collect();
    let cells = |row: &str| -> Vec<String> { split_cells(row).into_iter().map(words_of).collect() };
    let has_number = |c: &str| c.chars().any(|ch| ch.is_ascii_digit());
    let header = rows.iter().map(|(_, r)| cells(r)).find(|cs| {
        cs.iter().filter(|c| !c.is_empty()).count() >= 2 && cs.iter().all(|c| !has_number(c) || c.is_empty())
    });
    let mut label: Option<String> = None;
    for (start, row) in &rows {
        let cs = cells(row);
        let first = cs.first().cloned().unwrap_or_default();
        let first = first.trim_start_matches("multirow").trim();
        let first = first
            .trim_start_matches(|c: char| c.is_ascii_digit() || c == ' ')
            .to_string();
        if !first.is_empty() && !has_number(&first) {
            label = Some(first);
        }
        let end = start + row.len();
        if !(*start <= at && at <= end) {
            continue;
        }
        let col = split_cells(&src[*start..at]).len().saturating_sub(1);
        let head = header
            .as_ref()
            .and_then(|h| h.get(col))
            .cloned()
            .unwrap_or_default();
        let text: Vec<String> = cs.into_iter().filter(|c| !has_number(c)).collect();
        return (
            format!("{head} {} {}", text.join(" "), label.clone().unwrap_or_default()),
            label,
        );
    }
    (String::new(), None)
}

/// Rows of a tabular body (split at `\\`), with their offsets; rules are dropped.
fn split_rows(body: &str) -> Vec<(usize, &str)> {
    let mut out = Vec::new();
    let mut start = 0;
    for (i, _) in body.match_indices("\\\\") {
        if i >= start {
            out.push((start, &body[start..i]));
            start = i + 2;
        }
    }
    out.push((start, &body[start..]));
    out
}

/// Cells of a row, split at unescaped `&`.
fn split_cells(row: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut start = 0;
    let b = row.as_bytes();
    for (i, c) in b.iter().enumerate() {
        if *c == b'&' && (i == 0 || b[i - 1] != b'\\') {
            out.push(&row[start..i]);
            start = i + 1;
        }
    }
    out.push(&row[start..]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latex::syntax::{facts, parse};

    const PAPER: &str = "\\begin{document}\n\\begin{abstract}\nA wider layer raises mean validation accuracy on blobs from 0.95 to 0.97.\n\\end{abstract}\n\\section{Method}\nWe train with a step size of 0.05.\n\\section{Results}\nOn dino, KL falls by 12.8\\% to 0.82. Training is 2.0$\\times$ slower.\n\\begin{table}[h]\n\\caption{KL divergence per run}\n\\begin{tabular}{lcc}\n\\toprule\nRun & Dataset & KL Divergence \\\\\n\\midrule\n\\multirow{2}{*}{Baseline} & Circle & 0.354 \\\\\n & Dino & 0.989 \\\\\n\\bottomrule\n\\end{tabular}\n\\end{table}\n\\end{document}\n";

    #[test]
    fn results_numbers_with_their_words() {
        let f = facts(&parse(PAPER), PAPER);
        let cs = claims(PAPER, &f);
        let written: Vec<&str> = cs.iter().map(|c| c.written.as_str()).collect();
        // The method's step size is not a result; the table's and the abstract's are.
        assert_eq!(
            written,
            ["0.95", "0.97", "12.8%", "0.82", "2.0", "0.354", "0.989"]
        );
        assert_eq!(cs[1].from, Some(0.95));
        assert!(
            cs[1].context.contains("mean validation accuracy on blobs"),
            "{}",
            cs[1].context
        );
        assert!(cs[2].percent && !cs[2].ratio);
        assert!(cs[4].ratio);
        assert!(cs[3].context.starts_with("on dino kl falls"), "{}", cs[3].context);
        // A cell: its header, the row's dataset, the label carried down, the caption.
        let dino = &cs[6];
        assert_eq!(dino.row_label.as_deref(), Some("baseline"));
        for w in ["kl divergence", "dino", "baseline", "per run"] {
            assert!(dino.context.contains(w), "{w}: {}", dino.context);
        }
        assert!(!dino.context.contains("circle"), "{}", dino.context);
    }
}
