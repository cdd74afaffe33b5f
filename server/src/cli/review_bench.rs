//! `aisci review-bench`: how well a reviewer model separates accepted from rejected
//! papers, on a labelled set in the format of v1's ICLR 2022 benchmark (a TSV/CSV with a
//! `paper_id` and a `decision` column; "Accept (Poster)", "Accept (Oral)", ... count as
//! accept, "Reject" as reject) and a folder of papers named `<paper_id>.pdf|.txt|.tex`,
//! or, with `--reviews`, reviews stored earlier (v1's `llm_reviews/*.csv`), scored with
//! no model call.
//!
//! Metrics for both decision rules (the model's `Decision`, and Overall ≥ threshold):
//! accuracy, balanced accuracy, F1 (accept is the positive class), FPR, FNR; AUC from the
//! Overall scores (ties count half). With binary predictions, as v1 computed it, AUC
//! equals the balanced accuracy, which is reported anyway.

use std::process::ExitCode;

use crate::config::{self, Sources};
use crate::stages;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::stages::review::agent::Decision;

/// One labelled paper and what the reviewer said.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub accept: bool,
    /// The model's `Decision`.
    pub decision_accept: bool,
    /// A stored review's Overall may be an ensemble's mean, hence not an integer.
    pub overall: f64,
}

/// Confusion-matrix metrics of one decision rule; `None` where undefined (no positives...).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Metrics {
    pub n: usize,
    pub accuracy: Option<f64>,
    pub balanced_accuracy: Option<f64>,
    pub f1: Option<f64>,
    pub fpr: Option<f64>,
    pub fnr: Option<f64>,
}

fn ratio(a: usize, b: usize) -> Option<f64> {
    (b > 0).then(|| a as f64 / b as f64)
}

/// Metrics of binary `pred`ictions against `truth` (true = accept).
pub fn metrics(pairs: &[(bool, bool)]) -> Metrics {
    let count = |t: bool, p: bool| pairs.iter().filter(|&&(a, b)| a == t && b == p).count();
    let (tp, fp, tn, fn_) = (
        count(true, true),
        count(false, true),
        count(false, false),
        count(true, false),
    );
    let tpr = ratio(tp, tp + fn_);
    let tnr = ratio(tn, tn + fp);
    let precision = ratio(tp, tp + fp);
    Metrics {
        n: pairs.len(),
        accuracy: ratio(tp + tn, pairs.len()),
        balanced_accuracy: tpr.zip(tnr).map(|(a, b)| (a + b) / 2.0),
        f1: match (precision, tpr) {
            (Some(p), Some(r)) if p + r > 0.0 => Some(2.0 * p * r / (p + r)),
            (_, Some(_)) => Some(0.0),
            _ => None,
        },
        fpr: ratio(fp, fp + tn),
        fnr: ratio(fn_, fn_ + tp),
    }
}

/// ROC AUC of `score`s against `truth` (Mann-Whitney: the chance that a random accepted
/// paper scores above a random rejected one, ties counting half). None without both classes.
pub fn auc(scored: &[(bool, f64)]) -> Option<f64> {
    let pos: Vec<f64> = scored.iter().filter(|s| s.0).map(|s| s.1).collect();
    let neg: Vec<f64> = scored.iter().filter(|s| !s.0).map(|s| s.1).collect();
    if pos.is_empty() || neg.is_empty() {
        return None;
    }
    let mut wins = 0.0;
    for p in &pos {
        for n in &neg {
            wins += if p > n {
                1.0
            } else if p == n {
                0.5
            } else {
                0.0
            };
        }
    }
    Some(wins / (pos.len() * neg.len()) as f64)
}

#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct BenchReport {
    pub papers: usize,
    pub accepted: usize,
    pub threshold: u8,
    /// The model's own `Decision`.
    pub decision: Metrics,
    /// Overall ≥ threshold.
    pub calibrated: Metrics,
    /// From the Overall scores.
    pub auc_overall: Option<f64>,
}

