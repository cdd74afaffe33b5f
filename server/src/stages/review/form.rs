//! The review's shape: v1's JSON keys (in v1's order), types and score ranges. Weaknesses,
//! questions and limitations may carry an anchor (a quote from the paper or a section
//! name) so the editor can show each where it applies; v1's `review.txt` keeps them as
//! plain strings.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

/// Numeric fields with their ranges, in v1's key order.
pub const SCORES: [(&str, u8, u8); 9] = [
    ("Originality", 1, 4),
    ("Quality", 1, 4),
    ("Clarity", 1, 4),
    ("Significance", 1, 4),
    ("Soundness", 1, 4),
    ("Presentation", 1, 4),
    ("Contribution", 1, 4),
    ("Overall", 1, 10),
    ("Confidence", 1, 5),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum Decision {
    Accept,
    Reject,
}

impl Decision {
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Accept => "Accept",
            Decision::Reject => "Reject",
        }
    }
}

/// A weakness, question or limitation; `quote` and `section` say where it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Comment {
    pub text: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub quote: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub section: Option<String>,
}

impl Comment {
    pub fn plain(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            quote: None,
            section: None,
        }
    }
}

/// One review in the NeurIPS form (field order = v1's key order).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Review {
    #[serde(rename = "Summary")]
    pub summary: String,
    #[serde(rename = "Strengths")]
    pub strengths: Vec<String>,
    #[serde(rename = "Weaknesses")]
    pub weaknesses: Vec<Comment>,
    #[serde(rename = "Originality")]
    pub originality: u8,
    #[serde(rename = "Quality")]
    pub quality: u8,
    #[serde(rename = "Clarity")]
    pub clarity: u8,
    #[serde(rename = "Significance")]
    pub significance: u8,
    #[serde(rename = "Questions")]
    pub questions: Vec<Comment>,
    #[serde(rename = "Limitations")]
    pub limitations: Vec<Comment>,
    #[serde(rename = "Ethical Concerns")]
    pub ethical_concerns: bool,
    #[serde(rename = "Soundness")]
    pub soundness: u8,
    #[serde(rename = "Presentation")]
    pub presentation: u8,
    #[serde(rename = "Contribution")]
    pub contribution: u8,
    #[serde(rename = "Overall")]
    pub overall: u8,
    #[serde(rename = "Confidence")]
    pub confidence: u8,
    #[serde(rename = "Decision")]
    pub decision: Decision,
}

/// The kinds of anchored comments, as the editor shows them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CommentKind {
    Weakness,
    Question,
    Limitation,
}

impl CommentKind {
    pub const ALL: [CommentKind; 3] = [
        CommentKind::Weakness,
        CommentKind::Question,
        CommentKind::Limitation,
    ];

    pub fn label(self) -> &'static str {
        match self {
            CommentKind::Weakness => "Weakness",
            CommentKind::Question => "Question",
            CommentKind::Limitation => "Limitation",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.label().eq_ignore_ascii_case(s))
    }
}

impl Review {
    pub fn score(&self, name: &str) -> Option<u8> {
        Some(match name {
            "Originality" => self.originality,
            "Quality" => self.quality,
            "Clarity" => self.clarity,
            "Significance" => self.significance,
            "Soundness" => self.soundness,
            "Presentation" => self.presentation,
            "Contribution" => self.contribution,
            "Overall" => self.overall,
            "Confidence" => self.confidence,
            _ => return None,
        })
    }

    fn score_mut(&mut self, name: &str) -> Option<&mut u8> {
        Some(match name {
            "Originality" => &mut self.originality,
            "Quality" => &mut self.quality,
            "Clarity" => &mut self.clarity,
            "Significance" => &mut self.significance,
            "Soundness" => &mut self.soundness,
            "Presentation" => &mut self.presentation,
            "Contribution" => &mut self.contribution,
            "Overall" => &mut self.overall,
            "Confidence" => &mut self.confidence,
            _ => return None,
        })
    }

    /// Sets a score, clamped to its range.
    pub fn set_score(&mut self, name: &str, value: u8) {
        if let (Some(slot), Some((_, lo, hi))) = (self.score_mut(name), SCORES.iter().find(|s| s.0 == name)) {
            *slot = value.clamp(*lo, *hi);
        }
    }

    pub fn comments(&self, kind: CommentKind) -> &[Comment] {
        match kind {
            CommentKind::Weakness => &self.weaknesses,
            CommentKind::Question => &self.questions,
            CommentKind::Limitation => &self.limitations,
        }
    }

