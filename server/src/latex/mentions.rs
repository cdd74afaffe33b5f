//! What a reviewer's comment points at when the model wrote it as plain text, without
//! `quote` or `section` fields (v1's format): the passages it quotes inline ("…", “…”,
//! '…', `…`, ``…'') and the section it names ("the Method section", "in Section 3",
//! "the abstract").

use super::anchor::normalize_plain;
use super::syntax::TexFacts;

/// A quoted passage shorter than this (letters and digits) says too little to place a
/// comment: `"Fig"`, `'x'`.
const MIN_QUOTE: usize = 8;

/// The passages `text` quotes, longest first.
pub fn quoted(text: &str) -> Vec<&str> {
    let pairs: [(&str, &str); 6] = [
        ("``", "''"),
        ("\u{201c}", "\u{201d}"),
        ("\u{2018}", "\u{2019}"),
        ("\"", "\""),
        ("`", "`"),
        ("'", "'"),
    ];
    let mut out: Vec<&str> = Vec::new();
    // What a quote already took (delimiters included): `''` closing ``…'' opens nothing.
    let mut taken: Vec<std::ops::Range<usize>> = Vec::new();
    for (open, close) in pairs {
        let mut from = 0;
        while let Some(i) = text[from..].find(open).map(|i| from + i) {
            let start = i + open.len();
            if taken.iter().any(|t| t.contains(&i)) {
                from = start;
                continue;
            }
            // An apostrophe inside a word ("don't", "model's") opens nothing.
            if open == "'" && text[..i].chars().next_back().is_some_and(char::is_alphanumeric) {
                from = start;
                continue;
            }
            let Some(end) = closing(text, start, close) else {
                break;
            };
            taken.push(i..end + close.len());
            let inner = text[start..end].trim();
            if normalize_plain(inner).len() >= MIN_QUOTE && !out.contains(&inner) {
                out.push(inner);
            }
            from = end + close.len();
        }
    }
    out.sort_by_key(|q| std::cmp::Reverse(q.len()));
    out
}

/// Where `close` ends a quote opened before `from`; a single quote closes only where no
/// letter follows (so "it's" inside a quote does not end it).
fn closing(text: &str, from: usize, close: &str) -> Option<usize> {
    let mut at = from;
    while let Some(i) = text[at..].find(close).map(|i| at + i) {
        let after = text[i + close.len()..].chars().next();
        if close != "'" || !after.is_some_and(char::is_alphanumeric) {
            return Some(i);
        }
        at = i + close.len();
    }
    None
}

/// Words that come before "section" without naming one.
const NOT_NAMES: &[&str] = &[
    "the",
    "this",
    "that",
    "each",
    "every",
    "which",
    "a",
    "an",
    "its",
    "in",
    "of",
    "one",
    "same",
    "previous",
    "next",
    "following",
    "later",
    "earlier",
    "first",
    "last",
    "second",
    "whole",
    "entire",
    "corresponding",
    "relevant",
    "main",
    "final",
    "other",
    "another",
    "new",
];

/// Section names a comment may use without the word "section" ("the abstract is vague").
const BARE_NAMES: &[&str] = &[
    "abstract",
    "introduction",
    "related work",
    "background",
    "methodology",
    "method",
    "methods",
    "experimental setup",
    "experiments",
    "results",
    "discussion",
    "conclusion",
    "conclusions",
    "limitations",
];

/// The section `text` names, as a name the anchor's section lookup resolves (a title of
/// `facts`' sections, "abstract" or "title"); None when it names none the paper has.
pub fn section_named(text: &str, src: &str, facts: &TexFacts) -> Option<String> {
    let words = words(text);
    let lower: Vec<String> = words.iter().map(|w| w.to_lowercase()).collect();
    let is_section = |w: &str| matches!(w, "section" | "sections" | "sec" | "sect" | "§");
    for (i, w) in lower.iter().enumerate() {
        if !is_section(w) {
            continue;
        }
        // "Section 3", "Sec. 4.2", "§3".
        if let Some(title) = lower.get(i + 1).and_then(|n| numbered(src, facts, n)) {
            return Some(title);
        }
        // "the Experimental Setup section": the longest run of naming words before it.
        for len in (1..=3).rev() {
            let Some(from) = i.checked_sub(len) else {
                continue;
            };
            let name = &lower[from..i];
            if name
                .iter()
                .any(|w| NOT_NAMES.contains(&w.as_str()) || w.starts_with('§'))
            {
                continue;
            }
            let name = name.join(" ");
            if normalize_plain(&name).len() >= 4 && resolves(facts, &name) {
                return Some(name);
            }
        }
    }
    if let Some(n) = lower.iter().find_map(|w| w.strip_prefix('§')) {
        if let Some(title) = numbered(src, facts, n) {
            return Some(title);
        }
    }
    // "in the abstract", "the introduction claims": a usual name after "the", "in" or "of".
    let joined = format!(" {} ", lower.join(" "));
    for name in BARE_NAMES {
        let said = ["the", "in", "of"]
            .iter()
            .any(|p| joined.contains(&format!(" {p} {name} ")));
        if said && resolves(facts, name) {
            return Some(name.to_string());
        }
    }
    (joined.contains(" the title ") && facts.title.is_some()).then(|| "title".to_string())
}

