//! `Literature` against a local fake of Semantic Scholar, OpenAlex and arXiv built
//! from recorded responses: wire formats, errors, fallback, breaker, cache, limiter.

// Named `literature` so that `cargo test -p aisci literature` selects these tests.
mod literature {
    use std::path::Path;
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};

    use crate::support::fake_lit::{fixture, FakeLit, Reply, Route};
    use aisci::config::LiteratureSettings;
    use aisci::literature::{bibtex, Engine, LitError, Literature, PaperSearch};
    use tokio_util::sync::CancellationToken;

    const S2_KEY: &str = "s2-test-secret-0123456789abcdef";
    const OA_KEY: &str = "oa-test-secret-fedcba9876543210";

    fn env() -> [(&'static str, &'static str); 2] {
        [("S2_API_KEY", S2_KEY), ("OPENALEX_API_KEY", OA_KEY)]
    }

    /// Fast everything: rate is not the subject of most tests.
    fn settings(fake: &FakeLit, cache: &Path, engines: &[&str]) -> LiteratureSettings {
        LiteratureSettings {
            engines: engines.iter().map(|e| e.to_string()).collect(),
            s2_url: Some(fake.s2_url()),
            openalex_url: Some(fake.openalex_url()),
            arxiv_url: Some(fake.arxiv_url()),
            openalex_mailto: Some("me@example.org".into()),
            s2_rate_per_sec: 1000.0,
            s2_rate_per_sec_no_key: 1000.0,
            openalex_rate_per_sec: 1000.0,
            arxiv_rate_per_sec: 1000.0,
            max_retries: 3,
            max_retry_secs: 5,
            request_timeout_secs: 5,
            breaker_failures: 2,
            breaker_cooldown_secs: 600,
            cache_dir: Some(cache.to_owned()),
            cache_ttl_days: 30,
            ..LiteratureSettings::default()
        }
    }

    fn lit(s: &LiteratureSettings) -> Literature {
        Literature::from_settings(s, &env())
            .unwrap()
            .with_backoff(Duration::from_millis(1), Duration::from_millis(20))
    }

    fn none() -> CancellationToken {
        CancellationToken::new()
    }

    const ALL: &[&str] = &["semanticscholar", "openalex", "arxiv"];

    #[tokio::test]
    async fn semantic_scholar_search() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        let r = l.search("chemistry-tools agents", 10, &none()).await.unwrap();
        assert_eq!(r.engine, Engine::SemanticScholar);
        assert!(!r.from_cache);
        assert_eq!(r.papers.len(), 3);
        let p = &r.papers[0];
        assert_eq!(p.id, "354dcdebf3f8b5feeed5c62090e0bc1f0c28db06");
        assert_eq!(p.title, "Augmenting large language models with chemistry tools");
        assert_eq!(p.authors[0], "Andrés M Bran");
        assert_eq!(p.year, Some(2023));
        assert_eq!(p.citation_count, Some(500));
        assert_eq!(p.venue.as_deref(), Some("Nat. Mac. Intell."));
        let bib = p.bibtex.as_deref().unwrap();
        assert!(bib.starts_with("@article{Bran2023AugmentingLL,"), "{bib}");
        assert!(bib.contains("{525--535}"), "{bib}");
        bibtex::validate(bib).unwrap();
        // Null abstract and empty venue are absent, not empty strings.
        assert_eq!(r.papers[1].abstract_text, None);
        assert_eq!(r.papers[2].venue, None);
        // The apostrophe in S2's key would break \cite.
        assert!(r.papers[1]
            .bibtex
            .as_deref()
            .unwrap()
            .starts_with("@article{Lala2023PaperQARG,"));

        let seen = fake.seen();
        assert_eq!(seen.len(), 1);
        let q = &seen[0].query;
        assert_eq!(q["query"], "chemistry tools agents", "hyphens become spaces");
        assert_eq!(q["limit"], "10");
        assert!(q["fields"].starts_with("title,authors,venue,year,abstract,citationStyles,citationCount"));
        assert_eq!(seen[0].headers["x-api-key"], S2_KEY);
    }

    #[tokio::test]
    async fn semantic_scholar_without_key_sends_no_header() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let s = settings(&fake, dir.path(), ALL);
        let l = Literature::from_settings(&s, &[("OTHER", "x")]).unwrap();
        l.search("q", 5, &none()).await.unwrap();
        assert!(!fake.seen()[0].headers.contains_key("x-api-key"));
    }

    #[tokio::test]
    async fn openalex_search_and_bibtex_match_the_expected_file() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), &["openalex"]));
        let r = l.search("chemistry tools", 10, &none()).await.unwrap();
        assert_eq!(r.engine, Engine::OpenAlex);
        assert_eq!(r.papers.len(), 2);
        let p = &r.papers[0];
        assert_eq!(p.id, "W4396723768");
        assert_eq!(p.doi.as_deref(), Some("10.1038/s42256-024-00832-8"));
        assert_eq!(p.venue.as_deref(), Some("Nature Machine Intelligence"));
        assert_eq!(p.citation_count, Some(236));
        let abs = p.abstract_text.as_deref().unwrap();
        assert!(
            abs.starts_with("Large language models (LLMs) have shown"),
            "{abs}"
        );
        assert!(abs.ends_with("computational chemistry."), "{abs}");
        assert_eq!(r.papers[1].arxiv_id.as_deref(), Some("2304.05376"));

        let built: Vec<&str> = r.papers.iter().map(|p| p.bibtex.as_deref().unwrap()).collect();
        pretty_assertions::assert_eq!(built.join("\n"), fixture("expected_bibtex_from_works_list.bib"));

        let q = &fake.seen()[0].query;
        assert_eq!(q["search"], "chemistry tools");
        assert_eq!(q["per-page"], "10");
        assert_eq!(q["api_key"], OA_KEY);
        assert_eq!(q["mailto"], "me@example.org");
    }

    #[tokio::test]
    async fn arxiv_search_classic_and_2026_feeds() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), &["arxiv"]));
        let r = l.search("chemistry agent", 10, &none()).await.unwrap();
        assert_eq!(r.engine, Engine::Arxiv);
        assert_eq!(r.papers.len(), 2);
        let p = &r.papers[0];
        assert_eq!(p.id, "2304.05376v5");
        assert_eq!(p.arxiv_id.as_deref(), Some("2304.05376"));
        assert_eq!(p.year, Some(2023));
        assert_eq!(p.doi.as_deref(), Some("10.1038/s42256-024-00832-8"));
        assert!(p
            .abstract_text
            .as_deref()
            .unwrap()
            .starts_with("Over the last decades, excellent"));
        let bib = p.bibtex.as_deref().unwrap();
        assert!(bib.starts_with("@article{bran2023chemcrow,"), "{bib}");
        assert!(bib.contains("eprint        = {2304.05376}"), "{bib}");
        assert!(bib.contains("primaryclass  = {physics.chem-ph}"), "{bib}");
        assert!(r.papers[1]
            .bibtex
            .as_deref()
            .unwrap()
            .starts_with("@misc{lala2023paperqa,"));
        assert_eq!(
            fake.seen()[0].query["search_query"],
            "all:chemistry AND all:agent"
        );

        fake.set_default(
            Route::Arxiv,
            Reply::atom_fixture(200, "query_response_2026_real.xml"),
        );
        let r = l.search("semantic cache", 1, &none()).await.unwrap();
        assert_eq!(r.papers[0].id, "0807.4618v1");
        assert_eq!(r.papers[0].authors, ["Kaarel Kaljurand", "Norbert E. Fuchs"]);
        assert!(r.papers[0]
            .abstract_text
            .as_deref()
            .unwrap()
            .contains("(ACE) & more"));
    }

    #[tokio::test]
    async fn empty_results_are_empty_not_errors() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::json_fixture(200, "paper_search_response_empty.json"),
        );
        fake.set_default(
            Route::OpenAlexWorks,
            Reply::json_fixture(200, "works_list_response_empty.json"),
        );
        fake.set_default(Route::Arxiv, Reply::atom_fixture(200, "query_response_empty.xml"));
        let dir = tempfile::tempdir().unwrap();
        for engine in ALL {
            let l = lit(&settings(&fake, dir.path(), &[engine]));
            let r = l.search("xyzzyplugh nothing", 10, &none()).await.unwrap();
            assert!(r.papers.is_empty(), "{engine}");
            assert_eq!(r.engine.as_str(), *engine);
        }
        assert_eq!(fake.total_hits(), 3);
        // An empty query asks nobody.
        let l = lit(&settings(&fake, dir.path(), ALL));
        assert!(l.search("   ", 10, &none()).await.unwrap().papers.is_empty());
        assert_eq!(fake.total_hits(), 3);
    }

    #[tokio::test]
    async fn s2_429_storm_falls_back_to_openalex_and_says_so_once() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::http_fixture("error_429_too_many_requests.http"),
        );
        let dir = tempfile::tempdir().unwrap();
        let hook_calls = Arc::new(AtomicUsize::new(0));
        let counter = Arc::clone(&hook_calls);
        let l = lit(&settings(&fake, dir.path(), ALL)).on_notice(move |_| {
            counter.fetch_add(1, Ordering::SeqCst);
        });
        for i in 0..4 {
            let t = Instant::now();
            let r = l.search(&format!("query {i}"), 10, &none()).await.unwrap();
            // 3 retries with backoff of at most 20 ms each, then OpenAlex.
            assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
            assert_eq!(r.engine, Engine::OpenAlex);
        }
        // Two searches each made 1 + 3 tries; after the second failure S2 is skipped.
        assert_eq!(fake.hits(Route::S2Search), 8);
        assert_eq!(fake.hits(Route::OpenAlexWorks), 4);
        let notices = l.notices();
        assert_eq!(notices.len(), 1, "{notices:?}");
        assert_eq!(notices[0].engine, Engine::SemanticScholar);
        assert!(notices[0].message.contains("using openalex"), "{}", notices[0]);
        assert_eq!(hook_calls.load(Ordering::SeqCst), 1);
        assert!(l.notices().is_empty(), "notices are drained");
    }

    #[tokio::test]
    async fn concurrent_failures_open_the_breaker_once() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::json_fixture(500, "error_500_internal.json"),
        );
        let dir = tempfile::tempdir().unwrap();
        let l = Arc::new(lit(&settings(&fake, dir.path(), ALL)));
        let tasks: Vec<_> = (0..10)
            .map(|i| {
                let l = Arc::clone(&l);
                tokio::spawn(async move { l.search(&format!("c{i}"), 5, &none()).await })
            })
            .collect();
        for t in tasks {
            assert_eq!(t.await.unwrap().unwrap().engine, Engine::OpenAlex);
        }
        assert_eq!(l.notices().len(), 1);
    }

    #[tokio::test]
    async fn openalex_budget_exhaustion_falls_back_at_once() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::OpenAlexWorks,
            Reply::http_fixture("error_429_budget_exhausted.http"),
        );
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(&fake, dir.path(), &["openalex", "arxiv"]);
        s.max_retry_secs = 60;
        let l = lit(&s);
        let t = Instant::now();
        let r = l.search("chemistry agent", 10, &none()).await.unwrap();
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(r.engine, Engine::Arxiv);
        assert_eq!(
            fake.hits(Route::OpenAlexWorks),
            1,
            "no retry of an exhausted budget"
        );
        let notices = l.notices();
        assert_eq!(notices.len(), 1);
        assert!(notices[0].message.contains("budget"), "{}", notices[0]);
        // Skipped until the budget resets (Retry-After 57539 s), not just the 10-minute cooldown.
        assert!(
            notices[0].cooldown >= std::time::Duration::from_secs(57_000),
            "{:?}",
            notices[0].cooldown
        );
        assert!(notices[0].message.contains("skipped for 16 h"), "{}", notices[0]);
        // Skipped from now on.
        l.search("other", 10, &none()).await.unwrap();
        assert_eq!(fake.hits(Route::OpenAlexWorks), 1);
    }

    #[tokio::test]
    async fn openalex_burst_429_waits_its_retry_after() {
        let fake = FakeLit::start().await;
        fake.script(
            Route::OpenAlexWorks,
            vec![Reply::json_fixture(429, "error_429_per_second.json").with_header("retry-after", "1")],
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), &["openalex", "arxiv"]));
        let t = Instant::now();
        let r = l.search("q", 10, &none()).await.unwrap();
        assert_eq!(r.engine, Engine::OpenAlex);
        assert!(t.elapsed() >= Duration::from_millis(900), "{:?}", t.elapsed());
        assert_eq!(fake.hits(Route::OpenAlexWorks), 2);
        assert!(l.notices().is_empty());
    }

    #[tokio::test]
    async fn transient_errors_are_retried() {
        let fake = FakeLit::start().await;
        fake.script(
            Route::S2Search,
            vec![
                Reply::json_fixture(500, "error_500_internal.json"),
                Reply::json(504, r#"{"message":"Endpoint request timed out"}"#),
            ],
        );
        fake.script(
            Route::Arxiv,
            vec![Reply::http_fixture("error_429_rate_exceeded.http")],
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        assert_eq!(
            l.search("a", 5, &none()).await.unwrap().engine,
            Engine::SemanticScholar
        );
        assert_eq!(fake.hits(Route::S2Search), 3);
        let l = lit(&settings(&fake, dir.path(), &["arxiv"]));
        assert_eq!(l.search("b", 5, &none()).await.unwrap().papers.len(), 2);
        assert_eq!(fake.hits(Route::Arxiv), 2);
    }

    #[tokio::test]
    async fn bad_request_is_not_an_engine_failure() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::json_fixture(400, "error_400_bad_params.json"),
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        for i in 0..3 {
            let r = l.search(&format!("q{i}"), 5, &none()).await.unwrap();
            assert_eq!(r.engine, Engine::OpenAlex);
        }
        assert_eq!(fake.hits(Route::S2Search), 3, "not retried, never skipped");
        assert!(l.notices().is_empty());

        let l = lit(&settings(&fake, dir.path(), &["semanticscholar"]));
        let err = l.search("only s2", 5, &none()).await.unwrap_err();
        let LitError::AllFailed(errs) = &err else {
            panic!("{err:?}")
        };
        assert!(matches!(errs[0], LitError::BadRequest { .. }), "{err}");
        assert!(err.to_string().contains("Unacceptable query params"), "{err}");
    }

    #[tokio::test]
    async fn bad_key_names_the_variable_and_never_the_key() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::json_fixture(403, "error_403_forbidden.json"),
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), &["semanticscholar"]));
        let err = l.search("q", 5, &none()).await.unwrap_err();
        let LitError::AllFailed(errs) = &err else {
            panic!("{err:?}")
        };
        let LitError::BadKey { key_var, .. } = &errs[0] else {
            panic!("{err:?}")
        };
        assert_eq!(key_var, "S2_API_KEY");
        let text = format!("{err} {err:?} {l:?}");
        assert!(
            text.contains("S2_API_KEY") && text.contains("Forbidden"),
            "{text}"
        );
        assert!(!text.contains(S2_KEY) && !text.contains(OA_KEY), "{text}");
        assert_eq!(fake.hits(Route::S2Search), 1);
    }

    #[tokio::test]
    async fn html_pages_and_malformed_bodies_are_clear_errors() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(&fake, dir.path(), &["openalex"]);
        s.openalex_url = Some(format!("{}/wrong", fake.url));
        let err = lit(&s).search("q", 5, &none()).await.unwrap_err();
        assert!(
            err.to_string().contains("HTTP 404: an HTML page (404 Not Found)"),
            "{err}"
        );
        assert!(!err.to_string().contains(OA_KEY));

        fake.set_default(
            Route::S2Search,
            Reply::new(200, "text/html", "<html><title>Login</title></html>"),
        );
        fake.set_default(
            Route::OpenAlexWorks,
            Reply::json(200, "{\"results\": [ {\"id\": "),
        );
        fake.set_default(Route::Arxiv, Reply::atom_fixture(400, "error_response.xml"));
        let err = lit(&settings(&fake, dir.path(), ALL))
            .search("q", 5, &none())
            .await
            .unwrap_err();
        let LitError::AllFailed(errs) = &err else {
            panic!("{err:?}")
        };
        assert!(
            matches!(&errs[0], LitError::Malformed { message, .. } if message.contains("HTML page (Login)")),
            "{err}"
        );
        assert!(
            matches!(&errs[1], LitError::Malformed { message, .. } if message.contains("invalid JSON")),
            "{err}"
        );
        assert!(matches!(&errs[2], LitError::BadRequest { .. }), "{err}");

        // An error feed with status 200 is an error too, not a paper called "Error".
        fake.set_default(Route::Arxiv, Reply::atom_fixture(200, "error_response.xml"));
        let err = lit(&settings(&fake, dir.path(), &["arxiv"]))
            .search("q2", 5, &none())
            .await
            .unwrap_err();
        assert!(err.to_string().contains("incorrect id format"), "{err}");
    }

    #[tokio::test]
    async fn bibtex_from_paper_details_when_search_has_none() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::json(
                200,
                r#"{"total":1,"offset":0,"data":[{"paperId":"db3720c812a462ef955d5654b65ca9189d4b8372",
                "title":"Developing functional musculoskeletal tissues","abstract":null,"venue":"PNAS",
                "year":2014,"citationCount":136,"citationStyles":null,
                "authors":[{"authorId":null,"name":"Eleftherios Makris"}]}]}"#,
            ),
        );
        fake.set_default(
            Route::S2Paper,
            Reply::json_fixture(200, "paper_details_response_odd_bibtex.json"),
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        let r = l.search("tissues", 5, &none()).await.unwrap();
        assert_eq!(r.papers[0].bibtex, None);
        let bib = l.bibtex(&r.papers[0], &none()).await.unwrap();
        bibtex::validate(&bib).unwrap();
        assert!(bib.starts_with("@article{Makris2014DevelopingFM,"), "{bib}");
        assert!(bib.contains("Jerry C. Hu and Kyriacos Athanasiou}"), "{bib}");
        assert!(!bib.contains("Κυριάκος"), "{bib}");
        assert!(bib.contains("{E4832--E4841}"), "{bib}");
        let seen = fake.seen();
        let detail = seen.iter().find(|s| s.route == Route::S2Paper).unwrap();
        assert_eq!(
            detail.path,
            "/s2/graph/v1/paper/db3720c812a462ef955d5654b65ca9189d4b8372"
        );
        assert!(detail.query["fields"].contains("citationStyles"));

        // Cached on disk: a new instance does not ask again.
        let l2 = lit(&settings(&fake, dir.path(), ALL));
        assert_eq!(l2.bibtex(&r.papers[0], &none()).await.unwrap(), bib);
        assert_eq!(fake.hits(Route::S2Paper), 1);
    }

    #[tokio::test]
    async fn bibtex_is_built_when_the_details_have_none() {
        let fake = FakeLit::start().await;
        fake.set_default(Route::S2Search, Reply::json(200, r#"{"total":1,"data":[{"paperId":"abc","title":"On the {Robustness} of 100% & more","year":2020,"venue":"ICML","authors":[{"name":"Jakub Lála"}],"externalIds":{"DOI":"10.1/x"}}]}"#));
        fake.set_default(
            Route::S2Paper,
            Reply::json(404, r#"{"error":"Paper with id abc not found"}"#),
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        let r = l.search("robustness", 5, &none()).await.unwrap();
        let bib = l.bibtex(&r.papers[0], &none()).await.unwrap();
        bibtex::validate(&bib).unwrap();
        assert!(bib.starts_with("@article{lala2020robustness,"), "{bib}");
        assert!(bib.contains(r"{On the \{Robustness\} of 100\% \& more}"), "{bib}");
        assert!(bib.contains("{Lála, Jakub}"), "{bib}");
        assert!(bib.contains("doi       = {10.1/x}"), "{bib}");
    }

    fn cache_files(dir: &Path) -> Vec<std::path::PathBuf> {
        std::fs::read_dir(dir.join("search"))
            .unwrap()
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|e| e == "json"))
            .collect()
    }

    #[tokio::test]
    async fn cache_serves_from_memory_and_disk_across_instances() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        let first = l.search("Adaptive  learning rate", 10, &none()).await.unwrap();
        let again = l.search("adaptive learning RATE", 10, &none()).await.unwrap();
        assert!(again.from_cache);
        assert_eq!(again.papers, first.papers);
        assert_eq!(fake.total_hits(), 1);

        // A new instance reads the disk; a cache hit from any engine counts.
        let l2 = lit(&settings(&fake, dir.path(), &["openalex", "semanticscholar"]));
        let t = Instant::now();
        let r = l2.search("adaptive learning rate", 10, &none()).await.unwrap();
        assert!(t.elapsed() < Duration::from_millis(50));
        assert!(r.from_cache);
        assert_eq!(r.engine, Engine::SemanticScholar);
        assert_eq!(fake.total_hits(), 1);
        // The entry says where and when it came from.
        let file: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&cache_files(dir.path())[0]).unwrap()).unwrap();
        assert_eq!(file["engine"], "semanticscholar");
        assert!(file["fetched_at"].as_str().unwrap().starts_with("20"));
        // Another limit is another question.
        l2.search("adaptive learning rate", 5, &none()).await.unwrap();
        assert_eq!(fake.total_hits(), 2);
    }

    #[tokio::test]
    async fn cache_entries_expire_by_ttl() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        lit(&settings(&fake, dir.path(), ALL))
            .search("ttl", 10, &none())
            .await
            .unwrap();
        let path = cache_files(dir.path()).remove(0);
        let mut file: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        let old = chrono::Utc::now() - chrono::Duration::days(40);
        file["fetched_at"] = old.to_rfc3339().into();
        std::fs::write(&path, serde_json::to_vec(&file).unwrap()).unwrap();

        let mut s = settings(&fake, dir.path(), ALL);
        s.cache_ttl_days = 0; // forever
        assert!(lit(&s).search("ttl", 10, &none()).await.unwrap().from_cache);
        assert_eq!(fake.total_hits(), 1);
        s.cache_ttl_days = 30;
        assert!(!lit(&s).search("ttl", 10, &none()).await.unwrap().from_cache);
        assert_eq!(fake.total_hits(), 2);
    }

    #[tokio::test]
    async fn corrupt_cache_file_is_ignored_and_replaced() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        lit(&settings(&fake, dir.path(), ALL))
            .search("corrupt", 10, &none())
            .await
            .unwrap();
        let path = cache_files(dir.path()).remove(0);
        std::fs::write(&path, b"{\"version\": 1, \"key\": tru").unwrap();

        let l = lit(&settings(&fake, dir.path(), ALL));
        let r = l.search("corrupt", 10, &none()).await.unwrap();
        assert!(!r.from_cache);
        assert_eq!(fake.total_hits(), 2);
        let fixed: serde_json::Value = serde_json::from_slice(&std::fs::read(&path).unwrap()).unwrap();
        assert_eq!(fixed["papers"].as_array().unwrap().len(), 3);
    }

    #[tokio::test]
    async fn cancellation_interrupts_a_backoff() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::http_fixture("error_429_too_many_requests.http"),
        );
        let dir = tempfile::tempdir().unwrap();
        let mut s = settings(&fake, dir.path(), ALL);
        s.max_retry_secs = 120;
        s.max_retries = 10;
        // Every backoff is long: the search would sit in one for seconds.
        let l = Literature::from_settings(&s, &env())
            .unwrap()
            .with_backoff(Duration::from_secs(30), Duration::from_secs(30));
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(300)).await;
            c.cancel();
        });
        let t = Instant::now();
        // Full jitter may pick a short first wait; keep going until cancelled.
        let err = l.search("cancel me", 10, &cancel).await.unwrap_err();
        assert!(matches!(err, LitError::Cancelled), "{err}");
        assert!(t.elapsed() < Duration::from_secs(2), "{:?}", t.elapsed());
        assert_eq!(fake.hits(Route::OpenAlexWorks), 0);
    }

    #[tokio::test]
    async fn cancellation_interrupts_a_slow_request() {
        let fake = FakeLit::start().await;
        fake.set_default(
            Route::S2Search,
            Reply::json_fixture(200, "paper_search_response.json").delayed(Duration::from_secs(10)),
        );
        let dir = tempfile::tempdir().unwrap();
        let l = lit(&settings(&fake, dir.path(), ALL));
        let cancel = CancellationToken::new();
        let c = cancel.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            c.cancel();
        });
        let t = Instant::now();
        assert!(matches!(
            l.search("slow", 10, &cancel).await,
            Err(LitError::Cancelled)
        ));
        assert!(t.elapsed() < Duration::from_secs(1));
    }

    /// Largest number of arrivals in any half-open window `[t, t + 1 s)`.
    fn max_per_second(mut at: Vec<Instant>) -> usize {
        at.sort();
        (0..at.len())
            .map(|i| {
                at[i..]
                    .iter()
                    .take_while(|t| **t - at[i] < Duration::from_secs(1))
                    .count()
            })
            .max()
            .unwrap_or(0)
    }

    #[tokio::test]
    async fn limiter_holds_fifty_concurrent_searches_to_the_rate() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let rate = 20.0;
        let mut s = settings(&fake, dir.path(), &["semanticscholar"]);
        s.s2_rate_per_sec = rate;
        s.max_retry_secs = 30;
        // Two instances, one process: they share the limiter for this endpoint.
        let a = Arc::new(lit(&s));
        let b = Arc::new(lit(&s));
        let t = Instant::now();
        let tasks: Vec<_> = (0..50)
            .map(|i| {
                let l = Arc::clone(if i % 2 == 0 { &a } else { &b });
                tokio::spawn(async move { l.search(&format!("distinct query {i}"), 10, &none()).await })
            })
            .collect();
        for task in tasks {
            assert!(!task.await.unwrap().unwrap().from_cache);
        }
        let at: Vec<Instant> = fake.seen().iter().map(|s| s.at).collect();
        assert_eq!(at.len(), 50);
        // Starts are >= 1/rate apart, so a 1-s window holds at most floor(rate) + 1.
        let max = max_per_second(at.clone());
        assert!(
            max <= rate as usize + 1,
            "{max} requests in one second at rate {rate}"
        );
        // ... and the limiter did not merely get lucky: 49 gaps of 50 ms.
        let span = *at.iter().max().unwrap() - *at.iter().min().unwrap();
        assert!(span >= Duration::from_millis(49 * 50 - 30), "{span:?}");
        assert!(t.elapsed() < Duration::from_secs(10));
    }

    #[tokio::test]
    async fn settings_are_checked() {
        let fake = FakeLit::start().await;
        let dir = tempfile::tempdir().unwrap();
        let err = Literature::from_settings(&settings(&fake, dir.path(), &["google"]), &env()).unwrap_err();
        assert!(matches!(err, LitError::Config(_)), "{err}");
        assert!(Literature::from_settings(&settings(&fake, dir.path(), &[]), &env()).is_err());
        let l = lit(&settings(&fake, dir.path(), &["S2", "openalex", "s2"]));
        assert_eq!(l.engines(), [Engine::SemanticScholar, Engine::OpenAlex]);
    }
}
