//! Finding a block's SEARCH text in a file: exactly first, then line by line
//! ignoring trailing whitespace, then also ignoring a consistent indentation
//! shift (the replacement is shifted the same way). Matches are whole lines only,
//! so `x = 1` never matches inside `max = 1`.

use std::borrow::Cow;
use std::ops::Range;

use super::text::FileText;

pub(crate) enum Miss {
    None { hint: String },
    Many { lines: Vec<usize> },
}

fn indent(line: &str) -> &str {
    &line[..line.len() - line.trim_start().len()]
}

/// How a fuzzy match shifts indentation: the file has `add` more (or `remove` less)
/// leading whitespace than SEARCH on every non-blank line.
#[derive(Clone, PartialEq, Eq)]
struct Shift {
    add: String,
    remove: String,
}

fn shift_between(file: &str, search: &str) -> Option<Shift> {
    let (f, s) = (indent(file), indent(search));
    if let Some(extra) = f.strip_suffix(s) {
        Some(Shift {
            add: extra.into(),
            remove: String::new(),
        })
    } else {
        s.strip_suffix(f).map(|less| Shift {
            add: String::new(),
            remove: less.into(),
        })
    }
}

/// Whether `search` matches the file lines at `at`; with `loose`, a consistent
/// indentation shift is allowed and returned.
fn window_matches(file: &[&str], at: usize, search: &[&str], loose: bool) -> Option<Shift> {
    let mut shift: Option<Shift> = None;
    for (f, s) in file[at..at + search.len()].iter().zip(search) {
        let (f, s) = (f.trim_end(), s.trim_end());
        if s.is_empty() || f.is_empty() {
            if s.is_empty() && f.is_empty() {
                continue;
            }
            return None;
        }
        if !loose {
            if f != s {
                return None;
            }
            continue;
        }
        if f.trim_start() != s.trim_start() {
            return None;
        }
        let here = shift_between(f, s)?;
        match &shift {
            Some(prev) if *prev != here => return None,
            Some(_) => {}
            None => shift = Some(here),
        }
    }
    Some(shift.unwrap_or(Shift {
        add: String::new(),
        remove: String::new(),
    }))
}

fn reindent(replace: &str, shift: &Shift) -> String {
    let mut out = String::with_capacity(replace.len());
    for line in replace.lines() {
        if !line.trim().is_empty() {
            if !shift.remove.is_empty() {
                let stripped = line
                    .strip_prefix(shift.remove.as_str())
                    .unwrap_or_else(|| line.trim_start());
                out.push_str(stripped);
            } else {
                out.push_str(&shift.add);
                out.push_str(line);
            }
        } else {
            out.push_str(line);
        }
        out.push('\n');
    }
    out
}

/// Replaces the one place in `text` that `search` matches with `replace`, or says
/// why it cannot.
pub(crate) fn replace_once(text: &mut FileText, search: &str, replace: &str) -> Result<(), Miss> {
    // Blocks from the parser end in a newline; hand-made ones may not.
    let (search_owned, replace_owned);
    let search = if search.ends_with('\n') {
        search
    } else {
        search_owned = format!("{search}\n");
        search_owned.as_str()
    };
    let replace = if replace.is_empty() || replace.ends_with('\n') {
        replace
    } else {
        replace_owned = format!("{replace}\n");
        replace_owned.as_str()
    };
    let (lines, new) = find(text, search, replace)?;
    text.splice(lines, &new);
    Ok(())
}

