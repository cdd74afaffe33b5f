//! A fake OpenAI-style chat model for the cost bench. It answers every stage of
//! `aisci launch` well enough for the stage to go on (ideas, novelty searches, edits that
//! apply to the files it is shown, citations of the papers it is listed, reviews), pads
//! each reply to the size v1's real model gave for that kind of call, and records what
//! every request sent: its characters, and how much of it an OpenAI-style automatic
//! prefix cache would have served (the longest prefix shared with an earlier request, in
//! 128-token steps from 1,024 tokens, as OpenAI documents it).

use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};

use axum::body::Bytes;
use axum::extract::State;
use axum::response::Response;
use axum::Router;
use serde_json::{json, Value};

use super::v1_sizes::{self, ReplySizes};

/// One request the model answered.
#[derive(Debug, Clone)]
pub struct Call {
    pub stage: &'static str,
    /// Characters of the system prompt and every message sent.
    pub sent: usize,
    /// Of those, the prefix an automatic prefix cache would have served.
    pub cached: usize,
    pub reply: usize,
    /// Completions asked for in this request (`n`).
    pub n: usize,
}

pub struct Model {
    sizes: ReplySizes,
    /// Runs the model does before it answers ALL_COMPLETED.
    runs: u32,
    calls: Mutex<Vec<Call>>,
    queries: AtomicU32,
    prefixes: Mutex<Vec<String>>,
}

impl Model {
    pub fn new(sizes: ReplySizes, runs: u32) -> Arc<Self> {
        Arc::new(Self {
            sizes,
            runs,
            calls: Mutex::new(Vec::new()),
            queries: AtomicU32::new(0),
            prefixes: Mutex::new(Vec::new()),
        })
    }

    pub fn calls(&self) -> Vec<Call> {
        self.calls.lock().unwrap().clone()
    }

    pub async fn serve(self: &Arc<Self>) -> String {
        let app = Router::new().fallback(handle).with_state(Arc::clone(self));
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            axum::serve(listener, app).await.ok();
        });
        format!("http://{addr}/v1")
    }

    /// The chars an automatic prefix cache would serve for `text`, then remembers it.
    fn cached(&self, text: &str) -> usize {
        let mut seen = self.prefixes.lock().unwrap();
        let best = seen.iter().map(|p| common_prefix(p, text)).max().unwrap_or(0);
        seen.push(text.to_string());
        // Tokens are chars / 4; cached in 128-token steps once 1,024 tokens match.
        let tokens = best / 4;
        if tokens < 1024 {
            0
        } else {
            (tokens / 128) * 128 * 4
        }
    }
}

fn common_prefix(a: &str, b: &str) -> usize {
    a.bytes().zip(b.bytes()).take_while(|(x, y)| x == y).count()
}

async fn handle(State(model): State<Arc<Model>>, body: Bytes) -> Response {
    let req: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let messages = req["messages"].as_array().cloned().unwrap_or_default();
    let text_of = |m: &Value| -> String {
        match &m["content"] {
            Value::String(s) => s.clone(),
            Value::Array(parts) => parts
                .iter()
                .filter_map(|p| p["text"].as_str())
                .collect::<Vec<_>>()
                .join(""),
            _ => String::new(),
        }
    };
    let system = messages
        .iter()
        .filter(|m| m["role"] == "system")
        .map(text_of)
        .collect::<String>();
    let last = messages
        .iter()
        .rev()
        .find(|m| m["role"] == "user")
        .map(text_of)
        .unwrap_or_default();
    let joined: String = messages
        .iter()
        .map(|m| format!("{}\u{0}{}\u{0}", m["role"].as_str().unwrap_or(""), text_of(m)))
        .collect();
    let n = req["n"].as_u64().unwrap_or(1).max(1) as usize;
    let (stage, reply) = model.answer(&system, &last);
    let sent = messages.iter().map(|m| text_of(m).len()).sum::<usize>();
    let cached = model.cached(&joined).min(sent);
    model.calls.lock().unwrap().push(Call {
        stage,
        sent,
        cached,
        reply: reply.len() * n,
        n,
    });
    let choices: Vec<Value> = (0..n)
        .map(|i| json!({"index": i, "message": {"role": "assistant", "content": reply}, "finish_reason": "stop"}))
        .collect();
    let body = json!({
        "id": "chatcmpl-cost", "object": "chat.completion", "created": 1, "model": "gpt-4o-2024-08-06",
        "choices": choices,
        "usage": {
            "prompt_tokens": sent / 4, "completion_tokens": reply.len() * n / 4,
            "total_tokens": sent / 4 + reply.len() * n / 4,
            "prompt_tokens_details": {"cached_tokens": cached / 4}
        }
    });
    Response::builder()
        .status(200)
        .header("content-type", "application/json")
        .body(body.to_string().into())
        .unwrap()
}

