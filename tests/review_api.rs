//! The reviewer through its library interface: v1's `review.txt` read and written back
//! byte for byte, comments placed in the v1 corpus paper, and the ensemble (concurrent
//! members, bad replies repaired or dropped, meta-review, mean scores, reflections)
//! against a scripted model.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use aisci::jobs::NoProgress;
use aisci::latex::anchor::{anchor, normalize_plain, normalize_source, AnchorHow};
use aisci::latex::syntax;
use aisci::llm::{ChatRequest, ChatResponse, Llm, LlmError, Provider, Usage};
use aisci::stages::review::agent::{
    review_paper, Comment, CommentKind, Decision, Means, Review, ReviewCtx, ReviewError, ReviewPlan,
};
use async_trait::async_trait;
use tokio_util::sync::CancellationToken;

use crate::support::fs::fixtures;

fn fixture(rel: &str) -> String {
    std::fs::read_to_string(fixtures().join(rel)).unwrap()
}

#[test]
fn v1_review_txt_reads_and_writes_back_byte_for_byte() {
    let text = fixture("review/v1_adaptive_dual_scale_review.txt");
    let v: serde_json::Value = serde_json::from_str(&text).unwrap();
    let r = Review::from_value(&v).unwrap();
    assert_eq!(r.overall, 5);
    assert_eq!(r.decision, Decision::Reject);
    assert_eq!(
        (r.soundness, r.presentation, r.contribution, r.confidence),
        (3, 3, 3, 4)
    );
    assert_eq!(
        (r.weaknesses.len(), r.questions.len(), r.limitations.len()),
        (6, 13, 6)
    );
    assert!(!r.ethical_concerns);
    assert_eq!(r.to_v1_text(), text);
}

/// The corpus review's comments, each given a quote and/or a section as our reviewer is
/// asked to: exact quotes, quotes as a PDF renders them (hyphenated, without markup),
/// quotes that are nowhere in the paper, section names as the reviewer may shorten them.
#[test]
fn corpus_comments_are_placed_inside_their_quote_or_section() {
    let src = fixture("paper/v1_adaptive_dual_scale/template.tex");
    let review: serde_json::Value =
        serde_json::from_str(&fixture("review/v1_adaptive_dual_scale_review.txt")).unwrap();
    let review = Review::from_value(&review).unwrap();
    let facts = syntax::facts(&syntax::parse(&src), &src);
    let w = &review.weaknesses;
    let q = &review.questions;
    let cases: Vec<(&Comment, Option<&str>, Option<&str>, AnchorHow)> = vec![
        (&w[0], Some("Training times approximately doubled"), Some("Results"), AnchorHow::Quote),
        (&w[1], Some("Moons: 3.3% improvement (from 0.090 to 0.093)"), Some("Results"), AnchorHow::Normalized),
        (&w[2], None, Some("4 Experimental Setup"), AnchorHow::Section),
        (&w[3], Some("We discuss societal impact at length."), Some("Conclusions"), AnchorHow::Section),
        (&w[4], Some("reductions in KL divergence of up to 12.8% compared to baseline models"), None, AnchorHow::Quote),
        (&w[5], None, None, AnchorHow::Title),
        (&q[0], Some("The challenge in applying diffu-\nsion models to low-dimensional spaces lies in simulta-\nneously capturing both the global structure"), Some("Introduction"), AnchorHow::Normalized),
        (&q[1], Some("batch size 256, and 100 diffusion timesteps"), Some("Hyperparameters"), AnchorHow::Quote),
        (&q[2], Some("All experiments used consistent hyperparameters across runs: 10,000 training steps, Adam optimizer with learning rate 3 × 10−4, batch size 256"), Some("Hyperparameters and Fairness Considerations"), AnchorHow::Normalized),
        (&review.limitations[0], Some("Increased computational cost may make it less suitable for applications with strict time constraints."), Some("Limitations"), AnchorHow::Quote),
        (&review.limitations[3], None, Some("abstract"), AnchorHow::Section),
        (&review.limitations[5], None, Some("Title"), AnchorHow::Section),
    ];
    for (comment, quote, section, want) in cases {
        let a = anchor(&src, &facts, quote, section);
        assert_eq!(
            a.how,
            want,
            "{}: {quote:?} {section:?} → {:?}",
            comment.text,
            &src[a.span.clone()]
        );
        let placed = &src[a.span.clone()];
        match a.how {
            AnchorHow::Quote => assert_eq!(Some(placed), quote),
            AnchorHow::Normalized => {
                // What was marked is (a long part of) the quote's text, nothing else.
                let got: String = normalize_source(placed).0.into_iter().collect();
                let want: String = normalize_plain(quote.unwrap()).into_iter().collect();
                assert!(got.len() >= 24 && want.contains(&got), "{got} not in {want}");
            }
            AnchorHow::Section => {
                let name = section.unwrap().to_lowercase();
                let inside = facts.sections.iter().any(|s| {
                    s.title.to_lowercase().contains(name.trim_start_matches("4 "))
                        && s.body.start <= a.span.start
                        && a.span.end <= s.body.end
                }) || (name == "abstract" && placed.starts_with("\\begin{abstract}"))
                    || (name == "title" && placed.starts_with("\\title{"));
                assert!(inside, "{name}: {placed}");
            }
            AnchorHow::Title => assert!(placed.starts_with("\\title{DualScale Diffusion")),
            AnchorHow::Document => unreachable!("the corpus paper has a title"),
        }
    }
}

