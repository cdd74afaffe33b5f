//! Result types, the text table with ratios and target checks, and JSON output.

use serde_json::{json, Map, Value};
use std::fmt::Write;
use std::time::Duration;

/// RSS targets from the issue, in decimal megabytes.
const RSS_INIT_TARGET_MB: f64 = 15.0;
const RSS_DOCS_TARGET_MB: f64 = 60.0;

pub struct Latency {
    pub n: usize,
    pub errors: usize,
    pub mean: Duration,
    pub p50: Duration,
    pub p95: Duration,
    pub p99: Duration,
    pub max: Duration,
    /// What the timed responses contained, e.g. "1 item ×1000" (filled by the caller).
    pub shapes: String,
    /// Timed responses with a non-null result (filled by the caller).
    pub answered: usize,
}

impl Latency {
    pub fn from_samples(mut s: Vec<Duration>, errors: usize) -> Latency {
        s.sort_unstable();
        // Nearest-rank percentile.
        let pct = |p: f64| s[((p / 100.0 * s.len() as f64).ceil() as usize).clamp(1, s.len()) - 1];
        Latency {
            n: s.len(),
            errors,
            mean: s.iter().sum::<Duration>() / s.len() as u32,
            p50: pct(50.0),
            p95: pct(95.0),
            p99: pct(99.0),
            max: *s.last().unwrap(),
            shapes: String::new(),
            answered: 0,
        }
    }
}

pub enum Measure {
    Latency(Latency),
    Unsupported,
    Failed(String),
}

pub struct EditStats {
    pub edits: usize,
    /// Time spent writing all notifications.
    pub send: Duration,
    /// First send until the barrier request's response.
    pub total: Duration,
    pub barrier: String,
    pub error: Option<String>,
}

impl EditStats {
    pub fn per_edit_us(&self) -> f64 {
        self.total.as_secs_f64() * 1e6 / self.edits.max(1) as f64
    }
}

pub struct ServerResult {
    pub label: String,
    pub command: String,
    pub server_info: Option<Value>,
    pub sync: Option<Value>,
    pub initialize_ms: Option<f64>,
    /// Resident memory at each checkpoint.
    pub rss_init_kb: Option<Rss>,
    pub rss_open_kb: Option<Rss>,
    pub rss_edits_kb: Option<Rss>,
    pub rss_docs_kb: Option<Rss>,
    /// After the paper scenario's requests (`--paper`).
    pub rss_paper_kb: Option<Rss>,
    /// Method name without the `textDocument/` prefix, in run order.
    pub latency: Vec<(String, Measure)>,
    pub edits: Option<Result<EditStats, String>>,
    pub notifications: u64,
    pub server_requests: u64,
    pub notes: Vec<String>,
}

impl ServerResult {
    pub fn new(label: &str, command: &str) -> Self {
        ServerResult {
            label: label.into(),
            command: command.into(),
            server_info: None,
            sync: None,
            initialize_ms: None,
            rss_init_kb: None,
            rss_open_kb: None,
            rss_edits_kb: None,
            rss_docs_kb: None,
            rss_paper_kb: None,
            latency: vec![],
            edits: None,
            notifications: 0,
            server_requests: 0,
            notes: vec![],
        }
    }

    fn measure(&self, method: &str) -> Option<&Measure> {
        self.latency.iter().find(|(m, _)| m == method).map(|(_, m)| m)
    }

    fn p99_ms(&self, method: &str) -> Option<f64> {
        match self.measure(method)? {
            Measure::Latency(l) => Some(ms(l.p99)),
            _ => None,
        }
    }

