//! `Llm`: the one door every stage uses to talk to a model.

use std::sync::{Arc, Mutex};

use tokio_util::sync::CancellationToken;

use super::{ChatRequest, ChatResponse, LlmError, Provider, Usage};

/// What a call is for, so the ledger can total per stage and per idea.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct CallTag {
    pub stage: String,
    pub idea: Option<String>,
}

impl CallTag {
    pub fn new(stage: impl Into<String>, idea: Option<&str>) -> Self {
        Self {
            stage: stage.into(),
            idea: idea.map(str::to_owned),
        }
    }
}

/// Totals over a set of calls.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Totals {
    pub calls: u64,
    pub usage: Usage,
    pub cost_usd: f64,
}

pub struct Llm {
    provider: Arc<dyn Provider>,
    totals: Mutex<Totals>,
}

impl Llm {
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self {
            provider,
            totals: Mutex::new(Totals::default()),
        }
    }

    pub fn provider(&self) -> &dyn Provider {
        self.provider.as_ref()
    }

    pub async fn chat(
        &self,
        _tag: CallTag,
        req: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        let resp = self.provider.chat(req, cancel).await?;
        let mut t = self.totals.lock().unwrap();
        t.calls += 1;
        t.usage.input_tokens += resp.usage.input_tokens;
        t.usage.cached_input_tokens += resp.usage.cached_input_tokens;
        t.usage.output_tokens += resp.usage.output_tokens;
        Ok(resp)
    }

    /// Everything spent through this `Llm` so far.
    pub fn totals(&self) -> Totals {
        *self.totals.lock().unwrap()
    }
}
