//! The reviewer (v1's `perform_review`, with our own prompts): an ensemble of reviews in
//! the NeurIPS form run concurrently, an area chair's meta-review, scores replaced by the
//! ensemble's means, then reflection rounds on the combined review with the paper in
//! view, ending when the model says "I am done".
//!
//! Beyond v1:
//! - a reply without usable JSON, or with scores out of range, is sent back with the
//!   problems named, at most `max_attempts` replies per member; a member that never
//!   answers usably (or whose calls fail) is dropped with a note and the review is made
//!   from the rest;
//! - providers without `n > 1` are fine: members are independent calls;
//! - reflection prompts are numbered ("round 2 of 4"); a reflection that cannot be read
//!   keeps the review it had instead of failing the stage;
//! - both the model's `Decision` and the calibrated one (Overall ≥ threshold) are kept.

use std::sync::atomic::{AtomicU32, Ordering};

use futures::future::join_all;
use tokio_util::sync::CancellationToken;

use crate::agent::conversation::Conversation;
use crate::agent::json_extract::{extract_after_marker, extract_all};
use crate::agent::prompt::fill;
use crate::jobs::Progress;
use crate::llm::{CallTag, ChatRequest, Image, Llm, LlmError, Message};

pub use super::aggregate::{calibrated, round_half_even, Means};
pub use super::form::{Comment, CommentKind, Decision, Review};

const SYSTEM_PROMPT: &str = include_str!("prompts/system.txt");
pub const FORM: &str = include_str!("prompts/form.txt");
const PAPER_PROMPT: &str = include_str!("prompts/paper.txt");
const EXAMPLES_PROMPT: &str = include_str!("prompts/examples.txt");
const META_SYSTEM_PROMPT: &str = include_str!("prompts/meta_system.txt");
const META_PROMPT: &str = include_str!("prompts/meta.txt");
const AGGREGATED_PROMPT: &str = include_str!("prompts/aggregated.txt");
const REFLECT_PROMPT: &str = include_str!("prompts/reflect.txt");
const REPAIR_PROMPT: &str = include_str!("prompts/repair.txt");

/// What ends the reflection rounds.
pub const DONE_WORD: &str = "I am done";
/// What precedes the review's JSON in a reply.
pub const REVIEW_MARKER: &str = "REVIEW JSON:";

/// A sample paper and its review for the prompt (few-shot).
#[derive(Debug, Clone)]
pub struct Example {
    pub paper: String,
    /// The review as JSON text.
    pub review: String,
}

/// How to review.
#[derive(Debug, Clone)]
pub struct ReviewPlan {
    /// Members of the ensemble (1 = a single review, no meta-review).
    pub ensemble: u32,
    /// Reflection rounds after the combined review.
    pub reflection_rounds: u32,
    /// Replies a member (or the meta-review, or a reflection) may take to be usable.
    pub max_attempts: u32,
    /// Temperature of the ensemble members (they should differ).
    pub ensemble_temperature: Option<f32>,
    /// Temperature of the meta-review and the reflections.
    pub temperature: Option<f32>,
    pub max_tokens: u32,
    /// Overall score from which the calibrated decision accepts.
    pub accept_threshold: u8,
}

pub struct ReviewCtx<'a> {
    pub llm: &'a Llm,
    /// The paper's text (from its PDF or its LaTeX source).
    pub paper: &'a str,
    /// Its figures (pages or files), sent with the paper to a model that takes images.
    pub figures: &'a [Image],
    pub examples: &'a [Example],
    pub plan: &'a ReviewPlan,
    /// For the usage ledger.
    pub idea: &'a str,
    pub progress: &'a dyn Progress,
    pub cancel: &'a CancellationToken,
}

#[derive(Debug, Clone, PartialEq)]
pub struct ReviewReport {
    /// The final review (after the meta-review and reflections).
    pub review: Review,
    /// The ensemble's usable reviews.
    pub members: Vec<Review>,
    /// The means of the members' scores (written, rounded, into the combined review).
    pub means: Means,
    /// Why members (or steps) were dropped or fell back.
    pub notes: Vec<String>,
    /// The model's own decision (from the final review).
    pub decision: Decision,
    /// Overall ≥ threshold.
    pub calibrated_decision: Decision,
    pub threshold: u8,
    pub meta_reviewed: bool,
    /// Reflection rounds that ran, and whether the model said it was done.
    pub reflections: u32,
    pub reflection_done: bool,
    pub calls: u32,
}

