//! A claimed number resolved to the runs: which run, metric and dataset it comes from
//! and how it was derived. The words around it narrow the search (the datasets, metrics
//! and runs they name), and a derived value (a difference, a relative change, a ratio)
//! is tried only where the words say it is one, between the same quantity in two runs,
//! so whether a number is found does not depend on how many numbers the runs hold.

use super::claims::Claim;
use super::sources::{RunData, Source, Stat};

/// How a claimed number follows from the runs.
#[derive(Debug, Clone, PartialEq)]
pub enum How {
    /// The value itself (rounded to the digits written).
    Value(usize),
    /// The value × 100.
    Percent(usize),
    /// The mean of a metric over datasets, in one run.
    MeanOverDatasets(Vec<usize>),
    /// |a − b|.
    Difference(usize, usize),
    /// |a − b| × 100.
    PercentPoints(usize, usize),
    /// |a − b| / |b| × 100.
    RelativeChange(usize, usize),
    /// a / b.
    Ratio(usize, usize),
    /// A constant of `experiment.py` (its line).
    Code(usize),
}

#[derive(Debug, Clone, PartialEq)]
pub struct Trace {
    pub how: How,
    /// The exact value the derivation gives.
    pub exact: f64,
}

impl Trace {
    /// The sources it uses (the first is where go-to-definition goes).
    pub fn sources(&self) -> Vec<usize> {
        match &self.how {
            How::Value(i) | How::Percent(i) => vec![*i],
            How::MeanOverDatasets(v) => v.clone(),
            How::Difference(a, b)
            | How::PercentPoints(a, b)
            | How::RelativeChange(a, b)
            | How::Ratio(a, b) => {
                vec![*a, *b]
            }
            How::Code(_) => Vec::new(),
        }
    }

    /// Whether it rests on one seed's value only.
    pub fn one_seed(&self, data: &RunData) -> bool {
        let s = self.sources();
        !s.is_empty() && s.iter().all(|i| matches!(data.sources[*i].stat, Stat::Seed(_)))
    }

    /// "run_2 circle kl_divergence_mean = 0.34712", with the computation.
    pub fn explain(&self, data: &RunData) -> String {
        let src = |i: &usize| &data.sources[*i];
        let d = |i: &usize| format!("{} = {}", src(i).describe(), short(src(i).value));
        match &self.how {
            How::Value(i) => format!("{}{}", d(i), stat_note(src(i))),
            How::Percent(i) => format!("{} (× 100 = {}){}", d(i), short(self.exact), stat_note(src(i))),
            How::MeanOverDatasets(v) => format!(
                "mean over {} datasets of {} = {}: {}",
                v.len(),
                src(&v[0]).metric(),
                short(self.exact),
                v.iter().map(d).collect::<Vec<_>>().join("; ")
            ),
            How::Difference(a, b) => format!("difference {} − {} = {}", d(a), d(b), short(self.exact)),
            How::PercentPoints(a, b) => format!("{} − {} = {} points", d(a), d(b), short(self.exact)),
            How::RelativeChange(a, b) => format!(
                "relative change from {} to {}: |a − b| / b = {}%",
                d(b),
                d(a),
                short(self.exact)
            ),
            How::Ratio(a, b) => format!("ratio {} / {} = {}", d(a), d(b), short(self.exact)),
            How::Code(line) => format!("experiment.py line {line}: {}", short(self.exact)),
        }
    }
}

fn stat_note(s: &Source) -> &'static str {
    match s.stat {
        Stat::Mean => " (mean over seeds)",
        Stat::StdErr => " (standard error)",
        Stat::Seed(_) => " (one seed)",
        Stat::Value => "",
    }
}

fn short(x: f64) -> String {
    let s = format!("{x:.5}");
    s.trim_end_matches('0').trim_end_matches('.').to_string()
}

/// Where a claimed number was found.
#[derive(Debug, Clone, PartialEq)]
pub enum Outcome {
    Traced(Vec<Trace>),
    /// Not where its words point (`named`), but elsewhere in the runs.
    Elsewhere {
        named: String,
        found: Vec<Trace>,
    },
    /// Part of a metric's name, not a value: the 90 of "steps to 90% accuracy"
    /// (`steps_to_90_val_acc`).
    Name(String),
    Untraced,
}

