//! "Check novelty" through the protocol, against a fake OpenAI-style model and a fake
//! Semantic Scholar / OpenAlex (`tests/fixtures/literature/`): code lenses, the job's
//! progress and summary, the evidence written to ideas.json, hover, engine fallback
//! under a 429 storm, a spent OpenAlex budget, the disk cache, cancellation and the
//! errors that must come before any work. Hermetic: every literature cache lives in
//! the test's temporary folder.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::support::fake_lit::{self, FakeLit, Route};
use crate::support::fake_llm::{self, FakeLlm};
use crate::support::fs::copy_tiny_mlp;
use crate::support::lsp_client::{file_uri, TestClient};

const IDEA_A: &str = "learning_rate_warmup";
const IDEA_B: &str = "init_scale_regimes";
const IDEA_C: &str = "edge_of_stability_tiny_mlp";
/// Titles in `paper_search_response.json`, in its order.
const S2_TITLES: [&str; 3] = [
    "Augmenting large language models with chemistry tools",
    "PaperQA: Retrieval-Augmented Generative Agent for Scientific Research",
    "Effect of native oxide layers on copper thin-film tensile properties: A reactive molecular dynamics study",
];
const PAPERQA_ID: &str = "7e55d8701785818776323b4147cb13354c820469";

/// A copy of tiny_mlp whose ideas.json holds the two seeds (unchecked) and one
/// generated idea that v1 already judged (`novel: false`, no evidence).
fn template_with_ideas(dir: &Path) -> PathBuf {
    let t = dir.join("tiny_mlp");
    copy_tiny_mlp(&t);
    let mut ideas: Vec<Value> =
        serde_json::from_str(&std::fs::read_to_string(t.join("seed_ideas.json")).unwrap()).unwrap();
    assert_eq!(ideas[0]["Name"], IDEA_A);
    assert_eq!(ideas[1]["Name"], IDEA_B);
    ideas.push(json!({
        "Name": IDEA_C,
        "Title": "Edge of Stability in a Tiny MLP",
        "Experiment": "Track the top Hessian eigenvalue during SGD for several learning rates.",
        "Interestingness": 8,
        "Feasibility": 8,
        "Novelty": 6,
        "novel": false
    }));
    std::fs::write(t.join("ideas.json"), aisci::project::ideas_to_json(&ideas)).unwrap();
    t.canonicalize().unwrap()
}

fn caps() -> Value {
    json!({
        "window": { "workDoneProgress": true, "showDocument": { "support": true } },
        "workspace": { "codeLens": { "refreshSupport": true } }
    })
}

/// An OpenAI chat completion carrying `text` (1000 input + 100 output tokens).
fn completion(text: &str) -> fake_llm::Reply {
    fake_llm::Reply::chat_completion("chatcmpl-novelty", text, 1000, 100)
}

fn query(q: &str) -> fake_llm::Reply {
    completion(&format!(
        "THOUGHT:\nI should look for prior work first.\n\nRESPONSE:\n```json\n{{\"Query\": \"{q}\"}}\n```"
    ))
}

fn decide(verdict: &str, reason: &str, closest: &[u32]) -> fake_llm::Reply {
    completion(&format!(
        "THOUGHT:\nI have seen enough.\nDecision made: {verdict}.\n\nRESPONSE:\n```json\n{}\n```",
        json!({ "Reason": reason, "Closest": closest })
    ))
}

const Q_A1: &str = "learning rate warmup small networks";
const Q_A2: &str = "warmup versus constant SGD tiny MLP";
const Q_B1: &str = "lazy rich regime initialisation scale";
const REASON_A: &str = "No paper studies warmup on tiny 2-D MLPs.";
const REASON_B: &str = "Paper 2 already studies this question.";

