//! Hardware and versions the paper states, against what the runs' `env.json` recorded.
//! Runs without an `env.json` (v1's) say nothing either way, so nothing is checked.

use std::ops::Range;

use serde_json::Value;

use super::sources::RunData;
use crate::latex::syntax::TexFacts;

/// GPU model names as papers write them.
const GPUS: &[&str] = &[
    "A100", "H100", "H200", "V100", "P100", "T4", "A10G", "A10", "L4", "L40", "L40S", "A6000", "A40", "K80",
    "B200", "GB200", "MI250", "MI300", "TPU",
];

/// Words after which a number is a version.
pub const SOFTWARE: &[&str] = &[
    "pytorch",
    "torch",
    "python",
    "numpy",
    "cuda",
    "cudnn",
    "jax",
    "tensorflow",
    "version",
    "scipy",
];

/// Software whose version a paper states, and the `env.json` field that records it.
const VERSIONS: &[(&str, &str)] = &[
    ("pytorch", "/python/torch"),
    ("torch", "/python/torch"),
    ("python", "/python/version"),
    ("numpy", "/python/numpy"),
    ("cuda", "/cuda_version"),
];

/// `(span, message)` for each statement about the machine no run recorded.
pub fn unrecorded(src: &str, facts: &TexFacts, data: &RunData) -> Vec<(Range<usize>, String)> {
    let mut out = Vec::new();
    if data.env.is_empty() {
        return out;
    }
    let body = facts
        .environments
        .iter()
        .find(|e| e.name == "document")
        .map(|e| e.begin.end)
        .unwrap_or(0);
    let gpus: Vec<String> = data
        .env
        .iter()
        .flat_map(|(_, e)| {
            e.get("gpus")
                .and_then(Value::as_array)
                .cloned()
                .unwrap_or_default()
        })
        .filter_map(|g| g.get("name").and_then(Value::as_str).map(str::to_uppercase))
        .collect();
    for (span, word) in words(src, body) {
        let upper = word.to_uppercase();
        if GPUS.contains(&upper.as_str()) && !gpus.iter().any(|g| g.split([' ', '-']).any(|t| t == upper)) {
            let had = if gpus.is_empty() {
                "the runs recorded no GPU (CPU only)".to_string()
            } else {
                format!("the runs recorded {}", gpus.join(", "))
            };
            out.push((span, format!("the paper names a {word}, but {had} (env.json)")));
        }
    }
    let lower = src.to_lowercase();
    for (name, field) in VERSIONS {
        let mut from = body;
        while let Some(i) = lower[from..].find(name).map(|i| from + i) {
            from = i + name.len();
            let word_start = i == 0 || !lower.as_bytes()[i - 1].is_ascii_alphanumeric();
            let rest = &src[from..];
            let gap = rest.len() - rest.trim_start_matches([' ', '~', 'v']).len();
            let version: String = rest[gap..]
                .chars()
                .take_while(|c| c.is_ascii_digit() || *c == '.')
                .collect();
            let version = version.trim_end_matches('.');
            if !word_start || !version.contains('.') || version.starts_with('.') {
                continue;
            }
            let recorded: Vec<String> = data
                .env
                .iter()
                .filter_map(|(_, e)| e.pointer(field).and_then(Value::as_str).map(str::to_string))
                .collect();
            let agrees = recorded.iter().any(|r| {
                r == version || r.starts_with(&format!("{version}.")) || r.starts_with(&format!("{version}+"))
            });
            if !agrees {
                let at = from + gap..from + gap + version.len();
                let had = if recorded.is_empty() {
                    "no run recorded one".to_string()
                } else {
                    format!("the runs recorded {}", recorded.join(", "))
                };
                out.push((
                    at,
                    format!(
                        "the paper states {} {version}, but {had} (env.json)",
                        &src[i..from]
                    ),
                ));
            }
        }
    }
    out
}

/// Alphanumeric words of `src` from `from`, outside comments, with their spans.
fn words(src: &str, from: usize) -> Vec<(Range<usize>, &str)> {
    let mut out = Vec::new();
    let b = src.as_bytes();
    let mut i = from;
    let mut comment = false;
    while i < b.len() {
        let c = b[i];
        if c == b'\n' {
            comment = false;
        } else if c == b'%' && (i == 0 || b[i - 1] != b'\\') {
            comment = true;
        }
        if comment || !c.is_ascii_alphanumeric() || (i > 0 && b[i - 1] == b'\\') {
            i += 1;
            continue;
        }
        let start = i;
        while i < b.len() && b[i].is_ascii_alphanumeric() {
            i += 1;
        }
        out.push((start..i, &src[start..i]));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::latex::syntax::{facts, parse};

    #[test]
    fn hardware_and_versions_against_env_json() {
        let src = "\\begin{document}\nWe train on one NVIDIA A100 with PyTorch 2.1 and Python 3.11. % on a V100\n\\end{document}\n";
        let f = facts(&parse(src), src);
        let mut data = RunData::default();
        assert!(
            unrecorded(src, &f, &data).is_empty(),
            "no env.json: nothing to check"
        );
        data.env.push((
            "run_1".into(),
            serde_json::json!({"gpus": [{"index": "0", "name": "NVIDIA H100 80GB HBM3"}],
                               "python": {"version": "3.11.2", "torch": "2.5.1+cu124"}}),
        ));
        let found = unrecorded(src, &f, &data);
        let said: Vec<&str> = found.iter().map(|(s, _)| &src[s.clone()]).collect();
        assert_eq!(said, ["A100", "2.1"], "{found:?}");
        assert!(found[0].1.contains("NVIDIA H100 80GB HBM3"), "{}", found[0].1);
        assert!(found[1].1.contains("2.5.1+cu124"), "{}", found[1].1);
    }
}
