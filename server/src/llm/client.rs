//! `Llm`: the one door every stage uses to talk to a model. It adds what the wire
//! clients deliberately lack: bounded retries, per-attempt timeouts, cancellation, the
//! usage/cost ledger and the budget cap.

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::config::LlmSettings;

use super::ledger::{CallRecord, Ledger, LedgerSnapshot, Totals};
use super::pricing::PriceTable;
use super::retry::RetryPolicy;
use super::{ChatRequest, ChatResponse, LlmError, Provider, Role, MAX_IMAGE_BYTES};

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

pub struct Llm {
    provider: Arc<dyn Provider>,
    policy: RetryPolicy,
    prices: PriceTable,
    budget_usd: Option<f64>,
    ledger: Mutex<Ledger>,
}

impl std::fmt::Debug for Llm {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Llm")
            .field("provider", &self.provider.name())
            .field("model", &self.provider.model())
            .field("policy", &self.policy)
            .field("budget_usd", &self.budget_usd)
            .finish_non_exhaustive()
    }
}

impl Llm {
    /// Default retry policy (`LlmSettings::default()`), built-in prices, no budget.
    pub fn new(provider: Arc<dyn Provider>) -> Self {
        Self {
            provider,
            policy: RetryPolicy::default(),
            prices: PriceTable::builtin(),
            budget_usd: None,
            ledger: Mutex::new(Ledger::default()),
        }
    }

    /// Retries, price overrides and budget from `settings`.
    pub fn with_settings(provider: Arc<dyn Provider>, settings: &LlmSettings) -> Self {
        Self::new(provider)
            .with_retry_policy(RetryPolicy::from_settings(settings))
            .with_prices(PriceTable::with_overrides(&settings.prices))
            .with_budget(settings.budget_usd)
    }

    pub fn with_retry_policy(mut self, policy: RetryPolicy) -> Self {
        self.policy = policy;
        self
    }

    pub fn with_prices(mut self, prices: PriceTable) -> Self {
        self.prices = prices;
        self
    }

    pub fn with_budget(mut self, budget_usd: Option<f64>) -> Self {
        self.budget_usd = budget_usd;
        self
    }

    /// Seed the ledger with calls from an earlier session (e.g. a resumed run), so
    /// totals and the budget cap include them.
    pub fn with_records(self, records: Vec<CallRecord>) -> Self {
        self.lock().extend(records);
        self
    }

    pub fn provider(&self) -> &dyn Provider {
        self.provider.as_ref()
    }

    pub fn retry_policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// The model requests go to, as configured.
    pub fn model(&self) -> &str {
        self.provider.model()
    }

    pub fn budget_usd(&self) -> Option<f64> {
        self.budget_usd
    }

    /// Whether requests with images may go to this model (`llm.vision`, else what the
    /// provider knows of the model). A request with images to one that does not is
    /// refused by [`Llm::chat`] before anything is sent.
    pub fn accepts_images(&self) -> bool {
        self.provider.accepts_images()
    }

    /// A request's images, checked before anything is sent: only in user messages, each
    /// within [`MAX_IMAGE_BYTES`], and only to a model that accepts them.
    fn check_images(&self, req: &ChatRequest) -> Result<(), LlmError> {
        let count = req.image_count();
        if count == 0 {
            return Ok(());
        }
        if req
            .messages
            .iter()
            .any(|m| m.role != Role::User && !m.images.is_empty())
        {
            return Err(LlmError::Config(
                "images can only be sent in user messages; an assistant message carries some".into(),
            ));
        }
        if let Some(img) = req
            .messages
            .iter()
            .flat_map(|m| &m.images)
            .find(|img| img.data.len() as u64 > MAX_IMAGE_BYTES)
        {
            return Err(LlmError::Config(format!(
                "an image ({}) of {} bytes is over the {MAX_IMAGE_BYTES}-byte (20 MB) limit the providers set \
                 per image; shrink or re-encode it",
                img.media_type,
                img.data.len()
            )));
        }
        if !self.accepts_images() {
            let recording = if self.provider.name() == "replay" {
                " (or give the recording \"vision\": true)"
            } else {
                ""
            };
            return Err(LlmError::Config(format!(
                "the request carries {count} image(s), but model {} ({}) is not known to accept images; \
                 if it does, set llm.vision = \"yes\"{recording}",
                self.provider.model(),
                self.provider.name()
            )));
        }
        Ok(())
    }