/// A: two queries, then novel (closest: none named). B: one query, then not novel,
/// naming paper 2.
fn script_a_novel_b_not() -> Vec<fake_llm::Reply> {
    vec![
        query(Q_A1),
        query(Q_A2),
        decide("novel", REASON_A, &[]),
        query(Q_B1),
        decide("not novel", REASON_B, &[2]),
    ]
}

/// Editor settings: the fake model (priced, so the summary has a real cost), the
/// fake engines with no proactive spacing, the cache in `cache`.
fn options(llm: &FakeLlm, lit: &FakeLit, cache: &Path, literature: Value) -> Value {
    let mut lit_settings = json!({
        "engines": ["semanticscholar"],
        "s2_url": lit.s2_url(),
        "openalex_url": lit.openalex_url(),
        "arxiv_url": lit.arxiv_url(),
        "s2_rate_per_sec": 100.0,
        "s2_rate_per_sec_no_key": 100.0,
        "openalex_rate_per_sec": 100.0,
        "max_retries": 0,
        "max_retry_secs": 5,
        "request_timeout_secs": 5,
        "cache_dir": cache,
    });
    for (k, v) in literature.as_object().unwrap() {
        lit_settings[k] = v.clone();
    }
    json!({
        "llm": {
            "provider": "vllm", "base_url": llm.v1(), "model": "local-model", "stream": false,
            "max_retries": 0,
            "prices": { "local-model": { "input": 2.5, "output": 10.0 } }
        },
        "literature": lit_settings,
        "novelty": { "max_rounds": 5, "results_per_query": 10, "evidence_papers": 3 }
    })
}

fn read_ideas(t: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(t.join("ideas.json")).unwrap();
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("ideas.json is not valid JSON ({e}):\n{text}"))
}

fn idea<'a>(ideas: &'a [Value], name: &str) -> &'a Value {
    ideas.iter().find(|i| i["Name"] == name).unwrap()
}

fn progress_of(c: &TestClient, token: &str, kind: &str) -> Vec<Value> {
    c.messages("$/progress")
        .into_iter()
        .filter(|m| m["params"]["token"] == token && m["params"]["value"]["kind"] == kind)
        .map(|m| m["params"]["value"].clone())
        .collect()
}

fn shown_messages(c: &TestClient) -> Vec<(i64, String)> {
    c.messages("window/showMessage")
        .iter()
        .map(|m| {
            (
                m["params"]["type"].as_i64().unwrap(),
                m["params"]["message"].as_str().unwrap().to_owned(),
            )
        })
        .collect()
}

async fn lenses(c: &TestClient, path: &Path) -> Vec<Value> {
    let r = c
        .request(
            "textDocument/codeLens",
            json!({ "textDocument": { "uri": file_uri(path) } }),
        )
        .await;
    r.as_array().cloned().unwrap_or_default()
}

/// The title of the novelty lens of the idea whose entry starts on `line`.
/// The novelty lens of the idea on `line`: the second lens there (after the scores;
/// an "Implement idea" lens may follow).
fn novelty_lens(lenses: &[Value], line: u64) -> Value {
    let on_line: Vec<&Value> = lenses
        .iter()
        .filter(|l| l["range"]["start"]["line"] == line)
        .collect();
    assert!(
        (2..=3).contains(&on_line.len()),
        "scores + novelty (+ implement) lenses on line {line}: {lenses:#?}"
    );
    on_line[1]["command"].clone()
}

/// The line on which idea `name`'s object starts in `text`.
fn line_of_idea(text: &str, name: &str) -> u64 {
    let at = text.find(&format!("\"Name\": \"{name}\"")).unwrap();
    let obj = text[..at].rfind('{').unwrap();
    text[..obj].matches('\n').count() as u64
}

/// Sends the file's disk content as the buffer's new text, as an editor does when it
/// reloads a file changed on disk.
async fn reload(c: &TestClient, path: &Path, version: i64) -> String {
    let text = std::fs::read_to_string(path).unwrap();
    c.notify(
        "textDocument/didChange",
        json!({
            "textDocument": { "uri": file_uri(path), "version": version },
            "contentChanges": [{ "text": text }]
        }),
    )
    .await;
    text
}

