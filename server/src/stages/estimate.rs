//! What a stage is expected to cost before it runs: calls, input and output tokens and
//! dollars for the configured model, from the sizes of the files it will send (the
//! template's or the idea folder's) and the stage settings. The shape of each stage's
//! calls follows what the stages send (see `benches/cost.rs`, which measures the same
//! calls): the system prompt, the stable first exchange, the current files, the last
//! exchange and the new turn. Replies are taken at the sizes v1's real model gave (its
//! aider transcript in the corpus). Cached input is not counted: an estimate is an
//! upper bound where the provider caches.

use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::config::{ProviderKind, Settings};
use crate::llm::{infer_provider, is_reasoning_model, PriceTable, Usage};
use crate::stages::services::{llm_settings, ModelRole};

/// Tokens of one reply of each kind (v1's mean reply sizes, characters / 4).
mod reply {
    pub const IDEA: u64 = 600;
    pub const NOVELTY: u64 = 250;
    pub const EXPERIMENT: u64 = 1_330;
    pub const PLOT: u64 = 360;
    pub const NOTES: u64 = 1_450;
    pub const PART: u64 = 1_090;
    pub const CITE: u64 = 900;
    pub const REFINE: u64 = 2_400;
    pub const FIX: u64 = 230;
    pub const REVIEW: u64 = 920;
}

/// Tokens of the fixed prompts a call carries (system prompt and turn), measured on ours.
mod prompt {
    pub const SYSTEM: u64 = 450;
    pub const TURN: u64 = 300;
    pub const FORM: u64 = 1_300;
    /// One listed paper (title, authors, key, abstract cut to 500 characters).
    pub const PAPER: u64 = 170;
    /// One novelty search result (with its whole abstract).
    pub const RESULT: u64 = 280;
    /// One run's results in the writeup inputs and the run reports.
    pub const RESULTS: u64 = 120;
}

/// The sizes (in characters) of what the stages send.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Sizes {
    pub task: u64,
    pub code: u64,
    pub plot: u64,
    pub tex: u64,
    pub notes: u64,
    /// Ideas already in the archive (ideas.json).
    pub archived_ideas: u64,
}

fn len(path: &Path) -> u64 {
    std::fs::metadata(path).map(|m| m.len()).unwrap_or(0)
}

impl Sizes {
    /// A template or an idea folder (both hold experiment.py, plot.py and the paper).
    pub fn of_folder(root: &Path) -> Sizes {
        let archived = std::fs::read_to_string(root.join("ideas.json"))
            .ok()
            .and_then(|t| serde_json::from_str::<serde_json::Value>(&t).ok())
            .and_then(|v| v.as_array().map(|a| a.len() as u64))
            .unwrap_or(0);
        Sizes {
            task: len(&root.join("prompt.json")),
            code: len(&root.join("experiment.py")),
            plot: len(&root.join("plot.py")),
            tex: len(&root.join("latex/template.tex")),
            notes: len(&root.join("notes.txt")),
            archived_ideas: archived,
        }
    }
}

/// A paid stage.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    Ideas,
    Novelty,
    Experiment,
    Writeup,
    Review,
}

impl Stage {
    pub const ALL: [Stage; 5] = [
        Stage::Ideas,
        Stage::Novelty,
        Stage::Experiment,
        Stage::Writeup,
        Stage::Review,
    ];

    /// The ledger's name for it.
    pub fn name(self) -> &'static str {
        match self {
            Stage::Ideas => "ideas",
            Stage::Novelty => "novelty",
            Stage::Experiment => "experiment",
            Stage::Writeup => "writeup",
            Stage::Review => "review",
        }
    }

    fn role(self) -> ModelRole {
        match self {
            Stage::Writeup => ModelRole::Writer,
            Stage::Review => ModelRole::Reviewer,
            _ => ModelRole::Main,
        }
    }
}

/// One stage's expected cost.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Estimate {
    pub stage: String,
    pub model: String,
    pub calls: u64,
    pub input_tokens: u64,
    pub output_tokens: u64,
    /// None when the model has no price.
    pub usd: Option<f64>,
}

/// Calls and tokens, summed as they are added.
#[derive(Default)]
struct Tally {
    calls: u64,
    input: u64,
    output: u64,
}

impl Tally {
    fn call(&mut self, input: u64, output: u64) {
        self.calls += 1;
        self.input += input;
        self.output += output;
    }
}

fn tokens(chars: u64) -> u64 {
    chars.div_ceil(4)
}

/// Paper text a written part adds to the `.tex` (its reply less the prose around it).
const PART_TEXT: u64 = 900;
const PARTS: u64 = 8;