/// Whether `exact` shows as `claim` (rounded or cut to the digits written; one unit in the
/// last place of slack, as writers round twice).
fn shows_as(exact: f64, claim: &Claim) -> bool {
    let unit = 10f64.powi(-claim.decimals);
    (exact.abs() - claim.value).abs() <= unit * 1.0001
}

/// What the words name.
#[derive(Debug, Default)]
struct Named {
    datasets: Vec<String>,
    metrics: Vec<String>,
    runs: Vec<String>,
}

impl Named {
    fn say(&self) -> String {
        let mut parts = Vec::new();
        if !self.runs.is_empty() {
            parts.push(self.runs.join(", "));
        }
        if !self.datasets.is_empty() {
            parts.push(self.datasets.join(", "));
        }
        if !self.metrics.is_empty() {
            parts.push(self.metrics.join(", "));
        }
        parts.join(" · ")
    }
}

/// Abbreviations metric names use, and the words papers write for them.
const SPELLED: &[(&str, &str)] = &[
    ("acc", "accuracy"),
    ("val", "validation"),
    ("eval", "evaluation"),
    ("train", "training"),
    ("ppl", "perplexity"),
    ("lr", "learning"),
    ("kl", "divergence"),
    ("inf", "inference"),
    ("num", "number"),
    ("err", "error"),
];
/// Words that qualify a metric without saying which it is.
const QUALIFIERS: &[&str] = &[
    "train",
    "training",
    "val",
    "validation",
    "test",
    "eval",
    "evaluation",
    "best",
];
const NOT_METRIC: &[&str] = &[
    "mean", "means", "stderr", "std", "avg", "final", "to", "of", "per", "dict", "info",
];

/// How many of `metric`'s words the context has (0 unless one is more than a qualifier).
fn metric_score(metric: &str, words: &[&str]) -> usize {
    let has = |w: &str| {
        words
            .iter()
            .any(|x| *x == w || x.strip_suffix('s') == Some(w) || x.strip_suffix("es") == Some(w))
    };
    let mut score = 0;
    let mut core = false;
    for t in metric
        .to_lowercase()
        .split(|c: char| !c.is_ascii_alphanumeric())
        .filter(|t| t.len() >= 2 && !NOT_METRIC.contains(t) && !t.chars().all(|c| c.is_ascii_digit()))
    {
        let spelled = SPELLED.iter().find(|(a, _)| *a == t).map(|(_, b)| *b);
        if has(t) || spelled.is_some_and(has) {
            score += 1;
            core |= !QUALIFIERS.contains(&t);
        }
    }
    if core {
        score
    } else {
        0
    }
}

fn named(context: &str, row_label: Option<&str>, data: &RunData) -> Named {
    let words: Vec<&str> = context.split(' ').collect();
    let text = format!(" {context} ");
    let mut n = Named::default();
    for d in &data.datasets {
        let spoken = d.to_lowercase().replace(['_', '-'], " ");
        if text.contains(&format!(" {spoken} ")) {
            n.datasets.push(d.clone());
        }
    }
    let mut metrics: Vec<(&str, usize)> = Vec::new();
    for s in &data.sources {
        let m = s.metric();
        if !metrics.iter().any(|(x, _)| *x == m) {
            metrics.push((m, metric_score(m, &words)));
        }
    }
    let best = metrics.iter().map(|(_, s)| *s).max().unwrap_or(0);
    if best > 0 {
        n.metrics = metrics
            .iter()
            .filter(|(_, s)| *s == best)
            .map(|(m, _)| m.to_string())
            .collect();
    }
    for run in &data.runs {
        let k = run.trim_start_matches("run_");
        let said = [format!(" run {k} "), format!(" {run} "), format!(" run{k} ")];
        if said.iter().any(|p| text.contains(p.as_str())) {
            n.runs.push(run.clone());
        }
    }
    // A table row names its run by its label: "Baseline", or a run's title.
    if let Some(label) = row_label.filter(|_| n.runs.is_empty()) {
        if let Some(run) = run_of_label(label, data) {
            n.runs.push(run);
        }
    }
    n
}