const THOUGHTS: &[&str] = &[
    "I look at what the last step showed before deciding what to change next.",
    "The plan stays as it was unless the evidence clearly argues against it.",
    "Each change should isolate one factor so that its effect can be read off cleanly.",
    "It is worth stating the expected outcome first, so that a surprise is recognisable.",
    "The comparison with the baseline is the part of the evidence that matters most here.",
    "Keeping the rest of the setup fixed avoids confounding the result with other choices.",
];

/// `head` followed by prose until the whole is about `size` characters.
fn padded(size: usize, head: &str, tail: &str) -> String {
    let mut out = String::from("THOUGHT:\n");
    out.push_str(head);
    let mut i = 0;
    while out.len() + tail.len() < size {
        out.push(if i % 4 == 3 { '\n' } else { ' ' });
        out.push_str(THOUGHTS[i % THOUGHTS.len()]);
        i += 1;
    }
    out.push_str("\n\n");
    out.push_str(tail);
    out
}

const ORDINALS: &[&str] = &[
    "first",
    "second",
    "third",
    "fourth",
    "fifth",
    "sixth",
    "seventh",
    "eighth",
    "ninth",
    "tenth",
    "eleventh",
    "twelfth",
    "thirteenth",
    "fourteenth",
    "fifteenth",
    "sixteenth",
    "seventeenth",
    "eighteenth",
    "nineteenth",
    "twentieth",
    "next",
    "further",
    "later",
    "closing",
];

const PROSE: &[&str] = &[
    "we describe the setting in plain terms and keep every claim tied to what the runs show",
    "the comparison is made against the baseline configuration that the template provides",
    "the same data, the same budget and the same evaluation are used for every variant",
    "differences that stay within the spread across seeds are not read as effects",
    "the discussion separates what was measured from what is only suggested by it",
];

/// About `size` characters of paper prose, one line per sentence; every line names the
/// part and an ordinal, so each is unique in the paper.
fn prose(part: &str, size: usize) -> String {
    let mut out = String::new();
    let mut i = 0;
    while out.len() < size.max(200) {
        let ord = ORDINALS.get(i).copied().unwrap_or("further");
        out.push_str(&format!(
            "In the {part} part, as a {ord} remark, {}.\n",
            PROSE[i % PROSE.len()]
        ));
        i += 1;
        if i > 400 {
            break;
        }
    }
    out.trim_end().to_string()
}

/// The text of `name` as the request shows it (`name\n```lang\n...```).
fn shown_file<'a>(prompt: &'a str, name: &str) -> Option<&'a str> {
    let at = prompt.find(&format!("{name}\n```"))?;
    let rest = &prompt[at + name.len() + 1..];
    let fence_len = rest.chars().take_while(|c| *c == '`').count();
    let body_start = rest.find('\n')? + 1;
    let fence = "`".repeat(fence_len);
    let body = &rest[body_start..];
    let end = body
        .find(&format!("\n{fence}\n"))
        .or_else(|| body.rfind(&fence))?;
    Some(&body[..end])
}