async fn wait_end(c: &TestClient, token: &str, secs: u64) -> Value {
    let m = c
        .wait_for(&format!("progress end of {token}"), secs, |m| {
            m["params"]["token"] == token && m["params"]["value"]["kind"] == "end"
        })
        .await;
    m["params"]["value"].clone()
}

async fn wait_summary(c: &TestClient, secs: u64) -> (i64, String) {
    let m = c
        .wait_for("summary message", secs, |m| {
            m["method"] == "window/showMessage"
                && m["params"]["message"]
                    .as_str()
                    .unwrap_or("")
                    .contains("model call(s)")
        })
        .await;
    (
        m["params"]["type"].as_i64().unwrap(),
        m["params"]["message"].as_str().unwrap().to_owned(),
    )
}

#[tokio::test]
async fn novelty_top_lens_checks_every_unchecked_idea_with_evidence_lenses_and_hover() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    let ideas_path = t.join("ideas.json");
    let llm = FakeLlm::start(script_a_novel_b_not()).await;
    let lit = FakeLit::start().await;
    let c = TestClient::start(Value::Null);
    c.initialize(caps(), options(&llm, &lit, &dir.path().join("cache"), json!({})))
        .await;
    let text = std::fs::read_to_string(&ideas_path).unwrap();
    c.open(&file_uri(&ideas_path), "json", &text).await;

    // Before: a top lens, and per idea a scores lens plus the novelty lens.
    let before = lenses(&c, &ideas_path).await;
    // Ideas A and B also offer "Implement idea"; C, judged not novel, does not.
    assert_eq!(before.len(), 1 + 3 * 2 + 2, "{before:#?}");
    let top = before[0]["command"].clone();
    // Two ideas are unchecked: the lens says what checking both will cost.
    let all = top["title"].as_str().unwrap();
    assert!(
        all.starts_with("Check novelty of all unchecked ideas (~"),
        "{all}"
    );
    assert_eq!(top["command"], "aisci.checkNovelty");
    let (line_a, line_b, line_c) = (
        line_of_idea(&text, IDEA_A),
        line_of_idea(&text, IDEA_B),
        line_of_idea(&text, IDEA_C),
    );
    for (line, name) in [(line_a, IDEA_A), (line_b, IDEA_B)] {
        let lens = novelty_lens(&before, line);
        let title = lens["title"].as_str().unwrap();
        assert!(title.starts_with("Check novelty (~"), "{name}: {title}");
        assert_eq!(lens["command"], "aisci.checkNovelty");
        assert_eq!(lens["arguments"][0]["ideas"], json!([name]));
        assert_eq!(Path::new(lens["arguments"][0]["template"].as_str().unwrap()), t);
    }
    // v1's verdict without evidence is shown as it is, with no check offered.
    assert_eq!(novelty_lens(&before, line_c)["title"], "not novel");

    // Run what the top lens says.
    let started = Instant::now();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": top["command"], "arguments": top["arguments"] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let end = wait_end(&c, &token, 10).await;
    let (kind, summary) = wait_summary(&c, 5).await;
    let took = started.elapsed();

    // Progress: begin "Check novelty", a report per idea and round, end with the summary.
    let begin = progress_of(&c, &token, "begin");
    assert_eq!(begin.len(), 1);
    assert_eq!(begin[0]["title"], "Check novelty");
    assert_eq!(begin[0]["cancellable"], true);
    let reports: Vec<String> = progress_of(&c, &token, "report")
        .iter()
        .map(|v| v["message"].as_str().unwrap().to_owned())
        .collect();
    for want in [
        format!("Novelty 1/2: {IDEA_A}, round 1/5"),
        format!("Novelty 1/2: {IDEA_A}, round 3/5"),
        format!("Novelty 2/2: {IDEA_B}, round 2/5"),
    ] {
        assert!(reports.contains(&want), "{want} missing from {reports:#?}");
    }
    assert!(
        !reports.iter().any(|m| m.contains(IDEA_C)),
        "the checked idea is skipped: {reports:#?}"
    );
    assert_eq!(
        end["message"].as_str().unwrap(),
        summary.trim_start_matches("aisci: ")
    );

    // The summary: who is novel, what was skipped, what it cost (5 calls, 5,000 + 500
    // tokens at $2.5/$10 per million = $0.0175).
    assert_eq!(kind, 3, "an Info message: {summary}");
    assert!(
        summary.contains(&format!("novelty checked for 2 idea(s): 1 novel ({IDEA_A})")),
        "{summary}"
    );
    assert!(summary.contains("1 already checked, skipped"), "{summary}");
    assert!(
        summary.contains("5 model call(s), 5,000 input (0 cached) + 500 output tokens, $0.0175"),
        "{summary}"
    );
    assert!(summary.contains("local-model via vllm"), "{summary}");
    // Nothing else was said: no warnings, no errors.
    assert_eq!(shown_messages(&c).len(), 1, "{:#?}", shown_messages(&c));

    // ideas.json: verdicts and evidence for A and B; C untouched.
    let after = read_ideas(&t);
    assert_eq!(after.len(), 3);
    let a = idea(&after, IDEA_A);
    assert_eq!(a["novel"], true);
    assert_eq!(a["novelty"]["queries"], json!([Q_A1, Q_A2]));
    assert_eq!(a["novelty"]["reason"], REASON_A);
    assert_eq!(a["novelty"]["decided"], true);
    assert_eq!(a["novelty"]["rounds"], 3);
    assert_eq!(a["novelty"]["papers_seen"], 3, "the same 3 papers both times");
    // No paper named: the last search's top results, capped at evidence_papers.
    let a_titles: Vec<&str> = a["novelty"]["closest"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["title"].as_str().unwrap())
        .collect();
    assert_eq!(a_titles, S2_TITLES);
    let b = idea(&after, IDEA_B);
    assert_eq!(b["novel"], false);
    assert_eq!(b["novelty"]["queries"], json!([Q_B1]));
    assert_eq!(b["novelty"]["reason"], REASON_B);
    assert_eq!(
        b["novelty"]["closest"],
        json!([{
            "id": PAPERQA_ID,
            "title": S2_TITLES[1],
            "year": 2023,
            "url": format!("https://www.semanticscholar.org/paper/{PAPERQA_ID}"),
            "engine": "semanticscholar"
        }])
    );
    chrono::DateTime::parse_from_rfc3339(b["novelty"]["checked"].as_str().unwrap()).unwrap();
    let original: Vec<Value> = serde_json::from_str(&text).unwrap();
    assert_eq!(idea(&after, IDEA_C), &original[2]);
    for (i, name) in [IDEA_A, IDEA_B].iter().enumerate() {
        for k in ["Title", "Experiment", "Interestingness", "Feasibility", "Novelty"] {
            assert_eq!(idea(&after, name)[k], original[i][k], "{name}.{k}");
        }
    }

    // The fakes: 5 model calls, 3 searches (one per query) at S2 with the right
    // parameters, nothing anywhere else. A's second prompt carried the fixture's papers.
    assert_eq!(llm.hits(), 5);
    assert_eq!(lit.hits(Route::S2Search), 3);
    assert_eq!(lit.total_hits(), 3, "{:#?}", lit.seen());
    let queries: Vec<String> = lit.seen().iter().map(|s| s.query["query"].clone()).collect();
    assert_eq!(queries, [Q_A1, Q_A2, Q_B1]);
    assert!(lit.seen().iter().all(|s| s.query["limit"] == "10"));
    let second_prompt = llm.seen()[1].body["messages"].to_string();
    assert!(second_prompt.contains(S2_TITLES[1]), "{second_prompt}");

    // The code lens refresh was asked for, and the lenses, once the editor has the new
    // text, show the verdicts.
    assert!(!c.messages("workspace/codeLens/refresh").is_empty());
    let new_text = reload(&c, &ideas_path, 2).await;
    let after_lenses = lenses(&c, &ideas_path).await;
    let title_a = novelty_lens(&after_lenses, line_of_idea(&new_text, IDEA_A))["title"].clone();
    assert_eq!(title_a, "novel ✓ (2 queries, 3 papers)");
    let title_b = novelty_lens(&after_lenses, line_of_idea(&new_text, IDEA_B))["title"].clone();
    assert_eq!(title_b, format!("not novel — {}", S2_TITLES[1]));
    // Nothing is left unchecked, so there is no cost to show.
    assert_eq!(
        after_lenses[0]["command"]["title"],
        "Check novelty of all unchecked ideas"
    );

    // Hover on B: the verdict, the reason and the closest paper as a markdown link.
    let hover = c
        .request(
            "textDocument/hover",
            json!({
                "textDocument": { "uri": file_uri(&ideas_path) },
                "position": { "line": line_of_idea(&new_text, IDEA_B) + 1, "character": 8 }
            }),
        )
        .await;
    assert_eq!(hover["contents"]["kind"], "markdown");
    let md = hover["contents"]["value"].as_str().unwrap();
    assert!(md.contains(&format!("`{IDEA_B}` · not novel")), "{md}");
    assert!(md.contains(REASON_B), "{md}");
    assert!(
        md.contains(&format!(
            "- [{}](https://www.semanticscholar.org/paper/{PAPERQA_ID}) (2023)",
            S2_TITLES[1]
        )),
        "{md}"
    );
    assert!(md.contains(&format!("`{Q_B1}`")), "{md}");
    assert!(took < Duration::from_secs(5), "took {took:?}");
}