/// The run a table row's label names: `run_0` for "baseline", else the run whose title
/// (from `notes.txt`) holds the label's words, or whose number the label says.
fn run_of_label(label: &str, data: &RunData) -> Option<String> {
    let words: Vec<&str> = label.split(' ').filter(|w| w.len() >= 3).collect();
    if words.is_empty() {
        return None;
    }
    if let Some(k) = label.strip_prefix("run ").and_then(|r| r.split(' ').next()) {
        let run = format!("run_{k}");
        return data.runs.contains(&run).then_some(run);
    }
    let matching: Vec<&String> = data
        .titles
        .iter()
        .filter(|(_, t)| {
            let t = super::claims::words_of(t);
            words.iter().all(|w| t.split(' ').any(|x| x == *w))
        })
        .map(|(r, _)| r)
        .collect();
    match matching.as_slice() {
        [one] => Some((*one).clone()),
        _ if label == "baseline" && data.runs.iter().any(|r| r == "run_0") => Some("run_0".into()),
        _ => None,
    }
}

/// The metric whose name holds the whole number as written beside the same word:
/// "steps to 90%" and `steps_to_90_val_acc`, "top-5 accuracy" and `top_5_acc`.
fn in_metric_name(claim: &Claim, n: &Named) -> Option<String> {
    if claim.decimals != 0 {
        return None;
    }
    let digits = claim.written.trim_end_matches('%');
    let text = format!(" {} ", claim.context);
    // The word as the metric spells it, or as a paper writes it ("val", "validation").
    let forms = |w: &str| -> Vec<String> {
        let mut f = vec![w.to_owned()];
        f.extend(
            SPELLED
                .iter()
                .filter(|(a, _)| *a == w)
                .map(|(_, b)| b.to_string()),
        );
        f
    };
    n.metrics.iter().find_map(|m| {
        let tokens: Vec<String> = m
            .to_lowercase()
            .split(|c: char| !c.is_ascii_alphanumeric())
            .map(str::to_owned)
            .collect();
        let i = tokens.iter().position(|t| t == digits)?;
        let before = i.checked_sub(1).is_some_and(|j| {
            forms(&tokens[j])
                .iter()
                .any(|w| text.contains(&format!(" {w} {digits} ")))
        });
        let after = tokens
            .get(i + 1)
            .is_some_and(|t| forms(t).iter().any(|w| text.contains(&format!(" {digits} {w} "))));
        (before || after).then(|| m.clone())
    })
}

/// Which derivations the words ask for.
fn cues(claim: &Claim) -> (bool, bool, bool) {
    let has = |stems: &[&str]| {
        claim
            .context
            .split(' ')
            .any(|w| stems.iter().any(|s| w.starts_with(s)))
    };
    let change = has(&[
        "reduc",
        "improv",
        "increas",
        "decreas",
        "lower",
        "higher",
        "better",
        "worse",
        "gain",
        "drop",
        "faster",
        "slower",
        "less",
        "more",
        "fewer",
        "relativ",
        "compar",
        "over",
        "than",
        "by",
        "speed",
        "overhead",
        "outperform",
        "rais",
        "cut",
        "fell",
        "fall",
        "rose",
        "grow",
        "declin",
        "differ",
        "gap",
        "margin",
    ]);
    let points = has(&["point", "pp"]);
    (
        change && claim.percent && !points,
        change && !claim.percent,
        claim.percent && points,
    )
}

/// The sources whose quantity the words name (every one where they name nothing).
fn filtered(data: &RunData, n: &Named) -> Vec<usize> {
    (0..data.sources.len())
        .filter(|&i| {
            let s = &data.sources[i];
            (n.datasets.is_empty() || s.dataset().is_some_and(|d| n.datasets.iter().any(|x| x == d)))
                && (n.metrics.is_empty() || n.metrics.iter().any(|m| m == s.metric()))
                && (n.runs.is_empty() || n.runs.contains(&s.run))
        })
        .collect()
}