/// The expected cost of `stage` for one idea (ideas: one batch of `ideas.num_ideas`).
pub fn estimate(settings: &Settings, sizes: &Sizes, stage: Stage) -> Estimate {
    let mut t = Tally::default();
    let code = tokens(sizes.code);
    let tex = tokens(sizes.tex);
    let runs = settings.experiment.max_runs.max(1) as u64;
    let paper = tex + PARTS * PART_TEXT;
    match stage {
        Stage::Ideas => {
            let rounds = settings.ideas.num_reflections.max(1) as u64;
            for i in 0..settings.ideas.num_ideas.max(1) as u64 {
                let base = prompt::SYSTEM + tokens(sizes.task) + code + (sizes.archived_ideas + i) * 300;
                for k in 0..rounds {
                    t.call(base + k * (prompt::TURN + reply::IDEA), reply::IDEA);
                }
            }
        }
        Stage::Novelty => {
            // Three searches and the decision, as a careful judge usually takes.
            let rounds = settings.novelty.max_rounds.clamp(1, 4) as u64;
            let listing = settings.novelty.results_per_query as u64 * prompt::RESULT;
            for k in 0..rounds {
                t.call(
                    prompt::SYSTEM + 300 + k * (listing + reply::NOVELTY + prompt::TURN),
                    reply::NOVELTY,
                );
            }
        }
        Stage::Experiment => {
            let files = code + tokens(sizes.plot) + tokens(sizes.notes);
            // The task and plan, then the last exchange; notes.txt grows by a run's record.
            let head = prompt::TURN + 200 + reply::EXPERIMENT;
            for k in 0..=runs {
                let tail = if k == 0 {
                    0
                } else {
                    prompt::TURN + k * prompt::RESULTS + reply::EXPERIMENT
                };
                t.call(
                    prompt::SYSTEM + files + k * 350 + head.min(k * head) + tail,
                    reply::EXPERIMENT,
                );
            }
            let late = prompt::SYSTEM + files + (runs + 1) * 350 + head + prompt::TURN + reply::EXPERIMENT;
            t.call(late, reply::PLOT);
            t.call(late + reply::PLOT, reply::NOTES);
        }
        Stage::Writeup => {
            let inputs =
                tokens(sizes.notes).max(400) + (runs + 1) * 350 + (runs + 1) * prompt::RESULTS + code;
            let head = prompt::SYSTEM + inputs + 20;
            for k in 0..PARTS {
                let tail = if k == 0 { 0 } else { prompt::TURN + reply::PART };
                t.call(head + tex + k * PART_TEXT + tail + prompt::TURN, reply::PART);
            }
            let rounds = settings.writeup.citation_rounds as u64;
            if rounds > 0 {
                let per_call = crate::stages::writeup::agent::QUERIES_PER_CALL as u64;
                let listing = per_call * settings.writeup.results_per_query.max(1) as u64 * prompt::PAPER;
                t.call(prompt::SYSTEM + paper + prompt::TURN, 120);
                for k in 0..rounds.div_ceil(per_call) {
                    t.call(
                        prompt::SYSTEM + paper + k * 60 + listing + prompt::TURN,
                        reply::CITE,
                    );
                }
            }
            t.call(head + paper + prompt::TURN + reply::PART, reply::REFINE);
            if settings.writeup.fix_rounds > 0 {
                t.call(head + paper + 2 * prompt::TURN + reply::REFINE, reply::FIX);
            }
        }
        Stage::Review => {
            let n = settings.review.ensemble.max(1) as u64;
            let examples: u64 = settings
                .review
                .examples
                .iter()
                .map(|e| tokens(len(Path::new(&e.paper)) + len(Path::new(&e.review))))
                .sum();
            let first = 150 + prompt::FORM + examples + paper;
            if n > 1 && batches_n(settings) {
                t.call(first, n * reply::REVIEW);
            } else {
                for _ in 0..n {
                    t.call(first, reply::REVIEW);
                }
            }
            if n > 1 {
                t.call(200 + prompt::FORM + n * reply::REVIEW, reply::REVIEW);
            }
            for k in 0..settings.review.reflection_rounds as u64 {
                t.call(first + (k + 1) * (reply::REVIEW + prompt::TURN), reply::REVIEW);
            }
        }
    }
    let model = llm_settings(settings, stage.role()).model;
    let prices = PriceTable::with_overrides(&settings.llm.prices);
    let cost = prices.cost(
        &model,
        &Usage {
            input_tokens: t.input,
            output_tokens: t.output,
            ..Usage::default()
        },
    );
    Estimate {
        stage: stage.name().to_string(),
        model,
        calls: t.calls,
        input_tokens: t.input,
        output_tokens: t.output,
        usd: cost.price_known.then_some(cost.usd),
    }
}

/// Whether the reviewer's provider takes the ensemble in one request (as `OpenAiClient`
/// decides it).
fn batches_n(settings: &Settings) -> bool {
    let llm = llm_settings(settings, ModelRole::Reviewer);
    match infer_provider(llm.provider, &llm.model) {
        ProviderKind::Openai => !is_reasoning_model(&llm.model),
        ProviderKind::Vllm => true,
        _ => false,
    }
}

/// `e` for `k` ideas.
pub fn stages_of(mut e: Estimate, k: u64) -> Estimate {
    e.calls *= k;
    e.input_tokens *= k;
    e.output_tokens *= k;
    e.usd = e.usd.map(|u| u * k as f64);
    e
}