#[derive(Debug, thiserror::Error)]
pub enum ReviewError {
    #[error("no usable review: every member of the ensemble failed ({})", .notes.join("; "))]
    NoReviews { notes: Vec<String> },
    #[error("the review was cancelled")]
    Cancelled,
    #[error("the paper is empty: nothing to review")]
    EmptyPaper,
    #[error("the review stopped: {0}")]
    Llm(LlmError),
}

/// One conversation's attempt at a usable review.
enum Reply {
    Usable {
        review: Review,
        text: String,
        done: bool,
    },
    Unusable(String),
}

/// Reviews the paper.
pub async fn review_paper(ctx: &ReviewCtx<'_>) -> Result<ReviewReport, ReviewError> {
    if ctx.paper.trim().is_empty() {
        return Err(ReviewError::EmptyPaper);
    }
    let plan = ctx.plan;
    let n = plan.ensemble.max(1);
    let paper_prompt = fill(
        PAPER_PROMPT,
        &[
            ("form", FORM.trim_end()),
            ("examples", &examples_text(ctx.examples)),
            ("paper", ctx.paper.trim()),
        ],
    );
    let calls = AtomicU32::new(0);
    ctx.progress
        .report(&format!("Review: {n} reviewer(s) reading the paper"), Some(0));
    let members = ensemble(ctx, &paper_prompt, n, &calls).await;
    let mut notes = Vec::new();
    let mut usable: Vec<(Review, String)> = Vec::new();
    for (i, r) in members {
        match r {
            Ok(Reply::Usable { review, text, .. }) => usable.push((review, text)),
            Ok(Reply::Unusable(why)) => notes.push(format!("review {}/{n} dropped: {why}", i + 1)),
            Err(LlmError::Cancelled) => return Err(ReviewError::Cancelled),
            Err(LlmError::BudgetExceeded { spent, budget }) => {
                return Err(ReviewError::Llm(LlmError::BudgetExceeded { spent, budget }))
            }
            Err(e) => notes.push(format!(
                "review {}/{n} dropped: the model call failed: {e}",
                i + 1
            )),
        }
    }
    if usable.is_empty() {
        return Err(ReviewError::NoReviews { notes });
    }
    let member_reviews: Vec<Review> = usable.iter().map(|(r, _)| r.clone()).collect();
    let means = Means::of(&member_reviews);

    // The area chair's meta-review (text and decision), with the ensemble's mean scores.
    let mut meta_reviewed = false;
    let mut combined = member_reviews[0].clone();
    if usable.len() > 1 {
        ctx.progress.report("Review: meta-review", Some(50));
        let count = usable.len().to_string();
        let reviews: String = member_reviews
            .iter()
            .enumerate()
            .map(|(i, r)| {
                format!(
                    "\nReview {}/{}:\n```json\n{}\n```\n",
                    i + 1,
                    usable.len(),
                    serde_json::to_string_pretty(r).unwrap_or_default()
                )
            })
            .collect();
        let system = fill(META_SYSTEM_PROMPT, &[("count", &count)]);
        let prompt = fill(
            META_PROMPT,
            &[
                ("form", FORM.trim_end()),
                ("count", &count),
                ("reviews", &reviews),
            ],
        );
        match converse(ctx, &system, Vec::new(), prompt, plan.temperature, &calls).await {
            Ok(Reply::Usable { review, .. }) => {
                combined = review;
                meta_reviewed = true;
            }
            Ok(Reply::Unusable(why)) => {
                notes.push(format!("meta-review unusable ({why}); the first review is used"))
            }
            Err(LlmError::Cancelled) => return Err(ReviewError::Cancelled),
            Err(e) => notes.push(format!("meta-review failed ({e}); the first review is used")),
        }
        means.apply(&mut combined);
    }

    // Reflection on the combined review, in the first member's conversation (which has the
    // paper), as if that reviewer had written the combined review.
    let mut history = vec![paper_message(ctx, &paper_prompt)];
    history.push(Message::assistant(if usable.len() > 1 {
        fill(
            AGGREGATED_PROMPT,
            &[
                ("count", &usable.len().to_string()),
                (
                    "json",
                    &serde_json::to_string_pretty(&combined).unwrap_or_default(),
                ),
            ],
        )
    } else {
        usable[0].1.clone()
    }));
    let rounds = plan.reflection_rounds;
    let mut reflections = 0;
    let mut reflection_done = false;
    for round in 1..=rounds {
        ctx.progress.report(
            &format!("Review: reflection round {round} of {rounds}"),
            Some(60 + 40 * (round - 1) / rounds.max(1)),
        );
        let prompt = fill(
            REFLECT_PROMPT,
            &[("round", &round.to_string()), ("rounds", &rounds.to_string())],
        );
        reflections = round;
        let reply = converse(
            ctx,
            SYSTEM_PROMPT,
            history.clone(),
            prompt.clone(),
            plan.temperature,
            &calls,
        )
        .await;
        match reply {
            Ok(Reply::Usable { review, text, done }) => {
                combined = review;
                // The repairs it took are left out: the next round sees a clean exchange.
                history.push(Message::user(prompt));
                history.push(Message::assistant(text));
                if done {
                    reflection_done = true;
                    break;
                }
            }
            Ok(Reply::Unusable(why)) => {
                notes.push(format!(
                    "reflection round {round} unusable ({why}); the review before it is kept"
                ));
                break;
            }
            Err(LlmError::Cancelled) => return Err(ReviewError::Cancelled),
            Err(e) => {
                notes.push(format!(
                    "reflection round {round} failed ({e}); the review before it is kept"
                ));
                break;
            }
        }
    }
    ctx.progress.report("Review: done", Some(100));
    Ok(ReviewReport {
        decision: combined.decision,
        calibrated_decision: calibrated(combined.overall, plan.accept_threshold),
        threshold: plan.accept_threshold,
        review: combined,
        members: member_reviews,
        means,
        notes,
        meta_reviewed,
        reflections,
        reflection_done,
        calls: calls.into_inner(),
    })
}

