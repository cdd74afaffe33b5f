//! Property tests for the parsers that read text aisci does not control: model replies
//! (SEARCH/REPLACE blocks, JSON in prose, review replies), LaTeX and BibTeX logs, and v1
//! JSON files. Inputs are random, or real samples (tests/fixtures) mutated; whatever they
//! are, the parsers answer (errors are errors, not panics) and keep their promises.
//! Case counts are kept so that each property runs in a few seconds in a debug build.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use proptest::prelude::*;
use serde_json::Value;

use aisci::agent::edits::{apply_blocks, apply_reply_to_folder, parse_reply, ApplyOptions};
use aisci::agent::json_extract::{extract_all, extract_idea_json};
use aisci::latex::log::{parse_bibtex_log, parse_latex_log};
use aisci::project::{idea_entries, FinalInfo};
use aisci::stages::review::agent::read_reply;
use aisci::stages::review::form::Review;

const IDEAS: &str = include_str!("fixtures/v1/example_papers/adaptive_dual_scale_denoising/ideas.json");
const FINAL_INFO: &str =
    include_str!("fixtures/v1/example_papers/adaptive_dual_scale_denoising/run_1/final_info.json");
const REVIEW: &str = include_str!("fixtures/v1/example_papers/adaptive_dual_scale_denoising/review.txt");

/// One edit to a text: a piece cut out, or one of `pieces` put in, at a random place.
#[derive(Debug, Clone)]
enum Mutation {
    Cut { at: usize, len: usize },
    Insert { at: usize, piece: String },
}

fn mutation(pieces: &'static [&'static str]) -> impl Strategy<Value = Mutation> {
    prop_oneof![
        (any::<usize>(), 0usize..40).prop_map(|(at, len)| Mutation::Cut { at, len }),
        (any::<usize>(), prop::sample::select(pieces)).prop_map(|(at, p)| Mutation::Insert {
            at,
            piece: p.to_string()
        }),
        (any::<usize>(), "\\PC{0,6}").prop_map(|(at, piece)| Mutation::Insert { at, piece }),
    ]
}

