//! The v1 file formats: `prompt.json`, idea archives (`seed_ideas.json`, `ideas.json`)
//! and `final_info.json`. Parsing is lenient where v1 files in the wild vary, and
//! unknown keys survive a load/save round trip.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// `prompt.json`: the system prompt and the task description of a template.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PromptJson {
    pub system: String,
    pub task_description: String,
    /// Keys other tools put there; kept so that saving does not drop them.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The six idea fields every idea must carry, in v1's order.
pub const IDEA_FIELDS: [&str; 6] = [
    "Name",
    "Title",
    "Experiment",
    "Interestingness",
    "Feasibility",
    "Novelty",
];
const SCORE_FIELDS: [&str; 3] = ["Interestingness", "Feasibility", "Novelty"];

/// One research idea as v1 stores it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Idea {
    #[serde(rename = "Name")]
    pub name: String,
    #[serde(rename = "Title")]
    pub title: String,
    #[serde(rename = "Experiment")]
    pub experiment: String,
    #[serde(rename = "Interestingness")]
    pub interestingness: u8,
    #[serde(rename = "Feasibility")]
    pub feasibility: u8,
    #[serde(rename = "Novelty")]
    pub novelty: u8,
    /// Set by the novelty check; seed ideas never carry it.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub novel: Option<bool>,
    /// Anything else (`Score` from the open-ended variant, user notes, ...).
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// One thing wrong with an idea object; `field` names the key it is about (None: the
/// object as a whole).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdeaIssue {
    pub field: Option<String>,
    pub message: String,
}

impl std::fmt::Display for IdeaIssue {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

/// True for a v1-style idea name: non-empty, lowercase ASCII letters, digits and
/// underscores (it becomes part of a folder name).
pub fn is_valid_idea_name(name: &str) -> bool {
    !name.is_empty()
        && name
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
}

/// Normalise the obvious near-misses of a name (`Adaptive LR-Warmup` →
/// `adaptive_lr_warmup`): ASCII letters are lowercased and runs of spaces, hyphens
/// and dots become one underscore. Anything else (other punctuation, non-ASCII) is
/// left alone so that validation still rejects it and the model is asked again.
pub fn normalize_idea_name(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    for c in name.trim().chars() {
        if matches!(c, ' ' | '-' | '.' | '\t') {
            if !out.ends_with('_') {
                out.push('_');
            }
        } else {
            out.push(c.to_ascii_lowercase());
        }
    }
    out.trim_matches('_').to_string()
}

/// Check an idea object against the schema without changing it.
pub fn validate_idea(value: &Value) -> Vec<IdeaIssue> {
    let issue = |field: Option<&str>, message: String| IdeaIssue {
        field: field.map(str::to_owned),
        message,
    };
    let Some(obj) = value.as_object() else {
        return vec![issue(
            None,
            format!("an idea must be a JSON object, not {}", kind_of(value)),
        )];
    };
    let mut issues = Vec::new();
    for field in IDEA_FIELDS {
        if !obj.contains_key(field) {
            issues.push(issue(None, format!("the field \"{field}\" is missing")));
        }
    }
    for field in ["Name", "Title", "Experiment"] {
        match obj.get(field) {
            Some(Value::String(s)) if s.trim().is_empty() => {
                issues.push(issue(Some(field), format!("\"{field}\" is empty")))
            }
            Some(Value::String(_)) | None => {}
            Some(v) => issues.push(issue(
                Some(field),
                format!("\"{field}\" must be a string, not {}", kind_of(v)),
            )),
        }
    }
    if let Some(Value::String(name)) = obj.get("Name") {
        if !name.trim().is_empty() && !is_valid_idea_name(name) {
            issues.push(issue(
                Some("Name"),
                format!("\"Name\" is {name:?}; it must use only lowercase letters, digits and underscores"),
            ));
        }
    }
    for field in SCORE_FIELDS {
        if let Some(v) = obj.get(field) {
            if score_of(v).is_none() {
                issues.push(issue(
                    Some(field),
                    format!("\"{field}\" is {v}; it must be an integer from 1 to 10"),
                ));
            }
        }
    }
    if let Some(v) = obj.get("novel") {
        if !v.is_boolean() {
            issues.push(issue(
                Some("novel"),
                format!("\"novel\" must be true or false, not {}", kind_of(v)),
            ));
        }
    }
    issues
}

/// A score as an integer 1..=10. `7.0` counts (some models write floats), `7.5` and
/// `"7"` do not.
fn score_of(v: &Value) -> Option<u8> {
    let n = v.as_f64()?;
    (n.fract() == 0.0 && (1.0..=10.0).contains(&n)).then_some(n as u8)
}

impl Idea {
    /// Build an idea from model output or a file entry: validate, then convert.
    /// Integral float scores become integers; the name is taken as is (normalise
    /// first if that is wanted).
    pub fn from_value(value: &Value) -> Result<Idea, Vec<IdeaIssue>> {
        let issues = validate_idea(value);
        if !issues.is_empty() {
            return Err(issues);
        }
        let mut obj = value.as_object().cloned().unwrap_or_default();
        for field in SCORE_FIELDS {
            if let Some(s) = obj.get(field).and_then(score_of) {
                obj.insert(field.to_string(), Value::from(s));
            }
        }
        serde_json::from_value(Value::Object(obj)).map_err(|e| {
            vec![IdeaIssue {
                field: None,
                message: e.to_string(),
            }]
        })
    }

