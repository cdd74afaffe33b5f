//! How `ideas.json` looks in the editor: a code lens and a hover per idea.

use std::path::Path;

use serde_json::{json, Value};
use tower_lsp::lsp_types::*;

use crate::lsp::backend::Backend;
use crate::lsp::commands;
use crate::lsp::convert;
use crate::stages::estimate::{self, Stage};

fn field<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).unwrap_or(&Value::Null)
}

fn score(v: &Value, key: &str) -> String {
    match field(v, key) {
        Value::Null => "?".into(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// The novelty check's evidence, when the idea has been checked (`novelty` key).
fn evidence(v: &Value) -> Option<&serde_json::Map<String, Value>> {
    v.get("novelty").and_then(Value::as_object)
}

fn closest_titles(v: &Value) -> Vec<(String, Option<i64>, Option<String>)> {
    evidence(v)
        .and_then(|e| e.get("closest"))
        .and_then(Value::as_array)
        .map(|papers| {
            papers
                .iter()
                .map(|p| {
                    (
                        p.get("title")
                            .and_then(Value::as_str)
                            .unwrap_or("(untitled)")
                            .to_owned(),
                        p.get("year").and_then(Value::as_i64),
                        p.get("url").and_then(Value::as_str).map(str::to_owned),
                    )
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The novelty lens: the verdict when checked, else None (the caller offers the check).
pub fn novelty_lens_title(v: &Value) -> Option<String> {
    let novel = v.get("novel")?.as_bool()?;
    let ev = evidence(v);
    let queries = ev
        .and_then(|e| e.get("queries"))
        .and_then(Value::as_array)
        .map(|q| q.len());
    let papers = ev.and_then(|e| e.get("papers_seen")).and_then(Value::as_u64);
    if novel {
        Some(match (queries, papers) {
            (Some(q), Some(p)) => format!("novel ✓ ({q} queries, {p} papers)"),
            (Some(q), None) => format!("novel ✓ ({q} queries)"),
            _ => "novel ✓".into(),
        })
    } else {
        Some(match closest_titles(v).first() {
            Some((title, _, _)) => format!("not novel — {title}"),
            None => "not novel".into(),
        })
    }
}

fn novelty_verdict(v: &Value) -> &'static str {
    match field(v, "novel") {
        Value::Bool(true) => " · novel",
        Value::Bool(false) => " · not novel",
        _ => "",
    }
}

/// The short line a code lens shows above an idea.
pub fn lens_title(v: &Value) -> String {
    format!(
        "Interestingness {} · Feasibility {} · Novelty {}{}",
        score(v, "Interestingness"),
        score(v, "Feasibility"),
        score(v, "Novelty"),
        novelty_verdict(v)
    )
}

/// Markdown for hovering an idea.
pub fn hover_markdown(v: &Value) -> String {
    let text = |k: &str| field(v, k).as_str().unwrap_or("").to_owned();
    let mut out = format!(
        "**{}**\n\n`{}`{}\n\n",
        text("Title"),
        text("Name"),
        novelty_verdict(v)
    );
    out.push_str(&format!(
        "| Interestingness | Feasibility | Novelty |\n|:-:|:-:|:-:|\n| {} / 10 | {} / 10 | {} / 10 |\n\n",
        score(v, "Interestingness"),
        score(v, "Feasibility"),
        score(v, "Novelty")
    ));
    let exp = text("Experiment");
    if !exp.is_empty() {
        out.push_str(&format!("**Experiment.** {exp}\n"));
    }
    if let Some(ev) = evidence(v) {
        if let Some(reason) = ev.get("reason").and_then(Value::as_str).filter(|r| !r.is_empty()) {
            out.push_str(&format!("\n**Novelty.** {reason}\n"));
        }
        let closest = closest_titles(v);
        if !closest.is_empty() {
            out.push_str("\n**Closest papers**\n\n");
            for (title, year, url) in closest {
                let year = year.map(|y| format!(" ({y})")).unwrap_or_default();
                match url {
                    Some(u) => out.push_str(&format!("- [{title}]({u}){year}\n")),
                    None => out.push_str(&format!("- {title}{year}\n")),
                }
            }
        }
        if let Some(q) = ev
            .get("queries")
            .and_then(Value::as_array)
            .filter(|q| !q.is_empty())
        {
            let qs: Vec<String> = q
                .iter()
                .filter_map(Value::as_str)
                .map(|s| format!("`{s}`"))
                .collect();
            out.push_str(&format!("\nSearched: {}\n", qs.join(", ")));
        }
    }
    if let Some(s) = v.get("Score") {
        out.push_str(&format!("\n**Review score:** {s}\n"));
    }
    out
}

/// Plain text of an idea, for a message window.
pub fn plain_summary(v: &Value) -> String {
    let text = |k: &str| field(v, k).as_str().unwrap_or("").to_owned();
    format!(
        "{} ({}): {}. {}",
        text("Title"),
        text("Name"),
        lens_title(v),
        text("Experiment")
    )
}

/// The lenses of an `ideas.json`: check novelty (all, or one idea), each idea's summary
/// and verdict, implement.
pub fn lenses(b: &Backend, path: &Path) -> Option<Vec<CodeLens>> {
    let (rope, entries) = b.state.ideas_of(path)?;
    let enc = b.state.encoding();
    let template = path.parent().map(|p| p.to_path_buf()).unwrap_or_default();
    let running = b
        .state
        .jobs
        .list()
        .into_iter()
        .find(|j| j.title == crate::stages::novelty::TITLE && j.target == template.display().to_string());
    let top = Range::new(Position::new(0, 0), Position::new(0, 0));
    let mut lenses = vec![CodeLens {
        range: top,
        command: Some(match &running {
            Some(job) => Command {
                title: format!("{}… (cancel)", job.title),
                command: commands::CANCEL.into(),
                arguments: Some(vec![json!(job.id)]),
            },
            None => Command {
                title: {
                    let unchecked = entries
                        .iter()
                        .filter(|e| e.value.get("novel").and_then(Value::as_bool).is_none())
                        .count() as u64;
                    let all = "Check novelty of all unchecked ideas";
                    if unchecked == 0 {
                        all.to_string()
                    } else {
                        let each = crate::lsp::views::cost_of(b, &template, Stage::Novelty);
                        format!(
                            "{all} ({})",
                            estimate::short(&estimate::stages_of(each, unchecked))
                        )
                    }
                },
                command: commands::CHECK_NOVELTY.into(),
                arguments: Some(vec![json!({ "template": template })]),
            },
        }),
        data: None,
    }];
    for e in entries.iter() {
        let at = convert::byte_range(&rope, Some((e.start, e.start)), enc);
        lenses.push(CodeLens {
            range: at,
            command: Some(Command {
                title: lens_title(&e.value),
                command: commands::SHOW_IDEA.into(),
                arguments: Some(vec![json!({ "file": path, "index": e.index })]),
            }),
            data: None,
        });
        let name = e.value.get("Name").and_then(Value::as_str);
        let novelty = match (novelty_lens_title(&e.value), name) {
            (Some(verdict), _) => Command {
                title: verdict,
                command: commands::SHOW_IDEA.into(),
                arguments: Some(vec![json!({ "file": path, "index": e.index })]),
            },
            (None, Some(name)) if running.is_none() => Command {
                title: crate::lsp::views::with_cost(b, "Check novelty", &template, Stage::Novelty),
                command: commands::CHECK_NOVELTY.into(),
                arguments: Some(vec![json!({ "template": template, "ideas": [name] })]),
            },
            _ => continue,
        };
        lenses.push(CodeLens {
            range: at,
            command: Some(novelty),
            data: None,
        });
        // v1 implements only novel ideas; here any idea not judged "not novel" may be.
        if let Some(name) = name.filter(|_| e.value.get("novel") != Some(&Value::Bool(false))) {
            lenses.push(CodeLens {
                range: at,
                command: Some(Command {
                    title: crate::lsp::views::with_cost(b, "Implement idea", &template, Stage::Experiment),
                    command: commands::IMPLEMENT_IDEA.into(),
                    arguments: Some(vec![json!({ "template": template, "idea": name })]),
                }),
                data: None,
            });
        }
    }
    Some(lenses)
}

/// The hover on an idea of an `ideas.json`: the idea in Markdown.
pub fn hover(b: &Backend, path: &Path, position: Position) -> Option<Hover> {
    let (rope, entries) = b.state.ideas_of(path)?;
    let enc = b.state.encoding();
    let char_idx = crate::workspace::position::to_char(&rope, convert::pos_from(position), enc);
    let byte = rope.char_to_byte(char_idx);
    let entry = entries.iter().find(|e| e.start <= byte && byte < e.end)?;
    Some(Hover {
        contents: HoverContents::Markup(MarkupContent {
            kind: MarkupKind::Markdown,
            value: hover_markdown(&entry.value),
        }),
        range: Some(convert::byte_range(&rope, Some((entry.start, entry.end)), enc)),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::project::idea_entries::entries;

    #[test]
    fn entries_with_spans_and_titles() {
        let text = r#"[
    {"Name": "a_b", "Title": "T1", "Experiment": "E", "Interestingness": 8, "Feasibility": 7, "Novelty": 6},
    {"Name": "c", "Title": "T2", "novel": false}
]"#;
        let e = entries(text);
        assert_eq!(e.len(), 2);
        assert!(text[e[1].start..e[1].end].starts_with("{\"Name\": \"c\""));
        assert_eq!(
            lens_title(&e[0].value),
            "Interestingness 8 · Feasibility 7 · Novelty 6"
        );
        assert!(lens_title(&e[1].value).ends_with("· not novel"));
        let md = hover_markdown(&e[0].value);
        assert!(md.starts_with("**T1**"), "{md}");
        assert!(md.contains("| 8 / 10 | 7 / 10 | 6 / 10 |"));
        assert!(entries("{not json").is_empty());
        assert_eq!(novelty_lens_title(&e[0].value), None);
        assert_eq!(novelty_lens_title(&e[1].value).as_deref(), Some("not novel"));
    }

    #[test]
    fn novelty_evidence_in_lens_and_hover() {
        let v: Value = serde_json::from_str(
            r#"{"Name": "n", "Title": "T", "novel": false, "novelty": {
                "queries": ["a b", "c d"], "papers_seen": 20, "reason": "Already done by X.",
                "closest": [{"id": "1", "title": "Prior Work", "year": 2021, "url": "https://example.org/p", "engine": "openalex"}]}}"#,
        )
        .unwrap();
        assert_eq!(novelty_lens_title(&v).as_deref(), Some("not novel — Prior Work"));
        let md = hover_markdown(&v);
        assert!(
            md.contains("- [Prior Work](https://example.org/p) (2021)"),
            "{md}"
        );
        assert!(md.contains("Already done by X."), "{md}");
        assert!(md.contains("`a b`, `c d`"), "{md}");
        let mut ok = v.clone();
        ok["novel"] = Value::Bool(true);
        assert_eq!(
            novelty_lens_title(&ok).as_deref(),
            Some("novel ✓ (2 queries, 20 papers)")
        );
    }
}
