//! A variant's score: one key of `final_info.json`'s means (the metric), averaged over
//! the datasets that report it, judged in the metric's direction and against the
//! baseline.

use serde_json::Value;

use crate::config::Direction;

/// The mean over datasets of `means[dataset][metric]`; None when no dataset reports a
/// finite number for it.
pub fn score(means_by_dataset: &Value, metric: &str) -> Option<f64> {
    let obj = means_by_dataset.as_object()?;
    let values: Vec<f64> = obj
        .values()
        .filter_map(|means| means.get(metric)?.as_f64())
        .filter(|v| v.is_finite())
        .collect();
    (!values.is_empty()).then(|| values.iter().sum::<f64>() / values.len() as f64)
}

/// Whether `a` is better than `b`.
pub fn better(direction: Direction, a: f64, b: f64) -> bool {
    match direction {
        Direction::Min => a < b,
        Direction::Max => a > b,
    }
}

/// How much better than `baseline` (relative, positive = better whatever the
/// direction); None for a zero baseline.
pub fn vs_baseline(direction: Direction, score: f64, baseline: f64) -> Option<f64> {
    if baseline == 0.0 || !baseline.is_finite() {
        return None;
    }
    let rel = (score - baseline) / baseline.abs();
    Some(match direction {
        Direction::Min => -rel,
        Direction::Max => rel,
    })
}

/// Whether a smoke score is close enough to the baseline's smoke score to be worth a
/// full-size run: better, or worse by at most `slack` of the baseline's magnitude.
pub fn promising(direction: Direction, smoke: f64, baseline_smoke: Option<f64>, slack: f64) -> bool {
    let Some(base) = baseline_smoke else {
        return true;
    };
    let margin = slack * base.abs();
    match direction {
        Direction::Min => smoke <= base + margin,
        Direction::Max => smoke >= base - margin,
    }
}

/// Mean and standard error of the mean (sample standard deviation over √n; 0 for n = 1).
pub fn mean_stderr(xs: &[f64]) -> Option<(f64, f64)> {
    if xs.is_empty() {
        return None;
    }
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    if xs.len() == 1 {
        return Some((mean, 0.0));
    }
    let var = xs.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1.0);
    Some((mean, (var / n).sqrt()))
}

/// The numeric keys every dataset of the baseline reports, in the order of the first.
pub fn metric_keys(means_by_dataset: &Value) -> Vec<String> {
    let Some(obj) = means_by_dataset.as_object() else {
        return Vec::new();
    };
    let mut datasets = obj.values();
    let Some(first) = datasets.next().and_then(Value::as_object) else {
        return Vec::new();
    };
    let rest: Vec<&Value> = datasets.collect();
    first
        .iter()
        .filter(|(_, v)| v.as_f64().is_some_and(f64::is_finite))
        .map(|(k, _)| k.clone())
        .filter(|k| rest.iter().all(|d| d.get(k).and_then(Value::as_f64).is_some()))
        .collect()
}

/// A direction from the metric's name, for when nobody said: losses, errors, times and
/// perplexities go down; everything else up.
pub fn guess_direction(metric: &str) -> Direction {
    let m = metric.to_ascii_lowercase();
    let down = [
        "loss",
        "error",
        "err",
        "time",
        "perplexity",
        "ppl",
        "mse",
        "mae",
        "rmse",
        "kl",
        "nll",
        "steps",
        "regret",
        "distance",
        "latency",
    ];
    if down.iter().any(|d| m.contains(d)) {
        Direction::Min
    } else {
        Direction::Max
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn scores_average_the_datasets_that_report_the_metric() {
        let m = json!({"a": {"loss": 1.0, "acc": 0.5}, "b": {"loss": 3.0}, "c": {"loss": "x"}});
        assert_eq!(score(&m, "loss"), Some(2.0));
        assert_eq!(score(&m, "acc"), Some(0.5));
        assert_eq!(score(&m, "nope"), None);
        assert_eq!(score(&json!([]), "loss"), None);
    }

    #[test]
    fn direction_decides_better_and_the_sign_against_the_baseline() {
        assert!(better(Direction::Min, 1.0, 2.0));
        assert!(!better(Direction::Max, 1.0, 2.0));
        assert_eq!(
            vs_baseline(Direction::Min, 0.9, 1.0).map(|v| (v * 100.0).round()),
            Some(10.0)
        );
        assert_eq!(
            vs_baseline(Direction::Max, 0.9, 1.0).map(|v| (v * 100.0).round()),
            Some(-10.0)
        );
        assert_eq!(vs_baseline(Direction::Max, 0.9, 0.0), None);
    }

    #[test]
    fn promising_allows_the_slack_and_no_more() {
        assert!(promising(Direction::Min, 1.05, Some(1.0), 0.1));
        assert!(!promising(Direction::Min, 1.2, Some(1.0), 0.1));
        assert!(promising(Direction::Max, 0.95, Some(1.0), 0.1));
        assert!(!promising(Direction::Max, 0.8, Some(1.0), 0.1));
        assert!(promising(Direction::Max, 0.0, None, 0.0));
    }

    #[test]
    fn mean_and_standard_error() {
        let (m, se) = mean_stderr(&[1.0, 2.0, 3.0]).unwrap();
        assert_eq!(m, 2.0);
        assert!((se - (1.0f64 / 3.0).sqrt()).abs() < 1e-12, "{se}");
        assert_eq!(mean_stderr(&[4.0]), Some((4.0, 0.0)));
        assert_eq!(mean_stderr(&[]), None);
    }

    #[test]
    fn metric_keys_are_the_numbers_every_dataset_has() {
        let m = json!({"a": {"loss": 1.0, "acc": 0.5, "name": "x"}, "b": {"loss": 3.0}});
        assert_eq!(metric_keys(&m), vec!["loss".to_string()]);
        assert_eq!(guess_direction("eval_loss"), Direction::Min);
        assert_eq!(guess_direction("val_acc"), Direction::Max);
    }
}