/// `stages` in order, the per-idea ones (all but ideas) for `ideas` ideas.
pub fn stages(settings: &Settings, sizes: &Sizes, stages: &[Stage], ideas: u32) -> Vec<Estimate> {
    stages
        .iter()
        .map(|&stage| {
            let e = estimate(settings, sizes, stage);
            if stage == Stage::Ideas {
                e
            } else {
                stages_of(e, ideas as u64)
            }
        })
        .collect()
}

/// `~$0.40`, `~$0.004`, or the tokens when the model has no price.
pub fn short(e: &Estimate) -> String {
    match e.usd {
        Some(u) if u >= 0.1 => format!("~${u:.2}"),
        Some(u) if u >= 0.001 => format!("~${u:.3}"),
        Some(_) => "~$0.00".to_string(),
        None => format!("~{}k tokens", (e.input_tokens + e.output_tokens).div_ceil(1000)),
    }
}

/// The table `--estimate` prints.
pub fn table(estimates: &[Estimate]) -> String {
    let mut out = format!(
        "{:<12} {:<22} {:>6} {:>12} {:>12} {:>10}\n",
        "stage", "model", "calls", "input tok", "output tok", "cost"
    );
    let (mut calls, mut input, mut output, mut usd, mut priced) = (0, 0, 0, 0.0, true);
    for e in estimates {
        out.push_str(&format!(
            "{:<12} {:<22} {:>6} {:>12} {:>12} {:>10}\n",
            e.stage,
            e.model,
            e.calls,
            e.input_tokens,
            e.output_tokens,
            e.usd
                .map(|u| format!("${u:.2}"))
                .unwrap_or_else(|| "no price".into())
        ));
        calls += e.calls;
        input += e.input_tokens;
        output += e.output_tokens;
        match e.usd {
            Some(u) => usd += u,
            None => priced = false,
        }
    }
    out.push_str(&format!(
        "{:<12} {:<22} {:>6} {:>12} {:>12} {:>10}\n",
        "total",
        "",
        calls,
        input,
        output,
        if priced {
            format!("${usd:.2}")
        } else {
            format!("≥ ${usd:.2}")
        }
    ));
    out.push_str("(an upper bound: prompt caching, fewer runs or an early stop cost less)\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sizes() -> Sizes {
        Sizes {
            task: 800,
            code: 10_000,
            plot: 3_300,
            tex: 4_300,
            notes: 600,
            archived_ideas: 0,
        }
    }

    #[test]
    fn estimates_grow_linearly_with_runs_and_rounds_and_are_priced() {
        let mut s = Settings::default();
        s.llm.model = "gpt-4o".into();
        let exp = |runs: u32| {
            let mut s = s.clone();
            s.experiment.max_runs = runs;
            estimate(&s, &sizes(), Stage::Experiment).input_tokens as i64
        };
        // Nearly equal steps: what grows per call is notes.txt and the results listed,
        // not the history.
        let (d1, d2) = (exp(3) - exp(2), exp(4) - exp(3));
        assert!(d2 >= d1 && (d2 - d1) * 10 < d1, "{d1} {d2}");
        let cite = |rounds: u32| {
            let mut s = s.clone();
            s.writeup.citation_rounds = rounds;
            estimate(&s, &sizes(), Stage::Writeup)
        };
        let (a, b, c) = (cite(6), cite(12), cite(18));
        assert!(b.input_tokens > a.input_tokens);
        assert!((c.input_tokens - b.input_tokens).abs_diff(b.input_tokens - a.input_tokens) < 500);
        assert_eq!(cite(20).calls, 8 + 1 + 7 + 1 + 1);
        assert!(a.usd.unwrap() > 0.0);
        assert!(short(&a).starts_with("~$"));
    }

    #[test]
    fn the_ensemble_is_one_call_where_the_provider_batches() {
        let mut s = Settings::default();
        s.review.ensemble = 5;
        s.review.reflection_rounds = 0;
        s.llm.model = "gpt-4o".into();
        assert_eq!(estimate(&s, &sizes(), Stage::Review).calls, 2);
        s.llm.model = "claude-sonnet-4-5".into();
        assert_eq!(estimate(&s, &sizes(), Stage::Review).calls, 6);
        s.llm.model = "a-model-nobody-prices".into();
        let e = estimate(&s, &sizes(), Stage::Review);
        assert_eq!(e.usd, None);
        assert!(short(&e).ends_with("k tokens"));
    }

    #[test]
    fn per_idea_stages_are_multiplied_by_the_ideas() {
        let mut s = Settings::default();
        s.llm.model = "gpt-4o".into();
        let one = stages(&s, &sizes(), &Stage::ALL, 1);
        let two = stages(&s, &sizes(), &Stage::ALL[1..], 2);
        assert_eq!(one.len(), 5);
        assert_eq!(two.len(), 4);
        assert_eq!(two[2].input_tokens, 2 * one[3].input_tokens, "writeup ×2");
        assert_eq!(stages(&s, &sizes(), &[Stage::Ideas], 3)[0], one[0], "ideas once");
        assert!(table(&one).contains("total"));
    }
}
