//! The static checks on a real v1 paper (tests/fixtures/paper/v1_adaptive_dual_scale, see
//! its PROVENANCE.txt): its known defects are found, and nothing it gets right is flagged.

use std::path::{Path, PathBuf};

use aisci::latex::{self, checks, TexProblem};

use crate::support::fs::fixtures;

fn fixture() -> PathBuf {
    fixtures().join("paper/v1_adaptive_dual_scale")
}

fn check_corpus_paper(src: &str) -> Vec<TexProblem> {
    let dir = fixture();
    let facts = latex::facts(&latex::parse(src), src);
    let runs = aisci::integrity::RunData::load(&dir);
    assert_eq!(runs.runs.len(), 6);
    let bibs = [checks::BibSource {
        path: dir.join("references.bib"),
        text: std::fs::read_to_string(dir.join("references.bib")).unwrap(),
    }];
    let exists = |p: &Path| p.is_file();
    latex::check(&latex::Inputs {
        tex_path: &dir.join("template.tex"),
        src,
        facts: &facts,
        bibs: &bibs,
        exists: &exists,
        runs: &runs,
    })
}

#[test]
fn v1_paper_known_defects_are_reported() {
    let src = std::fs::read_to_string(fixture().join("template.tex")).unwrap();
    let ps = check_corpus_paper(&src);
    let line = |p: &TexProblem| src[..p.span.start].matches('\n').count() + 1;
    for p in &ps {
        eprintln!(
            "{}:{} {} {}",
            line(p),
            p.code,
            &src[p.span.clone()].chars().take(40).collect::<String>(),
            p.message
        );
    }
    // v1 appended BibTeX for papers it had already: the same key twice.
    let dups: Vec<&TexProblem> = ps.iter().filter(|p| p.code == "duplicate-bib-key").collect();
    assert!(
        !dups.is_empty(),
        "the duplicate BibTeX keys of the v1 paper are reported"
    );
    for d in &dups {
        let key = &src[d.span.clone()];
        let first = src.find(&format!("{{{key},")).unwrap();
        assert!(
            first < d.span.start,
            "{key}: the repeat, not the first, is flagged"
        );
        assert!(d.fix.is_some());
    }
    // Every \cite of the paper resolves (v1 checked that), so none is flagged.
    assert!(!ps.iter().any(|p| p.code == "undefined-citation"), "{ps:#?}");
    // The figures were not part of the corpus: each \includegraphics is reported missing.
    let facts = latex::facts(&latex::parse(&src), &src);
    let missing = ps.iter().filter(|p| p.code == "missing-figure").count();
    assert_eq!(missing, facts.graphics.len());
    assert!(!ps
        .iter()
        .any(|p| p.code == "unclosed-environment" || p.code == "unmatched-end"));
    assert!(!ps.iter().any(|p| p.code == "placeholder"));
    // Every number it claims as a result is traced to the runs (values, means over
    // datasets, relative changes), with one exception that is v1's own error: it calls the
    // moons KL going from 0.090 (run_0) to 0.093 (run_4) an improvement.
    let integrity: Vec<(usize, &str, &str)> = ps
        .iter()
        .filter(|p| aisci::integrity::is_integrity(p.code))
        .map(|p| (line(p), p.code, &src[p.span.clone()]))
        .collect();
    let moons = src[..src.find("Moons: 3.3").unwrap()].matches('\n').count() + 1;
    assert_eq!(
        integrity,
        [(moons, "change-contradicts-runs", "0.093")],
        "{integrity:?}"
    );
}

#[test]
fn seeded_errors_are_found_at_their_lines() {
    let clean = std::fs::read_to_string(fixture().join("template.tex")).unwrap();
    // Seed: a citation to an unknown key, an unclosed itemize, a placeholder and a
    // number no run produced, each on its own new line after "\section{Results}".
    let anchor = "\\section{Results}\n";
    let at = clean.find(anchor).unwrap() + anchor.len();
    let seeded = format!(
        "{}As shown by \\cite{{nosuchkey2024}}.\nRESULTS HERE\nOur loss is 987.654.\n\\begin{{itemize}}\n{}",
        &clean[..at],
        &clean[at..]
    );
    let first_line = clean[..at].matches('\n').count() + 1;
    let ps = check_corpus_paper(&seeded);
    let line = |p: &TexProblem| seeded[..p.span.start].matches('\n').count() + 1;
    let find = |code: &str| ps.iter().filter(|p| p.code == code).map(line).collect::<Vec<_>>();
    assert_eq!(find("undefined-citation"), [first_line]);
    assert_eq!(find("placeholder"), [first_line + 1]);
    assert!(find("number-without-source").contains(&(first_line + 2)));
    assert_eq!(find("unclosed-environment"), [first_line + 3]);
}

/// The per-document cache gives the same facts as a fresh walk, edit after edit, on a
/// real paper (its sections hold recovered syntax errors).
#[test]
fn cached_facts_match_fresh_ones_on_the_v1_paper() {
    let mut src = std::fs::read_to_string(fixture().join("template.tex")).unwrap();
    let mut cache = latex::FactsCache::default();
    let first = latex::facts_cached(&latex::parse(&src), &src, &mut cache);
    assert_eq!(first, latex::facts(&latex::parse(&src), &src));
    for (needle, insert) in [
        ("\\section{Results}", "x"),
        ("\\section{Method}", "\\cite{ddpm} "),
        ("\\end{filecontents}", "@misc{new, title={T}}\n"),
        ("\\section{Background}", "\\begin{itemize}\n"),
        ("\\section{Related Work}", "}"),
        ("\\begin{abstract}", "$"),
    ] {
        let at = src.find(needle).unwrap();
        src.insert_str(at, insert);
        let tree = latex::parse(&src);
        assert_eq!(
            latex::facts_cached(&tree, &src, &mut cache),
            latex::facts(&tree, &src),
            "after inserting {insert:?} before {needle:?}"
        );
    }
}
