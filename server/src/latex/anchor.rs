//! Where a reviewer's comment applies in the `.tex`: the quoted passage found as written,
//! else found again after LaTeX markup, punctuation, hyphenation and spacing are set
//! aside on both sides (a quote copied from the PDF rarely matches the source as is),
//! else the heading of the section named, else `\title`, else `\begin{document}`.

use std::ops::Range;

use unicode_normalization::UnicodeNormalization;

use super::syntax::TexFacts;

/// How a comment was placed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnchorHow {
    /// The quote, character for character.
    Quote,
    /// The quote after normalising both texts (all of it, or a long part of it).
    Normalized,
    /// The heading of the section named.
    Section,
    Title,
    /// Nothing matched: the start of the document.
    Document,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Anchor {
    pub span: Range<usize>,
    pub how: AnchorHow,
}

/// Normalised quotes shorter than this are not searched in pieces (too easy to match by
/// chance).
const MIN_PIECE: usize = 24;

/// Places a comment with an optional `quote` and `section` in `src`.
pub fn anchor(src: &str, facts: &TexFacts, quote: Option<&str>, section: Option<&str>) -> Anchor {
    Anchorer::new(src, facts).place(quote, section)
}

/// Places many comments in one text: the document's normalised text is computed once.
pub struct Anchorer<'a> {
    src: &'a str,
    facts: &'a TexFacts,
    body_start: usize,
    /// The body from `\begin{document}` on, normalised, with each character's source bytes.
    norm: Vec<char>,
    offsets: Vec<(usize, usize)>,
}

impl<'a> Anchorer<'a> {
    pub fn new(src: &'a str, facts: &'a TexFacts) -> Self {
        let body_start = facts
            .environments
            .iter()
            .find(|e| e.name == "document")
            .map(|e| e.begin.start)
            .unwrap_or(0);
        let (norm, mut offsets) = normalize_source(&src[body_start..]);
        for o in &mut offsets {
            o.0 += body_start;
        }
        Self {
            src,
            facts,
            body_start,
            norm,
            offsets,
        }
    }

    pub fn place(&self, quote: Option<&str>, section: Option<&str>) -> Anchor {
        let (src, facts, body_start) = (self.src, self.facts, self.body_start);
        let section_span = section.and_then(|s| section_range(facts, s));
        if let Some(q) = quote.map(str::trim).filter(|q| !q.is_empty()) {
            // Inside the named section first: the same words may occur twice in a paper.
            let regions = section_span
                .iter()
                .map(|(_, body)| body.clone())
                .chain(std::iter::once(body_start..src.len()));
            for region in regions {
                if let Some(a) = self.find_quote(region, q) {
                    return a;
                }
            }
        }
        if let Some((heading, _)) = section_span {
            return Anchor {
                span: heading,
                how: AnchorHow::Section,
            };
        }
        if let Some(t) = &facts.title {
            return Anchor {
                span: t.clone(),
                how: AnchorHow::Title,
            };
        }
        let end = src[body_start..]
            .find('\n')
            .map(|i| body_start + i)
            .unwrap_or(src.len());
        Anchor {
            span: body_start..end,
            how: AnchorHow::Document,
        }
    }

    /// Places a comment however the model wrote it: its `quote` and `section` fields
    /// where it gave them, else the passages its text quotes and the section it names.
    pub fn place_comment(&self, text: &str, quote: Option<&str>, section: Option<&str>) -> Anchor {
        let named = match section {
            Some(s) => Some(s.to_string()),
            None => super::mentions::section_named(text, self.src, self.facts),
        };
        let section = named.as_deref();
        if quote.is_some_and(|q| !q.trim().is_empty()) {
            return self.place(quote, section);
        }
        for q in super::mentions::quoted(text) {
            let a = self.place(Some(q), section);
            if matches!(a.how, AnchorHow::Quote | AnchorHow::Normalized) {
                return a;
            }
        }
        self.place(None, section)
    }

