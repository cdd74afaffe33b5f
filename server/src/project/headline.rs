//! One line per run, as code lenses and terminals show it:
//! "run_2 ✓ kl_divergence 0.35 (−12% vs baseline)".

use serde_json::Value;

use super::runs::RunRecord;

/// The first numeric metric of the first dataset: (dataset, metric, value).
fn first_metric(means: &Value) -> Option<(String, String, f64)> {
    let (ds, m) = means.as_object()?.iter().next()?;
    match m {
        Value::Number(n) => Some((ds.clone(), ds.clone(), n.as_f64()?)),
        Value::Object(metrics) => metrics
            .iter()
            .find_map(|(k, v)| v.as_f64().map(|x| (ds.clone(), k.clone(), x))),
        _ => None,
    }
}

fn metric_in(means: &Value, dataset: &str, metric: &str) -> Option<f64> {
    let d = means.get(dataset)?;
    match d {
        Value::Number(n) if dataset == metric => n.as_f64(),
        Value::Object(m) => m.get(metric)?.as_f64(),
        _ => None,
    }
}

/// Numbers as a person reads them: 4 significant digits, no trailing zeros.
pub fn short_number(x: f64) -> String {
    if x == 0.0 || !x.is_finite() {
        return x.to_string();
    }
    let a = x.abs();
    if !(1e-3..1e5).contains(&a) {
        return format!("{x:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    let s = format!("{x:.decimals$}");
    if s.contains('.') {
        s.trim_end_matches('0').trim_end_matches('.').to_owned()
    } else {
        s
    }
}

/// The line for `record`; `baseline` is the baseline's means by dataset.
pub fn headline(record: &RunRecord, baseline: Option<&Value>) -> String {
    let name = format!("run_{}", record.run);
    if !record.completed {
        let why = record.error.as_deref().unwrap_or("failed");
        let why = why.lines().last().unwrap_or(why);
        return format!("{name} ✗ {why} (attempt {})", record.attempt);
    }
    let Some((ds, metric, value)) = record.means.as_ref().and_then(first_metric) else {
        return format!("{name} ✓");
    };
    let label = if ds == metric { ds.clone() } else { metric.clone() };
    let mut line = format!("{name} ✓ {label} {}", short_number(value));
    if let Some(base) = baseline.and_then(|b| metric_in(b, &ds, &metric)) {
        if base != 0.0 {
            let change = (value - base) / base.abs() * 100.0;
            if change.abs() < 0.5 {
                line.push_str(" (= baseline)");
            } else {
                let sign = if change < 0.0 { "−" } else { "+" };
                line.push_str(&format!(" ({sign}{:.0}% vs baseline)", change.abs()));
            }
        }
    }
    line
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::RunExit;
    use serde_json::json;

    fn record(run: u32, completed: bool, means: Option<Value>, error: Option<&str>) -> RunRecord {
        let mut r: RunRecord = serde_json::from_value(json!({
            "run": run, "attempt": 2, "exit": {"kind": "success"}, "completed": completed, "started": "x",
            "duration_secs": 1.0, "command": [], "dir": "run_1", "stdout": "o", "stderr": "e"
        }))
        .unwrap_or_else(|e| panic!("record shape: {e}"));
        r.means = means;
        r.error = error.map(str::to_owned);
        if !completed {
            r.exit = Some(RunExit::Failed { code: 1 });
        }
        r
    }

    #[test]
    fn completed_run_against_the_baseline() {
        let base = json!({"circle": {"kl_divergence": 0.4, "eval_loss": 1.0}});
        let r = record(
            2,
            true,
            Some(json!({"circle": {"kl_divergence": 0.352, "eval_loss": 0.9}})),
            None,
        );
        assert_eq!(
            headline(&r, Some(&base)),
            "run_2 ✓ kl_divergence 0.352 (−12% vs baseline)"
        );
        let up = record(1, true, Some(json!({"circle": {"kl_divergence": 0.5}})), None);
        assert_eq!(
            headline(&up, Some(&base)),
            "run_1 ✓ kl_divergence 0.5 (+25% vs baseline)"
        );
        assert_eq!(headline(&up, None), "run_1 ✓ kl_divergence 0.5");
        let same = record(4, true, Some(json!({"circle": {"kl_divergence": 0.4001}})), None);
        assert_eq!(
            headline(&same, Some(&base)),
            "run_4 ✓ kl_divergence 0.4001 (= baseline)"
        );
        let bare = record(3, true, Some(json!({"probe": 0.75})), None);
        assert_eq!(
            headline(&bare, Some(&json!({"probe": 0.5}))),
            "run_3 ✓ probe 0.75 (+50% vs baseline)"
        );
    }

    #[test]
    fn failed_run_shows_the_error() {
        let r = record(
            2,
            false,
            None,
            Some("Traceback ...\nValueError: shapes do not match"),
        );
        assert_eq!(
            headline(&r, None),
            "run_2 ✗ ValueError: shapes do not match (attempt 2)"
        );
    }

    #[test]
    fn numbers_are_short() {
        assert_eq!(short_number(0.123456), "0.1235");
        assert_eq!(short_number(12.5), "12.5");
        assert_eq!(short_number(1234.0), "1234");
        assert_eq!(short_number(0.00001234), "1.234e-5");
    }
}
