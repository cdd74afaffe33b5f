//! Static checks of a 2,000-line paper after one keystroke (target p99 ≤ 5 ms): each
//! iteration types one character into the Results section, re-parses incrementally
//! (the previous tree, edited), extracts the facts (walking only the edited section; the
//! others come from the document's cache) and runs every check.
//!
//! `cargo bench -p aisci --bench paper_checks`

use std::path::Path;
use std::time::{Duration, Instant};

use aisci::latex::{self, checks};
use tree_sitter::{InputEdit, Parser, Point};

fn main() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/fixtures/paper/v1_adaptive_dual_scale");
    let paper = std::fs::read_to_string(dir.join("template.tex")).unwrap();
    // The body three times over (sections renamed so they are not duplicates): ~2,000 lines.
    let start = paper.find("\\section{Introduction}").unwrap();
    let end = paper.find("\\bibliographystyle").unwrap();
    let body = &paper[start..end];
    let mut src = paper[..start].to_owned();
    for i in 0..5 {
        src.push_str(&body.replace("\\section{", &format!("\\section{{Part {i} ")));
    }
    src.push_str(&paper[end..]);
    let lines = src.lines().count();
    let runs = aisci::integrity::RunData::load(&dir);
    assert_eq!(runs.runs.len(), 6);
    let bib = [checks::BibSource {
        path: dir.join("references.bib"),
        text: std::fs::read_to_string(dir.join("references.bib")).unwrap(),
    }];
    let exists = |p: &Path| p.is_file();

    let mut parser = Parser::new();
    parser
        .set_language(&codebook_tree_sitter_latex::LANGUAGE.into())
        .unwrap();
    let mut tree = parser.parse(&src, None).unwrap();
    let mut at = src.find("Part 1 Results").unwrap() + 200;
    // One per document, as the editor keeps it: facts of unchanged sections are reused.
    let mut cache = latex::FactsCache::default();
    let mut times = Vec::new();
    let mut split = [Duration::ZERO; 3];
    let mut problems = 0;
    for i in 0..1000 {
        let t = Instant::now();
        // One keystroke: insert a letter.
        while !src.is_char_boundary(at) {
            at += 1;
        }
        src.insert(at, if i % 2 == 0 { 'a' } else { ' ' });
        let row = src[..at].matches('\n').count();
        let col = at - src[..at].rfind('\n').map(|n| n + 1).unwrap_or(0);
        tree.edit(&InputEdit {
            start_byte: at,
            old_end_byte: at,
            new_end_byte: at + 1,
            start_position: Point::new(row, col),
            old_end_position: Point::new(row, col),
            new_end_position: Point::new(row, col + 1),
        });
        tree = parser.parse(&src, Some(&tree)).unwrap();
        let t_parse = t.elapsed();
        let facts = latex::facts_cached(&tree, &src, &mut cache);
        let t_facts = t.elapsed();
        let ps = latex::check(&latex::Inputs {
            tex_path: &dir.join("template.tex"),
            src: &src,
            facts: &facts,
            bibs: &bib,
            exists: &exists,
            runs: &runs,
        });
        problems = ps.len();
        times.push(t.elapsed());
        split[0] += t_parse;
        split[1] += t_facts - t_parse;
        split[2] += t.elapsed() - t_facts;
        at += 1;
    }
    times.sort();
    let p = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)];
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    println!(
        "static checks after one keystroke, {lines}-line paper ({problems} problems): p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms (target p99 ≤ 5 ms)",
        ms(p(0.5)),
        ms(p(0.99)),
        ms(*times.last().unwrap())
    );
    let n = times.len() as u32;
    println!(
        "  mean: incremental parse {:.2} ms, facts {:.2} ms, checks {:.2} ms",
        ms(split[0] / n),
        ms(split[1] / n),
        ms(split[2] / n)
    );
}
