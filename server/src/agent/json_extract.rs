//! Finding the JSON a model wrote inside prose.
//!
//! Candidates come from ```json fences first, then from balanced `{...}` objects
//! found by a brace matcher that understands strings and escapes (v1's non-greedy
//! regex cut nested objects short). Each candidate is parsed as is, then once more
//! after repairing the two slips models make most: trailing commas and raw control
//! characters (newlines, tabs) inside strings.

use serde_json::Value;

/// The sentinel that precedes the idea JSON in the idea protocol.
pub const NEW_IDEA_MARKER: &str = "NEW IDEA JSON:";

/// Every JSON value found in `text`, in order of appearance. Fenced blocks are
/// preferred: when any ```json fence parses, unfenced objects are not searched.
pub fn extract_all(text: &str) -> Vec<Value> {
    let fenced: Vec<Value> = fenced_blocks(text)
        .into_iter()
        .filter_map(parse_lenient)
        .collect();
    if !fenced.is_empty() {
        return fenced;
    }
    balanced_objects(text)
}

/// The first JSON value in `text` (v1's rule).
pub fn extract_first(text: &str) -> Option<Value> {
    extract_all(text).into_iter().next()
}

/// The last JSON value in `text`.
pub fn extract_last(text: &str) -> Option<Value> {
    extract_all(text).into_iter().next_back()
}

/// The JSON after the last `marker` (first value there); without the marker, or
/// with nothing parseable after it, the last value in the whole text. The idea
/// protocol wants this: a THOUGHT may quote an earlier idea's JSON, and the new one
/// follows `NEW IDEA JSON:`.
pub fn extract_after_marker(text: &str, marker: &str) -> Option<Value> {
    if let Some(pos) = text.rfind(marker) {
        if let Some(v) = extract_first(&text[pos + marker.len()..]) {
            return Some(v);
        }
    }
    extract_last(text)
}

/// The idea object of a response in the idea protocol.
pub fn extract_idea_json(text: &str) -> Option<Value> {
    extract_after_marker(text, NEW_IDEA_MARKER)
}

/// Contents of ```json fences (tag case-insensitive). An unclosed fence (a response
/// cut off at max_tokens) runs to the end of the text.
fn fenced_blocks(text: &str) -> Vec<&str> {
    let mut out = Vec::new();
    let mut rest = text;
    while let Some(open) = rest.find("```") {
        let after = &rest[open + 3..];
        // Bytes, not a str slice: the 4 bytes after the fence may end inside a character.
        let tagged = after
            .as_bytes()
            .get(..4)
            .is_some_and(|t| t.eq_ignore_ascii_case(b"json"));
        if !tagged {
            // Skip this fence (and its contents, if closed) so its closing ``` is not
            // mistaken for an opening one.
            match after.find("```") {
                Some(close) => rest = &after[close + 3..],
                None => break,
            }
            continue;
        }
        let body = &after[4..];
        match body.find("```") {
            Some(close) => {
                out.push(&body[..close]);
                rest = &body[close + 3..];
            }
            None => {
                out.push(body);
                break;
            }
        }
    }
    out
}

/// Objects found by matching braces outside the JSON's strings. After an object
/// parses, scanning resumes behind it; when a balanced span does not parse, the
/// scan moves on one byte so that objects nested inside it can still be found.
fn balanced_objects(text: &str) -> Vec<Value> {
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut i = 0;
    while i < b.len() {
        if b[i] != b'{' {
            i += 1;
            continue;
        }
        match matching_brace(b, i) {
            Some(end) => match parse_lenient(&text[i..=end]) {
                Some(v) => {
                    out.push(v);
                    i = end + 1;
                }
                None => i += 1,
            },
            // Unbalanced (cut off): try repairing up to the end, once.
            None => {
                // Only worth it when something was written: `{` alone is not an idea.
                if let Some(v) = parse_lenient(&close_truncated(&text[i..]))
                    .filter(|v| v.as_object().is_some_and(|o| !o.is_empty()))
                {
                    out.push(v);
                    break;
                }
                i += 1;
            }
        }
    }
    out
}