#[tokio::test]
async fn novelty_s2_429_storm_falls_back_to_openalex_and_warns_once() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    let llm = FakeLlm::start(vec![
        query(Q_A1),
        query(Q_A2),
        decide("novel", REASON_A, &[]),
        query(Q_B1),
        decide("not novel", "Paper 1 already does it.", &[1]),
    ])
    .await;
    let lit = FakeLit::start().await;
    lit.set_default(
        Route::S2Search,
        fake_lit::Reply::http_fixture("error_429_too_many_requests.http"),
    );
    let c = TestClient::start(Value::Null);
    let lit_opts = json!({
        "engines": ["semanticscholar", "openalex"],
        "max_retries": 2,
        "max_retry_secs": 1,
        "breaker_failures": 2,
        "breaker_cooldown_secs": 600
    });
    c.initialize(caps(), options(&llm, &lit, &dir.path().join("cache"), lit_opts))
        .await;
    let started = Instant::now();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t }] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    wait_end(&c, &token, 10).await;
    let (kind, summary) = wait_summary(&c, 5).await;
    let took = started.elapsed();
    // Each S2 search gives up after max_retry_secs (1 s); after 2 the breaker skips S2.
    assert!(took < Duration::from_secs(5), "took {took:?}");
    assert_eq!(kind, 3, "{summary}");
    assert!(summary.contains(&format!("1 novel ({IDEA_A})")), "{summary}");

    // One warning, once: S2 is skipped, OpenAlex is used instead.
    let warnings: Vec<String> = shown_messages(&c)
        .into_iter()
        .filter(|(k, _)| *k == 2)
        .map(|(_, m)| m)
        .collect();
    assert_eq!(warnings.len(), 1, "{warnings:#?}");
    let w = &warnings[0];
    assert!(w.contains("semanticscholar is skipped for 10 min"), "{w}");
    assert!(w.contains("rate limiting"), "{w}");
    assert!(w.contains("using openalex instead"), "{w}");

    // S2 was asked for the first two queries only (with at most two retries each);
    // OpenAlex answered all three.
    let s2 = lit.hits(Route::S2Search);
    assert!((2..=6).contains(&s2), "{s2} S2 requests");
    let s2_queries: Vec<String> = lit
        .seen()
        .iter()
        .filter(|s| s.route == Route::S2Search)
        .map(|s| s.query["query"].clone())
        .collect();
    assert!(!s2_queries.contains(&Q_B1.to_string()), "{s2_queries:?}");
    assert_eq!(lit.hits(Route::OpenAlexWorks), 3);

    let after = read_ideas(&t);
    assert_eq!(idea(&after, IDEA_A)["novel"], true);
    let b = idea(&after, IDEA_B);
    assert_eq!(b["novel"], false);
    assert_eq!(
        b["novelty"]["closest"][0]["title"],
        "Augmenting large language models with chemistry tools"
    );
    assert_eq!(b["novelty"]["closest"][0]["engine"], "openalex");
}