// ---- the ensemble against a scripted model ----

fn review_json(overall: u8, soundness: u8, decision: &str, weakness: &str) -> String {
    serde_json::json!({
        "Summary": "A dual-scale denoiser.", "Strengths": ["clear"],
        "Weaknesses": [{"text": weakness, "quote": "Training times approximately doubled", "section": "Results"}],
        "Originality": 3, "Quality": 2, "Clarity": 3, "Significance": 2,
        "Questions": [{"text": "Why only 2D?", "section": "Conclusions"}],
        "Limitations": ["Only toy data."], "Ethical Concerns": false,
        "Soundness": soundness, "Presentation": 3, "Contribution": 2, "Overall": overall, "Confidence": 4,
        "Decision": decision
    })
    .to_string()
}

fn answer(thought: &str, json: &str) -> String {
    format!("THOUGHT:\n{thought}\n\nREVIEW JSON:\n```json\n{json}\n```\n")
}

/// The answer to a request that is not a first-turn review: (last message, request).
type OtherReply = dyn Fn(&str, &ChatRequest) -> Result<String, LlmError> + Send + Sync;

/// Answers by looking at the request: `first(i)` for the i-th first-turn review request,
/// `other(request text)` for everything else.
struct Scripted {
    first_calls: AtomicUsize,
    first: Box<dyn Fn(usize) -> Result<String, LlmError> + Send + Sync>,
    other: Box<OtherReply>,
    seen: Mutex<Vec<ChatRequest>>,
}

#[async_trait]
impl Provider for Scripted {
    fn name(&self) -> &str {
        "scripted"
    }
    fn model(&self) -> &str {
        "scripted-model"
    }
    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        self.seen.lock().unwrap().push(req.clone());
        let last = req.messages.last().unwrap().content.clone();
        let text = if req.messages.len() == 1 && last.contains("=== PAPER ===") {
            let i = self.first_calls.fetch_add(1, Ordering::SeqCst);
            (self.first)(i)
        } else if last.contains("HANG") {
            cancel.cancelled().await;
            Err(LlmError::Cancelled)
        } else {
            (self.other)(&last, req)
        }?;
        Ok(ChatResponse {
            text,
            usage: Usage::default(),
            model: "scripted-model".into(),
            finish_reason: Some("stop".into()),
        })
    }
}

fn llm(p: Arc<Scripted>) -> Llm {
    Llm::new(p).with_retry_policy(aisci::llm::RetryPolicy {
        max_retries: 0,
        ..Default::default()
    })
}

