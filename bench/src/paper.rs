//! The paper scenario's inputs: a real paper with its body repeated, written into an
//! aisci idea folder with the source paper's run data, and the positions requests hit.

use crate::docgen::Rng;
use std::io;
use std::path::{Path, PathBuf};

const BEGIN: &str = "\\begin{document}";
const END: &str = "\\end{document}";

/// The idea folder the paper is written to, relative to the workspace root.
pub const IDEA_DIR: &str = "results/tiny_mlp/20240101_000000_paper";

pub struct Paper {
    /// The `.tex` file given with `--paper`.
    pub source: PathBuf,
    pub copies: usize,
    /// Preamble once, body `copies` times, then `\end{document}` and what follows.
    pub text: String,
    /// `run_*` folders and `notes.txt` next to the source's `latex/` folder, copied with it.
    pub idea_files: Vec<PathBuf>,
    /// `.bib` files next to the source, copied into the new `latex/` folder.
    pub bib_files: Vec<PathBuf>,
}

impl Paper {
    pub fn load(source: &Path, copies: usize) -> Result<Paper, String> {
        let tex = std::fs::read_to_string(source).map_err(|e| format!("{}: {e}", source.display()))?;
        let text = repeat_body(&tex, copies).map_err(|e| format!("{}: {e}", source.display()))?;
        let dir = source.parent().unwrap_or(Path::new("."));
        let bib_files = list(dir, |name, is_dir| !is_dir && name.ends_with(".bib"));
        // The idea folder holds latex/; without that layout there is no run data to copy.
        let idea_files = match (dir.file_name(), dir.parent()) {
            (Some(n), Some(idea)) if n == "latex" => list(idea, |name, is_dir| {
                (is_dir && name.starts_with("run_")) || (!is_dir && name == "notes.txt")
            }),
            _ => vec![],
        };
        Ok(Paper {
            source: source.to_path_buf(),
            copies,
            text,
            idea_files,
            bib_files,
        })
    }

    /// Writes `<ws>/results/…/latex/template.tex` and the copied files; returns the `.tex` path.
    pub fn write_into(&self, ws: &Path) -> io::Result<PathBuf> {
        let idea = ws.join(IDEA_DIR);
        let latex = idea.join("latex");
        std::fs::create_dir_all(&latex)?;
        for f in &self.idea_files {
            copy_tree(f, &idea.join(f.file_name().expect("listed entries have names")))?;
        }
        for f in &self.bib_files {
            std::fs::copy(f, latex.join(f.file_name().expect("listed entries have names")))?;
        }
        let tex = latex.join("template.tex");
        std::fs::write(&tex, &self.text)?;
        Ok(tex)
    }

    /// Names of the copied idea-folder entries, for the report.
    pub fn copied_names(&self) -> Vec<String> {
        self.idea_files
            .iter()
            .chain(&self.bib_files)
            .filter_map(|p| p.file_name())
            .map(|n| n.to_string_lossy().into_owned())
            .collect()
    }
}

/// The body between `\begin{document}` and the last `\end{document}`, `copies` times.
pub fn repeat_body(tex: &str, copies: usize) -> Result<String, String> {
    if copies == 0 {
        return Err("--paper-copies must be at least 1".into());
    }
    let begin = tex.find(BEGIN).ok_or("no \\begin{document}")? + BEGIN.len();
    let end = tex[begin..]
        .rfind(END)
        .ok_or("no \\end{document} after \\begin{document}")?
        + begin;
    let body = &tex[begin..end];
    let mut out = String::with_capacity(tex.len() + body.len() * (copies - 1));
    out.push_str(&tex[..begin]);
    for _ in 0..copies {
        out.push_str(body);
    }
    out.push_str(&tex[end..]);
    Ok(out)
}

/// `n` deterministic pseudo-random positions (line, UTF-16 column) on non-blank lines,
/// each column on a character boundary strictly inside the line.
pub fn positions(text: &str, n: usize, seed: u64) -> Vec<(u32, u32)> {
    // Per non-blank line: its number and the UTF-16 offset of each character.
    let lines: Vec<(u32, Vec<u32>)> = text
        .split('\n')
        .enumerate()
        .filter(|(_, l)| !l.trim().is_empty())
        .map(|(i, l)| {
            let starts = l
                .chars()
                .scan(0u32, |at, c| {
                    let start = *at;
                    *at += c.len_utf16() as u32;
                    Some(start)
                })
                .collect();
            (i as u32, starts)
        })
        .collect();
    if lines.is_empty() {
        return vec![(0, 0); n];
    }
    let mut rng = Rng(0x9a9e_5eed_0000_0001 ^ seed.wrapping_mul(0x2545_f491_4f6c_dd1d));
    (0..n)
        .map(|_| {
            let (line, starts) = &lines[(rng.next() % lines.len() as u64) as usize];
            (*line, starts[(rng.next() % starts.len() as u64) as usize])
        })
        .collect()
}

fn list(dir: &Path, keep: impl Fn(&str, bool) -> bool) -> Vec<PathBuf> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return vec![];
    };
    let mut out: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|e| keep(&e.file_name().to_string_lossy(), e.path().is_dir()))
        .map(|e| e.path())
        .collect();
    out.sort();
    out
}

fn copy_tree(from: &Path, to: &Path) -> io::Result<()> {
    if from.is_dir() {
        std::fs::create_dir_all(to)?;
        for e in std::fs::read_dir(from)? {
            let e = e?;
            copy_tree(&e.path(), &to.join(e.file_name()))?;
        }
        Ok(())
    } else {
        std::fs::copy(from, to).map(|_| ())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const TEX: &str =
        "\\documentclass{article}\n\\begin{document}\nA $0.5$.\n\n\\section{B}\n\\end{document}\n";

    #[test]
    fn body_repeated_preamble_once() {
        let t = repeat_body(TEX, 3).unwrap();
        assert_eq!(t.matches("\\documentclass").count(), 1);
        assert_eq!(t.matches("\\begin{document}").count(), 1);
        assert_eq!(t.matches("\\end{document}").count(), 1);
        assert_eq!(t.matches("\\section{B}").count(), 3);
        assert!(t.ends_with("\\section{B}\n\\end{document}\n"));
        assert_eq!(repeat_body(TEX, 1).unwrap(), TEX);
        assert!(repeat_body(TEX, 0).is_err());
        assert!(repeat_body("no document", 2).is_err());
    }

    #[test]
    fn positions_are_deterministic_and_inside_lines() {
        let text = "ab\n\n  \nβ𝔼x\nlong line here\n";
        let p = positions(text, 200, 1);
        assert_eq!(p, positions(text, 200, 1));
        assert_ne!(p, positions(text, 200, 2));
        let lines: Vec<&str> = text.split('\n').collect();
        for &(l, c) in &p {
            let line = lines[l as usize];
            assert!(!line.trim().is_empty());
            // On a character boundary: 𝔼 is two UTF-16 units, so column 2 is inside it.
            let starts: Vec<u32> = line
                .chars()
                .scan(0, |a, ch| {
                    let s = *a;
                    *a += ch.len_utf16() as u32;
                    Some(s)
                })
                .collect();
            assert!(starts.contains(&c), "{l}:{c}");
        }
        assert!(p.iter().any(|&(l, _)| l == 3) && p.iter().any(|&(l, _)| l == 4));
    }
}
