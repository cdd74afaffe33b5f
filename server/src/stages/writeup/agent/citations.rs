//! Adding the papers the model picks to the paper's bibliography: the entry the engine
//! gave (normalised) or one made from the metadata, under a key that is new to the
//! bibliography; a work already there keeps its key and is not added twice.
//!
//! The bibliography is the `filecontents` block that writes a `.bib` (v1's templates
//! keep it inside the `.tex`), else the `.bib` file `\bibliography{...}` names.

use std::path::{Path, PathBuf};

use crate::latex::bib::{title_fingerprint, BibItem};
use crate::latex::syntax::{self, TexFacts};
use crate::literature::bibtex::{dedupe_keys, from_paper, parse_entry, sanitize, BibEntry};
use crate::literature::Paper;

/// A search result as offered to the model.
#[derive(Debug, Clone)]
pub struct Candidate {
    pub paper: Paper,
    /// The key to cite it by.
    pub key: String,
    /// The work is in the bibliography already (under `key`).
    pub existing: bool,
    /// The entry to add (None when `existing`).
    pub entry: Option<String>,
}

/// Keys for `papers`: an existing entry's key for a work already cited (same title),
/// else the engine's key made unique against the bibliography and the papers before it.
pub fn candidates(papers: &[Paper], existing: &[BibItem]) -> Vec<Candidate> {
    let mut taken: Vec<String> = existing.iter().map(|i| i.key.clone()).collect();
    papers
        .iter()
        .map(|p| {
            let fp = title_fingerprint(&p.title);
            if let Some(item) = existing
                .iter()
                .find(|i| i.field("title").is_some_and(|t| title_fingerprint(t) == fp))
            {
                return Candidate {
                    paper: p.clone(),
                    key: item.key.clone(),
                    existing: true,
                    entry: None,
                };
            }
            let mut entry: BibEntry = p
                .bibtex
                .as_deref()
                .and_then(|b| sanitize(b).ok())
                .and_then(|s| parse_entry(&s).ok())
                .unwrap_or_else(|| from_paper(p));
            let mut keys = taken.clone();
            keys.push(entry.key.clone());
            dedupe_keys(keys.iter_mut());
            entry.key = keys.pop().expect("pushed above");
            taken.push(entry.key.clone());
            Candidate {
                paper: p.clone(),
                key: entry.key.clone(),
                existing: false,
                entry: Some(entry.render()),
            }
        })
        .collect()
}

/// The numbered list the model chooses from.
pub fn describe(cands: &[Candidate]) -> String {
    let mut out = String::new();
    for (i, c) in cands.iter().enumerate() {
        let p = &c.paper;
        let authors = match p.authors.len() {
            0 => "unknown authors".to_string(),
            1..=3 => p.authors.join(", "),
            _ => format!("{} et al.", p.authors[0]),
        };
        let year = p.year.map(|y| y.to_string()).unwrap_or_else(|| "n.d.".into());
        out.push_str(&format!("{}. {} ({authors}, {year})", i + 1, p.title));
        if let Some(v) = p.venue.as_deref().filter(|v| !v.is_empty()) {
            out.push_str(&format!(", {v}"));
        }
        if c.existing {
            out.push_str(&format!("\n   key: {} (already in the bibliography)", c.key));
        } else {
            out.push_str(&format!("\n   key: {}", c.key));
        }
        if let Some(a) = p.abstract_text.as_deref().filter(|a| !a.is_empty()) {
            let short: String = a.chars().take(500).collect();
            out.push_str(&format!("\n   abstract: {short}"));
        }
        out.push_str("\n\n");
    }
    out.trim_end().to_string()
}

/// Where new entries go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// The `filecontents` block writing this file name, inside the `.tex`.
    Block(String),
    /// A `.bib` file beside the `.tex`.
    File(PathBuf),
}

pub fn target(tex: &Path, facts: &TexFacts) -> Option<Target> {
    let names: Vec<String> = facts
        .bibliographies
        .iter()
        .map(|b| {
            if b.name.ends_with(".bib") {
                b.name.clone()
            } else {
                format!("{}.bib", b.name)
            }
        })
        .collect();
    let blocks: Vec<&str> = facts
        .filecontents
        .iter()
        .map(|f| f.name.as_str())
        .filter(|n| n.ends_with(".bib"))
        .collect();
    if let Some(b) = blocks
        .iter()
        .find(|b| names.iter().any(|n| n == *b))
        .or(blocks.first())
    {
        return Some(Target::Block(b.to_string()));
    }
    let dir = tex.parent().unwrap_or(Path::new("."));
    names.first().map(|n| Target::File(dir.join(n)))
}