/// `text` with `muts` applied, each at a char boundary.
fn mutate(text: &str, muts: &[Mutation]) -> String {
    let mut s = text.to_string();
    let boundary = |s: &str, at: usize| {
        let mut at = at % (s.len() + 1);
        while !s.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    for m in muts {
        match m {
            Mutation::Cut { at, len } => {
                let from = boundary(&s, *at);
                let to = boundary(&s, from + len).max(from);
                s.replace_range(from..to, "");
            }
            Mutation::Insert { at, piece } => {
                let at = boundary(&s, *at);
                s.insert_str(at, piece);
            }
        }
    }
    s
}

// ---- SEARCH/REPLACE replies ----

const PY: &str =
    "import math\n\n\ndef train(lr):\n    x = 1\n    for i in range(3):\n        x += i\n    return x\n";
const REPLY: &str = "Changes:\n\nexperiment.py\n```python\n<<<<<<< SEARCH\n    x = 1\n=======\n    x = 2\n>>>>>>> REPLACE\n```\n\nnotes.txt\n```\n<<<<<<< SEARCH\n=======\nRun 1\n\n>>>>>>> REPLACE\n```\n\n```python\n<<<<<<< SEARCH\ndef train(lr):\n=======\ndef train(lr, wd=0):\n>>>>>>> REPLACE\n```\n";
const REPLY_PIECES: &[&str] = &[
    "<<<<<<< SEARCH\n",
    "=======\n",
    ">>>>>>> REPLACE\n",
    "```\n",
    "```python\n",
    "experiment.py\n",
    "../outside.py\n",
    "/etc/passwd\n",
    "\n",
    "\r\n",
    "    ",
    "\t",
    "    x = 1\n",
    "> <<<<<<< SEARCH\n",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// A mangled reply parses and applies in memory without panicking, quickly, and
    /// all or none: an error gives no edits, success gives every block's file.
    #[test]
    fn mangled_replies_parse_and_apply_all_or_none(muts in prop::collection::vec(mutation(REPLY_PIECES), 0..8)) {
        let reply = mutate(REPLY, &muts);
        let t = Instant::now();
        let parsed = parse_reply(&reply);
        // A marker line is structure, never text.
        for b in &parsed.blocks {
            prop_assert!(b.search.lines().chain(b.replace.lines()).all(|l| l.trim() != "<<<<<<< SEARCH" && l.trim() != ">>>>>>> REPLACE"), "{b:?}");
        }
        let files: HashMap<&str, &str> = [("experiment.py", PY)].into_iter().collect();
        let opts = ApplyOptions { allowed: &["experiment.py", "notes.txt"], check_python: false };
        let result = apply_blocks(&parsed.blocks, &mut |p| files.get(p).map(|s| s.to_string()), &opts);
        if let Ok(edits) = &result {
            for b in &parsed.blocks {
                let p = b.path.trim_start_matches("./");
                prop_assert!(edits.iter().any(|e| e.path == p) || files.contains_key(p), "{p}");
            }
        }
        prop_assert!(t.elapsed() < Duration::from_secs(1));
    }

    /// Random text is never taken for blocks that apply somewhere unexpected.
    #[test]
    fn random_text_never_panics_the_parser(text in "\\PC{0,400}") {
        let parsed = parse_reply(&text);
        prop_assert!(parsed.blocks.len() + parsed.problems.len() <= text.lines().count());
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    /// On disk: a refused reply changes nothing, an applied one writes exactly what it
    /// reported, and nothing appears outside the folder.
    #[test]
    fn mangled_replies_on_disk_are_all_or_none(muts in prop::collection::vec(mutation(REPLY_PIECES), 0..8)) {
        let reply = mutate(REPLY, &muts);
        let outer = tempfile::tempdir().unwrap();
        let dir = outer.path().join("idea");
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("experiment.py"), PY).unwrap();
        match apply_reply_to_folder(&dir, &reply, None, false) {
            Ok(report) => {
                for e in &report.files {
                    prop_assert_eq!(std::fs::read_to_string(dir.join(&e.path)).unwrap(), e.after.clone());
                }
                if !report.files.iter().any(|e| e.path == "experiment.py") {
                    prop_assert_eq!(std::fs::read_to_string(dir.join("experiment.py")).unwrap(), PY);
                }
            }
            Err(_) => {
                prop_assert_eq!(std::fs::read_to_string(dir.join("experiment.py")).unwrap(), PY);
                let names: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
                prop_assert_eq!(names, vec![std::ffi::OsString::from("experiment.py")]);
            }
        }
        let outside: Vec<_> = std::fs::read_dir(outer.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
        prop_assert_eq!(outside, vec![std::ffi::OsString::from("idea")]);
    }
}

// ---- JSON in model output ----

/// Prose without brackets or fences, so that it cannot hold JSON of its own.
const PROSE: &str = "[a-zA-Z0-9 .,:;!?'\\n-]{0,200}";

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// A real idea, fenced or bare, amid prose is found whole.
    #[test]
    fn an_idea_amid_prose_is_found(before in PROSE, after in PROSE, fenced in any::<bool>(), pick in 0usize..100) {
        let ideas: Vec<Value> = serde_json::from_str(IDEAS).unwrap();
        let idea = &ideas[pick % ideas.len()];
        let json = serde_json::to_string_pretty(idea).unwrap();
        let body = if fenced { format!("```json\n{json}\n```") } else { json };
        let text = format!("THOUGHT:\n{before}\n\nNEW IDEA JSON:\n{body}\n{after}");
        prop_assert_eq!(extract_idea_json(&text), Some(idea.clone()));
    }

    /// Whatever the text, extraction answers, and only with values found in it.
    #[test]
    fn mangled_json_output_never_panics(muts in prop::collection::vec(mutation(&["{", "}", "[", "]", "\"", "\\", ",", "```json\n", "```", "\n", ":"]), 0..10)) {
        let text = mutate(&format!("Here it is:\n```json\n{REVIEW}\n```\nREVIEW JSON: {{\"Overall\": 3,}}"), &muts);
        let t = Instant::now();
        for v in extract_all(&text) {
            // Each value is real JSON that survives a round trip.
            let again: Value = serde_json::from_str(&v.to_string()).unwrap();
            prop_assert_eq!(again, v);
        }
        let _ = extract_idea_json(&text);
        let _ = read_reply(&text);
        prop_assert!(t.elapsed() < Duration::from_secs(1));
    }
}

// ---- LaTeX and BibTeX logs ----

const LOG_LINES: &[&str] = &[
    "./template.tex:12: Undefined control sequence.",
    "! Missing $ inserted.",
    "l.57 \\end{equation}",
    "LaTeX Warning: Citation `ho2020' on page 3 undefined on input line 88.",
    "LaTeX Warning: Reference `fig:x' on page 2 undefined on input line 40.",
    "Overfull \\hbox (12.3pt too wide) in paragraph at lines 101--103",
    "(./template.tex (/usr/share/texlive/texmf-dist/tex/latex/base/article.cls",
    ")",
    "./template.tex:99999999999999999999: Emergency stop.",
    "! LaTeX Error: File `missing.sty' not found.",
    "I was expecting a `,' or a `}'---line 12 of file references.bib",
    " :  title = {x}",
    "Warning--empty journal in ddpm",
    "Repeated entry---line 40 of file references.bib",
    "",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 512, ..ProptestConfig::default() })]

    /// Logs made of real-looking lines, cut anywhere and mixed with noise, give problems
    /// with 1-based lines, and an error line in them is always reported.
    #[test]
    fn mangled_logs_give_problems_not_panics(
        lines in prop::collection::vec(prop_oneof![prop::sample::select(LOG_LINES).prop_map(String::from), "\\PC{0,60}"], 0..40),
        cut in any::<usize>(),
    ) {
        let mut log = lines.join("\n");
        let mut at = cut % (log.len() + 1);
        while !log.is_char_boundary(at) {
            at -= 1;
        }
        log.truncate(at);
        for p in parse_latex_log(&log).into_iter().chain(parse_bibtex_log(&log)) {
            prop_assert!(p.line != Some(0), "{p:?}");
        }
        let with_error = format!("{log}\n./template.tex:12: Undefined control sequence.\n");
        prop_assert!(parse_latex_log(&with_error).iter().any(|p| p.line == Some(12)));
        let blg = format!("{log}\nI was expecting a `,' or a `}}'---line 7 of file references.bib\n");
        prop_assert!(parse_bibtex_log(&blg).iter().any(|p| p.line == Some(7)));
    }
}