fn plan(ensemble: u32, reflections: u32) -> ReviewPlan {
    ReviewPlan {
        ensemble,
        reflection_rounds: reflections,
        max_attempts: 3,
        ensemble_temperature: Some(0.75),
        temperature: Some(0.1),
        max_tokens: 4096,
        accept_threshold: 6,
    }
}

async fn run(
    p: &Arc<Scripted>,
    plan: &ReviewPlan,
) -> Result<aisci::stages::review::agent::ReviewReport, ReviewError> {
    let model = llm(p.clone());
    let cancel = CancellationToken::new();
    let ctx = ReviewCtx {
        llm: &model,
        paper: "\\title{Dual}\nWe propose a dual-scale denoiser. Training times approximately doubled.",
        figures: &[],
        examples: &[],
        plan,
        idea: "dual",
        progress: &NoProgress,
        cancel: &cancel,
    };
    review_paper(&ctx).await
}

#[tokio::test]
async fn bad_members_are_repaired_or_dropped_and_scores_are_the_rounded_means() {
    let p = Arc::new(Scripted {
        first_calls: AtomicUsize::new(0),
        first: Box::new(|i| match i {
            0 => Ok("I liked it a lot. Overall I would say 7.".into()),
            1 => Ok(answer("too good", &review_json(11, 3, "Accept", "none"))),
            2 => Err(LlmError::Unavailable {
                provider: "scripted".into(),
                status: 500,
                message: "upstream failed".into(),
                retry_after: None,
            }),
            3 => Ok(answer("ok", &review_json(5, 2, "Reject", "slow"))),
            _ => Ok(answer("ok", &review_json(4, 3, "Reject", "slower"))),
        }),
        other: Box::new(|last, req| {
            let system = req.system.clone().unwrap_or_default();
            if system.contains("area chair") {
                assert!(
                    last.contains("Review 3/3:"),
                    "the meta-review sees the three usable reviews"
                );
                Ok(answer("combined", &review_json(9, 4, "Reject", "meta weakness")))
            } else if last.contains("not 11") {
                Ok(answer("still", &review_json(11, 3, "Accept", "none")))
            } else if last.contains("has no JSON review") {
                Ok(answer("fixed", &review_json(6, 3, "Reject", "fine")))
            } else {
                panic!("unexpected request: {last}")
            }
        }),
        seen: Mutex::new(Vec::new()),
    });
    let r = run(&p, &plan(5, 0)).await.unwrap();
    assert_eq!(r.members.len(), 3, "{:?}", r.notes);
    assert_eq!(r.notes.len(), 2, "{:?}", r.notes);
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("dropped") && n.contains("after 3 replies") && n.contains("not 11")));
    assert!(r
        .notes
        .iter()
        .any(|n| n.contains("dropped") && n.contains("upstream failed")));
    assert!(r.meta_reviewed);
    // Members' Overall 6, 5, 4 → 5; Soundness 3, 2, 3 → 2.67 → 3. The meta-review's 9 and 4 are replaced.
    assert_eq!(r.means.get("Overall"), Some(5.0));
    assert_eq!(r.review.overall, 5);
    assert_eq!(r.review.soundness, 3);
    assert_eq!(
        r.review.weaknesses[0].text, "meta weakness",
        "text comes from the meta-review"
    );
    assert_eq!(
        r.review.weaknesses[0].quote.as_deref(),
        Some("Training times approximately doubled")
    );
    assert_eq!(
        (r.decision, r.calibrated_decision),
        (Decision::Reject, Decision::Reject)
    );
    // 5 first turns + 1 repair of the prose reply + 2 repairs of the 11 + the meta-review.
    assert_eq!(r.calls, 9);
    assert_eq!(p.seen.lock().unwrap().len(), 9);
    // Members are sampled at the ensemble temperature, the meta-review at the low one.
    let seen = p.seen.lock().unwrap();
    assert!(
        seen.iter()
            .filter(|r| r.messages.len() == 1 && r.temperature == Some(0.75))
            .count()
            >= 5
    );
}

