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

/// At most this many places are listed when SEARCH matches several (they are never
/// all needed: one is a match, two or more an ambiguity).
const MAX_LISTED: usize = 10;

/// How two lines are compared when looking for SEARCH.
#[derive(Clone, Copy)]
enum Cmp {
    /// Byte for byte.
    Exact,
    /// Up to surrounding whitespace.
    Trimmed,
    /// Up to any whitespace at all (only to explain a miss).
    NoSpace,
}

impl Cmp {
    fn chars(self, l: &str) -> impl Iterator<Item = char> + '_ {
        let l = match self {
            Cmp::Exact => l,
            Cmp::Trimmed | Cmp::NoSpace => l.trim(),
        };
        l.chars()
            .filter(move |c| !matches!(self, Cmp::NoSpace) || !c.is_whitespace())
    }

    fn same(self, a: &str, b: &str) -> bool {
        match self {
            Cmp::Exact => a == b,
            Cmp::Trimmed => a.trim() == b.trim(),
            Cmp::NoSpace => self.chars(a).eq(self.chars(b)),
        }
    }
}

/// The starts of the windows of `file` whose lines equal `want`'s under `cmp`, at most
/// [`MAX_LISTED`] of them. Windows are compared by a rolling hash of their lines' keys,
/// so the search is linear in the file whatever the lines look like; equal hashes are
/// checked line by line.
fn windows_where(file: &[&str], want: &[&str], cmp: Cmp) -> Vec<usize> {
    let m = want.len();
    if m == 0 || m > file.len() {
        return Vec::new();
    }
    let same = |a: &str, b: &str| cmp.same(a, b);
    // Usually SEARCH's first line is rare: check the few windows it starts, line by line.
    let starts: Vec<usize> = (0..=file.len() - m)
        .filter(|&at| same(file[at], want[0]))
        .collect();
    if starts.len() <= 64 {
        return starts
            .into_iter()
            .filter(|&at| (1..m).all(|k| same(file[at + k], want[k])))
            .take(MAX_LISTED)
            .collect();
    }
    // Otherwise (a line repeated all over the file) compare windows by a rolling hash, so
    // the work stays linear in the file.
    // Keys: a line's hash under that comparison. FNV-1a: fast, and collisions only
    // cost a line-by-line check.
    let key = |l: &str| {
        cmp.chars(l).fold(0xcbf2_9ce4_8422_2325u64, |h, c| {
            (h ^ u64::from(c)).wrapping_mul(0x0000_0100_0000_01b3)
        }) | 1
    };
    const BASE: u64 = 0x9E37_79B9_7F4A_7C15;
    let pow = (1..m).fold(1u64, |p, _| p.wrapping_mul(BASE));
    let roll =
        |keys: &mut dyn Iterator<Item = u64>| keys.fold(0u64, |h, k| h.wrapping_mul(BASE).wrapping_add(k));
    let target = roll(&mut want.iter().map(|l| key(l)));
    let keys: Vec<u64> = file.iter().map(|l| key(l)).collect();
    let mut h = roll(&mut keys[..m].iter().copied());
    let mut out = Vec::new();
    for at in 0..=file.len() - m {
        if at > 0 {
            h = h
                .wrapping_sub(keys[at - 1].wrapping_mul(pow))
                .wrapping_mul(BASE)
                .wrapping_add(keys[at + m - 1]);
        }
        if h == target && (0..m).all(|k| same(file[at + k], want[k])) {
            out.push(at);
            if out.len() == MAX_LISTED {
                break;
            }
        }
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
    let lines: Vec<&str> = (0..text.len()).map(|i| text.line(i)).collect();
    let hits = windows_where(&lines, &exact, Cmp::Exact);
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
        // Windows whose lines agree up to surrounding whitespace, found by hashing
        // (linear in the file), so the two tiers below only look at those places.
        let candidates = windows_where(&file, want, Cmp::Trimmed);
        for loose in [false, true] {
            let found: Vec<(usize, Shift)> = candidates
                .iter()
                .copied()
                .filter_map(|at| window_matches(&file, at, want, loose).map(|s| (at, s)))
                .take(MAX_LISTED)
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
    if let Some(near) = whitespace_only(file, want) {
        return format!("{already}{near}");
    }
    let m = want.len().min(file.len());
    // The window with the most lines equal to SEARCH's: each SEARCH line votes for the
    // starts its equal file lines imply (lines found too often to say anything are left
    // out), so this stays linear in the file.
    let mut at_line: std::collections::HashMap<&str, Vec<usize>> = std::collections::HashMap::new();
    for (i, l) in file.iter().enumerate() {
        let l = l.trim();
        if !l.is_empty() {
            at_line.entry(l).or_default().push(i);
        }
    }
    let mut votes: std::collections::HashMap<usize, usize> = std::collections::HashMap::new();
    for (k, s) in want.iter().enumerate().take(200) {
        let Some(places) = at_line.get(s.trim()).filter(|p| p.len() <= 64) else {
            continue;
        };
        for &i in places {
            if let Some(start) = i.checked_sub(k).filter(|st| st + m <= file.len()) {
                *votes.entry(start).or_default() += 1;
            }
        }
    }
    let mut best = votes
        .into_iter()
        .max_by_key(|&(at, n)| (n, std::cmp::Reverse(at)))
        .unwrap_or((0, 0));
    if best.1 == 0 {
        let target = want[0].trim();
        let mut top = (0usize, 0.0f32);
        // A character diff per line: only for lines of a size where it is cheap.
        for (i, l) in file.iter().enumerate().take(20_000) {
            let l = l.trim();
            if l.is_empty() || l.len() > 400 || target.len() > 400 {
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
    let to = (from + m).min(file.len()).min(from + SHOWN);
    let mut s = format!("{already}; the closest lines are {}-{}:\n", from + 1, to);
    for l in &file[from..to] {
        s.push_str(l);
        s.push('\n');
    }
    s
}

/// At most this many lines of the file are quoted back when SEARCH is not found: enough
/// to copy from, short enough that the point is not lost.
const SHOWN: usize = 8;

/// When SEARCH is in the file but for whitespace (indentation, trailing or inner spaces,
/// blank lines), says so and where: a model shown only "the closest lines" often does
/// not see that whitespace is all it got wrong.
fn whitespace_only(file: &[&str], want: &[&str]) -> Option<String> {
    let kept: Vec<usize> = (0..file.len()).filter(|&i| !file[i].trim().is_empty()).collect();
    let text: Vec<&str> = kept.iter().map(|&i| file[i]).collect();
    let search: Vec<&str> = want.iter().copied().filter(|l| !l.trim().is_empty()).collect();
    let hits = windows_where(&text, &search, Cmp::NoSpace);
    let &at = hits.first()?;
    let n = search.len();
    let (from, to) = (kept[at], kept[at + n - 1]);
    let mut indented = Vec::new();
    let (mut trailing, mut inner, mut blank) = (false, false, false);
    let mut gap_in_search = 0;
    let mut k = 0;
    for s in want {
        if s.trim().is_empty() {
            gap_in_search += 1;
            continue;
        }
        let f = file[kept[at + k]];
        if k > 0 && kept[at + k] - kept[at + k - 1] - 1 != gap_in_search {
            blank = true;
        }
        gap_in_search = 0;
        if indent(f) != indent(s) {
            indented.push(kept[at + k] + 1);
        }
        trailing |= f.len() - f.trim_end().len() != s.len() - s.trim_end().len();
        inner |= f.trim() != s.trim();
        k += 1;
    }
    let mut what = Vec::new();
    if !indented.is_empty() {
        let lines: Vec<String> = indented.iter().take(5).map(usize::to_string).collect();
        let more = if indented.len() > 5 { ", ..." } else { "" };
        what.push(format!(
            "the indentation of line{} {}{more}",
            if indented.len() == 1 { "" } else { "s" },
            lines.join(", ")
        ));
    }
    if trailing {
        what.push("trailing spaces".to_string());
    }
    if inner {
        what.push("spaces inside lines".to_string());
    }
    if blank {
        what.push("blank lines".to_string());
    }
    let others = match hits.len() - 1 {
        0 => String::new(),
        1 => " (and at 1 other place)".to_string(),
        n => format!(" (and at {n} other places)"),
    };
    let mut s = format!(
        "; the SEARCH text matches lines {}-{}{others} except for whitespace ({}); copy them exactly, they are:\n",
        from + 1,
        to + 1,
        what.join(", ")
    );
    for l in &file[from..=to.min(from + SHOWN - 1)] {
        s.push_str(l);
        s.push('\n');
    }
    if to >= from + SHOWN {
        s.push_str("...\n");
    }
    Some(s)
}

fn replace_once_probe(file: &[&str], want: &[&str]) -> bool {
    let nb: Vec<&str> = file.iter().copied().filter(|l| !l.trim().is_empty()).collect();
    !windows_where(&nb, want, Cmp::Trimmed).is_empty()
}
