//! The OpenAI-compatible and Anthropic clients against a local fake server that replays
//! recorded wire traffic (see tests/fixtures/llm/PROVENANCE.md).

// Named `llm` so that `cargo test -p aisci llm` selects these tests.
mod llm {

    use std::collections::HashMap;
    use std::time::Duration;

    use crate::support::fake_llm::{FakeLlm, Reply};
    use crate::support::png::tiny_png;
    use aisci::config::{LlmSettings, ProviderKind, Vision};
    use aisci::llm::{self, CallTag, ChatRequest, Image, Llm, LlmError, Message, RetryPolicy};
    use base64::Engine as _;
    use serde_json::json;
    use tokio_util::sync::CancellationToken;

    const OPENAI_KEY: &str = "sk-test-openai-0123456789";
    const ANTHROPIC_KEY: &str = "sk-ant-test-0123456789";

    fn env() -> HashMap<String, String> {
        [
            ("OPENAI_API_KEY", OPENAI_KEY),
            ("ANTHROPIC_API_KEY", ANTHROPIC_KEY),
            ("DEEPSEEK_API_KEY", "sk-deepseek-test"),
            ("OPENROUTER_API_KEY", "sk-or-v1-test"),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.to_owned()))
        .collect()
    }

    fn settings(model: &str, provider: ProviderKind, base: &str, stream: bool) -> LlmSettings {
        LlmSettings {
            model: model.into(),
            provider,
            base_url: Some(base.into()),
            stream,
            ..LlmSettings::default()
        }
    }

    fn llm(s: &LlmSettings) -> Llm {
        llm::from_settings(s, &env())
            .unwrap()
            .with_retry_policy(RetryPolicy {
                max_retries: 0,
                max_total: Duration::from_secs(5),
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                request_timeout: Duration::from_secs(5),
            })
    }

    fn request() -> ChatRequest {
        ChatRequest {
            system: Some("You are an ambitious AI PhD student.".into()),
            messages: vec![Message::user("Propose one idea.")],
            temperature: Some(0.7),
            max_tokens: 512,
        }
    }

    fn tag() -> CallTag {
        CallTag::new("ideas", Some("warmup"))
    }

    #[tokio::test]
    async fn openai_non_streaming_real_response() {
        let fake = FakeLlm::start(vec![Reply::json_fixture(
            200,
            "openai/chat_completion_response.json",
        )])
        .await;
        let llm = llm(&settings(
            "gpt-4o-2024-11-20",
            ProviderKind::Openai,
            &fake.v1(),
            false,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(r.text.starts_with("```json\n{\n  \"summary\": \"XAI"));
        assert_eq!(r.model, "gpt-4o-2024-11-20");
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.usage.input_tokens, 1358);
        assert_eq!(r.usage.cached_input_tokens, 1024);
        assert_eq!(r.usage.output_tokens, 140);

        let seen = &fake.seen()[0];
        assert_eq!(seen.path, "/v1/chat/completions");
        assert_eq!(seen.headers["authorization"], format!("Bearer {OPENAI_KEY}"));
        assert_eq!(seen.body["model"], "gpt-4o-2024-11-20");
        assert_eq!(seen.body["max_tokens"], 512);
        assert!((seen.body["temperature"].as_f64().unwrap() - 0.7).abs() < 1e-6);
        assert!(seen.body.get("stream").is_none());
        assert_eq!(seen.body["messages"][0]["role"], "system");
        assert_eq!(seen.body["messages"][1]["content"], "Propose one idea.");
    }

    #[tokio::test]
    async fn openai_streaming_with_usage_chunk() {
        let fake = FakeLlm::start(vec![Reply::sse_fixture("openai/chat_completion_stream.sse")]).await;
        let llm = llm(&settings(
            "gpt-4o-2024-08-06",
            ProviderKind::Openai,
            &fake.v1(),
            true,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(
        r.text,
        "I'm unable to provide real-time weather updates. To get the current weather in San Francisco, I recommend checking a reliable weather website or a weather app."
    );
        assert_eq!(r.finish_reason.as_deref(), Some("stop"));
        assert_eq!(r.usage.input_tokens, 14);
        assert_eq!(r.usage.output_tokens, 30);
        let body = &fake.seen()[0].body;
        assert_eq!(body["stream"], true);
        assert_eq!(body["stream_options"]["include_usage"], true);
        assert_eq!(fake.seen()[0].headers["accept"], "text/event-stream");
    }

    #[tokio::test]
    async fn openai_stream_finish_reason_length() {
        let fake = FakeLlm::start(vec![Reply::sse_fixture(
            "openai/chat_completion_stream_finish_length.sse",
        )])
        .await;
        let llm = llm(&settings("gpt-4o", ProviderKind::Openai, &fake.v1(), true));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.text, "{\"");
        assert_eq!(r.finish_reason.as_deref(), Some("length"));
        assert_eq!(r.usage.input_tokens, 79);
        assert_eq!(r.usage.output_tokens, 1);
    }

    #[tokio::test]
    async fn reasoning_model_gets_max_completion_tokens_and_no_temperature() {
        let fake = FakeLlm::start(vec![Reply::json_fixture(
            200,
            "openai/chat_completion_response.json",
        )])
        .await;
        let llm = llm(&settings("o3-mini", ProviderKind::Auto, &fake.v1(), false));
        llm.chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        let body = &fake.seen()[0].body;
        assert_eq!(body["max_completion_tokens"], 512);
        assert!(body.get("max_tokens").is_none(), "{body}");
        assert!(body.get("temperature").is_none(), "{body}");
    }

    #[tokio::test]
    async fn deepseek_stream_with_keepalive_comments() {
        let fake = FakeLlm::start(vec![Reply::sse_fixture(
            "openai_compatible/deepseek_chat_completion_stream_keepalive.sse",
        )])
        .await;
        let llm = llm(&settings(
            "deepseek-reasoner",
            ProviderKind::Auto,
            &fake.url,
            true,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(llm.provider().name(), "deepseek");
        // Reasoning text is not part of the answer.
        assert_eq!(r.text, "XAI (Explainable Artificial Intelligence)");
        assert_eq!(r.usage.input_tokens, 1592);
        assert_eq!(r.usage.cached_input_tokens, 128);
        assert_eq!(r.usage.output_tokens, 1467);
        assert_eq!(fake.seen()[0].path, "/chat/completions");
        assert_eq!(fake.seen()[0].headers["authorization"], "Bearer sk-deepseek-test");
    }

    #[tokio::test]
    async fn padded_bodies_from_deepseek_and_openrouter() {
        let fake = FakeLlm::start(vec![
            Reply::json_fixture(
                200,
                "openai_compatible/deepseek_chat_completion_response_with_leading_blank_lines.json",
            ),
            Reply::json_fixture(
                200,
                "openai_compatible/openrouter_chat_completion_response_raw.json",
            ),
        ])
        .await;
        let ds = llm(&settings(
            "deepseek-reasoner",
            ProviderKind::Auto,
            &fake.url,
            false,
        ));
        let r = ds
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(r
            .text
            .starts_with("XAI (Explainable Artificial Intelligence) is a field"));
        assert_eq!(r.usage.cached_input_tokens, 128);

        let or = llm(&settings(
            "deepseek/deepseek-r1",
            ProviderKind::Auto,
            &fake.url,
            false,
        ));
        assert_eq!(or.provider().name(), "openrouter");
        let r = or
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(r.text.starts_with("Explainable Artificial Intelligence (XAI)"));
        assert_eq!(r.usage.input_tokens, 1608);
        assert_eq!(r.usage.output_tokens, 662);
        // deepseek/deepseek-r1 has a table price: 1608 * 0.55 + 662 * 2.19 per million.
        let want = (1608.0 * 0.55 + 662.0 * 2.19) / 1e6;
        assert!((or.totals().cost_usd - want).abs() < 1e-12);
    }

    #[tokio::test]
    async fn vllm_nested_and_flat_errors_are_readable() {
        let fake = FakeLlm::start(vec![
            Reply::json_fixture(400, "openai_compatible/vllm_error_400_nested.json"),
            Reply::json_fixture(404, "openai_compatible/vllm_error_404_flat.json"),
        ])
        .await;
        let llm = llm(&settings(
            "meta-llama/Llama-3.1-8B-Instruct",
            ProviderKind::Vllm,
            &fake.v1(),
            false,
        ));
        let c = CancellationToken::new();
        let e = llm.chat(tag(), &request(), &c).await.unwrap_err();
        assert!(matches!(e, LlmError::Rejected { status: 400, .. }), "{e:?}");
        assert!(e.to_string().contains("maximum context length is 8192"), "{e}");
        let e = llm.chat(tag(), &request(), &c).await.unwrap_err();
        assert!(matches!(e, LlmError::Rejected { status: 404, .. }), "{e:?}");
        assert!(e.to_string().contains("does not exist"), "{e}");
        // vLLM without VLLM_API_KEY sends no Authorization header.
        assert!(!fake.seen()[0].headers.contains_key("authorization"));
    }

    #[tokio::test]
    async fn anthropic_non_streaming_headers_and_body() {
        let fake = FakeLlm::start(vec![Reply::json_fixture(200, "anthropic/messages_response.json")]).await;
        let llm = llm(&settings(
            "claude-sonnet-4-5",
            ProviderKind::Auto,
            &fake.url,
            false,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert!(r.text.starts_with("{\"items\":[{\"product_name\":\"Green Tea\""));
        assert_eq!(r.model, "claude-sonnet-4-5-20250929");
        assert_eq!(r.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(r.usage.input_tokens, 406);
        assert_eq!(r.usage.output_tokens, 50);

        let seen = &fake.seen()[0];
        assert_eq!(seen.path, "/v1/messages");
        assert_eq!(seen.headers["x-api-key"], ANTHROPIC_KEY);
        assert_eq!(seen.headers["anthropic-version"], "2023-06-01");
        assert!(!seen.headers.contains_key("authorization"));
        assert_eq!(
            seen.body["system"][0]["text"],
            "You are an ambitious AI PhD student."
        );
        // The stable prefix is marked for Anthropic's prompt cache.
        assert_eq!(seen.body["system"][0]["cache_control"]["type"], "ephemeral");
        assert_eq!(seen.body["max_tokens"], 512);
        let msgs = seen.body["messages"].as_array().unwrap();
        assert_eq!(msgs.len(), 1);
        assert_eq!(msgs[0]["role"], "user");
    }

    #[tokio::test]
    async fn anthropic_streaming_real_recording() {
        let fake = FakeLlm::start(vec![Reply::sse_fixture("anthropic/messages_stream.sse")]).await;
        let llm = llm(&settings(
            "claude-sonnet-4-5",
            ProviderKind::Anthropic,
            &fake.url,
            true,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.text, "[12345,67890]");
        assert_eq!(r.finish_reason.as_deref(), Some("end_turn"));
        assert_eq!(r.usage.input_tokens, 135);
        assert_eq!(r.usage.output_tokens, 10);
        assert_eq!(fake.seen()[0].body["stream"], true);
    }

    #[tokio::test]
    async fn anthropic_stream_with_thinking_and_cache_read() {
        let fake = FakeLlm::start(vec![Reply::sse_fixture(
            "anthropic/messages_stream_thinking_cache_read.sse",
        )])
        .await;
        let llm = llm(&settings(
            "claude-sonnet-4-5",
            ProviderKind::Anthropic,
            &fake.url,
            true,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.text, "Use gradient-noise-scale to set warmup length.");
        assert_eq!(r.usage.input_tokens, 21 + 1834);
        assert_eq!(r.usage.cached_input_tokens, 1834);
        assert_eq!(r.usage.cache_write_tokens, 0);
        assert_eq!(r.usage.output_tokens, 42);
        let want = (21.0 * 3.0 + 1834.0 * 0.30 + 42.0 * 15.0) / 1e6;
        assert!((llm.totals().cost_usd - want).abs() < 1e-12);
    }

    #[tokio::test]
    async fn anthropic_cache_write_costs_the_write_rate() {
        let fake = FakeLlm::start(vec![Reply::json_fixture(
            200,
            "anthropic/messages_response_cache_write.json",
        )])
        .await;
        let llm = llm(&settings(
            "claude-sonnet-4-5",
            ProviderKind::Anthropic,
            &fake.url,
            false,
        ));
        let r = llm
            .chat(tag(), &request(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.usage.input_tokens, 1855);
        assert_eq!(r.usage.cache_write_tokens, 1834);
        let want = (21.0 * 3.0 + 1834.0 * 3.75 + 61.0 * 15.0) / 1e6;
        let snap = llm.ledger_snapshot();
        assert!((snap.total.cost_usd - want).abs() < 1e-12);
        assert!(llm.records()[0].price_known);
    }

    /// The hand-made 2×2 PNG, read back from a file as a caller would.
    fn png_image() -> (Image, Vec<u8>) {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("figure.png");
        std::fs::write(&path, tiny_png()).unwrap();
        (Image::from_file(&path).unwrap(), tiny_png())
    }

    fn request_with_png() -> ChatRequest {
        ChatRequest {
            messages: vec![Message::user_with_images(
                "What does the figure show?",
                vec![png_image().0],
            )],
            ..request()
        }
    }

    fn decode(b64: &serde_json::Value) -> Vec<u8> {
        base64::engine::general_purpose::STANDARD
            .decode(b64.as_str().expect("base64 text"))
            .unwrap()
    }

    #[tokio::test]
    async fn openai_wire_sends_a_png_as_a_data_url_part() {
        let fake = FakeLlm::start(vec![Reply::json_fixture(
            200,
            "openai/chat_completion_response.json",
        )])
        .await;
        let llm = llm(&settings(
            "gpt-4o-2024-11-20",
            ProviderKind::Openai,
            &fake.v1(),
            false,
        ));
        assert!(llm.accepts_images());
        let (img, png) = png_image();
        assert_eq!(img.media_type, "image/png");
        let r = llm
            .chat(tag(), &request_with_png(), &CancellationToken::new())
            .await
            .unwrap();
        // Usage is the provider's, image tokens included; nothing else changes.
        assert_eq!(r.usage.input_tokens, 1358);
        assert_eq!(llm.totals().calls, 1);

        let body = &fake.seen()[0].body;
        assert_eq!(
            body["messages"][0],
            json!({"role": "system", "content": "You are an ambitious AI PhD student."})
        );
        let content = &body["messages"][1]["content"];
        assert_eq!(
            *content,
            json!([
                {"type": "text", "text": "What does the figure show?"},
                {"type": "image_url", "image_url": {"url": img.data_url()}},
            ])
        );
        let url = content[1]["image_url"]["url"].as_str().unwrap();
        let b64 = url.strip_prefix("data:image/png;base64,").expect(url);
        assert_eq!(decode(&json!(b64)), png, "the PNG's own bytes");
        assert_eq!(body["messages"][1]["role"], "user");
    }

    #[tokio::test]
    async fn vllm_with_a_vl_model_gets_the_same_parts() {
        let fake = FakeLlm::start(vec![Reply::chat_completion("c1", "a bar chart", 300, 4)]).await;
        let llm = llm(&settings(
            "Qwen/Qwen2.5-VL-7B-Instruct",
            ProviderKind::Vllm,
            &fake.v1(),
            false,
        ));
        let r = llm
            .chat(tag(), &request_with_png(), &CancellationToken::new())
            .await
            .unwrap();
        assert_eq!(r.text, "a bar chart");
        let part = &fake.seen()[0].body["messages"][1]["content"][1];
        assert_eq!(part["type"], "image_url");
        assert!(part["image_url"]["url"]
            .as_str()
            .unwrap()
            .starts_with("data:image/png;base64,iVBORw0KGgo"));
    }

    #[tokio::test]
    async fn anthropic_wire_sends_a_png_as_a_base64_block_before_the_text() {
        let fake = FakeLlm::start(vec![Reply::json_fixture(200, "anthropic/messages_response.json")]).await;
        let llm = llm(&settings(
            "claude-sonnet-4-5",
            ProviderKind::Auto,
            &fake.url,
            false,
        ));
        assert!(llm.accepts_images());
        llm.chat(tag(), &request_with_png(), &CancellationToken::new())
            .await
            .unwrap();
        let seen = &fake.seen()[0];
        assert_eq!(seen.path, "/v1/messages");
        let content = &seen.body["messages"][0]["content"];
        let (_, png) = png_image();
        assert_eq!(
            *content,
            json!([
                {"type": "image", "source": {"type": "base64", "media_type": "image/png",
                    "data": base64::engine::general_purpose::STANDARD.encode(&png)}},
                // The newest message is a cache breakpoint: on its last block.
                {"type": "text", "text": "What does the figure show?", "cache_control": {"type": "ephemeral"}},
            ])
        );
        assert_eq!(decode(&content[0]["source"]["data"]), png);
        assert_eq!(seen.body["system"][0]["cache_control"]["type"], "ephemeral");
    }

    #[tokio::test]
    async fn an_unsupported_image_400_is_clear_and_not_retried() {
        let fake = FakeLlm::start(vec![
            Reply::http_fixture("openai/error_400_invalid_request.http"),
            Reply::json_fixture(200, "openai/chat_completion_response.json"),
        ])
        .await;
        let llm = llm(&settings("gpt-4o", ProviderKind::Openai, &fake.v1(), false)).with_retry_policy(
            RetryPolicy {
                max_retries: 3,
                max_total: Duration::from_secs(5),
                base_delay: Duration::from_millis(5),
                max_delay: Duration::from_millis(20),
                request_timeout: Duration::from_secs(5),
            },
        );
        let e = llm
            .chat(tag(), &request_with_png(), &CancellationToken::new())
            .await
            .unwrap_err();
        assert!(matches!(e, LlmError::Rejected { status: 400, .. }), "{e:?}");
        assert!(!e.is_retryable());
        let text = e.to_string();
        assert!(
            text.starts_with("openai rejected the request (400): You uploaded an unsupported image."),
            "{text}"
        );
        assert!(text.contains("1 image(s) were sent to gpt-4o"), "{text}");
        assert_eq!(fake.hits(), 1, "a 400 is not retried");
        assert_eq!(llm.totals().calls, 0);
    }

    #[tokio::test]
    async fn images_for_a_text_only_model_fail_before_any_request() {
        let fake = FakeLlm::start(vec![Reply::chat_completion("c1", "ok", 10, 1)]).await;
        let c = CancellationToken::new();
        let text_only = llm(&settings("local-model", ProviderKind::Vllm, &fake.v1(), false));
        assert!(!text_only.accepts_images());
        let e = text_only.chat(tag(), &request_with_png(), &c).await.unwrap_err();
        let LlmError::Config(text) = &e else {
            panic!("{e:?}")
        };
        assert!(
            text.contains("local-model") && text.contains("llm.vision = \"yes\""),
            "{text}"
        );
        assert_eq!(fake.hits(), 0, "nothing was sent");

        // `llm.vision = "no"` holds back a model the list knows, as early.
        let off = llm(&LlmSettings {
            vision: Vision::No,
            ..settings("gpt-4o", ProviderKind::Openai, &fake.v1(), false)
        });
        assert!(matches!(
            off.chat(tag(), &request_with_png(), &c).await,
            Err(LlmError::Config(_))
        ));
        assert_eq!(fake.hits(), 0);

        // `llm.vision = "yes"` sends them to the model the list does not know.
        let on = llm(&LlmSettings {
            vision: Vision::Yes,
            ..settings("local-model", ProviderKind::Vllm, &fake.v1(), false)
        });
        on.chat(tag(), &request_with_png(), &c).await.unwrap();
        assert_eq!(fake.hits(), 1);
        assert_eq!(
            fake.seen()[0].body["messages"][1]["content"][1]["type"],
            "image_url"
        );
    }
}