#[test]
fn half_way_means_round_to_even() {
    let base: Review =
        Review::from_value(&serde_json::from_str(&review_json(5, 2, "Reject", "w")).unwrap()).unwrap();
    let mut a = base.clone();
    a.overall = 4;
    let mut b = base.clone();
    b.overall = 5;
    let means = Means::of(&[a.clone(), b.clone()]);
    let mut combined = base.clone();
    means.apply(&mut combined);
    assert_eq!(means.get("Overall"), Some(4.5));
    assert_eq!(combined.overall, 4, "4.5 rounds to 4 (half to even, as v1)");
    a.overall = 6;
    b.overall = 5;
    let mut combined = base;
    Means::of(&[a, b]).apply(&mut combined);
    assert_eq!(combined.overall, 6, "5.5 rounds to 6");
}

#[tokio::test]
async fn reflections_are_numbered_end_on_i_am_done_and_calibrate_the_decision() {
    let rounds_seen = Arc::new(Mutex::new(Vec::new()));
    let seen2 = rounds_seen.clone();
    let p = Arc::new(Scripted {
        first_calls: AtomicUsize::new(0),
        first: Box::new(|_| Ok(answer("first", &review_json(5, 3, "Reject", "first")))),
        other: Box::new(move |last, _| {
            let round = last.lines().next().unwrap_or_default().to_string();
            seen2.lock().unwrap().push(round.clone());
            if round.starts_with("Reflection round 1 of 4") {
                Ok(answer(
                    "I raise my score.",
                    &review_json(6, 3, "Reject", "revised"),
                ))
            } else {
                Ok(answer(
                    "Nothing to change. I am done",
                    &review_json(6, 3, "Reject", "revised"),
                ))
            }
        }),
        seen: Mutex::new(Vec::new()),
    });
    let r = run(&p, &plan(1, 4)).await.unwrap();
    assert_eq!(
        *rounds_seen.lock().unwrap(),
        ["Reflection round 1 of 4.", "Reflection round 2 of 4."]
    );
    assert_eq!(
        (r.reflections, r.reflection_done, r.meta_reviewed),
        (2, true, false)
    );
    assert_eq!(r.review.weaknesses[0].text, "revised");
    // The model says Reject at Overall 6; the calibrated rule (≥ 6) accepts.
    assert_eq!(
        (r.decision, r.calibrated_decision),
        (Decision::Reject, Decision::Accept)
    );
    assert_eq!(
        r.review.comments(CommentKind::Question)[0].section.as_deref(),
        Some("Conclusions")
    );
}

#[tokio::test]
async fn an_unreadable_reflection_keeps_the_review_and_no_usable_member_is_an_error() {
    let p = Arc::new(Scripted {
        first_calls: AtomicUsize::new(0),
        first: Box::new(|_| Ok(answer("first", &review_json(3, 2, "Reject", "first")))),
        other: Box::new(|_, _| Ok("I cannot do this.".into())),
        seen: Mutex::new(Vec::new()),
    });
    let r = run(&p, &plan(1, 3)).await.unwrap();
    assert_eq!(r.review.weaknesses[0].text, "first");
    assert!(
        r.notes.iter().any(|n| n.contains("reflection round 1 unusable")),
        "{:?}",
        r.notes
    );

    let p = Arc::new(Scripted {
        first_calls: AtomicUsize::new(0),
        first: Box::new(|_| Ok("no json here".into())),
        other: Box::new(|_, _| Ok("{\"Summary\": 1}".into())),
        seen: Mutex::new(Vec::new()),
    });
    match run(&p, &plan(2, 1)).await {
        Err(ReviewError::NoReviews { notes }) => {
            assert_eq!(notes.len(), 2);
            assert!(
                notes[0].contains("\"Summary\" must be a non-empty string"),
                "{notes:?}"
            );
        }
        other => panic!("expected NoReviews, got {other:?}"),
    }
}

/// Answers several completions per request, like OpenAI's `n`, but one short of what is
/// asked (as a server that caps `n` might), the first of them prose that needs repair.
struct Batched {
    seen: Mutex<Vec<(u32, ChatRequest)>>,
}

