//! Reply sizes of v1's real model, read from its aider transcript (the corpus copy in
//! `tests/fixtures/edits/`, see PROVENANCE.txt there): the fake model's replies are padded
//! to these, so what a reply adds to a history weighs what it did in v1.
//!
//! In the transcript, `####` lines are what v1 sent, `>` lines aider's own output, and
//! everything else the model's replies. The phases follow v1's order: experiment turns
//! until the plot prompt, then plot, notes, and the writeup (a part, then its refinement,
//! per part; citation edits; the second refinement pass; LaTeX fixes).

/// Mean reply length in characters per kind of call.
#[derive(Debug, Clone, Copy)]
pub struct ReplySizes {
    pub experiment: usize,
    pub plot: usize,
    pub notes: usize,
    pub write_part: usize,
    pub cite_edit: usize,
    pub refine: usize,
    pub fix: usize,
}

/// Sizes of the replies the transcript does not hold (v1 made those calls outside aider),
/// from v1's stored outputs in the corpus: an idea with its thought (ideas.json entries
/// are ~1.1k, plus the THOUGHT), a novelty round, a citation query, a review (review.txt
/// is 3.7k).
pub const IDEA: usize = 2_400;
pub const NOVELTY: usize = 1_000;
pub const CITE_QUERY: usize = 700;
pub const REVIEW: usize = 3_700;

#[derive(PartialEq, Clone, Copy)]
enum Kind {
    Sent,
    Tool,
    Reply,
}

/// (prompt, reply) pairs in order.
fn exchanges(text: &str) -> Vec<(String, String)> {
    let mut blocks: Vec<(Kind, String)> = Vec::new();
    for line in text.lines() {
        let kind = if line.starts_with("####") {
            Kind::Sent
        } else if line.starts_with('>') {
            Kind::Tool
        } else {
            Kind::Reply
        };
        if kind == Kind::Tool {
            continue;
        }
        match blocks.last_mut() {
            Some((k, b)) if *k == kind => {
                b.push_str(line);
                b.push('\n');
            }
            _ => blocks.push((kind, format!("{line}\n"))),
        }
    }
    let mut out = Vec::new();
    let mut prompt: Option<String> = None;
    for (kind, block) in blocks {
        match kind {
            Kind::Sent => prompt = Some(block),
            Kind::Reply if block.trim().len() > 20 => {
                if let Some(p) = prompt.take() {
                    out.push((p, block));
                }
            }
            _ => {}
        }
    }
    out
}

fn mean(v: &[usize]) -> usize {
    if v.is_empty() {
        0
    } else {
        v.iter().sum::<usize>() / v.len()
    }
}

pub fn read(text: &str) -> ReplySizes {
    let mut exp = Vec::new();
    let (mut plot, mut notes, mut part, mut cite, mut refine, mut fix) = (
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
        Vec::new(),
    );
    let mut phase = 0; // 0 experiment, 1 plot, 2 notes, 3 writeup
    for (p, r) in exchanges(text) {
        let n = r.len();
        if phase == 0 && p.contains("plot.py") && !p.contains("Run ") {
            phase = 1;
        } else if phase == 1 {
            phase = 2;
        } else if phase == 2 {
            phase = 3;
        }
        match phase {
            0 => exp.push(n),
            1 => plot.push(n),
            2 => notes.push(n),
            _ if p.contains("citations have just been added") => cite.push(n),
            _ if p.contains("refine") || p.contains("Criticize") => refine.push(n),
            _ if p.contains("LaTeX errors") => fix.push(n),
            _ => part.push(n),
        }
    }
    ReplySizes {
        experiment: mean(&exp),
        plot: mean(&plot),
        notes: mean(&notes),
        write_part: mean(&part),
        cite_edit: mean(&cite),
        refine: mean(&refine),
        fix: mean(&fix),
    }
}