    /// Reads a review from the model's JSON (or a v1 `review.txt`). Every problem is
    /// named, so that the model can be told what to fix.
    pub fn from_value(v: &Value) -> Result<Review, Vec<String>> {
        let Some(obj) = v.as_object() else {
            return Err(vec!["the review must be a JSON object".into()]);
        };
        let mut problems = Vec::new();
        let summary = match field(obj, "Summary") {
            Some(Value::String(s)) if !s.trim().is_empty() => s.trim().to_string(),
            Some(_) => {
                problems.push("\"Summary\" must be a non-empty string".into());
                String::new()
            }
            None => {
                problems.push("\"Summary\" is missing".into());
                String::new()
            }
        };
        let strengths = list(obj, "Strengths", &mut problems)
            .into_iter()
            .map(|c| c.text)
            .collect();
        let weaknesses = list(obj, "Weaknesses", &mut problems);
        let questions = list(obj, "Questions", &mut problems);
        let limitations = list(obj, "Limitations", &mut problems);
        let ethical_concerns = match field(obj, "Ethical Concerns") {
            None | Some(Value::Null) => false,
            Some(Value::Bool(b)) => *b,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("true") || s.eq_ignore_ascii_case("yes") => true,
            Some(Value::String(s)) if s.eq_ignore_ascii_case("false") || s.eq_ignore_ascii_case("no") => {
                false
            }
            Some(other) => {
                problems.push(format!("\"Ethical Concerns\" must be true or false, not {other}"));
                false
            }
        };
        let mut scores = [0u8; SCORES.len()];
        for (slot, (name, lo, hi)) in scores.iter_mut().zip(SCORES) {
            match field(obj, name).map(integer) {
                Some(Some(n)) if (lo as i64..=hi as i64).contains(&n) => *slot = n as u8,
                Some(Some(n)) => problems.push(format!(
                    "\"{name}\" must be an integer from {lo} to {hi}, not {n}"
                )),
                Some(None) => problems.push(format!(
                    "\"{name}\" must be an integer from {lo} to {hi}, not {}",
                    field(obj, name).unwrap()
                )),
                None => problems.push(format!("\"{name}\" is missing (an integer from {lo} to {hi})")),
            }
        }
        let decision = match field(obj, "Decision") {
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("accept") => Some(Decision::Accept),
            Some(Value::String(s)) if s.trim().eq_ignore_ascii_case("reject") => Some(Decision::Reject),
            Some(other) => {
                problems.push(format!(
                    "\"Decision\" must be \"Accept\" or \"Reject\", not {other}"
                ));
                None
            }
            None => {
                problems.push("\"Decision\" is missing (\"Accept\" or \"Reject\")".into());
                None
            }
        };
        if !problems.is_empty() {
            return Err(problems);
        }
        let [originality, quality, clarity, significance, soundness, presentation, contribution, overall, confidence] =
            scores;
        Ok(Review {
            summary,
            strengths,
            weaknesses,
            originality,
            quality,
            clarity,
            significance,
            questions,
            limitations,
            ethical_concerns,
            soundness,
            presentation,
            contribution,
            overall,
            confidence,
            decision: decision.expect("checked above"),
        })
    }

    /// The review as v1 wrote it: the same keys in the same order, comments as strings.
    pub fn to_v1_value(&self) -> Value {
        let strings = |cs: &[Comment]| Value::from(cs.iter().map(|c| c.text.clone()).collect::<Vec<_>>());
        let mut m = Map::new();
        m.insert("Summary".into(), self.summary.clone().into());
        m.insert("Strengths".into(), self.strengths.clone().into());
        m.insert("Weaknesses".into(), strings(&self.weaknesses));
        for name in ["Originality", "Quality", "Clarity", "Significance"] {
            m.insert(name.into(), self.score(name).unwrap().into());
        }
        m.insert("Questions".into(), strings(&self.questions));
        m.insert("Limitations".into(), strings(&self.limitations));
        m.insert("Ethical Concerns".into(), self.ethical_concerns.into());
        for name in [
            "Soundness",
            "Presentation",
            "Contribution",
            "Overall",
            "Confidence",
        ] {
            m.insert(name.into(), self.score(name).unwrap().into());
        }
        m.insert("Decision".into(), self.decision.as_str().into());
        Value::Object(m)
    }

    /// v1's `review.txt`: Python's `json.dumps(review, indent=4)` (ASCII-only, escaped).
    pub fn to_v1_text(&self) -> String {
        crate::project::python_json_dumps(&self.to_v1_value())
    }
}

