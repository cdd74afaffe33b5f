//! The paper's integrity diagnostics: a number no run produced, a number the runs hold
//! only for another dataset, metric or run than its words name, one seed's value called
//! a mean, a change the runs went the other way, and hardware or versions no `env.json`
//! records.

use std::path::Path;

use super::claims::{claims, Claim};
use super::sources::RunData;
use super::trace::{resolve, Outcome, Trace};
use crate::latex::checks::TexProblem;
use crate::latex::syntax::TexFacts;
use crate::project::Severity;

/// The source name editors show for these diagnostics.
pub const SOURCE: &str = "aisci integrity";

/// Codes of the integrity diagnostics.
pub mod code {
    pub const NO_SOURCE: &str = "number-without-source";
    pub const OTHER_SOURCE: &str = "number-from-elsewhere";
    pub const SEED_AS_MEAN: &str = "mean-is-one-seed";
    pub const DIRECTION: &str = "change-contradicts-runs";
    pub const ENV: &str = "environment-not-recorded";
    pub const ALL: [&str; 5] = [NO_SOURCE, OTHER_SOURCE, SEED_AS_MEAN, DIRECTION, ENV];
}

/// Whether a problem code is one of these checks.
pub fn is_integrity(code: &str) -> bool {
    code::ALL.contains(&code)
}

pub fn check(tex: &Path, src: &str, facts: &TexFacts, data: &RunData) -> Vec<TexProblem> {
    let mut out = Vec::new();
    if data.sources.is_empty() {
        return out;
    }
    let problem = |span, code, message: String| TexProblem {
        path: tex.to_path_buf(),
        span,
        severity: Severity::Warning,
        code,
        message,
        fix: None,
    };
    let claimed = claims(src, facts);
    for claim in &claimed {
        match resolve(claim, data) {
            Outcome::Name(_) => {}
            Outcome::Untraced => out.push(problem(
                claim.span.clone(),
                code::NO_SOURCE,
                format!(
                    "{} is not in any run's results, and no run's values give it",
                    claim.written
                ),
            )),
            Outcome::Elsewhere { named, found } => out.push(problem(
                claim.span.clone(),
                code::OTHER_SOURCE,
                format!(
                    "{} is not what the runs give for {named}; it is {}",
                    claim.written,
                    found[0].explain(data)
                ),
            )),
            Outcome::Traced(traces) => {
                if let Some(p) = seed_as_mean(claim, &traces, data) {
                    out.push(problem(claim.span.clone(), code::SEED_AS_MEAN, p));
                } else if let Some(p) = direction(claim, &traces, data) {
                    out.push(problem(claim.span.clone(), code::DIRECTION, p));
                }
            }
        }
    }
    for (span, message) in super::env::unrecorded(src, facts, data) {
        out.push(problem(span, code::ENV, message));
    }
    out
}

/// "mean … 0.97" where 0.97 is only ever one seed's value.
fn seed_as_mean(claim: &Claim, traces: &[Trace], data: &RunData) -> Option<String> {
    let says_mean = claim
        .context
        .split(' ')
        .any(|w| matches!(w, "mean" | "means" | "average" | "averaged" | "averages" | "avg"));
    if !says_mean || !traces.iter().all(|t| t.one_seed(data)) {
        return None;
    }
    let seed = &data.sources[traces[0].sources()[0]];
    let mean = data.sources.iter().find(|s| {
        s.run == seed.run
            && s.dataset() == seed.dataset()
            && s.stat == super::sources::Stat::Mean
            && s.metric().starts_with(seed.metric())
    });
    Some(match mean {
        Some(m) => format!(
            "{} is one seed's value ({}), not a mean; the mean is {:.4} ({})",
            claim.written,
            seed.describe(),
            m.value,
            m.describe()
        ),
        None => format!(
            "{} is one seed's value ({}), not a mean",
            claim.written,
            seed.describe()
        ),
    })
}

/// Words that say a quantity went up, or down.
const UP: &[&str] = &[
    "increas", "rais", "rise", "rose", "grow", "grew", "higher", "gain",
];
const DOWN: &[&str] = &[
    "reduc", "decreas", "lower", "drop", "fell", "fall", "declin", "shrank", "shrink", "cut",
];
/// Metrics where lower is better, so "improves" means down.
const LOWER_BETTER: &[&str] = &[
    "loss",
    "error",
    "err",
    "kl",
    "divergence",
    "time",
    "perplexity",
    "ppl",
    "mse",
    "mae",
    "fid",
    "latency",
];

/// "from X to Y" where the runs of that quantity do not move the way the words say: Y and
/// X found as the same quantity in two runs.
fn direction(claim: &Claim, traces: &[Trace], data: &RunData) -> Option<String> {
    let from = claim.from?;
    let unit = 10f64.powi(-claim.decimals) * 1.0001;
    let (to_src, from_src) = traces.iter().find_map(|t| {
        let i = match t.how {
            super::trace::How::Value(i) => i,
            _ => return None,
        };
        let s = &data.sources[i];
        data.sources
            .iter()
            .find(|f| f.series() == s.series() && f.run != s.run && (f.value - from).abs() <= unit)
            .map(|f| (s, f))
    })?;
    let has = |stems: &[&str]| {
        claim
            .context
            .split(' ')
            .any(|w| stems.iter().any(|s| w.starts_with(s)))
    };
    let metric = to_src.metric().to_lowercase();
    let lower_better = LOWER_BETTER.iter().any(|m| metric.contains(m));
    let improves = has(&["improv", "better"]);
    let up = has(UP) || (improves && !lower_better);
    let down = has(DOWN) || (improves && lower_better);
    if up == down || to_src.value == from_src.value {
        return None;
    }
    let rose = to_src.value > from_src.value;
    (up != rose).then(|| {
        let said = if improves {
            "an improvement"
        } else if up {
            "a rise"
        } else {
            "a fall"
        };
        format!(
            "the sentence calls this {said}, but {} went {} from {:.4} ({}) to {:.4} ({})",
            to_src.metric(),
            if rose { "up" } else { "down" },
            from_src.value,
            from_src.run,
            to_src.value,
            to_src.run
        )
    })
}
