//! Positions in the encoding the client negotiated. Every conversion between a
//! client position and a place in the text goes through here.

use ropey::Rope;

/// How `character` in a position counts: UTF-8 bytes, UTF-16 code units (the LSP
/// default) or Unicode scalar values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PosEncoding {
    Utf8,
    #[default]
    Utf16,
    Utf32,
}

/// A zero-based line and a column counted in some `PosEncoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Pos {
    pub line: u32,
    pub character: u32,
}

impl Pos {
    pub fn new(line: u32, character: u32) -> Self {
        Self { line, character }
    }
}

/// Number of chars on `line`, without its line break.
fn line_len_chars(rope: &Rope, line: usize) -> usize {
    let slice = rope.line(line);
    let mut n = slice.len_chars();
    if n > 0 && slice.char(n - 1) == '\n' {
        n -= 1;
        if n > 0 && slice.char(n - 1) == '\r' {
            n -= 1;
        }
    } else if n > 0 && slice.char(n - 1) == '\r' {
        n -= 1;
    }
    n
}

/// The char index of `pos`, clamped: a line past the end means the end of the text,
/// a column past the end of its line means the end of that line.
pub fn to_char(rope: &Rope, pos: Pos, enc: PosEncoding) -> usize {
    let line = pos.line as usize;
    if line >= rope.len_lines() {
        return rope.len_chars();
    }
    let start = rope.line_to_char(line);
    let len = line_len_chars(rope, line);
    let col = pos.character as usize;
    let chars = match enc {
        PosEncoding::Utf32 => col.min(len),
        PosEncoding::Utf8 => {
            let line_byte = rope.char_to_byte(start);
            let end_byte = rope.char_to_byte(start + len);
            // A byte inside a multi-byte char lands on that char's start.
            rope.byte_to_char((line_byte + col).min(end_byte)) - start
        }
        PosEncoding::Utf16 => {
            let base = rope.char_to_utf16_cu(start);
            let end = rope.char_to_utf16_cu(start + len);
            rope.utf16_cu_to_char((base + col).min(end)) - start
        }
    };
    start + chars
}

/// The position of char index `idx` (clamped to the end of the text).
pub fn from_char(rope: &Rope, idx: usize, enc: PosEncoding) -> Pos {
    let idx = idx.min(rope.len_chars());
    let line = rope.char_to_line(idx);
    let start = rope.line_to_char(line);
    let character = match enc {
        PosEncoding::Utf32 => idx - start,
        PosEncoding::Utf8 => rope.char_to_byte(idx) - rope.char_to_byte(start),
        PosEncoding::Utf16 => rope.char_to_utf16_cu(idx) - rope.char_to_utf16_cu(start),
    };
    Pos::new(line as u32, character as u32)
}

/// The position of byte offset `byte` (clamped; a byte inside a char means that char).
pub fn from_byte(rope: &Rope, byte: usize, enc: PosEncoding) -> Pos {
    from_char(rope, rope.byte_to_char(byte.min(rope.len_bytes())), enc)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn utf16_counts_surrogate_pairs() {
        // "😀" is one char, two UTF-16 units, four UTF-8 bytes.
        let rope = Rope::from_str("a😀b\nxyz\n");
        assert_eq!(to_char(&rope, Pos::new(0, 3), PosEncoding::Utf16), 2);
        assert_eq!(to_char(&rope, Pos::new(0, 5), PosEncoding::Utf8), 2);
        assert_eq!(to_char(&rope, Pos::new(0, 2), PosEncoding::Utf32), 2);
        assert_eq!(from_char(&rope, 2, PosEncoding::Utf16), Pos::new(0, 3));
        assert_eq!(from_char(&rope, 2, PosEncoding::Utf8), Pos::new(0, 5));
        assert_eq!(from_char(&rope, 2, PosEncoding::Utf32), Pos::new(0, 2));
    }

    #[test]
    fn positions_past_the_end_are_clamped() {
        let rope = Rope::from_str("ab\r\ncd");
        assert_eq!(to_char(&rope, Pos::new(0, 99), PosEncoding::Utf16), 2);
        assert_eq!(to_char(&rope, Pos::new(1, 99), PosEncoding::Utf8), 6);
        assert_eq!(to_char(&rope, Pos::new(42, 0), PosEncoding::Utf16), 6);
        assert_eq!(from_char(&rope, 999, PosEncoding::Utf16), Pos::new(1, 2));
    }

    #[test]
    fn round_trip_every_char() {
        let rope = Rope::from_str("é😀\nß\r\n中文x\n");
        for enc in [PosEncoding::Utf8, PosEncoding::Utf16, PosEncoding::Utf32] {
            for i in 0..=rope.len_chars() {
                let p = from_char(&rope, i, enc);
                let back = to_char(&rope, p, enc);
                // Only the '\n' of a CRLF has no position of its own: it maps to the '\r'.
                let crlf_tail =
                    i > 0 && i < rope.len_chars() && rope.char(i) == '\n' && rope.char(i - 1) == '\r';
                let want = if crlf_tail { i - 1 } else { i };
                assert_eq!(back, want, "{enc:?} {i} -> {p:?}");
            }
        }
    }
}
