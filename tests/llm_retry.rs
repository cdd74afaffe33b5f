//! `Llm`'s retry loop, timeouts, cancellation, budget cap and ledger, against the local
//! fake server and the replay provider.

// Named `llm` so that `cargo test -p aisci llm` selects these tests.
mod llm {

    use std::collections::{BTreeMap, HashMap};
    use std::time::{Duration, Instant};

    use crate::support::fake_llm::{fixture, FakeLlm, Reply};
    use aisci::config::{LlmSettings, Price, ProviderKind};
    use aisci::llm::{self, CallTag, ChatRequest, Llm, LlmError, Message, RetryPolicy};
    use tokio_util::sync::CancellationToken;

    const KEY: &str = "sk-test-secret-key-5f3a9c";

    fn env() -> HashMap<String, String> {
        [
            ("OPENAI_API_KEY", KEY),
            ("ANTHROPIC_API_KEY", KEY),
            ("DEEPSEEK_API_KEY", KEY),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn settings(model: &str, base: &str, stream: bool) -> LlmSettings {
        LlmSettings {
            model: model.into(),
            provider: ProviderKind::Auto,
            base_url: Some(base.into()),
            stream,
            ..LlmSettings::default()
        }
    }

    fn policy(max_retries: u32) -> RetryPolicy {
        RetryPolicy {
            max_retries,
            max_total: Duration::from_secs(10),
            base_delay: Duration::from_millis(10),
            max_delay: Duration::from_millis(40),
            request_timeout: Duration::from_secs(5),
        }
    }

    fn build(s: &LlmSettings, p: RetryPolicy) -> Llm {
        llm::from_settings(s, &env()).unwrap().with_retry_policy(p)
    }

    fn request(text: &str) -> ChatRequest {
        ChatRequest {
            system: None,
            messages: vec![Message::user(text)],
            temperature: None,
            max_tokens: 256,
        }
    }

    fn tag(stage: &str, idea: Option<&str>) -> CallTag {
        CallTag::new(stage, idea)
    }

    fn ok_openai() -> Reply {
        Reply::json_fixture(200, "openai/chat_completion_response.json")
    }

    #[tokio::test]
    async fn rate_limit_429_honours_retry_after_ms_then_succeeds() {
        // The recorded headers say retry-after: 1 and retry-after-ms: 120; the precise one wins.
        let fake = FakeLlm::start(vec![
            Reply::http_fixture("openai/error_429_rate_limit.http"),
            ok_openai(),
        ])
        .await;
        let llm = build(&settings("gpt-4o", &fake.v1(), false), policy(3));
        let r = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.usage.input_tokens, 1358);
        let seen = fake.seen();
        assert_eq!(seen.len(), 2);
        let waited = seen[1].at - seen[0].at;
        assert!(waited >= Duration::from_millis(120), "waited {waited:?}");
        assert!(waited < Duration::from_millis(900), "waited {waited:?}");
        assert_eq!(llm.records()[0].attempts, 2);
    }

    #[tokio::test]
    async fn anthropic_529_overloaded_then_success() {
        let fake = FakeLlm::start(vec![
            Reply::http_fixture("anthropic/error_529_overloaded.http"),
            Reply::json_fixture(200, "anthropic/messages_response.json"),
        ])
        .await;
        let llm = build(&settings("claude-sonnet-4-5", &fake.url, false), policy(3));
        let r = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.usage.input_tokens, 406);
        assert_eq!(fake.hits(), 2);
    }

    #[tokio::test]
    async fn unauthorized_is_not_retried_and_never_shows_the_key() {
        // A hostile or careless server echoing the key must not get it into our messages.
        let echo = format!(
            r#"{{"error":{{"message":"Incorrect API key provided: {KEY}.","type":"invalid_request_error","param":null,"code":"invalid_api_key"}}}}"#
        );
        let fake = FakeLlm::start(vec![Reply::json(401, echo), ok_openai()]).await;
        let llm = build(&settings("gpt-4o", &fake.v1(), false), policy(3));
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(fake.hits(), 1);
        assert!(matches!(e, LlmError::Rejected { status: 401, .. }), "{e:?}");
        assert!(!e.to_string().contains(KEY), "{e}");
        assert!(!format!("{e:?}").contains(KEY));
        assert!(!format!("{llm:?}").contains(KEY));
        assert_eq!(fake.seen()[0].headers["authorization"], format!("Bearer {KEY}"));

        // The recorded Anthropic 401 as well.
        let fake = FakeLlm::start(vec![Reply::json_fixture(
            401,
            "anthropic/error_401_authentication.json",
        )])
        .await;
        let llm = build(&settings("claude-haiku-4-5", &fake.url, false), policy(3));
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(fake.hits(), 1);
        assert!(e.to_string().contains("invalid x-api-key"), "{e}");
    }

