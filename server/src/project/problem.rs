use std::path::PathBuf;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
    Info,
    /// Advice shown faintly (overfull boxes, a review's limitations).
    Hint,
}

/// Something wrong with a project file. `span` is a byte range into the file's text
/// (None: the whole file / its first line); the LSP layer converts it to a range in the
/// negotiated encoding.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    pub path: PathBuf,
    pub span: Option<(usize, usize)>,
    pub severity: Severity,
    pub message: String,
    /// The check that found it (`undefined-citation`, `number-without-source`, …).
    pub code: Option<&'static str>,
}