    /// A refused request with images says what was sent, since an image is the usual cause.
    fn with_image_hint(&self, err: LlmError, req: &ChatRequest) -> LlmError {
        let count = req.image_count();
        match err {
            LlmError::Rejected {
                provider,
                status: 400,
                message,
            } if count > 0 => LlmError::Rejected {
                provider,
                status: 400,
                message: format!(
                    "{message} ({count} image(s) were sent to {}; if the model takes no images, set \
                     llm.vision = \"no\")",
                    self.provider.model()
                ),
            },
            other => other,
        }
    }

    /// Send `req`, retrying transient failures within the policy's bounds.
    ///
    /// Refused with `BudgetExceeded` when the spend so far has reached `budget_usd`
    /// (concurrent calls that pass the check together can overshoot by their own cost).
    /// `cancel` aborts an in-flight request or a backoff wait at once.
    pub async fn chat(
        &self,
        tag: CallTag,
        req: &ChatRequest,
        cancel: &CancellationToken,
    ) -> Result<ChatResponse, LlmError> {
        let mut replies = self.call(tag, req, 1, cancel).await?;
        Ok(replies.remove(0))
    }

    /// Whether [`Llm::chat_n`] gets its `n` answers in one request (the provider's `n`)
    /// rather than `n` requests that each send the whole prompt.
    pub fn batches_n(&self) -> bool {
        self.provider.supports_n()
    }

