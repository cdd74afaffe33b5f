//! Filling prompt templates.

/// Replaces `{key}` placeholders in one pass. Values are inserted verbatim, so
/// braces inside them (code, JSON) are never taken for placeholders; unknown
/// `{...}` stays as written.
pub fn fill(template: &str, vars: &[(&str, &str)]) -> String {
    let mut out = String::with_capacity(template.len() + vars.iter().map(|v| v.1.len()).sum::<usize>());
    let mut rest = template;
    'outer: while let Some(pos) = rest.find('{') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        for (key, val) in vars {
            if let Some(tail) = after.strip_prefix(key).and_then(|t| t.strip_prefix('}')) {
                out.push_str(val);
                rest = tail;
                continue 'outer;
            }
        }
        out.push('{');
        rest = after;
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fill_does_not_touch_braces_in_values() {
        let out = fill("a {x} b {y} {z}", &[("x", "{y}"), ("y", "2")]);
        assert_eq!(out, "a {y} b 2 {z}");
    }
}
