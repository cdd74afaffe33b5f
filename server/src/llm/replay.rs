//! The offline provider: serves a recorded conversation in order. Used by default in
//! tests and demos so the whole loop runs without a network or a key.

use std::path::Path;
use std::sync::Mutex;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use tokio_util::sync::CancellationToken;

use super::{ChatRequest, ChatResponse, LlmError, Provider, Role, Usage};
use crate::config::Vision;

/// A recording file: `{"about", "model", "exchanges": [...]}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Recording {
    #[serde(default)]
    pub about: String,
    pub model: String,
    /// Whether the recorded model took images: a replayed run is refused an image exactly
    /// where the recorded one would have been.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub vision: bool,
    pub exchanges: Vec<RecordedExchange>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedExchange {
    /// The stage the exchange was recorded for; informational, shown in errors.
    #[serde(default)]
    pub stage: Option<String>,
    /// A substring the last user message must contain, so a recording that drifted
    /// from the prompts fails loudly instead of answering the wrong question.
    #[serde(default)]
    pub expect: Option<String>,
    pub response: RecordedResponse,
    /// Answers that depend on what the run produced (e.g. with or without figures): the
    /// first whose `when` occurs anywhere in the request is served instead of `response`.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub variants: Vec<RecordedVariant>,
    /// A call the run makes only in some cases (a figure's critique, when there are
    /// figures): served when this occurs in the request, else passed over for the next.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub only_when: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedVariant {
    pub when: String,
    pub response: RecordedResponse,
}

/// Whether `needle` occurs anywhere in the request (system prompt or any message).
fn mentions(req: &ChatRequest, needle: &str) -> bool {
    req.system.as_deref().is_some_and(|s| s.contains(needle))
        || req.messages.iter().any(|m| m.content.contains(needle))
}

impl RecordedExchange {
    fn answer_for(&self, req: &ChatRequest) -> &RecordedResponse {
        self.variants
            .iter()
            .find(|v| mentions(req, &v.when))
            .map(|v| &v.response)
            .unwrap_or(&self.response)
    }