#[tokio::test]
async fn novelty_with_openalex_budget_spent_and_s2_down_leaves_ideas_unchecked() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    let before = std::fs::read_to_string(t.join("ideas.json")).unwrap();
    // Enough answers for more than one round per idea: the test checks that none is used.
    let llm = FakeLlm::start(vec![query(Q_A1), query(Q_A2), query(Q_B1), query("spare")]).await;
    let lit = FakeLit::start().await;
    lit.set_default(
        Route::S2Search,
        fake_lit::Reply::json_fixture(500, "error_500_internal.json"),
    );
    lit.set_default(
        Route::OpenAlexWorks,
        fake_lit::Reply::http_fixture("error_429_budget_exhausted.http"),
    );
    let c = TestClient::start(Value::Null);
    let lit_opts = json!({
        "engines": ["semanticscholar", "openalex"],
        "max_retries": 1,
        "max_retry_secs": 1,
        "breaker_failures": 3
    });
    c.initialize(caps(), options(&llm, &lit, &dir.path().join("cache"), lit_opts))
        .await;
    let started = Instant::now();
    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t }] }),
        )
        .await;
    let token = format!("aisci-job-{}", r["job"]);
    let end = wait_end(&c, &token, 10).await;
    let (kind, summary) = wait_summary(&c, 5).await;
    let took = started.elapsed();
    assert!(took < Duration::from_secs(6), "took {took:?}");

    // Nothing decided: a warning naming both ideas as not checked, and why.
    assert_eq!(kind, 2, "a run with no verdict is a warning: {summary}");
    assert!(summary.contains("novelty checked for 0 idea(s)"), "{summary}");
    assert!(summary.contains("not checked"), "{summary}");
    assert!(summary.contains(IDEA_A) && summary.contains(IDEA_B), "{summary}");
    assert!(summary.contains("literature search is unavailable"), "{summary}");
    assert!(summary.contains("budget"), "{summary}");
    assert!(end["message"].as_str().unwrap().contains("not checked"));
    // One round per idea: the failed search ends that idea's check.
    assert_eq!(llm.hits(), 2);
    // The spent budget opens OpenAlex's breaker at once: it is asked only once.
    assert_eq!(lit.hits(Route::OpenAlexWorks), 1);
    let notices: Vec<String> = shown_messages(&c)
        .into_iter()
        .filter(|(_, m)| m.contains("is skipped"))
        .map(|(_, m)| m)
        .collect();
    assert_eq!(notices.len(), 1, "{notices:#?}");
    assert!(notices[0].contains("openalex is skipped"), "{notices:#?}");
    assert!(notices[0].contains("budget"), "{notices:#?}");

    // No `novel` key written anywhere: the file is as it was.
    assert_eq!(std::fs::read_to_string(t.join("ideas.json")).unwrap(), before);
    let after = read_ideas(&t);
    assert!(idea(&after, IDEA_A).get("novel").is_none());
    assert!(idea(&after, IDEA_B).get("novel").is_none());
}

