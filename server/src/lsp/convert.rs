//! Conversions between protocol types and the core's. Nothing else in aisci sees
//! `lsp_types`.

use std::path::{Path, PathBuf};

use ropey::Rope;
use tower_lsp::lsp_types::{self as lsp, Url};

use crate::project::{Problem, Severity};
use crate::workspace::{position, Change, Pos, PosEncoding};

pub fn pos_from(p: lsp::Position) -> Pos {
    Pos::new(p.line, p.character)
}

pub fn pos_to(p: Pos) -> lsp::Position {
    lsp::Position::new(p.line, p.character)
}

pub fn change_from(c: lsp::TextDocumentContentChangeEvent) -> Change {
    Change {
        range: c.range.map(|r| (pos_from(r.start), pos_from(r.end))),
        text: c.text,
    }
}

/// A file URI as a path; other schemes are not ours to handle.
pub fn path_of(uri: &Url) -> Option<PathBuf> {
    if uri.scheme() != "file" {
        return None;
    }
    uri.to_file_path().ok()
}

pub fn uri_of(path: &Path) -> Option<Url> {
    Url::from_file_path(path).ok()
}

/// The encoding to use: UTF-8 when the client offers it (no conversion at all),
/// otherwise the mandatory UTF-16.
pub fn negotiate_encoding(caps: &lsp::ClientCapabilities) -> PosEncoding {
    let offered = caps.general.as_ref().and_then(|g| g.position_encodings.as_ref());
    match offered {
        Some(list) if list.contains(&lsp::PositionEncodingKind::UTF8) => PosEncoding::Utf8,
        _ => PosEncoding::Utf16,
    }
}

pub fn encoding_kind(enc: PosEncoding) -> lsp::PositionEncodingKind {
    match enc {
        PosEncoding::Utf8 => lsp::PositionEncodingKind::UTF8,
        PosEncoding::Utf16 => lsp::PositionEncodingKind::UTF16,
        PosEncoding::Utf32 => lsp::PositionEncodingKind::UTF32,
    }
}

pub fn byte_range(rope: &Rope, span: Option<(usize, usize)>, enc: PosEncoding) -> lsp::Range {
    match span {
        Some((a, b)) => lsp::Range::new(
            pos_to(position::from_byte(rope, a, enc)),
            pos_to(position::from_byte(rope, b.max(a), enc)),
        ),
        None => lsp::Range::new(lsp::Position::new(0, 0), lsp::Position::new(0, 0)),
    }
}

pub fn diagnostic(p: &Problem, rope: &Rope, enc: PosEncoding) -> lsp::Diagnostic {
    lsp::Diagnostic {
        range: byte_range(rope, p.span, enc),
        severity: Some(match p.severity {
            Severity::Error => lsp::DiagnosticSeverity::ERROR,
            Severity::Warning => lsp::DiagnosticSeverity::WARNING,
            Severity::Info => lsp::DiagnosticSeverity::INFORMATION,
            Severity::Hint => lsp::DiagnosticSeverity::HINT,
        }),
        source: Some(match p.code {
            Some(c) if crate::integrity::is_integrity(c) => crate::integrity::SOURCE.into(),
            Some(c) if crate::latex::checks::is_figure_check(c) => {
                crate::latex::checks::FIGURES_SOURCE.into()
            }
            _ => "aisci".into(),
        }),
        code: p.code.map(|c| lsp::NumberOrString::String(c.into())),
        message: p.message.clone(),
        ..Default::default()
    }
}
