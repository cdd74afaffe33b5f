//! End to end in a real editor: headless Neovim with the plugin in `editors/nvim` starts
//! `aisci lsp`, which talks to an in-process fake of the OpenAI API that answers with the
//! texts of the demo recording (`templates/tiny_mlp/.aisci/replay/ideas.json`).
//!
//! The editor side is `tests/nvim/generate_ideas.lua`: it drives Neovim, records what the
//! server sent (`$/progress`, `window/showMessage`, `window/showDocument`,
//! `textDocument/publishDiagnostics`) and writes a JSON report that is checked here.
//!
//! Neovim is found as `$AISCI_NVIM`, else `.venv/bin/nvim` at the repository root, else
//! `nvim` on PATH. `scripts/test` installs it; without it these tests fail, they never skip.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{json, Value};

use crate::support::fake_llm::{FakeLlm, Reply};
use crate::support::fs::{copy_tiny_mlp, tiny_mlp};
use crate::support::nvim::{self, plugin_dir, server_bin, Finished, NvimRun};

const KEY: &str = "sk-nvim-e2e-0123456789";

/// The recorded model answers of the demo, in order.
fn recorded_texts() -> Vec<(String, Value)> {
    let path = tiny_mlp().join(".aisci/replay/ideas.json");
    let rec: Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    rec["exchanges"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            (
                e["response"]["text"].as_str().unwrap().to_owned(),
                e["response"]["usage"].clone(),
            )
        })
        .collect()
}

/// The last `"Name": "..."` in a recorded answer.
fn name_in(text: &str) -> String {
    let at = text.rfind("\"Name\": \"").expect("a Name in the recorded answer") + 9;
    text[at..].split('"').next().unwrap().to_owned()
}

/// An OpenAI chat completion carrying `text`, with the recording's token counts.
fn completion(i: usize, text: &str, usage: &Value) -> Reply {
    let input = usage["input_tokens"].as_u64().unwrap();
    let output = usage["output_tokens"].as_u64().unwrap();
    Reply::json(
        200,
        json!({
            "id": format!("chatcmpl-nvim-e2e-{i}"),
            "object": "chat.completion",
            "created": 1771550850,
            "model": "gpt-4o-2024-11-20",
            "choices": [{
                "index": 0,
                "message": {"role": "assistant", "content": text, "refusal": null},
                "logprobs": null,
                "finish_reason": "stop"
            }],
            "usage": {
                "prompt_tokens": input,
                "completion_tokens": output,
                "total_tokens": input + output,
                "prompt_tokens_details": {"cached_tokens": 0}
            }
        })
        .to_string(),
    )
}

/// A copy of the demo template under `tmp`, without an `ideas.json`.
fn template_copy(tmp: &Path) -> PathBuf {
    let dir = tmp.join("tiny_mlp");
    copy_tiny_mlp(&dir);
    let _ = std::fs::remove_file(dir.join("ideas.json"));
    dir.canonicalize().unwrap()
}

/// Runs the Lua script in `mode` against `template`, with the server pointed at `fake`.
async fn run_nvim(mode: &str, tmp: &Path, template: &Path, fake: &FakeLlm) -> Finished {
    let report_path = tmp.join(format!("report-{mode}.json"));
    let settings = json!({
        "llm": {
            "provider": "openai",
            "base_url": fake.v1(),
            "model": "gpt-4o-2024-11-20",
            "stream": false,
            "max_retries": 0,
        },
        "ideas": {"num_ideas": 2, "num_reflections": 3},
    });
    NvimRun {
        script: "generate_ideas.lua",
        args: vec![
            mode.into(),
            plugin_dir().into(),
            server_bin().into(),
            template.into(),
            report_path.clone().into(),
            settings.to_string().into(),
        ],
        dir: tmp,
        report: &report_path,
        who: format!("Neovim ({mode})"),
        name: format!("nvim {mode}"),
        // The key reaches the server only through the editor's environment.
        env: vec![("OPENAI_API_KEY", KEY.into())],
        env_remove: &[],
    }
    .run()
    .await
}

fn progress_of<'a>(report: &'a Value, kind: &str) -> Vec<&'a Value> {
    nvim::progress_of(report, report["token"].as_str().unwrap(), kind)
}