/// Whether the paper has a section of that name.
fn resolves(facts: &TexFacts, name: &str) -> bool {
    super::anchor::section_range(facts, name).is_some()
}

/// The words of `text`: letters, digits, dots inside numbers and `§`.
fn words(text: &str) -> Vec<&str> {
    text.split(|c: char| !(c.is_alphanumeric() || c == '.' || c == '§' || c == '-'))
        .map(|w| w.trim_matches(|c: char| c == '.' || c == '-'))
        .filter(|w| !w.is_empty())
        .collect()
}

/// The title of section `n` ("3") or subsection `n.m` ("3.2") in the order the paper
/// numbers them (unnumbered `\section*` headings are not counted).
fn numbered(src: &str, facts: &TexFacts, n: &str) -> Option<String> {
    let parts: Vec<usize> = n
        .split('.')
        .map(|p| p.parse().ok())
        .collect::<Option<Vec<usize>>>()?;
    let (&first, rest) = parts.split_first()?;
    let numbered: Vec<&super::syntax::Section> = facts.sections.iter().filter(|s| !starred(src, s)).collect();
    let top = numbered.iter().map(|s| s.level).min()?;
    let section = numbered
        .iter()
        .filter(|s| s.level == top)
        .nth(first.checked_sub(1)?)?;
    match rest.first() {
        None => Some(section.title.clone()),
        Some(&sub) => numbered
            .iter()
            .filter(|s| {
                s.level == top + 1
                    && section.body.start <= s.heading.start
                    && s.heading.end <= section.body.end
            })
            .nth(sub.checked_sub(1)?)
            .map(|s| s.title.clone()),
    }
}

/// `\section*{…}`: a heading LaTeX does not number.
fn starred(src: &str, s: &super::syntax::Section) -> bool {
    src.get(s.heading.clone())
        .and_then(|h| h.split('{').next())
        .is_some_and(|cmd| cmd.trim_end().ends_with('*'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latex::syntax::{facts, parse};

    const SRC: &str = "\\title{Two Scales}\n\\begin{document}\n\\begin{abstract}\nWe study it.\n\\end{abstract}\n\\section{Introduction}\nIntro.\n\\section{Method}\nWe use two branches.\n\\subsection{Local branch}\nIt upsamples.\n\\subsection{Global branch}\nIt pools.\n\\section{Experimental Setup}\nFive seeds.\n\\section{Results}\nThe loss fell to 0.125 in every run.\n\\end{document}\n";

    fn named(text: &str) -> Option<String> {
        named_in(SRC, text)
    }

    fn named_in(src: &str, text: &str) -> Option<String> {
        let f = facts(&parse(src), src);
        section_named(text, src, &f)
    }

    #[test]
    fn quotes_in_every_usual_form() {
        let text = "The sentence \"The loss fell to 0.125 in every run.\" is not supported; \
                    ‘two branches’ is vague, `It upsamples the input` and ``the global branch'' \
                    too, and 'it pools everything' as well. Don't count the model's apostrophes.";
        let q = quoted(text);
        assert_eq!(q[0], "The loss fell to 0.125 in every run.");
        for want in [
            "two branches",
            "It upsamples the input",
            "the global branch",
            "it pools everything",
        ] {
            assert!(q.contains(&want), "{want}: {q:?}");
        }
        assert!(!q.iter().any(|s| s.contains("t count")), "{q:?}");
        assert!(quoted("The word \"Fig\" alone").is_empty());
        assert!(quoted("an unclosed \"quote that goes on").is_empty());
    }

    #[test]
    fn sections_by_name_number_and_usual_name() {
        assert_eq!(
            named("The Method section refers to a figure that is not present").as_deref(),
            Some("method")
        );
        assert_eq!(
            named("In Section 3, the seeds are not given.").as_deref(),
            Some("Experimental Setup")
        );
        assert_eq!(named("Sec. 2.2 is unclear").as_deref(), Some("Global branch"));
        assert_eq!(named("see §4").as_deref(), Some("Results"));
        assert_eq!(
            named("The experimental setup section omits the seeds").as_deref(),
            Some("experimental setup")
        );
        assert_eq!(
            named("Claims in the abstract are too strong").as_deref(),
            Some("abstract")
        );
        assert_eq!(
            named("The introduction overstates novelty").as_deref(),
            Some("introduction")
        );
        // Words that name no section of this paper, and numbers past its end.
        assert_eq!(named("The related work section is thin"), None);
        assert_eq!(named("In Section 9 the claim"), None);
        assert_eq!(named("The previous section and this section"), None);
        assert_eq!(named("The method lacks baselines").as_deref(), Some("method"));
        assert_eq!(named("More ablations are needed."), None);
    }

    #[test]
    fn starred_sections_are_not_numbered() {
        let src = "\\begin{document}\n\\section*{Preface}\nx\n\\section{Intro}\ny\n\\section{Results}\nz\n\\end{document}\n";
        assert_eq!(named_in(src, "Section 2 overclaims").as_deref(), Some("Results"));
    }
}