pub fn report(outcomes: &[Outcome], threshold: u8) -> BenchReport {
    BenchReport {
        papers: outcomes.len(),
        accepted: outcomes.iter().filter(|o| o.accept).count(),
        threshold,
        decision: metrics(
            &outcomes
                .iter()
                .map(|o| (o.accept, o.decision_accept))
                .collect::<Vec<_>>(),
        ),
        calibrated: metrics(
            &outcomes
                .iter()
                .map(|o| (o.accept, o.overall >= f64::from(threshold)))
                .collect::<Vec<_>>(),
        ),
        auc_overall: auc(&outcomes.iter().map(|o| (o.accept, o.overall)).collect::<Vec<_>>()),
    }
}

impl BenchReport {
    /// A table like v1's Table 1, to 3 decimals (v1 rounds to 2, too coarse to compare
    /// reviewers that close). AUC is the Overall scores' only: a yes/no Decision ranks
    /// nothing (its AUC would be its balanced accuracy), so that cell is "-".
    pub fn table(&self) -> String {
        let f = |v: Option<f64>| v.map(|x| format!("{x:.3}")).unwrap_or_else(|| "n/a".into());
        let line = |cells: [&str; 8]| {
            let [name, n, bal, acc, f1, auc, fpr, fnr] = cells;
            format!("{name:<28} {n:>5} {bal:>8} {acc:>8} {f1:>6} {auc:>6} {fpr:>6} {fnr:>6}\n")
        };
        let row = |name: &str, m: &Metrics, auc: String| {
            let n = m.n.to_string();
            let [bal, acc, f1, fpr, fnr] = [m.balanced_accuracy, m.accuracy, m.f1, m.fpr, m.fnr].map(f);
            line([name, &n, &bal, &acc, &f1, &auc, &fpr, &fnr])
        };
        let mut s = format!(
            "{} papers ({} accepted, {} rejected)\n",
            self.papers,
            self.accepted,
            self.papers - self.accepted,
        );
        s.push_str(&line([
            "decision rule",
            "n",
            "bal.acc",
            "accuracy",
            "F1",
            "AUC",
            "FPR",
            "FNR",
        ]));
        s.push_str(&row("model's Decision", &self.decision, "-".into()));
        s.push_str(&row(
            &format!("calibrated (Overall >= {})", self.threshold),
            &self.calibrated,
            f(self.auc_overall),
        ));
        s
    }
}

#[derive(Debug, thiserror::Error)]
pub enum LabelsError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error(
        "{path}: no header with a paper id column (paper_id or id) and a decision column (decision or label)"
    )]
    NoColumns { path: String },
    #[error("{path}: no labelled papers")]
    Empty { path: String },
}

/// Labels: paper id → accepted. Rows whose decision is neither accept nor reject
/// (withdrawn, desk rejected is a reject) are counted in the second value.
pub fn read_labels(path: &Path) -> Result<(BTreeMap<String, bool>, usize), LabelsError> {
    let text = std::fs::read_to_string(path).map_err(|source| LabelsError::Io {
        path: path.display().to_string(),
        source,
    })?;
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let header = lines.next().unwrap_or_default();
    let sep = if header.contains('\t') { '\t' } else { ',' };
    let cols: Vec<String> = split_row(header, sep)
        .iter()
        .map(|c| c.trim().to_lowercase())
        .collect();
    let find = |names: &[&str]| cols.iter().position(|c| names.contains(&c.as_str()));
    let (Some(id_col), Some(dec_col)) = (
        find(&["paper_id", "id", "paper", "forum"]),
        find(&["decision", "label", "simplified_decision"]),
    ) else {
        return Err(LabelsError::NoColumns {
            path: path.display().to_string(),
        });
    };
    let mut out = BTreeMap::new();
    let mut skipped = 0;
    for line in lines {
        let row = split_row(line, sep);
        let (Some(id), Some(dec)) = (row.get(id_col), row.get(dec_col)) else {
            skipped += 1;
            continue;
        };
        let d = dec.trim().to_lowercase();
        let accept = if d.starts_with("accept") || d == "1" || d == "true" {
            true
        } else if d.contains("reject") || d == "0" || d == "false" {
            false
        } else {
            skipped += 1;
            continue;
        };
        out.insert(id.trim().to_string(), accept);
    }
    if out.is_empty() {
        return Err(LabelsError::Empty {
            path: path.display().to_string(),
        });
    }
    Ok((out, skipped))
}