    fn per_edit_us(&self) -> Option<f64> {
        match &self.edits {
            Some(Ok(e)) => Some(e.per_edit_us()),
            _ => None,
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

/// Resident memory of a server from `/proc/<pid>/status`, in kB.
#[derive(Clone, Copy)]
pub struct Rss {
    /// VmRSS: every resident page, the program's own code (file-backed, shared) included.
    pub rss: u64,
    /// VmHWM: the most VmRSS has been.
    pub hwm: u64,
    /// RssAnon: the private pages (heap, stacks) that the server's data holds.
    pub anon: u64,
}

fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

fn mb(kb: Option<Rss>) -> Option<f64> {
    kb.map(|r| kb_to_mb(r.rss))
}

fn anon_mb(kb: Option<Rss>) -> Option<f64> {
    kb.map(|r| kb_to_mb(r.anon))
}

enum Cell {
    Num(f64),
    Text(String),
}

const METHODS: [&str; 5] = [
    "codeAction",
    "codeLens",
    "hover",
    "codeLens ideas.json",
    "hover ideas.json",
];

/// The paper scenario's rows (`--paper`), as session.rs names them.
const PAPER_METHODS: [&str; 3] = ["paper hover", "paper codeAction", "paper documentSymbol"];

fn latency_cell(m: Option<&Measure>, f: impl Fn(&Latency) -> Cell) -> Cell {
    match m {
        Some(Measure::Latency(l)) => f(l),
        Some(Measure::Unsupported) => Cell::Text("unsupported".into()),
        Some(Measure::Failed(_)) => Cell::Text("failed".into()),
        None => Cell::Text("n/a".into()),
    }
}

/// The table's rows for one server; `paper` adds the paper scenario's.
fn rows(r: &ServerResult, paper: bool) -> Vec<(String, Cell)> {
    let num = |v: Option<f64>| v.map_or_else(|| Cell::Text("n/a".into()), Cell::Num);
    let mut out = vec![
        ("initialize (ms)".to_string(), num(r.initialize_ms)),
        ("RSS after initialize (MB)".into(), num(mb(r.rss_init_kb))),
        ("RSS after open + requests (MB)".into(), num(mb(r.rss_open_kb))),
        (
            "  of which private (RssAnon, MB)".into(),
            num(anon_mb(r.rss_open_kb)),
        ),
        ("RSS after edits (MB)".into(), num(mb(r.rss_edits_kb))),
        ("RSS with big docs open (MB)".into(), num(mb(r.rss_docs_kb))),
    ];
    for method in METHODS {
        let m = r.measure(method);
        for (stat, f) in [
            ("p50", (|l: &Latency| l.p50) as fn(&Latency) -> Duration),
            ("p95", |l| l.p95),
            ("p99", |l| l.p99),
            ("max", |l| l.max),
            ("mean", |l| l.mean),
        ] {
            out.push((
                format!("{method} {stat} (ms)"),
                latency_cell(m, |l| Cell::Num(ms(f(l)))),
            ));
        }
    }
    let edit = |f: fn(&EditStats) -> f64| match &r.edits {
        Some(Ok(e)) => Cell::Num(f(e)),
        Some(Err(_)) => Cell::Text("failed".into()),
        None => Cell::Text("n/a".into()),
    };
    out.push(("didChange per edit (µs)".into(), edit(|e| e.per_edit_us())));
    out.push((
        "  of which client send (µs)".into(),
        edit(|e| e.send.as_secs_f64() * 1e6 / e.edits.max(1) as f64),
    ));
    if paper {
        out.push(("RSS after paper requests (MB)".into(), num(mb(r.rss_paper_kb))));
        out.push((
            "  of which private (RssAnon, MB)".into(),
            num(anon_mb(r.rss_paper_kb)),
        ));
        for method in PAPER_METHODS {
            let m = r.measure(method);
            for (stat, f) in [
                ("p50", (|l: &Latency| l.p50) as fn(&Latency) -> Duration),
                ("p99", |l| l.p99),
                ("max", |l| l.max),
            ] {
                out.push((
                    format!("{method} {stat} (ms)"),
                    latency_cell(m, |l| Cell::Num(ms(f(l)))),
                ));
            }
            out.push((
                format!("{method} non-null"),
                latency_cell(m, |l| Cell::Text(format!("{}/{}", l.answered, l.n))),
            ));
        }
    }
    out
}

fn fmt_num(v: f64) -> String {
    if v >= 100.0 {
        format!("{v:.1}")
    } else if v >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

fn fmt_cell(c: &Cell) -> String {
    match c {
        Cell::Num(v) => fmt_num(*v),
        Cell::Text(t) => t.clone(),
    }
}

fn ratio(a: &Cell, b: &Cell) -> Option<f64> {
    match (a, b) {
        (Cell::Num(a), Cell::Num(b)) if *b > 0.0 => Some(a / b),
        _ => None,
    }
}

#[derive(Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A target from the performance issue.
    Issue,
    /// Not one of the issue's targets (the ideas.json rows).
    Extra,
    /// The paper scenario: as fast as the baseline on the same paper (issue 20).
    Paper,
}

impl Kind {
    fn name(self) -> &'static str {
        match self {
            Kind::Issue => "issue",
            Kind::Extra => "extra",
            Kind::Paper => "paper",
        }
    }

    fn suffix(self) -> &'static str {
        match self {
            Kind::Issue => "",
            Kind::Extra => "  (extra, not in the issue)",
            Kind::Paper => "  (paper, issue 20)",
        }
    }
}

struct Target {
    server: String,
    kind: Kind,
    what: String,
    value: Option<f64>,
    limit: Option<f64>,
}

impl Target {
    fn verdict(&self) -> &'static str {
        match (self.value, self.limit) {
            (Some(v), Some(l)) if v <= l => "PASS",
            (Some(_), Some(_)) => "FAIL",
            _ => "n/a",
        }
    }
}