/// A key, also when the model changed its case or spacing ("ethical_concerns").
fn field<'a>(obj: &'a Map<String, Value>, name: &str) -> Option<&'a Value> {
    obj.get(name).or_else(|| {
        let want = squash(name);
        obj.iter().find(|(k, _)| squash(k) == want).map(|(_, v)| v)
    })
}

fn squash(s: &str) -> String {
    s.chars()
        .filter(|c| c.is_ascii_alphanumeric())
        .map(|c| c.to_ascii_lowercase())
        .collect()
}

/// An integer score: 3, 3.0 or "3".
fn integer(v: &Value) -> Option<i64> {
    match v {
        Value::Number(n) => n
            .as_i64()
            .or_else(|| n.as_f64().filter(|f| f.fract() == 0.0).map(|f| f as i64)),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

/// A list of comments: strings, or objects with a text (`text`/`comment`) and an optional
/// `quote` and `section`. Missing means empty.
fn list(obj: &Map<String, Value>, name: &str, problems: &mut Vec<String>) -> Vec<Comment> {
    let items = match field(obj, name) {
        None | Some(Value::Null) => return Vec::new(),
        Some(Value::Array(a)) => a,
        Some(Value::String(s)) if !s.trim().is_empty() => return vec![Comment::plain(s.trim())],
        Some(other) => {
            problems.push(format!("\"{name}\" must be a list, not {other}"));
            return Vec::new();
        }
    };
    let mut out = Vec::new();
    for (i, item) in items.iter().enumerate() {
        match item {
            Value::String(s) if !s.trim().is_empty() => out.push(Comment::plain(s.trim())),
            Value::Object(o) => {
                let text = ["text", "comment", "point"]
                    .iter()
                    .find_map(|k| field(o, k).and_then(Value::as_str))
                    .map(str::trim)
                    .filter(|s| !s.is_empty());
                let opt = |k: &str| {
                    field(o, k)
                        .and_then(Value::as_str)
                        .map(str::trim)
                        .filter(|s| !s.is_empty())
                        .map(str::to_string)
                };
                match text {
                    Some(t) => out.push(Comment {
                        text: t.to_string(),
                        quote: opt("quote"),
                        section: opt("section"),
                    }),
                    None => problems.push(format!("\"{name}\" item {} has no \"text\"", i + 1)),
                }
            }
            Value::String(_) => {}
            other => problems.push(format!(
                "\"{name}\" item {} must be a string or an object with \"text\", not {other}",
                i + 1
            )),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn good() -> Value {
        json!({
            "Summary": "S", "Strengths": ["a"],
            "Weaknesses": ["w1", {"text": "w2", "quote": "we show", "section": "Results"}],
            "Originality": 3, "Quality": 3.0, "Clarity": "2", "Significance": 2,
            "Questions": [], "Limitations": [{"comment": "l1"}], "Ethical Concerns": false,
            "Soundness": 3, "Presentation": 2, "Contribution": 2, "Overall": 5, "Confidence": 4,
            "Decision": "reject"
        })
    }

    #[test]
    fn reads_strings_objects_and_lenient_numbers() {
        let r = Review::from_value(&good()).unwrap();
        assert_eq!(r.weaknesses[1].quote.as_deref(), Some("we show"));
        assert_eq!(r.weaknesses[1].section.as_deref(), Some("Results"));
        assert_eq!(r.limitations[0].text, "l1");
        assert_eq!((r.quality, r.clarity, r.overall), (3, 2, 5));
        assert_eq!(r.decision, Decision::Reject);
    }

    #[test]
    fn names_every_problem() {
        let mut v = good();
        v["Overall"] = json!(11);
        v["Clarity"] = json!("high");
        v["Decision"] = json!("Weak Accept");
        v.as_object_mut().unwrap().remove("Confidence");
        let errs = Review::from_value(&v).unwrap_err();
        assert_eq!(errs.len(), 4, "{errs:?}");
        assert!(errs
            .iter()
            .any(|e| e.contains("\"Overall\" must be an integer from 1 to 10, not 11")));
        assert!(errs
            .iter()
            .any(|e| e.contains("\"Decision\" must be \"Accept\" or \"Reject\"")));
        assert!(errs.iter().any(|e| e.contains("\"Confidence\" is missing")));
    }

    #[test]
    fn python_dumps_escapes_non_ascii() {
        assert_eq!(
            crate::project::python_json_dumps(&json!({"a": ["é", "𝑥"]})),
            "{\n    \"a\": [\n        \"\\u00e9\",\n        \"\\ud835\\udc65\"\n    ]\n}"
        );
    }
}