/// The ensemble's first replies: one request for all `n` where the provider returns
/// several completions (the paper is sent and paid for once instead of `n` times), each
/// reply then repaired in its own conversation if it needs it; else `n` conversations at
/// once. Members the batched request did not answer are asked separately.
async fn ensemble(
    ctx: &ReviewCtx<'_>,
    paper_prompt: &str,
    n: u32,
    calls: &AtomicU32,
) -> Vec<(u32, Result<Reply, LlmError>)> {
    let plan = ctx.plan;
    let alone = |i: u32| async move {
        let r = converse_with(
            ctx,
            SYSTEM_PROMPT,
            Vec::new(),
            (paper_prompt.to_string(), ctx.figures.to_vec()),
            plan.ensemble_temperature,
            calls,
        )
        .await;
        (i, r)
    };
    if n < 2 || !ctx.llm.batches_n() {
        return join_all((0..n).map(alone)).await;
    }
    if ctx.cancel.is_cancelled() {
        return vec![(0, Err(LlmError::Cancelled))];
    }
    let req = ChatRequest {
        system: Some(SYSTEM_PROMPT.to_string()),
        messages: vec![paper_message(ctx, paper_prompt)],
        temperature: plan.ensemble_temperature,
        max_tokens: plan.max_tokens,
    };
    calls.fetch_add(1, Ordering::Relaxed);
    let texts: Vec<String> = match ctx
        .llm
        .chat_n(CallTag::new("review", Some(ctx.idea)), &req, n, ctx.cancel)
        .await
    {
        Ok(replies) => replies.into_iter().map(|r| r.text).take(n as usize).collect(),
        Err(e @ (LlmError::Cancelled | LlmError::BudgetExceeded { .. })) => return vec![(0, Err(e))],
        // The batched request failed for good: each member on its own, as without `n`.
        Err(_) => Vec::new(),
    };
    let got = texts.len() as u32;
    let repaired = join_all(
        texts
            .into_iter()
            .enumerate()
            .map(|(i, text)| async move { (i as u32, repair_member(ctx, paper_prompt, text, calls).await) }),
    );
    let (mut out, rest) = futures::join!(repaired, join_all((got..n).map(alone)));
    out.extend(rest);
    out
}