    fn find_quote(&self, region: Range<usize>, quote: &str) -> Option<Anchor> {
        let hay = &self.src[region.clone()];
        if let Some(i) = hay.find(quote) {
            let start = region.start + i;
            return Some(Anchor {
                span: start..start + quote.len(),
                how: AnchorHow::Quote,
            });
        }
        // The normalised characters whose source lies in the region.
        let a = self.offsets.partition_point(|o| o.0 < region.start);
        let b = self.offsets.partition_point(|o| o.0 < region.end);
        find_normalized(&self.norm[a..b], &self.offsets[a..b], quote)
    }
}

/// The quote in normalised text (`norm`, with each character's source bytes).
fn find_normalized(norm: &[char], offsets: &[(usize, usize)], quote: &str) -> Option<Anchor> {
    let want = normalize_plain(quote);
    if want.is_empty() {
        return None;
    }
    let span_of = |at: usize, len: usize| -> Range<usize> {
        let (first, _) = offsets[at];
        let (last, last_len) = offsets[at + len - 1];
        first..last + last_len
    };
    if let Some(at) = find_chars(norm, &want) {
        return Some(Anchor {
            span: span_of(at, want.len()),
            how: AnchorHow::Normalized,
        });
    }
    if want.len() < 2 * MIN_PIECE {
        return None;
    }
    // A quote the model shortened, or that crosses math the PDF renders differently:
    // the longest prefix and the longest suffix that occur, joined when they are in order
    // and close.
    let prefix = longest(norm, &want, true);
    let suffix = longest(norm, &want, false);
    let span = match (prefix, suffix) {
        (Some((pa, pl)), Some((sa, sl))) if sa >= pa + pl && sa + sl - pa <= 2 * want.len() => {
            let a = span_of(pa, pl);
            let b = span_of(sa, sl);
            a.start..b.end
        }
        (Some((pa, pl)), Some((sa, sl))) => {
            if pl >= sl {
                span_of(pa, pl)
            } else {
                span_of(sa, sl)
            }
        }
        (Some((a, l)), None) | (None, Some((a, l))) => span_of(a, l),
        (None, None) => return None,
    };
    Some(Anchor {
        span,
        how: AnchorHow::Normalized,
    })
}

/// The longest prefix (or suffix) of `want`, at least `MIN_PIECE` long, found in `hay`:
/// its position in `hay` and its length. Binary search: a piece that occurs has every
/// shorter piece on the same side occurring too.
fn longest(hay: &[char], want: &[char], prefix: bool) -> Option<(usize, usize)> {
    let piece = |len: usize| {
        if prefix {
            &want[..len]
        } else {
            &want[want.len() - len..]
        }
    };
    let mut found = find_chars(hay, piece(MIN_PIECE)).map(|at| (at, MIN_PIECE))?;
    let (mut lo, mut hi) = (MIN_PIECE, want.len());
    while lo < hi {
        let mid = (lo + hi).div_ceil(2);
        match find_chars(hay, piece(mid)) {
            Some(at) => {
                found = (at, mid);
                lo = mid;
            }
            None => hi = mid - 1,
        }
    }
    Some(found)
}

