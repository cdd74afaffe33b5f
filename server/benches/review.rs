//! The reviewer's wall time against its critical path: a 5-review ensemble, the
//! meta-review and 4 reflection rounds, with a fake OpenAI-style model over HTTP that
//! answers each call after 500 ms. The critical path is one member, the meta-review
//! and the reflections one after another: 6 × 500 ms. Target: at most 1.2 × that (the
//! members concurrent, not one after another, which would be 5 × longer for them).
//!
//! `cargo bench --bench review` (AISCI_BENCH_DELAY_MS overrides the 500 ms).

// The fake and what it needs beside it, from the integration tests' support (tests/support/).
#[allow(dead_code)]
#[path = "../../tests/support/fake_http.rs"]
mod fake_http;
#[allow(dead_code)]
#[path = "../../tests/support/fake_llm.rs"]
mod fake_llm;
#[allow(dead_code)]
#[path = "../../tests/support/fs.rs"]
mod fs;

use std::time::{Duration, Instant};

use aisci::config::LlmSettings;
use aisci::jobs::NoProgress;
use aisci::stages::review::agent::{review_paper, ReviewCtx, ReviewPlan};
use fake_llm::{FakeLlm, Reply};
use tokio_util::sync::CancellationToken;

fn review_reply() -> String {
    let j = serde_json::json!({
        "Summary": "s", "Strengths": ["a"], "Weaknesses": [{"text": "w", "section": "Results"}],
        "Originality": 2, "Quality": 2, "Clarity": 3, "Significance": 2, "Questions": [], "Limitations": [],
        "Ethical Concerns": false, "Soundness": 2, "Presentation": 3, "Contribution": 2, "Overall": 4,
        "Confidence": 4, "Decision": "Reject"
    });
    format!("THOUGHT:\nok\n\nREVIEW JSON:\n```json\n{j}\n```\n")
}

/// Placing a review's comments in the v1 corpus paper (what the editor does on each
/// debounced change of a reviewed paper): every comment of the corpus review, each with a
/// quote as a PDF would render it (hyphenated, without markup) that must be searched in
/// the normalised text.
fn placing() {
    use aisci::latex::anchor::Anchorer;
    use aisci::latex::syntax;
    let root = fs::fixtures();
    let src = std::fs::read_to_string(root.join("paper/v1_adaptive_dual_scale/template.tex")).unwrap();
    let review: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(root.join("review/v1_adaptive_dual_scale_review.txt")).unwrap(),
    )
    .unwrap();
    let comments: Vec<String> = ["Weaknesses", "Questions", "Limitations"]
        .iter()
        .flat_map(|k| {
            review[k]
                .as_array()
                .unwrap()
                .iter()
                .map(|c| c.as_str().unwrap().to_string())
        })
        .collect();
    let quote =
        "Moons: 3.3% improvement (from 0.090 to 0.093) and a sentence that is not in the paper at all";
    let mut times = Vec::new();
    for _ in 0..50 {
        let t = Instant::now();
        let facts = syntax::facts(&syntax::parse(&src), &src);
        let a = Anchorer::new(&src, &facts);
        for _ in &comments {
            std::hint::black_box(a.place(Some(quote), Some("Results")));
        }
        times.push(t.elapsed());
    }
    times.sort();
    println!(
        "placing {} comments in the {} KB v1 paper (parse included): p50 {:.2} ms, p90 {:.2} ms",
        comments.len(),
        src.len() / 1024,
        times[times.len() / 2].as_secs_f64() * 1e3,
        times[times.len() * 9 / 10].as_secs_f64() * 1e3
    );
}

fn main() {
    placing();
    let delay = Duration::from_millis(
        std::env::var("AISCI_BENCH_DELAY_MS")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(500),
    );
    let rt = tokio::runtime::Runtime::new().unwrap();
    let (ensemble, rounds) = (5u32, 4u32);
    let calls = ensemble + 1 + rounds;
    let critical = delay * (2 + rounds);
    let mut ratios = Vec::new();
    for i in 0..5 {
        let took = rt.block_on(async {
            let script = (0..calls)
                .map(|_| {
                    Reply::Delay(
                        delay,
                        Box::new(Reply::chat_completion("c", &review_reply(), 3000, 500)),
                    )
                })
                .collect();
            let fake = FakeLlm::start(script).await;
            let settings = LlmSettings {
                provider: aisci::config::ProviderKind::Vllm,
                base_url: Some(fake.v1()),
                model: "local-model".into(),
                stream: false,
                max_retries: 0,
                ..Default::default()
            };
            let llm = aisci::llm::from_settings(&settings, &aisci::llm::ProcessEnv).unwrap();
            let plan = ReviewPlan {
                ensemble,
                reflection_rounds: rounds,
                max_attempts: 3,
                ensemble_temperature: Some(0.75),
                temperature: Some(0.1),
                max_tokens: 4096,
                accept_threshold: 6,
            };
            let cancel = CancellationToken::new();
            let paper = "A paper. ".repeat(4000);
            let ctx = ReviewCtx {
                llm: &llm,
                paper: &paper,
                figures: &[],
                examples: &[],
                plan: &plan,
                idea: "bench",
                progress: &NoProgress,
                cancel: &cancel,
            };
            let t = Instant::now();
            let r = review_paper(&ctx).await.unwrap();
            let took = t.elapsed();
            assert_eq!((r.members.len(), r.reflections, r.calls), (5, 4, calls));
            assert_eq!(fake.hits(), calls as usize);
            took
        });
        let ratio = took.as_secs_f64() / critical.as_secs_f64();
        println!(
            "run {i}: {:.3} s for {calls} calls, critical path {:.1} s, ratio {ratio:.3}",
            took.as_secs_f64(),
            critical.as_secs_f64()
        );
        ratios.push(ratio);
    }
    ratios.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let median = ratios[ratios.len() / 2];
    println!(
        "review ensemble {ensemble} + meta + {rounds} reflections at {} ms/call: median ratio {median:.3} (min {:.3}, max {:.3}); sequential members would be {:.2}; target <= 1.2",
        delay.as_millis(),
        ratios[0],
        ratios[ratios.len() - 1],
        (calls as f64) / (2 + rounds) as f64
    );
    assert!(median <= 1.2, "the ensemble is not concurrent: ratio {median:.3}");
}