/// The issue's targets (plus the ideas.json rows, and the paper's when it ran) for
/// every non-baseline server.
fn targets(results: &[ServerResult], base: &ServerResult) -> Vec<Target> {
    let mut out = vec![];
    let base_ca = base.p99_ms("codeAction");
    for r in results.iter().filter(|r| r.label != base.label) {
        let t = |what: String, value, limit| Target {
            server: r.label.clone(),
            kind: Kind::Issue,
            what,
            value,
            limit,
        };
        for m in METHODS {
            let what = format!("{m} p99 (ms) ≤ {} codeAction p99", base.label);
            out.push(Target {
                kind: if m.contains("ideas.json") {
                    Kind::Extra
                } else {
                    Kind::Issue
                },
                ..t(what, r.p99_ms(m), base_ca)
            });
        }
        out.push(t(
            format!("didChange per edit (µs) ≤ {}'s", base.label),
            r.per_edit_us(),
            base.per_edit_us(),
        ));
        out.push(t(
            "RSS after initialize (MB) ≤ 15".into(),
            mb(r.rss_init_kb),
            Some(RSS_INIT_TARGET_MB),
        ));
        out.push(t(
            "RSS with big docs open (MB) ≤ 60".into(),
            mb(r.rss_docs_kb),
            Some(RSS_DOCS_TARGET_MB),
        ));
        for m in PAPER_METHODS.into_iter().filter(|m| r.measure(m).is_some()) {
            out.push(Target {
                kind: Kind::Paper,
                ..t(
                    format!("{m} p99 (ms) ≤ {}'s", base.label),
                    r.p99_ms(m),
                    base.p99_ms(m),
                )
            });
        }
    }
    out
}

pub fn table(results: &[ServerResult], baseline: &str, setup: &Value) -> String {
    let base = results.iter().find(|r| r.label == baseline);
    let others: Vec<&ServerResult> = results.iter().filter(|r| r.label != baseline).collect();
    let paper = &setup["paper"];
    let cols: Vec<Vec<(String, Cell)>> = results.iter().map(|r| rows(r, !paper.is_null())).collect();
    let base_idx = results.iter().position(|r| r.label == baseline);
    let doc = &setup["document"];
    let mut s = String::new();
    let _ = writeln!(
        s,
        "\nlspbench: {} ({} lines, {} bytes); {} requests per method after {} warm-up; {} edits; {} × {} B extra documents",
        doc["name"].as_str().unwrap_or(""),
        doc["lines"],
        doc["bytes"],
        setup["requests"],
        setup["warmup"],
        setup["edits"],
        doc["big_docs"],
        doc["big_doc_bytes"],
    );
    if !paper.is_null() {
        let copied: Vec<&str> = paper["copied"]
            .as_array()
            .map_or(vec![], |a| a.iter().filter_map(Value::as_str).collect());
        let _ = writeln!(
            s,
            "paper: {} with its body ×{} ({} lines, {} bytes) as {}; copied beside it: {}; opened first, its rows are last",
            paper["source"].as_str().unwrap_or(""),
            paper["copies"],
            paper["lines"],
            paper["bytes"],
            paper["path"].as_str().unwrap_or(""),
            if copied.is_empty() { "nothing".to_string() } else { copied.join(", ") },
        );
    }
    let mut header = format!("{:<32}", "");
    for r in results {
        let _ = write!(header, "{:>14}", r.label);
    }
    if base.is_some() {
        for o in &others {
            let _ = write!(header, "{:>18}", format!("{}/{}", o.label, baseline));
        }
    }
    let _ = writeln!(s, "{header}");
    for (row, (name, _)) in cols[0].iter().enumerate() {
        let mut line = format!("{name:<32}");
        for col in &cols {
            let _ = write!(line, "{:>14}", fmt_cell(&col[row].1));
        }
        if let Some(bi) = base_idx {
            for (i, r) in results.iter().enumerate() {
                if r.label == baseline {
                    continue;
                }
                let v = ratio(&cols[i][row].1, &cols[bi][row].1);
                let _ = write!(line, "{:>18}", v.map_or("—".to_string(), |v| format!("{v:.2}×")));
            }
        }
        let _ = writeln!(s, "{line}");
    }
    for r in results {
        let info = r.server_info.as_ref().map_or("-".to_string(), |v| v.to_string());
        let _ = writeln!(
            s,
            "\n{}: serverInfo {info}; textDocumentSync {}; {} notifications and {} requests from the server",
            r.label,
            r.sync.as_ref().map_or("-".to_string(), |v| v.to_string()),
            r.notifications,
            r.server_requests,
        );
        for (m, meas) in &r.latency {
            match meas {
                Measure::Failed(e) => {
                    let _ = writeln!(s, "  {m} failed: {e}");
                }
                Measure::Latency(l) => {
                    let _ = writeln!(s, "  {m} results: {}", l.shapes);
                    if l.errors > 0 {
                        let _ = writeln!(s, "  {m}: {} of {} responses were errors", l.errors, l.n);
                    }
                }
                Measure::Unsupported => {}
            }
        }
        match &r.edits {
            Some(Err(e)) => {
                let _ = writeln!(s, "  didChange failed: {e}");
            }
            Some(Ok(e)) => {
                let err = e
                    .error
                    .as_ref()
                    .map_or(String::new(), |x| format!(" (barrier returned error {x})"));
                let _ = writeln!(s, "  didChange drained by one {} round trip{err}", e.barrier);
            }
            None => {}
        }
        for n in &r.notes {
            let _ = writeln!(s, "  note: {n}");
        }
    }
    if let Some(base) = base {
        let ts = targets(results, base);
        if !ts.is_empty() {
            let _ = writeln!(
                s,
                "\nTargets (limits relative to {baseline} come from this same run):"
            );
        }
        for t in ts {
            let f = |v: Option<f64>| v.map_or("n/a".to_string(), fmt_num);
            let _ = writeln!(
                s,
                "  {:<8} {:<54} {:>10} vs {:<10} {}{}",
                t.server,
                t.what,
                f(t.value),
                f(t.limit),
                t.verdict(),
                t.kind.suffix()
            );
        }
    }
    s
}