/// One row of a TSV/CSV; double quotes group (and `""` escapes) in CSV.
fn split_row(line: &str, sep: char) -> Vec<String> {
    let mut out = Vec::new();
    let mut cur = String::new();
    let mut quoted = false;
    let mut chars = line.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '"' if quoted && chars.peek() == Some(&'"') => {
                cur.push('"');
                chars.next();
            }
            '"' => quoted = !quoted,
            c if c == sep && !quoted => out.push(std::mem::take(&mut cur)),
            c => cur.push(c),
        }
    }
    out.push(cur);
    out
}

/// Rows of a stored-reviews file left out of the score, by why.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Skipped {
    /// Its paper_id is not in the labels.
    pub no_label: usize,
    /// Overall empty or not a number.
    pub no_overall: usize,
    /// Decision empty, or neither "Accept…" nor "Reject…".
    pub no_decision: usize,
    /// A later row of a paper already scored: the first usable row counts.
    pub duplicate: usize,
}

impl Skipped {
    /// "skipped 3 rows: 1 no label, 2 no Overall"; None when every row was scored.
    pub fn line(&self) -> Option<String> {
        let parts: Vec<String> = [
            (self.no_label, "no label"),
            (self.no_overall, "no Overall"),
            (self.no_decision, "no Decision"),
            (self.duplicate, "duplicate paper"),
        ]
        .iter()
        .filter(|(k, _)| *k > 0)
        .map(|(k, why)| format!("{k} {why}"))
        .collect();
        let total = self.no_label + self.no_overall + self.no_decision + self.duplicate;
        let rows = if total == 1 { "row" } else { "rows" };
        (total > 0).then(|| format!("skipped {total} {rows}: {}", parts.join(", ")))
    }
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewsError {
    #[error("{path}: {source}")]
    Io { path: String, source: std::io::Error },
    #[error("{path}: {source}")]
    Csv { path: String, source: csv::Error },
    #[error("{path}: no {column} column (stored reviews need paper_id, Overall and Decision)")]
    NoColumn { path: String, column: &'static str },
}

/// Stored reviews matched to their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredReviews {
    pub outcomes: Vec<Outcome>,
    pub skipped: Skipped,
}

/// A stored Decision: accept when it starts with "Accept" (any case); None when it is
/// neither that nor "Reject…", so a blank is not taken for a reject.
fn stored_decision(cell: &str) -> Option<bool> {
    let d = cell.trim().to_lowercase();
    if d.starts_with("accept") {
        Some(true)
    } else if d.starts_with("reject") {
        Some(false)
    } else {
        None
    }
}

fn stored_overall(cell: &str) -> Option<f64> {
    cell.trim().parse::<f64>().ok().filter(|x| x.is_finite())
}

/// Reads stored reviews (CSV with a header, one row per paper; fields may be quoted and
/// span lines) from `reader`; `path` names the file in errors. Columns are found by name
/// (any case), so v1's other review keys around them do not matter.
pub fn parse_stored_reviews(
    reader: impl std::io::Read,
    path: &str,
    labels: &BTreeMap<String, bool>,
) -> Result<StoredReviews, ReviewsError> {
    let csv_err = |source| ReviewsError::Csv {
        path: path.to_string(),
        source,
    };
    // Flexible: a short row is skipped for its missing cell, not fatal to the file.
    let mut rdr = csv::ReaderBuilder::new().flexible(true).from_reader(reader);
    let header = rdr.headers().map_err(csv_err)?.clone();
    let col = |column: &'static str| {
        header
            .iter()
            .position(|h| h.trim().eq_ignore_ascii_case(column))
            .ok_or(ReviewsError::NoColumn {
                path: path.to_string(),
                column,
            })
    };
    let (id_col, overall_col, decision_col) = (col("paper_id")?, col("Overall")?, col("Decision")?);
    let mut seen = std::collections::BTreeSet::new();
    let mut out = StoredReviews {
        outcomes: Vec::new(),
        skipped: Skipped::default(),
    };
    for record in rdr.records() {
        let record = record.map_err(csv_err)?;
        let cell = |i: usize| record.get(i).unwrap_or_default();
        let id = cell(id_col).trim();
        let skipped = &mut out.skipped;
        let Some(&accept) = labels.get(id) else {
            skipped.no_label += 1;
            continue;
        };
        let Some(overall) = stored_overall(cell(overall_col)) else {
            skipped.no_overall += 1;
            continue;
        };
        let Some(decision_accept) = stored_decision(cell(decision_col)) else {
            skipped.no_decision += 1;
            continue;
        };
        if !seen.insert(id.to_string()) {
            skipped.duplicate += 1;
            continue;
        }
        out.outcomes.push(Outcome {
            accept,
            decision_accept,
            overall,
        });
    }
    Ok(out)
}

