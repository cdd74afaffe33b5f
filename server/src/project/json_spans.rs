//! Byte spans of the values in a JSON text, so that problems found in a parsed
//! value can point at the key or object they are about. serde_json gives no spans;
//! this small scanner runs only over text serde_json already accepted.

/// A JSON value's byte range and, for containers, its children's.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpanNode {
    pub start: usize,
    pub end: usize,
    pub kind: SpanKind,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SpanKind {
    /// (key as written between the quotes, the key's span with quotes, the value).
    Object(Vec<(String, (usize, usize), SpanNode)>),
    Array(Vec<SpanNode>),
    Scalar,
}

impl SpanNode {
    /// The span of the key `key` (quotes included), if this is an object that has it.
    pub fn key_span(&self, key: &str) -> Option<(usize, usize)> {
        match &self.kind {
            SpanKind::Object(members) => members.iter().find(|m| m.0 == key).map(|m| m.1),
            _ => None,
        }
    }

    /// The span of the value under `key`.
    pub fn value(&self, key: &str) -> Option<&SpanNode> {
        match &self.kind {
            SpanKind::Object(members) => members.iter().find(|m| m.0 == key).map(|m| &m.2),
            _ => None,
        }
    }

    pub fn element(&self, i: usize) -> Option<&SpanNode> {
        match &self.kind {
            SpanKind::Array(items) => items.get(i),
            _ => None,
        }
    }

    /// The first byte: the `{` or `[` of a container, the whole of a scalar. Used
    /// where the whole value would be an unhelpfully large range.
    pub fn head(&self) -> (usize, usize) {
        match self.kind {
            SpanKind::Scalar => (self.start, self.end),
            _ => (self.start, self.start + 1),
        }
    }
}

/// Spans of the top-level value of `text`, or None when the text is not JSON.
pub fn spans(text: &str) -> Option<SpanNode> {
    let mut p = Parser {
        b: text.as_bytes(),
        i: 0,
    };
    let node = p.value()?;
    p.ws();
    (p.i == p.b.len()).then_some(node)
}

struct Parser<'a> {
    b: &'a [u8],
    i: usize,
}

impl Parser<'_> {
    fn ws(&mut self) {
        while self.i < self.b.len() && matches!(self.b[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> Option<SpanNode> {
        self.ws();
        let start = self.i;
        match *self.b.get(self.i)? {
            b'{' => {
                self.i += 1;
                let mut members = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let ks = self.i;
                        self.string()?;
                        let key_span = (ks, self.i);
                        let key =
                            serde_json::from_str::<String>(std::str::from_utf8(&self.b[ks..self.i]).ok()?)
                                .ok()?;
                        self.ws();
                        (self.b.get(self.i) == Some(&b':')).then_some(())?;
                        self.i += 1;
                        let v = self.value()?;
                        members.push((key, key_span, v));
                        self.ws();
                        match self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b'}' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Some(SpanNode {
                    start,
                    end: self.i,
                    kind: SpanKind::Object(members),
                })
            }
            b'[' => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.b.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.b.get(self.i)? {
                            b',' => self.i += 1,
                            b']' => {
                                self.i += 1;
                                break;
                            }
                            _ => return None,
                        }
                    }
                }
                Some(SpanNode {
                    start,
                    end: self.i,
                    kind: SpanKind::Array(items),
                })
            }
            b'"' => {
                self.string()?;
                Some(SpanNode {
                    start,
                    end: self.i,
                    kind: SpanKind::Scalar,
                })
            }
            _ => {
                while self.i < self.b.len()
                    && !matches!(self.b[self.i], b',' | b'}' | b']' | b' ' | b'\t' | b'\n' | b'\r')
                {
                    self.i += 1;
                }
                (self.i > start).then_some(SpanNode {
                    start,
                    end: self.i,
                    kind: SpanKind::Scalar,
                })
            }
        }
    }

    /// Skip a string literal starting at `self.i` (which must be `"`).
    fn string(&mut self) -> Option<()> {
        (self.b.get(self.i) == Some(&b'"')).then_some(())?;
        self.i += 1;
        loop {
            match *self.b.get(self.i)? {
                b'\\' => self.i += 2,
                b'"' => {
                    self.i += 1;
                    return Some(());
                }
                _ => self.i += 1,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_keys_and_elements() {
        let t = r#"[ {"Name": "a\"b", "N": [1, {"x": null}]}, 2 ]"#;
        let s = spans(t).unwrap();
        let first = s.element(0).unwrap();
        let (ks, ke) = first.key_span("Name").unwrap();
        assert_eq!(&t[ks..ke], "\"Name\"");
        let v = first.value("Name").unwrap();
        assert_eq!(&t[v.start..v.end], r#""a\"b""#);
        let n = first.value("N").unwrap();
        assert_eq!(&t[n.start..n.end], r#"[1, {"x": null}]"#);
        assert_eq!(&t[s.element(1).unwrap().start..s.element(1).unwrap().end], "2");
        assert!(spans("{").is_none());
    }
}