fn rss_json(kb: Option<Rss>) -> Value {
    kb.map_or(
        Value::Null,
        |r| json!({"vm_rss_kb": r.rss, "vm_hwm_kb": r.hwm, "rss_anon_kb": r.anon}),
    )
}

pub fn to_json(results: &[ServerResult], baseline: &str, setup: Value) -> Value {
    let servers: Vec<Value> = results
        .iter()
        .map(|r| {
            let mut lat = Map::new();
            for (m, meas) in &r.latency {
                let v = match meas {
                    Measure::Latency(l) => json!({
                        "n": l.n, "errors": l.errors, "mean_ms": ms(l.mean), "p50_ms": ms(l.p50),
                        "p95_ms": ms(l.p95), "p99_ms": ms(l.p99), "max_ms": ms(l.max),
                        "results": l.shapes, "non_null": l.answered,
                    }),
                    Measure::Unsupported => json!("unsupported"),
                    Measure::Failed(e) => json!({"failed": e}),
                };
                lat.insert(m.clone(), v);
            }
            let edits = match &r.edits {
                Some(Ok(e)) => json!({
                    "edits": e.edits, "total_ms": ms(e.total), "send_ms": ms(e.send),
                    "per_edit_us": e.per_edit_us(), "barrier": e.barrier, "barrier_error": e.error,
                }),
                Some(Err(e)) => json!({"failed": e}),
                None => Value::Null,
            };
            json!({
                "label": r.label, "command": r.command, "server_info": r.server_info,
                "text_document_sync": r.sync, "initialize_ms": r.initialize_ms,
                "rss": {
                    "after_initialize": rss_json(r.rss_init_kb),
                    "after_open_and_requests": rss_json(r.rss_open_kb),
                    "after_edits": rss_json(r.rss_edits_kb),
                    "with_big_docs": rss_json(r.rss_docs_kb),
                    "after_paper": rss_json(r.rss_paper_kb),
                },
                "latency": lat, "did_change": edits,
                "server_notifications": r.notifications, "server_requests": r.server_requests,
                "notes": r.notes,
            })
        })
        .collect();
    let mut ratios = Map::new();
    let mut target_list = vec![];
    if let Some(bi) = results.iter().position(|r| r.label == baseline) {
        let paper = !setup["paper"].is_null();
        let base_rows = rows(&results[bi], paper);
        for r in results.iter().filter(|r| r.label != baseline) {
            let mut m = Map::new();
            for ((name, a), (_, b)) in rows(r, paper).iter().zip(&base_rows) {
                m.insert(name.clone(), ratio(a, b).map_or(Value::Null, |v| json!(v)));
            }
            ratios.insert(r.label.clone(), Value::Object(m));
        }
        for t in targets(results, &results[bi]) {
            target_list.push(json!({
                "server": t.server, "target": t.what, "value": t.value, "limit": t.limit,
                "verdict": t.verdict(), "in_issue": t.kind == Kind::Issue, "kind": t.kind.name(),
            }));
        }
    }
    json!({
        "setup": setup, "baseline": baseline, "servers": servers,
        "ratios_vs_baseline": ratios, "targets": target_list,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let s: Vec<Duration> = (1..=1000).map(Duration::from_micros).collect();
        let l = Latency::from_samples(s, 0);
        assert_eq!(l.p50, Duration::from_micros(500));
        assert_eq!(l.p99, Duration::from_micros(990));
        assert_eq!(l.max, Duration::from_micros(1000));
        let one = Latency::from_samples(vec![Duration::from_micros(7)], 0);
        assert_eq!(one.p99, Duration::from_micros(7));
    }
}