fn find_chars(hay: &[char], needle: &[char]) -> Option<usize> {
    if needle.is_empty() || needle.len() > hay.len() {
        return None;
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

/// A plain-text quote as letters and digits only, lower-case, ligatures and other
/// compatibility characters unfolded (`ﬁ` → `fi`).
pub fn normalize_plain(text: &str) -> Vec<char> {
    text.nfkc()
        .flat_map(char::to_lowercase)
        .filter(|c| c.is_alphanumeric())
        .collect()
}

/// Commands whose arguments are not running text (keys, files, environments, lengths).
pub(crate) const SKIP_ARGS: &[&str] = &[
    "cite",
    "nocite",
    "pageref",
    "citep",
    "citet",
    "citealp",
    "citeauthor",
    "citeyear",
    "ref",
    "eqref",
    "autoref",
    "cref",
    "Cref",
    "label",
    "includegraphics",
    "begin",
    "end",
    "usepackage",
    "bibliography",
    "bibliographystyle",
    "graphicspath",
    "url",
    "hypersetup",
    "vspace",
    "hspace",
    "input",
    "include",
];

/// LaTeX source as letters and digits only (lower-case), with the byte offset and length
/// of each kept character in `src`. Command names, comments, and the arguments of
/// commands that hold keys or file names are left out; the text of other arguments stays.
pub fn normalize_source(src: &str) -> (Vec<char>, Vec<(usize, usize)>) {
    let b = src.as_bytes();
    let mut chars = Vec::with_capacity(src.len());
    let mut offsets = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < b.len() {
        match b[i] {
            b'%' => {
                i = src[i..].find('\n').map(|n| i + n).unwrap_or(b.len());
            }
            b'\\' => {
                let name_end = i + 1 + b[i + 1..].iter().take_while(|c| c.is_ascii_alphabetic()).count();
                if name_end == i + 1 {
                    // `\%`, `\&`, `\\`: a symbol, not text.
                    i = (i + 2).min(b.len());
                    continue;
                }
                let name = &src[i + 1..name_end];
                i = name_end;
                if SKIP_ARGS.contains(&name) {
                    i = skip_args(b, i);
                }
            }
            _ => {
                if b[i].is_ascii() {
                    if b[i].is_ascii_alphanumeric() {
                        chars.push(b[i].to_ascii_lowercase() as char);
                        offsets.push((i, 1));
                    }
                    i += 1;
                    continue;
                }
                let c = src[i..].chars().next().expect("i is on a char boundary");
                let len = c.len_utf8();
                for n in std::iter::once(c).nfkc().flat_map(char::to_lowercase) {
                    if n.is_alphanumeric() {
                        chars.push(n);
                        offsets.push((i, len));
                    }
                }
                i += len;
            }
        }
    }
    (chars, offsets)
}

/// Past a command's `*`, `[...]` and `{...}` arguments (with spaces between them).
fn skip_args(b: &[u8], mut i: usize) -> usize {
    if b.get(i) == Some(&b'*') {
        i += 1;
    }
    loop {
        let mut j = i;
        while b.get(j).is_some_and(|c| *c == b' ') {
            j += 1;
        }
        let close = match b.get(j) {
            Some(b'{') => b'}',
            Some(b'[') => b']',
            _ => return i,
        };
        let open = b[j];
        let mut depth = 0usize;
        let mut k = j;
        while k < b.len() {
            if b[k] == b'\\' {
                k += 2;
                continue;
            }
            if b[k] == open {
                depth += 1;
            } else if b[k] == close {
                depth -= 1;
                if depth == 0 {
                    break;
                }
            }
            k += 1;
        }
        i = (k + 1).min(b.len());
    }
}

/// The heading and body of the section `name` names: "Title", "Abstract", or a section
/// title (compared as letters and digits, ignoring a leading number; exact first, then
/// one containing the other).
pub(crate) fn section_range(facts: &TexFacts, name: &str) -> Option<(Range<usize>, Range<usize>)> {
    let want: Vec<char> =
        normalize_plain(name.trim_start_matches(|c: char| c.is_ascii_digit() || c == '.' || c == ' '));
    if want.is_empty() {
        return None;
    }
    let is = |w: &str| want == normalize_plain(w);
    if is("title") {
        return facts.title.clone().map(|t| (t.clone(), t));
    }
    if is("abstract") {
        if let Some(e) = facts.environments.iter().find(|e| e.name == "abstract") {
            let end = e.end.as_ref().map(|r| r.end).unwrap_or(e.begin.end);
            return Some((e.begin.clone(), e.begin.start..end));
        }
    }
    let titles: Vec<(Vec<char>, &super::syntax::Section)> = facts
        .sections
        .iter()
        .map(|s| (normalize_source(&s.title).0, s))
        .collect();
    let contains = |a: &[char], b: &[char]| !b.is_empty() && a.windows(b.len()).any(|w| w == b);
    let found = titles.iter().find(|(t, _)| *t == want).or_else(|| {
        titles
            .iter()
            .find(|(t, _)| contains(t, &want) || contains(&want, t))
    });
    found.map(|(_, s)| (s.heading.clone(), s.body.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latex::syntax::{facts, parse};

    const SRC: &str = "\\documentclass{article}\n\\title{Dual Scales}\n\\begin{document}\n\\maketitle\n\\begin{abstract}\nWe study two scales.\n\\end{abstract}\n\\section{Results}\nOur model reduces the \\textbf{KL divergence} by 12.8\\% on the dino dataset~\\citep{ho2020}.\n% a comment about dino\n\\section{Conclusion}\nTwo scales help.\n\\end{document}\n";

    fn place(q: Option<&str>, s: Option<&str>) -> (AnchorHow, String) {
        let f = facts(&parse(SRC), SRC);
        let a = anchor(SRC, &f, q, s);
        (a.how, SRC[a.span].to_string())
    }

    #[test]
    fn exact_then_normalized_then_section_then_title() {
        assert_eq!(
            place(Some("Two scales help."), None),
            (AnchorHow::Quote, "Two scales help.".into())
        );
        let (how, text) = place(
            Some("reduces the KL divergence by 12.8% on the dino dataset"),
            None,
        );
        assert_eq!(how, AnchorHow::Normalized);
        assert_eq!(
            text,
            "reduces the \\textbf{KL divergence} by 12.8\\% on the dino dataset"
        );
        assert_eq!(
            place(Some("not in the paper at all"), Some("4 Results")),
            (AnchorHow::Section, "\\section{Results}".into())
        );
        assert_eq!(place(None, Some("abstract")).0, AnchorHow::Section);
        assert_eq!(
            place(Some("nowhere"), Some("Appendix")),
            (AnchorHow::Title, "\\title{Dual Scales}".into())
        );
    }

    #[test]
    fn pdf_ligatures_hyphenation_and_a_shortened_quote() {
        let (how, text) = place(Some("Our model re-\nduces the KL divergence"), None);
        assert_eq!(
            (how, text.as_str()),
            (
                AnchorHow::Normalized,
                "Our model reduces the \\textbf{KL divergence"
            )
        );
        let src = "\\begin{document}\n\\section{Method}\nThe signiﬁcant local branch upsamples the input before the denoiser sees it at every step.\n\\end{document}\n";
        let f = facts(&parse(src), src);
        let a = anchor(src, &f, Some("The significant local branch up-\nsamples the input before the denoiser sees it at every timestep of training"), None);
        assert_eq!(a.how, AnchorHow::Normalized);
        assert!(
            src[a.span.clone()].starts_with("The signiﬁcant local branch"),
            "{:?}",
            &src[a.span]
        );
    }

    #[test]
    fn comments_and_citation_keys_are_not_text() {
        let (how, _) = place(Some("about dino two scales help"), Some("Conclusion"));
        assert_eq!(how, AnchorHow::Section);
        let (how, _) = place(Some("dataset ho2020"), Some("Conclusion"));
        assert_eq!(how, AnchorHow::Section);
    }

    #[test]
    fn plain_string_comments_are_placed_by_what_they_quote_and_name() {
        let src = "\\title{Scales}\n\\begin{document}\n\\section{Method}\nWe use two branches.\n\\section{Results}\nThe loss fell to 0.125 in every run.\n\\end{document}\n";
        let f = facts(&parse(src), src);
        let a = Anchorer::new(src, &f);
        let at = |text: &str| {
            let p = a.place_comment(text, None, None);
            (p.how, src[p.span].to_string())
        };
        assert_eq!(
            at("The sentence \"The loss fell to 0.125 in every run.\" is not supported"),
            (AnchorHow::Quote, "The loss fell to 0.125 in every run.".into())
        );
        assert_eq!(
            at("The Method section refers to a figure that is not present"),
            (AnchorHow::Section, "\\section{Method}".into())
        );
        // A quote the paper does not hold falls back to the section named, then the title.
        assert_eq!(
            at("In the Results section, \u{201c}a figure with every seed\u{201d} is missing").0,
            AnchorHow::Section
        );
        assert_eq!(at("More ablations are needed.").0, AnchorHow::Title);
        // Fields the model gave win over what its text says.
        let p = a.place_comment("The Method section is vague", None, Some("Results"));
        assert_eq!(&src[p.span], "\\section{Results}");
    }
}