    fn passed_over_by(&self, req: &ChatRequest) -> bool {
        self.only_when.as_deref().is_some_and(|w| !mentions(req, w))
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct RecordedResponse {
    pub text: String,
    #[serde(default)]
    pub usage: Usage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

#[derive(Debug)]
pub struct ReplayProvider {
    recording: Recording,
    source: String,
    next: Mutex<usize>,
    vision: Vision,
}

impl ReplayProvider {
    pub fn new(recording: Recording, source: impl Into<String>) -> Self {
        Self {
            recording,
            source: source.into(),
            next: Mutex::new(0),
            vision: Vision::Auto,
        }
    }

    /// `llm.vision`: `yes`/`no` override the recording's own `vision` flag.
    pub fn with_vision(mut self, vision: Vision) -> Self {
        self.vision = vision;
        self
    }

    pub fn from_file(path: &Path) -> Result<Self, LlmError> {
        let text = std::fs::read_to_string(path)
            .map_err(|e| LlmError::Replay(format!("cannot read recording {}: {e}", path.display())))?;
        Self::from_json(&text, path.display().to_string())
    }

    pub fn from_json(json: &str, source: impl Into<String>) -> Result<Self, LlmError> {
        let source = source.into();
        let recording: Recording = serde_json::from_str(json)
            .map_err(|e| LlmError::Replay(format!("recording {source} is not valid: {e}")))?;
        Ok(Self::new(recording, source))
    }

    /// Exchanges served so far.
    pub fn served(&self) -> usize {
        *self.next.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn remaining(&self) -> usize {
        self.recording.exchanges.len().saturating_sub(self.served())
    }

    fn serve(&self, req: &ChatRequest) -> Result<ChatResponse, LlmError> {
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let mut i = *next;
        while self
            .recording
            .exchanges
            .get(i)
            .is_some_and(|ex| ex.passed_over_by(req))
        {
            i += 1;
        }
        let Some(ex) = self.recording.exchanges.get(i) else {
            return Err(LlmError::Replay(format!(
                "recording {} has {} exchange(s); exchange #{i} was requested (the run asked for more calls than were recorded)",
                self.source,
                self.recording.exchanges.len()
            )));
        };
        if let Some(expect) = ex.expect.as_deref() {
            let last_user = req
                .messages
                .iter()
                .rev()
                .find(|m| m.role == Role::User)
                .map(|m| m.content.as_str())
                .unwrap_or("");
            if !last_user.contains(expect) {
                // The index is not advanced: the same exchange is still the next one.
                return Err(LlmError::Replay(format!(
                    "exchange #{i}{} of {}: the last user message does not contain {expect:?}",
                    ex.stage
                        .as_deref()
                        .map(|s| format!(" (stage {s})"))
                        .unwrap_or_default(),
                    self.source
                )));
            }
        }
        *next = i + 1;
        let answer = ex.answer_for(req);
        Ok(ChatResponse {
            text: answer.text.clone(),
            usage: answer.usage,
            model: self.recording.model.clone(),
            finish_reason: answer.finish_reason.clone(),
        })
    }
}

#[async_trait]
impl Provider for ReplayProvider {
    fn name(&self) -> &str {
        "replay"
    }

    fn model(&self) -> &str {
        &self.recording.model
    }

    fn accepts_images(&self) -> bool {
        self.vision.forced().unwrap_or(self.recording.vision)
    }

    async fn chat(&self, req: &ChatRequest, cancel: &CancellationToken) -> Result<ChatResponse, LlmError> {
        if cancel.is_cancelled() {
            return Err(LlmError::Cancelled);
        }
        self.serve(req)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Message;

    const REC: &str = r#"{
      "about": "two idea exchanges",
      "model": "gpt-4o-2024-11-20",
      "exchanges": [
        {"stage": "ideas", "expect": "warmup", "response": {"text": "idea one", "usage": {"input_tokens": 100, "cached_input_tokens": 0, "cache_write_tokens": 0, "output_tokens": 20}, "finish_reason": "stop"}},
        {"stage": "ideas", "response": {"text": "idea two", "usage": {"input_tokens": 7, "output_tokens": 3}}}
      ]
    }"#;

    fn req(text: &str) -> ChatRequest {
        ChatRequest {
            system: None,
            messages: vec![Message::user(text)],
            temperature: None,
            max_tokens: 10,
        }
    }

    #[tokio::test]
    async fn serves_in_order_then_runs_out() {
        let p = ReplayProvider::from_json(REC, "rec.json").unwrap();
        let c = CancellationToken::new();
        assert_eq!(p.name(), "replay");
        assert_eq!(p.model(), "gpt-4o-2024-11-20");
        let r = p.chat(&req("about warmup"), &c).await.unwrap();
        assert_eq!(r.text, "idea one");
        assert_eq!(r.usage.input_tokens, 100);
        assert_eq!(r.model, "gpt-4o-2024-11-20");
        let r = p.chat(&req("anything"), &c).await.unwrap();
        assert_eq!(r.text, "idea two");
        assert_eq!(r.usage.output_tokens, 3);
        assert_eq!(r.usage.cached_input_tokens, 0);
        let err = p.chat(&req("more"), &c).await.unwrap_err();
        assert!(err.to_string().contains("exchange #2"), "{err}");
    }

    #[tokio::test]
    async fn a_variant_answers_when_its_marker_is_in_the_request() {
        let rec = r#"{"model": "m", "exchanges": [
          {"response": {"text": "plain"}, "variants": [{"when": "fig.png", "response": {"text": "with figure"}}]},
          {"response": {"text": "plain"}, "variants": [{"when": "fig.png", "response": {"text": "with figure"}}]}
        ]}"#;
        let p = ReplayProvider::from_json(rec, "rec.json").unwrap();
        let c = CancellationToken::new();
        let mut with_system = req("write the notes");
        with_system.system = Some("figures: fig.png shows accuracy".into());
        assert_eq!(p.chat(&with_system, &c).await.unwrap().text, "with figure");
        assert_eq!(p.chat(&req("write the notes"), &c).await.unwrap().text, "plain");
    }

    #[tokio::test]
    async fn an_exchange_only_when_is_passed_over_by_a_request_without_it() {
        let rec = r#"{"model": "m", "exchanges": [
          {"response": {"text": "plot"}},
          {"response": {"text": "critique"}, "only_when": "The figure a.png."},
          {"response": {"text": "notes"}}
        ]}"#;
        let c = CancellationToken::new();
        let p = ReplayProvider::from_json(rec, "rec.json").unwrap();
        assert_eq!(p.chat(&req("plot it"), &c).await.unwrap().text, "plot");
        assert_eq!(
            p.chat(&req("The figure a.png. Judge it."), &c)
                .await
                .unwrap()
                .text,
            "critique"
        );
        assert_eq!(p.chat(&req("write notes"), &c).await.unwrap().text, "notes");
        // Without figures, the critique is never asked for: the notes come next.
        let p = ReplayProvider::from_json(rec, "rec.json").unwrap();
        assert_eq!(p.chat(&req("plot it"), &c).await.unwrap().text, "plot");
        assert_eq!(p.chat(&req("write notes"), &c).await.unwrap().text, "notes");
        assert_eq!(p.remaining(), 0);
    }