/// A block on `file` that appends `add` after its last line (an empty SEARCH for an
/// empty file).
fn append(file: &str, current: &str, add: &str) -> String {
    let last = current.lines().rev().find(|l| !l.trim().is_empty());
    match last.filter(|l| current.matches(*l).count() == 1) {
        Some(line) => format!("{file}\n<<<<<<< SEARCH\n{line}\n=======\n{line}\n{add}\n>>>>>>> REPLACE\n"),
        None => format!("{file}\n<<<<<<< SEARCH\n=======\n{add}\n>>>>>>> REPLACE\n"),
    }
}

fn number_after(text: &str, marker: &str) -> Option<u32> {
    let at = text.find(marker)? + marker.len();
    let digits: String = text[at..].chars().take_while(|c| c.is_ascii_digit()).collect();
    digits.parse().ok()
}

/// The placeholders of the template's parts.
fn placeholders(part: &str) -> &'static [&'static str] {
    match part {
        "Title and abstract" => &["TITLE HERE", "ABSTRACT HERE"],
        "Introduction" => &["INTRO HERE"],
        "Background" => &["BACKGROUND HERE"],
        "Method" => &["METHOD HERE"],
        "Experimental Setup" => &["EXPERIMENTAL SETUP HERE"],
        "Results" => &["RESULTS HERE"],
        "Conclusion" => &["CONCLUSIONS HERE"],
        "Related Work" => &["RELATED WORK HERE"],
        _ => &[],
    }
}

/// The end of `text` (where a turn's prompt is, after the files it shows).
fn tail(text: &str, chars: usize) -> String {
    let n = text.chars().count();
    text.chars().skip(n.saturating_sub(chars)).collect()
}

const TEX: &str = "latex/template.tex";

impl Model {
    /// A query not sent before.
    fn query(&self) -> String {
        let n = self.queries.fetch_add(1, Ordering::Relaxed);
        format!("neural network width study {n}")
    }

    /// Three new queries as a JSON list (the most aisci lists in one call).
    fn queries(&self) -> String {
        let q: Vec<String> = (0..3).map(|_| self.query()).collect();
        serde_json::to_string(&q).unwrap()
    }

    fn answer(&self, system: &str, last: &str) -> (&'static str, String) {
        if system.contains("whether research ideas are new") {
            let round = number_after(last, "Round ").unwrap_or(1);
            if round <= 3 {
                let tail = format!("RESPONSE:\n```json\n{{\"Query\": \"width of hidden layers small networks {round}\"}}\n```\n");
                return ("novelty", padded(v1_sizes::NOVELTY, "Searching first.", &tail));
            }
            let tail = "RESPONSE:\n```json\n{\"Reason\": \"No listed paper studies this setting.\", \"Closest\": []}\n```\n";
            return (
                "novelty",
                padded(
                    v1_sizes::NOVELTY,
                    "Nothing close was found.\nDecision made: novel.",
                    tail,
                ),
            );
        }
        if system.contains("review a paper") || system.contains("area chair") {
            let review = json!({
                "Summary": "The paper studies a small change to a tiny network.",
                "Strengths": ["The setup is simple and controlled."],
                "Weaknesses": [{"text": "The evaluation is small.", "section": "Results"}],
                "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 2,
                "Questions": ["How does it scale?"], "Limitations": ["Toy data only."],
                "Ethical Concerns": false, "Soundness": 2, "Presentation": 3, "Contribution": 2,
                "Overall": 4, "Confidence": 4, "Decision": "Reject"
            });
            let done = if last.contains("Reflection round") {
                "I am done"
            } else {
                ""
            };
            let tail = format!("REVIEW JSON:\n```json\n{review:#}\n```\n{done}");
            return (
                "review",
                padded(v1_sizes::REVIEW, "The claims are modest.", &tail),
            );
        }
        if last.contains("Propose the next research idea") || last.contains("Look again at the idea") {
            let idea = json!({
                "Name": "bench_width_study", "Title": "How Hidden Width Shapes Tiny Networks",
                "Experiment": "Vary the hidden width of the network and compare validation accuracy with the baseline.",
                "Interestingness": 6, "Feasibility": 9, "Novelty": 5
            });
            let done = if number_after(last, "Round ").unwrap_or(1) >= 3 {
                "I am done\n"
            } else {
                ""
            };
            let tail = format!("NEW IDEA JSON:\n```json\n{idea:#}\n```\n{done}");
            return (
                "ideas",
                padded(v1_sizes::IDEA, "A simple, feasible study.", &tail),
            );
        }
        if system.contains("careful Python engineer") {
            return self.experiment(last);
        }
        if system.contains("writing a short research paper") {
            return self.writeup(last);
        }
        eprintln!("cost bench: unrecognised request: {}", tail(last, 600));
        ("other", "No changes needed".to_string())
    }