/// A member's first reply from a batched request: used as it is, or repaired in the
/// member's own conversation (the paper, that reply, the problems).
async fn repair_member(
    ctx: &ReviewCtx<'_>,
    paper_prompt: &str,
    text: String,
    calls: &AtomicU32,
) -> Result<Reply, LlmError> {
    let problems = match read_reply(&text) {
        Ok(review) => return Ok(reply_of(Ok((review, text)), 1)),
        Err(problems) => problems,
    };
    let attempts = ctx.plan.max_attempts.max(1);
    let tag = CallTag::new("review", Some(ctx.idea));
    let mut conv = Conversation::new(
        ctx.llm,
        ctx.cancel,
        tag,
        SYSTEM_PROMPT,
        ctx.plan.ensemble_temperature,
        ctx.plan.max_tokens,
    )
    .with_history(vec![paper_message(ctx, paper_prompt), Message::assistant(text)]);
    let usable = |text: &str| read_reply(text).map(|review| (review, text.to_string()));
    let reply = conv
        .repair(problems, attempts - 1, usable, |p: &Vec<String>| repair_prompt(p))
        .await;
    calls.fetch_add(conv.calls(), Ordering::Relaxed);
    Ok(reply_of(reply?, attempts))
}

/// A member's outcome after its repairs.
fn reply_of(outcome: Result<(Review, String), Vec<String>>, attempts: u32) -> Reply {
    match outcome {
        Ok((review, text)) => Reply::Usable {
            done: text.contains(DONE_WORD),
            review,
            text,
        },
        Err(problems) => Reply::Unusable(format!("after {attempts} replies: {}", problems.join("; "))),
    }
}

fn repair_prompt(problems: &[String]) -> String {
    fill(
        REPAIR_PROMPT,
        &[("problems", &format!("- {}", problems.join("\n- ")))],
    )
}

/// Asks `prompt` after `history` until a reply holds a usable review, at most
/// `max_attempts` replies; each unusable one goes back with its problems named.
async fn converse(
    ctx: &ReviewCtx<'_>,
    system: &str,
    history: Vec<Message>,
    prompt: String,
    temperature: Option<f32>,
    calls: &AtomicU32,
) -> Result<Reply, LlmError> {
    converse_with(ctx, system, history, (prompt, Vec::new()), temperature, calls).await
}

/// The paper prompt as a message: its figures go with it.
fn paper_message(ctx: &ReviewCtx<'_>, paper_prompt: &str) -> Message {
    Message::user_with_images(paper_prompt, ctx.figures.to_vec())
}

/// [`converse`] whose first prompt carries images.
async fn converse_with(
    ctx: &ReviewCtx<'_>,
    system: &str,
    history: Vec<Message>,
    (prompt, images): (String, Vec<Image>),
    temperature: Option<f32>,
    calls: &AtomicU32,
) -> Result<Reply, LlmError> {
    let attempts = ctx.plan.max_attempts.max(1);
    let tag = CallTag::new("review", Some(ctx.idea));
    let mut conv = Conversation::new(ctx.llm, ctx.cancel, tag, system, temperature, ctx.plan.max_tokens)
        .with_history(history)
        .with_images(images);
    let usable = |text: &str| read_reply(text).map(|review| (review, text.to_string()));
    let reply = conv
        .ask_until(prompt, attempts, usable, |p: &Vec<String>| repair_prompt(p))
        .await;
    calls.fetch_add(conv.calls(), Ordering::Relaxed);
    Ok(reply_of(reply?, attempts))
}

/// The review in a reply: the JSON after `REVIEW JSON:` (else the last JSON object).
pub fn read_reply(text: &str) -> Result<Review, Vec<String>> {
    let Some(v) =
        extract_after_marker(text, REVIEW_MARKER).or_else(|| extract_all(text).into_iter().next_back())
    else {
        return Err(vec![
            "the reply has no JSON review (expected REVIEW JSON: and a ```json block)".into(),
        ]);
    };
    Review::from_value(&v)
}

fn examples_text(examples: &[Example]) -> String {
    if examples.is_empty() {
        return String::new();
    }
    let body: String = examples
        .iter()
        .enumerate()
        .map(|(i, e)| {
            format!(
                "\n### Example {}\n\nPaper:\n{}\n\nReview:\n```json\n{}\n```\n",
                i + 1,
                e.paper.trim(),
                e.review.trim()
            )
        })
        .collect();
    fill(EXAMPLES_PROMPT, &[("examples", &body)])
}