    #[tokio::test]
    async fn mismatch_names_the_exchange_and_does_not_advance() {
        let p = ReplayProvider::from_json(REC, "rec.json").unwrap();
        let c = CancellationToken::new();
        let err = p.chat(&req("about dropout"), &c).await.unwrap_err();
        let text = err.to_string();
        assert!(text.contains("exchange #0 (stage ideas)"), "{text}");
        assert!(text.contains("warmup"));
        assert_eq!(p.served(), 0);
    }

    #[test]
    fn a_recording_says_whether_its_model_took_images() {
        let p = ReplayProvider::from_json(REC, "rec.json").unwrap();
        assert!(!p.accepts_images(), "no \"vision\" field: text only");
        assert!(p.with_vision(Vision::Yes).accepts_images());
        let seeing = REC.replacen("\"model\"", "\"vision\": true, \"model\"", 1);
        let p = ReplayProvider::from_json(&seeing, "rec.json").unwrap();
        assert!(p.accepts_images());
        assert!(!p.with_vision(Vision::No).accepts_images());
        let p = ReplayProvider::from_json(&seeing, "rec.json").unwrap();
        assert!(p.with_vision(Vision::Auto).accepts_images());
        // Written back, a text-only recording has no `vision` key.
        let r: Recording = serde_json::from_str(REC).unwrap();
        assert!(serde_json::to_value(&r).unwrap().get("vision").is_none());
    }

    #[tokio::test]
    async fn images_to_a_text_only_recording_are_refused_before_it_is_consumed() {
        use crate::llm::{CallTag, Image, Llm};
        let p = std::sync::Arc::new(ReplayProvider::from_json(REC, "rec.json").unwrap());
        let llm = Llm::new(p.clone());
        let img = Image {
            media_type: "image/png".into(),
            data: b"\x89PNG\r\n\x1a\n".to_vec(),
        };
        let req = ChatRequest {
            messages: vec![Message::user_with_images("about warmup", vec![img])],
            ..req("")
        };
        let e = llm
            .chat(CallTag::new("ideas", None), &req, &CancellationToken::new())
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("llm.vision") && text.contains("\"vision\": true"),
            "{text}"
        );
        assert_eq!(p.served(), 0);
    }

    #[test]
    fn invalid_recording_is_a_replay_error() {
        assert!(matches!(
            ReplayProvider::from_json("{}", "x"),
            Err(LlmError::Replay(_))
        ));
    }
}