// ---- v1 JSON files ----

const JSON_PIECES: &[&str] = &[
    "{", "}", "[", "]", "\"", ",", ":", "NaN", "Infinity", "-", "1e999", "null", "\\u00",
];

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Mangled ideas.json, final_info.json and review.txt are read or refused, never a
    /// panic; when ideas.json still parses, each entry's span is the entry's own JSON.
    #[test]
    fn mangled_v1_files_are_read_or_refused(muts in prop::collection::vec(mutation(JSON_PIECES), 1..6)) {
        let ideas = mutate(IDEAS, &muts);
        for e in idea_entries::entries(&ideas) {
            let own: Value = serde_json::from_str(&ideas[e.start..e.end]).unwrap();
            prop_assert_eq!(own, e.value);
        }
        let _ = FinalInfo::parse(&mutate(FINAL_INFO, &muts));
        let review = mutate(REVIEW, &muts);
        if let Ok(v) = serde_json::from_str::<Value>(&review) {
            let _ = Review::from_value(&v);
        }
        let _ = read_reply(&review);
    }
}

#[test]
fn the_unmutated_v1_samples_read() {
    assert_eq!(
        idea_entries::entries(IDEAS).len(),
        serde_json::from_str::<Vec<Value>>(IDEAS).unwrap().len()
    );
    assert!(FinalInfo::parse(FINAL_INFO).is_ok());
    assert!(Review::from_value(&serde_json::from_str(REVIEW).unwrap()).is_ok());
}