    /// `n` independent answers to `req` (an ensemble): one request where the provider
    /// can return several completions (the prompt is paid for once; one ledger record
    /// with the whole usage, on the first answer), else `n` requests at once. At least
    /// one answer; with separate requests the failed ones are left out unless all fail.
    pub async fn chat_n(
        &self,
        tag: CallTag,
        req: &ChatRequest,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<Vec<ChatResponse>, LlmError> {
        let n = n.max(1);
        if n > 1 && self.provider.supports_n() {
            return self.call(tag, req, n, cancel).await;
        }
        let all = futures::future::join_all((0..n).map(|_| self.chat(tag.clone(), req, cancel))).await;
        let mut out = Vec::new();
        let mut first_err = None;
        for r in all {
            match r {
                Ok(resp) => out.push(resp),
                Err(e) => {
                    first_err.get_or_insert(e);
                }
            }
        }
        match (out.is_empty(), first_err) {
            (true, Some(e)) => Err(e),
            _ => Ok(out),
        }
    }

    /// One request for `n` answers (`n` = 1: the plain call), retried within the policy.
    async fn call(
        &self,
        tag: CallTag,
        req: &ChatRequest,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<Vec<ChatResponse>, LlmError> {
        self.check_images(req)?;
        if let Some(budget) = self.budget_usd {
            let spent = self.lock().total().cost_usd;
            if spent >= budget {
                return Err(LlmError::BudgetExceeded { spent, budget });
            }
        }
        let started = Instant::now();
        let mut attempts: u32 = 0;
        loop {
            if cancel.is_cancelled() {
                return Err(LlmError::Cancelled);
            }
            attempts += 1;
            let err = match self.attempt(req, n, cancel).await {
                Ok(replies) if !replies.is_empty() => {
                    self.record(&tag, &replies[0], attempts, started.elapsed());
                    return Ok(replies);
                }
                Ok(_) => LlmError::Protocol {
                    provider: self.provider.name().to_owned(),
                    message: "response has no choices".into(),
                },
                Err(e) => e,
            };
            if !err.is_retryable() {
                return Err(self.with_image_hint(err, req));
            }
            let exhausted = |err: &LlmError| LlmError::Exhausted {
                provider: self.provider.name().to_owned(),
                attempts,
                elapsed_secs: started.elapsed().as_secs_f64(),
                last: err.to_string(),
            };
            let retry = attempts - 1;
            if retry >= self.policy.max_retries {
                return Err(exhausted(&err));
            }
            // The server's own estimate beats our guess; a wait that would end past the
            // total allowance is not worth starting (OpenAlex-style hour-long waits).
            let delay = err
                .retry_after()
                .unwrap_or_else(|| self.policy.backoff(retry, &mut rand::thread_rng()));
            if started.elapsed() + delay > self.policy.max_total {
                return Err(exhausted(&err));
            }
            tracing::warn!(
                provider = self.provider.name(),
                stage = %tag.stage,
                attempt = attempts,
                delay_ms = delay.as_millis() as u64,
                error = %err,
                "model call failed; retrying"
            );
            tokio::select! {
                biased;
                _ = cancel.cancelled() => return Err(LlmError::Cancelled),
                _ = tokio::time::sleep(delay) => {}
            }
        }
    }

    async fn attempt(
        &self,
        req: &ChatRequest,
        n: u32,
        cancel: &CancellationToken,
    ) -> Result<Vec<ChatResponse>, LlmError> {
        let timeout = self.policy.request_timeout;
        let answer = async {
            if n > 1 {
                self.provider.chat_n(req, n, cancel).await
            } else {
                self.provider.chat(req, cancel).await.map(|r| vec![r])
            }
        };
        tokio::select! {
            biased;
            _ = cancel.cancelled() => Err(LlmError::Cancelled),
            r = tokio::time::timeout(timeout, answer) => match r {
                Ok(r) => r,
                Err(_) => Err(LlmError::Timeout {
                    provider: self.provider.name().to_owned(),
                    secs: timeout.as_secs_f64().ceil() as u64,
                }),
            },
        }
    }

    fn record(&self, tag: &CallTag, resp: &ChatResponse, attempts: u32, elapsed: Duration) {
        let model = if resp.model.is_empty() {
            self.provider.model()
        } else {
            &resp.model
        };
        // Price by the answering model's name, falling back to the configured one (a
        // proxy may rename the model to something we have no price for).
        let mut cost = self.prices.cost(model, &resp.usage);
        if !cost.price_known {
            cost = self.prices.cost(self.provider.model(), &resp.usage);
        }
        self.lock().push(CallRecord {
            at: chrono::Utc::now().to_rfc3339(),
            stage: tag.stage.clone(),
            idea: tag.idea.clone(),
            provider: self.provider.name().to_owned(),
            model: model.to_owned(),
            usage: resp.usage,
            cost_usd: cost.usd,
            price_known: cost.price_known,
            attempts,
            elapsed_ms: elapsed.as_millis() as u64,
            finish_reason: resp.finish_reason.clone(),
        });
    }

    /// Everything spent through this `Llm` so far.
    pub fn totals(&self) -> Totals {
        self.lock().total()
    }

    /// Totals per stage, per idea and overall, plus which models had no price.
    pub fn ledger_snapshot(&self) -> LedgerSnapshot {
        self.lock().snapshot(self.budget_usd)
    }

    /// Every successful call so far, in order; serialisable for persistence.
    pub fn records(&self) -> Vec<CallRecord> {
        self.lock().records().to_vec()
    }

    fn lock(&self) -> MutexGuard<'_, Ledger> {
        // The ledger holds plain data; a panic elsewhere cannot leave it half-updated.
        self.ledger.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::llm::Usage;
    use async_trait::async_trait;

    /// Answers from a script of results, one per call.
    struct Scripted(Mutex<Vec<Result<ChatResponse, LlmError>>>);

    #[async_trait]
    impl Provider for Scripted {
        fn name(&self) -> &str {
            "scripted"
        }
        fn model(&self) -> &str {
            "gpt-4o"
        }
        async fn chat(
            &self,
            _req: &ChatRequest,
            _cancel: &CancellationToken,
        ) -> Result<ChatResponse, LlmError> {
            self.0.lock().unwrap().remove(0)
        }
    }

    fn ok(input: u64, output: u64) -> Result<ChatResponse, LlmError> {
        Ok(ChatResponse {
            text: "ok".into(),
            usage: Usage {
                input_tokens: input,
                output_tokens: output,
                ..Usage::default()
            },
            model: String::new(),
            finish_reason: Some("stop".into()),
        })
    }

    fn req() -> ChatRequest {
        ChatRequest {
            system: None,
            messages: vec![super::super::Message::user("hi")],
            temperature: None,
            max_tokens: 10,
        }
    }

    #[tokio::test]
    async fn new_keeps_defaults_and_prices_by_configured_model() {
        let busy = LlmError::Unavailable {
            provider: "scripted".into(),
            status: 503,
            message: "busy".into(),
            retry_after: Some(Duration::from_millis(5)),
        };
        let llm = Llm::new(Arc::new(Scripted(Mutex::new(vec![Err(busy), ok(1_000_000, 0)]))));
        assert_eq!(llm.retry_policy(), &RetryPolicy::default());
        assert_eq!(llm.budget_usd(), None);
        let c = CancellationToken::new();
        llm.chat(CallTag::new("ideas", None), &req(), &c).await.unwrap();
        let t = llm.totals();
        assert_eq!(t.calls, 1);
        // Empty response model: priced as the provider's gpt-4o, $2.50 per million input.
        assert!((t.cost_usd - 2.5).abs() < 1e-9);
        assert_eq!(llm.records()[0].attempts, 2);
        assert_eq!(llm.records()[0].model, "gpt-4o");
    }

    #[tokio::test]
    async fn non_retryable_errors_return_at_once() {
        let bad = LlmError::Rejected {
            provider: "scripted".into(),
            status: 400,
            message: "bad".into(),
        };
        let llm = Llm::new(Arc::new(Scripted(Mutex::new(vec![Err(bad), ok(1, 1)]))));
        let e = llm
            .chat(CallTag::new("ideas", None), &req(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Rejected { status: 400, .. }));
        assert_eq!(llm.totals().calls, 0);
    }

    /// Takes images; counts the calls that reached it.
    #[derive(Default)]
    struct Seeing(std::sync::atomic::AtomicUsize);

    #[async_trait]
    impl Provider for Seeing {
        fn name(&self) -> &str {
            "seeing"
        }
        fn model(&self) -> &str {
            "gpt-4o"
        }
        fn accepts_images(&self) -> bool {
            true
        }
        async fn chat(
            &self,
            _req: &ChatRequest,
            _cancel: &CancellationToken,
        ) -> Result<ChatResponse, LlmError> {
            self.0.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            ok(1, 1)
        }
    }

    fn png() -> crate::llm::Image {
        crate::llm::Image {
            media_type: "image/png".into(),
            data: b"\x89PNG\r\n\x1a\n".to_vec(),
        }
    }

    fn with_image() -> ChatRequest {
        ChatRequest {
            messages: vec![super::super::Message::user_with_images(
                "what is this?",
                vec![png()],
            )],
            ..req()
        }
    }

    #[tokio::test]
    async fn images_to_a_text_only_model_are_refused_before_sending() {
        let llm = Llm::new(Arc::new(Scripted(Mutex::new(vec![ok(1, 1)]))));
        assert!(!llm.accepts_images());
        let c = CancellationToken::new();
        for e in [
            llm.chat(CallTag::new("x", None), &with_image(), &c)
                .await
                .unwrap_err(),
            llm.chat_n(CallTag::new("x", None), &with_image(), 3, &c)
                .await
                .unwrap_err(),
        ] {
            let LlmError::Config(text) = &e else {
                panic!("{e:?}")
            };
            assert!(text.contains("gpt-4o") && text.contains("llm.vision"), "{text}");
        }
        assert_eq!(llm.totals().calls, 0);
        // The scripted answer is still there: text alone goes through.
        llm.chat(CallTag::new("x", None), &req(), &c).await.unwrap();
    }

    #[tokio::test]
    async fn images_go_to_a_model_that_takes_them_within_limits() {
        let seeing = Arc::new(Seeing::default());
        let llm = Llm::new(seeing.clone());
        let c = CancellationToken::new();
        llm.chat(CallTag::new("x", None), &with_image(), &c)
            .await
            .unwrap();
        assert_eq!(seeing.0.load(std::sync::atomic::Ordering::SeqCst), 1);

        let mut big = with_image();
        big.messages[0].images[0]
            .data
            .resize(MAX_IMAGE_BYTES as usize + 1, 0);
        let e = llm.chat(CallTag::new("x", None), &big, &c).await.unwrap_err();
        assert!(matches!(&e, LlmError::Config(t) if t.contains("20 MB")), "{e:?}");

        let mut from_assistant = with_image();
        from_assistant.messages[0].role = Role::Assistant;
        let e = llm
            .chat(CallTag::new("x", None), &from_assistant, &c)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, LlmError::Config(t) if t.contains("user messages")),
            "{e:?}"
        );
        assert_eq!(seeing.0.load(std::sync::atomic::Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn a_refused_request_with_images_says_so() {
        struct Refusing;
        #[async_trait]
        impl Provider for Refusing {
            fn name(&self) -> &str {
                "openai"
            }
            fn model(&self) -> &str {
                "gpt-4o"
            }
            fn accepts_images(&self) -> bool {
                true
            }
            async fn chat(&self, _: &ChatRequest, _: &CancellationToken) -> Result<ChatResponse, LlmError> {
                Err(LlmError::Rejected {
                    provider: "openai".into(),
                    status: 400,
                    message: "Invalid image.".into(),
                })
            }
        }
        let llm = Llm::new(Arc::new(Refusing));
        let c = CancellationToken::new();
        let e = llm
            .chat(CallTag::new("x", None), &with_image(), &c)
            .await
            .unwrap_err();
        let text = e.to_string();
        assert!(
            text.contains("Invalid image.") && text.contains("1 image(s) were sent to gpt-4o"),
            "{text}"
        );
        let e = llm.chat(CallTag::new("x", None), &req(), &c).await.unwrap_err();
        assert_eq!(e.to_string(), "openai rejected the request (400): Invalid image.");
    }

    #[tokio::test]
    async fn cancelled_token_refuses_before_calling() {
        let llm = Llm::new(Arc::new(Scripted(Mutex::new(vec![ok(1, 1)]))));
        let c = CancellationToken::new();
        c.cancel();
        let e = llm.chat(CallTag::new("x", None), &req(), &c).await;
        assert!(matches!(e, Err(LlmError::Cancelled)));
    }
}