/// One stored-reviews file scored: what `--json` writes for it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct StoredBench {
    pub file: String,
    #[serde(flatten)]
    pub report: BenchReport,
    pub skipped: Skipped,
    /// Labelled papers the file has no scored row for.
    pub unreviewed: usize,
}

/// Scores the stored reviews in `path` against `labels` (Overall ≥ `threshold` for the
/// calibrated rule).
pub fn score_stored(
    path: &Path,
    labels: &BTreeMap<String, bool>,
    threshold: u8,
) -> Result<StoredBench, ReviewsError> {
    let file = path.display().to_string();
    let reader = std::fs::File::open(path).map_err(|source| ReviewsError::Io {
        path: file.clone(),
        source,
    })?;
    let stored = parse_stored_reviews(std::io::BufReader::new(reader), &file, labels)?;
    Ok(StoredBench {
        unreviewed: labels.len() - stored.outcomes.len(),
        report: report(&stored.outcomes, threshold),
        skipped: stored.skipped,
        file,
    })
}

/// The paper file of `id` in `dir`: `<id>.pdf`, `.txt`, `.md` or `.tex`.
pub fn paper_file(dir: &Path, id: &str) -> Option<PathBuf> {
    ["pdf", "txt", "md", "tex"]
        .iter()
        .map(|e| dir.join(format!("{id}.{e}")))
        .find(|p| p.is_file())
}

/// What to measure on.
pub struct BenchSet<'a> {
    /// Folder of `<paper_id>.pdf|.txt|.md|.tex`.
    pub papers: &'a Path,
    /// The labels file.
    pub labels: &'a Path,
    /// Per-paper results (CSV), resumed when it exists.
    pub out: &'a Path,
    pub limit: Option<usize>,
    /// Papers reviewed at once.
    pub jobs: usize,
}

/// A paper id, its label, and the reviewer's (Decision, Overall) or why there is none.
type PaperResult = (String, bool, Result<(Decision, u8), String>);

/// A finished benchmark: what was measured and what could not be.
pub struct BenchRun {
    pub report: BenchReport,
    /// Paper ids without a paper file, or whose review failed, with why.
    pub failed: Vec<(String, String)>,
    pub skipped_labels: usize,
    /// Papers whose result came from an earlier run's `out` file.
    pub resumed: usize,
}