    #[tokio::test]
    async fn quota_and_balance_errors_are_not_retried() {
        let fake = FakeLlm::start(vec![
            Reply::json_fixture(429, "openai/error_429_insufficient_quota.json"),
            ok_openai(),
        ])
        .await;
        let llm = build(&settings("gpt-4o", &fake.v1(), false), policy(3));
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(fake.hits(), 1);
        assert!(matches!(e, LlmError::Rejected { status: 429, .. }), "{e:?}");
        assert!(e.to_string().contains("exceeded your current quota"));

        let fake = FakeLlm::start(vec![
            Reply::json_fixture(
                402,
                "openai_compatible/deepseek_error_402_insufficient_balance.json",
            ),
            ok_openai(),
        ])
        .await;
        let llm = build(&settings("deepseek-chat", &fake.url, false), policy(3));
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(fake.hits(), 1);
        assert!(e.to_string().contains("Insufficient Balance"), "{e}");
    }

    #[tokio::test]
    async fn midstream_error_object_is_retried_then_succeeds() {
        let fake = FakeLlm::start(vec![
            Reply::sse_fixture("openai/chat_completion_stream_midstream_error.sse"),
            Reply::sse_fixture("openai/chat_completion_stream.sse"),
        ])
        .await;
        let llm = build(&settings("gpt-4o", &fake.v1(), true), policy(2));
        let r = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap();
        assert!(r.text.starts_with("I'm unable"));
        assert_eq!(fake.hits(), 2);
        // Only the complete answer is billed: no partial "Hello" from the broken attempt.
        assert!(!r.text.contains("Hello"));
        assert_eq!(llm.totals().calls, 1);
    }