fn names(ideas: &Value) -> Vec<&str> {
    ideas
        .as_array()
        .unwrap()
        .iter()
        .map(|i| i["Name"].as_str().unwrap())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_generates_ideas_through_the_plugin() {
    let recorded = recorded_texts();
    assert_eq!(recorded.len(), 5, "the demo recording changed; update this test");
    let script = recorded
        .iter()
        .enumerate()
        .map(|(i, (text, usage))| completion(i, text, usage))
        .collect();
    let fake = FakeLlm::start(script).await;
    let tmp = tempfile::tempdir().unwrap();
    let template = template_copy(tmp.path());

    let Finished { report, wall } = run_nvim("generate", tmp.path(), &template, &fake).await;
    let r = &report;

    // The plugin found the template and attached the server to experiment.py.
    assert_eq!(r["root_dir"], template.display().to_string(), "{r:#}");
    assert_eq!(r["filetype"], "python");
    let actions = r["code_actions"].as_array().unwrap();
    assert!(
        actions.iter().any(|a| a["title"]
            .as_str()
            .is_some_and(|t| t.starts_with("Generate ideas (~"))
            && a["command"]["command"] == "aisci.generateIdeas"),
        "{actions:#?}"
    );

    // ideas.json: the seeds, then one idea per conversation, named as in the recording
    // (the last JSON of each conversation wins).
    let ideas: Value =
        serde_json::from_str(&std::fs::read_to_string(template.join("ideas.json")).unwrap()).unwrap();
    let seeds: Value =
        serde_json::from_str(&std::fs::read_to_string(template.join("seed_ideas.json")).unwrap()).unwrap();
    let mut expected: Vec<String> = names(&seeds).into_iter().map(str::to_owned).collect();
    expected.push(name_in(&recorded[2].0));
    expected.push(name_in(&recorded[4].0));
    assert_eq!(
        expected[2..],
        [
            "edge_of_stability_tiny_mlp".to_string(),
            "margin_curriculum".to_string()
        ]
    );
    assert_eq!(names(&ideas), expected);

    // Progress: begin, reports naming each idea, end.
    let begin = progress_of(r, "begin");
    assert_eq!(begin.len(), 1, "{r:#}");
    assert_eq!(begin[0]["title"], "Generate ideas");
    let reports: Vec<&str> = progress_of(r, "report")
        .iter()
        .map(|p| p["message"].as_str().unwrap_or(""))
        .collect();
    for idea in 1..=2 {
        assert!(
            reports.iter().any(|m| m.starts_with(&format!("Idea {idea}/2"))),
            "no report for idea {idea}: {reports:#?}"
        );
    }
    let end = progress_of(r, "end");
    assert_eq!(end.len(), 1, "{r:#}");
    let end_message = end[0]["message"].as_str().unwrap();
    assert!(end_message.contains("2 new idea(s)"), "{end_message}");

    // The summary message with tokens and cost.
    let messages: Vec<&str> = r["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["message"].as_str().unwrap())
        .collect();
    // Only the summary: no settings warnings or errors on the way.
    assert_eq!(messages.len(), 1, "{messages:#?}");
    assert_eq!(r["messages"][0]["type"], 3, "an Info message expected");
    assert!(
        messages
            .iter()
            .any(|m| m.contains("5 model call(s)") && m.contains("tokens") && m.contains('$')),
        "{messages:#?}"
    );
    let input_tokens: u64 = recorded
        .iter()
        .map(|(_, u)| u["input_tokens"].as_u64().unwrap())
        .sum();
    let grouped = format!("{},{:03}", input_tokens / 1000, input_tokens % 1000);
    assert!(
        messages.iter().any(|m| m.contains(&format!("{grouped} input"))),
        "{grouped} input tokens expected in {messages:#?}"
    );

    // showDocument of ideas.json, which Neovim then opened.
    let shown = r["show_document"].as_array().unwrap();
    assert_eq!(shown.len(), 1, "{shown:#?}");
    let ideas_uri = format!("file://{}", template.join("ideas.json").display());
    assert_eq!(shown[0]["uri"], ideas_uri);
    assert_eq!(
        r["current_buffer_after_show"],
        template.join("ideas.json").display().to_string()
    );

    // The fake server: five chat completions (3 rounds for idea 1, 2 for idea 2 which
    // says "I am done"), each with the key from the editor's environment.
    let seen = fake.seen();
    assert_eq!(seen.len(), 5, "{seen:#?}");
    for s in &seen {
        assert_eq!(s.path, "/v1/chat/completions");
        assert_eq!(
            s.headers.get("authorization").map(String::as_str),
            Some(format!("Bearer {KEY}").as_str())
        );
        assert_eq!(s.body["model"], "gpt-4o-2024-11-20");
    }
    // Idea 2's first prompt already lists idea 1 in its archive.
    let first_prompt_of_idea_2 = seen[3].body["messages"].to_string();
    assert!(first_prompt_of_idea_2.contains("edge_of_stability_tiny_mlp"));

    // The broken prompt.json buffer got its diagnostic on the "system" line (line 2).
    let prompt_uri = r["prompt_uri"].as_str().unwrap();
    let last = r["diagnostics"]
        .as_array()
        .unwrap()
        .iter()
        .rev()
        .find(|d| d["uri"] == prompt_uri)
        .expect("diagnostics for prompt.json");
    let diags = last["diagnostics"].as_array().unwrap();
    let system = diags
        .iter()
        .find(|d| {
            d["message"]
                .as_str()
                .unwrap()
                .contains("\"system\" must be a string")
        })
        .unwrap_or_else(|| panic!("{diags:#?}"));
    assert_eq!(system["range"]["start"]["line"], 1);
    assert_eq!(system["range"]["start"]["character"], 14);
    assert_eq!(system["severity"], 1);
    let in_nvim = r["nvim_diagnostics"].as_array().unwrap();
    assert!(
        in_nvim.iter().any(|d| d["lnum"] == 1 && d["col"] == 14),
        "{in_nvim:#?}"
    );
    // The buffer was broken, not the file.
    let on_disk: Value =
        serde_json::from_str(&std::fs::read_to_string(template.join("prompt.json")).unwrap()).unwrap();
    assert!(on_disk["system"].is_string());

    assert_eq!(r["server_stopped"], true);
    assert!(wall < Duration::from_secs(15), "took {wall:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn neovim_cancels_a_running_idea_job() {
    const DELAY: Duration = Duration::from_secs(2);
    let script = recorded_texts()
        .iter()
        .enumerate()
        .map(|(i, (text, usage))| completion(i, text, usage).delayed(DELAY))
        .collect();
    let fake = FakeLlm::start(script).await;
    let tmp = tempfile::tempdir().unwrap();
    let template = template_copy(tmp.path());

    let Finished { report, wall } = run_nvim("cancel", tmp.path(), &template, &fake).await;
    let r = &report;

    let cancels = r["cancels"].as_array().unwrap();
    assert_eq!(cancels.len(), 2, "{r:#}");
    for c in cancels {
        let (token, via) = (c["token"].as_str().unwrap(), &c["via"]);
        let of_kind = |kind: &str| nvim::progress_of(r, token, kind);
        let (begin, end) = (of_kind("begin"), of_kind("end"));
        assert_eq!((begin.len(), end.len()), (1, 1), "{via}: {r:#}");
        // The job was waiting on a 2 s answer; it must not wait it out.
        let took = end[0]["at_ms"].as_f64().unwrap() - c["sent_ms"].as_f64().unwrap();
        assert!(
            took < 1000.0,
            "{via}: progress ended {took:.0} ms after the cancel"
        );
        let end_message = end[0]["message"].as_str().unwrap();
        assert!(end_message.contains("cancelled"), "{via}: {end_message}");
        assert!(end_message.contains("0 new idea(s)"), "{via}: {end_message}");
    }
    assert_ne!(cancels[0]["token"], cancels[1]["token"]);

    // One call per job went out (it was still in flight when cancelled). On a very slow
    // machine the cancel may come before the call is made, hence at most.
    assert!(fake.hits() <= 2, "{:#?}", fake.seen());
    assert!(r["show_document"].as_array().unwrap().is_empty());
    // Two summaries (warnings: no idea came out), nothing else.
    let messages = r["messages"].as_array().unwrap();
    assert_eq!(messages.len(), 2, "{messages:#?}");
    assert!(
        messages
            .iter()
            .all(|m| m["type"] == 2 && m["message"].as_str().unwrap().contains("cancelled")),
        "{messages:#?}"
    );

    // ideas.json is absent or still a valid archive.
    match std::fs::read_to_string(template.join("ideas.json")) {
        Err(e) => assert_eq!(e.kind(), std::io::ErrorKind::NotFound),
        Ok(text) => {
            let v: Value = serde_json::from_str(&text).expect("ideas.json is valid JSON");
            assert!(v.is_array());
        }
    }
    assert!(
        wall < Duration::from_secs(8),
        "took {wall:?}; the delays were not cut short"
    );
}