/// Reviews every labelled paper found in `papers` (up to `limit`), `jobs` at a time, and
/// appends one row per paper to `out` (CSV: paper_id,accept,decision,overall,error) as it
/// finishes, so an interrupted benchmark resumes where it stopped and nothing is paid twice.
pub async fn run_bench(
    set: &BenchSet<'_>,
    settings: &crate::config::Settings,
    llm: &crate::llm::Llm,
    cancel: &tokio_util::sync::CancellationToken,
) -> anyhow::Result<BenchRun> {
    use crate::stages::review::agent::{review_paper, ReviewCtx, ReviewPlan};
    use futures::stream::{self, StreamExt};
    use std::io::Write;

    let BenchSet {
        papers,
        labels,
        out,
        limit,
        jobs,
    } = *set;
    let (labels, skipped_labels) = read_labels(labels)?;
    let mut done: BTreeMap<String, Outcome> = BTreeMap::new();
    if let Ok(text) = std::fs::read_to_string(out) {
        for line in text.lines().skip(1) {
            let row = split_row(line, ',');
            if let [id, _accept, decision, overall, err] = row.as_slice() {
                if err.is_empty() {
                    if let (Ok(overall), Some(&truth)) = (overall.parse::<u8>(), labels.get(id)) {
                        done.insert(
                            id.clone(),
                            Outcome {
                                accept: truth,
                                decision_accept: decision == "Accept",
                                overall: f64::from(overall),
                            },
                        );
                    }
                }
            }
        }
    }
    let resumed = done.len();
    let mut file = std::fs::OpenOptions::new().create(true).append(true).open(out)?;
    if file.metadata()?.len() == 0 {
        writeln!(file, "paper_id,accept,decision,overall,error")?;
    }
    let file = std::sync::Mutex::new(file);
    let plan = ReviewPlan::from_settings(settings);
    let todo: Vec<(String, bool)> = labels
        .iter()
        .filter(|(id, _)| !done.contains_key(*id))
        .map(|(id, a)| (id.clone(), *a))
        .take(limit.map(|l| l.saturating_sub(resumed)).unwrap_or(usize::MAX))
        .collect();
    let mut failed = Vec::new();
    let results: Vec<PaperResult> = stream::iter(todo)
        .map(|(id, truth)| {
            let plan = &plan;
            async move {
                let Some(path) = paper_file(papers, &id) else {
                    return (id, truth, Err("no paper file".to_string()));
                };
                let text = if path.extension().is_some_and(|e| e == "pdf") {
                    crate::stages::review::pdftotext(&path, cancel).await
                } else {
                    std::fs::read_to_string(&path).map_err(|e| e.to_string())
                };
                let text = match text {
                    Ok(t) => t,
                    Err(e) => return (id, truth, Err(e)),
                };
                let ctx = ReviewCtx {
                    llm,
                    paper: &text,
                    figures: &[],
                    examples: &[],
                    plan,
                    idea: &id,
                    progress: &crate::jobs::NoProgress,
                    cancel,
                };
                let r = review_paper(&ctx)
                    .await
                    .map(|r| (r.decision, r.review.overall))
                    .map_err(|e| e.to_string());
                (id, truth, r)
            }
        })
        .buffer_unordered(jobs.max(1))
        .inspect(|(id, truth, r)| {
            let row = match r {
                Ok((d, o)) => format!("{id},{truth},{},{o},", d.as_str()),
                Err(e) => format!("{id},{truth},,,\"{}\"", e.replace('"', "'").replace('\n', " ")),
            };
            let _ = writeln!(file.lock().unwrap(), "{row}");
        })
        .collect()
        .await;
    for (id, truth, r) in results {
        match r {
            Ok((d, overall)) => {
                done.insert(
                    id,
                    Outcome {
                        accept: truth,
                        decision_accept: d == Decision::Accept,
                        overall: f64::from(overall),
                    },
                );
            }
            Err(e) => failed.push((id, e)),
        }
    }
    let outcomes: Vec<Outcome> = done.into_values().collect();
    Ok(BenchRun {
        report: report(&outcomes, settings.review.accept_threshold),
        failed,
        skipped_labels,
        resumed,
    })
}

// The command.

#[derive(clap::Args)]
pub struct Args {
    /// Folder of papers named <paper_id>.pdf, .txt, .md or .tex, for the model to review.
    #[arg(long, required_unless_present = "reviews", conflicts_with = "reviews")]
    papers: Option<PathBuf>,
    /// TSV/CSV with paper_id and decision columns (e.g. v1's ratings_subset.tsv).
    #[arg(long)]
    labels: PathBuf,
    /// Instead of --papers: score reviews stored earlier, with no model call (CSV, one row
    /// per paper with paper_id, Overall and Decision columns, as v1's llm_reviews/*.csv).
    /// Several files: repeat the flag or list them after it (`--reviews dir/*.csv`).
    #[arg(long, value_name = "CSV", num_args = 1..)]
    reviews: Vec<PathBuf>,
    /// The calibrated rule accepts from this Overall (default: review.accept_threshold,
    /// 6 with --reviews).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=10))]
    threshold: Option<u8>,
    /// With --reviews: also write each file's metrics to this JSON file.
    #[arg(long, value_name = "FILE", conflicts_with = "papers")]
    json: Option<PathBuf>,
    /// Per-paper results (CSV); an existing file is resumed.
    #[arg(long, default_value = "review_bench.csv", conflicts_with = "reviews")]
    out: PathBuf,
    /// Review at most this many papers (in paper id order).
    #[arg(long, conflicts_with = "reviews")]
    limit: Option<usize>,
    /// Papers reviewed at once.
    #[arg(long, default_value_t = 4, conflicts_with = "reviews")]
    jobs: usize,
}