    #[tokio::test]
    async fn broken_connection_mid_stream_is_retried() {
        let stream = fixture("openai/chat_completion_stream.sse");
        let half = stream[..stream.len() / 2].to_owned();
        let fake = FakeLlm::start(vec![
            Reply::Cut { body: half },
            Reply::sse_fixture("openai/chat_completion_stream.sse"),
        ])
        .await;
        let llm = build(&settings("gpt-4o", &fake.v1(), true), policy(2));
        let r = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.usage.output_tokens, 30);
        assert_eq!(fake.hits(), 2);
    }

    #[tokio::test]
    async fn anthropic_midstream_overload_fails_cleanly_when_retries_run_out() {
        let fake = FakeLlm::start(vec![
            Reply::sse_fixture("anthropic/messages_stream_error_overloaded.sse"),
            Reply::sse_fixture("anthropic/messages_stream_error_overloaded.sse"),
        ])
        .await;
        let llm = build(&settings("claude-sonnet-4-5", &fake.url, true), policy(1));
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(fake.hits(), 2);
        match &e {
            LlmError::Exhausted { attempts, last, .. } => {
                assert_eq!(*attempts, 2);
                assert!(last.contains("Overloaded"), "{last}");
            }
            other => panic!("expected Exhausted, got {other:?}"),
        }
        assert_eq!(llm.totals().calls, 0);
    }

    #[tokio::test]
    async fn request_timeout_is_retried_and_bounded() {
        let fake = FakeLlm::start(vec![ok_openai().delayed(Duration::from_secs(3)), ok_openai()]).await;
        let mut p = policy(1);
        p.request_timeout = Duration::from_millis(200);
        let llm = build(&settings("gpt-4o", &fake.v1(), false), p);
        let t = Instant::now();
        let r = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r.usage.output_tokens, 140);
        assert_eq!(fake.hits(), 2);

        // With no retry left, the timeout is the reported cause.
        let fake = FakeLlm::start(vec![ok_openai().delayed(Duration::from_secs(3))]).await;
        let mut p = policy(0);
        p.request_timeout = Duration::from_millis(150);
        let llm = build(&settings("gpt-4o", &fake.v1(), false), p);
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(e.to_string().contains("did not answer"), "{e}");
    }

    #[tokio::test]
    async fn retries_stop_at_the_total_time_bound() {
        let overloaded =
            Reply::json_fixture(503, "openai/error_503_overloaded.json").with_header("retry-after-ms", "300");
        let fake = FakeLlm::start(vec![overloaded; 10]).await;
        let mut p = policy(10);
        p.max_total = Duration::from_millis(700);
        let llm = build(&settings("gpt-4o", &fake.v1(), false), p);
        let t = Instant::now();
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        let elapsed = t.elapsed();
        assert!(elapsed < Duration::from_millis(1000), "{elapsed:?}");
        // 0 ms, ~300 ms, ~600 ms; a fourth wait would end past 700 ms.
        assert_eq!(fake.hits(), 3);
        assert!(matches!(e, LlmError::Exhausted { attempts: 3, .. }), "{e:?}");
        assert!(e.to_string().contains("overloaded"), "{e}");
    }

    #[tokio::test]
    async fn retry_count_is_bounded() {
        let fake = FakeLlm::start(vec![
            Reply::json_fixture(500, "openai/error_503_overloaded.json");
            6
        ])
        .await;
        let llm = build(&settings("gpt-4o", &fake.v1(), false), policy(2));
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert_eq!(fake.hits(), 3);
        assert!(matches!(e, LlmError::Exhausted { attempts: 3, .. }), "{e:?}");
    }

    #[tokio::test]
    async fn connection_refused_is_retried_then_reported() {
        let port = {
            let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
            l.local_addr().unwrap().port()
        };
        let llm = build(
            &settings("gpt-4o", &format!("http://127.0.0.1:{port}/v1"), false),
            policy(1),
        );
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Exhausted { attempts: 2, .. }), "{e:?}");
    }

    #[tokio::test]
    async fn cancellation_interrupts_backoff() {
        let fake = FakeLlm::start(vec![
            Reply::json_fixture(503, "openai/error_503_overloaded.json").with_header("retry-after", "5"),
            ok_openai(),
        ])
        .await;
        let mut p = policy(3);
        p.max_total = Duration::from_secs(60);
        let llm = build(&settings("gpt-4o", &fake.v1(), false), p);
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c2.cancel();
        });
        let t = Instant::now();
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Cancelled), "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(1), "{:?}", t.elapsed());
        assert_eq!(fake.hits(), 1);
    }

    #[tokio::test]
    async fn cancellation_aborts_an_in_flight_request() {
        let fake = FakeLlm::start(vec![ok_openai().delayed(Duration::from_secs(5))]).await;
        let llm = build(&settings("gpt-4o", &fake.v1(), false), policy(3));
        let cancel = CancellationToken::new();
        let c2 = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            c2.cancel();
        });
        let t = Instant::now();
        let e = llm
            .chat(tag("ideas", None), &request("hi"), &cancel)
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Cancelled), "{e:?}");
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    #[tokio::test]
    async fn missing_key_fails_before_any_request() {
        let fake = FakeLlm::start(vec![ok_openai()]).await;
        let s = settings("gpt-4o", &fake.v1(), false);
        let empty: HashMap<String, String> = HashMap::new();
        let e = llm::from_settings(&s, &empty).unwrap_err();
        assert_eq!(
            e.to_string(),
            "missing API key: set the environment variable OPENAI_API_KEY"
        );
        assert_eq!(fake.hits(), 0);
    }

    #[tokio::test]
    async fn budget_cap_refuses_the_next_call() {
        let fake = FakeLlm::start(vec![ok_openai(), ok_openai()]).await;
        let mut s = settings("gpt-4o-2024-11-20", &fake.v1(), false);
        s.budget_usd = Some(0.003);
        let llm = build(&s, policy(0));
        let c = CancellationToken::new();
        // 334 uncached * 2.50 + 1024 cached * 1.25 + 140 out * 10.00 per million = $0.003515.
        llm.chat(tag("ideas", None), &request("1"), &c).await.unwrap();
        let spent = llm.totals().cost_usd;
        assert!((spent - 0.003515).abs() < 1e-9, "{spent}");
        let e = llm.chat(tag("ideas", None), &request("2"), &c).await.unwrap_err();
        match e {
            LlmError::BudgetExceeded { spent: s, budget } => {
                assert!((s - spent).abs() < 1e-12);
                assert_eq!(budget, 0.003);
            }
            other => panic!("expected BudgetExceeded, got {other:?}"),
        }
        assert_eq!(fake.hits(), 1);
    }

    fn recording(model: &str) -> String {
        let usage = |i: u64, c: u64, o: u64| {
            format!(
                r#"{{"input_tokens":{i},"cached_input_tokens":{c},"cache_write_tokens":0,"output_tokens":{o}}}"#
            )
        };
        format!(
            r#"{{"about":"ledger test","model":"{model}","exchanges":[
          {{"stage":"ideas","expect":"idea","response":{{"text":"a","usage":{},"finish_reason":"stop"}}}},
          {{"stage":"experiment","response":{{"text":"b","usage":{},"finish_reason":"stop"}}}},
          {{"stage":"experiment","response":{{"text":"c","usage":{},"finish_reason":"stop"}}}},
          {{"stage":"writeup","response":{{"text":"d","usage":{},"finish_reason":"length"}}}}
        ]}}"#,
            usage(1000, 0, 100),
            usage(2000, 1000, 200),
            usage(4000, 0, 400),
            usage(8000, 0, 800),
        )
    }

    #[tokio::test]
    async fn ledger_totals_per_stage_and_idea_through_replay() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.json");
        std::fs::write(&path, recording("gpt-4o-2024-11-20")).unwrap();
        let s = LlmSettings {
            model: "replay".into(),
            replay_file: Some(path),
            ..LlmSettings::default()
        };
        // No key needed: replay never touches the network.
        let llm = llm::from_settings(&s, &HashMap::<String, String>::new()).unwrap();
        assert_eq!(llm.provider().name(), "replay");
        assert_eq!(llm.provider().model(), "gpt-4o-2024-11-20");
        let c = CancellationToken::new();
        llm.chat(tag("ideas", None), &request("give me an idea"), &c)
            .await
            .unwrap();
        llm.chat(tag("experiment", Some("warmup")), &request("run"), &c)
            .await
            .unwrap();
        llm.chat(tag("experiment", Some("dropout")), &request("run"), &c)
            .await
            .unwrap();
        let r = llm
            .chat(tag("writeup", Some("warmup")), &request("write"), &c)
            .await
            .unwrap();
        assert_eq!(r.finish_reason.as_deref(), Some("length"));

        let cost = |i: f64, cached: f64, o: f64| ((i - cached) * 2.5 + cached * 1.25 + o * 10.0) / 1e6;
        let snap = llm.ledger_snapshot();
        assert_eq!(snap.total.calls, 4);
        assert_eq!(snap.total.usage.input_tokens, 15000);
        assert_eq!(snap.total.usage.cached_input_tokens, 1000);
        assert_eq!(snap.total.usage.output_tokens, 1500);
        let total = cost(1000.0, 0.0, 100.0)
            + cost(2000.0, 1000.0, 200.0)
            + cost(4000.0, 0.0, 400.0)
            + cost(8000.0, 0.0, 800.0);
        assert!((snap.total.cost_usd - total).abs() < 1e-12);

        let exp = &snap.by_stage["experiment"];
        assert_eq!(exp.calls, 2);
        assert!((exp.cost_usd - (cost(2000.0, 1000.0, 200.0) + cost(4000.0, 0.0, 400.0))).abs() < 1e-12);
        let warmup = &snap.by_idea["warmup"];
        assert_eq!(warmup.calls, 2);
        assert_eq!(warmup.usage.input_tokens, 10000);
        assert!((warmup.cost_usd - (cost(2000.0, 1000.0, 200.0) + cost(8000.0, 0.0, 800.0))).abs() < 1e-12);
        assert_eq!(snap.by_idea.len(), 2);
        assert_eq!(snap.unpriced_calls, 0);
        assert_eq!(llm.totals(), snap.total);

        // Records serialise and restore into a new Llm with the same totals (resume).
        let json = serde_json::to_string(&llm.records()).unwrap();
        let back: Vec<aisci::llm::CallRecord> = serde_json::from_str(&json).unwrap();
        assert_eq!(back[1].stage, "experiment");
        assert_eq!(back[1].idea.as_deref(), Some("warmup"));
        let resumed = llm::from_settings(&s, &HashMap::<String, String>::new())
            .unwrap()
            .with_records(back);
        assert!((resumed.totals().cost_usd - total).abs() < 1e-12);

        // A fifth call is past the recording: a clear replay error naming the exchange.
        let e = llm
            .chat(tag("review", None), &request("x"), &c)
            .await
            .unwrap_err();
        assert!(
            matches!(&e, LlmError::Replay(m) if m.contains("exchange #4")),
            "{e}"
        );
    }

    #[tokio::test]
    async fn unknown_model_costs_zero_and_is_flagged_and_overrides_apply() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec.json");
        std::fs::write(&path, recording("my-local-llama")).unwrap();
        let mut s = LlmSettings {
            model: "replay".into(),
            replay_file: Some(path),
            ..LlmSettings::default()
        };
        let none = HashMap::<String, String>::new();
        let llm = llm::from_settings(&s, &none).unwrap();
        let c = CancellationToken::new();
        llm.chat(tag("ideas", None), &request("an idea"), &c)
            .await
            .unwrap();
        let snap = llm.ledger_snapshot();
        assert_eq!(snap.total.cost_usd, 0.0);
        assert_eq!(snap.unpriced_calls, 1);
        assert!(snap.unpriced_models.contains("my-local-llama"));
        assert!(!llm.records()[0].price_known);

        let mut prices = BTreeMap::new();
        prices.insert(
            "my-local-llama".to_string(),
            Price {
                input: 1.0,
                cached_input: None,
                cache_write: None,
                output: 2.0,
            },
        );
        s.prices = prices;
        let llm = llm::from_settings(&s, &none).unwrap();
        llm.chat(tag("ideas", None), &request("an idea"), &c)
            .await
            .unwrap();
        assert!((llm.totals().cost_usd - (1000.0 * 1.0 + 100.0 * 2.0) / 1e6).abs() < 1e-12);
        assert_eq!(llm.ledger_snapshot().unpriced_calls, 0);
    }
}