#[tokio::test]
async fn novelty_second_run_answers_from_the_disk_cache() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    let cache = dir.path().join("cache");
    let mut script = script_a_novel_b_not();
    script.extend(script_a_novel_b_not());
    let llm = FakeLlm::start(script).await;
    let lit = FakeLit::start().await;

    let run = |args: Value, lit_opts: Value| {
        let (llm, lit, cache) = (&llm, &lit, &cache);
        async move {
            let c = TestClient::start(Value::Null);
            c.initialize(caps(), options(llm, lit, cache, lit_opts)).await;
            let r = c
                .request(
                    "workspace/executeCommand",
                    json!({ "command": "aisci.checkNovelty", "arguments": [args] }),
                )
                .await;
            let token = format!("aisci-job-{}", r["job"]);
            wait_end(&c, &token, 10).await;
            wait_summary(&c, 5).await.1
        }
    };
    let first = run(json!({ "template": t }), json!({})).await;
    assert!(first.contains("novelty checked for 2 idea(s)"), "{first}");
    assert_eq!(lit.total_hits(), 3);
    let files = std::fs::read_dir(cache.join("search")).unwrap().count();
    assert_eq!(files, 3, "one cache file per query");

    // A new server with a different literature setting: a fresh engine set with an
    // empty memory, so only the files can answer. `force` checks A and B again (C,
    // checked by v1, is left out by name).
    let second = run(
        json!({ "template": t, "ideas": [IDEA_A, IDEA_B], "force": true }),
        json!({ "request_timeout_secs": 6 }),
    )
    .await;
    assert!(second.contains("novelty checked for 2 idea(s)"), "{second}");
    assert_eq!(lit.total_hits(), 3, "no request after the first run");
    assert_eq!(llm.hits(), 10);
    let after = read_ideas(&t);
    assert_eq!(idea(&after, IDEA_A)["novelty"]["papers_seen"], 3);
    assert_eq!(
        idea(&after, IDEA_B)["novelty"]["closest"][0]["title"],
        S2_TITLES[1]
    );
    assert!(idea(&after, IDEA_A)["novelty"]["checked"].is_string());
    assert_eq!(idea(&after, IDEA_C)["novel"], false, "not asked for");
    assert!(idea(&after, IDEA_C).get("novelty").is_none());
}