/// Index of the `}` that closes the `{` at `start`, respecting strings and escapes.
fn matching_brace(b: &[u8], start: usize) -> Option<usize> {
    let mut depth = 0usize;
    let mut in_str = false;
    let mut i = start;
    while i < b.len() {
        let c = b[i];
        if in_str {
            match c {
                b'\\' => i += 1,
                b'"' => in_str = false,
                _ => {}
            }
        } else {
            match c {
                b'"' => in_str = true,
                b'{' | b'[' => depth += 1,
                b'}' | b']' => {
                    depth = depth.checked_sub(1)?;
                    if depth == 0 {
                        return (c == b'}').then_some(i);
                    }
                }
                _ => {}
            }
        }
        i += 1;
    }
    None
}

/// Close the open strings and brackets of a cut-off object, so that what the model
/// finished writing can still be read (the schema check catches missing fields).
fn close_truncated(s: &str) -> String {
    let mut stack = Vec::new();
    let mut in_str = false;
    let mut esc = false;
    for c in s.chars() {
        if in_str {
            match (esc, c) {
                (true, _) => esc = false,
                (false, '\\') => esc = true,
                (false, '"') => in_str = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_str = true,
            '{' => stack.push('}'),
            '[' => stack.push(']'),
            '}' | ']' => {
                stack.pop();
            }
            _ => {}
        }
    }
    let mut out = s.trim_end().to_string();
    if esc {
        out.pop();
    }
    if in_str {
        out.push('"');
    }
    while let Some(close) = stack.pop() {
        out.push(close);
    }
    out
}

/// Parse `candidate`, or failing that its repaired form.
pub fn parse_lenient(candidate: &str) -> Option<Value> {
    let s = candidate.trim();
    if s.is_empty() {
        return None;
    }
    serde_json::from_str(s)
        .ok()
        .or_else(|| serde_json::from_str(&repair(s)).ok())
}

/// Remove trailing commas before `}`/`]` and escape control characters inside
/// strings; both only outside/inside strings respectively, so string content with
/// `,}` survives.
pub fn repair(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 16);
    let mut in_str = false;
    let mut esc = false;
    let chars: Vec<char> = s.chars().collect();
    for (idx, &c) in chars.iter().enumerate() {
        if in_str {
            if esc {
                esc = false;
                out.push(c);
                continue;
            }
            match c {
                '\\' => {
                    esc = true;
                    out.push(c);
                }
                '"' => {
                    in_str = false;
                    out.push(c);
                }
                '\n' => out.push_str("\\n"),
                '\r' => out.push_str("\\r"),
                '\t' => out.push_str("\\t"),
                c if (c as u32) < 0x20 || c as u32 == 0x7f => out.push_str(&format!("\\u{:04x}", c as u32)),
                c => out.push(c),
            }
            continue;
        }
        match c {
            '"' => {
                in_str = true;
                out.push(c);
            }
            ',' => {
                let next = chars[idx + 1..].iter().find(|c| !c.is_whitespace());
                if !matches!(next, Some('}') | Some(']')) {
                    out.push(c);
                }
            }
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fenced_block_wins() {
        let t = "THOUGHT: {\"not\": \"this\"}\n\nNEW IDEA JSON:\n```json\n{\"Name\": \"a\"}\n```";
        assert_eq!(extract_first(t), Some(json!({"Name": "a"})));
        assert_eq!(extract_idea_json(t), Some(json!({"Name": "a"})));
    }

    #[test]
    fn uppercase_tag_and_unclosed_fence() {
        assert_eq!(extract_first("```JSON\n{\"a\": 1}\n```"), Some(json!({"a": 1})));
        assert_eq!(
            extract_first("```json\n{\"a\": [1, 2]}\n"),
            Some(json!({"a": [1, 2]}))
        );
    }

    #[test]
    fn other_fences_are_skipped_whole() {
        let t = "```python\nd = {'x': 1}\n```\nthen {\"a\": 1}";
        assert_eq!(extract_all(t), vec![json!({"a": 1})]);
    }

    #[test]
    fn nested_objects_unfenced() {
        let t = r#"Here: {"a": {"b": {"c": 1}}, "d": [ {"e": 2} ]} done"#;
        assert_eq!(
            extract_first(t),
            Some(json!({"a": {"b": {"c": 1}}, "d": [{"e": 2}]}))
        );
    }

    #[test]
    fn braces_and_quotes_inside_strings() {
        let t = r#"x {"Experiment": "use a dict {k: v} and a \"quoted } brace\"", "n": 1} y"#;
        let v = extract_first(t).unwrap();
        assert_eq!(v["Experiment"], "use a dict {k: v} and a \"quoted } brace\"");
        assert_eq!(v["n"], 1);
    }

    #[test]
    fn escaped_backslash_before_quote() {
        let t = r#"{"path": "C:\\dir\\", "b": "}"}"#;
        assert_eq!(extract_first(t), Some(json!({"path": "C:\\dir\\", "b": "}"})));
    }

    #[test]
    fn trailing_commas_are_repaired() {
        let t = "```json\n{\"a\": [1, 2,], \"b\": \"x,}\",\n}\n```";
        assert_eq!(extract_first(t), Some(json!({"a": [1, 2], "b": "x,}"})));
    }

    #[test]
    fn raw_control_characters_in_strings() {
        let t = "{\"Experiment\": \"line one\nline\ttwo\u{1}\"}";
        let v = extract_first(t).unwrap();
        assert_eq!(v["Experiment"], "line one\nline\ttwo\u{1}");
    }

    #[test]
    fn prose_braces_before_the_object() {
        let t = "Sets like {1, 2} and f(x) = {x | x > 0}. {\"a\": 1}";
        assert_eq!(extract_all(t), vec![json!({"a": 1})]);
    }

    #[test]
    fn broken_outer_object_still_yields_inner() {
        let t = r#"{ oops "inner": {"a": 1} }"#;
        assert_eq!(extract_first(t), Some(json!({"a": 1})));
    }

    #[test]
    fn truncated_object_is_closed() {
        let t = "NEW IDEA JSON:\n{\"Name\": \"a\", \"Title\": \"cut of";
        assert_eq!(
            extract_idea_json(t),
            Some(json!({"Name": "a", "Title": "cut of"}))
        );
    }

    #[test]
    fn marker_picks_the_new_idea_not_the_quoted_one() {
        let t = "THOUGHT: the previous idea ```json\n{\"Name\": \"old\"}\n``` was weak.\n\
                 NEW IDEA JSON:\n```json\n{\"Name\": \"new\"}\n```";
        assert_eq!(extract_first(t), Some(json!({"Name": "old"})));
        assert_eq!(extract_idea_json(t), Some(json!({"Name": "new"})));
        assert_eq!(extract_last(t), Some(json!({"Name": "new"})));
    }

    #[test]
    fn marker_without_json_after_falls_back_to_last() {
        let t = "{\"Name\": \"a\"} then {\"Name\": \"b\"}\nNEW IDEA JSON: (same as before)";
        assert_eq!(extract_idea_json(t), Some(json!({"Name": "b"})));
    }

    #[test]
    fn nothing_to_find() {
        assert_eq!(extract_first("no json here"), None);
        assert_eq!(extract_first("```json\n```"), None);
        assert_eq!(extract_first("}{"), None);
        assert_eq!(extract_first(""), None);
        assert_eq!(extract_first("{\"a\": }"), None);
    }

    #[test]
    fn non_ascii_text_is_safe() {
        let t = "Idée « {\"Title\": \"Fourier — ép\u{e9}e\"} » ✓";
        assert_eq!(extract_first(t).unwrap()["Title"], "Fourier — épée");
    }
}