    fn experiment(&self, last: &str) -> (&'static str, String) {
        let s = &self.sizes;
        let notes = shown_file(last, "notes.txt").unwrap_or("");
        let code = shown_file(last, "experiment.py").unwrap_or("");
        if last.contains("Now edit plot.py") {
            let runs: Vec<String> = last
                .split(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                .filter(|w| w.starts_with("run_") && w[4..].parse::<u32>().is_ok())
                .map(str::to_owned)
                .collect();
            let mut add = String::new();
            for r in runs.iter().filter(|r| *r != "run_0") {
                add.push_str(&format!("    \"{r}\": \"Variant {r}\",\n"));
            }
            let base = "    \"run_0\": \"Baseline\",";
            let plot = shown_file(last, "plot.py").unwrap_or("");
            let edit = if plot.contains(base) {
                format!(
                    "plot.py\n<<<<<<< SEARCH\n{base}\n=======\n{base}\n{}\n>>>>>>> REPLACE\n",
                    add.trim_end()
                )
            } else {
                append("plot.py", plot, "# labels set by the bench")
            };
            return ("plot", padded(s.plot, "Labels for every run.", &edit));
        }
        if last.contains("Now edit notes.txt: for each figure") {
            let add = prose("figures", s.notes / 2);
            let edit = append("notes.txt", notes, &format!("\nFigures.\n{add}"));
            return ("notes", padded(s.notes, "Describing the figures.", &edit));
        }
        let record = |run: u32| {
            format!(
                "\nRun {run}.\n{}",
                prose(&format!("run {run} notes"), s.experiment / 4)
            )
        };
        if last.contains("it was the last run available") {
            let run = number_after(last, "Run ").unwrap_or(1);
            let edit = append("notes.txt", notes, &record(run));
            return (
                "experiment",
                padded(s.experiment, "Recording the last run.", &edit),
            );
        }
        // The run this turn reports: "Run N completed." (notes.txt and the list of earlier
        // runs, shown in the same message, name runs too).
        let done = last
            .match_indices("Run ")
            .filter_map(|(at, _)| {
                let rest = &last[at + 4..];
                let digits: String = rest.chars().take_while(|c| c.is_ascii_digit()).collect();
                rest[digits.len()..]
                    .starts_with(" completed")
                    .then(|| digits.parse::<u32>().ok())?
            })
            .max();
        let next = done.map_or(1, |d| d + 1);
        if next > self.runs {
            return (
                "experiment",
                padded(s.experiment, "The planned runs are done.", "ALL_COMPLETED"),
            );
        }
        let mut edits = String::new();
        if next > 1 {
            edits.push_str(&append("notes.txt", notes, &record(next - 1)));
            edits.push('\n');
        }
        edits.push_str(&append(
            "experiment.py",
            code,
            &format!("# variant for run {next}"),
        ));
        (
            "experiment",
            padded(s.experiment, &format!("The change for run {next}."), &edits),
        )
    }

    fn writeup(&self, last: &str) -> (&'static str, String) {
        let s = &self.sizes;
        let tex = last
            .find("```latex\n")
            .map(|i| {
                let body = &last[i + 9..];
                &body[..body.find("\n```").unwrap_or(body.len())]
            })
            .unwrap_or("");
        if let Some(at) = last.find("Write the part \"") {
            let rest = &last[at + 16..];
            let part = &rest[..rest.find('"').unwrap_or(0)];
            let mut edits = String::new();
            for ph in placeholders(part).iter().filter(|p| tex.contains(*p)) {
                // A SEARCH names whole lines.
                let Some(line) = tex.lines().find(|l| l.contains(*ph)) else {
                    continue;
                };
                let text = if *ph == "TITLE HERE" {
                    line.replace(ph, "How Hidden Width Shapes Tiny Networks")
                } else {
                    line.replace(
                        ph,
                        &prose(
                            &ph.replace(" HERE", "").to_lowercase(),
                            s.write_part.saturating_sub(600),
                        ),
                    )
                };
                edits.push_str(&format!(
                    "{TEX}\n<<<<<<< SEARCH\n{line}\n=======\n{text}\n>>>>>>> REPLACE\n\n"
                ));
            }
            return (
                "writeup: parts",
                padded(s.write_part, "Writing the part.", &edits),
            );
        }
        if last.contains("search queries as JSON") {
            let tail = format!("```json\n{{\"Queries\": {}}}\n```\n", self.queries());
            return (
                "writeup: citations",
                padded(v1_sizes::CITE_QUERY, "More related papers.", &tail),
            );
        }
        if last.contains("Pick the papers to cite") {
            // The first listed paper not yet in the bibliography, cited on a Related Work line.
            let mut key = None;
            let mut index = 0;
            for (i, chunk) in last.split("\n   key: ").skip(1).enumerate() {
                let line = chunk.lines().next().unwrap_or("");
                if !line.contains("already in the bibliography") {
                    key = Some(line.trim().to_string());
                    index = i + 1;
                    break;
                }
            }
            let line = tex
                .lines()
                .find(|l| l.starts_with("In the related work part") && tex.matches(*l).count() == 1);
            let (Some(key), Some(line)) = (key, line) else {
                return (
                    "writeup: citations",
                    padded(s.cite_edit, "None fits.", "```json\n{\"Selected\": []}\n```\n"),
                );
            };
            // The next queries, where the prompt asks for them.
            let next = if last.contains("search(es) left") {
                format!(", \"Queries\": {}", self.queries())
            } else {
                String::new()
            };
            let tail = format!(
                "```json\n{{\"Selected\": [{index}]{next}}}\n```\n\n{TEX}\n<<<<<<< SEARCH\n{line}\n=======\n{line} \\citep{{{key}}}\n>>>>>>> REPLACE\n"
            );
            return (
                "writeup: citations",
                padded(s.cite_edit, "Citing it in Related Work.", &tail),
            );
        }
        if last.contains("Read the whole paper once more") {
            return (
                "writeup: refinement",
                padded(s.refine, "The paper reads well.", "No changes needed"),
            );
        }
        if last.contains("Checking and building the paper") {
            // What the bench can fix: figures plot.py did not make (no matplotlib) are
            // taken out; anything else is reported and left.
            let mut edits = String::new();
            let mut fixed: Vec<&str> = Vec::new();
            for problem in last.lines().filter(|l| l.contains("[missing-figure]")) {
                let Some(name) = problem.split('"').nth(1) else {
                    continue;
                };
                let Some(line) = tex.lines().find(|l| l.contains(&format!("{{{name}}}"))) else {
                    continue;
                };
                if fixed.contains(&line) || tex.matches(line).count() != 1 {
                    continue;
                }
                fixed.push(line);
                edits.push_str(&format!("{TEX}\n<<<<<<< SEARCH\n{line}\n=======\n% (figure {name} was not made)\n>>>>>>> REPLACE\n\n"));
            }
            if edits.is_empty() {
                let at = last.find("found these problems").unwrap_or(0);
                eprintln!(
                    "cost bench: problems the fake cannot fix: {}",
                    last[at..].lines().take(6).collect::<Vec<_>>().join(" | ")
                );
                edits.push_str("No changes needed");
            }
            return (
                "writeup: fixes",
                padded(s.fix, "Fixing what the build found.", &edits),
            );
        }
        eprintln!("cost bench: writeup request not understood: {}", tail(last, 600));
        ("writeup: other", "No changes needed".to_string())
    }
}