#[tokio::test]
async fn novelty_cancel_keeps_finished_verdicts_and_a_valid_archive() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    let mut script = script_a_novel_b_not();
    // B's first answer takes long: the cancel comes while it is in flight.
    script[3] = query(Q_B1).delayed(Duration::from_secs(20));
    let llm = FakeLlm::start(script).await;
    let lit = FakeLit::start().await;
    let c = TestClient::start(Value::Null);
    c.initialize(caps(), options(&llm, &lit, &dir.path().join("cache"), json!({})))
        .await;
    let ideas_path = t.join("ideas.json");
    let text = std::fs::read_to_string(&ideas_path).unwrap();
    c.open(&file_uri(&ideas_path), "json", &text).await;

    let r = c
        .request(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t }] }),
        )
        .await;
    let job = r["job"].as_u64().unwrap();
    let token = format!("aisci-job-{job}");
    c.wait_for("B's first round", 10, |m| {
        m["params"]["value"]["message"]
            .as_str()
            .is_some_and(|s| s.starts_with(&format!("Novelty 2/2: {IDEA_B}, round 1")))
    })
    .await;
    // A's verdict is on disk by now; the editor reloads the file it shows.
    reload(&c, &ideas_path, 2).await;
    // While it runs the top lens offers to cancel, and no idea offers a second check.
    let running = lenses(&c, &ideas_path).await;
    assert_eq!(running[0]["command"]["title"], "Check novelty… (cancel)");
    assert_eq!(running[0]["command"]["command"], "aisci.cancel");
    assert_eq!(running[0]["command"]["arguments"], json!([job]));
    assert!(
        !running
            .iter()
            .any(|l| l["command"]["command"] == "aisci.checkNovelty"),
        "{running:#?}"
    );
    // A second start for the same template is refused.
    let again = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t }] }),
        )
        .await;
    assert!(
        again["error"]["message"]
            .as_str()
            .unwrap_or("")
            .contains("already running"),
        "{again}"
    );

    let asked = Instant::now();
    c.notify("window/workDoneProgress/cancel", json!({ "token": token }))
        .await;
    let end = wait_end(&c, &token, 5).await;
    assert!(
        asked.elapsed() < Duration::from_secs(2),
        "cancel took {:?}",
        asked.elapsed()
    );
    let end_msg = end["message"].as_str().unwrap();
    assert!(
        end_msg.contains("cancelled, verdicts finished before that are kept"),
        "{end_msg}"
    );
    assert!(end_msg.contains(&format!("1 novel ({IDEA_A})")), "{end_msg}");
    assert!(llm.hits() <= 4, "no call after the cancel: {}", llm.hits());

    let after = read_ideas(&t);
    assert_eq!(after.len(), 3);
    assert_eq!(idea(&after, IDEA_A)["novel"], true);
    assert!(idea(&after, IDEA_B).get("novel").is_none());
    assert!(idea(&after, IDEA_B).get("novelty").is_none());
    // The job is gone: the top lens offers the check again.
    let lens = lenses(&c, &ideas_path).await;
    assert_eq!(lens[0]["command"]["command"], "aisci.checkNovelty");
}