/// Resolves `claim` against `data`.
pub fn resolve(claim: &Claim, data: &RunData) -> Outcome {
    let n = named(&claim.context, claim.row_label.as_deref(), data);
    if let Some(metric) = in_metric_name(claim, &n) {
        return Outcome::Name(metric);
    }
    let within = filtered(data, &n);
    let found = traces(claim, data, &within, &n, true);
    if !found.is_empty() {
        return Outcome::Traced(found);
    }
    // "… lists the final sharpness. At 0.01 it is 0.197": the quantity the sentence
    // before named, with this sentence's datasets and runs.
    let prev = named(&claim.before, None, data);
    if !prev.metrics.is_empty() && prev.metrics != n.metrics {
        let pick = |here: &[String], there: Vec<String>| if here.is_empty() { there } else { here.to_vec() };
        let carried = Named {
            datasets: pick(&n.datasets, prev.datasets),
            metrics: prev.metrics,
            runs: pick(&n.runs, prev.runs),
        };
        let found = traces(claim, data, &filtered(data, &carried), &carried, true);
        if !found.is_empty() {
            return Outcome::Traced(found);
        }
    }
    let narrowed = !(n.datasets.is_empty() && n.metrics.is_empty() && n.runs.is_empty());
    if narrowed {
        let all: Vec<usize> = (0..data.sources.len()).collect();
        let found = traces(claim, data, &all, &Named::default(), false);
        if !found.is_empty() {
            return Outcome::Elsewhere {
                named: n.say(),
                found,
            };
        }
    }
    let code: Vec<Trace> = data
        .code
        .iter()
        .filter(|(x, _)| shows_as(*x, claim))
        .map(|(x, line)| Trace {
            how: How::Code(*line),
            exact: *x,
        })
        .collect();
    if code.is_empty() {
        Outcome::Untraced
    } else {
        Outcome::Traced(code)
    }
}

fn traces(claim: &Claim, data: &RunData, within: &[usize], n: &Named, derive: bool) -> Vec<Trace> {
    let mut out = Vec::new();
    for &i in within {
        let v = data.sources[i].value;
        if shows_as(v, claim) {
            out.push(Trace {
                how: How::Value(i),
                exact: v,
            });
        } else if shows_as(v * 100.0, claim) {
            out.push(Trace {
                how: How::Percent(i),
                exact: v * 100.0,
            });
        }
    }
    if !out.is_empty() {
        return out;
    }
    out.extend(means_over_datasets(claim, data, within));
    if !out.is_empty() || !derive {
        return out;
    }
    let (relative, difference, points) = cues(claim);
    if !(relative || difference || points || claim.ratio) {
        return out;
    }
    // The same quantity in two runs (one of them a run the words name, if any; the other
    // any run).
    let any_run = Named {
        datasets: n.datasets.clone(),
        metrics: n.metrics.clone(),
        runs: Vec::new(),
    };
    let usable: Vec<usize> = filtered(data, &any_run)
        .into_iter()
        .filter(|&i| matches!(data.sources[i].stat, Stat::Mean | Stat::Value))
        .collect();
    for &a in &usable {
        for &b in &usable {
            let (sa, sb) = (&data.sources[a], &data.sources[b]);
            if a == b || sa.run == sb.run || sa.series() != sb.series() {
                continue;
            }
            if !(n.runs.is_empty() || n.runs.contains(&sa.run) || n.runs.contains(&sb.run)) {
                continue;
            }
            let (x, y) = (sa.value, sb.value);
            let mut push = |how: How, exact: f64| {
                if exact.is_finite() && shows_as(exact, claim) {
                    out.push(Trace { how, exact });
                }
            };
            if relative && y != 0.0 {
                push(How::RelativeChange(a, b), ((x - y) / y * 100.0).abs());
            }
            if difference && a < b {
                push(How::Difference(a, b), (x - y).abs());
            }
            if points && a < b {
                push(How::PercentPoints(a, b), (x - y).abs() * 100.0);
            }
            if claim.ratio && y != 0.0 {
                push(How::Ratio(a, b), x / y);
            }
        }
    }
    out
}

/// A metric's mean over the datasets of one run (over those the words name, if any).
fn means_over_datasets(claim: &Claim, data: &RunData, within: &[usize]) -> Vec<Trace> {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for &i in within {
        let s = &data.sources[i];
        if !matches!(s.stat, Stat::Mean | Stat::Value) || s.dataset().is_none() {
            continue;
        }
        let key = format!("{}|{}", s.run, s.path[1..].join("/"));
        match groups.iter_mut().find(|(k, _)| *k == key) {
            Some((_, v)) => v.push(i),
            None => groups.push((key, vec![i])),
        }
    }
    let mut out = Vec::new();
    for (_, v) in groups.into_iter().filter(|(_, v)| v.len() > 1) {
        let mean = v.iter().map(|i| data.sources[*i].value).sum::<f64>() / v.len() as f64;
        for exact in [mean, mean * 100.0] {
            if shows_as(exact, claim) {
                out.push(Trace {
                    how: How::MeanOverDatasets(v.clone()),
                    exact,
                });
                break;
            }
        }
    }
    out
}
