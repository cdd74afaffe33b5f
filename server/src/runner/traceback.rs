//! Python tracebacks found in a run's stderr, so a failure can be shown at the line of
//! `experiment.py` that raised it.
//!
//! Handles the standard `Traceback (most recent call last):` block, chained exceptions
//! (the last block wins: it is the exception that ended the program), the `SyntaxError`
//! form (a `File "x.py", line 3` line without a function, then the source and carets,
//! with or without a `Traceback` header), Python 3.11+ caret lines, progress-bar noise
//! (`\r`-overwritten lines) and unrelated stderr output around the traceback.

use std::path::{Path, PathBuf};

use super::local::absolutize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Frame {
    /// As Python printed it: absolute, relative to the run's cwd, or a pseudo-file such
    /// as `<string>` or `<frozen runpy>`.
    pub file: String,
    /// 1-based.
    pub line: u32,
    /// `None` for a `SyntaxError` location, which names no function.
    pub function: Option<String>,
}

impl Frame {
    /// The frame's file as an absolute path (lexically normalised), `None` for pseudo-files.
    pub fn path(&self, cwd: &Path) -> Option<PathBuf> {
        if self.file.starts_with('<') && self.file.ends_with('>') {
            return None;
        }
        Some(absolutize(cwd, Path::new(&self.file)))
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Traceback {
    /// Outermost first, as Python prints them; for a `SyntaxError` the last frame is the
    /// offending line.
    pub frames: Vec<Frame>,
    /// The final line, e.g. `ValueError: bad value`.
    pub error: String,
    /// Its exception type, e.g. `ValueError` or `torch.cuda.OutOfMemoryError`.
    pub exception: String,
}

impl Traceback {
    /// The frames whose file lies inside `dir`, each with its absolute path, outermost
    /// first; relative frame paths are taken relative to `cwd`.
    pub fn frames_in(&self, cwd: &Path, dir: &Path) -> Vec<(PathBuf, &Frame)> {
        let dir_abs = absolutize(cwd, dir);
        let dir_real = std::fs::canonicalize(&dir_abs).ok();
        self.frames
            .iter()
            .filter_map(|f| {
                let p = f.path(cwd)?;
                let inside = p.starts_with(&dir_abs)
                    || match (&dir_real, std::fs::canonicalize(&p)) {
                        (Some(d), Ok(real)) => real.starts_with(d),
                        _ => false,
                    };
                inside.then_some((p, f))
            })
            .collect()
    }

    /// The innermost frame inside `dir`: where a diagnostic for the user's code belongs.
    pub fn innermost_in(&self, cwd: &Path, dir: &Path) -> Option<(PathBuf, &Frame)> {
        self.frames_in(cwd, dir).pop()
    }
}

/// The last complete traceback in `stderr`, if any.
pub fn parse(stderr: &str) -> Option<Traceback> {
    let mut last = None;
    // Frames of the block being read; `None` when outside a block.
    let mut block: Option<Vec<Frame>> = None;
    for raw in stderr.lines() {
        // A progress bar redraws with `\r`; what is visible is what follows the last one.
        let line = raw.rsplit('\r').next().unwrap_or(raw);
        if line.trim_end() == "Traceback (most recent call last):" {
            block = Some(Vec::new());
            continue;
        }
        if let Some(frame) = frame_line(line) {
            block.get_or_insert_with(Vec::new).push(frame);
            continue;
        }
        let Some(frames) = block.as_mut() else {
            continue;
        };
        if line.starts_with(' ') || line.starts_with('\t') || line.is_empty() {
            // Source lines, carets, "[Previous line repeated N more times]".
            continue;
        }
        if let Some(exception) = exception_name(line) {
            if !frames.is_empty() {
                last = Some(Traceback {
                    frames: std::mem::take(frames),
                    error: line.trim_end().to_owned(),
                    exception: exception.to_owned(),
                });
            }
        }
        // The block ends at its first unindented line, an exception or noise.
        block = None;
    }
    last
}

/// `  File "x.py", line 12, in main` or (SyntaxError) `  File "x.py", line 3`.
fn frame_line(line: &str) -> Option<Frame> {
    let rest = line.trim_start().strip_prefix("File \"")?;
    if !line.starts_with(' ') {
        return None;
    }
    let (file, rest) = rest.rsplit_once("\", line ")?;
    let (num, function) = match rest.split_once(", in ") {
        Some((n, f)) => (n, Some(f.trim_end().to_owned())),
        None => (rest.trim_end(), None),
    };
    Some(Frame {
        file: file.to_owned(),
        line: num.parse().ok()?,
        function,
    })
}

/// `ValueError: x` → `ValueError`; `KeyboardInterrupt` → itself; noise → `None`.
fn exception_name(line: &str) -> Option<&str> {
    let name = match line.split_once(':') {
        Some((n, _)) => n,
        None => line.trim_end(),
    };
    let ok = !name.is_empty()
        && name.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_')
                && part.chars().all(|c| c.is_alphanumeric() || c == '_')
        });
    ok.then_some(name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn f(file: &str, line: u32, function: Option<&str>) -> Frame {
        Frame {
            file: file.into(),
            line,
            function: function.map(Into::into),
        }
    }

    #[test]
    fn plain_with_noise_and_carets() {
        let text = r#"step 1 loss 0.3
 step 2 loss 0.2
warning: something
Traceback (most recent call last):
  File "/w/idea/experiment.py", line 40, in <module>
    main()
  File "/w/idea/experiment.py", line 12, in main
    x = f(y)
        ^^^^
  File "/usr/lib/python3/site-packages/np.py", line 7, in f
    raise ValueError('bad')
ValueError: bad shape (3,) vs (4,)
more noise after
"#
        .replace("\\r", "\r");
        let tb = parse(&text).unwrap();
        assert_eq!(tb.error, "ValueError: bad shape (3,) vs (4,)");
        assert_eq!(tb.exception, "ValueError");
        assert_eq!(tb.frames.len(), 3);
        assert_eq!(tb.frames[1], f("/w/idea/experiment.py", 12, Some("main")));
        let (p, fr) = tb
            .innermost_in(Path::new("/w/idea"), Path::new("/w/idea"))
            .unwrap();
        assert_eq!(p, PathBuf::from("/w/idea/experiment.py"));
        assert_eq!(fr.line, 12);
    }

    #[test]
    fn chained_uses_last() {
        let text = r#"Traceback (most recent call last):
  File "a.py", line 2, in <module>
    x()
KeyError: 'k'

During handling of the above exception, another exception occurred:

Traceback (most recent call last):
  File "a.py", line 4, in <module>
    raise RuntimeError('wrapped')
RuntimeError: wrapped
"#;
        let tb = parse(text).unwrap();
        assert_eq!(tb.exception, "RuntimeError");
        assert_eq!(tb.frames, vec![f("a.py", 4, Some("<module>"))]);
        let (p, _) = tb.innermost_in(Path::new("/run"), Path::new("/run")).unwrap();
        assert_eq!(p, PathBuf::from("/run/a.py"));
    }

    #[test]
    fn syntax_error_without_header() {
        let text =
            "  File \"/w/experiment.py\", line 3\n    x = = 1\n        ^\nSyntaxError: invalid syntax\n";
        let tb = parse(text).unwrap();
        assert_eq!(tb.frames, vec![f("/w/experiment.py", 3, None)]);
        assert_eq!(tb.exception, "SyntaxError");
    }

    #[test]
    fn syntax_error_on_import() {
        let text = r#"Traceback (most recent call last):
  File "/w/experiment.py", line 1, in <module>
    import helper
  File "/w/helper.py", line 5
    def f(:
          ^
SyntaxError: invalid syntax
"#;
        let tb = parse(text).unwrap();
        assert_eq!(tb.frames.len(), 2);
        assert_eq!(tb.frames.last().unwrap(), &f("/w/helper.py", 5, None));
    }

    #[test]
    fn pseudo_files_and_outside_frames_filtered() {
        let text = r#"Traceback (most recent call last):
  File "<frozen runpy>", line 198, in _run_module_as_main
  File "/lib/x.py", line 1, in g
KeyboardInterrupt
"#;
        let tb = parse(text).unwrap();
        assert_eq!(tb.exception, "KeyboardInterrupt");
        assert!(tb.frames_in(Path::new("/w"), Path::new("/w")).is_empty());
        assert_eq!(tb.frames[0].path(Path::new("/w")), None);
    }

    #[test]
    fn nothing_in_plain_output() {
        assert_eq!(parse("all good\nloss: 0.1\n"), None);
        assert_eq!(
            parse("Traceback (most recent call last):\n  File \"a.py\", line 1, in m\n"),
            None
        );
    }
}
