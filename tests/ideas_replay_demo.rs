//! Idea generation over the demo template's recorded conversation
//! (templates/tiny_mlp/.aisci/replay/ideas.json), served in order with each
//! exchange's `expect` checked against the last user message.

use std::collections::VecDeque;
use std::sync::{Arc, Mutex};

use aisci::jobs::NoProgress;
use aisci::llm::{ChatRequest, ChatResponse, Llm, LlmError, Provider, Usage};
use aisci::project::{Idea, PromptJson};
use aisci::stages::ideas::agent::{generate_ideas, IdeaInputs, IdeaOptions};
use async_trait::async_trait;
use serde::Deserialize;
use tokio_util::sync::CancellationToken;

use crate::support::fs::tiny_mlp;

#[derive(Deserialize)]
struct Recording {
    about: String,
    model: String,
    exchanges: Vec<Exchange>,
}

#[derive(Deserialize, Clone)]
struct Exchange {
    stage: String,
    expect: Option<String>,
    response: Recorded,
}

#[derive(Deserialize, Clone)]
struct Recorded {
    text: String,
    usage: Usage,
    finish_reason: Option<String>,
}

struct Replay {
    model: String,
    queue: Mutex<VecDeque<Exchange>>,
}

#[async_trait]
impl Provider for Replay {
    fn name(&self) -> &str {
        "replay"
    }
    fn model(&self) -> &str {
        &self.model
    }
    async fn chat(&self, req: &ChatRequest, _cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        let ex = self
            .queue
            .lock()
            .unwrap()
            .pop_front()
            .ok_or_else(|| LlmError::Replay("recording exhausted".into()))?;
        let last = &req.messages.last().unwrap().content;
        if let Some(expect) = &ex.expect {
            if !last.contains(expect.as_str()) {
                return Err(LlmError::Replay(format!("expected {expect:?} in the prompt")));
            }
        }
        Ok(ChatResponse {
            text: ex.response.text,
            usage: ex.response.usage,
            model: self.model.clone(),
            finish_reason: ex.response.finish_reason,
        })
    }
}

#[tokio::test]
async fn demo_recording_yields_two_good_ideas() {
    let template = tiny_mlp();
    let rec: Recording =
        serde_json::from_str(&std::fs::read_to_string(template.join(".aisci/replay/ideas.json")).unwrap())
            .unwrap();
    assert!(rec.about.contains("No live model"));
    assert!(rec.exchanges.iter().all(|e| e.stage == "ideas"));
    let n_exchanges = rec.exchanges.len();
    let provider = Arc::new(Replay {
        model: rec.model.clone(),
        queue: Mutex::new(rec.exchanges.into_iter().collect()),
    });
    let llm = Llm::new(provider.clone());

    let prompt: PromptJson =
        serde_json::from_str(&std::fs::read_to_string(template.join("prompt.json")).unwrap()).unwrap();
    let seeds: Vec<Idea> =
        serde_json::from_str(&std::fs::read_to_string(template.join("seed_ideas.json")).unwrap()).unwrap();
    let code = std::fs::read_to_string(template.join("experiment.py")).unwrap();
    let out = tempfile::tempdir().unwrap();
    let ideas_path = out.path().join("ideas.json");
    let opts = IdeaOptions {
        num_ideas: 2,
        num_reflections: 3,
        temperature: Some(0.75),
        max_tokens: 4096,
    };
    let inputs = IdeaInputs {
        prompt: &prompt,
        seeds: &seeds,
        experiment_py: &code,
    };
    let report = generate_ideas(
        &llm,
        inputs,
        &opts,
        &ideas_path,
        &NoProgress,
        &CancellationToken::new(),
    )
    .await
    .unwrap();

    assert!(report.dropped.is_empty(), "{:?}", report.dropped);
    let names: Vec<_> = report.accepted.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(names, ["edge_of_stability_tiny_mlp", "margin_curriculum"]);
    assert_eq!(
        report.calls as usize, n_exchanges,
        "3 rounds, then 2 (early I am done)"
    );
    assert!(provider.queue.lock().unwrap().is_empty());
    assert_eq!(report.accepted[0].interestingness, 8);
    assert_eq!(llm.totals().usage.output_tokens, 312 + 398 + 371 + 421 + 388);

    let written: Vec<Idea> = serde_json::from_str(&std::fs::read_to_string(&ideas_path).unwrap()).unwrap();
    let all: Vec<_> = written.iter().map(|i| i.name.as_str()).collect();
    assert_eq!(
        all,
        [
            "learning_rate_warmup",
            "init_scale_regimes",
            "edge_of_stability_tiny_mlp",
            "margin_curriculum"
        ]
    );
}