/// `src` with `entries` appended to the `filecontents` block named `name`; None when
/// there is no such block.
pub fn add_to_block(src: &str, name: &str, entries: &[String]) -> Option<String> {
    if entries.is_empty() {
        return Some(src.to_string());
    }
    let facts = syntax::facts(&syntax::parse(src), src);
    let block = facts.filecontents.iter().find(|f| f.name == name)?;
    let end = block.body.end;
    let mut out = String::with_capacity(src.len() + 512);
    out.push_str(&src[..end]);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    for e in entries {
        out.push('\n');
        out.push_str(e.trim_end());
        out.push('\n');
    }
    out.push_str(&src[end..]);
    Some(out)
}

/// A `.bib` file's text with `entries` appended.
pub fn add_to_file(text: &str, entries: &[String]) -> String {
    let mut out = text.to_string();
    if !out.is_empty() && !out.ends_with('\n') {
        out.push('\n');
    }
    for e in entries {
        if !out.is_empty() {
            out.push('\n');
        }
        out.push_str(e.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latex::bib;
    use crate::literature::Engine;

    fn paper(title: &str, bibtex: Option<&str>) -> Paper {
        Paper {
            authors: vec!["Jane Doe".into()],
            year: Some(2020),
            bibtex: bibtex.map(str::to_owned),
            ..Paper::new(Engine::SemanticScholar, "x", title)
        }
    }

    #[test]
    fn keys_are_new_or_reused_never_duplicated() {
        let bib = bib::parse(
            "@article{doe2020deep, title={Deep Things}, author={Doe, Jane}, year={2020}}\n\
             @article{Doe2020Other, title={Other Work}, author={Doe, Jane}, year={2020}}\n",
        );
        let papers = vec![
            // The same work as an existing entry, under another key and case.
            paper(
                "Deep things",
                Some("@Article{Doe2020DeepT, title={Deep things}, author={Jane Doe}, year={2020}}"),
            ),
            // A new work whose engine key clashes (case-insensitively) with an existing one.
            paper(
                "Shallow Things",
                Some("@Article{doe2020other, title={Shallow Things}, author={Jane Doe}, year={2020}}"),
            ),
            // No BibTeX from the engine: made from the metadata; clashes with the one before.
            paper("Shallow Things Again", None),
            paper("Shallow Things Again, Again", None),
        ];
        let c = candidates(&papers, &bib.items);
        assert!(c[0].existing);
        assert_eq!(c[0].key, "doe2020deep");
        assert!(c[0].entry.is_none());
        assert_eq!(c[1].key, "doe2020otherb");
        assert_eq!(c[2].key, "doe2020shallow");
        assert_eq!(c[3].key, "doe2020shallowb");
        assert!(c[1]
            .entry
            .as_deref()
            .unwrap()
            .starts_with("@article{doe2020otherb,"));
        let listing = describe(&c);
        assert!(listing
            .contains("1. Deep things (Jane Doe, 2020)\n   key: doe2020deep (already in the bibliography)"));
    }

    #[test]
    fn entries_go_into_the_filecontents_block() {
        let src = "\\begin{filecontents}{references.bib}\n@misc{a, title={A}}\n\\end{filecontents}\n\\begin{document}\n\\bibliography{references}\n\\end{document}\n";
        let facts = syntax::facts(&syntax::parse(src), src);
        assert_eq!(
            target(Path::new("/p/t.tex"), &facts),
            Some(Target::Block("references.bib".into()))
        );
        let out = add_to_block(src, "references.bib", &["@misc{b,\n  title = {B}\n}\n".into()]).unwrap();
        assert!(
            out.contains("@misc{a, title={A}}\n\n@misc{b,\n  title = {B}\n}\n\\end{filecontents}"),
            "{out}"
        );
        let items =
            bib::parse(&out[out.find("@misc").unwrap()..out.find("\\end{filecontents}").unwrap()]).items;
        assert_eq!(items.len(), 2);
        let plain = "\\begin{document}\n\\bibliography{refs}\n\\end{document}\n";
        let facts = syntax::facts(&syntax::parse(plain), plain);
        assert_eq!(
            target(Path::new("/p/t.tex"), &facts),
            Some(Target::File("/p/refs.bib".into()))
        );
        assert_eq!(
            add_to_file("@misc{a}", &["@misc{b}\n".into()]),
            "@misc{a}\n\n@misc{b}\n"
        );
    }
}
