//! Python's `repr` of JSON values, and reading the JSON Python writes.
//!
//! v1 shows results to the model (and writes them into `notes.txt`) as the Python
//! repr of the dict `json.load` returns, so matching it keeps our notes and prompts
//! in the format v1 folders have.

use serde_json::Value;

/// Stand-ins for the non-finite floats Python's `json.dump` writes as bare `NaN`,
/// `Infinity` and `-Infinity` (not JSON; serde_json refuses them). They start with a
/// NUL so no real string is mistaken for them.
pub const PY_NAN: &str = "\u{0}nan";
pub const PY_INF: &str = "\u{0}inf";
pub const PY_NEG_INF: &str = "\u{0}-inf";

/// `repr(x)` of the Python object `json.loads` makes of `v`: `{'a': 1.0}`, `True`,
/// `None`, `1e-05`, ... Strings equal to the `PY_*` stand-ins print as `nan`/`inf`.
pub fn py_repr(v: &Value) -> String {
    let mut out = String::new();
    write_repr(v, &mut out);
    out
}

fn write_repr(v: &Value, out: &mut String) {
    match v {
        Value::Null => out.push_str("None"),
        Value::Bool(true) => out.push_str("True"),
        Value::Bool(false) => out.push_str("False"),
        Value::Number(n) => {
            if n.is_f64() {
                out.push_str(&py_float(n.as_f64().unwrap_or(f64::NAN)));
            } else {
                out.push_str(&n.to_string());
            }
        }
        Value::String(s) => match s.as_str() {
            PY_NAN => out.push_str("nan"),
            PY_INF => out.push_str("inf"),
            PY_NEG_INF => out.push_str("-inf"),
            _ => out.push_str(&py_str(s)),
        },
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_repr(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, item)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                out.push_str(&py_str(k));
                out.push_str(": ");
                write_repr(item, out);
            }
            out.push('}');
        }
    }
}

/// `repr(float)`: the shortest digits that round-trip (as Rust's), laid out the
/// way Python does: exponent form when the exponent is below -4 or at least 16
/// (`1e-05`, `1.5e+16`), otherwise positional with at least one decimal (`3.0`).
pub fn py_float(x: f64) -> String {
    if x.is_nan() {
        return "nan".into();
    }
    if x.is_infinite() {
        return if x > 0.0 { "inf" } else { "-inf" }.into();
    }
    if x == 0.0 {
        return if x.is_sign_negative() { "-0.0" } else { "0.0" }.into();
    }
    let sci = format!("{x:e}"); // e.g. "-1.5e-7", shortest round-trip digits
    let (mantissa, exp) = sci.split_once('e').expect("{:e} always has an exponent");
    let exp: i32 = exp.parse().expect("{:e} exponent is an integer");
    if !(-4..16).contains(&exp) {
        let sign = if exp < 0 { '-' } else { '+' };
        return format!("{mantissa}e{sign}{:02}", exp.abs());
    }
    let plain = format!("{x}");
    if plain.contains('.') {
        plain
    } else {
        format!("{plain}.0")
    }
}

/// `repr(str)`: single quotes unless the text has a `'` and no `"`; escapes as
/// Python does for the common cases (backslash, the quote, `\n`, `\r`, `\t`, other
/// control characters); other non-ASCII text is printed as is.
pub fn py_str(s: &str) -> String {
    let quote = if s.contains('\'') && !s.contains('"') {
        '"'
    } else {
        '\''
    };
    let mut out = String::with_capacity(s.len() + 2);
    out.push(quote);
    for c in s.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c == quote => {
                out.push('\\');
                out.push(c);
            }
            c if c.is_control() => {
                let n = c as u32;
                if n < 0x100 {
                    out.push_str(&format!("\\x{n:02x}"));
                } else {
                    out.push_str(&format!("\\u{n:04x}"));
                }
            }
            c => out.push(c),
        }
    }
    out.push(quote);
    out
}

/// Parse JSON as Python's `json.loads` does, which also takes the bare `NaN`,
/// `Infinity` and `-Infinity` that `json.dump` writes for non-finite floats (a
/// diverged loss is an ordinary result). They become the `PY_*` stand-in strings.
pub fn parse_python_json(text: &str) -> Result<Value, serde_json::Error> {
    match serde_json::from_str(text) {
        Ok(v) => Ok(v),
        Err(first) => {
            let replaced = replace_non_finite(text);
            if replaced == text {
                return Err(first);
            }
            serde_json::from_str(&replaced).map_err(|_| first)
        }
    }
}

/// Replaces the bare tokens outside strings with the quoted stand-ins.
fn replace_non_finite(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut in_string = false;
    let mut escaped = false;
    let mut rest = text;
    while let Some(c) = rest.chars().next() {
        if in_string {
            out.push(c);
            rest = &rest[c.len_utf8()..];
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        let token = [("-Infinity", PY_NEG_INF), ("Infinity", PY_INF), ("NaN", PY_NAN)]
            .into_iter()
            .find(|(tok, _)| rest.starts_with(tok));
        if let Some((tok, standin)) = token {
            out.push_str(&serde_json::to_string(standin).expect("strings serialise"));
            rest = &rest[tok.len()..];
            continue;
        }
        if c == '"' {
            in_string = true;
        }
        out.push(c);
        rest = &rest[c.len_utf8()..];
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn floats_print_as_python_does() {
        for (x, want) in [
            (0.1, "0.1"),
            (1e-05, "1e-05"),
            (0.0001, "0.0001"),
            (1.0, "1.0"),
            (-2.5, "-2.5"),
            (123456789.0, "123456789.0"),
            (1e15, "1000000000000000.0"),
            (1e16, "1e+16"),
            (1.5e16, "1.5e+16"),
            (2.5e-7, "2.5e-07"),
            (1e100, "1e+100"),
            (0.43862981091984704, "0.43862981091984704"),
            (37.41756200790405, "37.41756200790405"),
            (-0.0, "-0.0"),
            (f64::NAN, "nan"),
            (f64::NEG_INFINITY, "-inf"),
        ] {
            assert_eq!(py_float(x), want, "{x:e}");
        }
    }

    #[test]
    fn values_print_as_python_dicts() {
        let v = json!({"circle": {"loss": 0.5, "steps": 3, "ok": true, "note": null,
                                  "name": "it's", "list": [1, 2.0], "empty": {}}});
        assert_eq!(
            py_repr(&v),
            "{'circle': {'loss': 0.5, 'steps': 3, 'ok': True, 'note': None, \
             'name': \"it's\", 'list': [1, 2.0], 'empty': {}}}"
        );
        assert_eq!(py_str("a\\b\n'\""), "'a\\\\b\\n\\'\"'");
    }

    #[test]
    fn reads_the_non_finite_floats_python_writes() {
        let v = parse_python_json(r#"{"a": {"means": {"loss": NaN, "x": -Infinity, "s": "NaN"}}}"#).unwrap();
        assert_eq!(
            py_repr(&v),
            "{'a': {'means': {'loss': nan, 'x': -inf, 's': 'NaN'}}}"
        );
        assert!(parse_python_json("{oops}").is_err());
    }
}