#[async_trait]
impl Provider for Batched {
    fn name(&self) -> &str {
        "batched"
    }
    fn model(&self) -> &str {
        "batched-model"
    }
    fn supports_n(&self) -> bool {
        true
    }
    async fn chat_n(
        &self,
        req: &ChatRequest,
        n: u32,
        _: &CancellationToken,
    ) -> Result<Vec<ChatResponse>, LlmError> {
        self.seen.lock().unwrap().push((n, req.clone()));
        let reply = |text: String, input: u64| ChatResponse {
            text,
            usage: Usage {
                input_tokens: input,
                output_tokens: 10,
                ..Usage::default()
            },
            model: "batched-model".into(),
            finish_reason: Some("stop".into()),
        };
        let mut out = vec![reply("Overall I would say 7.".into(), 1000)];
        for overall in 1..n - 1 {
            out.push(reply(
                answer("ok", &review_json(overall as u8 + 3, 3, "Reject", "w")),
                0,
            ));
        }
        Ok(out)
    }
    async fn chat(&self, req: &ChatRequest, _: &CancellationToken) -> Result<ChatResponse, LlmError> {
        self.seen.lock().unwrap().push((1, req.clone()));
        let last = req.messages.last().unwrap().content.clone();
        let system = req.system.clone().unwrap_or_default();
        let text = if system.contains("area chair") {
            assert!(last.contains("Review 5/5:"), "{last}");
            answer("combined", &review_json(5, 3, "Reject", "meta"))
        } else if last.contains("has no JSON review") {
            assert_eq!(req.messages.len(), 3, "the repair follows the member's own reply");
            answer("fixed", &review_json(6, 3, "Reject", "fixed"))
        } else {
            assert!(last.contains("=== PAPER ==="), "{last}");
            answer("alone", &review_json(7, 3, "Reject", "alone"))
        };
        Ok(ChatResponse {
            text,
            usage: Usage::default(),
            model: "batched-model".into(),
            finish_reason: Some("stop".into()),
        })
    }
}

#[tokio::test]
async fn an_ensemble_is_one_request_where_the_provider_returns_several_completions() {
    let p = Arc::new(Batched {
        seen: Mutex::new(Vec::new()),
    });
    let model = Llm::new(p.clone()).with_retry_policy(aisci::llm::RetryPolicy {
        max_retries: 0,
        ..Default::default()
    });
    assert!(model.batches_n());
    let cancel = CancellationToken::new();
    let plan = plan(5, 0);
    let ctx = ReviewCtx {
        llm: &model,
        paper: "\\title{Dual}\nWe propose a dual-scale denoiser. Training times approximately doubled.",
        figures: &[],
        examples: &[],
        plan: &plan,
        idea: "dual",
        progress: &NoProgress,
        cancel: &cancel,
    };
    let r = review_paper(&ctx).await.unwrap();
    assert_eq!(r.members.len(), 5, "{:?}", r.notes);
    let seen = p.seen.lock().unwrap();
    // One request for the ensemble (n = 5, the paper sent once, at the ensemble's
    // temperature), one repair, the member it did not answer, the meta-review.
    assert_eq!(seen[0].0, 5);
    assert_eq!(seen[0].1.temperature, Some(0.75));
    assert_eq!(
        seen.len(),
        4,
        "{:?}",
        seen.iter().map(|s| s.0).collect::<Vec<_>>()
    );
    assert_eq!(
        seen.iter()
            .filter(|(_, q)| q.messages.len() == 1 && q.messages[0].content.contains("=== PAPER ==="))
            .count(),
        2
    );
    assert_eq!(r.calls, 4);
    // The batched call is one ledger record with the whole request's usage.
    let records = model.records();
    assert_eq!(records.len(), 4);
    assert_eq!(records.iter().map(|c| c.usage.input_tokens).sum::<u64>(), 1000);
    // Overall 6 (repaired), 4, 5, 6, 7 (alone) → 5.6 → 6.
    assert_eq!(r.review.overall, 6);
}