#[tokio::test]
async fn novelty_without_ideas_json_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    std::fs::remove_file(t.join("ideas.json")).unwrap();
    let llm = FakeLlm::start(vec![]).await;
    let lit = FakeLit::start().await;
    let c = TestClient::start(Value::Null);
    c.initialize(caps(), options(&llm, &lit, &dir.path().join("cache"), json!({})))
        .await;
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t }] }),
        )
        .await;
    assert!(r.get("result").is_none(), "{r}");
    assert_eq!(r["error"]["code"], -32600, "{r}");
    let msg = r["error"]["message"].as_str().unwrap();
    assert!(msg.contains("has no ideas.json yet"), "{msg}");
    assert!(msg.contains("generate ideas first"), "{msg}");
    // Arguments that are not a list of names are refused too.
    let bad = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t, "ideas": "a" }] }),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32602, "{bad}");
    assert_eq!((llm.hits(), lit.total_hits()), (0, 0));
    assert!(c.messages("$/progress").is_empty());
    assert!(!t.join("ideas.json").exists());
}

#[tokio::test]
async fn novelty_refuses_unsaved_ideas_json() {
    let dir = tempfile::tempdir().unwrap();
    let t = template_with_ideas(dir.path());
    let ideas_path = t.join("ideas.json");
    let before = std::fs::read_to_string(&ideas_path).unwrap();
    let llm = FakeLlm::start(script_a_novel_b_not()).await;
    let lit = FakeLit::start().await;
    let c = TestClient::start(Value::Null);
    c.initialize(caps(), options(&llm, &lit, &dir.path().join("cache"), json!({})))
        .await;
    let edited = before.replacen(IDEA_A, "renamed_but_unsaved", 1);
    c.open(&file_uri(&ideas_path), "json", &edited).await;
    let r = c
        .request_raw(
            "workspace/executeCommand",
            json!({ "command": "aisci.checkNovelty", "arguments": [{ "template": t, "ideas": [IDEA_B] }] }),
        )
        .await;
    let msg = r["error"]["message"].as_str().unwrap_or_default();
    assert!(msg.contains("unsaved changes"), "{r}");
    assert_eq!(std::fs::read_to_string(&ideas_path).unwrap(), before);
    assert_eq!((llm.hits(), lit.total_hits()), (0, 0));
    assert!(c.messages("$/progress").is_empty());
}