/// The lines that `search` matches and what replaces them. `search` ends in a
/// newline, and `replace` is empty or does too.
fn find<'r>(text: &FileText, search: &str, replace: &'r str) -> Result<(Range<usize>, Cow<'r, str>), Miss> {
    // 1. Exact: whole lines, byte for byte (every line of `text` ends in a newline,
    // so its last line matches like any other).
    let exact: Vec<&str> = search.split_inclusive('\n').collect();
    let hits: Vec<usize> = if exact.len() <= text.len() {
        (0..=text.len() - exact.len())
            .filter(|&at| exact.iter().enumerate().all(|(k, l)| text.line_is(at + k, l)))
            .collect()
    } else {
        Vec::new()
    };
    match hits[..] {
        [at] => return Ok((at..at + exact.len(), Cow::Borrowed(replace))),
        [] => {}
        _ => {
            return Err(Miss::Many {
                lines: hits.iter().map(|&at| at + 1).collect(),
            })
        }
    }

    // 2./3. Line by line; blank lines around SEARCH do not count.
    let file: Vec<&str> = (0..text.len()).map(|i| text.bare_line(i)).collect();
    let all: Vec<&str> = search.lines().collect();
    let first = all.iter().position(|l| !l.trim().is_empty());
    let Some(first) = first else {
        return Err(Miss::None { hint: String::new() });
    };
    let last = all.iter().rposition(|l| !l.trim().is_empty()).unwrap();
    let want = &all[first..=last];
    if want.len() <= file.len() {
        // Windows whose first line agrees up to whitespace: one cheap pass, so the
        // two tiers below only look at a handful of places.
        let head = want[0].trim();
        let candidates: Vec<usize> = (0..=file.len() - want.len())
            .filter(|&at| file[at].trim() == head)
            .collect();
        for loose in [false, true] {
            let found: Vec<(usize, Shift)> = candidates
                .iter()
                .copied()
                .filter_map(|at| window_matches(&file, at, want, loose).map(|s| (at, s)))
                .collect();
            match found.len() {
                0 => continue,
                1 => {
                    let (at, shift) = &found[0];
                    return Ok((*at..at + want.len(), Cow::Owned(reindent(replace, shift))));
                }
                _ => {
                    return Err(Miss::Many {
                        lines: found.iter().map(|(at, _)| at + 1).collect(),
                    })
                }
            }
        }
    }
    Err(Miss::None {
        hint: hint(&file, want, replace),
    })
}

/// Points the model at the lines it probably meant: the window with the most lines
/// equal (ignoring surrounding whitespace) to SEARCH, or failing that the single most
/// similar line to SEARCH's first line.
fn hint(file: &[&str], want: &[&str], replace: &str) -> String {
    if file.is_empty() {
        return "; the file is empty".into();
    }
    let replace_lines: Vec<&str> = replace.lines().filter(|l| !l.trim().is_empty()).collect();
    let mut already = String::new();
    if !replace_lines.is_empty() && replace_once_probe(file, &replace_lines) {
        already = " (the REPLACE lines are already in the file: was this block applied before?)".into();
    }
    let m = want.len().min(file.len());
    let mut best = (0usize, 0usize);
    for at in 0..=file.len() - m {
        let score = file[at..at + m]
            .iter()
            .zip(want)
            .filter(|(f, s)| !s.trim().is_empty() && f.trim() == s.trim())
            .count();
        if score > best.1 {
            best = (at, score);
        }
    }
    if best.1 == 0 {
        let target = want[0].trim();
        let mut top = (0usize, 0.0f32);
        for (i, l) in file.iter().enumerate() {
            let l = l.trim();
            if l.is_empty() {
                continue;
            }
            let r = similar::TextDiff::from_chars(l, target).ratio();
            if r > top.1 {
                top = (i, r);
            }
        }
        if top.1 < 0.5 {
            return already;
        }
        best.0 = top.0;
    }
    let from = best.0;
    let to = (from + m).min(file.len()).min(from + 20);
    let mut s = format!("{already}; the closest lines are {}-{}:\n", from + 1, to);
    for l in &file[from..to] {
        s.push_str(l);
        s.push('\n');
    }
    s
}

fn replace_once_probe(file: &[&str], want: &[&str]) -> bool {
    let want: Vec<&str> = want.iter().map(|l| l.trim()).collect();
    let nb: Vec<&str> = file.iter().map(|l| l.trim()).filter(|l| !l.is_empty()).collect();
    want.len() <= nb.len() && nb.windows(want.len()).any(|w| w == want.as_slice())
}