pub async fn command(a: Args, model: Option<String>) -> ExitCode {
    if a.reviews.is_empty() {
        super::report(review_bench(&a, model).await)
    } else {
        super::report(stored_bench(&a))
    }
}

fn print_skipped_labels(skipped: usize) {
    if skipped > 0 {
        println!("{skipped} label row(s) neither accept nor reject were left out");
    }
}

/// `aisci review-bench --labels FILE --reviews CSV...`: reads files only, so it needs
/// no config, key or network. Every file is scored before anything is printed, so a bad
/// one fails the command without a partial report.
fn stored_bench(a: &Args) -> anyhow::Result<()> {
    let threshold = a
        .threshold
        .unwrap_or_else(|| config::ReviewSettings::default().accept_threshold);
    let (labels, skipped_labels) = read_labels(&a.labels)?;
    let benches = a
        .reviews
        .iter()
        .map(|p| score_stored(p, &labels, threshold))
        .collect::<Result<Vec<_>, _>>()?;
    for (i, b) in benches.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("{}", b.file);
        print!("{}", b.report.table());
        if let Some(line) = b.skipped.line() {
            println!("{line}");
        }
        if b.unreviewed > 0 {
            println!("{} labelled paper(s) have no scored row", b.unreviewed);
        }
    }
    print_skipped_labels(skipped_labels);
    if let Some(path) = &a.json {
        let text = serde_json::to_string_pretty(&benches)? + "\n";
        std::fs::write(path, text).map_err(|e| anyhow::anyhow!("{}: {e}", path.display()))?;
    }
    Ok(())
}