    pub fn to_value(&self) -> Value {
        serde_json::to_value(self).expect("ideas always serialise")
    }
}

/// Serialise an idea archive the way v1 writes it (`json.dump(..., indent=4)`), so
/// rewriting a v1 archive changes only what was added.
pub fn ideas_to_json(entries: &[Value]) -> String {
    python_json_dumps(entries)
}

/// JSON as Python's `json.dumps(v, indent=4)` writes it: four-space indent and, like
/// Python's default `ensure_ascii`, non-ASCII characters as `\uXXXX` escapes.
pub fn python_json_dumps<T: Serialize + ?Sized>(v: &T) -> String {
    let mut buf = Vec::new();
    let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
    let mut ser = serde_json::Serializer::with_formatter(&mut buf, fmt);
    v.serialize(&mut ser).expect("JSON values always serialise");
    let text = String::from_utf8(buf).expect("serde_json writes UTF-8");
    // Non-ASCII can only occur inside strings, where an escape means the same.
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c.is_ascii() {
            out.push(c);
        } else {
            let mut units = [0u16; 2];
            for u in c.encode_utf16(&mut units) {
                out.push_str(&format!("\\u{u:04x}"));
            }
        }
    }
    out
}

/// Results of one dataset in `final_info.json`. v1 templates write
/// `{"means": {...}, "stderrs": {...}, "final_info_dict": {...}}`; some write only
/// `means`, and community templates put a bare number in `means`, so values are kept
/// as JSON.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct DatasetResult {
    #[serde(default)]
    pub means: Value,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stderrs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub final_info_dict: Option<Value>,
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `final_info.json` of a run: dataset name → results, in file order.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct FinalInfo {
    pub datasets: Vec<(String, DatasetResult)>,
}

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("invalid JSON: {0}")]
    Json(#[from] serde_json::Error),
    #[error("{0}")]
    Shape(String),
}

impl FinalInfo {
    /// Parse leniently: a dataset whose value is not an object with `means` is kept
    /// with that value as its `means` (v1 itself only reduces dict values).
    pub fn parse(text: &str) -> Result<FinalInfo, FormatError> {
        let value: Value = serde_json::from_str(text)?;
        let Value::Object(top) = value else {
            return Err(FormatError::Shape(format!(
                "final_info.json must be an object of datasets, not {}",
                kind_of(&value)
            )));
        };
        let datasets = top
            .into_iter()
            .map(|(name, v)| {
                let result = match v {
                    Value::Object(ref o) if o.contains_key("means") => {
                        serde_json::from_value(v).expect("object with means fits DatasetResult")
                    }
                    other => DatasetResult {
                        means: other,
                        stderrs: None,
                        final_info_dict: None,
                        extra: Map::new(),
                    },
                };
                (name, result)
            })
            .collect();
        Ok(FinalInfo { datasets })
    }

    /// `{dataset: means}` — what v1 feeds the model as the baseline.
    pub fn means_by_dataset(&self) -> Map<String, Value> {
        self.datasets
            .iter()
            .map(|(k, r)| (k.clone(), r.means.clone()))
            .collect()
    }

    /// Number of mean entries over all datasets (a bare number counts as one).
    pub fn mean_count(&self) -> usize {
        self.datasets
            .iter()
            .map(|(_, r)| match &r.means {
                Value::Object(m) => m.len(),
                Value::Null => 0,
                Value::Array(a) => a.len(),
                _ => 1,
            })
            .sum()
    }

    pub fn to_value(&self) -> Value {
        Value::Object(
            self.datasets
                .iter()
                .map(|(k, r)| (k.clone(), serde_json::to_value(r).expect("serialises")))
                .collect(),
        )
    }
}

/// "a string", "an array", ... for messages.
pub(crate) fn kind_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn names_normalise_only_obvious_cases() {
        assert_eq!(normalize_idea_name("Adaptive LR-Warmup"), "adaptive_lr_warmup");
        assert_eq!(normalize_idea_name(" a -- b. "), "a_b");
        assert!(!is_valid_idea_name(&normalize_idea_name("idée")));
        assert!(!is_valid_idea_name(&normalize_idea_name("a/b")));
    }

    #[test]
    fn validation_reports_each_problem() {
        let v = json!({"Name": "Bad Name", "Title": 3, "Experiment": "x",
                       "Interestingness": 11, "Feasibility": 7.0, "Novelty": "5"});
        let issues = validate_idea(&v);
        let fields: Vec<_> = issues.iter().filter_map(|i| i.field.as_deref()).collect();
        assert_eq!(
            fields,
            ["Title", "Name", "Interestingness", "Novelty"],
            "{issues:?}"
        );
        assert!(validate_idea(&json!([])).len() == 1);
    }

    #[test]
    fn integral_float_scores_become_integers() {
        let v = json!({"Name": "a", "Title": "t", "Experiment": "e",
                       "Interestingness": 7.0, "Feasibility": 1, "Novelty": 10, "Score": 5});
        let idea = Idea::from_value(&v).unwrap();
        assert_eq!(idea.interestingness, 7);
        assert_eq!(idea.extra["Score"], json!(5));
        assert_eq!(idea.to_value()["Interestingness"], json!(7));
    }

    #[test]
    fn final_info_is_lenient() {
        let fi = FinalInfo::parse(r#"{"a": {"means": {"x": 1}}, "b": 0.5, "c": {"means": 2}}"#).unwrap();
        assert_eq!(fi.mean_count(), 3);
        assert!(FinalInfo::parse("[1]").is_err());
    }

    #[test]
    fn v1_indent_is_four_spaces() {
        let s = ideas_to_json(&[json!({"Name": "a"})]);
        assert_eq!(s, "[\n    {\n        \"Name\": \"a\"\n    }\n]");
        let s = ideas_to_json(&[json!("ε😀")]);
        assert_eq!(s, "[\n    \"\\u03b5\\ud83d\\ude00\"\n]");
        assert_eq!(serde_json::from_str::<Vec<String>>(&s).unwrap()[0], "ε😀");
    }
}
