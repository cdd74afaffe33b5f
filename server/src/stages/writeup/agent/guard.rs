//! What an edit of the paper must not do, whatever the SEARCH/REPLACE blocks say:
//! drop `\begin{document}`/`\end{document}` (the file would no longer build, and models
//! do this when they rewrite the end of the paper), or bring in HTML-like tags (models
//! trained on web text write `<b>` or `</p>` into LaTeX). An edit that does is refused
//! before anything is written.

const MARKERS: [&str; 2] = ["\\begin{document}", "\\end{document}"];

/// Tags that only HTML would use; `<` in mathematics (`$a<b$`) is not matched because a
/// tag needs one of these names right after `<` or `</` and a `>` on the same line.
const HTML_TAGS: [&str; 24] = [
    "a", "b", "i", "u", "p", "br", "hr", "em", "strong", "div", "span", "code", "pre", "ul", "ol", "li",
    "h1", "h2", "h3", "h4", "table", "tr", "td", "sup",
];

/// Why `after` may not replace `before`; empty when it may.
pub fn problems(before: &str, after: &str) -> Vec<String> {
    let mut out = Vec::new();
    for m in MARKERS {
        let (was, is) = (before.matches(m).count(), after.matches(m).count());
        if is < was {
            out.push(format!("the edit removes {m}; the document must keep it"));
        } else if is > was {
            out.push(format!("the edit adds a second {m}"));
        }
    }
    if out.is_empty() {
        if let (Some(b), Some(e)) = (after.find(MARKERS[0]), after.rfind(MARKERS[1])) {
            if e < b {
                out.push("the edit puts \\end{document} before \\begin{document}".into());
            }
        }
    }
    let old = html_tags(before);
    let new: Vec<String> = html_tags(after)
        .into_iter()
        .filter(|t| !old.contains(t))
        .collect();
    if !new.is_empty() {
        out.push(format!(
            "the edit adds HTML tags ({}); write LaTeX instead (\\textbf{{}}, \\emph{{}}, a blank line for a paragraph)",
            new.join(", ")
        ));
    }
    out
}

/// The distinct HTML-like tags in `text`, as written (`<b>`, `</p>`, `<div class="x">`).
pub fn html_tags(text: &str) -> Vec<String> {
    let mut found: Vec<String> = Vec::new();
    let bytes = text.as_bytes();
    let mut i = 0;
    while let Some(off) = text[i..].find('<') {
        let start = i + off;
        i = start + 1;
        let mut j = start + 1;
        if bytes.get(j) == Some(&b'/') {
            j += 1;
        }
        let name_start = j;
        while j < bytes.len() && bytes[j].is_ascii_alphanumeric() {
            j += 1;
        }
        let name = text[name_start..j].to_ascii_lowercase();
        if !HTML_TAGS.contains(&name.as_str()) {
            continue;
        }
        // The name must end there: `<br>`, `<b class=..>`, `<br/>`.
        match bytes.get(j) {
            Some(b'>') | Some(b' ') | Some(b'/') => {}
            _ => continue,
        }
        let line_end = text[j..].find('\n').map(|n| j + n).unwrap_or(text.len());
        let Some(close) = text[j..line_end].find('>') else {
            continue;
        };
        let tag = text[start..j + close + 1].to_string();
        if !found.contains(&tag) {
            found.push(tag);
        }
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\\documentclass{article}\n\\begin{document}\nHi.\n\\end{document}\n";

    #[test]
    fn removing_or_repeating_the_document_markers_is_refused() {
        let cut = DOC.replace("\\end{document}\n", "");
        assert_eq!(problems(DOC, &cut).len(), 1);
        assert!(problems(DOC, &cut)[0].contains("removes \\end{document}"));
        let twice = format!("{DOC}\\end{{document}}\n");
        assert!(problems(DOC, &twice)[0].contains("second"));
        assert!(problems(DOC, &DOC.replace("Hi.", "Hello.")).is_empty());
    }

    #[test]
    fn html_tags_are_refused_but_math_is_not() {
        let html = DOC.replace("Hi.", "<b>Hi</b> there.<br/>");
        let p = problems(DOC, &html);
        assert_eq!(p.len(), 1, "{p:?}");
        assert!(
            p[0].contains("<b>") && p[0].contains("</b>") && p[0].contains("<br/>"),
            "{p:?}"
        );
        let math = DOC.replace("Hi.", "We have $a<b$ and $i < p$ and $x <a> y$ is odd.");
        // `<a>` would be a tag; plain comparisons are not.
        assert_eq!(html_tags("$a<b$ and $i < p$ and $0<i<n$"), Vec::<String>::new());
        assert_eq!(html_tags(&math), vec!["<a>".to_string()]);
        // A tag already in the file (a comment, say) does not block other edits.
        let with_tag = DOC.replace("Hi.", "% <p> was here\nHi.");
        assert!(problems(&with_tag, &with_tag.replace("Hi.", "Hello.")).is_empty());
    }
}