/// `aisci review-bench --papers DIR --labels FILE`.
async fn review_bench(a: &Args, model: Option<String>) -> anyhow::Result<()> {
    let Some(papers) = a.papers.as_deref() else {
        anyhow::bail!("--papers DIR or --reviews CSV is needed");
    };
    let (labels, out) = (a.labels.as_path(), a.out.as_path());
    let flag_model = model.is_some();
    let cwd = std::env::current_dir()?;
    let mut src = Sources::from_system(Some(&cwd));
    src.cli_model = model;
    let mut loaded = config::load(&src);
    for w in &loaded.warnings {
        eprintln!("aisci: warning: {w}");
    }
    if flag_model {
        loaded.settings.review.model = None;
    }
    if let Some(t) = a.threshold {
        loaded.settings.review.accept_threshold = t;
    }
    let s = &loaded.settings;
    let llm = crate::stages::services::llm_for_role(s, &cwd, crate::stages::services::ModelRole::Reviewer)?;
    let job = super::job("Review benchmark", out)?;
    let cancel = job.cancel.clone();
    eprintln!(
        "aisci: review-bench with {} via {}; results in {}",
        llm.provider().model(),
        llm.provider().name(),
        out.display()
    );
    let set = crate::cli::review_bench::BenchSet {
        papers,
        labels,
        out,
        limit: a.limit,
        jobs: a.jobs,
    };
    let run = crate::cli::review_bench::run_bench(&set, s, &llm, &cancel).await?;
    print!("{}", run.report.table());
    if run.resumed > 0 {
        println!("{} paper(s) taken from {}", run.resumed, out.display());
    }
    print_skipped_labels(run.skipped_labels);
    for (id, why) in &run.failed {
        println!("not reviewed: {id}: {why}");
    }
    let t = llm.ledger_snapshot().total;
    println!(
        "{}",
        stages::cost_line(&t, llm.provider().name(), llm.provider().model())
    );
    if cancel.is_cancelled() {
        anyhow::bail!("interrupted; run the same command again to go on");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn o(accept: bool, decision_accept: bool, overall: u8) -> Outcome {
        Outcome {
            accept,
            decision_accept,
            overall: f64::from(overall),
        }
    }

    #[test]
    fn metrics_on_a_known_confusion_matrix() {
        // tp 3, fn 1, fp 2, tn 4.
        let mut pairs = vec![(true, true); 3];
        pairs.push((true, false));
        pairs.extend([(false, true); 2]);
        pairs.extend([(false, false); 4]);
        let m = metrics(&pairs);
        assert_eq!(m.n, 10);
        assert!((m.accuracy.unwrap() - 0.7).abs() < 1e-12);
        assert!((m.balanced_accuracy.unwrap() - (0.75 + 4.0 / 6.0) / 2.0).abs() < 1e-12);
        assert!((m.f1.unwrap() - 2.0 * 0.6 * 0.75 / 1.35).abs() < 1e-12);
        assert!((m.fpr.unwrap() - 2.0 / 6.0).abs() < 1e-12);
        assert!((m.fnr.unwrap() - 0.25).abs() < 1e-12);
    }

    #[test]
    fn always_reject_matches_v1_table_row() {
        // v1's "always reject" row on 184 accepted / 316 rejected: acc 0.63 (0.632), bal 0.5, F1 0, FPR 0, FNR 1.
        let mut pairs = vec![(true, false); 184];
        pairs.extend(vec![(false, false); 316]);
        let m = metrics(&pairs);
        assert!((m.accuracy.unwrap() - 0.632).abs() < 1e-9);
        assert_eq!(
            (m.balanced_accuracy, m.f1, m.fpr, m.fnr),
            (Some(0.5), Some(0.0), Some(0.0), Some(1.0))
        );
    }

    #[test]
    fn auc_counts_ties_half_and_binary_auc_is_balanced_accuracy() {
        assert_eq!(auc(&[(true, 3.0), (false, 1.0)]), Some(1.0));
        assert_eq!(auc(&[(true, 1.0), (false, 3.0)]), Some(0.0));
        assert_eq!(
            auc(&[(true, 2.0), (false, 2.0), (true, 4.0), (false, 1.0)]),
            Some(0.875)
        );
        assert_eq!(auc(&[(true, 2.0)]), None);
        let outcomes = [
            o(true, true, 6),
            o(true, false, 4),
            o(false, true, 6),
            o(false, false, 3),
            o(false, false, 2),
        ];
        let binary: Vec<(bool, f64)> = outcomes
            .iter()
            .map(|x| (x.accept, f64::from(x.overall >= 6.0)))
            .collect();
        let r = report(&outcomes, 6);
        assert!((auc(&binary).unwrap() - r.calibrated.balanced_accuracy.unwrap()).abs() < 1e-12);
        // Overall ranks: accepted 6,4 vs rejected 6,3,2 → (0.5+1+1 + 1+1+0)/6.
        assert!((r.auc_overall.unwrap() - 4.5 / 6.0).abs() < 1e-12);
    }

    #[test]
    fn labels_in_v1_tsv_form() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("ratings_subset.tsv");
        std::fs::write(
            &p,
            "\tpaper_id\tdecision\tratings\nx\tA1\tAccept (Poster)\t[6, 8]\n1\tB2\tReject\t[3]\n2\tC3\tAccept (Oral)\t[8]\n3\tD4\tWithdrawn\t[]\n",
        )
        .unwrap();
        let (labels, skipped) = read_labels(&p).unwrap();
        assert_eq!(labels.len(), 3);
        assert_eq!((labels["A1"], labels["B2"], labels["C3"]), (true, false, true));
        assert_eq!(skipped, 1);
        std::fs::write(&p, "id,label\n\"a,b\",accept\n").unwrap();
        assert!(read_labels(&p).unwrap().0["a,b"]);
        std::fs::write(&p, "name,score\n").unwrap();
        assert!(matches!(read_labels(&p), Err(LabelsError::NoColumns { .. })));
    }

    fn labels(ids: &[(&str, bool)]) -> BTreeMap<String, bool> {
        ids.iter().map(|(id, a)| (id.to_string(), *a)).collect()
    }

    fn parse(csv: &str, l: &BTreeMap<String, bool>) -> Result<StoredReviews, ReviewsError> {
        parse_stored_reviews(csv.as_bytes(), "r.csv", l)
    }

    #[test]
    fn stored_reviews_with_quoted_multi_line_fields() {
        let l = labels(&[("A1", true), ("R1", false)]);
        let csv = "paper_id,Summary,Overall,Weaknesses,Decision\n\
            A1,\"Two lines,\nwith a comma\",7,\"- \"\"quoted\"\"\n- Decision: Reject\",Accept\n\
            R1,Short.,3.0,\"\",reject\n";
        let r = parse(csv, &l).unwrap();
        assert_eq!(r.outcomes, vec![o(true, true, 7), o(false, false, 3)]);
        assert_eq!(r.skipped, Skipped::default());
        assert_eq!(r.skipped.line(), None);
    }

    #[test]
    fn stored_reviews_without_a_needed_column_name_it() {
        let l = labels(&[("A1", true)]);
        let e = parse("paper_id,Overall\nA1,7\n", &l).unwrap_err();
        assert!(
            matches!(
                e,
                ReviewsError::NoColumn {
                    column: "Decision",
                    ..
                }
            ),
            "{e}"
        );
        assert_eq!(
            e.to_string(),
            "r.csv: no Decision column (stored reviews need paper_id, Overall and Decision)"
        );
        let e = parse("id,Overall,Decision\n", &l).unwrap_err();
        assert!(e.to_string().starts_with("r.csv: no paper_id column"), "{e}");
        // Any case and spacing of the header's names.
        assert_eq!(
            parse(" Paper_ID ,overall,DECISION\nA1,6,Accept\n", &l)
                .unwrap()
                .outcomes
                .len(),
            1
        );
    }

    #[test]
    fn stored_reviews_skip_and_count_unusable_rows_and_keep_a_papers_first() {
        let l = labels(&[("A1", true), ("A2", true), ("R1", false)]);
        let csv = "paper_id,Overall,Decision\n\
            A1,,Accept\n\
            A1,8,Accept\n\
            A1,2,Reject\n\
            X9,5,Reject\n\
            A2,six,Accept\n\
            R1,4,Maybe\n\
            R1\n";
        let r = parse(csv, &l).unwrap();
        // A1's first usable row (8, Accept) counts; its later one is a duplicate.
        assert_eq!(r.outcomes, vec![o(true, true, 8)]);
        assert_eq!(
            r.skipped,
            Skipped {
                no_label: 1,
                no_overall: 3,
                no_decision: 1,
                duplicate: 1
            }
        );
        assert_eq!(
            r.skipped.line().unwrap(),
            "skipped 6 rows: 1 no label, 3 no Overall, 1 no Decision, 1 duplicate paper"
        );
    }

    #[test]
    fn a_stored_file_is_scored_and_a_missing_one_named() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("r.csv");
        std::fs::write(&p, "paper_id,Overall,Decision\nA1,7,Accept\nR1,6,Reject\n").unwrap();
        let l = labels(&[("A1", true), ("R1", false), ("R2", false)]);
        let b = score_stored(&p, &l, 7).unwrap();
        assert_eq!((b.report.papers, b.unreviewed), (2, 1));
        assert_eq!(b.report.calibrated.fpr, Some(0.0));
        let e = score_stored(&dir.path().join("gone.csv"), &l, 6).unwrap_err();
        assert!(
            matches!(e, ReviewsError::Io { .. }) && e.to_string().contains("gone.csv"),
            "{e}"
        );
    }

    #[test]
    fn the_table_has_n_and_the_overall_auc() {
        let r = report(&[o(true, true, 7), o(false, false, 3), o(false, true, 6)], 6);
        let t = r.table();
        let cells = |name: &str| -> Vec<String> {
            let line = t.lines().find(|l| l.starts_with(name)).unwrap();
            line[name.len()..].split_whitespace().map(String::from).collect()
        };
        assert_eq!(
            cells("model's Decision"),
            ["3", "0.750", "0.667", "0.667", "-", "0.500", "0.000"]
        );
        assert_eq!(cells("calibrated (Overall >= 6)")[4], "1.000", "{t}");
    }
}
